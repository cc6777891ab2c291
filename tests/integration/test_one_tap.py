"""Saved cards and one-tap starts with the demo provider, over real HTTP and OCPP:
save a card (approved, refused, checked by the bank), start with one tap, the bank's
check on a one-tap hold, a saved card declined when charging, and cards that are
nobody else's business."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from plugpay.domain.session import Reason
from plugpay.services.ports import PaymentDeclined, PaymentUnavailable
from plugpay.store import tables as t
from support.accounts import AccountSite, account_site
from support.driver import csrf_of, demo_site, eventually, running_sim, stop_sim


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[AccountSite]:
    async with account_site(database_url) as running:
        await demo_site(running.server)
        yield running


async def save_card(browser: httpx.AsyncClient, card: str) -> httpx.Response:
    """Add a card with the demo form; the answer to the form (a redirect)."""
    cards = await browser.get("/me/cards")
    new = await browser.post("/me/cards/new", data={"_csrf_token": csrf_of(cards.text)})
    assert new.status_code == 303 and new.headers["location"].startswith("/me/cards/setup/")
    setup = await browser.get(new.headers["location"])
    assert setup.status_code == 200 and "Choose a test card" in setup.text
    return await browser.post(
        f"{new.headers['location']}/demo", data={"_csrf_token": csrf_of(setup.text), "card": card}
    )


async def one_tap(browser: httpx.AsyncClient) -> httpx.Response:
    page = await browser.get("/c/CP-1/1")
    assert page.status_code == 200 and 'name="pay" value="saved"' in page.text, page.text
    return await browser.post(
        "/c/CP-1/1/start", data={"_csrf_token": csrf_of(page.text), "pay": "saved"}
    )


async def test_save_a_card_then_start_with_one_tap_and_pay_what_was_charged(
    site: AccountSite,
) -> None:
    sim, task = await running_sim(site.server, meter_interval=0.2, power_kw=50.0)
    alice = await site.signed_in("alice")
    try:
        # Without a saved card: the usual start.
        assert 'value="saved"' not in (await alice.get("/c/CP-1/1")).text
        saved = await save_card(alice, "approve")
        assert saved.status_code == 303 and saved.headers["location"] == "/me/cards?saved=1"
        cards = await alice.get("/me/cards")
        assert "Visa •••• 4242" in cards.text and "Used for one-tap starts" in cards.text

        page = await alice.get("/c/CP-1/1")
        assert "Start with Visa •••• 4242" in page.text and "Pay with another card" in page.text
        started = await one_tap(alice)
        assert started.status_code == 303 and started.headers["location"].startswith("/s/")
        session_id = started.headers["location"].rsplit("/", 1)[-1]
        record = await site.server.runtime.session_store.get(session_id)
        assert record is not None and record.state in ("AUTHORIZED", "STARTING", "CHARGING")
        assert record.account_id == await site.account_id("alice")
        assert record.card_last4 == "4242"

        async def charging() -> bool:
            now = await site.server.runtime.session_store.get(session_id)
            return now is not None and now.state == "CHARGING" and now.cost_minor > 0

        await eventually(charging)
        live = await alice.get(f"/s/{session_id}")
        await alice.post(f"/s/{session_id}/stop", data={"_csrf_token": csrf_of(live.text)})

        async def settled() -> bool:
            now = await site.server.runtime.session_store.get(session_id)
            return now is not None and now.state == "SETTLED"

        await eventually(settled)
        done = await site.server.runtime.session_store.get(session_id)
        assert done is not None and done.captured_minor == done.cost_minor > 0
        journals = await site.server.runtime.ledger.journals_of_session(session_id)
        assert [j.movement for j in journals] == ["authorised", "captured", "released"]
    finally:
        await alice.aclose()
        await stop_sim(sim, task)


async def test_the_bank_checks_a_one_tap_hold_then_it_starts(site: AccountSite) -> None:
    sim, task = await running_sim(site.server)
    alice = await site.signed_in("alice")
    try:
        # Saving this card asks for the bank's check first, and so does every hold on it.
        needs_check = await save_card(alice, "authenticate")
        assert needs_check.headers["location"].endswith("?auth=1")
        check = await alice.get(needs_check.headers["location"])
        assert "Confirm with your bank" in check.text
        approved = await alice.post(
            needs_check.headers["location"].replace("?auth=1", "/demo/authenticate"),
            data={"_csrf_token": csrf_of(check.text), "ok": "1"},
        )
        assert approved.headers["location"] == "/me/cards?saved=1"

        tapped = await one_tap(alice)
        assert re.fullmatch(r"/pay/[^/]+/return\?saved=1", tapped.headers["location"])
        started = await alice.get(tapped.headers["location"])  # reads the hold: the bank
        assert re.fullmatch(r"/pay/[^?]+\?auth=1&saved=1", started.headers["location"])
        session_id = started.headers["location"].split("/")[2].split("?")[0]
        pay = await alice.get(started.headers["location"])
        assert pay.status_code == 200 and "Confirm with your bank" in pay.text
        confirmed = await alice.post(
            f"/pay/{session_id}/demo/authenticate",
            data={"_csrf_token": csrf_of(pay.text), "ok": "1"},
        )
        assert confirmed.headers["location"] == f"/s/{session_id}"
        record = await site.server.runtime.session_store.get(session_id)
        assert record is not None and record.state != "CREATED"
    finally:
        await alice.aclose()
        await stop_sim(sim, task)


async def test_a_saved_card_declined_when_charging_frees_the_connector(site: AccountSite) -> None:
    sim, task = await running_sim(site.server)
    alice = await site.signed_in("alice")
    try:
        assert (await save_card(alice, "decline_off_session")).status_code == 303
        refused = await one_tap(alice)
        assert refused.status_code == 303
        assert refused.headers["location"].startswith("/c/CP-1/1?error=")
        page = await alice.get(refused.headers["location"])
        assert "Your card was declined." in page.text
        assert "Pay with another card" in page.text  # and the connector is free again
        sessions = await site.server.runtime.session_store.of_owner(
            (), await site.account_id("alice")
        )
        assert [(s.state, s.reason) for s in sessions] == [("CANCELED", Reason.PAYMENT_DECLINED)]
        view = await site.server.runtime.services.reservations.connector("CP-1", 1)
        assert view.availability == "available"
    finally:
        await alice.aclose()
        await stop_sim(sim, task)


async def test_a_declined_card_is_not_saved(site: AccountSite) -> None:
    alice = await site.signed_in("alice")
    try:
        refused = await save_card(alice, "decline")
        assert "?error=" in refused.headers["location"]
        again = await alice.get(refused.headers["location"])
        assert "Your card was declined." in again.text and "Please try another card." in again.text
        assert "••••" not in (await alice.get("/me/cards")).text
    finally:
        await alice.aclose()


async def test_cards_are_their_owners_only_and_can_be_removed(site: AccountSite) -> None:
    alice, bob = await site.signed_in("alice"), await site.signed_in("bob")
    try:
        cards = await alice.get("/me/cards")
        new = await alice.post("/me/cards/new", data={"_csrf_token": csrf_of(cards.text)})
        setup_path = new.headers["location"]
        # Bob cannot open, or finish, Alice's card setup.
        assert (await bob.get(setup_path)).status_code == 404
        bobs_page = await bob.get("/me/cards")
        token = csrf_of(bobs_page.text)
        assert (
            await bob.post(f"{setup_path}/demo", data={"_csrf_token": token, "card": "approve"})
        ).status_code == 404
        assert (await save_card(alice, "approve")).status_code == 303
        assert (await save_card(alice, "approve")).status_code == 303
        listed = (await alice.get("/me/cards")).text
        ids = [int(i) for i in re.findall(r"/me/cards/(\d+)/remove", listed)]
        assert len(ids) == 2
        # Bob can neither remove nor pick Alice's cards, nor start with them.
        for action in ("remove", "default"):
            response = await bob.post(f"/me/cards/{ids[0]}/{action}", data={"_csrf_token": token})
            assert response.status_code == 404
        assert 'value="saved"' not in (await bob.get("/c/CP-1/1")).text
        # Alice removes her default card: the other one becomes the default.
        default_id = int(re.findall(r"/me/cards/(\d+)/remove", listed)[0])
        page = await alice.get("/me/cards")
        removed = await alice.post(
            f"/me/cards/{default_id}/remove", data={"_csrf_token": csrf_of(page.text)}
        )
        assert removed.status_code == 303
        left = (await alice.get("/me/cards")).text
        assert f"/me/cards/{default_id}/remove" not in left
        assert "Used for one-tap starts" in left
    finally:
        await alice.aclose()
        await bob.aclose()


class AnswerLost:
    """The real demo provider, but the first off-session hold's answer never arrives:
    the hold is made (money held) and the server hears "unavailable"."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def create_off_session_hold(self, request: Any, customer: str, method: str) -> Any:
        state = await self.real.create_off_session_hold(request, customer, method)
        if not self.lost:
            self.lost += 1
            raise PaymentUnavailable("the answer was lost (test)")
        return state


