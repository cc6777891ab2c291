"""The Stripe adapter against localstripe, with the real Stripe SDK over real sockets.

The test plays the driver's browser (Stripe.js) with a second Stripe client:
it attaches a payment method to the hold and confirms it, as the Payment
Element would. Skipped, with the reason, only when localstripe cannot start.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs

import httpx
import pytest
import stripe
from aiohttp import web

from plugpay.payments import wording
from plugpay.payments.stripe_gateway import StripeGateway, translate_error
from plugpay.services.ports import (
    HoldRequest,
    InvalidWebhook,
    PaymentDeclined,
    PaymentState,
    PaymentUnavailable,
)
from support import stripe_events
from support.localstripe import (
    LocalstripeUnavailable,
    RecordingProxy,
    register_webhook,
    run_localstripe,
    silence_webhook,
    wipe,
)

SECRET_KEY = "sk_test_plugpay"
PUBLISHABLE_KEY = "pk_test_plugpay"
WEBHOOK_SECRET = "whsec_plugpay_test"

# The SDK's httpx client posts its form as raw bytes through ``data=``.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

CARD_DECLINED_ON_CHARGE = "4000000000000341"
CARD_NEEDS_3DS = "4000002500003155"


@pytest.fixture(scope="module")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    try:
        with run_localstripe(log) as url:
            yield url
    except LocalstripeUnavailable as exc:
        pytest.skip(f"localstripe could not start, so the Stripe adapter is untested here: {exc}")


@pytest.fixture
def base_url(localstripe_url: str) -> str:
    wipe(localstripe_url)
    return localstripe_url


def make_gateway(api_base: str, **kwargs: object) -> StripeGateway:
    options: dict[str, object] = {"max_network_retries": 0, "localstripe": True, **kwargs}
    return StripeGateway(SECRET_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET, api_base, **options)  # type: ignore[arg-type]


@pytest.fixture
async def gateway(base_url: str) -> AsyncIterator[StripeGateway]:
    gateway = make_gateway(base_url)
    yield gateway
    await gateway.close()


class Browser:
    """What Stripe.js does in the driver's browser, done over the API."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = stripe.HTTPXClient()
        self.client = stripe.StripeClient(
            SECRET_KEY,
            base_addresses={"api": base_url},
            max_network_retries=0,
            http_client=self.http,
        )

    async def card(self, number: str, customer: bool = False) -> str:
        method = await self.client.v1.payment_methods.create_async(
            {
                "type": "card",
                "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
            }
        )
        if customer:
            buyer = await self.client.v1.customers.create_async({})
            await self.client.v1.payment_methods.attach_async(method.id, {"customer": buyer.id})
        return method.id

    async def pay(self, ref: str, payment_method: str = "pm_card_visa") -> None:
        # localstripe answers 500 "Not implemented" to confirm(payment_method=…):
        # set the method first, then confirm.
        intents = self.client.v1.payment_intents
        await intents.update_async(ref, {"payment_method": payment_method})
        await intents.confirm_async(ref)

    async def authenticate(self, state: PaymentState, success: bool) -> None:
        """The 3-D Secure challenge, passed or failed (localstripe's stand-in)."""
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{self.base_url}/v1/payment_intents/{state.ref}/_authenticate",
                data={
                    "key": PUBLISHABLE_KEY,
                    "client_secret": state.client_secret or "",
                    "success": "true" if success else "false",
                },
            )
            response.raise_for_status()


@pytest.fixture
async def browser(base_url: str) -> AsyncIterator[Browser]:
    browser = Browser(base_url)
    yield browser
    await browser.http.close_async()  # type: ignore[no-untyped-call]


def hold_request(session_id: str = "sess-1", amount: int = 5000) -> HoldRequest:
    return HoldRequest(
        session_id=session_id,
        amount_minor=amount,
        currency="EUR",
        description=f"Charging session {session_id}",
        idempotency_key=f"{session_id}:hold",
    )


async def authorised_hold(gateway: StripeGateway, browser: Browser, amount: int = 5000) -> str:
    state = await gateway.create_hold(hold_request(amount=amount))
    await browser.pay(state.ref)
    return state.ref


