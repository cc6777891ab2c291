"""Cross-field checks: restrictions that can never match, components that can never apply."""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal

from plugpay.domain.tariff.errors import TariffError
from plugpay.domain.tariff.fields import path_join
from plugpay.domain.tariff.model import (
    Dimension,
    Tariff,
    TariffElement,
    TariffRestrictions,
)

_RESERVATION_DIMENSIONS = frozenset({Dimension.FLAT, Dimension.TIME})
_RANGES = (
    ("min_kwh", "max_kwh"),
    ("min_current", "max_current"),
    ("min_power", "max_power"),
    ("min_duration", "max_duration"),
)


def check_restrictions(r: TariffRestrictions, path: str) -> None:
    """Refuse restrictions that describe an empty set of moments."""
    if r.start_time is not None and r.start_time == r.end_time:
        raise TariffError(
            path_join(path, "end_time"),
            "equals start_time, which leaves an empty window (omit both for the whole day)",
        )
    if r.start_date is not None and r.end_date is not None and r.start_date >= r.end_date:
        raise TariffError(
            path_join(path, "start_date"),
            f"must be before end_date (end_date is exclusive): {r.start_date} >= {r.end_date}",
        )
    for low_name, high_name in _RANGES:
        low: Decimal | int | None = getattr(r, low_name)
        high: Decimal | int | None = getattr(r, high_name)
        if low is not None and high is not None and low >= high:
            raise TariffError(
                path_join(path, low_name),
                f"must be less than {high_name} ({high_name} is exclusive): {low} >= {high}",
            )
    if len(set(r.day_of_week)) != len(r.day_of_week):
        raise TariffError(path_join(path, "day_of_week"), "lists a day more than once")


def check_element(element: TariffElement, path: str) -> None:
    seen: set[Dimension] = set()
    for index, component in enumerate(element.price_components):
        if component.type in seen:
            raise TariffError(
                path_join(path_join(path_join(path, "price_components"), index), "type"),
                f"{component.type} appears twice in one element; only the first could apply",
            )
        seen.add(component.type)
        if element.is_reservation_only and component.type not in _RESERVATION_DIMENSIONS:
            raise TariffError(
                path_join(path_join(path_join(path, "price_components"), index), "type"),
                f"a reservation element may only price FLAT and TIME, not {component.type}",
            )


def check_tariff(tariff: Tariff) -> None:
    if (
        tariff.start_date_time is not None
        and tariff.end_date_time is not None
        and tariff.start_date_time >= tariff.end_date_time
    ):
        raise TariffError("start_date_time", "must be before end_date_time")
    _check_price_bounds(tariff)
    _check_shadowed_components(tariff)


def _check_price_bounds(tariff: Tariff) -> None:
    low, high = tariff.min_price, tariff.max_price
    if low is None or high is None:
        return
    if low.excl_vat > high.excl_vat:
        raise TariffError("min_price.excl_vat", "must not exceed max_price.excl_vat")
    if low.incl_vat is not None and high.incl_vat is not None and low.incl_vat > high.incl_vat:
        raise TariffError("min_price.incl_vat", "must not exceed max_price.incl_vat")


def _check_shadowed_components(tariff: Tariff) -> None:
    """Refuse a component that an earlier element always pre-empts.

    OCPI applies, per dimension, the first element whose restrictions match.
    If an earlier element pricing the same dimension matches whenever a later
    one does (no restrictions, or only a subset of the later one's, with the
    same values), the later component is dead: almost surely an ordering
    mistake by whoever wrote the tariff.
    """
    for j, later in enumerate(tariff.elements):
        for c_index, component in enumerate(later.price_components):
            for i in range(j):
                earlier = tariff.elements[i]
                if earlier.component(component.type) is None:
                    continue
                if _always_matches_when(earlier.restrictions, later.restrictions):
                    raise TariffError(
                        f"elements[{j}].price_components[{c_index}]",
                        f"{component.type} can never apply: elements[{i}] prices "
                        f"{component.type} whenever this element's restrictions match "
                        "(put the more restricted element first)",
                    )


def _always_matches_when(
    earlier: TariffRestrictions | None, later: TariffRestrictions | None
) -> bool:
    """Whether every moment matching ``later`` also matches ``earlier``."""
    first = earlier or TariffRestrictions()
    second = later or TariffRestrictions()
    if first.reservation != second.reservation:
        return False
    for field in fields(TariffRestrictions):
        mine = getattr(first, field.name)
        theirs = getattr(second, field.name)
        if field.name == "day_of_week":
            if mine and not (theirs and set(theirs) <= set(mine)):
                return False
        elif mine is not None and mine != theirs:
            return False
    return True
