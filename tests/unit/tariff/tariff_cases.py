"""Helpers shared by the tariff tests: the OCPI example files and session builders."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from plugpay.domain.tariff import (
    PriceBreakdown,
    Sample,
    Tariff,
    breakdown_to_json,
    parse_tariff,
    quote,
)

# Verbatim copies of the OCPI 2.2.1 example tariffs (see ocpi_examples/README.md).
EXAMPLES = Path(__file__).parent / "ocpi_examples"

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = datetime(2024, 1, 8)  # a Monday outside daylight saving time
SATURDAY = datetime(2024, 1, 13)


def example_paths() -> list[Path]:
    return sorted(EXAMPLES.glob("*.json"))


def example(name: str) -> Tariff:
    return parse_tariff((EXAMPLES / name).read_bytes())


def example_json(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / name).read_text(), parse_float=Decimal)
    return loaded


def tariff(elements: list[dict[str, Any]], currency: str = "EUR", **extra: Any) -> Tariff:
    return parse_tariff({"id": "T1", "currency": currency, "elements": elements, **extra})


def local(day: datetime, hh: int, mm: int = 0) -> datetime:
    return day.replace(hour=hh, minute=mm, tzinfo=BERLIN)


def totals(b: PriceBreakdown) -> tuple[str, str | None]:
    j = breakdown_to_json(b)
    return j["total_excl_vat"], j["total_incl_vat"]


def line_amounts(b: PriceBreakdown) -> list[tuple[str, str, str]]:
    return [
        (line["dimension"], line["quantity"], line["amount_excl_vat"])
        for line in breakdown_to_json(b)["lines"]
    ]


def quick_quote(
    t: Tariff,
    kwh: str | int,
    minutes: int,
    parking: int = 0,
    start: datetime | None = None,
    **kw: Any,
) -> PriceBreakdown:
    return quote(
        t,
        Decimal(kwh),
        minutes,
        parking,
        start_local=start or local(MONDAY, 10),
        tz=BERLIN,
        **kw,
    )


def trace(
    start: datetime,
    steps: Sequence[tuple[float | int, int, bool]],
    *,
    power_w: int | None = None,
    current_a: Decimal | None = None,
) -> list[Sample]:
    """Samples from (minutes since previous, Wh added, charging from here on) steps.

    The first step's minutes are ignored; it opens the session at ``start``.
    """
    samples = []
    at = start.astimezone(UTC)
    energy = 0
    for index, (minutes, wh, charging) in enumerate(steps):
        if index:
            at = at + timedelta(minutes=minutes)
        energy += wh
        samples.append(
            Sample(at=at, energy_wh=energy, charging=charging, power_w=power_w, current_a=current_a)
        )
    return samples


def time_billed_minute_by_minute(
    t: Tariff, start: datetime, minutes: Iterable[int], zone: ZoneInfo
) -> dict[Decimal, Decimal]:
    """Charging minutes per TIME price, reading the restrictions independently of the engine.

    ``minutes`` are the minutes since ``start`` (aware) spent charging; each is
    judged on the site's wall clock at its real instant.
    """
    billed: dict[Decimal, Decimal] = {}
    for minute in minutes:
        local_time = (start + timedelta(minutes=minute)).astimezone(zone)
        clock_now = local_time.hour * 60 + local_time.minute
        for element in t.elements:
            r = element.restrictions
            if r is not None:
                if r.day_of_week and local_time.weekday() not in {
                    d.iso_index for d in r.day_of_week
                }:
                    continue
                if r.start_time is not None:
                    begin = r.start_time.hour * 60 + r.start_time.minute
                    end = (r.end_time.hour * 60 + r.end_time.minute) or 1440 if r.end_time else 1440
                    inside = (
                        begin <= clock_now < end
                        if begin < end
                        else (clock_now >= begin or clock_now < end)
                    )
                    if not inside:
                        continue
                if r.min_duration is not None and minute * 60 < r.min_duration:
                    continue
                if r.max_duration is not None and minute * 60 >= r.max_duration:
                    continue
            price = element.price_components[0].price
            billed[price] = billed.get(price, Decimal(0)) + 1
            break
    return billed
