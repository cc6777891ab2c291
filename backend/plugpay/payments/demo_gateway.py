"""The demo payment provider: takes Stripe's place when no keys are set, fully offline.

It walks the same states as a Stripe PaymentIntent with manual capture, so the
rest of plugpay cannot tell the difference:

- a hold starts in ``requires_payment_method``;
- ``confirm(ref, "approve")`` authorises it: ``requires_capture`` (visa 4242);
- ``confirm(ref, "decline")`` leaves it in ``requires_payment_method`` with a
  decline message, ready for another card;
- ``confirm(ref, "authenticate")`` asks for the bank's check: ``requires_action``,
  then ``authenticate(ref, ok)`` authorises it or declines it;
- ``capture`` takes part or all of an authorised hold (``succeeded``), ``cancel``
  releases it (``canceled``), once per idempotency key, as Stripe does.

The demo card form of the connector page stands in for Stripe.js: it calls
:meth:`DemoGateway.confirm` (and :meth:`DemoGateway.authenticate` for the
"needs authentication" card). Intents live in a :class:`DemoPaymentStore`, so
they survive a server restart. Webhooks are signed like Stripe's, so the same
intake verifies them.

Saved cards and off-session holds are in demo_cards.py, refunds in
demo_refunds.py, the records they share in demo_base.py. Amounts Stripe could
not take are refused here too (payments/stripe_amounts.py), so that going live
turns nothing down that the demo took.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any, Literal, get_args

import msgspec

from plugpay.payments import wording
from plugpay.payments.demo_base import (
    DemoPaymentStore,
    check_amount,
    intent_record,
    new_intent,
    new_ref,
    state_of,
)
from plugpay.payments.demo_cards import SETUP_CARDS, DemoCards
from plugpay.payments.demo_refunds import DemoRefunds
from plugpay.payments.stripe_amounts import to_stripe_amount
from plugpay.payments.webhook_events import decode_event, signature_header, verify_signature
from plugpay.services.ports import (
    HoldRequest,
    PaymentDeclined,
    PaymentState,
    PaymentUnavailable,
    WebhookEvent,
)

__all__ = ["DEMO_CARDS", "SETUP_CARDS", "DemoCard", "DemoGateway", "DemoPaymentStore"]

DemoCard = Literal["approve", "decline", "authenticate"]
DEMO_CARDS: tuple[str, ...] = get_args(DemoCard)

_CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
_CANCELABLE = (*_CONFIRMABLE, "requires_capture")

# The Stripe event a webhook announces for each state of an intent.
_EVENT_TYPES = {
    "requires_capture": "payment_intent.amount_capturable_updated",
    "requires_action": "payment_intent.requires_action",
    "requires_payment_method": "payment_intent.payment_failed",
    "succeeded": "payment_intent.succeeded",
    "canceled": "payment_intent.canceled",
}


class DemoGateway(DemoCards, DemoRefunds):
    """The PaymentGateway of the demo: approve, decline or authenticate, no network.

    ``webhook_secret`` signs and verifies its webhooks; without one, a random
    secret is made for this process (pass a stable one when several server
    processes share the demo). ``api_calls`` counts the calls that would reach
    Stripe (hold, read, capture, release, …), as :class:`StripeGateway` does.
    """

    name = "demo"

    # -- the port -------------------------------------------------------------
    async def create_hold(self, request: HoldRequest) -> PaymentState:
        if request.amount_minor <= 0:
            raise ValueError("a hold must be for a positive amount")
        check_amount(request.amount_minor, request.currency)
        self.api_calls += 1
        fingerprint = f"hold:{request.session_id}:{request.amount_minor}:{request.currency}"
        async with self._lock:
            known = await self._made_by(request.idempotency_key, fingerprint)
            if known is not None:
                return state_of(await self._intent(str(known["ref"])))
            state = new_intent(new_ref("demo_pi_"), request.amount_minor, request.currency)
            record = intent_record(state, request.session_id, request.description, fingerprint)
            await self._store.save(state.ref, record)
            await self._remember_key(request.idempotency_key, {"ref": state.ref})
        return state

    async def get(self, ref: str) -> PaymentState:
        self.api_calls += 1
        return state_of(await self._intent(ref))

    async def client_secret(self, ref: str) -> str | None:
        """The secret the driver's browser pays with (kept, so not a call to Stripe)."""
        return state_of(await self._intent(ref)).client_secret

    async def capture(self, ref: str, amount_minor: int, idempotency_key: str) -> PaymentState:
        """Capture ``amount_minor`` (> 0, at most the hold); the rest is released.
        Capturing a captured hold again for the same amount answers its state."""
        if amount_minor <= 0:
            raise ValueError("capture a positive amount; a zero amount is a cancel")

        def capture(state: PaymentState) -> PaymentState:
            if state.status == "succeeded" and state.amount_received_minor == amount_minor:
                # A repeat under another key (Stripe's keys expire after 24 hours):
                # the capture happened, as the Stripe adapter also answers.
                return state
            if state.status != "requires_capture":
                raise PaymentDeclined(wording.refusal(state.status))
            if amount_minor > state.amount_minor:
                raise PaymentDeclined(wording.CAPTURE_REFUSED)
            check_amount(amount_minor, state.currency)
            return replace(state, status="succeeded", amount_received_minor=amount_minor)

        self.api_calls += 1
        return await self._once(ref, idempotency_key, f"capture:{amount_minor}", capture)

    async def cancel(self, ref: str, idempotency_key: str) -> PaymentState:
        """Release the whole hold; releasing a released hold is not an error."""

        def cancel(state: PaymentState) -> PaymentState:
            if state.status == "canceled":
                return state
            if state.status not in _CANCELABLE:
                raise PaymentDeclined(wording.refusal(state.status))
            return replace(state, status="canceled")

        self.api_calls += 1
        return await self._once(ref, idempotency_key, "cancel", cancel)

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> WebhookEvent:
        verify_signature(payload, signature_header, self._webhook_secret)
        return decode_event(payload)

    # -- the driver's side (what Stripe.js does for Stripe) --------------------
    async def confirm(self, ref: str, card: str) -> PaymentState:
        """Pay the hold with a demo card: "approve" authorises it, "decline" is
        refused (the driver may try another card), "authenticate" asks for the
        bank's verification first (:meth:`authenticate`)."""
        if card not in DEMO_CARDS:
            raise ValueError(f"unknown demo card {card!r}; one of {', '.join(DEMO_CARDS)}")

        def confirm(state: PaymentState) -> PaymentState:
            if state.status not in _CONFIRMABLE:
                raise PaymentDeclined(wording.refusal(state.status))
            if card == "approve":
                return _authorised(state, "4242")
            if card == "authenticate":
                return replace(
                    state,
                    status="requires_action",
                    card_brand="visa",
                    card_last4="3155",
                    decline_message=None,
                )
            return _declined(state, wording.DECLINED)

        return await self._change(ref, confirm)

    async def authenticate(self, ref: str, ok: bool) -> PaymentState:
        """The bank's verification of an "authenticate" card: passed or failed."""

        def authenticate(state: PaymentState) -> PaymentState:
            if state.status != "requires_action":
                raise PaymentDeclined(wording.NOT_AWAITING_AUTHENTICATION)
            if ok:
                return _authorised(state, state.card_last4 or "3155")
            return _declined(state, wording.AUTHENTICATION_FAILED)

        return await self._change(ref, authenticate)

    def signed_event(
        self,
        state: PaymentState,
        event_type: str | None = None,
        *,
        created: int | None = None,
    ) -> tuple[bytes, str]:
        """A webhook about ``state`` as Stripe would send it: (raw body, signature
        header). The type follows the state unless ``event_type`` is given."""
        at = int(time.time()) if created is None else created
        body = {
            "id": f"evt_demo_{secrets.token_hex(12)}",
            "object": "event",
            "type": event_type or _EVENT_TYPES.get(state.status, "payment_intent.processing"),
            "created": at,
            "data": {
                "object": {
                    "id": state.ref,
                    "object": "payment_intent",
                    "status": state.status,
                    "amount": to_stripe_amount(state.amount_minor, state.currency),
                    "amount_received": to_stripe_amount(
                        state.amount_received_minor, state.currency
                    ),
                    "currency": state.currency.lower(),
                }
            },
        }
        payload = msgspec.json.encode(body)
        return payload, signature_header(payload, self._webhook_secret, at)

    # -- storage ----------------------------------------------------------------
    async def _change(
        self, ref: str, change: Callable[[PaymentState], PaymentState]
    ) -> PaymentState:
        async with self._lock:
            record = await self._intent(ref)
            state = change(state_of(record))
            record["state"] = asdict(state)
            await self._store.save(ref, record)
        return state

    async def _once(
        self,
        ref: str,
        idempotency_key: str,
        request: str,
        change: Callable[[PaymentState], PaymentState],
    ) -> PaymentState:
        """Apply ``change`` once per idempotency key: a repeated key gets the first
        answer (a refusal included), as Stripe does; a key reused for another
        request is Stripe's idempotency error: "try again later"."""
        async with self._lock:
            record = await self._intent(ref)
            replies: dict[str, Any] = record["replies"]
            reply = replies.get(idempotency_key)
            if reply is not None:
                if reply["request"] != request:
                    raise PaymentUnavailable(
                        f"the idempotency key {idempotency_key!r} went with another request"
                    )
                if "declined" in reply:
                    raise PaymentDeclined(reply["declined"])
                return PaymentState(**reply["state"])
            try:
                state = change(state_of(record))
            except PaymentDeclined as refused:
                replies[idempotency_key] = {"request": request, "declined": str(refused)}
                await self._store.save(ref, record)
                raise
            record["state"] = asdict(state)
            replies[idempotency_key] = {"request": request, "state": asdict(state)}
            await self._store.save(ref, record)
        return state


def _authorised(state: PaymentState, last4: str) -> PaymentState:
    return replace(
        state,
        status="requires_capture",
        card_brand="visa",
        card_last4=last4,
        decline_message=None,
    )


def _declined(state: PaymentState, message: str) -> PaymentState:
    return replace(
        state,
        status="requires_payment_method",
        card_brand=None,
        card_last4=None,
        decline_message=message,
    )
