"""What a webhook event's object says, typed by event type, for routing.

Stripe's objects are decoded with msgspec Structs that name only the fields
routing needs; amounts become ISO 4217 minor units. An object of a known type
that does not read as expected gives no details rather than a rejected
webhook: the event is still stored and the provider re-read, and a rejection
would only make the provider deliver it again, for days.
"""

from __future__ import annotations

import logging

import msgspec

from plugpay.payments.stripe_amounts import from_stripe_amount
from plugpay.services.ports.payments import (
    AmountNotRepresentable,
    ChargeRefundedDetails,
    DisputeDetails,
    EventDetails,
    IntentDetails,
    RefundDetails,
    SetupDetails,
)

log = logging.getLogger(__name__)


class Ref(msgspec.Struct):
    """An expanded object where an id is expected."""

    id: str


def ref_id(value: str | Ref | None) -> str | None:
    return value.id if isinstance(value, Ref) else value


class _Refund(msgspec.Struct):
    id: str
    amount: int
    currency: str
    status: str | None = None
    charge: str | Ref | None = None
    failure_reason: str | None = None


class _Refunds(msgspec.Struct):
    data: list[_Refund] = msgspec.field(default_factory=list)


class _Charge(msgspec.Struct):
    id: str
    currency: str
    amount: int = 0
    captured: bool = False
    amount_captured: int | None = None
    amount_refunded: int = 0
    refunds: _Refunds | None = None


class _Dispute(msgspec.Struct):
    id: str
    amount: int
    currency: str
    status: str
    reason: str | None = None
    charge: str | Ref | None = None


class _Intent(msgspec.Struct):
    status: str | None = None
    cancellation_reason: str | None = None


class _Setup(msgspec.Struct):
    id: str
    status: str | None = None
    customer: str | Ref | None = None
    payment_method: str | Ref | None = None


def event_details(event_type: str, obj: msgspec.Raw) -> EventDetails | None:
    """The typed details of an event of ``event_type`` about ``obj`` (raw JSON),
    None for the types routing does not look into."""
    try:
        return _details(event_type, obj)
    except (msgspec.ValidationError, msgspec.DecodeError, AmountNotRepresentable) as exc:
        log.warning("webhook %s: the object does not read as expected (%s)", event_type, exc)
        return None


def _details(event_type: str, obj: msgspec.Raw) -> EventDetails | None:
    if event_type == "charge.refunded":
        charge = msgspec.json.decode(obj, type=_Charge)
        captured = charge.amount_captured
        if captured is None:
            captured = charge.amount if charge.captured else 0
        refunds = charge.refunds.data if charge.refunds is not None else []
        return ChargeRefundedDetails(
            charge_ref=charge.id,
            currency=charge.currency.upper(),
            amount_captured_minor=from_stripe_amount(captured, charge.currency),
            amount_refunded_minor=from_stripe_amount(charge.amount_refunded, charge.currency),
            refunds=tuple(_refund(r) for r in refunds),
        )
    if event_type.startswith("refund.") or event_type == "charge.refund.updated":
        return _refund(msgspec.json.decode(obj, type=_Refund))
    if event_type.startswith("charge.dispute."):
        dispute = msgspec.json.decode(obj, type=_Dispute)
        return DisputeDetails(
            ref=dispute.id,
            amount_minor=from_stripe_amount(dispute.amount, dispute.currency),
            currency=dispute.currency.upper(),
            status=dispute.status,
            reason=dispute.reason,
            charge_ref=ref_id(dispute.charge),
        )
    if event_type.startswith("payment_intent."):
        intent = msgspec.json.decode(obj, type=_Intent)
        return IntentDetails(status=intent.status, cancellation_reason=intent.cancellation_reason)
    if event_type.startswith("setup_intent."):
        setup = msgspec.json.decode(obj, type=_Setup)
        return SetupDetails(
            setup_ref=setup.id,
            status=setup.status,
            customer_ref=ref_id(setup.customer),
            method_ref=ref_id(setup.payment_method),
        )
    return None


def _refund(refund: _Refund) -> RefundDetails:
    return RefundDetails(
        ref=refund.id,
        amount_minor=from_stripe_amount(refund.amount, refund.currency),
        currency=refund.currency.upper(),
        status=refund.status,
        charge_ref=ref_id(refund.charge),
        failure_reason=refund.failure_reason,
    )
