"""Quotes for ``plugpay tariff quote``: energy spread evenly, periods in order."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from tariff_cases import BERLIN, MONDAY, example, line_amounts, local, totals

from plugpay.domain.tariff import SessionTraceError, breakdown_to_json, quote, quote_periods
from plugpay.domain.tariff.pricing import quote_samples


def test_quote_json_has_the_interface_shape() -> None:
    b = quote(
        example("tariff_8_simple_025kwh.json"),
        Decimal(20),
        60,
        start_local=datetime(2024, 1, 8, 10),
        tz="Europe/Berlin",
    )
    assert breakdown_to_json(b) == {
        "currency": "EUR",
        "total_excl_vat": "5.00",
        "total_incl_vat": "5.50",
        "lines": [
            {
                "dimension": "ENERGY",
                "quantity": "20.000",
                "unit": "kWh",
                "amount_excl_vat": "5.00",
                "vat_rate": "10",
                "amount_incl_vat": "5.50",
            }
        ],
    }


def test_naive_start_is_site_local_time() -> None:
    t = example("tariff_14_step_size.json")
    naive = quote(t, 1, 35, start_local=datetime(2024, 1, 8, 16, 35), tz=BERLIN)
    aware_utc = quote(t, 1, 35, start_local=datetime(2024, 1, 8, 15, 35, tzinfo=UTC), tz=BERLIN)
    assert totals(naive) == totals(aware_utc) == ("1.30", None)


def test_periods_are_priced_in_order_with_their_power_and_current() -> None:
    periods: list[dict[str, Any]] = [
        {"minutes": 10, "kwh": 1, "power_kw": 6, "charging": True},
        {"minutes": 50, "kwh": 40, "power_kw": 48, "charging": True},
        {"minutes": "7.5", "kwh": 0.5, "power_kw": 4, "charging": True},
        {"minutes": 30, "kwh": 0, "charging": False},
    ]
    t = example("tariffrestriction_example_max_power.json")
    b = quote_periods(t, periods, start_local=local(MONDAY, 9), tz=BERLIN)
    assert totals(b)[0] == "20.30"
    current = [
        {"minutes": 60, "kwh": 10, "current_a": 16},
        {"minutes": 42, "kwh": 0, "charging": False},
    ]
    b = quote_periods(
        example("tariff_4_complex.json"), current, start_local=local(MONDAY, 9, 30), tz=BERLIN
    )
    assert line_amounts(b)[0] == ("TIME", "60.00", "1.00")


def test_quote_samples_spread_rounded_energy_without_drift() -> None:
    periods = [{"minutes": 1, "kwh": "0.0004"}] * 5
    samples = quote_samples(periods, start_local=local(MONDAY, 9), tz=BERLIN)
    assert [s.energy_wh for s in samples] == [0, 0, 1, 1, 2, 2]
    assert samples[-1].charging is False


@pytest.mark.parametrize(
    ("periods", "message"),
    [
        ([], "periods: give at least one period"),
        ([{"minutes": 10}], r"periods\[0\].kwh: is required"),
        (
            [{"minutes": 10, "kwh": 1}, {"minutes": -1, "kwh": 1}],
            r"periods\[1\].minutes: must be >= 0",
        ),
        ([{"minutes": 10, "kwh": "lots"}], r"periods\[0\].kwh: must be a number"),
        (
            [{"minutes": 10, "kwh": 1, "charging": "yes"}],
            r"periods\[0\].charging: must be true or false",
        ),
        ([{"minutes": 10, "kwh": 1, "volts": 230}], r"periods\[0\].volts: unknown field"),
        ([{"minutes": 10, "kwh": 1, "power_kw": True}], r"periods\[0\].power_kw: must be a number"),
        (["x"], r"periods\[0\]: must be an object"),
    ],
)
def test_bad_periods_are_refused_naming_the_field(periods: list[Any], message: str) -> None:
    with pytest.raises(SessionTraceError, match=message):
        quote_periods(
            example("tariff_1_simple_2hour.json"), periods, start_local=local(MONDAY, 9), tz=BERLIN
        )


def test_bad_quote_arguments_are_refused() -> None:
    t = example("tariff_1_simple_2hour.json")
    with pytest.raises(SessionTraceError, match="kwh: must be >= 0"):
        quote(t, Decimal(-1), 10, start_local=local(MONDAY, 9), tz=BERLIN)
    with pytest.raises(SessionTraceError, match="parking_minutes: must be >= 0"):
        quote(t, 1, 10, -5, start_local=local(MONDAY, 9), tz=BERLIN)
    with pytest.raises(SessionTraceError, match="unknown time zone"):
        quote(t, 1, 10, start_local=local(MONDAY, 9), tz="Nowhere/Special")
