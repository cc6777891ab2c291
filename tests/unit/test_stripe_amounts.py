"""Plugpay's ISO 4217 minor units in Stripe's units and back, one rule per row.

The rules are Stripe's, from https://docs.stripe.com/currencies: "Minor units in
API amounts", "Zero-decimal currencies", "Three-decimal currencies" and
"Special cases" (and Stripe's support note on fractional ISK, 2023).
"""

from __future__ import annotations

import pytest

from plugpay.domain.money import CURRENCY_EXPONENTS
from plugpay.payments.stripe_amounts import (
    STRIPE_UNITS,
    from_stripe_amount,
    minor_step,
    to_stripe_amount,
)
from plugpay.services.ports.payments import AmountNotRepresentable

# (currency, plugpay's minor units, Stripe's amount, the rule)
ROUND_TRIPS = [
    ("EUR", 1050, 1050, "two-decimal: the minor unit, 10.50 EUR is 1050"),
    ("USD", 1, 1, "two-decimal: the minor unit, 0.01 USD is 1"),
    ("JPY", 500, 500, "zero-decimal: ¥500 is 500, no multiplying by 100"),
    ("KRW", 12345, 12345, "zero-decimal"),
    ("CLP", 990, 990, "zero-decimal"),
    ("XOF", 5000, 5000, "zero-decimal"),
    ("MGA", 1200, 12, "zero-decimal at Stripe, two decimals in ISO 4217: 12.00 MGA is 12"),
    ("ISK", 5, 500, "special case: zero-decimal, passed with two decimals; 5 ISK is 500"),
    ("UGX", 5, 500, "special case: zero-decimal, passed with two decimals; 5 UGX is 500"),
    ("HUF", 1045, 1045, "special case: zero-decimal for payouts only, charges take two"),
    ("TWD", 1099, 1099, "special case: zero-decimal for payouts only, charges take two"),
    ("KWD", 5120, 5120, "three-decimal: 5.120 KWD is 5120, last digit 0"),
    ("BHD", 1000, 1000, "three-decimal"),
    ("JOD", 10, 10, "three-decimal"),
    ("OMR", 990, 990, "three-decimal"),
    ("TND", 12340, 12340, "three-decimal"),
]


@pytest.mark.parametrize(("currency", "minor", "stripe", "rule"), ROUND_TRIPS)
def test_amounts_go_to_stripe_and_back(currency: str, minor: int, stripe: int, rule: str) -> None:
    assert to_stripe_amount(minor, currency) == stripe, rule
    assert from_stripe_amount(stripe, currency) == minor, rule


def test_the_currency_code_may_be_in_stripes_lower_case() -> None:
    assert to_stripe_amount(5, "isk") == 500
    assert from_stripe_amount(500, "isk") == 5


def test_nothing_is_zero_everywhere() -> None:
    for currency in ("EUR", "JPY", "ISK", "MGA", "KWD"):
        assert to_stripe_amount(0, currency) == 0
        assert from_stripe_amount(0, currency) == 0


# (currency, plugpay's minor units Stripe cannot take, the multiple it takes, the rule)
REFUSED = [
    ("KWD", 5124, 10, "three-decimal: 5.124 KWD must be rounded to 5.120 or 5.130"),
    ("BHD", 1, 10, "three-decimal: the least-significant digit must be 0"),
    ("OMR", 995, 10, "three-decimal"),
    ("MGA", 1250, 100, "zero-decimal at Stripe: 12.50 MGA has no Stripe amount"),
]


@pytest.mark.parametrize(("currency", "minor", "step", "rule"), REFUSED)
def test_what_stripe_cannot_take_is_refused_not_rounded(
    currency: str, minor: int, step: int, rule: str
) -> None:
    with pytest.raises(AmountNotRepresentable, match=f"multiples of {step}") as refused:
        to_stripe_amount(minor, currency)
    assert (refused.value.currency, refused.value.step_minor) == (currency, step), rule


@pytest.mark.parametrize(("amount", "currency"), [(550, "ISK"), (101, "UGX")])
def test_a_fractional_amount_from_stripe_is_refused_not_rounded(amount: int, currency: str) -> None:
    # Fractional ISK charges predate 2023-04-14; plugpay's minor units cannot hold them.
    with pytest.raises(AmountNotRepresentable, match="not a whole number"):
        from_stripe_amount(amount, currency)


@pytest.mark.parametrize("currency", ["IQD", "LYD", "CLF", "UYW", "UYI"])
def test_currencies_stripe_has_no_units_for_are_refused(currency: str) -> None:
    # ISO 4217 gives them 3, 4 or 0 decimals; Stripe lists no way to write them.
    with pytest.raises(AmountNotRepresentable, match="does not take") as refused:
        to_stripe_amount(1000, currency)
    assert refused.value.step_minor == 0


def test_a_code_that_is_no_currency_is_refused() -> None:
    with pytest.raises(AmountNotRepresentable, match="not an ISO 4217 currency"):
        to_stripe_amount(100, "XYZ")


def test_the_refusal_is_a_value_error() -> None:
    # Callers that check their input generically catch it as one.
    with pytest.raises(ValueError, match="KWD"):
        to_stripe_amount(5124, "KWD")


@pytest.mark.parametrize(
    ("currency", "step"),
    [("EUR", 1), ("JPY", 1), ("ISK", 1), ("UGX", 1), ("KWD", 10), ("MGA", 100)],
)
def test_the_multiple_of_minor_units_stripe_takes(currency: str, step: int) -> None:
    assert minor_step(currency) == step


def test_every_special_rule_names_a_currency_plugpay_knows() -> None:
    assert set(STRIPE_UNITS) <= set(CURRENCY_EXPONENTS)


def test_every_two_decimal_iso_currency_converts_one_to_one_unless_listed() -> None:
    plain = [c for c, e in CURRENCY_EXPONENTS.items() if e == 2 and c not in STRIPE_UNITS]
    assert plain  # most of them
    for currency in plain:
        assert to_stripe_amount(1999, currency) == 1999
        assert from_stripe_amount(1999, currency) == 1999
