"""From metered usage per price component to a :class:`PriceBreakdown`.

step_size, per OCPI 2.2.1 mod_cdrs (anchor ``mod_cdrs_step_size``):

* ENERGY: once per session. The total priced energy is rounded up to the
  step_size of the last component that priced energy; the extra is billed at
  that component's price.
* TIME and PARKING_TIME: once for both together. The last time-based component
  that priced time decides: the total of *its* dimension is rounded up to its
  step_size and the extra billed at its price. So when parking follows
  charging, parking is rounded and charging time is not; when the session
  ends while charging, charging time is rounded.
* Only time and energy priced by some component count towards the total (a
  free-of-component period, e.g. "parking is free after 20:00", does not).
* step_size 0 bills the exact quantity.

Rounding: each total (excl. and incl. VAT) is the exact total rounded half-up
to the currency; line amounts are the exact line amounts allocated so that
they add up to it exactly (:func:`plugpay.domain.money.allocate_rounded`), each
within one minor unit of its exact value. This reproduces the OCPI examples'
totals (e.g. 2.875 + 3.30 + 4.125 = 10.30 incl. VAT, where rounding each line
half-up first would give 10.31).

min_price / max_price (both excl. and incl. VAT apply, OCPI Tariff note):
an adjustment line (MIN_PRICE or MAX_PRICE) brings each total to the bound.
When a bound gives no ``incl_vat``, its incl.-VAT side is the excl.-VAT bound
at the session's average VAT rate.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from plugpay.domain.money import allocate_rounded, round_decimal
from plugpay.domain.tariff.breakdown import (
    MAX_PRICE,
    MIN_PRICE,
    UNIT_KWH,
    UNIT_MINUTES,
    UNIT_SESSION,
    PriceBreakdown,
    PriceLine,
)
from plugpay.domain.tariff.model import Dimension, Price
from plugpay.domain.tariff.restrictions import Component, PricingPlan

_US_PER_HOUR = Decimal(3_600_000_000)
_US_PER_MINUTE = Decimal(60_000_000)
_US_PER_SECOND = 1_000_000
_ORDER = {Dimension.ENERGY: 0, Dimension.TIME: 1, Dimension.PARKING_TIME: 2, Dimension.FLAT: 3}
_ONE = Decimal(1)

Quantity = int | Decimal


def ceil_to_step(quantity: Quantity, step: int) -> Quantity:
    """Round ``quantity`` up to a whole number of ``step`` (the OCPI step_size rule)."""
    if step <= 0:
        return quantity
    if isinstance(quantity, int):
        return -(-quantity // step) * step
    return (quantity / step).to_integral_value(rounding=ROUND_CEILING) * step


def settle(
    plan: PricingPlan,
    usage: dict[int, Quantity],
    last_energy: int | None,
    last_time: int | None,
    flat: int | None,
) -> PriceBreakdown:
    """Price ``usage`` (Wh for ENERGY, microseconds for time, per component index)."""
    billed = dict(usage)
    components = plan.components
    if last_energy is not None:
        _add_step_extra(billed, components, components[last_energy], 1)
    if last_time is not None:
        _add_step_extra(billed, components, components[last_time], _US_PER_SECOND)
    if flat is not None:
        billed[flat] = 1

    currency = plan.tariff.currency
    exponent = plan.currency_exponent
    with_vat = plan.tariff.has_vat
    grouped: dict[tuple[Dimension, Decimal, Decimal | None], tuple[Component, Quantity]] = {}
    for index, quantity in billed.items():
        component = components[index]
        seen = grouped.get(component.line_key)
        grouped[component.line_key] = (component, quantity if seen is None else seen[1] + quantity)

    rows: list[tuple[Component, Decimal, str, Decimal, Decimal]] = []
    for component, quantity in sorted(grouped.values(), key=lambda cq: _ORDER[cq[0].dimension]):
        dimension = component.dimension
        if dimension is Dimension.ENERGY:
            exact = quantity * component.price / 1000
            shown = round_decimal(Decimal(quantity) / 1000, 3)
            unit = UNIT_KWH
        elif dimension is Dimension.FLAT:
            exact = component.price
            shown = _ONE
            unit = UNIT_SESSION
        else:
            exact = quantity * component.price / _US_PER_HOUR
            shown = round_decimal(quantity / _US_PER_MINUTE, 2)
            unit = UNIT_MINUTES
        factor = component.vat_factor
        rows.append((component, shown, unit, exact, exact if factor is None else exact * factor))
    excl_amounts = allocate_rounded([row[3] for row in rows], exponent)
    incl_amounts: list[Decimal | None] = [None] * len(rows)
    if with_vat:
        incl_amounts = list(allocate_rounded([row[4] for row in rows], exponent))
    lines = [
        PriceLine(
            dimension=component.dimension.value,
            quantity=shown,
            unit=unit,
            unit_price=component.price,
            amount_excl_vat=excl,
            vat_rate=component.vat,
            amount_incl_vat=incl,
        )
        for (component, shown, unit, _, _), excl, incl in zip(
            rows, excl_amounts, incl_amounts, strict=True
        )
    ]
    breakdown = PriceBreakdown.from_lines(currency, tuple(lines), with_vat)
    tariff = plan.tariff
    if tariff.min_price is not None:
        breakdown = _bound(breakdown, plan, tariff.min_price, MIN_PRICE)
    if tariff.max_price is not None:
        breakdown = _bound(breakdown, plan, tariff.max_price, MAX_PRICE)
    return breakdown


def _add_step_extra(
    billed: dict[int, Quantity],
    components: tuple[Component, ...],
    last: Component,
    unit: int,
) -> None:
    if last.step_size <= 0:
        return
    total: Quantity = 0
    for index, quantity in billed.items():
        if components[index].dimension is last.dimension:
            total += quantity
    extra = ceil_to_step(total, last.step_size * unit) - total
    if extra:
        billed[last.index] = billed.get(last.index, 0) + extra


def _bound(breakdown: PriceBreakdown, plan: PricingPlan, bound: Price, kind: str) -> PriceBreakdown:
    exponent = plan.currency_exponent
    excl_total = breakdown.total_excl_vat
    incl_total = breakdown.total_incl_vat
    target_excl = round_decimal(bound.excl_vat, exponent)
    excl_adjust = _adjustment(excl_total, target_excl, kind)
    incl_adjust: Decimal | None = None
    if incl_total is not None:
        if bound.incl_vat is not None:
            target_incl = round_decimal(bound.incl_vat, exponent)
        else:
            target_incl = round_decimal(
                bound.excl_vat * _average_vat_factor(breakdown, plan), exponent
            )
        incl_adjust = _adjustment(incl_total, target_incl, kind)
    if not excl_adjust and not incl_adjust:
        return breakdown
    zero = round_decimal(Decimal(0), exponent)
    line = PriceLine(
        dimension=kind,
        quantity=_ONE,
        unit=UNIT_SESSION,
        unit_price=None,
        amount_excl_vat=excl_adjust + zero,
        vat_rate=None,
        amount_incl_vat=None if incl_adjust is None else incl_adjust + zero,
    )
    return breakdown.with_line(line)


def _adjustment(total: Decimal, target: Decimal, kind: str) -> Decimal:
    if kind == MIN_PRICE:
        return max(target - total, Decimal(0))
    return min(target - total, Decimal(0))


def _average_vat_factor(breakdown: PriceBreakdown, plan: PricingPlan) -> Decimal:
    """incl/excl of the session so far; before anything is priced, the tariff's first VAT rate."""
    if breakdown.total_incl_vat is not None and breakdown.total_excl_vat > 0:
        return breakdown.total_incl_vat / breakdown.total_excl_vat
    for component in plan.components:
        if component.vat_factor is not None:
            return component.vat_factor
    return _ONE
