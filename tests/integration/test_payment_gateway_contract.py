"""One contract for every payment provider: the same tests against the demo provider
and against Stripe (localstripe, the real SDK over real sockets).

The ``provider`` fixture gives a gateway and the driver's side of it: the demo
card form for the demo, what Stripe.js does (over the API) for Stripe. Where
localstripe has no way to play Stripe's part (TESTING.md lists its gaps: it
sends no charge.*, refund.*, setup_intent.* or payment_intent.canceled events,
and has no cancellation_reason), the events are built in the test and signed
with the provider's real webhook secret.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import pytest

from plugpay.payments import wording
from plugpay.payments.demo_gateway import DemoGateway
from plugpay.payments.stripe_gateway import StripeGateway
from plugpay.services.ports import HoldRequest, PaymentDeclined, PaymentState
from plugpay.services.ports.payments import (
    AmountNotRepresentable,
    ChargeRefundedDetails,
    DisputeDetails,
    IntentDetails,
    PaymentGateway,
    RefundDetails,
    SetupDetails,
    SetupState,
)
from support import stripe_events
from support.localstripe import LocalstripeUnavailable, run_localstripe, wipe
from support.stripe_app import (
    CARD_DECLINED_ON_CHARGE,
    CARD_NEEDS_3DS,
    PUBLISHABLE_KEY,
    SECRET_KEY,
    VISA,
    StripeBrowser,
    save_card,
)

# The SDK's httpx client posts its form as raw bytes through ``data=``.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

STRIPE_WEBHOOK_SECRET = "whsec_plugpay_contract"
DEMO_WEBHOOK_SECRET = "whsec_demo_contract"

Card = Literal["visa", "needs_authentication", "declines_off_session"]


class Provider(Protocol):
    """A payment provider under test, with the driver's side of it."""

    name: str
    gateway: PaymentGateway
    webhook_secret: str

    async def pay(self, hold: PaymentState) -> None:
        """The driver pays the hold with a card that is authorised."""

    async def authenticate(self, hold: PaymentState, ok: bool) -> None:
        """The driver passes (or fails) the bank's check of a hold."""

    async def save_card(self, setup: SetupState, card: Card) -> None:
        """The driver saves ``card`` on the setup."""


class MemoryStore:
    """Keeps what the demo_payments table would: JSON, copied in and out."""

    def __init__(self) -> None:
        self.rows: dict[str, str] = {}

    async def load(self, ref: str) -> dict[str, Any] | None:
        row = self.rows.get(ref)
        return None if row is None else json.loads(row)

    async def save(self, ref: str, data: dict[str, Any]) -> None:
        self.rows[ref] = json.dumps(data)


@dataclass
class DemoProvider:
    gateway: DemoGateway
    name: str = "demo"
    webhook_secret: str = DEMO_WEBHOOK_SECRET

    async def pay(self, hold: PaymentState) -> None:
        await self.gateway.confirm(hold.ref, "approve")

    async def authenticate(self, hold: PaymentState, ok: bool) -> None:
        await self.gateway.authenticate(hold.ref, ok)

    async def save_card(self, setup: SetupState, card: Card) -> None:
        if card == "visa":
            await self.gateway.confirm_setup(setup.ref, "approve")
        elif card == "needs_authentication":
            await self.gateway.confirm_setup(setup.ref, "authenticate")
            await self.gateway.authenticate_setup(setup.ref, ok=True)
        else:
            await self.gateway.confirm_setup(setup.ref, "decline_off_session")


STRIPE_CARDS = {
    "visa": "4242424242424242",
    "needs_authentication": CARD_NEEDS_3DS,
    "declines_off_session": CARD_DECLINED_ON_CHARGE,
}


@dataclass
class StripeProvider:
    gateway: StripeGateway
    browser: StripeBrowser
    name: str = "stripe"
    webhook_secret: str = STRIPE_WEBHOOK_SECRET

    async def pay(self, hold: PaymentState) -> None:
        await self.browser.confirm(hold.ref, VISA)

    async def authenticate(self, hold: PaymentState, ok: bool) -> None:
        assert hold.client_secret is not None
        await self.browser.authenticate(hold.ref, hold.client_secret, ok)

    async def save_card(self, setup: SetupState, card: Card) -> None:
        await save_card(self.browser, setup.ref, setup.customer_ref, STRIPE_CARDS[card])


@pytest.fixture(scope="module")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    try:
        with run_localstripe(log) as url:
            yield url
    except LocalstripeUnavailable as exc:
        pytest.skip(f"localstripe could not start, so Stripe's side is untested here: {exc}")


