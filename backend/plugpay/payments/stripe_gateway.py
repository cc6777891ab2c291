"""Stripe behind the PaymentGateway port: a hold is a PaymentIntent with manual capture.

The adapter is split by feature: holds, captures, releases and webhooks here;
saved cards in stripe_cards.py, refunds in stripe_refunds.py, the shared client
and error translation in stripe_base.py, the reading of Stripe's objects in
stripe_objects.py and Stripe's units of money in stripe_amounts.py. SDK objects
never leave payments/: answers become the port's data, errors
:class:`PaymentUnavailable` (retry later with the same idempotency key) or
:class:`PaymentDeclined` (final, with words fit for the driver).
"""

from __future__ import annotations

import stripe

from plugpay.payments import wording
from plugpay.payments.stripe_amounts import to_stripe_amount
from plugpay.payments.stripe_base import (
    CLIENT_SECRETS_KEPT,
    CONFIRMABLE,
    translate_error,
)
from plugpay.payments.stripe_cards import StripeCards
from plugpay.payments.stripe_objects import EXPAND, intent_state
from plugpay.payments.stripe_refunds import StripeRefunds
from plugpay.payments.webhook_events import SIGNATURE_TOLERANCE, decode_event
from plugpay.services.ports import (
    HoldRequest,
    InvalidWebhook,
    PaymentDeclined,
    PaymentState,
    WebhookEvent,
)

__all__ = [
    "CLIENT_SECRETS_KEPT",
    "CONFIRMABLE",
    "EXPAND",
    "StripeGateway",
    "intent_state",
    "translate_error",
]


class StripeGateway(StripeCards, StripeRefunds):
    """Holds, captures, releases, saved cards and refunds through Stripe; verifies
    Stripe's webhooks. See :class:`StripeBase` for the constructor's options."""

    name = "stripe"

    async def create_hold(self, request: HoldRequest) -> PaymentState:
        if request.amount_minor <= 0:
            raise ValueError("a hold must be for a positive amount")
        params: stripe.params.PaymentIntentCreateParams = {
            "amount": to_stripe_amount(request.amount_minor, request.currency),
            "currency": request.currency.lower(),
            "capture_method": "manual",
            "metadata": {"plugpay_session": request.session_id},
        }
        if not self._localstripe:
            # Cards and the wallets the Payment Element and Express Checkout
            # Element offer (Apple Pay, Google Pay), as enabled in the Dashboard:
            # Stripe's default since API version 2023-08-16, made explicit.
            # localstripe offers cards when no payment method parameter is given.
            params["automatic_payment_methods"] = {"enabled": True}
            params["description"] = request.description
        intent = await self._request(
            lambda: self._intents.create_async(params, {"idempotency_key": request.idempotency_key})
        )
        return self._remember(intent_state(intent))

    async def get(self, ref: str) -> PaymentState:
        intent = await self._request(lambda: self._intents.retrieve_async(ref, {"expand": EXPAND}))
        return self._remember(intent_state(intent))

    async def client_secret(self, ref: str) -> str | None:
        """The secret Stripe.js confirms the hold with. It never changes for an
        intent, so it comes from memory when this process made the hold; what the
        intent's status is must still be read with :meth:`get`."""
        secret = self._client_secrets.get(ref)
        if secret is None:
            secret = (await self.get(ref)).client_secret
        return secret

    async def capture(self, ref: str, amount_minor: int, idempotency_key: str) -> PaymentState:
        """Capture ``amount_minor`` (> 0) of the hold; Stripe releases the rest.

        Stripe answers a repeated key with the first answer, for 24 hours. Past
        that (or at a stand-in that ignores keys) a repeat is refused because the
        intent is already captured: the intent is read back, and a capture of the
        same amount counts as done rather than as a failure.

        The amount goes in Stripe's units of the hold's currency, known from any
        earlier answer about the hold in this process, else read first.
        """
        if amount_minor <= 0:
            raise ValueError("capture a positive amount; a zero amount is a cancel")
        currency = self._currencies.get(ref) or (await self.get(ref)).currency
        amount = to_stripe_amount(amount_minor, currency)
        try:
            intent = await self._request(
                lambda: self._intents.capture_async(
                    ref,
                    {"amount_to_capture": amount, "expand": EXPAND},
                    {"idempotency_key": idempotency_key},
                )
            )
        except PaymentDeclined as refused:
            state = await self.get(ref)
            if state.status == "succeeded" and state.amount_received_minor == amount_minor:
                return state
            raise PaymentDeclined(
                wording.refusal(state.status, str(refused))
            ) from refused.__cause__
        state = self._remember(intent_state(intent))
        if state.status not in ("succeeded", "processing"):
            # Not a capture, whatever the HTTP status said (localstripe "captures"
            # a released hold and answers with the canceled intent).
            raise PaymentDeclined(wording.refusal(state.status))
        return state

    async def cancel(self, ref: str, idempotency_key: str) -> PaymentState:
        """Release the whole hold; releasing a released hold is not an error."""
        try:
            intent = await self._request(
                lambda: self._intents.cancel_async(
                    ref, {"expand": EXPAND}, {"idempotency_key": idempotency_key}
                )
            )
        except PaymentDeclined as refused:
            state = await self.get(ref)
            if state.status == "canceled":
                return state
            raise PaymentDeclined(
                wording.refusal(state.status, str(refused))
            ) from refused.__cause__
        return self._remember(intent_state(intent))

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> WebhookEvent:
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature_header, self._webhook_secret, SIGNATURE_TOLERANCE
            )
        except (stripe.SignatureVerificationError, ValueError, TypeError) as exc:
            # ValueError: a body that is not UTF-8; TypeError: a non-ASCII signature.
            raise InvalidWebhook("the Stripe signature does not verify") from exc
        return decode_event(payload)
