"""Numbers for people: money, energy, power, times, in the driver's language."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_date, format_time, format_timedelta
from babel.numbers import format_currency, format_decimal

from plugpay.domain.money import Money
from plugpay.domain.tariff.display import line_unit_price
from plugpay.web.i18n import N_

# Parsed once: babel would parse the locale name on every call, and the live
# page formats a few amounts for every meter reading of every session.
_LOCALES = {"de": Locale.parse("de_DE"), "en": Locale.parse("en_GB")}


def _locale(lang: str) -> Locale:
    return _LOCALES["de"] if lang == "de" else _LOCALES["en"]


@functools.lru_cache(maxsize=4096)
def money(minor: int, currency: str, lang: str) -> str:
    amount = Money(minor, currency).to_decimal()
    return str(format_currency(amount, currency, locale=_locale(lang)))


def amount(text: str | None, currency: str, lang: str) -> str:
    """A decimal amount as stored on a receipt line ("0.59") with its currency sign."""
    if text is None:
        return "–"
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    return str(format_currency(value, currency, locale=_locale(lang)))


def number(text: str | None, lang: str) -> str:
    """A decimal quantity ("0.039") in the driver's notation ("0,039")."""
    if text is None:
        return "–"
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    return str(format_decimal(value, locale=_locale(lang), decimal_quantization=False))


@functools.lru_cache(maxsize=4096)
def kwh(wh: int, lang: str) -> str:
    value = (Decimal(wh) / 1000).quantize(Decimal("0.01"))
    return f"{format_decimal(value, format='#,##0.00', locale=_locale(lang))} kWh"


@functools.lru_cache(maxsize=1024)
def kw(watts: int | None, lang: str) -> str:
    if watts is None:
        return "–"
    value = (Decimal(watts) / 1000).quantize(Decimal("0.1"))
    return f"{format_decimal(value, format='#,##0.0', locale=_locale(lang))} kW"


def when(at: datetime | None, lang: str) -> str:
    """A moment on a receipt, in the time zone it carries: "22 Nov 2026, 14:05"."""
    if at is None:
        return "–"
    locale = _locale(lang)
    return f"{format_date(at, 'medium', locale=locale)}, {format_time(at, 'HH:mm', locale=locale)}"


def next_change(at: datetime, zone: str, lang: str, now: datetime | None = None) -> str:
    """When a price changes, on the charger's clock: "17:00" today, else with its day
    ("Fri, 4 Dec, 07:00")."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    there, today = at.astimezone(tz), (now or datetime.now(UTC)).astimezone(tz)
    locale = _locale(lang)
    clock = str(format_time(there, "HH:mm", locale=locale))
    if there.date() == today.date():
        return clock
    return f"{format_date(there, 'EEE, d MMM', locale=locale)}, {clock}"


def month(text: str, lang: str) -> str:
    """ "2026-12" as the language names it: "December 2026", "Dezember 2026"."""
    try:
        first = date.fromisoformat(f"{text}-01")
    except ValueError:
        return text
    return str(format_date(first, "LLLL y", locale=_locale(lang)))


def unit_price(line: Mapping[str, object], currency: str, lang: str) -> str | None:
    """A receipt line's unit price as the price page shows it; None where it has none
    (a session fee, an adjustment, a receipt from before unit prices were kept)."""
    text, vat = line.get("unit_price"), line.get("vat_rate")
    if text is None:
        return None
    try:
        price = Decimal(str(text))
        rate = Decimal(str(vat)) if vat is not None else None
    except InvalidOperation:
        return None
    return line_unit_price(str(line.get("unit", "")), price, rate, currency, lang)


def local(at: datetime | None, zone: str, lang: str) -> str:
    """A moment in the time zone of the charger, which it names: "3 Dec 2026, 13:05 CET"."""
    if at is None:
        return "–"
    try:
        there = at.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        there = at.astimezone(UTC)
    return f"{when(there, lang)} {there.tzname()}"


def ago(at: datetime | str | None, lang: str, now: datetime | None = None) -> str:
    """How long ago ``at`` was, in words: "12 seconds ago", "vor 2 Minuten"."""
    moment = _moment(at)
    if moment is None:
        return "–"
    # Under a second reads as one second ago (babel would say "0 seconds").
    delta = min(moment - (now or datetime.now(UTC)), timedelta(seconds=-1))
    return format_timedelta(delta, add_direction=True, locale=_locale(lang))


def _moment(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def elapsed(start: datetime | str | None, end: datetime | str | None = None) -> str:
    """How long since ``start`` (until ``end`` or now), the way the page's clock shows it:
    mm:ss, or h:mm:ss from one hour on. The browser keeps it ticking."""
    began = _moment(start)
    if began is None:
        return "–"
    finished = _moment(end) or datetime.now(UTC)
    seconds = max(0, int((finished - began).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes:02}:{secs:02}"


def vat_summary(lines: list[dict[str, Any]], currency: str) -> list[dict[str, Any]]:
    """Receipt lines grouped by VAT rate: rate, net, VAT and gross per rate, as Decimal strings.

    Lines without a single rate (no VAT, or an adjustment across rates) count towards the
    rate of the lines they adjust when there is only one rate, else they are left out."""
    groups: dict[str, list[Decimal]] = {}
    loose = [Decimal(0), Decimal(0)]
    for line in lines:
        try:
            excl = Decimal(str(line.get("amount_excl_vat")))
            incl = Decimal(str(line.get("amount_incl_vat") or line.get("amount_excl_vat")))
        except InvalidOperation:
            continue
        rate = line.get("vat_rate")
        target = groups.setdefault(str(rate), [Decimal(0), Decimal(0)]) if rate else loose
        target[0] += excl
        target[1] += incl
    if len(groups) == 1 and any(loose):
        only = next(iter(groups.values()))
        only[0] += loose[0]
        only[1] += loose[1]
    exponent = Money(0, currency).to_decimal().as_tuple().exponent
    quantum = Decimal(1).scaleb(exponent if isinstance(exponent, int) else -2)
    return [
        {
            "rate": rate,
            "excl": str(net.quantize(quantum)),
            "vat": str((gross - net).quantize(quantum)),
            "incl": str(gross.quantize(quantum)),
        }
        for rate, (net, gross) in sorted(groups.items(), key=lambda item: Decimal(item[0]))
    ]


PLUGS = {
    "IEC_62196_T1": N_("Type 1"),
    "IEC_62196_T1_COMBO": "CCS1",
    "IEC_62196_T2": N_("Type 2"),
    "IEC_62196_T2_COMBO": "CCS2",
    "IEC_62196_T3A": N_("Type 3A"),
    "IEC_62196_T3C": N_("Type 3C"),
    "CHADEMO": "CHAdeMO",
    "CHAOJI": "ChaoJi",
    "GBT_AC": "GB/T AC",
    "GBT_DC": "GB/T DC",
    "TESLA_R": "Tesla Roadster",
    "TESLA_S": "Tesla",
    "SAE_J3400": "NACS (J3400)",
    "DOMESTIC_F": "Schuko",
    "NEMA_5_20": "NEMA 5-20",
    "NEMA_14_50": "NEMA 14-50",
}


def plug(standard: str | None) -> str | None:
    """A plug's everyday name ("Type 2", "CCS2") from its OCPI ConnectorType, in
    English (the page translates it: "Typ 2")."""
    return PLUGS.get(standard, standard) if standard else None