@pytest.fixture(params=["demo", "stripe"])
async def provider(request: pytest.FixtureRequest) -> AsyncIterator[Provider]:
    if request.param == "demo":
        yield DemoProvider(DemoGateway(MemoryStore(), webhook_secret=DEMO_WEBHOOK_SECRET))
        return
    url: str = request.getfixturevalue("localstripe_url")
    wipe(url)
    gateway = StripeGateway(
        SECRET_KEY,
        PUBLISHABLE_KEY,
        STRIPE_WEBHOOK_SECRET,
        url,
        max_network_retries=0,
        localstripe=True,
    )
    browser = StripeBrowser(url)
    yield StripeProvider(gateway, browser)
    await browser.close()
    await gateway.close()


_sessions = itertools.count(1)


def hold_request(amount: int = 5000, currency: str = "EUR") -> HoldRequest:
    session_id = f"sess-{next(_sessions)}"
    return HoldRequest(
        session_id=session_id,
        amount_minor=amount,
        currency=currency,
        description=f"Charging session {session_id}",
        idempotency_key=f"{session_id}:hold",
    )


async def paid_hold(provider: Provider, amount: int = 5000) -> PaymentState:
    hold = await provider.gateway.create_hold(hold_request(amount))
    await provider.pay(hold)
    return hold


async def captured(provider: Provider, amount: int, hold_amount: int = 5000) -> PaymentState:
    hold = await paid_hold(provider, hold_amount)
    return await provider.gateway.capture(hold.ref, amount, f"{hold.ref}:capture")


async def saved_card(provider: Provider, card: Card) -> tuple[str, str]:
    """(customer ref, saved card ref) of a driver who saved ``card``."""
    gateway = provider.gateway
    customer = await gateway.create_customer(
        "account-1", "driver@example.com", "account-1:customer"
    )
    setup = await gateway.create_setup(customer, "account-1:setup")
    await provider.save_card(setup, card)
    saved = await gateway.get_setup(setup.ref)
    assert saved.status == "succeeded"
    assert saved.method_ref is not None
    return customer, saved.method_ref


# -- holds, captures, releases --------------------------------------------------------
async def test_a_paid_hold_is_captured_in_part(provider: Provider) -> None:
    gateway = provider.gateway
    hold = await gateway.create_hold(hold_request(5000))
    assert (hold.status, hold.amount_minor, hold.currency) == (
        "requires_payment_method",
        5000,
        "EUR",
    )
    assert hold.client_secret is not None

    await provider.pay(hold)
    authorised = await gateway.get(hold.ref)
    assert authorised.status == "requires_capture"
    assert (authorised.card_brand, authorised.card_last4) == ("visa", "4242")

    taken = await gateway.capture(hold.ref, 1234, f"{hold.ref}:capture")

    assert taken.status == "succeeded"
    assert (taken.amount_minor, taken.amount_received_minor) == (5000, 1234)
    after = await gateway.get(hold.ref)
    assert (after.status, after.amount_received_minor) == ("succeeded", 1234)


async def test_a_released_hold_stays_released(provider: Provider) -> None:
    gateway = provider.gateway
    hold = await paid_hold(provider)

    released = await gateway.cancel(hold.ref, f"{hold.ref}:cancel")

    assert released.status == "canceled"
    assert released.amount_received_minor == 0
    assert (await gateway.cancel(hold.ref, f"{hold.ref}:cancel")).status == "canceled"
    assert (await gateway.cancel(hold.ref, "another-key")).status == "canceled"
    with pytest.raises(PaymentDeclined, match=wording.ALREADY_RELEASED):
        await gateway.capture(hold.ref, 1000, f"{hold.ref}:capture")


async def test_capture_twice_with_the_same_key_captures_once(provider: Provider) -> None:
    gateway = provider.gateway
    hold = await paid_hold(provider)

    first = await gateway.capture(hold.ref, 1234, f"{hold.ref}:capture")
    again = await gateway.capture(hold.ref, 1234, f"{hold.ref}:capture")
    # Past Stripe's 24 hours the key is forgotten: the same capture is still done.
    later = await gateway.capture(hold.ref, 1234, "a-key-stripe-never-saw")

    assert again.amount_received_minor == later.amount_received_minor == 1234
    assert again.status == later.status == first.status == "succeeded"
    with pytest.raises(PaymentDeclined, match=wording.ALREADY_CAPTURED):
        await gateway.capture(hold.ref, 2000, "a-second-capture")


