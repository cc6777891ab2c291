"""Normalise OCPP meter values once, here, to integer Wh / W / mA.

Chargers send kWh or Wh, strings (1.6) or numbers (2.0.1), with or without a
measurand (the default is Energy.Active.Import.Register), per phase or total,
at the outlet or elsewhere, and 2.0.1 adds a power-of-ten multiplier.
Everything past this module sees plain integers.

A sampled value that cannot be read (not a number, a unit that does not fit
its measurand, absurdly large) is left out and described in ``problems``: the
charger still gets its answer (OCPP 1.6 §4.7, 2.0.1 E03: sanity checks never
stop the CSMS from answering), and an operator gets a review item.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, DecimalException
from typing import Any

import msgspec

from plugpay.domain.metering import MeterSample

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
CURRENT = "Current.Import"
SOC = "SoC"

# Unit (case-insensitive, as chargers spell them freely) -> factor to Wh, W, mA, %.
_SCALE = {
    ENERGY: {"wh": Decimal(1), "kwh": Decimal(1000)},
    POWER: {"w": Decimal(1), "kw": Decimal(1000)},
    CURRENT: {"a": Decimal(1000)},
    SOC: {"percent": Decimal(1)},
}
# The same as integers: the common case (a whole number in a known unit) needs no Decimal.
_INT_SCALE = {m: {u: int(f) for u, f in units.items()} for m, units in _SCALE.items()}
_DEFAULT_UNIT = {ENERGY: "Wh", POWER: "W", CURRENT: "A", SOC: "Percent"}
# Magnitudes beyond these are broken data, not measurements (and would not fit
# the database columns): 1 TWh, 1 GW, 1 MA.
_LIMIT = {ENERGY: 10**12, POWER: 10**9, CURRENT: 10**9, SOC: 100}
_MAX_MULTIPLIER = 9
# Where a measurand is read: the connector's own meter unless said otherwise.
_OUTLET = (None, "Outlet")
# Phase -> line it belongs to ("L1" and "L1-N" are both line 1; "L1-L2" is not a line).
_LINE = {"L1": 1, "L2": 2, "L3": 3, "L1-N": 1, "L2-N": 2, "L3-N": 3}


class MeterValueError(ValueError):
    """A sampled value that is not a number or has an unknown unit."""


class Readout(msgspec.Struct, frozen=True):
    """What OCPP meterValue entries say: samples, oldest first, and what was unreadable."""

    samples: list[MeterSample]
    problems: list[str] = msgspec.field(default_factory=list)


def parse_timestamp(value: str) -> datetime:
    """OCPP date-time (RFC 3339) to an aware UTC datetime; naive means UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)


def _unit_and_multiplier(sampled: dict[str, Any], measurand: str) -> tuple[str, int]:
    unit_of_measure = sampled.get("unitOfMeasure")
    if isinstance(unit_of_measure, dict):  # 2.0.1
        unit = str(unit_of_measure.get("unit") or _DEFAULT_UNIT[measurand])
        return unit, int(unit_of_measure.get("multiplier", 0))
    return str(sampled.get("unit") or _DEFAULT_UNIT[measurand]), 0


def _whole(raw: Any) -> int | None:
    """``raw`` as an int when it is plainly one (12345, "12345"), else None."""
    if type(raw) is int:
        return raw
    if type(raw) is str and 0 < len(raw) <= 15 and raw.isascii() and raw.isdigit():
        return int(raw)
    return None


# (measurand, unit as the charger spells it) -> integer factor, for the units
# met so far (a handful of spellings each).
_FACTORS: dict[tuple[str, str], int] = {}


def _factor(measurand: str, unit: str) -> int:
    factor = _FACTORS.get((measurand, unit))
    if factor is None:
        factor = _INT_SCALE[measurand].get(unit.lower())
        if factor is None:
            raise MeterValueError(f"unit {unit!r} is not usable for {measurand}")
        if len(_FACTORS) < 256:
            _FACTORS[(measurand, unit)] = factor
    return factor


