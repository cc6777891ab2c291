"""The priced result of a session: receipt lines and totals.

Every amount is already rounded to the currency's minor unit, and each total
is exactly the sum of its lines, so what the driver reads line by line adds up
to what is captured. How: the exact total is rounded half-up and the line
amounts are allocated to add up to it (see :mod:`.settle`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from plugpay.domain.money import Money, currency_exponent

# Line dimensions besides the OCPI ones.
MIN_PRICE = "MIN_PRICE"
MAX_PRICE = "MAX_PRICE"
PROMOTION = "PROMOTION"

UNIT_KWH = "kWh"
UNIT_MINUTES = "min"
UNIT_SESSION = "session"


@dataclass(frozen=True, slots=True)
class PriceLine:
    """One receipt line.

    ``quantity`` is what was billed (after step_size), in ``unit``: kWh to the
    Wh, minutes to the hundredth, or 1 session; it is informative, the amount is
    computed from the exact quantity. ``unit_price`` is the tariff's price excl.
    VAT per kWh, per hour or per session (None for adjustment lines).
    ``amount_incl_vat`` is None when the tariff gives no VAT at all; ``vat_rate``
    is None on a line without a single VAT rate (no VAT stated, or an
    adjustment spanning several rates).
    """

    dimension: str
    quantity: Decimal
    unit: str
    unit_price: Decimal | None
    amount_excl_vat: Decimal
    vat_rate: Decimal | None
    amount_incl_vat: Decimal | None


@dataclass(frozen=True, slots=True)
class PriceBreakdown:
    currency: str
    lines: tuple[PriceLine, ...]
    total_excl_vat: Decimal
    total_incl_vat: Decimal | None

    @classmethod
    def from_lines(
        cls, currency: str, lines: tuple[PriceLine, ...], with_vat: bool
    ) -> PriceBreakdown:
        zero = Decimal(0).scaleb(-currency_exponent(currency))
        total_excl = sum((line.amount_excl_vat for line in lines), zero)
        total_incl: Decimal | None = None
        if with_vat:
            total_incl = sum(
                (line.amount_incl_vat for line in lines if line.amount_incl_vat is not None), zero
            )
        return cls(currency, lines, total_excl, total_incl)

    @property
    def has_vat(self) -> bool:
        return self.total_incl_vat is not None

    def total_due(self) -> Money:
        """What the driver pays: the total incl. VAT, or excl. VAT when the tariff gives none."""
        total = self.total_excl_vat if self.total_incl_vat is None else self.total_incl_vat
        return Money.from_decimal(total, self.currency)

    def with_line(self, line: PriceLine) -> PriceBreakdown:
        return PriceBreakdown.from_lines(self.currency, (*self.lines, line), self.has_vat)

    def replace_lines(self, lines: tuple[PriceLine, ...]) -> PriceBreakdown:
        return replace(self, lines=lines)


def format_amount(amount: Decimal, currency: str) -> str:
    """An amount in major units with exactly the currency's decimals ("5.00", "500", "-1.250")."""
    return str(Money.from_decimal(amount, currency).to_decimal())


def format_rate(rate: Decimal) -> str:
    """A VAT rate without trailing zeros: 10.0 -> "10", 5.20 -> "5.2"."""
    text = format(rate.normalize(), "f")
    return text


def format_quantity(quantity: Decimal) -> str:
    return format(quantity, "f")


def breakdown_to_json(breakdown: PriceBreakdown) -> dict[str, Any]:
    """The JSON shape of ``plugpay tariff quote --json`` (see INTERFACE.md); amounts as strings."""
    currency = breakdown.currency
    return {
        "currency": currency,
        "total_excl_vat": format_amount(breakdown.total_excl_vat, currency),
        "total_incl_vat": None
        if breakdown.total_incl_vat is None
        else format_amount(breakdown.total_incl_vat, currency),
        "lines": [
            {
                "dimension": line.dimension,
                "quantity": format_quantity(line.quantity),
                "unit": line.unit,
                "amount_excl_vat": format_amount(line.amount_excl_vat, currency),
                "vat_rate": None if line.vat_rate is None else format_rate(line.vat_rate),
                "amount_incl_vat": None
                if line.amount_incl_vat is None
                else format_amount(line.amount_incl_vat, currency),
            }
            for line in breakdown.lines
        ],
    }
