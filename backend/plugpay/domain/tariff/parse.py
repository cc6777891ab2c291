"""OCPI 2.2.1 Tariff JSON in: :func:`parse_tariff`.

Strict where a mistake would mis-price a session (unknown fields, negative
prices, impossible restrictions, components that can never apply), lenient
where OCPI is noisy and nothing is priced (explicit ``null`` equals absent;
``country_code``, ``party_id`` and ``last_updated`` may be missing).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from plugpay.domain.money import is_currency
from plugpay.domain.tariff.errors import TariffError
from plugpay.domain.tariff.fields import (
    as_cistring,
    as_date,
    as_datetime,
    as_list,
    as_non_negative_decimal,
    as_non_negative_int,
    as_object,
    as_string,
    as_time_of_day,
    check_fields,
    path_join,
)
from plugpay.domain.tariff.model import (
    DayOfWeek,
    Dimension,
    DisplayText,
    Price,
    PriceComponent,
    ReservationRestriction,
    Tariff,
    TariffElement,
    TariffRestrictions,
    TariffType,
)
from plugpay.domain.tariff.validate import check_element, check_restrictions, check_tariff

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

_TARIFF_FIELDS = frozenset(
    {
        "country_code", "party_id", "id", "currency", "type", "tariff_alt_text",
        "tariff_alt_url", "min_price", "max_price", "elements", "start_date_time",
        "end_date_time", "energy_mix", "last_updated",
    }
)  # fmt: skip
_ELEMENT_FIELDS = frozenset({"price_components", "restrictions"})
_COMPONENT_FIELDS = frozenset({"type", "price", "vat", "step_size"})
_RESTRICTION_FIELDS = frozenset(
    {
        "start_time", "end_time", "start_date", "end_date", "min_kwh", "max_kwh",
        "min_current", "max_current", "min_power", "max_power", "min_duration",
        "max_duration", "day_of_week", "reservation",
    }
)  # fmt: skip
_PRICE_FIELDS = frozenset({"excl_vat", "incl_vat"})
_TEXT_FIELDS = frozenset({"language", "text"})


def parse_tariff(data: bytes | str | Mapping[str, Any]) -> Tariff:
    """Validate an OCPI 2.2.1 Tariff (JSON text or decoded object) into a :class:`Tariff`.

    Raises :class:`TariffError` whose message starts with the offending field
    path, e.g. ``elements[1].price_components[0].price: must be >= 0``.
    """
    if isinstance(data, bytes | str):
        try:
            decoded = json.loads(data, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as exc:
            raise TariffError("", f"not valid JSON: {exc}") from None
    else:
        decoded = data
    obj = as_object(decoded, "tariff")
    check_fields(obj, "", _TARIFF_FIELDS)
    tariff = Tariff(
        id=as_cistring(_required(obj, "id", ""), "id", max_length=36),
        currency=_currency(_required(obj, "currency", "")),
        elements=_elements(_required(obj, "elements", "")),
        country_code=_optional(obj, "country_code", _country_code),
        party_id=_optional(obj, "party_id", _party_id),
        type=_optional(obj, "type", _enum(TariffType)),
        tariff_alt_text=_optional(obj, "tariff_alt_text", _texts) or (),
        tariff_alt_url=_optional(obj, "tariff_alt_url", _url),
        min_price=_optional(obj, "min_price", _price),
        max_price=_optional(obj, "max_price", _price),
        start_date_time=_optional(obj, "start_date_time", as_datetime),
        end_date_time=_optional(obj, "end_date_time", as_datetime),
        energy_mix=_optional(obj, "energy_mix", as_object),
        last_updated=_optional(obj, "last_updated", as_datetime),
    )
    check_tariff(tariff)
    return tariff


def _required(obj: Mapping[str, Any], key: str, base: str) -> Any:
    value = obj.get(key)
    if value is None:
        raise TariffError(path_join(base, key), "is required")
    return value


def _optional(
    obj: Mapping[str, Any], key: str, read: Callable[[Any, str], T], base: str = ""
) -> T | None:
    value = obj.get(key)
    return None if value is None else read(value, path_join(base, key))


def _currency(value: object) -> str:
    code = as_string(value, "currency", max_length=3, min_length=3)
    if not is_currency(code):
        raise TariffError("currency", f"unknown ISO 4217 currency {code!r}")
    return code


def _country_code(value: object, path: str) -> str:
    code = as_cistring(value, path, max_length=2, min_length=2)
    if not code.isalpha():
        raise TariffError(path, "must be an ISO 3166 alpha-2 country code")
    return code


def _party_id(value: object, path: str) -> str:
    return as_cistring(value, path, max_length=3, min_length=3)


def _url(value: object, path: str) -> str:
    url = as_string(value, path, max_length=255)
    if not url.startswith(("https://", "http://")):
        raise TariffError(path, "must be an http(s) URL")
    return url


def _enum(kind: type[E]) -> Callable[[Any, str], E]:
    def read(value: object, path: str) -> E:
        names = ", ".join(member.value for member in kind)
        if not isinstance(value, str) or value not in kind.__members__:
            raise TariffError(path, f"must be one of {names}, got {value!r}")
        return kind(value)

    return read


def _texts(value: object, path: str) -> tuple[DisplayText, ...]:
    texts = []
    for index, item in enumerate(as_list(value, path)):
        item_path = path_join(path, index)
        obj = as_object(item, item_path)
        check_fields(obj, item_path, _TEXT_FIELDS)
        texts.append(
            DisplayText(
                language=as_string(
                    _required(obj, "language", item_path),
                    path_join(item_path, "language"),
                    max_length=2,
                    min_length=2,
                ),
                text=as_string(
                    _required(obj, "text", item_path),
                    path_join(item_path, "text"),
                    max_length=512,
                    min_length=0,
                ),
            )
        )
    return tuple(texts)


def _price(value: object, path: str) -> Price:
    obj = as_object(value, path)
    check_fields(obj, path, _PRICE_FIELDS)
    excl = as_non_negative_decimal(_required(obj, "excl_vat", path), path_join(path, "excl_vat"))
    incl = _optional(obj, "incl_vat", as_non_negative_decimal, path)
    if incl is not None and incl < excl:
        raise TariffError(path_join(path, "incl_vat"), "must be >= excl_vat")
    return Price(excl_vat=excl, incl_vat=incl)


def _elements(value: object) -> tuple[TariffElement, ...]:
    items = as_list(value, "elements")
    if not items:
        raise TariffError("elements", "must contain at least one tariff element")
    elements = []
    for index, item in enumerate(items):
        path = path_join("elements", index)
        obj = as_object(item, path)
        check_fields(obj, path, _ELEMENT_FIELDS)
        components_path = path_join(path, "price_components")
        raw_components = as_list(_required(obj, "price_components", path), components_path)
        if not raw_components:
            raise TariffError(components_path, "must contain at least one price component")
        element = TariffElement(
            price_components=tuple(
                _component(raw, path_join(components_path, i))
                for i, raw in enumerate(raw_components)
            ),
            restrictions=_optional(obj, "restrictions", _restrictions, path),
        )
        check_element(element, path)
        elements.append(element)
    return tuple(elements)


def _component(value: object, path: str) -> PriceComponent:
    obj = as_object(value, path)
    check_fields(obj, path, _COMPONENT_FIELDS)
    return PriceComponent(
        type=_enum(Dimension)(_required(obj, "type", path), path_join(path, "type")),
        price=as_non_negative_decimal(_required(obj, "price", path), path_join(path, "price")),
        step_size=as_non_negative_int(
            _required(obj, "step_size", path), path_join(path, "step_size")
        ),
        vat=_optional(obj, "vat", as_non_negative_decimal, path),
    )


def _restrictions(value: object, path: str) -> TariffRestrictions:
    obj = as_object(value, path)
    check_fields(obj, path, _RESTRICTION_FIELDS)
    days_path = path_join(path, "day_of_week")
    days = tuple(
        _enum(DayOfWeek)(day, path_join(days_path, i))
        for i, day in enumerate(_optional(obj, "day_of_week", as_list, path) or ())
    )
    restrictions = TariffRestrictions(
        start_time=_optional(obj, "start_time", as_time_of_day, path),
        end_time=_optional(obj, "end_time", as_time_of_day, path),
        start_date=_optional(obj, "start_date", as_date, path),
        end_date=_optional(obj, "end_date", as_date, path),
        min_kwh=_optional(obj, "min_kwh", as_non_negative_decimal, path),
        max_kwh=_optional(obj, "max_kwh", as_non_negative_decimal, path),
        min_current=_optional(obj, "min_current", as_non_negative_decimal, path),
        max_current=_optional(obj, "max_current", as_non_negative_decimal, path),
        min_power=_optional(obj, "min_power", as_non_negative_decimal, path),
        max_power=_optional(obj, "max_power", as_non_negative_decimal, path),
        min_duration=_optional(obj, "min_duration", as_non_negative_int, path),
        max_duration=_optional(obj, "max_duration", as_non_negative_int, path),
        day_of_week=days,
        reservation=_optional(obj, "reservation", _enum(ReservationRestriction), path),
    )
    check_restrictions(restrictions, path)
    return restrictions
