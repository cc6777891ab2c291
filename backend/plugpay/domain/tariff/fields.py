"""Typed readers for OCPI JSON values; every failure names the field path."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from plugpay.domain.tariff.errors import TariffError

_TIME_RE = re.compile(r"([0-1][0-9]|2[0-3]):[0-5][0-9]")
_DATE_RE = re.compile(r"([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")
_DATETIME_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?"
)


def path_join(base: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


def as_object(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TariffError(path, "must be an object")
    return value


def check_fields(obj: Mapping[str, Any], path: str, allowed: frozenset[str]) -> None:
    for key in obj:
        if key not in allowed:
            raise TariffError(path_join(path, str(key)), "unknown field")


def as_list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise TariffError(path, "must be a list")
    return list(value)


def as_string(value: object, path: str, *, max_length: int, min_length: int = 1) -> str:
    if not isinstance(value, str):
        raise TariffError(path, "must be a string")
    if not min_length <= len(value) <= max_length:
        if min_length == max_length:
            raise TariffError(path, f"must be {max_length} characters long")
        raise TariffError(path, f"must be {min_length} to {max_length} characters long")
    if not value.isprintable():
        raise TariffError(path, "must contain printable characters only")
    return value


def as_cistring(value: object, path: str, *, max_length: int, min_length: int = 1) -> str:
    text = as_string(value, path, max_length=max_length, min_length=min_length)
    if not text.isascii():
        raise TariffError(path, "must be printable ASCII")
    return text


def as_decimal(value: object, path: str) -> Decimal:
    """A JSON number as an exact Decimal; floats go through their shortest repr."""
    if isinstance(value, bool):
        raise TariffError(path, "must be a number")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        # Tolerated for hand-written tariffs; OCPI itself sends JSON numbers.
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise TariffError(path, "must be a number") from None
    else:
        raise TariffError(path, "must be a number")
    if not number.is_finite():
        raise TariffError(path, "must be a finite number")
    return number


def as_non_negative_decimal(value: object, path: str) -> Decimal:
    number = as_decimal(value, path)
    if number < 0:
        raise TariffError(path, "must be >= 0")
    return number


def as_int(value: object, path: str) -> int:
    if isinstance(value, bool):
        raise TariffError(path, "must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        number = Decimal(repr(value)) if isinstance(value, float) else value
        if number.is_finite() and number == number.to_integral_value():
            return int(number)
    raise TariffError(path, "must be an integer")


def as_non_negative_int(value: object, path: str) -> int:
    number = as_int(value, path)
    if number < 0:
        raise TariffError(path, "must be >= 0")
    return number


def as_time_of_day(value: object, path: str) -> time:
    text = as_string(value, path, max_length=5)
    if not _TIME_RE.fullmatch(text):
        raise TariffError(path, f"must be a time of day HH:MM (00:00 to 23:59), got {text!r}")
    return time(int(text[:2]), int(text[3:]))


def as_date(value: object, path: str) -> date:
    text = as_string(value, path, max_length=10)
    if not _DATE_RE.fullmatch(text):
        raise TariffError(path, f"must be a date YYYY-MM-DD, got {text!r}")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise TariffError(path, f"no such date: {text!r}") from None


def as_datetime(value: object, path: str) -> datetime:
    """OCPI DateTime: RFC 3339, UTC when no designator is given; returned in UTC."""
    text = as_string(value, path, max_length=35)
    match = _DATETIME_RE.fullmatch(text)
    if match is None:
        raise TariffError(
            path, f"must be an RFC 3339 timestamp like 2015-06-29T20:39:09Z, got {text!r}"
        )
    day, clock, fraction, zone = match.groups()
    micro = (fraction or "").ljust(6, "0")[:6]
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}.{micro}")
    except ValueError:
        raise TariffError(path, f"no such timestamp: {text!r}") from None
    if zone in (None, "Z"):
        return moment.replace(tzinfo=UTC)
    return datetime.fromisoformat(f"{day}T{clock}.{micro}{zone}").astimezone(UTC)


def format_datetime(moment: datetime) -> str:
    """UTC ``...Z`` text, with the fraction only when there is one."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "Z"
