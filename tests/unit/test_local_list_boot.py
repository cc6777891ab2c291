"""A boot's local-list check: written with the boot only where cards exist, due at a
random moment within the configured delay (a storm of boots is spread out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from plugpay.services.local_lists import LocalListService
from plugpay.services.ports.jobs import JobKind
from plugpay.services.ports.local_lists import Entries


class Cards:
    def __init__(self, wanted: Entries) -> None:
        self.entries = wanted
        self.asked = 0

    async def wanted(self) -> Entries:
        self.asked += 1
        return self.entries


def service(cards: Cards, delay: float = 30.0) -> LocalListService:
    nothing: Any = None
    return LocalListService(nothing, cards, nothing, boot_delay=delay)  # type: ignore[arg-type]


async def test_no_cards_no_job_and_one_question_for_a_storm() -> None:
    cards = Cards({})
    lists = service(cards)
    assert [await lists.boot_job(f"CP-{n}") for n in range(500)] == [None] * 500
    assert cards.asked == 1


async def test_the_checks_of_a_storm_are_spread_over_the_delay() -> None:
    lists = service(Cards({"TAG-1": ("Accepted", None)}), delay=30.0)
    before = datetime.now(UTC)
    jobs = [await lists.boot_job(f"CP-{n}") for n in range(500)]
    after = datetime.now(UTC)
    assert all(j is not None and j.kind == JobKind.LOCAL_LIST and j.rearm for j in jobs)
    due = sorted(j.run_at for j in jobs if j is not None and j.run_at is not None)
    assert len(due) == 500
    assert due[0] >= before + timedelta(seconds=1) and due[-1] <= after + timedelta(seconds=30)
    # Spread, not bunched: every tenth of the window gets some of them.
    tenths = {int((d - before).total_seconds() // 3) for d in due}
    assert tenths >= set(range(1, 10))
    assert {j.key for j in jobs if j is not None} == {f"local_list:CP-{n}" for n in range(500)}
