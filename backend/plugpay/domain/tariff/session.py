"""What the pricing engine reads about a session: a sequence of :class:`Sample`.

A sample is a meter reading or a status change at one instant. The time
between two consecutive samples is a period:

* its energy is the rise of the energy register between them;
* its state (charging or not, power, current) is the one the *earlier*
  sample reported, held until the next sample: a status change at 12:15 to
  "not charging" makes everything after 12:15 parking time.

The last sample ends the session (or the part of it seen so far). Energy is the
meter's register, absolute, integer Wh; the first sample is the baseline. A
register lower than the highest one seen adds no energy (a glitch or a meter
reset never makes a driver pay twice), and pricing resumes once it climbs past
that highest value.

When ``power_w`` is missing on a charging sample, the period's average power
(energy / time) stands in for power restrictions; when ``current_a`` is
missing, current restrictions do not match (the engine will not guess a
voltage). A sample that is not charging counts as 0 W and 0 A unless it says
otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plugpay.domain.tariff.errors import SessionTraceError


@dataclass(frozen=True, slots=True)
class Sample:
    """One instant of a session: timezone-aware ``at``, register ``energy_wh``, status."""

    at: datetime
    energy_wh: int
    charging: bool = True
    power_w: int | None = None
    current_a: Decimal | None = None


@dataclass(frozen=True, slots=True)
class SessionTrace:
    """A whole session: when it started and its samples in time order."""

    samples: tuple[Sample, ...]
    started_at: datetime | None = None

    @classmethod
    def of(cls, samples: Iterable[Sample], started_at: datetime | None = None) -> SessionTrace:
        return cls(tuple(samples), started_at)


def resolve_tz(tz: tzinfo | str) -> tzinfo:
    """A tzinfo from an IANA name ("Europe/Berlin") or an existing tzinfo."""
    if isinstance(tz, str):
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise SessionTraceError(f"unknown time zone {tz!r}") from None
    return tz


def as_utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise SessionTraceError(f"{what} must be timezone-aware, got {moment.isoformat()}")
    return moment.astimezone(UTC)


class LocalTimeKind(StrEnum):
    """How often a site's wall clock shows a local date and time."""

    UNIQUE = "unique"
    REPEATED = "repeated"  # the hour the clock is set back (autumn)
    SKIPPED = "skipped"  # the hour the clock jumps over (spring)


def local_time_kind(wall: datetime, tz: tzinfo | str) -> LocalTimeKind:
    """Whether the naive ``wall`` time happens once, twice or never in ``tz``."""
    zone = resolve_tz(tz)
    naive = wall.replace(tzinfo=None)
    first = naive.replace(tzinfo=zone, fold=0)
    if first.utcoffset() == naive.replace(tzinfo=zone, fold=1).utcoffset():
        return LocalTimeKind.UNIQUE
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return LocalTimeKind.REPEATED
    return LocalTimeKind.SKIPPED


def site_instant(moment: datetime, tz: tzinfo | str) -> datetime:
    """The UTC instant of ``moment``: as it says when aware, on the site's clock when naive.

    A naive time the clock shows twice means the first of them; one it skips
    moves forward by the length of the gap (02:30 on a spring-forward night
    in Berlin is 03:30 CEST). These are PEP 495's readings of fold=0, chosen
    here on purpose so that a quote, a worked example and the CLI agree. An
    aware ``moment`` (an offset, or fold=1) picks either occurrence itself.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=resolve_tz(tz), fold=0)
    return as_utc(moment, "start")


def check_sample(sample: Sample) -> None:
    energy, power, current = sample.energy_wh, sample.power_w, sample.current_a
    if type(energy) is not int:
        raise SessionTraceError(f"energy_wh must be an integer of Wh, got {energy!r}")
    if power is not None and type(power) is not int:
        raise SessionTraceError(f"power_w must be an integer of W, got {power!r}")
    if current is not None and not isinstance(current, Decimal | int):
        raise SessionTraceError(f"current_a must be a Decimal, got {current!r}")
