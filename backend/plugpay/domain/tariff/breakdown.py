"""The priced result of a session: receipt lines and totals.

Every amount is already rounded to the currency's minor unit, and each total
is exactly the sum of its lines, so what the driver reads line by line adds up
to what is captured. How: the exact total is rounded half-up and the line
amounts are allocated to add up to it (see :mod:`.settle`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from plugpay.domain.money import Money

# Line dimensions besides the OCPI ones.
MIN_PRICE = "MIN_PRICE"
MAX_PRICE = "MAX_PRICE"
PROMOTION = "PROMOTION"

UNIT_KWH = "kWh"
UNIT_MINUTES = "min"
UNIT_SESSION = "session"


class PriceLine(msgspec.Struct, frozen=True):
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


class PriceBreakdown(msgspec.Struct, frozen=True):
    """Receipt lines and totals in one currency (msgspec Struct: cheap to build per update)."""

    currency: str
    lines: tuple[PriceLine, ...]
    total_excl_vat: Decimal
    total_incl_vat: Decimal | None

    @property
    def has_vat(self) -> bool:
        return self.total_incl_vat is not None

    def total_due(self) -> Money:
        """What the driver pays: the total incl. VAT, or excl. VAT when the tariff gives none."""
        total = self.total_excl_vat if self.total_incl_vat is None else self.total_incl_vat
        return Money.from_decimal(total, self.currency)

    def with_line(self, line: PriceLine) -> PriceBreakdown:
        """This breakdown plus an exact adjustment line (amounts already in minor units)."""
        incl = self.total_incl_vat
        if incl is not None:
            incl += line.amount_excl_vat if line.amount_incl_vat is None else line.amount_incl_vat
        return PriceBreakdown(
            self.currency,
            (*self.lines, line),
            self.total_excl_vat + line.amount_excl_vat,
            incl,
        )


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


def breakdown_to_record(breakdown: PriceBreakdown) -> dict[str, Any]:
    """What a settled session keeps: the JSON shape, each line with its ``unit_price``
    too (excl. VAT, per kWh, hour or session as the tariff says; null on adjustments),
    so that its receipt can print what each unit cost."""
    document = breakdown_to_json(breakdown)
    for shown, line in zip(document["lines"], breakdown.lines, strict=True):
        shown["unit_price"] = (
            None if line.unit_price is None else format(line.unit_price.normalize(), "f")
        )
    return document