# -- holds ------------------------------------------------------------------------
async def test_hold_is_a_manual_capture_payment_intent_for_the_session(
    gateway: StripeGateway, browser: Browser
) -> None:
    state = await gateway.create_hold(hold_request("sess-42", 5000))

    assert state.ref.startswith("pi_")
    assert state.status == "requires_payment_method"
    assert (state.amount_minor, state.currency) == (5000, "EUR")
    assert state.client_secret is not None and state.client_secret.startswith(state.ref)
    assert state.amount_received_minor == 0
    intent = await browser.client.v1.payment_intents.retrieve_async(state.ref)
    assert intent.capture_method == "manual"
    assert intent.currency == "eur"
    assert intent.metadata.to_dict() == {"plugpay_session": "sess-42"}


async def test_confirmed_hold_requires_capture_and_names_the_card(
    gateway: StripeGateway, browser: Browser
) -> None:
    ref = await authorised_hold(gateway, browser)

    state = await gateway.get(ref)

    assert state.status == "requires_capture"
    assert (state.card_brand, state.card_last4) == ("visa", "4242")
    assert state.amount_received_minor == 0
    assert state.decline_message is None


async def test_hold_for_real_stripe_offers_cards_and_wallets(base_url: str) -> None:
    proxy = RecordingProxy(base_url)
    gateway = make_gateway(await proxy.start(), localstripe=False)
    try:
        # localstripe refuses what it does not model; what matters is what was sent.
        with pytest.raises(PaymentDeclined):
            await gateway.create_hold(hold_request("sess-7", 2500))
    finally:
        await gateway.close()
        await proxy.stop()

    (sent,) = proxy.requests
    form = parse_qs(sent.body.decode())
    assert (sent.method, sent.path) == ("POST", "/v1/payment_intents")
    assert sent.headers["Idempotency-Key"] == "sess-7:hold"
    assert form["amount"] == ["2500"]
    assert form["currency"] == ["eur"]
    assert form["capture_method"] == ["manual"]
    assert form["automatic_payment_methods[enabled]"] == ["true"]
    assert form["metadata[plugpay_session]"] == ["sess-7"]
    assert form["description"] == ["Charging session sess-7"]


# -- capture and release -------------------------------------------------------------
async def test_capture_less_than_the_hold_receives_exactly_that(
    gateway: StripeGateway, browser: Browser
) -> None:
    ref = await authorised_hold(gateway, browser, amount=5000)

    captured = await gateway.capture(ref, 1234, "sess-1:capture")

    assert captured.status == "succeeded"
    assert captured.amount_received_minor == 1234
    assert (captured.card_brand, captured.card_last4) == ("visa", "4242")
    assert await gateway.get(ref) == captured


async def test_capture_of_zero_is_refused_because_zero_is_a_cancel(
    gateway: StripeGateway, browser: Browser
) -> None:
    ref = await authorised_hold(gateway, browser)
    calls = gateway.api_calls

    with pytest.raises(ValueError, match="zero amount is a cancel"):
        await gateway.capture(ref, 0, "sess-1:capture")

    assert gateway.api_calls == calls
    assert (await gateway.get(ref)).status == "requires_capture"


async def test_cancel_releases_the_hold(gateway: StripeGateway, browser: Browser) -> None:
    ref = await authorised_hold(gateway, browser)

    released = await gateway.cancel(ref, "sess-1:cancel")

    assert released.status == "canceled"
    assert released.amount_received_minor == 0
    assert await gateway.get(ref) == released


async def test_releasing_a_released_hold_again_is_not_an_error(
    gateway: StripeGateway, browser: Browser
) -> None:
    ref = await authorised_hold(gateway, browser)
    first = await gateway.cancel(ref, "sess-1:cancel")

    assert await gateway.cancel(ref, "sess-1:cancel") == first
    assert await gateway.cancel(ref, "another-key") == first


async def test_an_unconfirmed_hold_can_be_released(gateway: StripeGateway) -> None:
    state = await gateway.create_hold(hold_request())

    assert (await gateway.cancel(state.ref, "sess-1:cancel")).status == "canceled"


async def test_capture_after_release_is_declined_in_plain_words(
    gateway: StripeGateway, browser: Browser
) -> None:
    ref = await authorised_hold(gateway, browser)
    await gateway.cancel(ref, "sess-1:cancel")

    with pytest.raises(PaymentDeclined, match=wording.ALREADY_RELEASED):
        await gateway.capture(ref, 1000, "sess-1:capture")


