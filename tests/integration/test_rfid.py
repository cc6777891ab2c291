"""RFID cards: a driver links a card, holds it to the charger, and the charge goes on
the saved card (OCPP 1.6 and 2.0.1, the virtual charger starting with the card); a
declined card stops the charge at once; blocked, unlinked, uncovered and unknown
cards get their OCPP status; a card is its account's only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from plugpay.domain.session import Reason
from plugpay.notify.webpush import WebPushSender, generate_vapid_private_key
from plugpay.store import tables as t
from plugpay.store.uow import unit_of_work_factory
from support.accounts import AccountSite, account_site, save_card
from support.accounts import link_rfid as link
from support.driver import csrf_of, demo_site, eventually, running_sim, stop_sim
from support.push_receiver import FakeBrowser, PushReceiver


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[AccountSite]:
    async with account_site(database_url) as running:
        await demo_site(running.server)
        yield running


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_linked_card_charges_the_saved_card(site: AccountSite, version: str) -> None:
    sim, task = await running_sim(site.server, version, power_kw=50.0, meter_interval=0.2)
    alice = await site.signed_in("alice")
    try:
        await save_card(alice, "approve")
        assert (await link(alice, "RFID-A1")).headers["location"] == "/me/rfid"
        assert "Work card" in (await alice.get("/me/rfid")).text
        me = await site.account_id("alice")
        info = await site.server.runtime.services.chargers.tag_info("RFID-A1", "CP-1", version)
        assert info["status"] == "Accepted"

        await sim.start_transaction(1, "RFID-A1")  # the card held to the charger

        async def charging() -> bool:
            found = await site.server.runtime.session_store.of_owner((), me)
            return bool(found) and found[0].state == "CHARGING" and found[0].cost_minor > 0

        await eventually(charging)
        [record] = await site.server.runtime.session_store.of_owner((), me)
        assert record.payment_ref and record.card_last4 == "4242"
        assert f"/s/{record.id}" in (await alice.get("/me")).text  # on the account's page
        await sim.stop_transaction(1)

        async def settled() -> bool:
            now = await site.server.runtime.session_store.get(record.id)
            return now is not None and now.state == "SETTLED"

        await eventually(settled)
        done = await site.server.runtime.session_store.get(record.id)
        assert done is not None and 0 < (done.captured_minor or 0) == done.cost_minor
        journals = await site.server.runtime.ledger.journals_of_session(record.id)
        assert [j.movement for j in journals] == ["authorised", "captured", "released"]
    finally:
        await alice.aclose()
        await stop_sim(sim, task)


async def test_a_declined_card_stops_the_charge(site: AccountSite) -> None:
    sim, task = await running_sim(site.server, power_kw=50.0, meter_interval=0.2)
    alice = await site.signed_in("alice")
    try:
        await save_card(alice, "decline_off_session")
        await link(alice, "RFID-A2")
        await sim.start_transaction(1, "RFID-A2")
        me = await site.account_id("alice")

        async def refused_and_stopped() -> bool:
            found = await site.server.runtime.session_store.of_owner((), me)
            return (
                bool(found)
                and found[0].state == "CANCELED"
                and sim.connectors[1].transaction is None  # the server stopped it
            )

        await eventually(refused_and_stopped)
        [record] = await site.server.runtime.session_store.of_owner((), me)
        assert record.reason == Reason.PAYMENT_DECLINED
        async with site.server.runtime.db.connect() as conn:
            kinds = (await conn.execute(select(t.review_items.c.kind))).scalars().all()
        assert "rfid_not_paid" in kinds
    finally:
        await alice.aclose()
        await stop_sim(sim, task)


async def test_every_card_gets_its_status_and_is_its_accounts_only(site: AccountSite) -> None:
    services = site.server.runtime.services
    alice, bob = await site.signed_in("alice"), await site.signed_in("bob")
    try:

        async def status(tag: str, version: str = "1.6") -> str:
            return str((await services.chargers.tag_info(tag, "CP-1", version))["status"])

        await services.rfid.issue("STAFF-7", "staff", label="Flat 7")
        assert await status("STAFF-7") == "Blocked"  # issued, linked to nobody: no credit
        assert await status("STAFF-7", "2.0.1") == "NoCredit"
        await link(alice, "STAFF-7")
        assert await status("STAFF-7", "2.0.1") == "NoCredit"  # no saved card yet
        await save_card(alice, "approve")
        assert await status("STAFF-7") == "Accepted"
        await services.rfid.set_blocked("STAFF-7", True)
        assert await status("STAFF-7") == "Blocked"
        assert "Blocked" in (await alice.get("/me/rfid")).text
        await services.rfid.set_blocked("STAFF-7", False)

        # Bob can neither link nor unlink Alice's card.
        taken = await link(bob, "STAFF-7")
        assert "error=" in taken.headers["location"]
        assert "linked to another account" in (await bob.get(taken.headers["location"])).text
        page = await bob.get("/me/rfid")
        refused = await bob.post(
            "/me/rfid/STAFF-7/remove", data={"_csrf_token": csrf_of(page.text)}
        )
        assert refused.status_code == 404
        # Unlinked, an issued card goes back to its group.
        page = await alice.get("/me/rfid")
        await alice.post("/me/rfid/STAFF-7/remove", data={"_csrf_token": csrf_of(page.text)})
        assert await status("STAFF-7") == "Blocked"

        # A card never seen: Invalid (Unknown in 2.0.1), and kept for review.
        assert await status("NEVER-SEEN") == "Invalid"
        assert await status("NEVER-SEEN", "2.0.1") == "Unknown"
        async with site.server.runtime.db.connect() as conn:
            kinds = (await conn.execute(select(t.review_items.c.kind))).scalars().all()
        assert "unknown_id_tag" in kinds
        bad = await link(alice, "has space")
        assert "error=" in bad.headers["location"]
    finally:
        await alice.aclose()
        await bob.aclose()


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_charge_started_offline_with_a_card_is_billed_on_reconnect(
    site: AccountSite, version: str
) -> None:
    sim, task = await running_sim(
        site.server, version, power_kw=50.0, meter_interval=0.2, max_backoff=0.5
    )
    alice = await site.signed_in("alice")
    try:
        await save_card(alice, "approve")
        await link(alice, "RFID-OFF")
        me = await site.account_id("alice")
        await sim.vanish(2.0)  # offline: the charger starts from its own list
        await sim.start_transaction(1, "RFID-OFF")
        assert await site.server.runtime.session_store.of_owner((), me) == []

        async def billed_after_reconnect() -> bool:
            found = await site.server.runtime.session_store.of_owner((), me)
            return bool(found) and found[0].state == "CHARGING" and found[0].payment_ref is not None

        await eventually(billed_after_reconnect)
        await sim.stop_transaction(1)
        [record] = await site.server.runtime.session_store.of_owner((), me)

        async def settled() -> bool:
            now = await site.server.runtime.session_store.get(record.id)
            return now is not None and now.state == "SETTLED" and (now.captured_minor or 0) > 0

        await eventually(settled)
    finally:
        await alice.aclose()
        await stop_sim(sim, task)


async def test_the_driver_hears_by_push_when_the_cards_hold_is_refused(database_url: str) -> None:
    sender = WebPushSender(
        generate_vapid_private_key(), "mailto:ops@example.com", allow_private=True
    )
    async with (
        account_site(database_url, push=sender, push_allow_private=True) as site,
        PushReceiver() as receiver,
    ):
        await demo_site(site.server)
        sim, task = await running_sim(site.server, power_kw=50.0, meter_interval=0.2)
        alice = await site.signed_in("alice")
        try:
            await save_card(alice, "decline_off_session")
            await link(alice, "RFID-P1")
            device = receiver.subscribe(FakeBrowser(application_server_key=sender.public_key))
            me = await site.account_id("alice")
            async with unit_of_work_factory(site.server.runtime.db)() as uow:
                await uow.accounts.add_device(
                    me,
                    device.endpoint,
                    device.p256dh,
                    device.auth,
                    None,
                    datetime.now(UTC),
                )
            await sim.start_transaction(1, "RFID-P1")
            [message] = await receiver.wait_for(1)
            assert message.errors == [] and message.payload["title"] == "Charging did not start"
            assert message.payload["url"].endswith("/me/cards")
        finally:
            await alice.aclose()
            await stop_sim(sim, task)
