"""Properties of the pricing engine, checked on random tariffs and sessions."""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tariff_cases import time_billed_minute_by_minute
from tariff_strategies import sessions, tariffs, time_of_use_tariffs

from plugpay.domain.money import currency_exponent, round_decimal
from plugpay.domain.tariff import (
    IncrementalPricer,
    PriceBreakdown,
    Sample,
    Tariff,
    breakdown_to_json,
    price_session,
)

# PLUGPAY_PROPERTY_SCALE=50 runs every property 50 times longer (a deep check).
SCALE = int(os.environ.get("PLUGPAY_PROPERTY_SCALE", "1"))
FAST = settings(
    max_examples=40 * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)


def check_sums(b: PriceBreakdown) -> None:
    assert sum((line.amount_excl_vat for line in b.lines), Decimal(0)) == b.total_excl_vat
    if b.total_incl_vat is None:
        assert all(line.amount_incl_vat is None for line in b.lines)
    else:
        assert sum((line.amount_incl_vat or 0 for line in b.lines), Decimal(0)) == b.total_incl_vat
    places = currency_exponent(b.currency)
    for amount in (b.total_excl_vat, b.total_incl_vat):
        if amount is not None:
            assert amount == round_decimal(amount, places)
            assert amount >= 0


@settings(FAST, max_examples=100 * SCALE)
@given(tariff=tariffs(), session=sessions(), data=st.data())
def test_live_updates_in_any_split_give_the_final_price_exactly(
    tariff: Tariff, session: tuple[str, list[Sample]], data: st.DataObject
) -> None:
    zone, samples = session
    full = price_session(tariff, samples, zone)
    pricer = IncrementalPricer(tariff, zone)
    for sample in samples:
        pricer.add(sample)
        action = data.draw(st.sampled_from(["nothing", "breakdown", "restart"]))
        if action == "breakdown":
            check_sums(pricer.breakdown())
        elif action == "restart":  # a server restart between two readings
            state = json.loads(json.dumps(pricer.to_state()))
            pricer = IncrementalPricer.from_state(tariff, zone, state)
    live = pricer.breakdown()
    assert live == full
    assert breakdown_to_json(live) == breakdown_to_json(full)


@FAST
@given(tariff=tariffs(), session=sessions())
def test_totals_are_the_sum_of_the_lines(tariff: Tariff, session: tuple[str, list[Sample]]) -> None:
    zone, samples = session
    check_sums(price_session(tariff, samples, zone))


@FAST
@given(tariff=tariffs(), session=sessions())
def test_min_and_max_price_are_honoured(tariff: Tariff, session: tuple[str, list[Sample]]) -> None:
    zone, samples = session
    b = price_session(tariff, samples, zone)
    places = currency_exponent(tariff.currency)
    if tariff.min_price is not None:
        assert b.total_excl_vat >= round_decimal(tariff.min_price.excl_vat, places)
        if tariff.min_price.incl_vat is not None and b.total_incl_vat is not None:
            assert b.total_incl_vat >= round_decimal(tariff.min_price.incl_vat, places)
    if tariff.max_price is not None:
        assert b.total_excl_vat <= round_decimal(tariff.max_price.excl_vat, places)
        if tariff.max_price.incl_vat is not None and b.total_incl_vat is not None:
            assert b.total_incl_vat <= round_decimal(tariff.max_price.incl_vat, places)


def totals_of(b: PriceBreakdown) -> tuple[Decimal, Decimal]:
    return b.total_excl_vat, b.total_incl_vat if b.total_incl_vat is not None else Decimal(0)


@FAST
@given(
    tariff=tariffs(step=1, incl_bounds_only=True),
    session=sessions(),
    extra=st.integers(1, 3 * 3600),
)
def test_price_never_decreases_as_the_session_goes_on(
    tariff: Tariff, session: tuple[str, list[Sample]], extra: int
) -> None:
    # step_size 1 and a default element per dimension: every second and Wh is
    # priced, so growing a session only adds. Not covered, as they may go down:
    # coarser steps (the spec lets a later, finer step_size lower the rounded
    # total) and a min/max price without incl_vat on a tariff mixing VAT rates
    # (its incl.-VAT side follows the session's average VAT rate).
    zone, samples = session
    before = price_session(tariff, samples, zone)
    last = samples[-1]
    longer = [*samples, replace(last, at=last.at + timedelta(seconds=extra))]
    after = price_session(tariff, longer, zone)
    assert all(a >= b for a, b in zip(totals_of(after), totals_of(before), strict=True))


@FAST
@given(
    tariff=tariffs(step=1, with_kwh_and_power=False, incl_bounds_only=True),
    session=sessions(),
    index=st.integers(0, 20),
    more=st.integers(1, 20_000),
)
def test_price_never_decreases_as_energy_grows(
    tariff: Tariff, session: tuple[str, list[Sample]], index: int, more: int
) -> None:
    zone, samples = session
    at = 1 + index % (len(samples) - 1)
    richer = samples[:at] + [replace(s, energy_wh=s.energy_wh + more) for s in samples[at:]]
    before, after = price_session(tariff, samples, zone), price_session(tariff, richer, zone)
    assert all(a >= b for a, b in zip(totals_of(after), totals_of(before), strict=True))


