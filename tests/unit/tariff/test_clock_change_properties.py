"""Quotes across daylight saving changes agree with live pricing of the same session.

A quote is what ``plugpay tariff quote`` computes: its ``--start`` read by the
command's own code, then the tariff service's call. The live path is a
charger reporting a meter value every minute at UTC instants, priced reading
by reading (:class:`IncrementalPricer`) and all at once (``price_session``).
Starts are drawn around both 2026 changes of each zone, on the wall clock, so
they include local times the clock repeats or skips; Asia/Tokyo, which has no
daylight saving time, is the control.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tariff_cases import time_billed_minute_by_minute
from tariff_strategies import tariffs, time_of_use_tariffs

from plugpay.cli import build_parser
from plugpay.cli.tariff import quote_start
from plugpay.domain.tariff import (
    IncrementalPricer,
    PriceBreakdown,
    Sample,
    Tariff,
    price_session,
    quote,
    quote_periods,
)

ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Tokyo",
)
# For a zone without changes: the instants of Berlin's 2026 changes.
CONTROL_INSTANTS = (
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
)
SCALE = int(os.environ.get("PLUGPAY_PROPERTY_SCALE", "1"))
QUICK = settings(
    max_examples=50 * SCALE,
    deadline=None,
    # One falsifying example, shrunk once: quick to read, quick to find.
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)

# minutes, Wh per minute, charging, kW (None: the engine uses the average)
Period = tuple[int, int, bool, int | None]


@lru_cache
def offset_changes(zone: str, year: int) -> tuple[datetime, ...]:
    """The UTC instants in ``year`` at which ``zone`` changes its UTC offset (to the minute)."""
    tz = ZoneInfo(zone)
    day = datetime(year, 1, 1, tzinfo=UTC)
    found = []
    while day.year == year:
        before = day.astimezone(tz).utcoffset()
        if (day + timedelta(days=1)).astimezone(tz).utcoffset() != before:
            low, high = 0, 24 * 60
            while high - low > 1:
                middle = (low + high) // 2
                if (day + timedelta(minutes=middle)).astimezone(tz).utcoffset() == before:
                    low = middle
                else:
                    high = middle
            found.append(day + timedelta(minutes=high))
        day += timedelta(days=1)
    return tuple(found) or CONTROL_INSTANTS


@st.composite
def site_starts(draw: st.DrawFn) -> tuple[str, datetime]:
    """A zone and a naive wall-clock start from 6 h before one of its changes to 3 h after."""
    zone = draw(st.sampled_from(ZONES))
    change = draw(st.sampled_from(offset_changes(zone, 2026)))
    # The wall clock just before the change, plus whole minutes of wall time:
    # this reaches the times the clock repeats and the ones it skips.
    wall_at_change = (change - timedelta(minutes=1)).astimezone(ZoneInfo(zone)).replace(
        tzinfo=None
    ) + timedelta(minutes=1)
    return zone, wall_at_change + timedelta(minutes=draw(st.integers(-6 * 60, 3 * 60)))


periods_strategy = st.lists(
    st.tuples(
        st.integers(1, 150),
        st.integers(0, 400),
        st.booleans(),
        st.none() | st.sampled_from([3, 11, 22]),
    ),
    min_size=1,
    max_size=4,
)


def kwh_of(period: Period) -> Decimal:
    minutes, wh_per_minute, _, _ = period
    return Decimal(minutes * wh_per_minute) / 1000


def cli_quote(
    tariff: Tariff, zone: str, wall: datetime, periods: list[Period], simple: bool
) -> PriceBreakdown:
    """The quote ``plugpay tariff quote`` prints for these arguments (without the database)."""
    start_text = wall.isoformat(timespec="minutes")
    if simple:
        charging, *parking = periods
        argv = ["--kwh", str(kwh_of(charging)), "--minutes", str(charging[0])]
        if parking:
            argv += ["--parking-minutes", str(parking[0][0])]
    else:
        argv = ["--periods", "periods.json"]
    args = build_parser().parse_args(
        ["tariff", "quote", tariff.id, *argv, "--start", start_text, "--time-zone", zone]
    )
    start, _ = quote_start(args.start, args.time_zone)
    if simple:
        return quote(
            tariff,
            args.kwh,
            args.minutes,
            args.parking_minutes,
            start_local=start,
            tz=args.time_zone,
        )
    rows = []
    for period in periods:
        minutes, _, charging, kw = period
        row = {"minutes": minutes, "kwh": float(kwh_of(period)), "charging": charging}
        if kw is not None:
            row["power_kw"] = kw
        rows.append(row)
    # As run_quote reads the --periods file.
    document = json.loads(json.dumps(rows).encode())
    return quote_periods(tariff, document, start_local=start, tz=args.time_zone)


def live_samples(start: datetime, periods: list[Period], register: int) -> list[Sample]:
    """A meter value every minute from ``start`` (UTC), energy delivered evenly."""
    samples = []
    at = start
    for minutes, wh_per_minute, charging, kw in periods:
        power_w = None if kw is None else kw * 1000
        for _ in range(minutes):
            samples.append(Sample(at=at, energy_wh=register, charging=charging, power_w=power_w))
            at += timedelta(minutes=1)
            register += wh_per_minute
    samples.append(Sample(at=at, energy_wh=register, charging=False))
    return samples


def as_simple(periods: list[Period]) -> list[Period]:
    """What --kwh/--minutes/--parking-minutes can say: charging, then parking without energy."""
    minutes, wh, _, _ = periods[0]
    shaped: list[Period] = [(minutes, wh, True, None)]
    if len(periods) > 1:
        shaped.append((periods[1][0], 0, False, None))
    return shaped


@QUICK
@given(
    tariff=tariffs(),
    start=site_starts(),
    periods=periods_strategy,
    simple=st.booleans(),
    register=st.integers(0, 10**7),
    every=st.integers(1, 90),
)
def test_a_quote_across_a_clock_change_prices_as_the_live_session_does(
    tariff: Tariff,
    start: tuple[str, datetime],
    periods: list[Period],
    simple: bool,
    register: int,
    every: int,
) -> None:
    zone, wall = start
    if simple:
        periods = as_simple(periods)
    quoted = cli_quote(tariff, zone, wall, periods, simple)

    # The charger knows nothing of wall clocks: it reports UTC instants.
    instant = wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    samples = live_samples(instant, periods, register)
    pricer = IncrementalPricer(tariff, zone)
    for index, sample in enumerate(samples):
        pricer.add(sample)
        if index % every == 0:  # what the live page shows between readings
            pricer.breakdown()
    assert pricer.breakdown() == quoted
    assert price_session(tariff, samples, zone) == quoted


@QUICK
@given(tariff=time_of_use_tariffs(), start=site_starts(), periods=periods_strategy)
def test_charging_time_is_billed_for_the_real_elapsed_minutes(
    tariff: Tariff, start: tuple[str, datetime], periods: list[Period]
) -> None:
    zone, wall = start
    quoted = cli_quote(tariff, zone, wall, periods, simple=False)
    charging_minutes = []
    elapsed = 0
    for minutes, _, charging, _ in periods:
        if charging:
            charging_minutes.extend(range(elapsed, elapsed + minutes))
        elapsed += minutes
    billed = {line.unit_price: line.quantity for line in quoted.lines}
    assert sum(billed.values(), Decimal(0)) == len(charging_minutes)
    instant = wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    assert billed == time_billed_minute_by_minute(tariff, instant, charging_minutes, ZoneInfo(zone))
