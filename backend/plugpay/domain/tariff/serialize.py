"""OCPI 2.2.1 Tariff JSON out: :func:`tariff_to_ocpi` and :func:`tariff_to_json`.

``parse_tariff(tariff_to_ocpi(t)) == t`` for every valid tariff ``t``. Numbers
stay ``Decimal`` in the dict (no float ever holds a price); ``tariff_to_json``
writes them as exact JSON numbers.
"""

from __future__ import annotations

from datetime import time
from typing import Any

import msgspec

from plugpay.domain.tariff.fields import format_datetime
from plugpay.domain.tariff.model import (
    Price,
    PriceComponent,
    Tariff,
    TariffElement,
    TariffRestrictions,
)

_ENCODER = msgspec.json.Encoder(decimal_format="number")


def tariff_to_ocpi(tariff: Tariff) -> dict[str, Any]:
    """The OCPI Tariff object as a dict; absent optional fields are left out."""
    out: dict[str, Any] = {}
    _put(out, "country_code", tariff.country_code)
    _put(out, "party_id", tariff.party_id)
    out["id"] = tariff.id
    out["currency"] = tariff.currency
    _put(out, "type", None if tariff.type is None else tariff.type.value)
    if tariff.tariff_alt_text:
        out["tariff_alt_text"] = [
            {"language": t.language, "text": t.text} for t in tariff.tariff_alt_text
        ]
    _put(out, "tariff_alt_url", tariff.tariff_alt_url)
    _put(out, "min_price", None if tariff.min_price is None else _price(tariff.min_price))
    _put(out, "max_price", None if tariff.max_price is None else _price(tariff.max_price))
    out["elements"] = [_element(e) for e in tariff.elements]
    if tariff.start_date_time is not None:
        out["start_date_time"] = format_datetime(tariff.start_date_time)
    if tariff.end_date_time is not None:
        out["end_date_time"] = format_datetime(tariff.end_date_time)
    _put(out, "energy_mix", None if tariff.energy_mix is None else dict(tariff.energy_mix))
    if tariff.last_updated is not None:
        out["last_updated"] = format_datetime(tariff.last_updated)
    return out


def tariff_to_json(tariff: Tariff) -> bytes:
    """The OCPI Tariff object as JSON bytes with exact decimal numbers."""
    return _ENCODER.encode(tariff_to_ocpi(tariff))


def _put(out: dict[str, Any], key: str, value: object) -> None:
    if value is not None:
        out[key] = value


def _price(price: Price) -> dict[str, Any]:
    out: dict[str, Any] = {"excl_vat": price.excl_vat}
    _put(out, "incl_vat", price.incl_vat)
    return out


def _element(element: TariffElement) -> dict[str, Any]:
    out: dict[str, Any] = {"price_components": [_component(c) for c in element.price_components]}
    if element.restrictions is not None:
        out["restrictions"] = _restrictions(element.restrictions)
    return out


def _component(component: PriceComponent) -> dict[str, Any]:
    out: dict[str, Any] = {"type": component.type.value, "price": component.price}
    _put(out, "vat", component.vat)
    out["step_size"] = component.step_size
    return out


def _hhmm(value: time | None) -> str | None:
    return None if value is None else value.strftime("%H:%M")


def _restrictions(r: TariffRestrictions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "start_time", _hhmm(r.start_time))
    _put(out, "end_time", _hhmm(r.end_time))
    _put(out, "start_date", None if r.start_date is None else r.start_date.isoformat())
    _put(out, "end_date", None if r.end_date is None else r.end_date.isoformat())
    for name in (
        "min_kwh", "max_kwh", "min_current", "max_current", "min_power", "max_power",
        "min_duration", "max_duration",
    ):  # fmt: skip
        _put(out, name, getattr(r, name))
    if r.day_of_week:
        out["day_of_week"] = [day.value for day in r.day_of_week]
    _put(out, "reservation", None if r.reservation is None else r.reservation.value)
    return out
