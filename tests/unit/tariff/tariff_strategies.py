"""Hypothesis strategies: random valid tariffs and random sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from plugpay.domain.tariff import Sample, Tariff, TariffError, parse_tariff

DIMENSIONS = ("ENERGY", "TIME", "PARKING_TIME", "FLAT")
DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC")
CURRENCIES = ("EUR", "JPY", "KWD")

prices = st.decimals(min_value=0, max_value=5, places=2)
vats = st.none() | st.sampled_from([Decimal(0), Decimal("5.2"), Decimal(10), Decimal(19)])
clock = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 30]))


@st.composite
def restrictions(draw: st.DrawFn, *, with_kwh_and_power: bool = True) -> dict[str, Any]:
    kinds = ["time", "days", "duration"]
    if with_kwh_and_power:
        kinds += ["kwh", "power"]
    chosen = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=2, unique=True))
    out: dict[str, Any] = {}
    if "time" in chosen:
        start, end = draw(clock), draw(clock)
        assume(start != end)
        out.update(start_time=start, end_time=end)
    if "days" in chosen:
        out["day_of_week"] = draw(
            st.lists(st.sampled_from(DAYS), min_size=1, max_size=5, unique=True)
        )
    if "duration" in chosen:
        low, high = sorted(
            draw(st.lists(st.integers(0, 4 * 3600), min_size=2, max_size=2, unique=True))
        )
        out.update(
            draw(
                st.sampled_from(
                    [
                        {"min_duration": low},
                        {"max_duration": high},
                        {"min_duration": low, "max_duration": high},
                    ]
                )
            )
        )
    if "kwh" in chosen:
        low, high = sorted(draw(st.lists(st.integers(0, 40), min_size=2, max_size=2, unique=True)))
        out.update(
            draw(
                st.sampled_from(
                    [{"min_kwh": low}, {"max_kwh": high}, {"min_kwh": low, "max_kwh": high}]
                )
            )
        )
    if "power" in chosen:
        out["max_power"] = draw(st.sampled_from([3, 7, 11, 22]))
    return out


@st.composite
def components(draw: st.DrawFn, dimensions: list[str], step: int | None) -> list[dict[str, Any]]:
    out = []
    for dimension in dimensions:
        size = (
            step
            if step is not None
            else draw(
                st.sampled_from([0, 1, 60, 300, 900] if dimension != "ENERGY" else [0, 1, 100, 500])
            )
        )
        component: dict[str, Any] = {"type": dimension, "price": draw(prices), "step_size": size}
        vat = draw(vats)
        if vat is not None:
            component["vat"] = vat
        out.append(component)
    return out


@st.composite
def tariffs(
    draw: st.DrawFn,
    *,
    restricted: bool = True,
    step: int | None = None,
    with_kwh_and_power: bool = True,
    with_bounds: bool = True,
    incl_bounds_only: bool = False,
    currency: str | None = None,
) -> Tariff:
    """A valid tariff. ``restricted=False``: one unrestricted element per dimension.

    With restrictions, a last unrestricted element prices every dimension the
    tariff uses, so no time or energy goes unpriced. ``incl_bounds_only``: a
    min/max price always states its incl.-VAT side too.
    """
    used = draw(st.lists(st.sampled_from(DIMENSIONS), min_size=1, max_size=4, unique=True))
    elements = []
    if restricted:
        for _ in range(draw(st.integers(1, 3))):
            dims = draw(
                st.lists(st.sampled_from(used), min_size=1, max_size=len(used), unique=True)
            )
            elements.append(
                {
                    "price_components": draw(components(dims, step)),
                    "restrictions": draw(restrictions(with_kwh_and_power=with_kwh_and_power)),
                }
            )
    elements.append({"price_components": draw(components(used, step))})
    data: dict[str, Any] = {
        "id": "random",
        "currency": currency or draw(st.sampled_from(CURRENCIES)),
        "elements": elements,
    }
    if with_bounds and draw(st.booleans()):
        low = draw(st.decimals(min_value=0, max_value=5, places=2))
        data["min_price"] = {"excl_vat": low}
        if incl_bounds_only or draw(st.booleans()):
            data["min_price"]["incl_vat"] = low * Decimal("1.1")
    if with_bounds and draw(st.booleans()):
        high = draw(st.decimals(min_value=5, max_value=40, places=2))
        data["max_price"] = {"excl_vat": high}
        if incl_bounds_only or draw(st.booleans()):
            data["max_price"]["incl_vat"] = high * Decimal("1.2")
    try:
        return parse_tariff(data)
    except TariffError:
        assume(False)
        raise


Step = tuple[int, int, bool, int | None, Decimal | None]  # seconds, Wh, charging, W, A

steps = st.tuples(
    st.integers(0, 3 * 3600),
    st.integers(0, 30_000),
    st.booleans(),
    st.none() | st.integers(0, 50_000),
    st.none() | st.decimals(min_value=0, max_value=64, places=1),
)


@st.composite
def sessions(draw: st.DrawFn, max_steps: int = 12) -> tuple[str, list[Sample]]:
    """A time zone and samples: whole-second times, around DST changes too."""
    zone = draw(st.sampled_from(ZONES))
    start = draw(
        st.sampled_from(
            [
                datetime(2024, 1, 8, 6, 0, tzinfo=UTC),
                datetime(2024, 3, 30, 22, 0, tzinfo=UTC),
                datetime(2024, 10, 26, 21, 0, tzinfo=UTC),
                datetime(2024, 6, 14, 15, 0, tzinfo=UTC),
            ]
        )
    ) + timedelta(seconds=draw(st.integers(0, 86_400)))
    register = draw(st.integers(0, 10**7))
    samples = [Sample(at=start, energy_wh=register, charging=draw(st.booleans()))]
    at = start
    for seconds, wh, charging, power, current in draw(
        st.lists(steps, min_size=1, max_size=max_steps)
    ):
        at = at + timedelta(seconds=seconds)
        register += wh
        samples.append(
            Sample(at=at, energy_wh=register, charging=charging, power_w=power, current_a=current)
        )
    return zone, samples


@st.composite
def time_of_use_tariffs(draw: st.DrawFn) -> Tariff:
    """TIME-only tariffs with calendar and duration restrictions on whole minutes, step 0."""
    elements: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 4))):
        restrictions: dict[str, Any] = {}
        if draw(st.booleans()):
            start, end = draw(clock), draw(clock)
            if start != end:
                restrictions.update(start_time=start, end_time=end)
        if draw(st.booleans()):
            restrictions["day_of_week"] = draw(
                st.lists(st.sampled_from(DAYS), min_size=1, max_size=4, unique=True)
            )
        if draw(st.booleans()):
            restrictions[draw(st.sampled_from(["min_duration", "max_duration"]))] = 60 * draw(
                st.integers(1, 600)
            )
        if restrictions:
            price = draw(st.decimals(min_value=0, max_value=9, places=2))
            elements.append(
                {
                    "price_components": [{"type": "TIME", "price": price, "step_size": 0}],
                    "restrictions": restrictions,
                }
            )
    elements.append(
        {"price_components": [{"type": "TIME", "price": Decimal("0.5"), "step_size": 0}]}
    )
    try:
        return parse_tariff({"id": "tou", "currency": "EUR", "elements": elements})
    except TariffError:
        assume(False)
        raise
