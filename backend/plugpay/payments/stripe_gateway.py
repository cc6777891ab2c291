"""Stripe behind the PaymentGateway port: a hold is a PaymentIntent with manual capture.

Every call goes through the SDK's async methods (``*_async`` over its httpx
client), so no request blocks the event loop. SDK objects never leave this
module: answers become :class:`PaymentState`, errors become
:class:`PaymentUnavailable` (retry later with the same idempotency key) or
:class:`PaymentDeclined` (final, with words fit for the driver).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import stripe

from plugpay.payments import wording
from plugpay.payments.webhook_events import SIGNATURE_TOLERANCE, decode_event
from plugpay.services.ports import (
    HoldRequest,
    InvalidWebhook,
    PaymentDeclined,
    PaymentState,
    PaymentUnavailable,
    WebhookEvent,
)

log = logging.getLogger(__name__)

# The statuses in which the driver's browser can still pay the hold.
CONFIRMABLE = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})

# The charge carries the card that paid (wallets included); the payment method is
# the fallback where a charge has no details (localstripe's never do).
EXPAND = ["latest_charge", "payment_method"]

# Client secrets of the holds made by this process, so that showing the payment
# page needs no request to Stripe; a hold made elsewhere (another instance, before
# a restart) is read from Stripe once. Holds wait for payment minutes, not days.
CLIENT_SECRETS_KEPT = 4096


class StripeGateway:
    """Holds, captures and releases through Stripe; verifies Stripe's webhooks.

    ``api_calls`` counts the requests made to Stripe (retries inside the SDK
    aside), for the benchmark's calls-per-session figure.

    ``localstripe=True`` is for the localstripe test server only: it refuses the
    ``automatic_payment_methods`` and ``description`` parameters it does not
    model, so holds leave them out there (and localstripe offers cards).
    """

    name = "stripe"

    def __init__(
        self,
        secret_key: str,
        publishable_key: str,
        webhook_secret: str,
        api_base: str | None = None,
        *,
        max_network_retries: int = 2,
        timeout: float = 20.0,
        localstripe: bool = False,
    ) -> None:
        self.publishable_key: str | None = publishable_key
        self.api_calls = 0
        self._webhook_secret = webhook_secret
        self._localstripe = localstripe
        self._http = stripe.HTTPXClient(timeout=timeout)
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=self._http,
        )
        self._intents = self._client.v1.payment_intents
        self._client_secrets: OrderedDict[str, str] = OrderedDict()

    async def close(self) -> None:
        """Close the pooled HTTP connections."""
        await self._http.close_async()  # type: ignore[no-untyped-call]  # untyped in the SDK

    async def create_hold(self, request: HoldRequest) -> PaymentState:
        if request.amount_minor <= 0:
            raise ValueError("a hold must be for a positive amount")
        params: stripe.params.PaymentIntentCreateParams = {
            "amount": request.amount_minor,
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
        state = intent_state(intent)
        self._remember_client_secret(state)
        return state

    async def get(self, ref: str) -> PaymentState:
        intent = await self._request(lambda: self._intents.retrieve_async(ref, {"expand": EXPAND}))
        return intent_state(intent)

    async def client_secret(self, ref: str) -> str | None:
        """The secret Stripe.js confirms the hold with. It never changes for an
        intent, so it comes from memory when this process made the hold; what the
        intent's status is must still be read with :meth:`get`."""
        secret = self._client_secrets.get(ref)
        if secret is None:
            state = await self.get(ref)
            self._remember_client_secret(state)
            secret = state.client_secret
        return secret

    def _remember_client_secret(self, state: PaymentState) -> None:
        if state.client_secret is None or state.status not in CONFIRMABLE:
            return
        self._client_secrets[state.ref] = state.client_secret
        while len(self._client_secrets) > CLIENT_SECRETS_KEPT:
            self._client_secrets.popitem(last=False)

    async def capture(self, ref: str, amount_minor: int, idempotency_key: str) -> PaymentState:
        """Capture ``amount_minor`` (> 0) of the hold; Stripe releases the rest.

        Stripe answers a repeated key with the first answer, for 24 hours. Past
        that (or at a stand-in that ignores keys) a repeat is refused because the
        intent is already captured: the intent is read back, and a capture of the
        same amount counts as done rather than as a failure.
        """
        if amount_minor <= 0:
            raise ValueError("capture a positive amount; a zero amount is a cancel")
        try:
            intent = await self._request(
                lambda: self._intents.capture_async(
                    ref,
                    {"amount_to_capture": amount_minor, "expand": EXPAND},
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
        self._client_secrets.pop(ref, None)
        state = intent_state(intent)
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
        self._client_secrets.pop(ref, None)
        return intent_state(intent)

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> WebhookEvent:
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature_header, self._webhook_secret, SIGNATURE_TOLERANCE
            )
        except (stripe.SignatureVerificationError, ValueError, TypeError) as exc:
            # ValueError: a body that is not UTF-8; TypeError: a non-ASCII signature.
            raise InvalidWebhook("the Stripe signature does not verify") from exc
        return decode_event(payload)

    async def _request(
        self, call: Callable[[], Awaitable[stripe.PaymentIntent]]
    ) -> stripe.PaymentIntent:
        self.api_calls += 1
        try:
            return await call()
        except stripe.StripeError as exc:
            error = translate_error(exc)
            if isinstance(error, PaymentUnavailable):
                log.warning("Stripe unavailable: %s", error)
            raise error from exc


def translate_error(exc: stripe.StripeError) -> PaymentUnavailable | PaymentDeclined:
    """The port's exception for an SDK error: unavailable (try again later with the
    same idempotency key) or declined (final, in the driver's words)."""
    if isinstance(exc, stripe.CardError):
        error = exc.error
        decline_code = error.decline_code if error is not None else None
        return PaymentDeclined(wording.decline_message(exc.code, decline_code))
    if isinstance(exc, stripe.InvalidRequestError | stripe.IdempotencyError):
        if exc.http_status == 404:
            return PaymentDeclined(wording.UNKNOWN_PAYMENT)
        return PaymentDeclined(wording.REFUSED)
    # Connection failures, 5xx, 409 conflicts, rate limits; and a rejected API
    # key, which no driver can fix and an operator can: retrying (then review)
    # keeps the hold's money from being lost to a configuration slip.
    if isinstance(exc, stripe.APIConnectionError):
        return PaymentUnavailable("Stripe could not be reached")
    if isinstance(exc, stripe.RateLimitError):
        return PaymentUnavailable("Stripe is rate limiting requests")
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return PaymentUnavailable(f"Stripe refused the API key (HTTP {exc.http_status})")
    return PaymentUnavailable(f"Stripe answered HTTP {exc.http_status} ({exc.code or 'no code'})")


# -- reading a PaymentIntent ----------------------------------------------------
class _Card(msgspec.Struct):
    brand: str | None = None
    last4: str | None = None


class _Details(msgspec.Struct):
    card: _Card | None = None


class _Charge(msgspec.Struct):
    amount: int = 0
    captured: bool = False
    amount_refunded: int = 0
    payment_method_details: _Details | None = None


class _PaymentMethod(msgspec.Struct):
    card: _Card | None = None


class _Error(msgspec.Struct):
    code: str | None = None
    decline_code: str | None = None


class _Intent(msgspec.Struct):
    id: str
    status: str
    amount: int
    currency: str
    client_secret: str | None = None
    amount_received: int | None = None
    latest_charge: _Charge | str | None = None
    payment_method: _PaymentMethod | str | None = None
    last_payment_error: _Error | None = None


def intent_state(intent: stripe.PaymentIntent) -> PaymentState:
    """What the port needs from a PaymentIntent (with ``EXPAND`` applied)."""
    data: dict[str, Any] = intent.to_dict()
    pi = msgspec.convert(data, _Intent)
    charge = pi.latest_charge if isinstance(pi.latest_charge, _Charge) else None
    card = _card_of(pi, charge)
    # After a decline the card is gone from the intent (Stripe clears it); only
    # the decline is worth telling.
    declined = pi.status == "requires_payment_method"
    decline_message = None
    if declined and pi.last_payment_error is not None:
        decline_message = wording.decline_message(
            pi.last_payment_error.code, pi.last_payment_error.decline_code
        )
    return PaymentState(
        ref=pi.id,
        status=pi.status,
        amount_minor=pi.amount,
        currency=pi.currency.upper(),
        client_secret=pi.client_secret,
        amount_received_minor=_amount_received(pi, charge),
        card_brand=None if declined or card is None else card.brand,
        card_last4=None if declined or card is None else card.last4,
        decline_message=decline_message,
    )


def _card_of(pi: _Intent, charge: _Charge | None) -> _Card | None:
    details = charge.payment_method_details if charge is not None else None
    if details is not None and details.card is not None:
        return details.card
    if isinstance(pi.payment_method, _PaymentMethod):
        return pi.payment_method.card
    return None


def _amount_received(pi: _Intent, charge: _Charge | None) -> int:
    if pi.amount_received is not None:
        return pi.amount_received
    # localstripe has no amount_received, and books a partial capture as a full
    # capture with the remainder refunded.
    if charge is None or not charge.captured:
        return 0
    return charge.amount - charge.amount_refunded
