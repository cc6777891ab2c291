"""POST /webhooks/stripe on the real app with PLUGPAY_PAYMENTS=stripe and localstripe.

Events localstripe never sends (payment_intent.amount_capturable_updated,
payment_intent.canceled) are built and signed here with the app's webhook
secret (support/stripe_events.py); one test has localstripe itself deliver its
events to the app. The intake verifies the raw body, stores the event by id
before acting, and re-reads the PaymentIntent instead of believing the event.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import select, update

from plugpay.services.session_moves import utcnow
from plugpay.sim.charger import VirtualCharger
from plugpay.store import tables as t
from support import stripe_events
from support.driver import Phone, demo_site, eventually, running_sim, stop_sim
from support.localstripe import RecordingProxy, register_webhook, silence_webhook
from support.server import RunningServer
from support.sessions import force
from support.stripe_app import (
    CARD_DECLINED_ON_CHARGE,
    WEBHOOK_SECRET,
    FlakyProxy,
    StripeBrowser,
    StripeCall,
    calls_of,
)

# The fixtures: localstripe, the recording proxy, the app, the browser.
pytest_plugins = ["support.stripe_fixtures"]

# The SDK's httpx client posts its form as raw bytes through ``data=``.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
async def charger(stripe_server: RunningServer) -> AsyncIterator[VirtualCharger]:
    await demo_site(stripe_server, tariff="simple-per-kwh.json")
    sim, task = await running_sim(stripe_server, "1.6", power_kw=50.0, meter_interval=0.2)
    yield sim
    await stop_sim(sim, task)


@pytest.fixture
async def phone(stripe_server: RunningServer) -> AsyncIterator[Phone]:
    phone = Phone(stripe_server)
    yield phone
    await phone.close()


@pytest.fixture
async def stripe_client(stripe_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """Stripe's side of the webhook: no cookies, no CSRF token, just the signed body."""
    async with httpx.AsyncClient(base_url=stripe_server.http_url, timeout=30) as client:
        yield client


async def open_session(
    server: RunningServer, phone: Phone, connector_id: int = 1
) -> tuple[str, str, int]:
    """A CREATED session with its hold: (session id, PaymentIntent id, hold)."""
    started = await phone.start("CP-1", connector_id)
    assert started.status_code == 303, started.text
    session_id = started.headers["location"].rsplit("/", 1)[-1]
    record = await server.runtime.session_store.get(session_id)
    assert record is not None and record.payment_ref is not None
    assert record.state == "CREATED"
    return session_id, record.payment_ref, record.hold_minor


def capturable(ref: str, amount: int) -> dict[str, Any]:
    return stripe_events.payment_intent_object(
        ref, "requires_capture", amount, amount_capturable=amount
    )


