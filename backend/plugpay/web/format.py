"""Numbers for people: money, energy, power, in the driver's language."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency, format_decimal

from plugpay.domain.money import Money


def money(minor: int, currency: str, lang: str) -> str:
    amount = Money(minor, currency).to_decimal()
    return str(format_currency(amount, currency, locale="de_DE" if lang == "de" else "en_GB"))


def kwh(wh: int, lang: str) -> str:
    value = (Decimal(wh) / 1000).quantize(Decimal("0.01"))
    return f"{format_decimal(value, format='#,##0.00', locale=lang)} kWh"


def kw(watts: int | None, lang: str) -> str:
    if watts is None:
        return "–"
    value = (Decimal(watts) / 1000).quantize(Decimal("0.1"))
    return f"{format_decimal(value, format='#,##0.0', locale=lang)} kW"
