"""Which price component applies, per dimension, in a given session state.

A :class:`PricingPlan` is a tariff compiled for pricing. Per OCPI, for each
dimension the first element that prices it and whose restrictions all match
applies. Element matching depends on the state only through *bands*: the
number of thresholds (kWh, duration, kW, A) at or below the current value,
plus the calendar flags. Bands are what makes the engine cheap: the answer for
a band key is computed once and cached, and a threshold is where a period is
split.

Reservation-only elements (``reservation`` set) price reservations, which
plugpay does not sell; they never match a charging session.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import tzinfo
from decimal import Decimal

from plugpay.domain.money import currency_exponent
from plugpay.domain.tariff.calendar import CalendarRule, CalendarSchedule
from plugpay.domain.tariff.model import Dimension, Tariff, TariffRestrictions

_MICRO = 1_000_000
# A band for a value the session did not report (e.g. current without a meter
# value for it): restrictions on that quantity do not match.
UNKNOWN = -1


@dataclass(frozen=True, slots=True)
class Component:
    """A price component with its place in the tariff and precomputed factors."""

    index: int
    element_index: int
    dimension: Dimension
    price: Decimal
    vat: Decimal | None
    step_size: int
    # (100 + vat) / 100, exact; None when the component has no VAT
    vat_factor: Decimal | None
    # (dimension, price, vat): components with equal keys share a receipt line
    line_key: tuple[Dimension, Decimal, Decimal | None]


@dataclass(frozen=True, slots=True)
class Active:
    """The component applying per dimension in one band key (None: not priced)."""

    energy: Component | None
    time: Component | None
    parking: Component | None
    flat: Component | None


BandKey = tuple[tuple[bool, ...], int, int, int, int]


class PricingPlan:
    """A tariff compiled for pricing in one site time zone."""

    def __init__(self, tariff: Tariff, tz: tzinfo) -> None:
        self.tariff = tariff
        self.tz = tz
        self.currency_exponent = currency_exponent(tariff.currency)
        components: list[Component] = []
        for e_index, element in enumerate(tariff.elements):
            for c in element.price_components:
                factor = None if c.vat is None else (100 + c.vat) / 100
                components.append(
                    Component(
                        index=len(components),
                        element_index=e_index,
                        dimension=c.type,
                        price=c.price,
                        vat=c.vat,
                        step_size=c.step_size,
                        vat_factor=factor,
                        line_key=(c.type, c.price, c.vat),
                    )
                )
        self.components = tuple(components)
        self._elements = [
            (e.restrictions, tuple(c for c in components if c.element_index == i))
            for i, e in enumerate(tariff.elements)
            if not e.is_reservation_only
        ]
        restrictions = [r for r, _ in self._elements if r is not None]
        self.kwh_thresholds_wh = _thresholds(restrictions, "min_kwh", "max_kwh", Decimal(1000))
        self.duration_thresholds_us = tuple(
            int(t) for t in _thresholds(restrictions, "min_duration", "max_duration", _MICRO)
        )
        self.power_thresholds_w = _thresholds(restrictions, "min_power", "max_power", 1000)
        self.current_thresholds_a = _thresholds(restrictions, "min_current", "max_current", 1)
        calendar = [r for r in restrictions if r.has_calendar]
        self._calendar_index = {id(r): i for i, r in enumerate(calendar)}
        self.calendar = (
            CalendarSchedule([CalendarRule.of(r) for r in calendar], tz) if calendar else None
        )
        self._cache: dict[BandKey, Active] = {}

    def kwh_band(self, energy_wh: Decimal | int) -> int:
        return bisect_right(self.kwh_thresholds_wh, energy_wh) if self.kwh_thresholds_wh else 0

    def duration_band(self, elapsed_us: int) -> int:
        thresholds = self.duration_thresholds_us
        return bisect_right(thresholds, elapsed_us) if thresholds else 0

    def power_band(self, power_w: Decimal | int | None) -> int:
        if not self.power_thresholds_w:
            return 0
        return UNKNOWN if power_w is None else bisect_right(self.power_thresholds_w, power_w)

    def current_band(self, current_a: Decimal | None) -> int:
        if not self.current_thresholds_a:
            return 0
        return UNKNOWN if current_a is None else bisect_right(self.current_thresholds_a, current_a)

    def active(self, key: BandKey) -> Active:
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._resolve(key)
        return found

    def _resolve(self, key: BandKey) -> Active:
        picked: dict[Dimension, Component] = {}
        for restrictions, components in self._elements:
            if restrictions is not None and not self._matches(restrictions, key):
                continue
            for component in components:
                picked.setdefault(component.dimension, component)
        return Active(
            energy=picked.get(Dimension.ENERGY),
            time=picked.get(Dimension.TIME),
            parking=picked.get(Dimension.PARKING_TIME),
            flat=picked.get(Dimension.FLAT),
        )

    def _matches(self, r: TariffRestrictions, key: BandKey) -> bool:
        calendar_flags, duration, kwh, power, current = key
        if r.has_calendar and not calendar_flags[self._calendar_index[id(r)]]:
            return False
        return (
            _in_band(kwh, self.kwh_thresholds_wh, r.min_kwh, r.max_kwh, Decimal(1000))
            and _in_band(
                duration,
                self.duration_thresholds_us,
                r.min_duration,
                r.max_duration,
                _MICRO,
            )
            and _in_band(power, self.power_thresholds_w, r.min_power, r.max_power, 1000)
            and _in_band(current, self.current_thresholds_a, r.min_current, r.max_current, 1)
        )


def _thresholds(
    restrictions: list[TariffRestrictions], low: str, high: str, scale: Decimal | int
) -> tuple[Decimal, ...]:
    values: set[Decimal] = set()
    for r in restrictions:
        for name in (low, high):
            value = getattr(r, name)
            if value is not None:
                values.add(Decimal(value) * scale)
    return tuple(sorted(values))


def _in_band(
    band: int,
    thresholds: tuple[Decimal, ...] | tuple[int, ...],
    low: Decimal | int | None,
    high: Decimal | int | None,
    scale: Decimal | int,
) -> bool:
    """Whether values in ``band`` satisfy ``low <= value < high`` (bounds in OCPI units).

    Every value in band b lies in [thresholds[b-1], thresholds[b]); as both
    bounds are thresholds, checking the band's lowest value decides for all.
    """
    if low is None and high is None:
        return True
    if band == UNKNOWN:
        return False
    floor = thresholds[band - 1] if band > 0 else None
    if low is not None and (floor is None or floor < Decimal(low) * scale):
        return False
    return high is None or floor is None or floor < Decimal(high) * scale