async def deliver(client: httpx.AsyncClient, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return await client.post("/webhooks/stripe", content=body, headers=headers)


async def state_of(server: RunningServer, session_id: str) -> str:
    record = await server.runtime.session_store.get(session_id)
    assert record is not None
    return record.state


async def stored_events(server: RunningServer) -> list[dict[str, Any]]:
    async with server.runtime.db.connect() as conn:
        rows = (await conn.execute(select(t.webhook_events))).mappings().all()
    return [dict(r) for r in rows]


async def charging(server: RunningServer, session_id: str) -> bool:
    return await state_of(server, session_id) == "CHARGING"


async def costing(server: RunningServer, session_id: str) -> bool:
    """Charging, and priced above zero (a stop now ends in a capture)."""
    record = await server.runtime.session_store.get(session_id)
    return record is not None and record.state == "CHARGING" and record.cost_minor > 0


def transactions_on(sim: VirtualCharger) -> int:
    return sum(1 for c in sim.connectors.values() if c.transaction is not None)


# -- a paid hold starts the charge without the browser ------------------------------
async def test_signed_capturable_event_starts_the_charge_when_the_browser_never_returns(
    stripe_server: RunningServer,
    stripe_proxy: RecordingProxy,
    browser: StripeBrowser,
    charger: VirtualCharger,
    phone: Phone,
    stripe_client: httpx.AsyncClient,
) -> None:
    session_id, ref, hold = await open_session(stripe_server, phone)
    await browser.confirm(ref)  # the phone then loses its connection: no return page
    before = len(stripe_proxy.requests)

    body, signature = stripe_events.signed_event(
        "payment_intent.amount_capturable_updated", capturable(ref, hold), WEBHOOK_SECRET
    )
    response = await deliver(stripe_client, body, signature)

    # Kept first (whole body, by id), acted on from the job queue.
    assert response.status_code == 200
    assert response.json() == {"status": "stored"}
    await eventually(lambda: charging(stripe_server, session_id))
    # The PaymentIntent was read from Stripe, not taken from the event.
    assert calls_of(stripe_proxy, before) == [StripeCall("GET", f"/v1/payment_intents/{ref}", None)]
    (event,) = await stored_events(stripe_server)
    event_id = json.loads(body)["id"]
    assert (event["id"], event["provider"], event["payment_ref"]) == (event_id, "stripe", ref)
    assert event["type"] == "payment_intent.amount_capturable_updated"
    assert json.loads(event["body"]) == json.loads(body)
    assert event["processed_at"] is not None and event["outcome"] == "confirmed"


async def test_event_for_a_hold_of_another_amount_starts_nothing(
    stripe_server: RunningServer,
    browser: StripeBrowser,
    charger: VirtualCharger,
    phone: Phone,
    stripe_client: httpx.AsyncClient,
) -> None:
    session_id, ref, hold = await open_session(stripe_server, phone)
    await browser.confirm(ref)
    # The session asks for a larger hold than the intent was paid for; the event
    # claims the session's amount. (localstripe keeps an updated amount as text,
    # so the session is changed rather than the intent.)
    await force(stripe_server, session_id, hold_minor=hold * 2)

    body, signature = stripe_events.signed_event(
        "payment_intent.amount_capturable_updated", capturable(ref, hold * 2), WEBHOOK_SECRET
    )
    response = await deliver(stripe_client, body, signature)

    assert response.status_code == 200
    await asyncio.sleep(0.3)
    assert await state_of(stripe_server, session_id) == "CREATED"
    assert transactions_on(charger) == 0


# -- signatures ---------------------------------------------------------------------
async def test_tampered_body_is_refused_and_nothing_is_stored(
    stripe_server: RunningServer,
    browser: StripeBrowser,
    charger: VirtualCharger,
    phone: Phone,
    stripe_client: httpx.AsyncClient,
) -> None:
    session_id, ref, hold = await open_session(stripe_server, phone)
    await browser.confirm(ref)
    body, signature = stripe_events.signed_event(
        "payment_intent.amount_capturable_updated", capturable(ref, hold), WEBHOOK_SECRET
    )
    tampered = body.replace(b'"amount": %d' % hold, b'"amount": %d' % (hold + 1))
    assert tampered != body

    response = await deliver(stripe_client, tampered, signature)

    assert response.status_code == 400
    assert await stored_events(stripe_server) == []
    assert await state_of(stripe_server, session_id) == "CREATED"
    assert transactions_on(charger) == 0


@pytest.mark.parametrize(
    "signature",
    ["wrong secret", "no header", "stale", "garbage"],
)
async def test_event_without_a_valid_signature_is_refused(
    stripe_server: RunningServer,
    browser: StripeBrowser,
    charger: VirtualCharger,
    phone: Phone,
    stripe_client: httpx.AsyncClient,
    signature: str,
) -> None:
    session_id, ref, hold = await open_session(stripe_server, phone)
    await browser.confirm(ref)
    event_type, obj = "payment_intent.amount_capturable_updated", capturable(ref, hold)
    body, _ = stripe_events.signed_event(event_type, obj, WEBHOOK_SECRET)
    forged: dict[str, str | None] = {
        "wrong secret": stripe_events.sign(body, "whsec_someone_else"),
        "stale": stripe_events.sign(body, WEBHOOK_SECRET, int(time.time()) - 600),
        "no header": None,
        "garbage": "t=1,v1=00",
    }

    response = await deliver(stripe_client, body, forged[signature])

    assert response.status_code == 400
    assert "error" in response.json()
    assert await stored_events(stripe_server) == []
    assert await state_of(stripe_server, session_id) == "CREATED"


# -- replays and order --------------------------------------------------------------
async def test_replayed_event_is_acknowledged_and_changes_nothing(
    stripe_server: RunningServer,
    stripe_proxy: RecordingProxy,
    browser: StripeBrowser,
    charger: VirtualCharger,
    phone: Phone,
    stripe_client: httpx.AsyncClient,
) -> None:
    session_id, ref, hold = await open_session(stripe_server, phone)
    await browser.confirm(ref)
    body, signature = stripe_events.signed_event(
        "payment_intent.amount_capturable_updated", capturable(ref, hold), WEBHOOK_SECRET
    )
    assert (await deliver(stripe_client, body, signature)).json() == {"status": "stored"}
    await eventually(lambda: charging(stripe_server, session_id))
    record = await stripe_server.runtime.session_store.get(session_id)
    assert record is not None
    before = len(stripe_proxy.requests)

    replies = [await deliver(stripe_client, body, signature) for _ in range(3)]

    assert [(r.status_code, r.json()) for r in replies] == [(200, {"status": "replay"})] * 3
    assert len(await stored_events(stripe_server)) == 1
    assert calls_of(stripe_proxy, before) == []
    after = await stripe_server.runtime.session_store.get(session_id)
    assert after is not None
    assert (after.state, after.transaction_pk) == ("CHARGING", record.transaction_pk)
    assert transactions_on(charger) == 1


async def test_canceled_event_arriving_first_cannot_stop_a_hold_that_is_good(
    stripe_server: RunningServer,
    browser: StripeBrowser,
    charger: VirtualCharger,
    phone: Phone,
    stripe_client: httpx.AsyncClient,
) -> None:
    """Stripe does not promise order: whatever an event says, the PaymentIntent is
    read, and here it is in fact authorised (requires_capture)."""
    session_id, ref, hold = await open_session(stripe_server, phone)
    await browser.confirm(ref)
    canceled = stripe_events.payment_intent_object(ref, "canceled", hold)

    first = await deliver(
        stripe_client,
        *stripe_events.signed_event("payment_intent.canceled", canceled, WEBHOOK_SECRET),
    )
    assert (first.status_code, first.json()) == (200, {"status": "stored"})
    await eventually(lambda: charging(stripe_server, session_id))

    late = await deliver(
        stripe_client,
        *stripe_events.signed_event(
            "payment_intent.amount_capturable_updated", capturable(ref, hold), WEBHOOK_SECRET
        ),
    )
    again = await deliver(
        stripe_client,
        *stripe_events.signed_event("payment_intent.canceled", canceled, WEBHOOK_SECRET),
    )

    assert [late.status_code, again.status_code] == [200, 200]
    await asyncio.sleep(0.5)
    assert await state_of(stripe_server, session_id) == "CHARGING"
    assert transactions_on(charger) == 1
    assert len(await stored_events(stripe_server)) == 3
    assert (await browser.intent(ref)).status == "requires_capture"


async def test_hold_canceled_at_stripe_under_a_running_charge_stops_it_for_review(
    stripe_server: RunningServer,
    browser: StripeBrowser,
    charger: VirtualCharger,
    phone: Phone,
    stripe_client: httpx.AsyncClient,
) -> None:
    session_id, ref, hold = await open_session(stripe_server, phone)
    await browser.confirm(ref)
    assert (await phone.client.get(f"/pay/{session_id}/return")).status_code == 303
    await eventually(lambda: costing(stripe_server, session_id))
    await browser.intents.cancel_async(ref)  # in the Dashboard, say

    response = await deliver(
        stripe_client,
        *stripe_events.signed_event(
            "payment_intent.canceled",
            stripe_events.payment_intent_object(ref, "canceled", hold),
            WEBHOOK_SECRET,
        ),
    )

    assert response.status_code == 200

    async def reviewed() -> bool:
        return await state_of(stripe_server, session_id) == "NEEDS_REVIEW"

    await eventually(reviewed)
    assert transactions_on(charger) == 0
    record = await stripe_server.runtime.session_store.get(session_id)
    assert record is not None and record.cost_minor > 0 and not record.captured_minor
    assert record.reason is not None and "refused" in record.reason


# -- Stripe out of reach ------------------------------------------------------------
async def test_event_that_cannot_be_checked_with_stripe_is_kept_and_acted_on_once_it_can(
    stripe_server: RunningServer,
    stripe_proxy: FlakyProxy,
    browser: StripeBrowser,
    charger: VirtualCharger,
    phone: Phone,
    stripe_client: httpx.AsyncClient,
) -> None:
    session_id, ref, hold = await open_session(stripe_server, phone)
    await browser.confirm(ref)
    body, signature = stripe_events.signed_event(
        "payment_intent.amount_capturable_updated", capturable(ref, hold), WEBHOOK_SECRET
    )
    stripe_proxy.down = True

    response = await deliver(stripe_client, body, signature)

    # Stripe need not send it again: the event is kept and its job tries again.
    assert (response.status_code, response.json()) == (200, {"status": "stored"})
    (job,) = await jobs_of(stripe_server, "webhook.process")

    async def tried() -> bool:
        (job,) = await jobs_of(stripe_server, "webhook.process")
        return job["last_error"] is not None and "unreachable" in job["last_error"]

    await eventually(tried)
    assert await state_of(stripe_server, session_id) == "CREATED"
    assert transactions_on(charger) == 0
    (event,) = await stored_events(stripe_server)
    assert event["processed_at"] is None

    stripe_proxy.down = False
    await make_due(stripe_server, job["id"])
    await eventually(lambda: charging(stripe_server, session_id))
    (event,) = await stored_events(stripe_server)
    assert event["processed_at"] is not None
    # And Stripe sending it again later changes nothing.
    again = await deliver(stripe_client, body, signature)
    assert (again.status_code, again.json()) == (200, {"status": "replay"})


async def jobs_of(server: RunningServer, kind: str) -> list[dict[str, Any]]:
    async with server.runtime.db.connect() as conn:
        rows = (await conn.execute(select(t.jobs).where(t.jobs.c.kind == kind))).mappings()
        return [dict(r) for r in rows]


async def make_due(server: RunningServer, job_id: int) -> None:
    async with server.runtime.db.begin() as conn:
        await conn.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(run_at=utcnow()))
    server.runtime.services.worker.wake()