# -- refunds ----------------------------------------------------------------------------
async def test_refunds_never_exceed_the_capture(provider: Provider) -> None:
    gateway = provider.gateway
    payment = await captured(provider, 3000)

    first = await gateway.refund(payment.ref, 1000, "refund-1", "requested_by_customer")
    assert (first.payment_ref, first.amount_minor, first.currency) == (payment.ref, 1000, "EUR")
    assert first.status == "succeeded"
    assert first.reason == "requested_by_customer"
    assert await gateway.refund(payment.ref, 1000, "refund-1", "requested_by_customer") == first

    with pytest.raises(PaymentDeclined, match=wording.REFUND_EXCEEDS):
        await gateway.refund(payment.ref, 2001, "refund-2")
    rest = await gateway.refund(payment.ref, 2000, "refund-3", "meter fault")
    assert rest.reason == "meter fault"
    with pytest.raises(PaymentDeclined, match=wording.ALREADY_REFUNDED):
        await gateway.refund(payment.ref, 1, "refund-4")

    refunds = await gateway.list_refunds(payment.ref)
    assert sorted(r.ref for r in refunds) == sorted([first.ref, rest.ref])
    assert sum(r.amount_minor for r in refunds) == 3000
    assert await gateway.get_refund(first.ref) == first
    # What was captured stays what was captured.
    assert (await gateway.get(payment.ref)).amount_received_minor == 3000


async def test_a_hold_not_captured_has_nothing_to_refund(provider: Provider) -> None:
    hold = await paid_hold(provider)

    with pytest.raises(PaymentDeclined, match=wording.NOT_CAPTURED):
        await provider.gateway.refund(hold.ref, 100, "refund-1")
    assert await provider.gateway.list_refunds(hold.ref) == []


# -- saved cards and off-session holds --------------------------------------------------
async def test_a_saved_card_pays_a_hold_without_the_driver(provider: Provider) -> None:
    gateway = provider.gateway
    customer = await gateway.create_customer("account-1", None, "account-1:customer")
    setup = await gateway.create_setup(customer, "account-1:setup")
    assert (setup.status, setup.customer_ref) == ("requires_payment_method", customer)
    assert setup.client_secret is not None and setup.client_secret.startswith(setup.ref)

    await provider.save_card(setup, "visa")

    saved = await gateway.get_setup(setup.ref)
    assert saved.status == "succeeded"
    assert (saved.card_brand, saved.card_last4) == ("visa", "4242")
    (method,) = await gateway.list_methods(customer)
    assert (method.ref, method.customer_ref, method.card_last4) == (
        saved.method_ref,
        customer,
        "4242",
    )
    assert saved.method_ref is not None

    hold = await gateway.create_off_session_hold(hold_request(5000), customer, saved.method_ref)

    assert hold.status == "requires_capture"
    assert (hold.amount_minor, hold.card_last4) == (5000, "4242")
    assert (
        await gateway.capture(hold.ref, 4000, f"{hold.ref}:capture")
    ).amount_received_minor == 4000


async def test_an_off_session_hold_the_bank_wants_confirmed_waits_for_the_driver(
    provider: Provider,
) -> None:
    gateway = provider.gateway
    customer, method = await saved_card(provider, "needs_authentication")

    hold = await gateway.create_off_session_hold(hold_request(5000), customer, method)

    assert hold.status == "requires_action"
    assert hold.client_secret is not None
    assert hold.decline_message == wording.AUTHENTICATION_REQUIRED
    assert await gateway.client_secret(hold.ref) == hold.client_secret
    await provider.authenticate(hold, ok=True)
    assert (await gateway.get(hold.ref)).status == "requires_capture"


async def test_a_declined_off_session_card_is_a_decline(provider: Provider) -> None:
    customer, method = await saved_card(provider, "declines_off_session")

    with pytest.raises(PaymentDeclined, match=wording.DECLINED):
        await provider.gateway.create_off_session_hold(hold_request(5000), customer, method)


async def test_a_forgotten_card_is_no_longer_listed(provider: Provider) -> None:
    gateway = provider.gateway
    customer, method = await saved_card(provider, "visa")

    await gateway.detach_method(method)
    await gateway.detach_method(method)

    assert await gateway.list_methods(customer) == []


async def test_a_deleted_customer_is_gone_with_its_cards(provider: Provider) -> None:
    gateway = provider.gateway
    customer, method = await saved_card(provider, "visa")

    await gateway.delete_customer(customer)
    await gateway.delete_customer(customer)  # a repeat is done already

    with pytest.raises(PaymentDeclined):
        await gateway.list_methods(customer)
    with pytest.raises(PaymentDeclined):
        await gateway.create_off_session_hold(hold_request(5000), customer, method)


# -- amounts in Stripe's units ------------------------------------------------------------
async def test_amounts_stripe_cannot_take_are_refused_before_any_request(
    provider: Provider,
) -> None:
    # docs.stripe.com/currencies, three-decimal currencies: the last digit must be 0.
    with pytest.raises(AmountNotRepresentable) as refused:
        await provider.gateway.create_hold(hold_request(5125, "KWD"))
    assert refused.value.step_minor == 10


