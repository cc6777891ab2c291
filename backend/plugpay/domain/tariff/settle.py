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
  period without a component, e.g. "parking is free after 20:00", does not).
* step_size 0 bills the exact quantity.

Receipt lines: one per (dimension, price, VAT rate), by dimension (ENERGY,
TIME, PARKING_TIME, FLAT) and then in tariff order; adjustment lines follow.

Rounding: each total (excl. and incl. VAT) is the exact total rounded half-up
to the currency; line amounts are the exact line amounts allocated so that
they add up to it exactly (:func:`plugpay.domain.money.allocate_rounded`), each
within one minor unit of its exact value. This reproduces the OCPI examples'
totals (e.g. 2.875 + 3.30 + 4.125 = 10.30 incl. VAT, where rounding each line
half-up first would give 10.31). The session fee (FLAT) line keeps its own
half-up rounding, the figure the price page showed (0.50 + 19 % = €0.60, never
€0.59), and the other lines take up the difference
(:func:`plugpay.domain.money.allocate_pinned`); only where they cannot, within
their one minor unit, does the fee move too.

min_price / max_price (both excl. and incl. VAT apply, OCPI Tariff note):
an adjustment line (MIN_PRICE or MAX_PRICE) brings each total to the bound.
When a bound gives no ``incl_vat``, its incl.-VAT side is the excl.-VAT bound
at the session's average VAT rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_CEILING, Decimal

from plugpay.domain.money import allocate_pinned, round_decimal, round_down
from plugpay.domain.tariff.breakdown import MIN_PRICE, PriceBreakdown, PriceLine
from plugpay.domain.tariff.restrictions import ENERGY, FLAT, LineGroup, PriceBound, PricingPlan

_US_PER_HOUR = Decimal(3_600_000_000)
_US_PER_MINUTE = Decimal(60_000_000)
# Engine units per OCPI step_size unit: uWh per Wh, us per second.
_PER_STEP_UNIT = 1_000_000
_ONE = Decimal(1)
_ZERO = Decimal(0)

Quantity = int | Decimal
# Per line: billed quantity, exact amount excl. VAT, shown quantity, the amount
# rounded down and its remainder (for the allocation), the same three incl.
# VAT, and the line group.
LineFigures = tuple[
    Quantity, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal, LineGroup
]


