"""The Stripe client every part of the adapter shares, and how its errors reach the port.

Every call goes through the SDK's async methods (``*_async`` over its httpx
client), so no request blocks the event loop. Errors become
:class:`PaymentUnavailable` (retry later with the same idempotency key) or
:class:`PaymentDeclined` (final, with words fit for the driver).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

import stripe

from plugpay.payments import wording
from plugpay.services.ports.payments import PaymentDeclined, PaymentState, PaymentUnavailable

log = logging.getLogger("plugpay.payments.stripe_gateway")

T = TypeVar("T")

# The statuses in which the driver's browser can still pay the hold.
CONFIRMABLE = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})

# Client secrets of the holds made by this process, so that showing the payment
# page needs no request to Stripe; a hold made elsewhere (another instance, before
# a restart) is read from Stripe once. Holds wait for payment minutes, not days.
CLIENT_SECRETS_KEPT = 4096

# The currency of every intent this process has seen, because a capture's amount
# is written in the intent's currency's Stripe units and the port's capture names
# no currency: a capture of a hold seen here needs no read first. Holds live for
# hours to days; this many outlive them.
CURRENCIES_KEPT = 65536


class StripeBase:
    """The SDK client, the request counter and the error translation.

    ``api_calls`` counts the requests made to Stripe (retries inside the SDK
    aside), for the benchmark's calls-per-session figure.

    ``localstripe=True`` is for the localstripe test server only: it refuses
    parameters it does not model (``automatic_payment_methods``, ``description``,
    a refund's ``reason``), so requests leave them out there.
    """

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
        self._currencies: OrderedDict[str, str] = OrderedDict()

    async def close(self) -> None:
        """Close the pooled HTTP connections."""
        await self._http.close_async()  # type: ignore[no-untyped-call]  # untyped in the SDK

    async def _request(
        self, call: Callable[[], Awaitable[T]], unknown: str = wording.UNKNOWN_PAYMENT
    ) -> T:
        """One request to Stripe; ``unknown`` is what a 404 tells the driver."""
        self.api_calls += 1
        try:
            return await call()
        except stripe.StripeError as exc:
            error = translate_error(exc, unknown)
            if isinstance(error, PaymentUnavailable):
                log.warning("Stripe unavailable: %s", error)
            raise error from exc

    def _remember(self, state: PaymentState) -> PaymentState:
        """Keep what later calls about this intent need without asking Stripe."""
        self._currencies[state.ref] = state.currency
        self._currencies.move_to_end(state.ref)
        while len(self._currencies) > CURRENCIES_KEPT:
            self._currencies.popitem(last=False)
        if state.status not in CONFIRMABLE:
            self._client_secrets.pop(state.ref, None)
        elif state.client_secret is not None:
            self._client_secrets[state.ref] = state.client_secret
            while len(self._client_secrets) > CLIENT_SECRETS_KEPT:
                self._client_secrets.popitem(last=False)
        return state


def translate_error(
    exc: stripe.StripeError, unknown: str = wording.UNKNOWN_PAYMENT
) -> PaymentUnavailable | PaymentDeclined:
    """The port's exception for an SDK error: unavailable (try again later with the
    same idempotency key) or declined (final, in the driver's words)."""
    if isinstance(exc, stripe.CardError):
        error = exc.error
        decline_code = error.decline_code if error is not None else None
        intent = error.payment_intent if error is not None else None
        return PaymentDeclined(
            wording.decline_message(exc.code, decline_code),
            payment_ref=intent.id if intent is not None else None,
        )
    if (
        isinstance(exc, stripe.IdempotencyError)
        or exc.http_status == 409
        or exc.code == "idempotency_key_in_use"
    ):
        # The key is still in use by a request Stripe is running (409), or went with
        # other parameters (400, idempotency_error). Neither says anything about the
        # card: a retry with the same key later gets the first request's answer, or
        # runs afresh once Stripe has pruned the key (after 24 hours). A decline here
        # would send a paid session to review.
        return PaymentUnavailable(
            f"Stripe has the idempotency key in use (HTTP {exc.http_status}): retry later"
        )
    if isinstance(exc, stripe.InvalidRequestError):
        if exc.http_status == 404:
            return PaymentDeclined(unknown)
        return PaymentDeclined(wording.REFUSED)
    # Connection failures, 5xx, rate limits; and a rejected API key, which no
    # driver can fix and an operator can: retrying (then review) keeps the hold's
    # money from being lost to a configuration slip.
    if isinstance(exc, stripe.APIConnectionError):
        return PaymentUnavailable("Stripe could not be reached")
    if isinstance(exc, stripe.RateLimitError):
        return PaymentUnavailable("Stripe is rate limiting requests")
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return PaymentUnavailable(f"Stripe refused the API key (HTTP {exc.http_status})")
    return PaymentUnavailable(f"Stripe answered HTTP {exc.http_status} ({exc.code or 'no code'})")
