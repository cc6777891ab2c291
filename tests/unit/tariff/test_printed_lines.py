"""One rounding rule from the price page to the receipt, on every example tariff (the
OCPI specification's and plugpay's own): the receipt's lines add up to its totals as
printed, and a session fee is the very figure the price page showed (0.50 + 19 % VAT
is €0.60 on both, never €0.59 on the receipt)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugpay.domain.money import currency_exponent, round_decimal
from plugpay.domain.tariff import parse_tariff
from plugpay.domain.tariff.model import Dimension, Tariff
from plugpay.domain.tariff.pricing import quote

HERE = Path(__file__).resolve().parent
FILES = sorted((HERE / "ocpi_examples").glob("*.json")) + sorted(
    (HERE.parents[2] / "infra" / "examples").glob("*.json")
)
TARIFFS = [(p.name, parse_tariff(p.read_text())) for p in FILES]


def shown_fees(tariff: Tariff, with_vat: bool) -> set[Decimal]:
    """The session fees the price page shows (display.py: the price with its VAT,
    rounded half-up to the currency)."""
    places = currency_exponent(tariff.currency)
    fees = set()
    for element in tariff.elements:
        for c in element.price_components:
            if c.type is Dimension.FLAT:
                gross = c.price * (100 + c.vat) / 100 if with_vat and c.vat is not None else c.price
                fees.add(round_decimal(gross, places))
    return fees


@pytest.mark.parametrize(("name", "tariff"), TARIFFS, ids=[n for n, _ in TARIFFS])
@settings(max_examples=80, deadline=None)
@given(
    wh=st.integers(0, 90_000),
    minutes=st.integers(1, 600),
    parking=st.integers(0, 300),
    hour=st.integers(0, 23),
)
def test_receipt_lines_add_up_as_printed_and_the_fee_is_the_shown_one(
    name: str, tariff: Tariff, wh: int, minutes: int, parking: int, hour: int
) -> None:
    breakdown = quote(
        tariff,
        Decimal(wh) / 1000,
        Decimal(minutes),
        Decimal(parking),
        start_local=datetime(2026, 11, 23, hour, 5),
        tz="Europe/Berlin",
    )
    lines = breakdown.lines
    assert sum((line.amount_excl_vat for line in lines), Decimal(0)) == breakdown.total_excl_vat
    if breakdown.total_incl_vat is not None:
        gross = sum((line.amount_incl_vat or Decimal(0) for line in lines), Decimal(0))
        assert gross == breakdown.total_incl_vat
    adjusted = any(line.dimension in ("MIN_PRICE", "MAX_PRICE") for line in lines)
    for line in lines:
        if line.dimension != "FLAT" or adjusted:
            continue
        assert line.amount_excl_vat in shown_fees(tariff, with_vat=False), name
        if line.amount_incl_vat is not None:
            assert line.amount_incl_vat in shown_fees(tariff, with_vat=True), name
