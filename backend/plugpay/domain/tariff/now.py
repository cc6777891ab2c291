"""Which of a tariff's prices applies to a session starting now, and until when.

A time-of-use tariff lists several energy prices; the driver should see which
one a charge started now gets, and when that changes next. "Now" is the start
of a session: no energy yet, no duration, power and current not known (so
elements restricted by them do not apply).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from plugpay.domain.tariff.model import Dimension, Tariff
from plugpay.domain.tariff.restrictions import Active, PricingPlan
from plugpay.domain.tariff.session import resolve_tz

# Look this far ahead for the next change; a weekly tariff changes within it.
HORIZON = timedelta(days=8)


@dataclass(frozen=True, slots=True)
class PriceNow:
    elements: dict[Dimension, int]  # the applying element's index, per priced dimension
    changes_at: datetime | None  # UTC; None when nothing changes within the horizon


def _elements(active: Active) -> dict[Dimension, int]:
    found = (active.energy, active.time, active.parking, active.flat)
    return {c.dimension: c.element_index for c in found if c is not None}


def price_now(
    tariff: Tariff,
    tz: tzinfo | str,
    at: datetime,
    elapsed: timedelta = timedelta(0),
    energy_wh: int = 0,
) -> PriceNow:
    """``at`` is aware (an instant); ``elapsed`` and ``energy_wh`` say how far a running
    session has come (a new one by default)."""
    plan = PricingPlan(tariff, resolve_tz(tz))
    start = (
        plan.duration_band(int(elapsed.total_seconds() * 1_000_000)),
        plan.kwh_band(energy_wh * 1_000_000),
        plan.power_band(None),
        plan.current_band(None),
    )
    if plan.calendar is None:
        return PriceNow(_elements(plan.active(((), *start))), None)
    flags, boundary = plan.calendar.state_at(at)
    now = _elements(plan.active((flags, *start)))
    while boundary - at <= HORIZON:
        flags, following = plan.calendar.state_at(boundary)
        if _elements(plan.active((flags, *start))) != now:
            return PriceNow(now, boundary)
        boundary = following
    return PriceNow(now, None)