# -- localstripe's own delivery -----------------------------------------------------
async def test_events_delivered_by_localstripe_are_verified_and_stored(
    stripe_server: RunningServer,
    localstripe_url: str,
    browser: StripeBrowser,
    charger: VirtualCharger,
    phone: Phone,
) -> None:
    await register_webhook(
        localstripe_url,
        f"{stripe_server.http_url}/webhooks/stripe",
        WEBHOOK_SECRET,
        ["payment_intent.payment_failed", "payment_intent.succeeded"],
    )
    try:
        session_id, ref, _ = await open_session(stripe_server, phone)
        with pytest.raises(stripe.CardError):
            await browser.confirm(ref, await browser.card(CARD_DECLINED_ON_CHARGE))

        # localstripe is shared by the whole run: events of other tests' intents
        # reach this endpoint too, so each event is looked for by its intent.
        async def stored(event_type: str, payment_ref: str) -> bool:
            return any(
                e["type"] == event_type
                and e["payment_ref"] == payment_ref
                and e["processed_at"] is not None
                for e in await stored_events(stripe_server)
            )

        await eventually(lambda: stored("payment_intent.payment_failed", ref))
        assert await state_of(stripe_server, session_id) == "CREATED"
        assert transactions_on(charger) == 0

        # A good card on the other connector (localstripe cannot take a second
        # card on a declined intent), the charge, the stop: the capture's event.
        paid_id, paid_ref, _ = await open_session(stripe_server, phone, connector_id=2)
        await browser.confirm(paid_ref)
        assert (await phone.client.get(f"/pay/{paid_id}/return")).status_code == 303
        await eventually(lambda: costing(stripe_server, paid_id))
        await phone.stop(paid_id)
        await eventually(lambda: stored("payment_intent.succeeded", paid_ref))

        events = await stored_events(stripe_server)
        assert all(e["provider"] == "stripe" and e["id"].startswith("evt_") for e in events)
        assert await state_of(stripe_server, paid_id) == "SETTLED"
    finally:
        await silence_webhook(localstripe_url)
