"""The demo payment provider: Stripe's states, idempotency and signed webhooks, offline."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import stripe

from plugpay.payments import wording
from plugpay.payments.demo_gateway import DemoGateway
from plugpay.services.ports import (
    HoldRequest,
    InvalidWebhook,
    PaymentDeclined,
    PaymentGateway,
    PaymentState,
    PaymentUnavailable,
)
from support import stripe_events

SECRET = "whsec_demo_test"


class MemoryStore:
    """Keeps what a database would: JSON, copied in and out."""

    def __init__(self) -> None:
        self.rows: dict[str, str] = {}

    async def load(self, ref: str) -> dict[str, Any] | None:
        row = self.rows.get(ref)
        return None if row is None else json.loads(row)

    async def save(self, ref: str, data: dict[str, Any]) -> None:
        self.rows[ref] = json.dumps(data)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def gateway(store: MemoryStore) -> DemoGateway:
    return DemoGateway(store, webhook_secret=SECRET)


def hold_request(session_id: str = "sess-1", amount: int = 5000, key: str = "") -> HoldRequest:
    return HoldRequest(
        session_id=session_id,
        amount_minor=amount,
        currency="EUR",
        description=f"Charging session {session_id}",
        idempotency_key=key or f"{session_id}:hold",
    )


async def authorised(
    gateway: DemoGateway, amount: int = 5000, session_id: str = "sess-1"
) -> PaymentState:
    state = await gateway.create_hold(hold_request(session_id, amount))
    return await gateway.confirm(state.ref, "approve")


def test_the_demo_gateway_is_a_payment_gateway(gateway: DemoGateway) -> None:
    port: PaymentGateway = gateway
    assert (port.name, port.publishable_key) == ("demo", None)


# -- holds ------------------------------------------------------------------------
async def test_hold_waits_for_a_card(gateway: DemoGateway) -> None:
    state = await gateway.create_hold(hold_request(amount=5000))

    assert state.ref.startswith("demo_pi_")
    assert state.status == "requires_payment_method"
    assert (state.amount_minor, state.currency, state.amount_received_minor) == (5000, "EUR", 0)
    assert state.client_secret is not None and state.client_secret.startswith(state.ref)
    assert await gateway.get(state.ref) == state


async def test_hold_refs_are_unguessable(gateway: DemoGateway) -> None:
    refs = {(await gateway.create_hold(hold_request(f"s{i}"))).ref for i in range(20)}

    assert len(refs) == 20
    assert all(len(ref) >= len("demo_pi_") + 24 for ref in refs)


async def test_the_same_hold_key_gives_the_same_hold(gateway: DemoGateway) -> None:
    first = await gateway.create_hold(hold_request())

    assert await gateway.create_hold(hold_request()) == first


async def test_a_hold_key_reused_for_another_hold_is_a_retry_later(gateway: DemoGateway) -> None:
    # Stripe's idempotency error: nothing about the card, so never a decline.
    await gateway.create_hold(hold_request(amount=5000, key="k"))

    with pytest.raises(PaymentUnavailable):
        await gateway.create_hold(hold_request(amount=6000, key="k"))


async def test_a_hold_must_be_for_a_positive_amount(gateway: DemoGateway) -> None:
    with pytest.raises(ValueError, match="positive"):
        await gateway.create_hold(hold_request(amount=0))


# -- the demo card form -------------------------------------------------------------
async def test_approved_card_authorises_the_hold(gateway: DemoGateway) -> None:
    state = await authorised(gateway)

    assert state.status == "requires_capture"
    assert (state.card_brand, state.card_last4) == ("visa", "4242")
    assert state.decline_message is None
    assert await gateway.get(state.ref) == state


async def test_declined_card_can_be_followed_by_another_card(gateway: DemoGateway) -> None:
    hold = await gateway.create_hold(hold_request())

    declined = await gateway.confirm(hold.ref, "decline")

    assert declined.status == "requires_payment_method"
    assert declined.decline_message == "Your card was declined."
    assert (declined.card_brand, declined.card_last4) == (None, None)
    approved = await gateway.confirm(hold.ref, "approve")
    assert approved.status == "requires_capture"
    assert approved.decline_message is None


async def test_card_needing_authentication_asks_for_it_then_authorises(
    gateway: DemoGateway,
) -> None:
    hold = await gateway.create_hold(hold_request())

    challenged = await gateway.confirm(hold.ref, "authenticate")
    assert challenged.status == "requires_action"

    passed = await gateway.authenticate(hold.ref, ok=True)
    assert passed.status == "requires_capture"
    assert (passed.card_brand, passed.card_last4) == ("visa", "3155")


async def test_failed_authentication_is_a_decline(gateway: DemoGateway) -> None:
    hold = await gateway.create_hold(hold_request())
    await gateway.confirm(hold.ref, "authenticate")

    failed = await gateway.authenticate(hold.ref, ok=False)

    assert failed.status == "requires_payment_method"
    assert failed.decline_message == wording.AUTHENTICATION_FAILED
    assert (failed.card_brand, failed.card_last4) == (None, None)


async def test_authentication_without_a_challenge_is_refused(gateway: DemoGateway) -> None:
    state = await authorised(gateway)

    with pytest.raises(PaymentDeclined, match=wording.NOT_AWAITING_AUTHENTICATION):
        await gateway.authenticate(state.ref, ok=True)


async def test_an_authorised_hold_cannot_be_paid_again(gateway: DemoGateway) -> None:
    state = await authorised(gateway)

    with pytest.raises(PaymentDeclined):
        await gateway.confirm(state.ref, "decline")
    assert (await gateway.get(state.ref)).status == "requires_capture"


async def test_unknown_demo_card_is_a_programming_error(gateway: DemoGateway) -> None:
    hold = await gateway.create_hold(hold_request())

    with pytest.raises(ValueError, match="unknown demo card"):
        await gateway.confirm(hold.ref, "steal")


async def test_unknown_payment_is_declined(gateway: DemoGateway) -> None:
    for ref in ("demo_pi_nothere", "demo_key:sess-1:hold", "pi_real_stripe"):
        with pytest.raises(PaymentDeclined, match=wording.UNKNOWN_PAYMENT):
            await gateway.get(ref)


# -- capture and release -------------------------------------------------------------
async def test_capture_takes_part_of_the_hold(gateway: DemoGateway) -> None:
    state = await authorised(gateway, amount=5000)

    captured = await gateway.capture(state.ref, 1234, "sess-1:capture")

    assert captured.status == "succeeded"
    assert captured.amount_received_minor == 1234
    assert (captured.card_brand, captured.card_last4) == ("visa", "4242")
    assert await gateway.get(state.ref) == captured


async def test_capture_of_the_whole_hold(gateway: DemoGateway) -> None:
    state = await authorised(gateway, amount=5000)

    assert (await gateway.capture(state.ref, 5000, "k")).amount_received_minor == 5000


async def test_capture_of_more_than_the_hold_is_declined(gateway: DemoGateway) -> None:
    state = await authorised(gateway, amount=5000)

    with pytest.raises(PaymentDeclined, match=wording.CAPTURE_REFUSED):
        await gateway.capture(state.ref, 5001, "sess-1:capture")


@pytest.mark.parametrize("amount", [0, -1])
async def test_capture_of_nothing_is_the_callers_cancel(gateway: DemoGateway, amount: int) -> None:
    state = await authorised(gateway)

    with pytest.raises(ValueError, match="zero amount is a cancel"):
        await gateway.capture(state.ref, amount, "sess-1:capture")


async def test_capture_twice_with_the_same_key_captures_once(gateway: DemoGateway) -> None:
    state = await authorised(gateway)
    first = await gateway.capture(state.ref, 1234, "sess-1:capture")

    assert await gateway.capture(state.ref, 1234, "sess-1:capture") == first


async def test_concurrent_captures_with_the_same_key_capture_once(gateway: DemoGateway) -> None:
    state = await authorised(gateway)

    first, second = await asyncio.gather(
        gateway.capture(state.ref, 1234, "sess-1:capture"),
        gateway.capture(state.ref, 1234, "sess-1:capture"),
    )

    assert first == second
    assert first.amount_received_minor == 1234


async def test_same_capture_key_with_another_amount_is_a_retry_later(
    gateway: DemoGateway,
) -> None:
    state = await authorised(gateway)
    await gateway.capture(state.ref, 1234, "sess-1:capture")

    with pytest.raises(PaymentUnavailable):
        await gateway.capture(state.ref, 999, "sess-1:capture")
    assert (await gateway.get(state.ref)).amount_received_minor == 1234


async def test_the_same_capture_under_another_key_answers_the_capture(
    gateway: DemoGateway,
) -> None:
    # As the Stripe adapter does once Stripe has forgotten the first key.
    state = await authorised(gateway)
    first = await gateway.capture(state.ref, 1234, "sess-1:capture")

    assert await gateway.capture(state.ref, 1234, "another-key") == first


async def test_a_second_capture_of_another_amount_is_declined(gateway: DemoGateway) -> None:
    state = await authorised(gateway)
    await gateway.capture(state.ref, 1234, "sess-1:capture")

    with pytest.raises(PaymentDeclined, match=wording.ALREADY_CAPTURED):
        await gateway.capture(state.ref, 2000, "another-key")


async def test_a_refused_capture_is_refused_again_for_the_same_key(gateway: DemoGateway) -> None:
    hold = await gateway.create_hold(hold_request())
    with pytest.raises(PaymentDeclined, match=wording.NOT_AUTHORISED):
        await gateway.capture(hold.ref, 1000, "sess-1:capture")
    await gateway.confirm(hold.ref, "approve")

    # As at Stripe, a key keeps its first answer; a new attempt needs a new key.
    with pytest.raises(PaymentDeclined, match=wording.NOT_AUTHORISED):
        await gateway.capture(hold.ref, 1000, "sess-1:capture")
    assert (await gateway.capture(hold.ref, 1000, "sess-1:capture-2")).status == "succeeded"


async def test_cancel_releases_the_hold(gateway: DemoGateway) -> None:
    state = await authorised(gateway)

    released = await gateway.cancel(state.ref, "sess-1:cancel")

    assert released.status == "canceled"
    assert released.amount_received_minor == 0
    assert await gateway.cancel(state.ref, "sess-1:cancel") == released
    assert await gateway.cancel(state.ref, "another-key") == released


async def test_an_unconfirmed_hold_can_be_released(gateway: DemoGateway) -> None:
    hold = await gateway.create_hold(hold_request())

    assert (await gateway.cancel(hold.ref, "k")).status == "canceled"


async def test_capture_after_release_is_declined(gateway: DemoGateway) -> None:
    state = await authorised(gateway)
    await gateway.cancel(state.ref, "sess-1:cancel")

    with pytest.raises(PaymentDeclined, match=wording.ALREADY_RELEASED):
        await gateway.capture(state.ref, 1000, "sess-1:capture")


async def test_release_after_capture_is_declined(gateway: DemoGateway) -> None:
    state = await authorised(gateway)
    await gateway.capture(state.ref, 1000, "sess-1:capture")

    with pytest.raises(PaymentDeclined, match=wording.ALREADY_CAPTURED):
        await gateway.cancel(state.ref, "sess-1:cancel")


async def test_a_released_hold_cannot_be_paid(gateway: DemoGateway) -> None:
    hold = await gateway.create_hold(hold_request())
    await gateway.cancel(hold.ref, "k")

    with pytest.raises(PaymentDeclined, match=wording.ALREADY_RELEASED):
        await gateway.confirm(hold.ref, "approve")


# -- a server restart ---------------------------------------------------------------
async def test_payments_survive_a_restart(store: MemoryStore) -> None:
    before = DemoGateway(store, webhook_secret=SECRET)
    hold = await before.create_hold(hold_request())
    await before.confirm(hold.ref, "approve")
    captured = await before.capture(hold.ref, 1234, "sess-1:capture")

    after = DemoGateway(store, webhook_secret=SECRET)

    assert await after.get(hold.ref) == captured
    assert await after.capture(hold.ref, 1234, "sess-1:capture") == captured
    assert (await after.create_hold(hold_request())).ref == hold.ref


# -- counting calls ---------------------------------------------------------------------
async def test_api_calls_count_what_would_reach_stripe(gateway: DemoGateway) -> None:
    hold = await gateway.create_hold(hold_request())
    await gateway.confirm(hold.ref, "approve")  # the browser's part, not the server's
    await gateway.get(hold.ref)
    await gateway.capture(hold.ref, 1000, "sess-1:capture")

    assert gateway.api_calls == 3


# -- webhooks -------------------------------------------------------------------------
async def test_signed_event_verifies_and_names_the_intent(gateway: DemoGateway) -> None:
    state = await authorised(gateway)

    body, header = gateway.signed_event(state)
    event = gateway.parse_webhook(body, header)

    assert event.type == "payment_intent.amount_capturable_updated"
    assert event.payment_ref == state.ref
    assert event.id.startswith("evt_demo_")
    assert abs(event.created - time.time()) < 5


async def test_event_types_follow_the_state(gateway: DemoGateway) -> None:
    state = await authorised(gateway)
    captured = await gateway.capture(state.ref, 100, "k")
    released = await gateway.cancel((await authorised(gateway, session_id="sess-2")).ref, "k")

    types = [gateway.parse_webhook(*gateway.signed_event(s)).type for s in (captured, released)]

    assert types == ["payment_intent.succeeded", "payment_intent.canceled"]


async def test_demo_webhooks_are_signed_as_stripe_signs(gateway: DemoGateway) -> None:
    body, header = gateway.signed_event(await authorised(gateway))

    assert stripe.WebhookSignature.verify_header(body, header, SECRET, 300)


def test_demo_accepts_a_stripe_style_event(gateway: DemoGateway) -> None:
    body, header = stripe_events.signed_event(
        "charge.captured",
        stripe_events.charge_object("demo_pi_x", 100, captured=True),
        SECRET,
        event_id="evt_1",
    )

    event = gateway.parse_webhook(body, header)

    assert (event.id, event.type, event.payment_ref) == ("evt_1", "charge.captured", "demo_pi_x")


async def test_tampered_event_is_rejected(gateway: DemoGateway) -> None:
    state = await authorised(gateway)
    body, header = gateway.signed_event(state)

    with pytest.raises(InvalidWebhook):
        gateway.parse_webhook(body.replace(state.ref.encode(), b"demo_pi_other"), header)


async def test_event_signed_with_another_secret_is_rejected(store: MemoryStore) -> None:
    other = DemoGateway(store)  # a secret of its own
    gateway = DemoGateway(store, webhook_secret=SECRET)
    body, header = other.signed_event(await authorised(other))

    with pytest.raises(InvalidWebhook):
        gateway.parse_webhook(body, header)


async def test_stale_event_is_rejected(gateway: DemoGateway) -> None:
    state = await authorised(gateway)
    now = int(time.time())

    with pytest.raises(InvalidWebhook):
        gateway.parse_webhook(*gateway.signed_event(state, created=now - 301))
    assert gateway.parse_webhook(*gateway.signed_event(state, created=now - 290))


@pytest.mark.parametrize(
    "header",
    [None, "", "t=1", "v1=abc", "nonsense", "t=x,v1=abc", "t=1,v2=abc", "t=1,v1=\u00e9"],
)
def test_event_without_a_usable_signature_is_rejected(
    gateway: DemoGateway, header: str | None
) -> None:
    body, _ = stripe_events.signed_event(
        "payment_intent.canceled",
        stripe_events.payment_intent_object("demo_pi_x", "canceled", 1),
        SECRET,
    )
    with pytest.raises(InvalidWebhook):
        gateway.parse_webhook(body, header)


@pytest.mark.parametrize(
    "body", [b"{not json", b"[]", b'{"id": "evt_1"}', b"\xff\xfe", b'{"object": "charge"}']
)
def test_signed_body_that_is_not_an_event_is_rejected(gateway: DemoGateway, body: bytes) -> None:
    with pytest.raises(InvalidWebhook):
        gateway.parse_webhook(body, stripe_events.sign(body, SECRET))


def test_a_valid_signature_among_several_is_enough(gateway: DemoGateway) -> None:
    # Stripe sends one v1 per active secret while a secret is being rolled.
    body, header = stripe_events.signed_event(
        "payment_intent.canceled",
        stripe_events.payment_intent_object("demo_pi_x", "canceled", 1),
        SECRET,
    )
    t, v1 = header.split(",")
    rolled = f"{t},v1={'0' * 64},{v1}"

    assert gateway.parse_webhook(body, rolled).payment_ref == "demo_pi_x"
