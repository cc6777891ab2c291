"""The OCPI 2.2.1 Tariff object as immutable Python values.

Numbers are ``Decimal`` exactly as written in the OCPI JSON; prices are per
unit and exclude VAT (ENERGY per kWh, TIME and PARKING_TIME per hour, FLAT per
session). Construct tariffs with :func:`plugpay.domain.tariff.parse_tariff`,
which validates them; the constructors here do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Dimension(StrEnum):
    """OCPI TariffDimensionType."""

    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


TIME_DIMENSIONS = (Dimension.TIME, Dimension.PARKING_TIME)


class DayOfWeek(StrEnum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"

    @property
    def iso_index(self) -> int:
        """0 for Monday .. 6 for Sunday, as ``date.weekday()``."""
        return _WEEKDAY_ORDER.index(self)


_WEEKDAY_ORDER = tuple(DayOfWeek)


class TariffType(StrEnum):
    AD_HOC_PAYMENT = "AD_HOC_PAYMENT"
    PROFILE_CHEAP = "PROFILE_CHEAP"
    PROFILE_FAST = "PROFILE_FAST"
    PROFILE_GREEN = "PROFILE_GREEN"
    REGULAR = "REGULAR"


class ReservationRestriction(StrEnum):
    RESERVATION = "RESERVATION"
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"


@dataclass(frozen=True, slots=True)
class PriceComponent:
    """How one dimension is priced: ``price`` per unit excl. VAT, ``vat`` percent.

    ``vat`` None means OCPI's "no VAT applicable", which differs from 0 %.
    ``step_size`` is in Wh for ENERGY and seconds for TIME/PARKING_TIME; 0 means
    the quantity is billed exactly.
    """

    type: Dimension
    price: Decimal
    step_size: int
    vat: Decimal | None = None


@dataclass(frozen=True, slots=True)
class TariffRestrictions:
    """When a TariffElement applies; every field set must match (logical AND).

    Times and dates are in the site's local time. ``end_time`` and ``end_date``
    are exclusive; ``end_time`` 00:00 means the end of the day and an
    ``end_time`` before ``start_time`` wraps past midnight. ``min_*`` bounds are
    inclusive and ``max_*`` bounds exclusive. kWh, A and kW as in OCPI; durations
    in seconds since the session started.
    """

    start_time: time | None = None
    end_time: time | None = None
    start_date: date | None = None
    end_date: date | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: tuple[DayOfWeek, ...] = ()
    reservation: ReservationRestriction | None = None

    @property
    def has_time_of_day(self) -> bool:
        return self.start_time is not None or self.end_time is not None

    @property
    def has_calendar(self) -> bool:
        """Restrictions that depend on the local wall clock or calendar."""
        return (
            self.has_time_of_day
            or self.start_date is not None
            or self.end_date is not None
            or bool(self.day_of_week)
        )


@dataclass(frozen=True, slots=True)
class TariffElement:
    price_components: tuple[PriceComponent, ...]
    restrictions: TariffRestrictions | None = None

    def component(self, dimension: Dimension) -> PriceComponent | None:
        for component in self.price_components:
            if component.type is dimension:
                return component
        return None

    @property
    def is_reservation_only(self) -> bool:
        """Reservation elements price reservations, never a charging session."""
        return self.restrictions is not None and self.restrictions.reservation is not None


@dataclass(frozen=True, slots=True)
class Price:
    """OCPI Price: ``incl_vat`` is optional."""

    excl_vat: Decimal
    incl_vat: Decimal | None = None


@dataclass(frozen=True, slots=True)
class DisplayText:
    language: str
    text: str


@dataclass(frozen=True, slots=True)
class Tariff:
    """An OCPI 2.2.1 Tariff.

    ``country_code``, ``party_id`` and ``last_updated`` are mandatory in OCPI
    but optional here, so a station owner's hand-written tariff (and the
    spec's own PUT example) can be imported; when present they are validated.
    ``energy_mix`` is kept as the JSON object it came as, for round-tripping.
    """

    id: str
    currency: str
    elements: tuple[TariffElement, ...]
    country_code: str | None = None
    party_id: str | None = None
    type: TariffType | None = None
    tariff_alt_text: tuple[DisplayText, ...] = ()
    tariff_alt_url: str | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None
    energy_mix: Mapping[str, Any] | None = field(default=None, hash=False)
    last_updated: datetime | None = None

    @property
    def has_vat(self) -> bool:
        """True when any price component states a VAT rate."""
        return any(c.vat is not None for e in self.elements for c in e.price_components)

    def is_valid_at(self, at: datetime) -> bool:
        """Whether ``at`` lies in [start_date_time, end_date_time)."""
        if self.start_date_time is not None and at < self.start_date_time:
            return False
        return self.end_date_time is None or at < self.end_date_time
