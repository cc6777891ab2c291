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
from decimal import ROUND_CEILING, Decimal

from plugpay.domain.money import currency_exponent, round_decimal
from plugpay.domain.tariff.calendar import CalendarRule, CalendarSchedule
from plugpay.domain.tariff.model import Dimension, Price, Tariff, TariffRestrictions

# A band for a value the session did not report (e.g. current without a meter
# value for it): restrictions on that quantity do not match.
UNKNOWN = -1


# Receipt order of the dimensions, and their index in per-dimension lists.
DIMENSION_ORDER = (Dimension.ENERGY, Dimension.TIME, Dimension.PARKING_TIME, Dimension.FLAT)
ENERGY, TIME, PARKING, FLAT = range(4)
_UNITS = ("kWh", "min", "min", "session")


@dataclass(frozen=True, slots=True)
class Component:
    """A price component with its place in the tariff and its receipt line."""

    index: int
    element_index: int
    dimension: Dimension
    kind: int  # ENERGY, TIME, PARKING or FLAT
    price: Decimal
    vat: Decimal | None
    step_size: int
    group: int  # index of its LineGroup in PricingPlan.groups


@dataclass(frozen=True, slots=True)
class LineGroup:
    """Components sharing a receipt line: same dimension, price and VAT rate."""

    dimension: Dimension
    kind: int
    label: str
    unit: str
    price: Decimal
    vat: Decimal | None
    # (100 + vat) / 100, exact; None when the line has no VAT
    vat_factor: Decimal | None


@dataclass(frozen=True, slots=True)
class Active:
    """The component applying per dimension in one band key (None: not priced)."""

    energy: Component | None
    time: Component | None
    parking: Component | None
    flat: Component | None


BandKey = tuple[tuple[bool, ...], int, int, int, int]
# MIN_PRICE or MAX_PRICE, the bound excl. and incl. VAT rounded to the currency, the bound
PriceBound = tuple[str, Decimal, Decimal | None, Price]


class PricingPlan:
    """A tariff compiled for pricing in one site time zone."""

    def __init__(self, tariff: Tariff, tz: tzinfo) -> None:
        self.tariff = tariff
        self.tz = tz
        self.currency_exponent = currency_exponent(tariff.currency)
        # Receipt lines: one per (dimension, price, vat), by dimension, then in tariff order.
        raw = [(i, c) for i, e in enumerate(tariff.elements) for c in e.price_components]
        keys = sorted(
            dict.fromkeys((c.type, c.price, c.vat) for _, c in raw),
            key=lambda k: DIMENSION_ORDER.index(k[0]),
        )
        self.groups = tuple(
            LineGroup(
                dimension=d,
                kind=DIMENSION_ORDER.index(d),
                label=d.value,
                unit=_UNITS[DIMENSION_ORDER.index(d)],
                price=p,
                vat=v,
                vat_factor=None if v is None else (100 + v) / 100,
            )
            for d, p, v in keys
        )
        self.groups_by_kind = tuple(
            tuple(g for g, group in enumerate(self.groups) if group.kind == kind)
            for kind in range(4)
        )
        self.components = tuple(
            Component(
                index=index,
                element_index=e_index,
                dimension=c.type,
                kind=DIMENSION_ORDER.index(c.type),
                price=c.price,
                vat=c.vat,
                step_size=c.step_size,
                group=keys.index((c.type, c.price, c.vat)),
            )
            for index, (e_index, c) in enumerate(raw)
        )
        components = self.components
        self.with_vat = tariff.has_vat
        self.currency = tariff.currency
        places = self.currency_exponent
        self.price_bounds: tuple[PriceBound, ...] = tuple(
            (
                kind,
                round_decimal(bound.excl_vat, places),
                None if bound.incl_vat is None else round_decimal(bound.incl_vat, places),
                bound,
            )
            for kind, bound in (("MIN_PRICE", tariff.min_price), ("MAX_PRICE", tariff.max_price))
            if bound is not None
        )
        self._elements = [
            (e.restrictions, tuple(c for c in components if c.element_index == i))
            for i, e in enumerate(tariff.elements)
            if not e.is_reservation_only
        ]
        restrictions = [r for r, _ in self._elements if r is not None]
        # Thresholds in the engine's integer units: uWh, us, mW, mA.
        self.kwh_thresholds = _thresholds(restrictions, "kwh")
        self.duration_thresholds = _thresholds(restrictions, "duration")
        self.power_thresholds = _thresholds(restrictions, "power")
        self.current_thresholds = _thresholds(restrictions, "current")
        calendar = [r for r in restrictions if r.has_calendar]
        self._calendar_index = {id(r): i for i, r in enumerate(calendar)}
        self.calendar = (
            CalendarSchedule([CalendarRule.of(r) for r in calendar], tz) if calendar else None
        )
        self._cache: dict[BandKey, Active] = {}

    def kwh_band(self, energy_uwh: int) -> int:
        thresholds = self.kwh_thresholds
        return bisect_right(thresholds, energy_uwh) if thresholds else 0

    def duration_band(self, elapsed_us: int) -> int:
        thresholds = self.duration_thresholds
        return bisect_right(thresholds, elapsed_us) if thresholds else 0

    def power_band(self, power_mw: int | None) -> int:
        thresholds = self.power_thresholds
        if not thresholds:
            return 0
        return UNKNOWN if power_mw is None else bisect_right(thresholds, power_mw)

    def current_band(self, current_ma: int | None) -> int:
        thresholds = self.current_thresholds
        if not thresholds:
            return 0
        return UNKNOWN if current_ma is None else bisect_right(thresholds, current_ma)

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
            _in_band(kwh, self.kwh_thresholds, r, "kwh")
            and _in_band(duration, self.duration_thresholds, r, "duration")
            and _in_band(power, self.power_thresholds, r, "power")
            and _in_band(current, self.current_thresholds, r, "current")
        )


# OCPI unit -> engine unit: kWh -> uWh, s -> us, kW -> mW, A -> mA.
_SCALE = {"kwh": 10**9, "duration": 10**6, "power": 10**6, "current": 10**3}


def to_engine_units(value: Decimal | int, quantity: str) -> int:
    """An OCPI bound in the engine's integer unit, rounded up.

    Measured values are integers in the same unit (rounded down where they
    carry a fraction), so ``v >= bound`` and ``v < bound`` keep their meaning.
    """
    return int((Decimal(value) * _SCALE[quantity]).to_integral_value(ROUND_CEILING))


def _bounds(r: TariffRestrictions, quantity: str) -> tuple[int | None, int | None]:
    low = getattr(r, f"min_{quantity}")
    high = getattr(r, f"max_{quantity}")
    return (
        None if low is None else to_engine_units(low, quantity),
        None if high is None else to_engine_units(high, quantity),
    )


def _thresholds(restrictions: list[TariffRestrictions], quantity: str) -> tuple[int, ...]:
    values: set[int] = set()
    for r in restrictions:
        values.update(v for v in _bounds(r, quantity) if v is not None)
    return tuple(sorted(values))


def _in_band(band: int, thresholds: tuple[int, ...], r: TariffRestrictions, quantity: str) -> bool:
    """Whether values in ``band`` satisfy ``low <= value < high``.

    Every value in band b lies in [thresholds[b-1], thresholds[b]); as both
    bounds are thresholds, checking the band's lowest value decides for all.
    """
    low, high = _bounds(r, quantity)
    if low is None and high is None:
        return True
    if band == UNKNOWN:
        return False
    floor = thresholds[band - 1] if band > 0 else None
    if low is not None and (floor is None or floor < low):
        return False
    return high is None or floor is None or floor < high