async def test_a_zero_decimal_currency_written_with_two_decimals_round_trips(
    provider: Provider,
) -> None:
    # ISK: zero decimals in ISO 4217, two (in whole krónur) at Stripe; the port
    # speaks ISO on both sides.
    hold = await provider.gateway.create_hold(hold_request(4500, "ISK"))
    await provider.pay(hold)

    taken = await provider.gateway.capture(hold.ref, 1234, f"{hold.ref}:capture")

    assert (taken.amount_minor, taken.amount_received_minor, taken.currency) == (4500, 1234, "ISK")


# -- webhook events: built and signed here, as localstripe sends none of these ----------
def parse(provider: Provider, event_type: str, obj: dict[str, Any]) -> Any:
    body, header = stripe_events.signed_event(event_type, obj, provider.webhook_secret)
    event = provider.gateway.parse_webhook(body, header)
    assert event.type == event_type
    assert event.body == body
    return event


def test_charge_refunded_tells_the_refunds_and_their_total(provider: Provider) -> None:
    refunds = [
        stripe_events.refund_object("pi_1", 1000, refund_id="re_1"),
        stripe_events.refund_object("pi_1", 500, refund_id="re_2"),
    ]

    event = parse(
        provider, "charge.refunded", stripe_events.refunded_charge_object("pi_1", 3000, refunds)
    )

    assert event.payment_ref == "pi_1"
    details = event.details
    assert isinstance(details, ChargeRefundedDetails)
    assert (details.amount_captured_minor, details.amount_refunded_minor) == (3000, 1500)
    assert [(r.ref, r.amount_minor) for r in details.refunds] == [("re_1", 1000), ("re_2", 500)]


def test_charge_refunded_without_its_refund_list_still_tells_the_total(provider: Provider) -> None:
    refunds = [stripe_events.refund_object("pi_1", 700)]
    obj = stripe_events.refunded_charge_object("pi_1", 3000, refunds, listed=False)

    details = parse(provider, "charge.refunded", obj).details

    assert isinstance(details, ChargeRefundedDetails)
    assert (details.amount_refunded_minor, details.refunds) == (700, ())


@pytest.mark.parametrize(
    "event_type",
    ["charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.dispute.closed"],
)
def test_dispute_events_tell_the_dispute(provider: Provider, event_type: str) -> None:
    obj = stripe_events.dispute_object("pi_1", 3000, status="needs_response", reason="fraudulent")

    event = parse(provider, event_type, obj)

    assert event.payment_ref == "pi_1"
    assert event.details == DisputeDetails(
        ref="dp_1",
        amount_minor=3000,
        currency="EUR",
        status="needs_response",
        reason="fraudulent",
        charge_ref="ch_1",
    )


def test_an_expired_hold_says_so(provider: Provider) -> None:
    obj = stripe_events.canceled_intent_object("pi_1", 5000, "automatic")

    event = parse(provider, "payment_intent.canceled", obj)

    assert event.payment_ref == "pi_1"
    assert event.details == IntentDetails(status="canceled", cancellation_reason="automatic")


@pytest.mark.parametrize(
    ("event_type", "status", "method"),
    [
        ("setup_intent.succeeded", "succeeded", "pm_1"),
        ("setup_intent.setup_failed", "requires_payment_method", None),
        ("setup_intent.requires_action", "requires_action", None),
    ],
)
def test_setup_events_name_the_setup(
    provider: Provider, event_type: str, status: str, method: str | None
) -> None:
    obj = stripe_events.setup_intent_object("seti_1", status, payment_method=method)

    event = parse(provider, event_type, obj)

    assert event.payment_ref is None
    assert event.details == SetupDetails(
        setup_ref="seti_1", status=status, customer_ref="cus_1", method_ref=method
    )


@pytest.mark.parametrize("event_type", ["refund.created", "refund.failed", "charge.refund.updated"])
def test_refund_events_tell_the_refund(provider: Provider, event_type: str) -> None:
    obj = stripe_events.refund_object("pi_1", 800, status="failed", refund_id="re_9")

    event = parse(provider, event_type, obj)

    assert event.payment_ref == "pi_1"
    assert event.details == RefundDetails(
        ref="re_9", amount_minor=800, currency="EUR", status="failed", charge_ref="ch_1"
    )


def test_an_event_of_another_type_is_a_plain_event(provider: Provider) -> None:
    event = parse(provider, "customer.created", {"id": "cus_1", "object": "customer"})

    assert (event.payment_ref, event.details) == (None, None)
