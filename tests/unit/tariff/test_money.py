"""Money: integer minor units, ISO 4217 exponents, one rounding rule."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugpay.domain.money import (
    Money,
    UnknownCurrency,
    allocate_rounded,
    currency_exponent,
    round_decimal,
    round_to_currency,
)


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [("EUR", 2), ("USD", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3), ("CLF", 4)],
)
def test_currency_exponents(currency: str, exponent: int) -> None:
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize("code", ["EUX", "eur", "XAU", "XXX", ""])
def test_unknown_currencies_are_errors(code: str) -> None:
    with pytest.raises(UnknownCurrency):
        currency_exponent(code)
    with pytest.raises(UnknownCurrency):
        Money(1, code)


@pytest.mark.parametrize(
    ("value", "currency", "rounded"),
    [
        ("0.125", "EUR", "0.13"),
        ("0.124999", "EUR", "0.12"),
        ("-0.125", "EUR", "-0.13"),
        ("2.5", "JPY", "3"),
        ("1.2345", "KWD", "1.235"),
        ("5.00", "EUR", "5.00"),
    ],
)
def test_rounding_is_half_up(value: str, currency: str, rounded: str) -> None:
    assert str(round_to_currency(Decimal(value), currency)) == rounded


def test_money_is_integer_minor_units() -> None:
    price = Money.from_decimal(Decimal("12.345"), "EUR")
    assert price == Money(1235, "EUR")
    assert str(price) == "12.35 EUR"
    assert price.to_decimal() == Decimal("12.35")
    assert Money.parse("12.50", "EUR") + Money(50, "EUR") == Money(1300, "EUR")
    assert -Money(5, "JPY") < Money.zero("JPY")
    assert Money.parse("500", "JPY").to_decimal() == Decimal(500)
    with pytest.raises(ValueError, match="more decimals"):
        Money.parse("1.005", "EUR")
    with pytest.raises(ValueError, match="not an amount"):
        Money.parse("twelve", "EUR")
    with pytest.raises(ValueError, match="cannot combine"):
        Money(1, "EUR") + Money(1, "USD")
    with pytest.raises(TypeError):
        Money(1.5, "EUR")  # type: ignore[arg-type]


amounts = st.lists(st.decimals(min_value=-1000, max_value=1000, places=6), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(amounts=amounts, places=st.sampled_from([0, 2, 3]))
def test_allocation_adds_up_to_the_rounded_total(amounts: list[Decimal], places: int) -> None:
    figures, total = allocate_rounded(amounts, places)
    assert total == round_decimal(sum(amounts, Decimal(0)), places)
    assert sum(figures, Decimal(0)) == total
    unit = Decimal(1).scaleb(-places)
    for figure, exact in zip(figures, amounts, strict=True):
        assert figure == round_decimal(figure, places)
        assert abs(figure - exact) < unit


def test_allocation_breaks_ties_towards_the_earlier_line() -> None:
    figures, total = allocate_rounded([Decimal("2.875"), Decimal("3.30"), Decimal("4.125")], 2)
    assert (figures, total) == (
        [Decimal("2.88"), Decimal("3.30"), Decimal("4.12")],
        Decimal("10.30"),
    )
