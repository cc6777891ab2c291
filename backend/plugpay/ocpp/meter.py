"""Normalise OCPP meter values once, here, to integer Wh / W / mA.

Chargers send kWh or Wh, strings (1.6) or numbers (2.0.1), with or without a
measurand (the default is Energy.Active.Import.Register), per phase or total,
and 2.0.1 adds a power-of-ten multiplier. Everything past this module sees
plain integers.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from plugpay.domain.metering import MeterSample

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
CURRENT = "Current.Import"
SOC = "SoC"

_SCALE = {
    "Wh": Decimal(1),
    "kWh": Decimal(1000),
    "W": Decimal(1),
    "kW": Decimal(1000),
    "A": Decimal(1000),
    "Percent": Decimal(1),
}
_DEFAULT_UNIT = {ENERGY: "Wh", POWER: "W", CURRENT: "A", SOC: "Percent"}


class MeterValueError(ValueError):
    """A sampled value that is not a number or has an unknown unit."""


def parse_timestamp(value: str) -> datetime:
    """OCPP date-time (RFC 3339) to an aware UTC datetime; naive means UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _unit_and_multiplier(sampled: dict[str, Any], measurand: str) -> tuple[str, int]:
    unit_of_measure = sampled.get("unitOfMeasure")
    if isinstance(unit_of_measure, dict):  # 2.0.1
        unit = str(unit_of_measure.get("unit") or _DEFAULT_UNIT[measurand])
        return unit, int(unit_of_measure.get("multiplier", 0))
    return str(sampled.get("unit") or _DEFAULT_UNIT[measurand]), 0


def _scaled(sampled: dict[str, Any], measurand: str) -> int:
    unit, multiplier = _unit_and_multiplier(sampled, measurand)
    scale = _SCALE.get(unit)
    if scale is None:
        raise MeterValueError(f"unit {unit!r} is not usable for {measurand}")
    try:
        value = Decimal(str(sampled["value"]))
    except InvalidOperation:
        raise MeterValueError(f"{measurand} value {sampled['value']!r} is not a number") from None
    if not value.is_finite():
        raise MeterValueError(f"{measurand} value {sampled['value']!r} is not finite")
    scaled = value * scale * (Decimal(10) ** multiplier)
    return int(scaled.to_integral_value(rounding=ROUND_HALF_UP))


def _combine(measurand: str, values: list[tuple[str | None, int]]) -> int | None:
    """Prefer a total (no phase); else add up the line phases (L1, L2, L3)."""
    if not values:
        return None
    for phase, value in values:
        if phase is None:
            return value
    line_phases = [v for p, v in values if p in ("L1", "L2", "L3")]
    if measurand == CURRENT:  # current per phase: the highest phase matters
        return max(line_phases or [v for _, v in values])
    return sum(line_phases) if line_phases else values[0][1]


def normalise(meter_values: Iterable[dict[str, Any]]) -> list[MeterSample]:
    """Turn OCPP ``meterValue`` entries into MeterSamples, oldest first."""
    samples = []
    for entry in meter_values:
        found: dict[str, list[tuple[str | None, int]]] = {}
        context = None
        for sampled in entry.get("sampledValue", ()):
            measurand = sampled.get("measurand", ENERGY)
            if measurand not in _DEFAULT_UNIT:
                continue
            if sampled.get("format") == "SignedData":
                continue  # signed blobs are kept in the message log, not read
            found.setdefault(measurand, []).append(
                (sampled.get("phase"), _scaled(sampled, measurand))
            )
            context = context or sampled.get("context")
        soc = _combine(SOC, found.get(SOC, []))
        samples.append(
            MeterSample(
                at=parse_timestamp(entry["timestamp"]),
                energy_wh=_combine(ENERGY, found.get(ENERGY, [])),
                power_w=_combine(POWER, found.get(POWER, [])),
                current_ma=_combine(CURRENT, found.get(CURRENT, [])),
                soc=soc,
                context=context,
            )
        )
    samples.sort(key=lambda s: s.at)
    return samples
