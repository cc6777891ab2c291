"""The demo provider's saved cards, off-session holds and refunds, beyond the contract
that it shares with Stripe (tests/integration/test_payment_gateway_contract.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from plugpay.payments import wording
from plugpay.payments.demo_gateway import DemoGateway
from plugpay.services.ports import HoldRequest, PaymentDeclined, PaymentUnavailable
from plugpay.services.ports.payments import (
    AmountNotRepresentable,
    DemoSetupForm,
    PaymentGateway,
    PaymentState,
)


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
    return DemoGateway(store, webhook_secret="whsec_demo_cards")


def hold_request(session_id: str = "sess-1", amount: int = 5000, key: str = "") -> HoldRequest:
    return HoldRequest(
        session_id=session_id,
        amount_minor=amount,
        currency="EUR",
        description=f"Charging session {session_id}",
        idempotency_key=key or f"{session_id}:hold",
    )


async def saved(gateway: DemoGateway, card: str = "approve") -> tuple[str, str]:
    customer = await gateway.create_customer("account-1", None, "account-1:customer")
    setup = await gateway.create_setup(customer, "account-1:setup")
    state = await gateway.confirm_setup(setup.ref, card)
    if state.status == "requires_action":
        state = await gateway.authenticate_setup(setup.ref, ok=True)
    assert state.method_ref is not None
    return customer, state.method_ref


async def captured(gateway: DemoGateway, amount: int = 3000) -> PaymentState:
    hold = await gateway.create_hold(hold_request())
    await gateway.confirm(hold.ref, "approve")
    return await gateway.capture(hold.ref, amount, "sess-1:capture")


def test_the_demo_gateway_has_a_setup_form_and_the_whole_port(gateway: DemoGateway) -> None:
    port: PaymentGateway = gateway
    form: DemoSetupForm = gateway
    assert port is form


# -- customers and setups ------------------------------------------------------------
async def test_the_same_customer_key_gives_the_same_customer(gateway: DemoGateway) -> None:
    first = await gateway.create_customer("account-1", "a@example.com", "k")

    assert first.startswith("demo_cus_")
    assert await gateway.create_customer("account-1", "a@example.com", "k") == first
    assert await gateway.create_customer("account-2", None, "k2") != first


async def test_a_customer_key_reused_for_another_customer_is_a_retry_later(
    gateway: DemoGateway,
) -> None:
    await gateway.create_customer("account-1", "a@example.com", "k")

    with pytest.raises(PaymentUnavailable):
        await gateway.create_customer("account-1", "b@example.com", "k")


async def test_the_same_setup_key_gives_the_same_setup(gateway: DemoGateway) -> None:
    customer = await gateway.create_customer("account-1", None, "k")
    first = await gateway.create_setup(customer, "setup-1")

    assert first.ref.startswith("demo_seti_")
    assert await gateway.create_setup(customer, "setup-1") == first


async def test_a_setup_for_an_unknown_customer_is_declined(gateway: DemoGateway) -> None:
    with pytest.raises(PaymentDeclined, match=wording.UNKNOWN_CUSTOMER):
        await gateway.create_setup("demo_cus_nothere", "setup-1")


async def test_a_declined_card_leaves_the_setup_waiting_for_another(gateway: DemoGateway) -> None:
    customer = await gateway.create_customer("account-1", None, "k")
    setup = await gateway.create_setup(customer, "setup-1")

    declined = await gateway.confirm_setup(setup.ref, "decline")

    assert declined.status == "requires_payment_method"
    assert declined.decline_message == wording.DECLINED
    assert await gateway.list_methods(customer) == []
    approved = await gateway.confirm_setup(setup.ref, "approve")
    assert (approved.status, approved.card_last4, approved.decline_message) == (
        "succeeded",
        "4242",
        None,
    )


async def test_a_failed_check_of_the_bank_saves_nothing(gateway: DemoGateway) -> None:
    customer = await gateway.create_customer("account-1", None, "k")
    setup = await gateway.create_setup(customer, "setup-1")
    assert (await gateway.confirm_setup(setup.ref, "authenticate")).status == "requires_action"

    failed = await gateway.authenticate_setup(setup.ref, ok=False)

    assert failed.status == "requires_payment_method"
    assert failed.decline_message == wording.AUTHENTICATION_FAILED
    assert await gateway.list_methods(customer) == []


async def test_a_finished_setup_cannot_be_confirmed_again(gateway: DemoGateway) -> None:
    customer = await gateway.create_customer("account-1", None, "k")
    setup = await gateway.create_setup(customer, "setup-1")
    await gateway.confirm_setup(setup.ref, "approve")

    with pytest.raises(PaymentDeclined, match=wording.SETUP_REFUSED):
        await gateway.confirm_setup(setup.ref, "approve")
    with pytest.raises(PaymentDeclined, match=wording.NOT_AWAITING_AUTHENTICATION):
        await gateway.authenticate_setup(setup.ref, ok=True)


async def test_unknown_demo_setup_card_is_a_programming_error(gateway: DemoGateway) -> None:
    customer = await gateway.create_customer("account-1", None, "k")
    setup = await gateway.create_setup(customer, "setup-1")

    with pytest.raises(ValueError, match="unknown demo card"):
        await gateway.confirm_setup(setup.ref, "steal")


# -- off-session holds ---------------------------------------------------------------
async def test_the_same_off_session_key_gives_the_same_hold(gateway: DemoGateway) -> None:
    customer, method = await saved(gateway)
    first = await gateway.create_off_session_hold(hold_request(), customer, method)

    assert await gateway.create_off_session_hold(hold_request(), customer, method) == first
    with pytest.raises(PaymentUnavailable):
        await gateway.create_off_session_hold(hold_request(amount=6000), customer, method)


async def test_a_declined_off_session_hold_is_declined_again_for_its_key(
    gateway: DemoGateway,
) -> None:
    customer, method = await saved(gateway, "decline_off_session")

    with pytest.raises(PaymentDeclined) as first:
        await gateway.create_off_session_hold(hold_request(), customer, method)
    with pytest.raises(PaymentDeclined) as again:
        await gateway.create_off_session_hold(hold_request(), customer, method)

    assert str(first.value) == str(again.value) == wording.DECLINED
    assert first.value.payment_ref is not None
    assert again.value.payment_ref == first.value.payment_ref
    left = await gateway.get(first.value.payment_ref)
    assert (left.status, left.decline_message) == ("requires_payment_method", wording.DECLINED)


async def test_a_failed_authentication_of_an_off_session_hold_is_a_decline(
    gateway: DemoGateway,
) -> None:
    customer, method = await saved(gateway, "authenticate")
    hold = await gateway.create_off_session_hold(hold_request(), customer, method)

    failed = await gateway.authenticate(hold.ref, ok=False)

    assert failed.status == "requires_payment_method"
    assert failed.decline_message == wording.AUTHENTICATION_FAILED


async def test_a_card_of_another_customer_cannot_pay(gateway: DemoGateway) -> None:
    _, method = await saved(gateway)
    other = await gateway.create_customer("account-2", None, "account-2:customer")

    with pytest.raises(PaymentDeclined, match=wording.CARD_NOT_SAVED):
        await gateway.create_off_session_hold(hold_request(), other, method)


async def test_a_forgotten_card_cannot_pay(gateway: DemoGateway) -> None:
    customer, method = await saved(gateway)
    await gateway.detach_method(method)

    with pytest.raises(PaymentDeclined, match=wording.CARD_NOT_SAVED):
        await gateway.create_off_session_hold(hold_request(), customer, method)


async def test_unknown_saved_objects_are_declined_in_plain_words(gateway: DemoGateway) -> None:
    with pytest.raises(PaymentDeclined, match=wording.UNKNOWN_SETUP):
        await gateway.get_setup("demo_seti_nothere")
    with pytest.raises(PaymentDeclined, match=wording.UNKNOWN_CUSTOMER):
        await gateway.list_methods("demo_pi_not_a_customer")
    with pytest.raises(PaymentDeclined, match=wording.UNKNOWN_CARD):
        await gateway.detach_method("demo_pm_nothere")
    with pytest.raises(PaymentDeclined, match=wording.UNKNOWN_REFUND):
        await gateway.get_refund("demo_re_nothere")


# -- refunds ----------------------------------------------------------------------------
async def test_a_refund_key_reused_for_another_amount_is_a_retry_later(
    gateway: DemoGateway,
) -> None:
    payment = await captured(gateway)
    await gateway.refund(payment.ref, 1000, "refund-1")

    with pytest.raises(PaymentUnavailable):
        await gateway.refund(payment.ref, 900, "refund-1")


async def test_a_refused_refund_is_refused_again_for_the_same_key(gateway: DemoGateway) -> None:
    payment = await captured(gateway, 3000)
    with pytest.raises(PaymentDeclined, match=wording.REFUND_EXCEEDS):
        await gateway.refund(payment.ref, 3001, "refund-1")

    # As at Stripe, a key keeps its first answer; a new attempt needs a new key.
    with pytest.raises(PaymentDeclined, match=wording.REFUND_EXCEEDS):
        await gateway.refund(payment.ref, 3001, "refund-1")
    assert (await gateway.refund(payment.ref, 3000, "refund-2")).amount_minor == 3000


@pytest.mark.parametrize("amount", [0, -1])
async def test_a_refund_of_nothing_is_a_programming_error(
    gateway: DemoGateway, amount: int
) -> None:
    payment = await captured(gateway)

    with pytest.raises(ValueError, match="positive"):
        await gateway.refund(payment.ref, amount, "refund-1")


async def test_refunds_are_listed_newest_first(gateway: DemoGateway) -> None:
    payment = await captured(gateway)
    first = await gateway.refund(payment.ref, 100, "refund-1")
    second = await gateway.refund(payment.ref, 200, "refund-2")

    assert await gateway.list_refunds(payment.ref) == [second, first]


# -- amounts, restarts, keys ------------------------------------------------------------
async def test_the_demo_refuses_amounts_stripe_would_refuse(gateway: DemoGateway) -> None:
    request = HoldRequest("sess-1", 5125, "KWD", "Charging session", "sess-1:hold")

    with pytest.raises(AmountNotRepresentable):
        await gateway.create_hold(request)


async def test_saved_cards_and_refunds_survive_a_restart(store: MemoryStore) -> None:
    before = DemoGateway(store, webhook_secret="s")
    customer, method = await saved(before)
    payment = await captured(before)
    refund = await before.refund(payment.ref, 500, "refund-1")

    after = DemoGateway(store, webhook_secret="s")

    assert [m.ref for m in await after.list_methods(customer)] == [method]
    assert await after.refund(payment.ref, 500, "refund-1") == refund
    assert await after.get_refund(refund.ref) == refund
    hold = await after.create_off_session_hold(hold_request("sess-2"), customer, method)
    assert hold.status == "requires_capture"


async def test_a_long_idempotency_key_fits_the_store(store: MemoryStore) -> None:
    gateway = DemoGateway(store, webhook_secret="s")
    key = "k" * 200

    first = await gateway.create_customer("account-1", None, key)

    assert await gateway.create_customer("account-1", None, key) == first
    assert max(len(ref) for ref in store.rows) <= 64


async def test_api_calls_count_what_would_reach_stripe(gateway: DemoGateway) -> None:
    customer, method = await saved(gateway)  # customer, setup (the form is the browser's)
    hold = await gateway.create_off_session_hold(hold_request(), customer, method)
    await gateway.capture(hold.ref, 1000, "sess-1:capture")
    await gateway.refund(hold.ref, 100, "refund-1")

    assert gateway.api_calls == 5
