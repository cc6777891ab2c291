"""Plugpay's amounts (ISO 4217 minor units) in Stripe's units, and back.

Stripe's API takes an integer amount in "the currency's smallest unit", but its
idea of that unit is not always ISO 4217's (https://docs.stripe.com/currencies,
"Minor units in API amounts", "Zero-decimal currencies", "Three-decimal
currencies" and "Special cases"). Every amount that goes to Stripe or comes back
from it passes through :func:`to_stripe_amount` / :func:`from_stripe_amount`, so
the rules live in one table, :data:`STRIPE_UNITS`. An amount Stripe cannot take
is refused here, before any request, rather than rounded: what a driver pays is
decided by the tariff engine, not by the adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

from plugpay.domain.money import UnknownCurrency, currency_exponent
from plugpay.services.ports.payments import AmountNotRepresentable


@dataclass(frozen=True, slots=True)
class StripeUnit:
    """How Stripe writes amounts of one currency: with ``decimals`` decimals, and
    only in multiples of ``step`` (in Stripe's units)."""

    decimals: int
    step: int = 1


# "Zero-decimal currencies": the amount is in major units (¥500 is 500). All are
# zero-decimal in ISO 4217 too except MGA, which ISO gives two decimals; UGX is
# listed here by Stripe but written with two decimals (special cases, below).
_ZERO_DECIMAL = (
    "BIF",
    "CLP",
    "DJF",
    "GNF",
    "JPY",
    "KMF",
    "KRW",
    "MGA",
    "PYG",
    "RWF",
    "VND",
    "VUV",
    "XAF",
    "XOF",
    "XPF",
)

# "Three-decimal currencies": three decimals as in ISO 4217, "however, to ensure
# compatibility with Stripe's payments partners, these API calls require the
# least-significant (last) digit to be 0" (5.124 KWD cannot be charged; 5.120 can).
_THREE_DECIMAL = ("BHD", "JOD", "KWD", "OMR", "TND")

STRIPE_UNITS: dict[str, StripeUnit] = {
    **dict.fromkeys(_ZERO_DECIMAL, StripeUnit(decimals=0)),
    **dict.fromkeys(_THREE_DECIMAL, StripeUnit(decimals=3, step=10)),
    # Special cases. ISK: zero-decimal since 2023-04-14, but "to maintain backwards
    # compatibility, you must pass in amounts with two decimals… evenly divisible
    # by 100" (5 ISK is 500).
    "ISK": StripeUnit(decimals=2, step=100),
    # UGX: "became a zero-decimal currency, but backwards compatibility requires
    # you to represent it as a two-decimal value, where the decimal amount is
    # always 00" (5 UGX is 500).
    "UGX": StripeUnit(decimals=2, step=100),
    # HUF and TWD: zero-decimal for payouts only; "you can charge two-decimal
    # amounts", as ISO 4217 writes them.
    "HUF": StripeUnit(decimals=2),
    "TWD": StripeUnit(decimals=2),
}


def stripe_unit(currency: str) -> StripeUnit:
    """Stripe's unit for ``currency`` (ISO 4217, either case); AmountNotRepresentable
    when Stripe has no way to write it."""
    code = currency.upper()
    try:
        exponent = currency_exponent(code)
    except UnknownCurrency:
        raise AmountNotRepresentable(f"{currency!r} is not an ISO 4217 currency", code, 0) from None
    unit = STRIPE_UNITS.get(code)
    if unit is not None:
        return unit
    if exponent == 2:
        # Stripe's default: "amount values in the currency's minor unit", two decimals.
        return StripeUnit(decimals=2)
    # Three- or four-decimal currencies Stripe does not list (IQD, LYD, CLF, UYW)
    # and zero-decimal ones it does not take (UYI): no amount of them goes to Stripe.
    raise AmountNotRepresentable(
        f"Stripe does not take amounts in {code} ({exponent} decimals in ISO 4217)", code, 0
    )


def _ten_to(power: int) -> int:
    """10 ** ``power`` for ``power`` >= 0, as an int (the type checker cannot tell)."""
    return int(10**power)


def minor_step(currency: str) -> int:
    """The multiple of ISO minor units that Stripe can take (1 for EUR, 10 for KWD,
    100 for MGA)."""
    unit = stripe_unit(currency)
    shift = unit.decimals - currency_exponent(currency.upper())
    if shift >= 0:
        return max(1, unit.step // _ten_to(shift))
    return unit.step * _ten_to(-shift)


def to_stripe_amount(minor: int, currency: str) -> int:
    """``minor`` ISO 4217 minor units of ``currency`` as Stripe's ``amount``."""
    code = currency.upper()
    unit = stripe_unit(code)
    shift = unit.decimals - currency_exponent(code)
    if shift >= 0:
        amount = minor * _ten_to(shift)
    else:
        amount, rest = divmod(minor, _ten_to(-shift))
        if rest:
            raise _not_representable(minor, code)
    if amount % unit.step:
        raise _not_representable(minor, code)
    return amount


def from_stripe_amount(amount: int, currency: str) -> int:
    """Stripe's ``amount`` in ``currency`` as ISO 4217 minor units. An amount that
    has no exact value in minor units (a fractional ISK charge made before 2023)
    is refused, never rounded."""
    code = currency.upper()
    unit = stripe_unit(code)
    shift = unit.decimals - currency_exponent(code)
    if shift <= 0:
        return amount * _ten_to(-shift)
    minor, rest = divmod(amount, _ten_to(shift))
    if rest:
        raise AmountNotRepresentable(
            f"Stripe amount {amount} {code} is not a whole number of ISO 4217 minor units",
            code,
            minor_step(code),
        )
    return minor


def _not_representable(minor: int, code: str) -> AmountNotRepresentable:
    step = minor_step(code)
    return AmountNotRepresentable(
        f"Stripe takes {code} only in multiples of {step} minor units; {minor} is not one",
        code,
        step,
    )
