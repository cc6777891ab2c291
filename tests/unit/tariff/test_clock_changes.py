"""Quotes across a daylight saving change last exactly as long as they say.

2026 in Berlin: on 29 March 02:00 CET becomes 03:00 CEST (the hour 02:00-03:00
never happens); on 25 October 03:00 CEST becomes 02:00 CET (02:00-03:00 happens
twice). A quote adds its minutes as elapsed time, not on the wall clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from tariff_cases import BERLIN, line_amounts, tariff

from plugpay.domain.tariff import (
    LocalTimeKind,
    display_tariff,
    local_time_kind,
    quote,
    quote_periods,
    site_instant,
)
from plugpay.domain.tariff.pricing import quote_samples

ONE_EURO_AN_HOUR = [{"price_components": [{"type": "TIME", "price": "1.00", "step_size": 0}]}]
AUTUMN = datetime(2026, 10, 25)
SPRING = datetime(2026, 3, 29)


def at(day: datetime, hh: int, mm: int = 0) -> datetime:
    return day.replace(hour=hh, minute=mm)


@pytest.mark.parametrize(
    "start",
    [at(AUTUMN, 1, 30), at(AUTUMN, 2, 30), at(AUTUMN, 2, 59), at(SPRING, 1, 30), at(SPRING, 1, 59)],
)
def test_two_hours_of_charging_across_a_clock_change_cost_two_hours(start: datetime) -> None:
    b = quote(tariff(ONE_EURO_AN_HOUR), 0, 120, start_local=start, tz=BERLIN)
    assert line_amounts(b) == [("TIME", "120.00", "2.00")]


@pytest.mark.parametrize("day", [AUTUMN, SPRING])
def test_periods_across_a_clock_change_cost_their_real_duration(day: datetime) -> None:
    periods: list[dict[str, Any]] = [
        {"minutes": 45, "kwh": 5},
        {"minutes": 45, "kwh": 5},
        {"minutes": 30, "kwh": 0, "charging": False},
    ]
    t = tariff(
        [
            {
                "price_components": [
                    {"type": "TIME", "price": "1.00", "step_size": 0},
                    {"type": "PARKING_TIME", "price": "6.00", "step_size": 0},
                ]
            }
        ]
    )
    b = quote_periods(t, periods, start_local=at(day, 1, 15), tz=BERLIN)
    assert line_amounts(b) == [("TIME", "90.00", "1.50"), ("PARKING_TIME", "30.00", "3.00")]


def test_quote_samples_are_utc_instants_the_minutes_apart() -> None:
    samples = quote_samples(
        [{"minutes": 60, "kwh": 1}, {"minutes": 60, "kwh": 1}],
        start_local=at(AUTUMN, 1, 30),
        tz=BERLIN,
    )
    assert [s.at for s in samples] == [
        datetime(2026, 10, 24, 23, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    ]


def test_a_window_in_the_repeated_hour_applies_to_both_occurrences() -> None:
    # 00:00-02:30 on 25 October lasts three real hours: 00:00-02:30 CEST and
    # 02:00-02:30 CET. Four hours from midnight: three in the window, one after.
    t = tariff(
        [
            {
                "price_components": [{"type": "TIME", "price": "2.00", "step_size": 0}],
                "restrictions": {"start_time": "00:00", "end_time": "02:30"},
            },
            *ONE_EURO_AN_HOUR,
        ]
    )
    b = quote(t, 0, 240, start_local=at(AUTUMN, 0), tz=BERLIN)
    assert line_amounts(b) == [("TIME", "180.00", "6.00"), ("TIME", "60.00", "1.00")]


def test_a_repeated_local_time_means_its_first_occurrence() -> None:
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert local_time_kind(at(AUTUMN, 2, 30), BERLIN) is LocalTimeKind.REPEATED
    assert site_instant(at(AUTUMN, 2, 30), BERLIN) == first
    t = tariff(ONE_EURO_AN_HOUR)
    naive = quote(t, 0, 120, start_local=at(AUTUMN, 2, 30), tz=BERLIN)
    aware = quote(t, 0, 120, start_local=first, tz=BERLIN)
    assert naive == aware


def test_a_skipped_local_time_moves_forward_by_the_gap() -> None:
    # 02:30 never shows on 29 March; the same instant on the clock is 03:30 CEST.
    assert local_time_kind(at(SPRING, 2, 30), BERLIN) is LocalTimeKind.SKIPPED
    assert site_instant(at(SPRING, 2, 30), BERLIN) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    t = tariff(ONE_EURO_AN_HOUR)
    skipped = quote(t, 0, 120, start_local=at(SPRING, 2, 30), tz=BERLIN)
    after_gap = quote(t, 0, 120, start_local=at(SPRING, 3, 30), tz=BERLIN)
    assert skipped == after_gap
    assert line_amounts(skipped) == [("TIME", "120.00", "2.00")]


def test_ordinary_local_times_are_unique() -> None:
    assert local_time_kind(at(AUTUMN, 3, 0), BERLIN) is LocalTimeKind.UNIQUE
    assert local_time_kind(at(SPRING, 3, 0), BERLIN) is LocalTimeKind.UNIQUE
    assert local_time_kind(at(SPRING, 2, 0), "Asia/Tokyo") is LocalTimeKind.UNIQUE


def test_an_aware_start_is_the_instant_it_names() -> None:
    # fold=1 is the second 02:30 (CET); an offset names it as well.
    second = datetime(2026, 10, 25, 2, 30).replace(tzinfo=BERLIN, fold=1)
    assert site_instant(second, BERLIN) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    offset = datetime.fromisoformat("2026-10-25T02:30+01:00")
    assert site_instant(offset, "Asia/Tokyo") == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    t = tariff(ONE_EURO_AN_HOUR)
    assert quote(t, 0, 90, start_local=second, tz=BERLIN) == quote(
        t, 0, 90, start_local=offset, tz=BERLIN
    )


@pytest.mark.parametrize("start", [at(AUTUMN, 2, 40), at(SPRING, 2, 40)])
def test_the_worked_example_lasts_its_minutes_across_a_clock_change(start: datetime) -> None:
    # The spring start is in the skipped hour: it is 03:40 CEST.
    t = tariff([{"price_components": [{"type": "TIME", "price": "6.00", "step_size": 0}]}])
    d = display_tariff(t, tz=BERLIN, example_start=start)
    assert d.example == "about €4.00 for 20 kWh in 40 minutes"


def test_minutes_are_elapsed_time_in_every_zone() -> None:
    t = tariff(ONE_EURO_AN_HOUR)
    for zone, start in [
        ("America/New_York", datetime(2026, 11, 1, 0, 30)),
        ("America/New_York", datetime(2026, 3, 8, 1, 30)),
        ("Australia/Sydney", datetime(2026, 4, 5, 1, 30)),
        ("Australia/Sydney", datetime(2026, 10, 4, 1, 30)),
        ("Europe/London", datetime(2026, 10, 25, 0, 30)),
        ("Europe/London", datetime(2026, 3, 29, 0, 30)),
    ]:
        b = quote(t, Decimal(0), 150, start_local=start, tz=zone)
        assert line_amounts(b) == [("TIME", "150.00", "2.50")], (zone, start)
