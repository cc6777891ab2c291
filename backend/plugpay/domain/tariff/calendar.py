"""Local-time restrictions: time of day, date and day of week, in the site's time zone.

The pricing engine asks two things: which calendar-restricted elements match
at an instant, and the next instant at which that answer may change. The
second is what lets a period be split exactly at 17:00 (or at a daylight
saving change) instead of being priced by whichever reading came first.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from plugpay.domain.tariff.model import TariffRestrictions

_DAY = 86_400
_MICRO = 1_000_000


def _seconds(moment: time) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


@dataclass(frozen=True, slots=True)
class CalendarRule:
    """The calendar part of one element's restrictions, ready for fast checks."""

    start_s: int | None
    end_s: int | None
    start_date: date | None
    end_date: date | None
    weekdays: frozenset[int]

    @classmethod
    def of(cls, r: TariffRestrictions) -> CalendarRule:
        end_s = None if r.end_time is None else (_seconds(r.end_time) or _DAY)
        return cls(
            start_s=None if r.start_time is None else _seconds(r.start_time),
            end_s=end_s,
            start_date=r.start_date,
            end_date=r.end_date,
            weekdays=frozenset(day.iso_index for day in r.day_of_week),
        )

    def matches(self, local: datetime) -> bool:
        """Each part is judged on the local date and time of the instant itself.

        A window past midnight (22:00-06:00) on FRIDAY therefore covers Friday
        22:00-24:00 and Friday 00:00-06:00; OCPI does not say otherwise.
        """
        day = local.date()
        if self.start_date is not None and day < self.start_date:
            return False
        if self.end_date is not None and day >= self.end_date:
            return False
        if self.weekdays and day.weekday() not in self.weekdays:
            return False
        if self.start_s is None and self.end_s is None:
            return True
        clock = (local.hour * 3600 + local.minute * 60 + local.second) * _MICRO + local.microsecond
        start = (self.start_s or 0) * _MICRO
        end = (_DAY if self.end_s is None else self.end_s) * _MICRO
        if start < end:
            return start <= clock < end
        return clock >= start or clock < end

    def local_times(self) -> set[int]:
        return {s for s in (self.start_s, self.end_s) if s is not None and s < _DAY}


class CalendarSchedule:
    """Which calendar rules match, and until when, for instants in one time zone."""

    def __init__(self, rules: Sequence[CalendarRule], tz: tzinfo) -> None:
        self.rules = tuple(rules)
        self.tz = tz
        # Midnight is always a candidate: dates and weekdays change there.
        self._clock = sorted({0}.union(*(rule.local_times() for rule in self.rules)))
        self._boundaries: dict[date, tuple[datetime, ...]] = {}

    def state_at(self, moment: datetime) -> tuple[tuple[bool, ...], datetime]:
        """Match flags per rule at ``moment`` (UTC) and the next instant they may change."""
        local = moment.astimezone(self.tz)
        flags = tuple(rule.matches(local) for rule in self.rules)
        return flags, self.next_boundary(moment, local.date())

    def next_boundary(self, moment: datetime, local_day: date) -> datetime:
        best: datetime | None = None
        for offset in (-1, 0, 1, 2):
            instants = self._boundaries_of(local_day + timedelta(days=offset))
            index = bisect_right(instants, moment)
            if index < len(instants) and (best is None or instants[index] < best):
                best = instants[index]
        assert best is not None  # midnight two days ahead always exists
        return best

    def _boundaries_of(self, day: date) -> tuple[datetime, ...]:
        cached = self._boundaries.get(day)
        if cached is None:
            cached = self._compute_boundaries(day)
            if len(self._boundaries) > 64:
                self._boundaries.clear()
            self._boundaries[day] = cached
        return cached

    def _compute_boundaries(self, day: date) -> tuple[datetime, ...]:
        instants: set[datetime] = set()
        for seconds in self._clock:
            wall = datetime.combine(day, time(seconds // 3600, seconds // 60 % 60, seconds % 60))
            for fold in (0, 1):
                instants.add(wall.replace(tzinfo=self.tz, fold=fold).astimezone(UTC))
        # A UTC-offset change moves the wall clock without it passing the
        # candidates above (the hour skipped in spring); add the change itself.
        start = datetime.combine(day, time(), tzinfo=self.tz).astimezone(UTC)
        end = start + timedelta(days=1, hours=3)
        change = _offset_change(start, end, self.tz)
        if change is not None:
            instants.add(change)
        return tuple(sorted(instants))


def _offset_change(start: datetime, end: datetime, tz: tzinfo) -> datetime | None:
    """The first instant in (start, end] whose UTC offset differs from start's, to the second."""
    before = start.astimezone(tz).utcoffset()
    if end.astimezone(tz).utcoffset() == before:
        return None
    low, high = 0, int((end - start).total_seconds())
    while high - low > 1:
        middle = (low + high) // 2
        if (start + timedelta(seconds=middle)).astimezone(tz).utcoffset() == before:
            low = middle
        else:
            high = middle
    return start + timedelta(seconds=high)
