"""Whole-session pricing and quotes, all through the one engine in :mod:`.incremental`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from plugpay.domain.money import round_decimal
from plugpay.domain.tariff.breakdown import PriceBreakdown
from plugpay.domain.tariff.errors import SessionTraceError
from plugpay.domain.tariff.incremental import IncrementalPricer
from plugpay.domain.tariff.model import Tariff
from plugpay.domain.tariff.session import Sample, SessionTrace, resolve_tz, site_instant

_PERIOD_FIELDS = frozenset({"minutes", "kwh", "power_kw", "current_a", "charging"})


def price_session(
    tariff: Tariff,
    samples: Iterable[Sample] | SessionTrace,
    tz: tzinfo | str,
    started_at: datetime | None = None,
) -> PriceBreakdown:
    """The price of a session from its samples (see :mod:`.session` for their meaning)."""
    if isinstance(samples, SessionTrace):
        started_at = samples.started_at if started_at is None else started_at
        samples = samples.samples
    pricer = IncrementalPricer(tariff, tz, started_at)
    for sample in samples:
        pricer.add(sample)
    return pricer.breakdown()


def quote(
    tariff: Tariff,
    kwh: Decimal | int | str,
    minutes: int | Decimal,
    parking_minutes: int | Decimal = 0,
    *,
    start_local: datetime,
    tz: tzinfo | str,
    power_kw: Decimal | None = None,
    current_a: Decimal | None = None,
) -> PriceBreakdown:
    """The price of charging ``kwh`` evenly over ``minutes`` from ``start_local``, then parking.

    ``start_local`` is site-local wall time when naive (as typed on the command
    line; :func:`.session.site_instant` says which instant a time the clock
    repeats or skips means), or any aware datetime. Minutes are elapsed time,
    so a quote across a daylight saving change lasts exactly as long as a
    session would. Energy is rounded to whole Wh (half-up).
    """
    period: dict[str, Any] = {"minutes": minutes, "kwh": kwh, "charging": True}
    if power_kw is not None:
        period["power_kw"] = power_kw
    if current_a is not None:
        period["current_a"] = current_a
    periods = [period]
    if _number(parking_minutes, "parking_minutes") > 0:
        periods.append({"minutes": parking_minutes, "kwh": 0, "charging": False})
    return quote_periods(tariff, periods, start_local=start_local, tz=tz)


def quote_periods(
    tariff: Tariff,
    periods: Sequence[Mapping[str, Any]],
    *,
    start_local: datetime,
    tz: tzinfo | str,
) -> PriceBreakdown:
    """The price of a session given period by period, in order.

    Each period is ``{"minutes", "kwh", "power_kw"?, "current_a"?, "charging"?}``
    (``charging`` defaults to true); its energy is delivered evenly over it.
    Errors name the period and field, e.g. ``periods[1].kwh: must be >= 0``.
    """
    return price_session(tariff, quote_samples(periods, start_local=start_local, tz=tz), tz)


def quote_samples(
    periods: Sequence[Mapping[str, Any]], *, start_local: datetime, tz: tzinfo | str
) -> list[Sample]:
    """The samples a list of quote periods stands for (one per period start, one at the end).

    Their times are UTC: adding minutes to a local time would be wall-clock
    arithmetic (02:30 CEST + 60 min = 03:30 CET, two hours later).
    """
    zone = resolve_tz(tz)
    if not periods:
        raise SessionTraceError("periods: give at least one period")
    samples: list[Sample] = []
    at = site_instant(start_local, zone)
    total_kwh = Decimal(0)
    energy_wh = 0
    for index, period in enumerate(periods):
        path = f"periods[{index}]"
        if not isinstance(period, Mapping):
            raise SessionTraceError(f"{path}: must be an object")
        unknown = sorted(set(period) - _PERIOD_FIELDS)
        if unknown:
            raise SessionTraceError(f"{path}.{unknown[0]}: unknown field")
        minutes = _number(period.get("minutes"), f"{path}.minutes")
        kwh = _number(period.get("kwh"), f"{path}.kwh")
        power = period.get("power_kw")
        current = period.get("current_a")
        charging = period.get("charging", True)
        if not isinstance(charging, bool):
            raise SessionTraceError(f"{path}.charging: must be true or false")
        samples.append(
            Sample(
                at=at,
                energy_wh=energy_wh,
                charging=charging,
                power_w=None
                if power is None
                else int(round_decimal(_number(power, f"{path}.power_kw") * 1000, 0)),
                current_a=None if current is None else _number(current, f"{path}.current_a"),
            )
        )
        at = at + timedelta(microseconds=int(round_decimal(minutes * 60_000_000, 0)))
        total_kwh += kwh
        energy_wh = int(round_decimal(total_kwh * 1000, 0))
    samples.append(Sample(at=at, energy_wh=energy_wh, charging=False))
    return samples


def _number(value: object, path: str) -> Decimal:
    if value is None:
        raise SessionTraceError(f"{path}: is required")
    if isinstance(value, bool):
        raise SessionTraceError(f"{path}: must be a number")
    try:
        if isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, Decimal | int | str):
            number = Decimal(value)
        else:
            raise SessionTraceError(f"{path}: must be a number")
    except InvalidOperation:
        raise SessionTraceError(f"{path}: must be a number") from None
    if not number.is_finite():
        raise SessionTraceError(f"{path}: must be a finite number")
    if number < 0:
        raise SessionTraceError(f"{path}: must be >= 0")
    return number
