"""Local authorisation lists follow the cards (OCPP 1.6 and 2.0.1, the virtual charger
keeping its list as a charger does): the full list when the charger first comes,
differential updates on every change (a card linked, blocked, unlinked), and the full
list again when the charger comes back with a version plugpay did not send."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from support.accounts import AccountSite, account_site, link_rfid, save_card
from support.driver import csrf_of, demo_site, eventually, running_sim, stop_sim


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[AccountSite]:
    async with account_site(database_url) as running:
        await demo_site(running.server)
        yield running


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_the_chargers_list_follows_every_card_change(site: AccountSite, version: str) -> None:
    sim, task = await running_sim(site.server, version, max_backoff=0.5)
    alice = await site.signed_in("alice")
    rfid = site.server.runtime.services.rfid

    async def holds(expected: dict[str, str]) -> None:
        async def same() -> bool:
            return sim.local_list == expected

        await eventually(same)

    try:
        await rfid.issue("FLAT-9", "residents")  # issued, linked to nobody: not on the list
        await save_card(alice, "approve")
        await link_rfid(alice, "RFID-L1")
        await holds({"RFID-L1": "Accepted"})
        assert sim.local_list_updates[0] == "Full"  # the first list the charger gets

        await rfid.set_blocked("RFID-L1", True)
        await holds({"RFID-L1": "Blocked"})  # refused offline too
        await rfid.set_blocked("RFID-L1", False)
        await holds({"RFID-L1": "Accepted"})
        assert sim.local_list_updates[-1] == "Differential"

        # A charger restarted with an empty list (version 0): the full list again.
        sim.local_list, sim.local_list_version = {}, 0
        await sim.drop_connection()
        await holds({"RFID-L1": "Accepted"})
        assert sim.local_list_updates[-1] == "Full" and sim.local_list_version > 0

        page = await alice.get("/me/rfid")
        await alice.post("/me/rfid/RFID-L1/remove", data={"_csrf_token": csrf_of(page.text)})
        await holds({})  # removed by a differential update
        assert sim.local_list_updates[-1] == "Differential"
    finally:
        await alice.aclose()
        await stop_sim(sim, task)


async def test_a_card_linked_while_the_charger_is_offline_reaches_it_when_it_connects(
    site: AccountSite,
) -> None:
    """The job finds the charger offline and waits for it (an hour, or until the charger
    connects); the connection wakes it, so the list follows within seconds."""
    sim, task = await running_sim(site.server, "1.6", max_backoff=0.5)
    alice = await site.signed_in("alice")
    try:
        await save_card(alice, "approve")
        await link_rfid(alice, "RFID-OFF1")

        async def listed() -> bool:
            return sim.local_list == {"RFID-OFF1": "Accepted"}

        await eventually(listed)
        await stop_sim(sim, task)
        await link_rfid(alice, "RFID-OFF2")

        async def parked() -> bool:
            jobs = await site.server.runtime.jobs.listing()
            return any(
                j.kind == "charger.local_list" and j.last_error == "charger offline" for j in jobs
            )

        await eventually(parked)
        sim, task = await running_sim(site.server, "1.6", max_backoff=0.5)

        async def both() -> bool:
            return sim.local_list == {"RFID-OFF1": "Accepted", "RFID-OFF2": "Accepted"}

        await eventually(both, timeout=10)
    finally:
        await alice.aclose()
        await stop_sim(sim, task)