async def test_release_after_capture_is_declined(gateway: StripeGateway, browser: Browser) -> None:
    ref = await authorised_hold(gateway, browser)
    await gateway.capture(ref, 1000, "sess-1:capture")

    with pytest.raises(PaymentDeclined, match=wording.ALREADY_CAPTURED):
        await gateway.cancel(ref, "sess-1:cancel")


async def test_capture_more_than_the_hold_is_declined(
    gateway: StripeGateway, browser: Browser
) -> None:
    ref = await authorised_hold(gateway, browser, amount=5000)

    with pytest.raises(PaymentDeclined, match=wording.CAPTURE_REFUSED):
        await gateway.capture(ref, 5001, "sess-1:capture")
    assert (await gateway.get(ref)).status == "requires_capture"


async def test_capture_twice_with_the_same_key_captures_once(
    base_url: str, browser: Browser
) -> None:
    proxy = RecordingProxy(base_url)
    gateway = make_gateway(await proxy.start())
    try:
        ref = await authorised_hold(gateway, browser, amount=5000)
        first = await gateway.capture(ref, 1234, "sess-1:capture")
        second = await gateway.capture(ref, 1234, "sess-1:capture")
    finally:
        await gateway.close()
        await proxy.stop()

    assert second == first
    assert second.amount_received_minor == 1234
    captures = [r for r in proxy.requests if r.path.endswith("/capture")]
    assert [r.headers["Idempotency-Key"] for r in captures] == ["sess-1:capture"] * 2
    # One charge, captured once: localstripe books the released 3766 as a refund.
    charges = (await browser.client.v1.charges.list_async()).data
    assert len(charges) == 1
    assert charges[0].captured is True
    assert charges[0].amount - charges[0].amount_refunded == 1234


async def test_a_second_capture_of_another_amount_is_declined(
    gateway: StripeGateway, browser: Browser
) -> None:
    ref = await authorised_hold(gateway, browser)
    await gateway.capture(ref, 1234, "sess-1:capture")

    with pytest.raises(PaymentDeclined, match=wording.ALREADY_CAPTURED):
        await gateway.capture(ref, 2000, "sess-1:capture-again")
    assert (await gateway.get(ref)).amount_received_minor == 1234


async def test_unknown_payment_intent_is_declined(gateway: StripeGateway) -> None:
    with pytest.raises(PaymentDeclined, match=wording.UNKNOWN_PAYMENT):
        await gateway.get("pi_doesnotexist")


# -- declines and 3-D Secure ----------------------------------------------------------
async def test_declined_card_is_told_in_plain_words(
    gateway: StripeGateway, browser: Browser
) -> None:
    state = await gateway.create_hold(hold_request())
    card = await browser.card(CARD_DECLINED_ON_CHARGE, customer=True)

    with pytest.raises(stripe.CardError) as declined:
        await browser.pay(state.ref, card)

    error = translate_error(declined.value)
    assert isinstance(error, PaymentDeclined)
    assert str(error) == "Your card was declined."
    after = await gateway.get(state.ref)
    assert after.status == "requires_payment_method"
    assert after.decline_message == "Your card was declined."
    assert (after.card_brand, after.card_last4) == (None, None)
    with pytest.raises(PaymentDeclined, match=wording.NOT_AUTHORISED):
        await gateway.capture(state.ref, 1000, "sess-1:capture")


async def test_3d_secure_card_requires_action(gateway: StripeGateway, browser: Browser) -> None:
    state = await gateway.create_hold(hold_request())
    await browser.pay(state.ref, await browser.card(CARD_NEEDS_3DS))

    challenged = await gateway.get(state.ref)

    assert challenged.status == "requires_action"
    assert (challenged.card_brand, challenged.card_last4) == ("visa", "3155")
    await browser.authenticate(challenged, success=True)
    assert (await gateway.get(state.ref)).status == "requires_capture"


async def test_failed_3d_secure_challenge_is_a_decline(
    gateway: StripeGateway, browser: Browser
) -> None:
    state = await gateway.create_hold(hold_request())
    await browser.pay(state.ref, await browser.card(CARD_NEEDS_3DS))

    await browser.authenticate(await gateway.get(state.ref), success=False)

    after = await gateway.get(state.ref)
    assert after.status == "requires_payment_method"
    assert after.decline_message == wording.AUTHENTICATION_FAILED


