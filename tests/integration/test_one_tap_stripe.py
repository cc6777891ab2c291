"""Saved cards and one-tap starts with PLUGPAY_PAYMENTS=stripe: the real app and the
real Stripe SDK over real sockets to localstripe, a virtual charger over OCPP.

The test plays the browser's Stripe.js part over the Stripe API (support/stripe_app):
confirming the SetupIntent with a card, and the bank's check on a one-tap hold.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from plugpay.domain.session import Reason
from plugpay.store import tables as t
from support.accounts import AccountSite, account_site
from support.driver import csrf_of, demo_site, running_sim, stop_sim
from support.stripe_app import (
    CARD_DECLINED_ON_CHARGE,
    CARD_NEEDS_3DS,
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    StripeBrowser,
    save_card,
)

pytest_plugins = ["support.stripe_fixtures"]
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
VISA_NUMBER = "4242424242424242"


@pytest.fixture
async def site(database_url: str, localstripe_url: str) -> AsyncIterator[AccountSite]:
    async with account_site(
        database_url,
        payments="stripe",
        stripe_secret_key=SECRET_KEY,
        stripe_publishable_key=PUBLISHABLE_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=localstripe_url,
    ) as running:
        await demo_site(running.server)
        yield running


async def add_card(
    site: AccountSite, driver: httpx.AsyncClient, stripe_js: StripeBrowser, number: str
) -> None:
    """/me/cards → Add a card → the Payment Element (played over the API) → return."""
    cards = await driver.get("/me/cards")
    new = await driver.post("/me/cards/new", data={"_csrf_token": csrf_of(cards.text)})
    setup_path = new.headers["location"]
    page = await driver.get(setup_path)
    form = re.search(r'<form id="setup-form"[^>]*>', page.text)
    assert form is not None and 'data-client-secret="seti_' in form.group(0)
    setup_ref = setup_path.rsplit("/", 1)[-1]
    async with site.server.runtime.db.connect() as conn:
        customer = (await conn.execute(select(t.payment_customers.c.customer_ref))).scalar_one()
    await save_card(stripe_js, setup_ref, customer, number)
    back = await driver.get(f"{setup_path}/return")
    assert back.headers["location"] == "/me/cards?saved=1", back.headers["location"]


async def one_tap(driver: httpx.AsyncClient) -> httpx.Response:
    page = await driver.get("/c/CP-1/1")
    assert 'name="pay" value="saved"' in page.text
    return await driver.post(
        "/c/CP-1/1/start", data={"_csrf_token": csrf_of(page.text), "pay": "saved"}
    )


async def test_one_tap_on_a_saved_card_at_stripe(site: AccountSite, browser: StripeBrowser) -> None:
    sim, task = await running_sim(site.server)
    alice = await site.signed_in("alice")
    try:
        await add_card(site, alice, browser, VISA_NUMBER)
        assert "Visa •••• 4242" in (await alice.get("/me/cards")).text
        started = await one_tap(alice)
        assert started.headers["location"].startswith("/s/"), started.headers["location"]
        record = await site.server.runtime.session_store.get(
            started.headers["location"].rsplit("/", 1)[-1]
        )
        assert record is not None and record.state != "CREATED" and record.payment_ref
        intent = await browser.intent(record.payment_ref)
        assert intent.status == "requires_capture" and intent.capture_method == "manual"
        assert intent.amount == record.hold_minor and intent.customer
    finally:
        await alice.aclose()
        await stop_sim(sim, task)


async def test_a_card_that_needs_the_banks_check_then_starts(
    site: AccountSite, browser: StripeBrowser
) -> None:
    sim, task = await running_sim(site.server)
    alice = await site.signed_in("alice")
    try:
        await add_card(site, alice, browser, CARD_NEEDS_3DS)
        tapped = await one_tap(alice)
        location = (await alice.get(tapped.headers["location"])).headers["location"]
        assert re.fullmatch(r"/pay/[^?]+\?auth=1&saved=1", location), location
        session_id = location.split("/")[2].split("?")[0]
        pay = await alice.get(location)
        form = re.search(r'<form id="payment-form"[^>]*>', pay.text)
        assert form is not None and 'data-next-action="1"' in form.group(0)
        secret = html.unescape(re.search(r'data-client-secret="([^"]+)"', form.group(0)).group(1))  # type: ignore[union-attr]
        record = await site.server.runtime.session_store.get(session_id)
        assert record is not None and record.payment_ref
        await browser.authenticate(record.payment_ref, secret, success=True)
        back = await alice.get(f"/pay/{session_id}/return")
        assert back.headers["location"] == f"/s/{session_id}"
    finally:
        await alice.aclose()
        await stop_sim(sim, task)


async def test_a_saved_card_declined_off_session_frees_the_connector(
    site: AccountSite, browser: StripeBrowser
) -> None:
    sim, task = await running_sim(site.server)
    alice = await site.signed_in("alice")
    try:
        await add_card(site, alice, browser, CARD_DECLINED_ON_CHARGE)
        refused = await one_tap(alice)
        assert refused.headers["location"].startswith("/c/CP-1/1?error=")
        sessions = await site.server.runtime.session_store.of_owner(
            (), await site.account_id("alice")
        )
        assert [(s.state, s.reason) for s in sessions] == [("CANCELED", Reason.PAYMENT_DECLINED)]
        view = await site.server.runtime.services.reservations.connector("CP-1", 1)
        assert view.availability == "available"
    finally:
        await alice.aclose()
        await stop_sim(sim, task)