async def test_a_one_tap_hold_whose_answer_was_lost_is_found_and_released(
    site: AccountSite,
) -> None:
    sim, task = await running_sim(site.server)
    alice = await site.signed_in("alice")
    runtime = site.server.runtime
    real = runtime.payments
    try:
        await save_card(alice, "approve")
        runtime.use_payments(AnswerLost(real))  # type: ignore[arg-type]
        refused = await one_tap(alice)
        assert refused.headers["location"].startswith("/c/CP-1/1?error=")
        [record] = await runtime.session_store.of_owner((), await site.account_id("alice"))
        assert record.state == "CANCELED" and record.payment_ref is None
        # The connector is free at once; the held money is found once the reservation
        # would have ended, and released.
        assert (await runtime.services.reservations.connector("CP-1", 1)).availability == (
            "available"
        )
        async with runtime.db.begin() as conn:
            await conn.execute(
                update(t.jobs)
                .where(t.jobs.c.key == f"recover:{record.id}")
                .values(run_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        runtime.services.worker.wake()

        async def released() -> bool:
            now = await runtime.session_store.get(record.id)
            if now is None or now.payment_ref is None:
                return False
            return (await real.get(now.payment_ref)).status == "canceled"

        await eventually(released)
    finally:
        runtime.use_payments(real)
        await alice.aclose()
        await stop_sim(sim, task)


async def test_a_deleted_account_leaves_no_customer_or_card_at_the_provider(
    site: AccountSite,
) -> None:
    alice = await site.signed_in("alice")
    try:
        assert (await save_card(alice, "approve")).status_code == 303
        me = await site.account_id("alice")
        gateway = site.server.runtime.payments
        async with site.server.runtime.db.connect() as conn:
            customer = (
                await conn.execute(
                    select(t.payment_customers.c.customer_ref).where(
                        t.payment_customers.c.account_id == me
                    )
                )
            ).scalar_one()
        assert len(await gateway.list_methods(customer)) == 1
        confirm = await alice.get("/me/delete")
        deleted = await alice.post("/me/delete", data={"_csrf_token": csrf_of(confirm.text)})
        assert deleted.status_code == 200 and "Your account is deleted" in deleted.text

        async def forgotten() -> bool:
            try:
                await gateway.list_methods(customer)
            except PaymentDeclined:
                return True
            return False

        await eventually(forgotten)
        async with site.server.runtime.db.connect() as conn:
            job = (
                (
                    await conn.execute(
                        select(t.jobs).where(t.jobs.c.kind == "payment.delete_customer")
                    )
                )
                .mappings()
                .one()
            )
        assert job["state"] == "done" and job["payload"]["customer_ref"] == customer
    finally:
        await alice.aclose()
