"""Money: an integer amount of minor units in an ISO 4217 currency.

No float ever holds money. Prices and intermediate results are ``Decimal``;
they become money through :func:`round_decimal` (directly, or via
:func:`round_to_currency` and :func:`allocate_rounded`), the one place where
the rounding mode is chosen: :data:`ROUNDING`, half-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

# The rounding mode of plugpay, for every amount of money and every figure shown
# to a person: half a minor unit or more rounds away from zero (0.125 -> 0.13,
# -0.125 -> -0.13). OCPI leaves rounding to law and contract; half-up is what
# drivers expect from a receipt.
ROUNDING = ROUND_HALF_UP


class UnknownCurrency(ValueError):
    """The code is not an active ISO 4217 currency with a minor-unit exponent."""


def _codes(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Active ISO 4217 currencies and their minor-unit exponent (ISO 4217 list one,
# 2025). Codes without minor units in ISO terms (precious metals, XDR, XXX, XTS)
# are not money here.
_EXPONENT_0 = _codes("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF")
_EXPONENT_3 = _codes("BHD IQD JOD KWD LYD OMR TND")
_EXPONENT_4 = _codes("CLF UYW")
_EXPONENT_2 = _codes(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL
    BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP
    DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR
    ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD
    MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN
    PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP
    STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES
    WST XCD XCG YER ZAR ZMW ZWG
    """
)

CURRENCY_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(_EXPONENT_0, 0),
    **dict.fromkeys(_EXPONENT_2, 2),
    **dict.fromkeys(_EXPONENT_3, 3),
    **dict.fromkeys(_EXPONENT_4, 4),
}

_ZERO = Decimal(0)
_QUANTA = {places: Decimal(1).scaleb(-places) for places in range(8)}


def currency_exponent(currency: str) -> int:
    """Number of decimals of the currency's minor unit (EUR 2, JPY 0, KWD 3)."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise UnknownCurrency(f"unknown ISO 4217 currency {currency!r}") from None


def is_currency(currency: str) -> bool:
    return currency in CURRENCY_EXPONENTS


def round_decimal(value: Decimal, places: int) -> Decimal:
    """Round ``value`` to ``places`` decimals with :data:`ROUNDING` (half-up).

    The single rounding function of plugpay: money, unit prices shown to a
    driver and displayed quantities all go through it.
    """
    quantum = _QUANTA.get(places) or Decimal(1).scaleb(-places)
    return value.quantize(quantum, ROUNDING)


def round_to_currency(value: Decimal, currency: str) -> Decimal:
    """Round an amount in major units to the currency's minor unit (half-up)."""
    return round_decimal(value, currency_exponent(currency))


def round_down(value: Decimal, places: int) -> Decimal:
    """``value`` rounded towards minus infinity; only :func:`allocate_rounded` needs it."""
    return value.quantize(_QUANTA.get(places) or Decimal(1).scaleb(-places), ROUND_FLOOR)


def allocate_rounded(
    amounts: Sequence[Decimal],
    places: int,
    floors: Sequence[Decimal] | None = None,
    remainders: Sequence[Decimal] | None = None,
) -> tuple[list[Decimal], Decimal]:
    """Round exact ``amounts`` to ``places`` decimals so that they add up to their rounded sum.

    The sum is rounded once, with :func:`round_decimal` (half-up); each amount
    is first rounded down, and the minor units still missing go one each to
    the amounts with the largest remainders (the earlier one on a tie). So
    every figure is within one minor unit of its exact value and the figures
    add up exactly to the rounded exact total (largest-remainder allocation).
    Callers that keep ``floors`` (``round_down(amount, places)``) and
    ``remainders`` (``amount - floor``) per amount may pass them to save work.
    Returns (figures, total).
    """
    quantum = _QUANTA.get(places) or Decimal(1).scaleb(-places)
    total = sum(amounts, _ZERO).quantize(quantum, ROUNDING)  # as round_decimal does
    if floors is None:
        floors = [round_down(amount, places) for amount in amounts]
    result = list(floors)
    missing = total - sum(result, _ZERO)
    if missing:
        if remainders is None:
            remainders = [amount - floor for amount, floor in zip(amounts, result, strict=True)]
        if missing == quantum:  # the common case; index() finds the earliest of equal remainders
            result[remainders.index(max(remainders))] += quantum
        else:
            count = int(missing.scaleb(places))
            # sorted() is stable, also in reverse: equal remainders keep the earlier first
            order = sorted(range(len(result)), key=remainders.__getitem__, reverse=True)
            for i in order[:count]:
                result[i] += quantum
    return result, total