# -- Stripe out of reach --------------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_stripe_is_unavailable_not_declined() -> None:
    gateway = make_gateway(f"http://127.0.0.1:{closed_port()}")
    try:
        with pytest.raises(PaymentUnavailable):
            await gateway.create_hold(hold_request())
        with pytest.raises(PaymentUnavailable):
            await gateway.get("pi_123")
        with pytest.raises(PaymentUnavailable):
            await gateway.capture("pi_123", 1000, "sess-1:capture")
        with pytest.raises(PaymentUnavailable):
            await gateway.cancel("pi_123", "sess-1:cancel")
    finally:
        await gateway.close()
    assert gateway.api_calls == 4


async def test_stripe_server_errors_and_rate_limits_are_unavailable() -> None:
    for status, error_type in ((500, "api_error"), (503, "api_error"), (429, "rate_limit_error")):
        app = web.Application()

        async def answer(
            request: web.Request, status: int = status, error_type: str = error_type
        ) -> web.Response:
            return web.json_response(
                {"error": {"type": error_type, "message": "try later"}}, status=status
            )

        app.router.add_route("*", "/{tail:.*}", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        gateway = make_gateway(f"http://127.0.0.1:{port}")
        try:
            with pytest.raises(PaymentUnavailable):
                await gateway.capture("pi_123", 1000, "sess-1:capture")
        finally:
            await gateway.close()
            await runner.cleanup()


# -- counting calls ---------------------------------------------------------------------
async def test_api_calls_count_every_request_to_stripe(base_url: str, browser: Browser) -> None:
    proxy = RecordingProxy(base_url)
    gateway = make_gateway(await proxy.start())
    try:
        state = await gateway.create_hold(hold_request())
        await browser.pay(state.ref)
        await gateway.get(state.ref)
        await gateway.capture(state.ref, 1000, "sess-1:capture")
    finally:
        await gateway.close()
        await proxy.stop()

    assert gateway.api_calls == 3 == len(proxy.requests)
    mutating = [r for r in proxy.requests if r.method == "POST"]
    assert [r.headers.get("Idempotency-Key") for r in mutating] == [
        "sess-1:hold",
        "sess-1:capture",
    ]


# -- webhooks -------------------------------------------------------------------------
class Receiver:
    """A local webhook endpoint: keeps each raw body and its signature header."""

    def __init__(self) -> None:
        self.deliveries: asyncio.Queue[tuple[bytes, str | None]] = asyncio.Queue()
        self.runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/webhooks/stripe", self._receive)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}/webhooks/stripe"

    async def _receive(self, request: web.Request) -> web.Response:
        await self.deliveries.put((await request.read(), request.headers.get("Stripe-Signature")))
        return web.Response(status=200)

    async def next_event(
        self, event_type: str, ref: str, timeout: float = 15
    ) -> tuple[bytes, str | None]:
        """The delivery of ``event_type`` about ``ref`` (events of earlier tests
        may still arrive: localstripe sends each about a second late)."""
        async with asyncio.timeout(timeout):
            while True:
                body, header = await self.deliveries.get()
                if f'"{event_type}"'.encode() in body and f'"{ref}"'.encode() in body:
                    return body, header


@pytest.fixture
async def receiver(base_url: str) -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await register_webhook(base_url, await receiver.start(), WEBHOOK_SECRET)
    yield receiver
    await silence_webhook(base_url)
    assert receiver.runner is not None
    await receiver.runner.cleanup()


async def test_webhook_delivered_by_stripe_is_verified_and_names_the_intent(
    gateway: StripeGateway, browser: Browser, receiver: Receiver
) -> None:
    ref = await authorised_hold(gateway, browser)
    await gateway.capture(ref, 1234, "sess-1:capture")

    body, header = await receiver.next_event("payment_intent.succeeded", ref)
    event = gateway.parse_webhook(body, header)

    assert event.type == "payment_intent.succeeded"
    assert event.payment_ref == ref
    assert event.id.startswith("evt_")
    assert abs(event.created - time.time()) < 60
    # A replay is the same event: the intake knows it by its id.
    assert gateway.parse_webhook(body, header) == event


async def test_webhook_with_a_tampered_body_is_rejected(
    gateway: StripeGateway, browser: Browser, receiver: Receiver
) -> None:
    ref = await authorised_hold(gateway, browser)
    await gateway.capture(ref, 1234, "sess-1:capture")
    body, header = await receiver.next_event("payment_intent.succeeded", ref)

    tampered = body.replace(b'"amount": 5000', b'"amount": 9000')
    assert tampered != body
    with pytest.raises(InvalidWebhook):
        gateway.parse_webhook(tampered, header)


async def test_webhook_signed_with_another_secret_is_rejected(base_url: str) -> None:
    body, header = stripe_events.signed_event(
        "payment_intent.canceled",
        stripe_events.payment_intent_object("pi_1", "canceled", 5000),
        "whsec_someone_else",
    )
    gateway = make_gateway(base_url)
    try:
        with pytest.raises(InvalidWebhook):
            gateway.parse_webhook(body, header)
    finally:
        await gateway.close()


@pytest.mark.parametrize(
    "header",
    [None, "", "t=123", "v1=abc", "garbage", "t=notanumber,v1=abc", "t=1,v1=\u00e9\u00e9"],
)
def test_webhook_without_a_usable_signature_is_rejected(header: str | None) -> None:
    gateway = StripeGateway(SECRET_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET)
    body, _ = stripe_events.signed_event(
        "payment_intent.canceled",
        stripe_events.payment_intent_object("pi_1", "canceled", 5000),
        WEBHOOK_SECRET,
    )
    with pytest.raises(InvalidWebhook):
        gateway.parse_webhook(body, header)


def test_webhook_older_than_five_minutes_is_rejected() -> None:
    gateway = StripeGateway(SECRET_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET)
    obj = stripe_events.payment_intent_object("pi_1", "canceled", 5000)
    now = int(time.time())

    stale = stripe_events.signed_event(
        "payment_intent.canceled", obj, WEBHOOK_SECRET, signed_at=now - 301
    )
    fresh = stripe_events.signed_event(
        "payment_intent.canceled", obj, WEBHOOK_SECRET, signed_at=now - 290
    )

    with pytest.raises(InvalidWebhook):
        gateway.parse_webhook(*stale)
    assert gateway.parse_webhook(*fresh).payment_ref == "pi_1"


def test_signed_body_that_is_not_an_event_is_rejected() -> None:
    gateway = StripeGateway(SECRET_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET)
    for body in (b"{not json", b"[]", b'{"id": "evt_1"}', b"\xff\xfe", b'{"object": "charge"}'):
        with pytest.raises(InvalidWebhook):
            gateway.parse_webhook(body, stripe_events.sign(body, WEBHOOK_SECRET))


@pytest.mark.parametrize(
    ("event_type", "obj"),
    [
        (
            "payment_intent.amount_capturable_updated",
            stripe_events.payment_intent_object(
                "pi_hold", "requires_capture", 5000, amount_capturable=5000
            ),
        ),
        (
            "payment_intent.canceled",
            stripe_events.payment_intent_object("pi_hold", "canceled", 5000),
        ),
        ("charge.succeeded", stripe_events.charge_object("pi_hold", 5000, captured=False)),
        ("charge.captured", stripe_events.charge_object("pi_hold", 1234, captured=True)),
        ("charge.refunded", stripe_events.charge_object("pi_hold", 1234, captured=True)),
        (
            "charge.dispute.created",
            {"id": "dp_1", "object": "dispute", "charge": "ch_1", "payment_intent": "pi_hold"},
        ),
    ],
)
def test_events_localstripe_never_sends_name_their_payment_intent(
    event_type: str, obj: dict[str, object]
) -> None:
    gateway = StripeGateway(SECRET_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET)
    body, header = stripe_events.signed_event(event_type, obj, WEBHOOK_SECRET, event_id="evt_42")

    event = gateway.parse_webhook(body, header)

    assert (event.id, event.type, event.payment_ref) == ("evt_42", event_type, "pi_hold")


def test_event_about_something_else_has_no_payment_ref() -> None:
    gateway = StripeGateway(SECRET_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET)
    body, header = stripe_events.signed_event(
        "customer.created", {"id": "cus_1", "object": "customer"}, WEBHOOK_SECRET
    )

    assert gateway.parse_webhook(body, header).payment_ref is None


def test_an_unset_webhook_secret_rejects_everything() -> None:
    gateway = StripeGateway(SECRET_KEY, PUBLISHABLE_KEY, "")
    body, header = stripe_events.signed_event(
        "payment_intent.canceled", stripe_events.payment_intent_object("pi_1", "canceled", 1), ""
    )
    with pytest.raises(InvalidWebhook):
        gateway.parse_webhook(body, header)
