"""The prices a driver reads before starting, from one tariff, in English or German.

Structured items, not markup: the web layer lays them out. Order: per kWh
(ENERGY), charging time (TIME), per session (FLAT), idle fee (PARKING_TIME),
then minimum and maximum price. Amounts include VAT when the tariff states it.
Charging and idle time are shown per minute when that price is a round figure
(at most one decimal more than the currency has, e.g. 0.05 €/min), otherwise
per hour. Each item's note summarises its restrictions ("18:00-22:00",
"after 60 min") and its billing step. The worked example is priced by the
same engine as the bill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal

from babel.numbers import format_currency, format_decimal, format_percent

from plugpay.domain.money import currency_exponent, round_decimal
from plugpay.domain.tariff.display_text import TEXTS, Texts, restriction_notes
from plugpay.domain.tariff.model import Dimension, Price, PriceComponent, Tariff
from plugpay.domain.tariff.now import price_now
from plugpay.domain.tariff.pricing import quote
from plugpay.domain.tariff.session import site_instant

_ORDER = (Dimension.ENERGY, Dimension.TIME, Dimension.FLAT, Dimension.PARKING_TIME)
_SIXTY = Decimal(60)


@dataclass(frozen=True, slots=True)
class DisplayItem:
    """One price as shown: ``label`` ("Energy"), ``amount`` ("€0.47 / kWh"), ``note``."""

    kind: str
    label: str
    amount: str
    note: str = ""
    # Of several prices of one kind (time of use), the one a charge started now gets.
    now: bool = False


@dataclass(frozen=True, slots=True)
class TariffDisplay:
    items: tuple[DisplayItem, ...]
    example: str
    alt_text: str | None = None
    alt_url: str | None = None
    # When the price a charge started now gets changes next (UTC), if it ever does.
    changes_at: datetime | None = None


def display_tariff(
    tariff: Tariff,
    *,
    locale: str = "en",
    tz: tzinfo | str,
    example_start: datetime,
    example_kwh: Decimal = Decimal(20),
    example_minutes: int = 40,
    example_current_a: Decimal | None = None,
) -> TariffDisplay:
    """The driver-facing price texts of ``tariff`` (``locale`` "en" or "de").

    ``example_start`` is when the worked example starts (site-local when naive,
    read as :func:`.session.site_instant` says); usually "now", so time-of-use
    tariffs show what applies at the moment. Its minutes are elapsed time, also
    across a daylight saving change.
    ``example_current_a`` (e.g. the connector's rated current) lets elements
    restricted by current apply to the example; without it they do not.
    """
    texts = TEXTS["de" if locale.split("_")[0].split("-")[0] == "de" else "en"]
    currency = tariff.currency
    items: list[DisplayItem] = []
    applying = price_now(tariff, tz, site_instant(example_start, tz))
    for dimension in _ORDER:
        restricted_before = False  # an unrestricted price after restricted ones is the "else"
        several = sum(1 for e in tariff.elements if e.component(dimension) is not None) > 1
        for index, element in enumerate(tariff.elements):
            if element.is_reservation_only:
                continue
            component = element.component(dimension)
            if component is None:
                continue
            notes = restriction_notes(element.restrictions, texts)
            if not notes and restricted_before:
                notes.append(texts.otherwise)
            restricted_before = restricted_before or bool(notes)
            notes.extend(_component_notes(component, texts))
            items.append(
                DisplayItem(
                    kind=dimension.value,
                    label=texts.labels[dimension.value],
                    amount=_amount(component, currency, texts),
                    note=" · ".join(notes),
                    now=several and applying.elements.get(dimension) == index,
                )
            )
    for kind, bound in (("MIN_PRICE", tariff.min_price), ("MAX_PRICE", tariff.max_price)):
        if bound is not None:
            items.append(
                DisplayItem(
                    kind=kind,
                    label=texts.labels[kind],
                    amount=_money(_bound_shown(bound), currency, texts.locale),
                    note=texts.per_session,
                )
            )
    example = quote(
        tariff,
        example_kwh,
        example_minutes,
        0,
        start_local=example_start,
        tz=tz,
        current_a=example_current_a,
    )
    due = example.total_excl_vat if example.total_incl_vat is None else example.total_incl_vat
    example_text = texts.example.format(
        amount=_money(due, currency, texts.locale),
        kwh=format_decimal(example_kwh, locale=texts.locale),
        minutes=example_minutes,
    )
    alt = _alt_text(tariff, texts.locale)
    changes_at = applying.changes_at if any(item.now for item in items) else None
    return TariffDisplay(tuple(items), example_text, alt, tariff.tariff_alt_url, changes_at)


def _gross(price: Decimal, vat: Decimal | None) -> Decimal:
    return price if vat is None else price * (100 + vat) / 100


def _bound_shown(bound: Price) -> Decimal:
    return bound.excl_vat if bound.incl_vat is None else bound.incl_vat


def _amount(component: PriceComponent, currency: str, texts: Texts) -> str:
    price = _gross(component.price, component.vat)
    if price == 0:
        return texts.free
    dimension = component.type
    if dimension is Dimension.ENERGY:
        return f"{unit_price_text(price, currency, texts.locale)} / kWh"
    if dimension is Dimension.FLAT:
        return _money(price, currency, texts.locale)
    per_minute = price / _SIXTY
    if round_decimal(per_minute, currency_exponent(currency) + 1) == per_minute:
        return f"{unit_price_text(per_minute, currency, texts.locale)} / {texts.minute}"
    return f"{unit_price_text(price, currency, texts.locale)} / {texts.hour}"


def line_unit_price(
    unit: str, unit_price: Decimal, vat: Decimal | None, currency: str, locale: str = "en"
) -> str | None:
    """A receipt line's unit price as the price page shows it (with VAT when the line
    has a rate): per kWh, per minute or per hour; None for a session fee."""
    texts = TEXTS.get(locale, TEXTS["en"])
    price = _gross(unit_price, vat)
    if unit == "kWh":
        return f"{unit_price_text(price, currency, texts.locale)} / kWh"
    if unit != "min":
        return None
    per_minute = price / _SIXTY
    if round_decimal(per_minute, currency_exponent(currency) + 1) == per_minute:
        return f"{unit_price_text(per_minute, currency, texts.locale)} / {texts.minute}"
    return f"{unit_price_text(price, currency, texts.locale)} / {texts.hour}"


def _component_notes(component: PriceComponent, texts: Texts) -> list[str]:
    notes: list[str] = []
    step = component.step_size
    if component.type is Dimension.ENERGY and step > 1:
        kwh = format_decimal(Decimal(step) / 1000, locale=texts.locale)
        notes.append(texts.billed_per.format(unit=f"{kwh} kWh"))
    elif component.type in (Dimension.TIME, Dimension.PARKING_TIME) and step > 60:
        minutes = Decimal(step) / _SIXTY
        if minutes == minutes.to_integral_value():
            amount = f"{format_decimal(minutes, locale=texts.locale)} {texts.minute}"
        else:
            amount = f"{step} s"
        notes.append(texts.billed_per.format(unit=amount))
    if component.vat is not None and component.price:
        rate = format_percent(component.vat / 100, locale=texts.locale, decimal_quantization=False)
        notes.append(texts.incl_vat.format(rate=rate))
    return notes


def unit_price_text(value: Decimal, currency: str, locale: str) -> str:
    """A unit price: up to two decimals more than the currency has, no trailing zeros."""
    places = currency_exponent(currency)
    shown = round_decimal(value, places + 2)
    for extra in range(3):
        candidate = round_decimal(shown, places + extra)
        if candidate == shown:
            shown = candidate
            break
    return format_currency(shown, currency, locale=locale, decimal_quantization=False)


def _money(value: Decimal, currency: str, locale: str) -> str:
    rounded = round_decimal(value, currency_exponent(currency))
    return format_currency(rounded, currency, locale=locale)


def _alt_text(tariff: Tariff, locale: str) -> str | None:
    """The tariff's own text in the driver's language, else in English, else the first."""
    texts = tariff.tariff_alt_text
    for language in (locale, "en"):
        for text in texts:
            if text.language.lower() == language:
                return text.text
    return texts[0].text if texts else None
