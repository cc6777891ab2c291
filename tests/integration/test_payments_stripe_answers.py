"""Stripe's answers that localstripe never gives, from a local HTTP server that answers
as Stripe's API reference documents, through the real SDK over a real socket:
idempotency conflicts, rate limits, refund refusals, an off-session payment the
bank wants authenticated; and what the adapter sends to the real Stripe (which
localstripe would refuse: allowed_payment_method_types, a refund's reason).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp import web

from plugpay.payments import wording
from plugpay.payments.stripe_gateway import StripeGateway
from plugpay.services.ports import HoldRequest, PaymentDeclined, PaymentUnavailable

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

Answer = tuple[int, dict[str, Any]]


@dataclass
class Sent:
    method: str
    path: str
    form: dict[str, list[str]]
    idempotency_key: str | None


@dataclass
class FakeStripe:
    """Answers each (method, path) with the answers given for it, in turn (the last
    one again when they run out); 404 for anything else. Keeps what was sent."""

    answers: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    runner: web.AppRunner | None = None

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.answers[(method, path)] = list(answers)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    async def _answer(self, request: web.Request) -> web.Response:
        body = (await request.read()).decode()
        self.sent.append(
            Sent(
                request.method,
                request.path,
                parse_qs(body),
                request.headers.get("Idempotency-Key"),
            )
        )
        queue = self.answers.get((request.method, request.path))
        if not queue:
            return web.json_response(
                {"error": {"type": "invalid_request_error", "message": "No such object"}},
                status=404,
            )
        status, answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return web.json_response(answer, status=status)

    def posts(self) -> list[Sent]:
        return [s for s in self.sent if s.method == "POST"]


@pytest.fixture
async def fake() -> AsyncIterator[FakeStripe]:
    fake = FakeStripe()
    yield fake
    if fake.runner is not None:
        await fake.runner.cleanup()


@pytest.fixture
async def gateway(fake: FakeStripe) -> AsyncIterator[StripeGateway]:
    # The real Stripe's parameters (localstripe=False) and no retries inside the SDK.
    url = await fake.start()
    gateway = StripeGateway(
        "sk_test_x", "pk_test_x", "whsec_x", url, max_network_retries=0, localstripe=False
    )
    yield gateway
    await gateway.close()


def intent(
    status: str,
    amount: int = 5000,
    currency: str = "eur",
    *,
    amount_received: int = 0,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": amount if status == "requires_capture" else 0,
        "amount_received": amount_received,
        "capture_method": "manual",
        "client_secret": "pi_1_secret_abc",
        "currency": currency,
        "last_payment_error": error,
        "latest_charge": None,
        "payment_method": None,
        "status": status,
    }


def stripe_error(error_type: str, code: str | None = None, **more: Any) -> dict[str, Any]:
    return {"error": {"type": error_type, "code": code, "message": "(test)", **more}}


def hold_request(amount: int = 5000, currency: str = "EUR") -> HoldRequest:
    return HoldRequest("sess-1", amount, currency, "Charging session sess-1", "sess-1:hold")


PI = "/v1/payment_intents/pi_1"


# -- an idempotency conflict is "try again later" ---------------------------------------
@pytest.mark.parametrize(
    "answer",
    [
        # The key went with other parameters: Stripe's idempotency_error.
        (400, stripe_error("idempotency_error")),
        # The key's first request is still running at Stripe.
        (409, stripe_error("invalid_request_error", "idempotency_key_in_use")),
        (409, stripe_error("api_error", "lock_timeout")),
    ],
)
async def test_an_idempotency_conflict_on_capture_is_unavailable_not_declined(
    gateway: StripeGateway, fake: FakeStripe, answer: Answer
) -> None:
    fake.on("GET", PI, (200, intent("requires_capture")))
    fake.on("POST", f"{PI}/capture", answer)

    with pytest.raises(PaymentUnavailable, match="retry later"):
        await gateway.capture("pi_1", 1234, "sess-1:capture")
    # Nothing read back to decide on a decline: the capture is to be retried.
    assert [s.method for s in fake.sent] == ["GET", "POST"]


@pytest.mark.parametrize(
    "answer",
    [
        (429, stripe_error("rate_limit_error", "rate_limit")),
        (400, stripe_error("invalid_request_error", "rate_limit")),
        (500, stripe_error("api_error")),
        (502, {"error": {"type": "api_error"}}),
        (503, stripe_error("api_error")),
    ],
)
async def test_rate_limits_and_server_errors_are_unavailable(
    gateway: StripeGateway, fake: FakeStripe, answer: Answer
) -> None:
    fake.on("POST", "/v1/payment_intents", answer)
    fake.on("POST", "/v1/refunds", answer)
    fake.on("GET", PI, (200, intent("succeeded", amount_received=3000)))
    fake.on("GET", "/v1/refunds", (200, {"object": "list", "data": [], "has_more": False}))

    with pytest.raises(PaymentUnavailable):
        await gateway.create_hold(hold_request())
    with pytest.raises(PaymentUnavailable):
        await gateway.create_off_session_hold(hold_request(), "cus_1", "pm_1")
    with pytest.raises(PaymentUnavailable):
        await gateway.refund("pi_1", 100, "refund-1")


async def test_a_capture_after_stripe_forgot_the_key_is_the_same_capture(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    fake.on("GET", PI, (200, intent("succeeded", amount_received=1234)))
    fake.on(
        "POST",
        f"{PI}/capture",
        (400, stripe_error("invalid_request_error", "payment_intent_unexpected_state")),
    )

    state = await gateway.capture("pi_1", 1234, "sess-1:capture")

    assert (state.status, state.amount_received_minor) == ("succeeded", 1234)


async def test_a_capture_goes_in_stripes_units_of_the_holds_currency(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    # A hold this process has not seen: its currency is read first.
    fake.on("GET", PI, (200, intent("requires_capture", 450000, "isk")))
    fake.on(
        "POST", f"{PI}/capture", (200, intent("succeeded", 450000, "isk", amount_received=123400))
    )

    state = await gateway.capture("pi_1", 1234, "sess-1:capture")

    assert (state.amount_minor, state.amount_received_minor) == (4500, 1234)
    (capture,) = fake.posts()
    assert capture.form["amount_to_capture"] == ["123400"]
    # Seen now: the next capture needs no read.
    await gateway.capture("pi_1", 1234, "sess-1:capture")
    assert [s.method for s in fake.sent] == ["GET", "POST", "POST"]


# -- off-session holds ------------------------------------------------------------------
async def test_an_off_session_hold_the_bank_wants_authenticated_is_an_action(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    # Stripe answers 402 authentication_required and leaves the intent waiting for a
    # payment method, the failure in last_payment_error.
    failure = {"type": "card_error", "code": "authentication_required"}
    waiting = intent(
        "requires_payment_method",
        error={**failure, "decline_code": "authentication_required"},
    )
    fake.on(
        "POST",
        "/v1/payment_intents",
        (
            402,
            stripe_error(
                "card_error",
                "authentication_required",
                decline_code="authentication_required",
                payment_intent=waiting,
            ),
        ),
    )
    fake.on("GET", PI, (200, waiting))

    state = await gateway.create_off_session_hold(hold_request(), "cus_1", "pm_1")

    assert (state.ref, state.status, state.client_secret) == (
        "pi_1",
        "requires_action",
        "pi_1_secret_abc",
    )
    assert state.decline_message == wording.AUTHENTICATION_REQUIRED
    # Read again, the intent says the same; the browser needs no second request.
    assert (await gateway.get("pi_1")).status == "requires_action"
    assert await gateway.client_secret("pi_1") == "pi_1_secret_abc"


async def test_an_off_session_decline_names_the_hold_it_left(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    failed = intent(
        "requires_payment_method",
        error={"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"},
    )
    fake.on(
        "POST",
        "/v1/payment_intents",
        (
            402,
            stripe_error(
                "card_error",
                "card_declined",
                decline_code="insufficient_funds",
                payment_intent=failed,
            ),
        ),
    )

    with pytest.raises(PaymentDeclined, match="insufficient funds") as declined:
        await gateway.create_off_session_hold(hold_request(), "cus_1", "pm_1")

    assert declined.value.payment_ref == "pi_1"


async def test_what_an_off_session_hold_sends_to_stripe(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    fake.on("POST", "/v1/payment_intents", (200, intent("requires_capture", 450000, "isk")))

    state = await gateway.create_off_session_hold(hold_request(4500, "ISK"), "cus_1", "pm_1")

    assert (state.status, state.amount_minor) == ("requires_capture", 4500)
    (sent,) = fake.posts()
    assert sent.idempotency_key == "sess-1:hold"
    assert sent.form["amount"] == ["450000"]
    assert sent.form["currency"] == ["isk"]
    assert sent.form["capture_method"] == ["manual"]
    assert sent.form["confirm"] == ["true"]
    assert sent.form["off_session"] == ["true"]
    assert sent.form["customer"] == ["cus_1"]
    assert sent.form["payment_method"] == ["pm_1"]
    assert sent.form["allowed_payment_method_types[0]"] == ["card"]
    assert sent.form["metadata[plugpay_session]"] == ["sess-1"]
    assert "payment_method_types[0]" not in sent.form


async def test_what_saving_a_card_sends_to_stripe(gateway: StripeGateway, fake: FakeStripe) -> None:
    fake.on("POST", "/v1/customers", (200, {"id": "cus_1", "object": "customer"}))
    setup = {
        "id": "seti_1",
        "object": "setup_intent",
        "client_secret": "seti_1_secret_x",
        "customer": "cus_1",
        "payment_method": None,
        "status": "requires_payment_method",
        "usage": "off_session",
    }
    fake.on("POST", "/v1/setup_intents", (200, setup))

    customer = await gateway.create_customer("account-1", "driver@example.com", "account-1:cus")
    state = await gateway.create_setup(customer, "account-1:setup")

    assert (customer, state.ref, state.client_secret) == ("cus_1", "seti_1", "seti_1_secret_x")
    made, started = fake.posts()
    assert made.idempotency_key == "account-1:cus"
    assert made.form["metadata[plugpay_reference]"] == ["account-1"]
    assert made.form["email"] == ["driver@example.com"]
    assert started.idempotency_key == "account-1:setup"
    assert started.form["customer"] == ["cus_1"]
    assert started.form["usage"] == ["off_session"]
    assert started.form["allowed_payment_method_types[0]"] == ["card"]


async def test_forgetting_a_forgotten_card_is_done(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    not_attached = stripe_error("invalid_request_error", None)
    fake.on("POST", "/v1/payment_methods/pm_1/detach", (400, not_attached))
    fake.on(
        "GET",
        "/v1/payment_methods/pm_1",
        (200, {"id": "pm_1", "object": "payment_method", "customer": None}),
    )

    await gateway.detach_method("pm_1")


async def test_a_card_that_stays_attached_is_not_forgotten(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    fake.on("POST", "/v1/payment_methods/pm_1/detach", (400, stripe_error("invalid_request_error")))
    fake.on(
        "GET",
        "/v1/payment_methods/pm_1",
        (200, {"id": "pm_1", "object": "payment_method", "customer": "cus_1"}),
    )

    with pytest.raises(PaymentDeclined):
        await gateway.detach_method("pm_1")


# -- refunds ----------------------------------------------------------------------------
def refund(amount: int, key: str | None = None, currency: str = "eur") -> dict[str, Any]:
    return {
        "id": "re_1",
        "object": "refund",
        "amount": amount,
        "currency": currency,
        "payment_intent": "pi_1",
        "reason": None,
        "status": "pending",
        "metadata": {"plugpay_refund_key": key} if key else {},
    }


def refund_list(*refunds: dict[str, Any]) -> Answer:
    return 200, {"object": "list", "data": list(refunds), "has_more": False}


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("amount_too_large", wording.REFUND_EXCEEDS),
        ("charge_already_refunded", wording.ALREADY_REFUNDED),
        ("charge_disputed", wording.DISPUTED),
    ],
)
async def test_stripes_refusals_of_a_refund_are_told_in_plain_words(
    gateway: StripeGateway, fake: FakeStripe, code: str, words: str
) -> None:
    fake.on("GET", PI, (200, intent("succeeded", amount_received=3000)))
    fake.on("GET", "/v1/refunds", refund_list())
    fake.on("POST", "/v1/refunds", (400, stripe_error("invalid_request_error", code)))

    with pytest.raises(PaymentDeclined, match=words):
        await gateway.refund("pi_1", 3001, "refund-1")


async def test_what_a_refund_sends_to_stripe(gateway: StripeGateway, fake: FakeStripe) -> None:
    fake.on("GET", PI, (200, intent("succeeded", 450000, "isk", amount_received=300000)))
    fake.on("GET", "/v1/refunds", refund_list())
    fake.on("POST", "/v1/refunds", (200, refund(100000, "refund-1", "isk")))

    made = await gateway.refund("pi_1", 1000, "refund-1", "requested_by_customer")
    other = await gateway.refund("pi_1", 1000, "refund-2", "meter fault")

    assert (made.amount_minor, made.currency, made.status) == (1000, "ISK", "pending")
    first, second = fake.posts()
    assert first.idempotency_key == "refund-1"
    assert first.form["payment_intent"] == ["pi_1"]
    assert first.form["amount"] == ["100000"]
    assert first.form["reason"] == ["requested_by_customer"]
    assert first.form["metadata[plugpay_refund_key]"] == ["refund-1"]
    # A reason of plugpay's own words is kept in the metadata only.
    assert "reason" not in second.form
    assert second.form["metadata[plugpay_reason]"] == ["meter fault"]
    assert other.payment_ref == "pi_1"


async def test_a_refund_repeated_after_stripe_forgot_the_key_is_found_again(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    fake.on("GET", PI, (200, intent("succeeded", amount_received=3000)))
    fake.on("GET", "/v1/refunds", refund_list(refund(1000, "refund-1")))

    again = await gateway.refund("pi_1", 1000, "refund-1")

    assert (again.ref, again.amount_minor) == ("re_1", 1000)
    assert fake.posts() == []
    with pytest.raises(PaymentUnavailable):
        await gateway.refund("pi_1", 900, "refund-1")


async def test_refunds_made_in_the_dashboard_are_listed(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    fake.on("GET", "/v1/refunds", refund_list(refund(700)))

    (made,) = await gateway.list_refunds("pi_1")

    assert (made.ref, made.amount_minor, made.payment_ref) == ("re_1", 700, "pi_1")