def ceil_to(value: Decimal, step: int) -> Decimal:
    if step == 0:
        return value
    return (value / step).to_integral_value(ROUND_CEILING) * step


@FAST
@given(
    tariff=tariffs(restricted=False, with_bounds=False),
    charging_s=st.integers(0, 5 * 3600),
    parking_s=st.integers(0, 3 * 3600),
    wh=st.integers(0, 60_000),
)
def test_single_rate_tariffs_match_a_hand_computed_price(
    tariff: Tariff, charging_s: int, parking_s: int, wh: int
) -> None:
    """step_size once per session; parking rounded when it ends the session, else charging."""
    from tariff_cases import BERLIN, MONDAY, local

    start = local(MONDAY, 10)
    samples = [Sample(at=start, energy_wh=0)]
    samples.append(Sample(at=start + timedelta(seconds=charging_s), energy_wh=wh, charging=False))
    samples.append(replace(samples[-1], at=samples[-1].at + timedelta(seconds=parking_s)))
    b = price_session(tariff, samples, BERLIN)

    parts = {c.type.value: c for c in tariff.elements[0].price_components}
    billed: dict[str, Decimal] = {}
    if "ENERGY" in parts and wh:
        billed["ENERGY"] = ceil_to(Decimal(wh), parts["ENERGY"].step_size) / 1000
    charging, parking = Decimal(charging_s), Decimal(parking_s)
    if "PARKING_TIME" in parts and parking_s:
        billed["PARKING_TIME"] = ceil_to(parking, parts["PARKING_TIME"].step_size) / 3600
        if "TIME" in parts and charging_s:
            billed["TIME"] = charging / 3600
    elif "TIME" in parts and charging_s:
        billed["TIME"] = ceil_to(charging, parts["TIME"].step_size) / 3600
    if "FLAT" in parts:
        billed["FLAT"] = Decimal(1)
    # Exact: a Decimal quotient such as 5700 / 3600 is already rounded to 28 digits,
    # which can tip a price that ends in exactly half a cent the wrong way.
    exact = {d: _exact_quantity(d, billed, charging_s, parking_s, wh, parts) for d in billed}
    exact_excl = sum((q * Fraction(parts[d].price) for d, q in exact.items()), Fraction(0))
    exact_incl = sum(
        (
            q * Fraction(parts[d].price) * (100 + Fraction(parts[d].vat or 0)) / 100
            for d, q in exact.items()
        ),
        Fraction(0),
    )
    places = currency_exponent(tariff.currency)
    assert b.total_excl_vat == _round_half_up(exact_excl, places)
    if tariff.has_vat:
        assert b.total_incl_vat == _round_half_up(exact_incl, places)
    else:
        assert b.total_incl_vat is None
    assert [line.dimension for line in b.lines] == [
        d for d in ("ENERGY", "TIME", "PARKING_TIME", "FLAT") if d in billed
    ]
    check_sums(b)


def _exact_quantity(
    dimension: str,
    billed: dict[str, Decimal],
    charging_s: int,
    parking_s: int,
    wh: int,
    parts: dict[str, Any],
) -> Fraction:
    """The billed quantity as an exact fraction (kWh, hours, or 1 session)."""
    if dimension == "FLAT":
        return Fraction(1)
    if dimension == "ENERGY":
        return Fraction(int(ceil_to(Decimal(wh), parts["ENERGY"].step_size)), 1000)
    seconds = parking_s if dimension == "PARKING_TIME" else charging_s
    step = parts[dimension].step_size
    rounded = dimension == "PARKING_TIME" or "PARKING_TIME" not in billed
    whole = int(ceil_to(Decimal(seconds), step)) if rounded else seconds
    return Fraction(whole, 3600)


def _round_half_up(value: Fraction, places: int) -> Decimal:
    scaled = value * 10**places
    whole = (
        math.floor(scaled + Fraction(1, 2))
        if scaled >= 0
        else -math.floor(-scaled + Fraction(1, 2))
    )
    return Decimal(whole).scaleb(-places)


@settings(FAST, max_examples=60 * SCALE)
@given(
    tariff=time_of_use_tariffs(),
    zone_name=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]),
    day=st.sampled_from(
        [
            datetime(2024, 3, 30),
            datetime(2024, 3, 9),
            datetime(2024, 10, 26),
            datetime(2024, 11, 2),
            datetime(2024, 4, 6),
        ]
    ),
    offset_minutes=st.integers(0, 2 * 1440),
    minutes=st.integers(1, 30 * 60),
)
def test_time_splits_match_a_minute_by_minute_count(
    tariff: Tariff, zone_name: str, day: datetime, offset_minutes: int, minutes: int
) -> None:
    # Covers midnight, windows past midnight, weekdays and the DST changes of
    # 2024 (Berlin, New York, and Lord Howe's half-hour shift).
    zone = ZoneInfo(zone_name)
    start = day.replace(tzinfo=UTC) + timedelta(minutes=offset_minutes)
    samples = [
        Sample(at=start, energy_wh=0),
        Sample(at=start + timedelta(minutes=minutes), energy_wh=0, charging=False),
    ]
    b = price_session(tariff, samples, zone)
    engine = {line.unit_price: line.quantity for line in b.lines}
    assert engine == time_billed_minute_by_minute(tariff, start, range(minutes), zone)
