"""Which of a time-of-use tariff's prices applies to a charge started now, and until
when (domain/tariff/now.py), as the connector page marks it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from plugpay.domain.tariff import parse_tariff
from plugpay.domain.tariff.display import display_tariff
from plugpay.domain.tariff.model import Dimension
from plugpay.domain.tariff.now import price_now

EXAMPLES = Path(__file__).resolve().parents[2] / "infra" / "examples"
TOU = parse_tariff((EXAMPLES / "time-of-use-idle-fee.json").read_text())
SIMPLE = parse_tariff((EXAMPLES / "simple-per-kwh.json").read_text())
# Elements of the example: 0 peak 17-21, 1 night 21-07, 2 otherwise, 3 session fee, 4 idle 07-21.


@pytest.mark.parametrize(
    ("at", "energy", "changes"),
    [
        # 16:40 in Berlin (CET): "otherwise" until the peak at 17:00.
        (datetime(2026, 12, 3, 15, 40, tzinfo=UTC), 2, datetime(2026, 12, 3, 16, 0, tzinfo=UTC)),
        # 20:00: the peak, until 21:00 (when the idle fee ends as well).
        (datetime(2026, 12, 3, 19, 0, tzinfo=UTC), 0, datetime(2026, 12, 3, 20, 0, tzinfo=UTC)),
        # 23:30: the night price until 07:00 the next morning.
        (datetime(2026, 12, 3, 22, 30, tzinfo=UTC), 1, datetime(2026, 12, 4, 6, 0, tzinfo=UTC)),
        # Summer time (CEST): 07:00 local is 05:00 UTC.
        (datetime(2026, 7, 1, 3, 0, tzinfo=UTC), 1, datetime(2026, 7, 1, 5, 0, tzinfo=UTC)),
        # The autumn change: the night of 25 October 2026 is an hour longer.
        (datetime(2026, 10, 24, 23, 0, tzinfo=UTC), 1, datetime(2026, 10, 25, 6, 0, tzinfo=UTC)),
    ],
)
def test_the_price_now_and_when_it_changes_in_berlin(
    at: datetime, energy: int, changes: datetime
) -> None:
    now = price_now(TOU, "Europe/Berlin", at)
    assert now.elements[Dimension.ENERGY] == energy
    assert now.changes_at == changes


def test_the_same_instant_is_another_price_in_another_zone() -> None:
    at = datetime(2026, 12, 3, 19, 0, tzinfo=UTC)  # 20:00 Berlin, 14:00 New York
    assert price_now(TOU, "Europe/Berlin", at).elements[Dimension.ENERGY] == 0
    assert price_now(TOU, "America/New_York", at).elements[Dimension.ENERGY] == 2


def test_a_tariff_without_times_never_changes_and_marks_nothing() -> None:
    now = price_now(SIMPLE, "Europe/Berlin", datetime(2026, 12, 3, 12, 0, tzinfo=UTC))
    assert now.changes_at is None
    shown = display_tariff(SIMPLE, tz="Europe/Berlin", example_start=datetime.now(UTC))
    assert not any(item.now for item in shown.items) and shown.changes_at is None


def test_the_display_marks_the_one_energy_price_that_applies() -> None:
    shown = display_tariff(
        TOU, tz="Europe/Berlin", example_start=datetime(2026, 12, 3, 19, 0, tzinfo=UTC)
    )
    energy = [item for item in shown.items if item.kind == "ENERGY"]
    assert [item.now for item in energy] == [True, False, False]
    assert shown.changes_at == datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
    # One price of its kind (the session fee) is not marked: nothing to choose between.
    assert not any(item.now for item in shown.items if item.kind == "FLAT")