def ceil_to_step(quantity: Quantity, step: int) -> Quantity:
    """Round ``quantity`` up to a whole number of ``step`` (the OCPI step_size rule)."""
    if step <= 0:
        return quantity
    if isinstance(quantity, int):
        return -(-quantity // step) * step
    return (quantity / step).to_integral_value(rounding=ROUND_CEILING) * step


def settle(
    plan: PricingPlan,
    usage: Sequence[int | None],
    last_energy: int | None,
    last_time: int | None,
    flat: int | None,
    memo: list[LineFigures | None] | None = None,
) -> PriceBreakdown:
    """Price ``usage`` per line group (uWh for ENERGY, microseconds for time; None: unused).

    ``last_energy`` and ``last_time`` are the indices of the last components
    that priced energy and time, ``flat`` that of the FLAT component charged.
    ``memo`` (one slot per line group, kept by the caller between calls) saves
    recomputing lines whose quantity did not change; results are identical.
    """
    groups = plan.groups
    components = plan.components
    billed: list[Quantity | None] = list(usage)
    for last in (last_energy, last_time):
        if last is None:
            continue
        component = components[last]
        if component.step_size > 0:
            total: Quantity = 0
            for g in plan.groups_by_kind[component.kind]:
                quantity = billed[g]
                if quantity is not None:
                    total += quantity
            extra = ceil_to_step(total, component.step_size * _PER_STEP_UNIT) - total
            if extra:
                billed[component.group] = (billed[component.group] or 0) + extra
    if flat is not None:
        billed[components[flat].group] = 1

    exponent = plan.currency_exponent
    rows: list[LineFigures] = []
    excl: list[Decimal] = []
    excl_floors: list[Decimal] = []
    excl_remainders: list[Decimal] = []
    incl: list[Decimal] = []
    incl_floors: list[Decimal] = []
    incl_remainders: list[Decimal] = []
    for g, quantity in enumerate(billed):
        if quantity is None:
            continue
        row = None if memo is None else memo[g]
        if row is None or row[0] != quantity:
            row = _figures(groups[g], quantity, exponent)
            if memo is not None:
                memo[g] = row
        rows.append(row)
        excl.append(row[1])
        excl_floors.append(row[3])
        excl_remainders.append(row[4])
        incl.append(row[5])
        incl_floors.append(row[6])
        incl_remainders.append(row[7])

    # A session fee is a price the driver saw as such: its line keeps its own rounding.
    pinned = [row[8].kind == FLAT for row in rows]
    excl_amounts, total_excl = allocate_pinned(excl, exponent, pinned, excl_floors, excl_remainders)
    incl_amounts: Sequence[Decimal | None]
    total_incl: Decimal | None
    if plan.with_vat:
        incl_amounts, total_incl = allocate_pinned(
            incl, exponent, pinned, incl_floors, incl_remainders
        )
    else:
        incl_amounts, total_incl = [None] * len(rows), None
    lines: list[PriceLine] = []
    for row, amount, gross in zip(rows, excl_amounts, incl_amounts, strict=True):
        group = row[8]
        lines.append(
            PriceLine(group.label, row[2], group.unit, group.price, amount, group.vat, gross)
        )
    breakdown = PriceBreakdown(plan.currency, tuple(lines), total_excl, total_incl)
    for bound in plan.price_bounds:
        breakdown = _bound(breakdown, plan, bound)
    return breakdown


def _figures(group: LineGroup, quantity: Quantity, exponent: int) -> LineFigures:
    kind = group.kind
    if kind == ENERGY:
        exact = (quantity * group.price).scaleb(-9)  # uWh -> kWh, exact
        shown = round_decimal(Decimal(quantity).scaleb(-9), 3)
    elif kind == FLAT:
        exact = group.price
        shown = _ONE
    else:
        exact = quantity * group.price / _US_PER_HOUR
        shown = round_decimal(quantity / _US_PER_MINUTE, 2)
    factor = group.vat_factor
    gross = exact if factor is None else exact * factor
    floor = round_down(exact, exponent)
    gross_floor = round_down(gross, exponent)
    return (
        quantity,
        exact,
        shown,
        floor,
        exact - floor,
        gross,
        gross_floor,
        gross - gross_floor,
        group,
    )


def _bound(breakdown: PriceBreakdown, plan: PricingPlan, bound: PriceBound) -> PriceBreakdown:
    kind, target_excl, target_incl, price = bound
    excl_adjust = _adjustment(breakdown.total_excl_vat, target_excl, kind)
    incl_total = breakdown.total_incl_vat
    incl_adjust: Decimal | None = None
    if incl_total is not None:
        if target_incl is None:
            factor = _average_vat_factor(breakdown, plan)
            target_incl = round_decimal(price.excl_vat * factor, plan.currency_exponent)
        incl_adjust = _adjustment(incl_total, target_incl, kind)
    if not excl_adjust and not incl_adjust:
        return breakdown
    line = PriceLine(kind, _ONE, "session", None, excl_adjust, None, incl_adjust)
    return breakdown.with_line(line)


def _adjustment(total: Decimal, target: Decimal, kind: str) -> Decimal:
    if kind == MIN_PRICE:
        return target - total if target > total else target - target
    return target - total if target < total else target - target


def _average_vat_factor(breakdown: PriceBreakdown, plan: PricingPlan) -> Decimal:
    """incl/excl of the session so far; before anything is priced, the tariff's first VAT rate."""
    if breakdown.total_incl_vat is not None and breakdown.total_excl_vat > 0:
        return breakdown.total_incl_vat / breakdown.total_excl_vat
    for group in plan.groups:
        if group.vat_factor is not None:
            return group.vat_factor
    return _ONE