def allocate_pinned(
    amounts: Sequence[Decimal],
    places: int,
    pinned: Sequence[bool],
    floors: Sequence[Decimal] | None = None,
    remainders: Sequence[Decimal] | None = None,
) -> tuple[list[Decimal], Decimal]:
    """:func:`allocate_rounded`, but the ``pinned`` amounts keep their own half-up
    rounding (a session fee shown as €0.60 stays €0.60 on the receipt) and the other
    figures take up the difference to the rounded total, each still within one minor
    unit of its exact value. Where they cannot, it is :func:`allocate_rounded`."""
    result, total = allocate_rounded(amounts, places, floors, remainders)
    if not any(pinned) or all(pinned):
        return result, total
    quantum = _QUANTA.get(places) or Decimal(1).scaleb(-places)
    if all(
        not pin or result[i] == amounts[i].quantize(quantum, ROUNDING)
        for i, pin in enumerate(pinned)
    ):
        return result, total  # the usual case: the fee kept its own rounding already
    fixed = {i: round_decimal(a, places) for i, a in enumerate(amounts) if pinned[i]}
    free = [i for i in range(len(amounts)) if not pinned[i]]
    base = [round_down(amounts[i], places) for i in free]
    missing = total - sum(fixed.values(), _ZERO) - sum(base, _ZERO)
    count = int(missing.scaleb(places))
    if not 0 <= count <= len(free):
        return result, total
    order = sorted(range(len(free)), key=lambda k: amounts[free[k]] - base[k], reverse=True)
    for k in order[:count]:
        base[k] += quantum
    if any(abs(base[k] - amounts[i]) >= quantum for k, i in enumerate(free)):
        return result, total
    pinned_result = list(result)
    for i, value in fixed.items():
        pinned_result[i] = value
    for k, i in enumerate(free):
        pinned_result[i] = base[k]
    return pinned_result, total


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An amount of money: integer minor units (cents, yen, fils) and a currency."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise TypeError("Money.minor must be an int of minor units")
        currency_exponent(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_decimal(cls, amount: Decimal, currency: str) -> Money:
        """Round ``amount`` (major units) half-up to the minor unit."""
        exponent = currency_exponent(currency)
        return cls(int(round_decimal(amount, exponent).scaleb(exponent)), currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """Exact major-unit text ("12.50") to money; extra decimals are an error, not rounded."""
        exponent = currency_exponent(currency)
        try:
            amount = Decimal(text)
        except ArithmeticError:
            raise ValueError(f"not an amount: {text!r}") from None
        if not amount.is_finite():
            raise ValueError(f"not an amount: {text!r}")
        scaled = amount.scaleb(exponent)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{text!r} has more decimals than {currency} allows ({exponent})")
        return cls(int(scaled), currency)

    @property
    def exponent(self) -> int:
        return currency_exponent(self.currency)

    def to_decimal(self) -> Decimal:
        """Amount in major units with exactly the currency's decimals (5.00, 500, 1.250)."""
        return Decimal(self.minor).scaleb(-self.exponent)

    def __str__(self) -> str:
        return f"{self.to_decimal()} {self.currency}"

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.minor >= other.minor

    def is_zero(self) -> bool:
        return self.minor == 0