def scaled(sampled: dict[str, Any], measurand: str) -> int:
    """A sampled value as an integer in its measurand's base unit; MeterValueError if unreadable."""
    raw = sampled.get("value")
    whole = _whole(raw)
    if whole is not None and "unitOfMeasure" not in sampled:
        # What nearly every charger sends: a whole number in a unit met before.
        factor = _FACTORS.get((measurand, sampled.get("unit") or _DEFAULT_UNIT[measurand]))
        if factor is not None and abs(whole * factor) <= _LIMIT[measurand]:
            return whole * factor
    unit, multiplier = _unit_and_multiplier(sampled, measurand)
    factor = _factor(measurand, unit)
    if abs(multiplier) > _MAX_MULTIPLIER:
        raise MeterValueError(f"multiplier {multiplier} of {measurand} is out of range")
    if whole is not None and multiplier >= 0:
        # An integer register: no Decimal needed.
        result: int = whole * factor * 10**multiplier
        if abs(result) > _LIMIT[measurand]:
            raise MeterValueError(f"{measurand} value {raw!r} is out of range")
        return result
    scale = _SCALE[measurand][unit.lower()]
    try:
        value = Decimal(str(raw).strip())
    except DecimalException:
        raise MeterValueError(f"{measurand} value {raw!r} is not a number") from None
    if not value.is_finite():
        raise MeterValueError(f"{measurand} value {raw!r} is not finite")
    exact = (value * scale).scaleb(multiplier)
    # Check the magnitude before making an int of it: "1e999999" is a valid number.
    if exact.adjusted() > 15 or abs(exact) > _LIMIT[measurand]:
        raise MeterValueError(f"{measurand} value {raw!r} is out of range")
    return int(exact.to_integral_value(rounding=ROUND_HALF_UP))


# One sampled value: (phase, location, value in the base unit).
_Value = tuple[str | None, str | None, int]
_NO_VALUES: list[_Value] = []  # read, never written


def _combine(measurand: str, values: list[_Value]) -> int | None:
    """Prefer the outlet; there a total (no phase), else the line phases added up."""
    if not values:
        return None
    if len(values) == 1:  # one reading: whatever its phase or place, it is the value
        return values[0][2]
    at_outlet = [v for v in values if v[1] in _OUTLET] or values
    for phase, _, value in at_outlet:
        if phase is None:
            return value
    lines: dict[int, int] = {}
    for phase, _, value in at_outlet:
        line = _LINE.get(phase or "")
        if line is not None:
            lines.setdefault(line, value)
    if not lines:
        return at_outlet[0][2]
    if measurand == CURRENT:  # current per phase: the highest phase matters
        return max(lines.values())
    return sum(lines.values())


def _context(contexts: dict[str, str | None]) -> str | None:
    # The energy register's context decides (Transaction.Begin / End matter).
    return contexts.get(ENERGY) or next((c for c in contexts.values() if c), None)


def normalise(meter_values: Iterable[dict[str, Any]]) -> Readout:
    """Turn OCPP ``meterValue`` entries into MeterSamples, oldest first.

    Entries with the same timestamp are one instant (OCPP allows splitting the
    measurands of one instant), so they become one sample.
    """
    # instant -> (values per measurand, context per measurand)
    instants: dict[datetime, tuple[dict[str, list[_Value]], dict[str, str | None]]] = {}
    problems: list[str] = []
    for entry in meter_values:
        at = parse_timestamp(entry["timestamp"])
        instant = instants.get(at)
        if instant is None:
            instant = instants[at] = ({}, {})
        values, context_of = instant
        for sampled in entry.get("sampledValue", ()):
            measurand = sampled.get("measurand", ENERGY)
            if measurand not in _DEFAULT_UNIT or sampled.get("format") == "SignedData":
                continue  # other measurands and signed blobs stay in the message log
            try:
                value = scaled(sampled, measurand)
            except MeterValueError as exc:
                problems.append(f"{entry['timestamp']}: {exc}")
                continue
            values.setdefault(measurand, []).append(
                (sampled.get("phase"), sampled.get("location"), value)
            )
            context_of.setdefault(measurand, sampled.get("context"))
    samples = []
    for at, (values, context_of) in instants.items():
        if values:
            get = values.get
            samples.append(
                MeterSample(
                    at,
                    _combine(ENERGY, get(ENERGY, _NO_VALUES)),
                    _combine(POWER, get(POWER, _NO_VALUES)),
                    _combine(CURRENT, get(CURRENT, _NO_VALUES)),
                    _combine(SOC, get(SOC, _NO_VALUES)),
                    _context(context_of),
                )
            )
    if len(samples) > 1:
        samples.sort(key=lambda s: s.at)
    return Readout(samples, problems)
