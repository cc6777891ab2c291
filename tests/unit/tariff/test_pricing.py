"""Pricing behaviour beyond the spec's worked examples: splits, time zones, odd meters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from tariff_cases import BERLIN, MONDAY, line_amounts, local, quick_quote, tariff, totals, trace

from plugpay.domain.tariff import (
    IncrementalPricer,
    Sample,
    SessionTraceError,
    breakdown_to_json,
    price_session,
)


def priced(components: list[dict[str, Any]], **restrictions: Any) -> dict[str, Any]:
    element: dict[str, Any] = {"price_components": components}
    if restrictions:
        element["restrictions"] = restrictions
    return element


def energy(price: float | str, step: int = 1, vat: float | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"type": "ENERGY", "price": Decimal(str(price)), "step_size": step}
    if vat is not None:
        c["vat"] = Decimal(str(vat))
    return c


def charging_time(price: float | str, step: int = 1) -> dict[str, Any]:
    return {"type": "TIME", "price": Decimal(str(price)), "step_size": step}


def parking_time(price: float | str, step: int = 1) -> dict[str, Any]:
    return {"type": "PARKING_TIME", "price": Decimal(str(price)), "step_size": step}


def test_a_period_is_split_exactly_at_a_time_of_day_boundary() -> None:
    # One reading at 16:30 and the next at 17:30: half the energy before 17:00.
    t = tariff([priced([energy("0.30")], end_time="17:00"), priced([energy("0.20")])])
    samples = trace(local(MONDAY, 16, 30), [(0, 0, True), (60, 10_000, False)])
    b = price_session(t, samples, BERLIN)
    assert line_amounts(b) == [("ENERGY", "5.000", "1.50"), ("ENERGY", "5.000", "1.00")]


def test_a_window_across_midnight_applies_on_both_sides() -> None:
    t = tariff(
        [
            priced([charging_time(1)], start_time="22:00", end_time="06:00"),
            priced([charging_time(3)]),
        ]
    )
    b = quick_quote(t, 30, 600, 0, local(MONDAY, 21))  # 21:00 to 07:00
    assert line_amounts(b) == [("TIME", "480.00", "8.00"), ("TIME", "120.00", "6.00")]


def test_an_element_ending_at_midnight_stops_at_midnight() -> None:
    t = tariff(
        [
            priced([charging_time(6)], start_time="20:00", end_time="00:00"),
            priced([charging_time(0)]),
        ]
    )
    b = quick_quote(t, 10, 120, 0, local(MONDAY, 23))  # 23:00 to 01:00
    assert line_amounts(b) == [("TIME", "60.00", "6.00"), ("TIME", "60.00", "0.00")]


def test_a_kwh_threshold_is_crossed_at_the_interpolated_instant() -> None:
    # 20 kWh evenly over 60 min; TIME is cheaper once 10 kWh are in: 30 min each.
    t = tariff(
        [
            priced([charging_time(6), energy("0.40")], max_kwh=10),
            priced([charging_time(2), energy("0.30")]),
        ]
    )
    b = quick_quote(t, 20, 60)
    assert line_amounts(b) == [
        ("ENERGY", "10.000", "4.00"),
        ("ENERGY", "10.000", "3.00"),
        ("TIME", "30.00", "3.00"),
        ("TIME", "30.00", "1.00"),
    ]


def test_a_duration_threshold_splits_a_period_at_that_second() -> None:
    t = tariff([priced([charging_time(0)], max_duration=1800), priced([charging_time(12)])])
    samples = trace(local(MONDAY, 10), [(0, 0, True), (45, 5_000, False)])
    assert line_amounts(price_session(t, samples, BERLIN)) == [
        ("TIME", "30.00", "0.00"),
        ("TIME", "15.00", "3.00"),
    ]


def test_durations_count_from_the_session_start_not_the_first_reading() -> None:
    t = tariff([priced([charging_time(0)], max_duration=1800), priced([charging_time(12)])])
    start = local(MONDAY, 10)
    samples = trace(start + timedelta(minutes=20), [(0, 0, True), (20, 1_000, False)])
    b = price_session(t, samples, BERLIN, started_at=start)
    assert line_amounts(b) == [("TIME", "10.00", "0.00"), ("TIME", "10.00", "2.00")]


def test_spring_forward_window_in_the_skipped_hour_starts_when_the_clock_jumps() -> None:
    # 2024-03-31 in Berlin, 02:00 CET becomes 03:00 CEST. A 02:30-03:30 window
    # starts with the jump (01:00 UTC) and ends at 03:30 CEST (01:30 UTC).
    t = tariff(
        [
            priced([charging_time(60)], start_time="02:30", end_time="03:30"),
            priced([charging_time(0)]),
        ]
    )
    start = datetime(2024, 3, 31, 0, 0, tzinfo=UTC)
    samples = trace(start, [(0, 0, True), (120, 1_000, False)])
    lines = line_amounts(price_session(t, samples, BERLIN))
    assert lines[0] == ("TIME", "30.00", "30.00")


def test_fall_back_hour_counts_twice() -> None:
    # 2024-10-27 in Berlin, 03:00 CEST becomes 02:00 CET: 02:00-03:00 lasts two hours.
    t = tariff(
        [
            priced([charging_time(1)], start_time="02:00", end_time="03:00"),
            priced([charging_time(0)]),
        ]
    )
    start = datetime(2024, 10, 26, 23, 0, tzinfo=UTC)
    samples = trace(start, [(0, 0, True), (240, 1_000, False)])
    assert line_amounts(price_session(t, samples, BERLIN))[0] == ("TIME", "120.00", "2.00")


def test_day_of_week_and_dates_follow_the_site_time_zone() -> None:
    # 23:30 UTC on Sunday is already Monday in Berlin.
    t = tariff(
        [
            priced([energy("0.50")], day_of_week=["MONDAY"], start_date="2024-01-08"),
            priced([energy("0.10")]),
        ]
    )
    start = datetime(2024, 1, 7, 23, 30, tzinfo=UTC)
    samples = trace(start, [(0, 0, True), (10, 1_000, False)])
    assert totals(price_session(t, samples, BERLIN))[0] == "0.50"
    assert totals(price_session(t, samples, "UTC"))[0] == "0.10"


def test_flat_fee_is_charged_once_when_it_first_applies() -> None:
    # An evening start fee: a session from 17:00 to 19:00 pays it once, from 18:00.
    t = tariff(
        [
            priced([{"type": "FLAT", "price": 2, "step_size": 1}], start_time="18:00"),
            priced([energy("0.30")]),
        ]
    )
    assert totals(quick_quote(t, 10, 120, 0, local(MONDAY, 17)))[0] == "5.00"
    assert totals(quick_quote(t, 10, 30, 0, local(MONDAY, 17)))[0] == "3.00"


def test_time_rounding_follows_the_last_time_based_period() -> None:
    # charge 7 min, park 7 min, charge again 7 min (step 10 min): the session ends
    # charging, so charging time (14 min) is rounded to 20 and parking is not.
    t = tariff([priced([charging_time(6, 600), parking_time(6, 600)])])
    samples = trace(
        local(MONDAY, 10), [(0, 0, True), (7, 1_000, False), (7, 0, True), (7, 1_000, False)]
    )
    b = price_session(t, samples, BERLIN)
    assert line_amounts(b) == [("TIME", "20.00", "2.00"), ("PARKING_TIME", "7.00", "0.70")]


def test_energy_rounding_uses_the_last_component_that_priced_energy() -> None:
    t = tariff(
        [
            priced([energy("0.30", step=1000)], end_time="12:00"),
            priced([energy("0.20", step=1)]),
        ]
    )
    samples = trace(local(MONDAY, 11, 50), [(0, 0, True), (10, 1_500, True), (10, 1, False)])
    assert line_amounts(price_session(t, samples, BERLIN)) == [
        ("ENERGY", "1.500", "0.45"),
        ("ENERGY", "0.001", "0.00"),
    ]


def test_a_register_going_backwards_never_bills_twice() -> None:
    t = tariff([priced([energy("1")])])
    start = local(MONDAY, 10).astimezone(UTC)
    registers = [50_000, 51_000, 10, 51_500, 52_000]
    samples = [
        Sample(at=start + timedelta(minutes=i), energy_wh=wh) for i, wh in enumerate(registers)
    ]
    assert line_amounts(price_session(t, samples, BERLIN)) == [("ENERGY", "2.000", "2.00")]


def test_samples_must_be_in_time_order_and_aware() -> None:
    t = tariff([priced([energy("1")])])
    pricer = IncrementalPricer(t, BERLIN)
    start = local(MONDAY, 10)
    pricer.add(Sample(at=start, energy_wh=0))
    with pytest.raises(SessionTraceError, match="time order"):
        pricer.add(Sample(at=start - timedelta(seconds=1), energy_wh=10))
    with pytest.raises(SessionTraceError, match="timezone-aware"):
        pricer.add(Sample(at=datetime(2024, 1, 8, 11), energy_wh=10))
    with pytest.raises(SessionTraceError, match="energy_wh must be an integer"):
        pricer.add(Sample(at=start, energy_wh=1.5))  # type: ignore[arg-type]
    with pytest.raises(SessionTraceError, match="unknown time zone"):
        IncrementalPricer(t, "Mars/Olympus")


def test_equal_timestamps_are_a_status_change_without_time() -> None:
    t = tariff([priced([charging_time(60), parking_time(60)])])
    start = local(MONDAY, 10)
    samples = [
        Sample(at=start, energy_wh=0),
        Sample(at=start + timedelta(minutes=1), energy_wh=10),
        Sample(at=start + timedelta(minutes=1), energy_wh=10, charging=False),
        Sample(at=start + timedelta(minutes=3), energy_wh=10, charging=False),
    ]
    assert line_amounts(price_session(t, samples, BERLIN)) == [
        ("TIME", "1.00", "1.00"),
        ("PARKING_TIME", "2.00", "2.00"),
    ]


def test_a_single_sample_costs_the_flat_fee_and_the_minimum() -> None:
    t = tariff(
        [priced([{"type": "FLAT", "price": "0.35", "step_size": 1}, energy(1)])],
        min_price={"excl_vat": 1},
    )
    b = price_session(t, [Sample(at=local(MONDAY, 10), energy_wh=123)], BERLIN)
    assert line_amounts(b) == [("FLAT", "1", "0.35"), ("MIN_PRICE", "1", "0.65")]


def test_unknown_current_does_not_match_current_restrictions() -> None:
    t = tariff([priced([energy(1)], min_current=16), priced([energy(2)])])
    with_current = quick_quote(t, 1, 10, current_a=Decimal(16))
    without = quick_quote(t, 1, 10)
    assert (totals(with_current)[0], totals(without)[0]) == ("1.00", "2.00")


def test_power_bounds_use_reported_power_else_the_average() -> None:
    t = tariff([priced([energy(1)], max_power=11), priced([energy(2)])])
    assert totals(quick_quote(t, 11, 60))[0] == "22.00"  # 11 kW average: not below 11
    assert totals(quick_quote(t, "10.999", 60))[0] == "11.00"
    assert totals(quick_quote(t, 11, 60, power_kw=Decimal("7.4")))[0] == "11.00"


def test_lines_without_vat_count_as_is_in_the_total_incl_vat() -> None:
    t = tariff([priced([energy("0.30", vat=19), {"type": "FLAT", "price": 1, "step_size": 1}])])
    j = breakdown_to_json(quick_quote(t, 10, 60))
    assert (j["total_excl_vat"], j["total_incl_vat"]) == ("4.00", "4.57")
    assert j["lines"][1]["vat_rate"] is None
    assert j["lines"][1]["amount_incl_vat"] == "1.00"


def test_a_minimum_without_incl_vat_uses_the_sessions_vat_rate() -> None:
    t = tariff([priced([energy("0.10", vat=20)])], min_price={"excl_vat": 5})
    assert totals(quick_quote(t, 10, 60)) == ("5.00", "6.00")


@pytest.mark.parametrize(
    ("currency", "expected"),
    [("EUR", ("1.23", "1.48")), ("JPY", ("1", "1")), ("KWD", ("1.235", "1.481"))],
)
def test_amounts_have_the_currencys_decimals(currency: str, expected: tuple[str, str]) -> None:
    t = tariff([priced([energy("0.2469", vat=20)])], currency=currency)
    b = quick_quote(t, 5, 60)
    assert totals(b) == expected
    assert b.total_due().minor == int(expected[1].replace(".", ""))


def test_jpy_session_rounds_to_whole_yen() -> None:
    t = tariff([priced([energy(55, vat=10), charging_time(300)])], currency="JPY")
    j = breakdown_to_json(quick_quote(t, "20.5", 45))
    assert [line["amount_excl_vat"] for line in j["lines"]] == ["1128", "225"]
    # 1127.5 + 225 = 1352.5 excl.; 1240.25 + 225 (TIME states no VAT) incl.
    assert (j["total_excl_vat"], j["total_incl_vat"]) == ("1353", "1465")


def test_line_amounts_add_up_to_the_totals_exactly() -> None:
    t = tariff(
        [
            priced(
                [
                    energy("0.333", vat="19"),
                    {"type": "TIME", "price": "0.77", "vat": "7", "step_size": 1},
                    {"type": "FLAT", "price": "0.005", "vat": "19", "step_size": 1},
                ]
            )
        ]
    )
    b = quick_quote(t, "12.345", 47)
    assert sum(line.amount_excl_vat for line in b.lines) == b.total_excl_vat
    assert sum(line.amount_incl_vat or 0 for line in b.lines) == b.total_incl_vat
