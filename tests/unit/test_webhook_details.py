"""What a webhook event carries for routing, past what the contract suite checks for
every provider: Stripe's units of money, objects that do not read, the raw body."""

from __future__ import annotations

import json

import pytest

from plugpay.payments.demo_gateway import DemoGateway
from plugpay.payments.webhook_events import decode_event
from plugpay.services.ports import InvalidWebhook
from plugpay.services.ports.payments import (
    ChargeRefundedDetails,
    DisputeDetails,
    PaymentState,
    RefundDetails,
)
from support import stripe_events


def event(event_type: str, obj: object) -> bytes:
    return json.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "created": 1,
            "type": event_type,
            "data": {"object": obj},
        }
    ).encode()


def test_amounts_in_events_are_plugpays_minor_units() -> None:
    # Stripe writes ISK with two decimals: 1 500 krónur are 150000 in the event.
    obj = stripe_events.dispute_object("pi_1", 150000, currency="isk")

    details = decode_event(event("charge.dispute.created", obj)).details

    assert isinstance(details, DisputeDetails)
    assert (details.amount_minor, details.currency) == (1500, "ISK")


def test_a_charge_refunded_in_a_zero_decimal_currency() -> None:
    refunds = [stripe_events.refund_object("pi_1", 500, currency="jpy")]
    obj = stripe_events.refunded_charge_object("pi_1", 3000, refunds, currency="jpy")

    details = decode_event(event("charge.refunded", obj)).details

    assert isinstance(details, ChargeRefundedDetails)
    assert (details.amount_captured_minor, details.amount_refunded_minor) == (3000, 500)
    assert details.refunds[0].currency == "JPY"


def test_an_uncaptured_charge_without_amount_captured_has_captured_nothing() -> None:
    obj = {**stripe_events.charge_object("pi_1", 5000, captured=False), "amount_refunded": 0}
    del obj["amount_captured"]

    details = decode_event(event("charge.refunded", obj)).details

    assert isinstance(details, ChargeRefundedDetails)
    assert details.amount_captured_minor == 0


@pytest.mark.parametrize(
    ("event_type", "obj"),
    [
        # An older dispute event without amount or status: still stored and routed.
        ("charge.dispute.created", {"id": "dp_1", "object": "dispute", "payment_intent": "pi_1"}),
        ("refund.updated", {"id": "re_1", "object": "refund", "payment_intent": "pi_1"}),
        # A fractional ISK amount from before 2023 has no exact minor units.
        ("refund.created", stripe_events.refund_object("pi_1", 550, currency="isk")),
    ],
)
def test_an_object_that_does_not_read_gives_no_details_but_an_event(
    event_type: str, obj: dict[str, object]
) -> None:
    parsed = decode_event(event(event_type, obj))

    assert (parsed.type, parsed.payment_ref, parsed.details) == (event_type, "pi_1", None)


def test_an_expanded_payment_intent_is_named_by_its_id() -> None:
    obj = {**stripe_events.refund_object("pi_1", 100), "payment_intent": {"id": "pi_1"}}
    obj["charge"] = {"id": "ch_9", "object": "charge"}

    parsed = decode_event(event("refund.created", obj))

    assert parsed.payment_ref == "pi_1"
    assert isinstance(parsed.details, RefundDetails)
    assert parsed.details.charge_ref == "ch_9"


@pytest.mark.parametrize("obj", [[], "pi_1", 42, None])
def test_an_event_whose_object_is_not_an_object_is_rejected(obj: object) -> None:
    with pytest.raises(InvalidWebhook):
        decode_event(event("charge.refunded", obj))


def test_the_event_keeps_its_body_byte_for_byte() -> None:
    body = event("payment_intent.succeeded", stripe_events.payment_intent_object("pi_1", "x", 1))

    parsed = decode_event(body)

    assert parsed.body == body
    assert json.loads(parsed.body_text)["id"] == "evt_1"


def test_demo_events_write_amounts_in_stripes_units() -> None:
    class NoStore:
        async def load(self, ref: str) -> None:
            return None

        async def save(self, ref: str, data: object) -> None:
            raise AssertionError("nothing is stored")

    demo = DemoGateway(NoStore(), webhook_secret="s")  # type: ignore[arg-type]
    state = PaymentState("demo_pi_1", "succeeded", 45, "ISK", amount_received_minor=12)

    body, _ = demo.signed_event(state)

    sent = json.loads(body)["data"]["object"]
    assert (sent["amount"], sent["amount_received"], sent["currency"]) == (4500, 1200, "isk")
