"""Helpers for the app running with PLUGPAY_PAYMENTS=stripe against localstripe: the
driver's browser doing over the Stripe API what Stripe.js does, the server's Stripe
requests in comparable form, and a proxy that can play a Stripe outage.
The fixtures that use them are in support/stripe_fixtures.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import stripe
from aiohttp import web

from support.localstripe import Recorded, RecordingProxy

SECRET_KEY = "sk_test_plugpay"
PUBLISHABLE_KEY = "pk_test_plugpay"
WEBHOOK_SECRET = "whsec_plugpay_flow"

VISA = "pm_card_visa"
CARD_NEEDS_3DS = "4000002500003155"
CARD_DECLINED_ON_CHARGE = "4000000000000341"


class FlakyProxy(RecordingProxy):
    """The recording proxy, which answers 503 like a Stripe outage while ``down``."""

    down = False

    async def _forward(self, request: web.Request) -> web.Response:
        if self.down:
            return web.json_response(
                {"error": {"type": "api_error", "message": "Stripe is down (test)"}}, status=503
            )
        return await super()._forward(request)


@dataclass(frozen=True)
class StripeCall:
    """One request the server made to Stripe, in a form a test can compare."""

    method: str
    path: str
    idempotency_key: str | None

    @classmethod
    def of(cls, recorded: Recorded) -> StripeCall:
        path = recorded.path.split("?", 1)[0]
        return cls(recorded.method, path, recorded.headers.get("Idempotency-Key"))


def calls_of(proxy: RecordingProxy, since: int = 0) -> list[StripeCall]:
    return [StripeCall.of(r) for r in proxy.requests[since:]]


class StripeBrowser:
    """What Stripe.js does in the driver's browser, done over the Stripe API.

    It talks to localstripe directly (not through the server's proxy), so the
    proxy's record holds only the server's own requests.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = stripe.HTTPXClient()
        self.client = stripe.StripeClient(
            SECRET_KEY,
            base_addresses={"api": base_url},
            max_network_retries=0,
            http_client=self.http,
        )
        self.intents = self.client.v1.payment_intents

    async def close(self) -> None:
        await self.http.close_async()  # type: ignore[no-untyped-call]

    async def card(self, number: str) -> str:
        """A card payment method; attached to a customer, as localstripe needs for
        its card-specific behaviour (declines)."""
        method = await self.client.v1.payment_methods.create_async(
            {
                "type": "card",
                "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
            }
        )
        buyer = await self.client.v1.customers.create_async({})
        await self.client.v1.payment_methods.attach_async(method.id, {"customer": buyer.id})
        return method.id

    async def confirm(self, ref: str, payment_method: str = VISA) -> None:
        """stripe.confirmPayment: the card goes on the intent, which is confirmed.
        A declined card raises ``stripe.CardError`` (Stripe.js shows its message).

        localstripe answers 500 to confirm(payment_method=…), so the method is
        set first, then the intent confirmed.
        """
        await self.intents.update_async(ref, {"payment_method": payment_method})
        await self.intents.confirm_async(ref)

    async def authenticate(self, ref: str, client_secret: str, success: bool) -> None:
        """The 3-D Secure challenge, passed or failed (localstripe's stand-in for it)."""
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{self.base_url}/v1/payment_intents/{ref}/_authenticate",
                data={
                    "key": PUBLISHABLE_KEY,
                    "client_secret": client_secret,
                    "success": "true" if success else "false",
                },
            )
            response.raise_for_status()

    async def intent(self, ref: str) -> stripe.PaymentIntent:
        return await self.intents.retrieve_async(ref, {"expand": ["latest_charge"]})


async def save_card(browser: StripeBrowser, setup_ref: str, customer_ref: str, number: str) -> str:
    """stripe.confirmSetup with a new card, as the Payment Element does: returns the
    saved card's id.

    Where localstripe falls short of Stripe, the stand-in does Stripe's part:
    a card that asks for 3-D Secure is passed by confirming again (localstripe has
    no challenge for setups), and the card of a succeeded setup is attached to the
    setup's customer (Stripe attaches it, localstripe does not).
    """
    method = await browser.client.v1.payment_methods.create_async(
        {
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    setups = browser.client.v1.setup_intents
    setup = await setups.confirm_async(setup_ref, {"payment_method": method.id})
    if setup.status == "requires_action":
        setup = await setups.confirm_async(setup_ref)
    if setup.status == "succeeded":
        await browser.client.v1.payment_methods.attach_async(method.id, {"customer": customer_ref})
    return method.id
