"""Stripe's objects read into the port's data: PaymentIntents, SetupIntents, saved
cards and refunds. msgspec Structs name the fields plugpay uses; every amount
leaves here in ISO 4217 minor units (payments/stripe_amounts.py)."""

from __future__ import annotations

from typing import Any

import msgspec
import stripe

from plugpay.payments import wording
from plugpay.payments.event_details import Ref, ref_id
from plugpay.payments.stripe_amounts import from_stripe_amount
from plugpay.services.ports.payments import PaymentState, RefundState, SavedMethod, SetupState

# The charge carries the card that paid (wallets included); the payment method is
# the fallback where a charge has no details (localstripe's never do).
EXPAND = ["latest_charge", "payment_method"]

# Metadata plugpay writes on its refunds: the idempotency key finds a refund again
# after Stripe has forgotten the key (24 hours), and a reason of plugpay's own
# words is kept beside Stripe's three.
REFUND_KEY = "plugpay_refund_key"
REFUND_REASON = "plugpay_reason"
STRIPE_REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})


class _Card(msgspec.Struct):
    brand: str | None = None
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None


class _Details(msgspec.Struct):
    card: _Card | None = None


class _ChargeRefund(msgspec.Struct):
    amount: int = 0
    metadata: dict[str, str] | None = None


class _ChargeRefunds(msgspec.Struct):
    data: list[_ChargeRefund] = msgspec.field(default_factory=list)


class _Charge(msgspec.Struct):
    amount: int = 0
    captured: bool = False
    amount_refunded: int = 0
    refunds: _ChargeRefunds | None = None
    payment_method_details: _Details | None = None


class _PaymentMethod(msgspec.Struct):
    id: str = ""
    customer: str | Ref | None = None
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
    error = pi.last_payment_error
    status = pi.status
    declined = status == "requires_payment_method"
    decline_message = None
    if declined and error is not None:
        decline_message = wording.decline_message(error.code, error.decline_code)
        if "authentication_required" in (error.code, error.decline_code):
            # An off-session attempt the bank wants the driver to authenticate:
            # Stripe leaves the intent waiting for a payment method, and the driver's
            # browser confirms it with the saved card (and the bank's check). For
            # plugpay that is an action the driver must take, not a decline.
            status = "requires_action"
    return PaymentState(
        ref=pi.id,
        status=status,
        amount_minor=from_stripe_amount(pi.amount, pi.currency),
        currency=pi.currency.upper(),
        client_secret=pi.client_secret,
        amount_received_minor=from_stripe_amount(_amount_received(pi, charge), pi.currency),
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
    # capture with the remainder refunded: a refund plugpay did not make (its own
    # carry REFUND_KEY) is that remainder.
    if charge is None or not charge.captured:
        return 0
    if charge.refunds is None:
        return charge.amount - charge.amount_refunded
    released = sum(r.amount for r in charge.refunds.data if REFUND_KEY not in (r.metadata or {}))
    return charge.amount - released


# -- SetupIntents and saved cards -------------------------------------------------------
class _SetupError(msgspec.Struct):
    code: str | None = None
    decline_code: str | None = None


class _Setup(msgspec.Struct):
    id: str
    status: str
    customer: str | Ref | None = None
    client_secret: str | None = None
    payment_method: _PaymentMethod | str | None = None
    last_setup_error: _SetupError | None = None


def setup_state(setup: stripe.SetupIntent) -> SetupState:
    """What the port needs from a SetupIntent (``payment_method`` expanded)."""
    seti = msgspec.convert(setup.to_dict(), _Setup)
    method = seti.payment_method
    card = method.card if isinstance(method, _PaymentMethod) else None
    error = seti.last_setup_error
    saved = seti.status == "succeeded"
    return SetupState(
        ref=seti.id,
        status=seti.status,
        customer_ref=ref_id(seti.customer) or "",
        client_secret=seti.client_secret,
        method_ref=_method_id(method) if saved else None,
        card_brand=card.brand if saved and card is not None else None,
        card_last4=card.last4 if saved and card is not None else None,
        decline_message=(
            wording.decline_message(error.code, error.decline_code)
            if error is not None and seti.status == "requires_payment_method"
            else None
        ),
    )


def _method_id(method: _PaymentMethod | str | None) -> str | None:
    return method.id if isinstance(method, _PaymentMethod) else method


def saved_method(method: stripe.PaymentMethod) -> SavedMethod:
    pm = msgspec.convert(method.to_dict(), _PaymentMethod)
    card = pm.card or _Card()
    return SavedMethod(
        ref=pm.id,
        customer_ref=ref_id(pm.customer) or "",
        card_brand=card.brand,
        card_last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
    )


def method_customer(method: stripe.PaymentMethod) -> str | None:
    return ref_id(msgspec.convert(method.to_dict(), _PaymentMethod).customer)


# -- refunds ----------------------------------------------------------------------------
class _Refund(msgspec.Struct):
    id: str
    amount: int
    currency: str
    status: str | None = None
    payment_intent: str | Ref | None = None
    reason: str | None = None
    metadata: dict[str, str] | None = None


def refund_state(refund: stripe.Refund, payment_ref: str | None = None) -> RefundState:
    """What the port needs from a Refund; ``payment_ref`` where Stripe leaves the
    refund's PaymentIntent out."""
    re = msgspec.convert(refund.to_dict(), _Refund)
    return RefundState(
        ref=re.id,
        payment_ref=ref_id(re.payment_intent) or payment_ref or "",
        amount_minor=from_stripe_amount(re.amount, re.currency),
        currency=re.currency.upper(),
        # Stripe's refunds have a status; a refund object without one has gone through.
        status=re.status or "succeeded",
        reason=(re.metadata or {}).get(REFUND_REASON) or re.reason,
    )


def refund_key(refund: stripe.Refund) -> str | None:
    """The idempotency key plugpay made ``refund`` with, if plugpay made it."""
    return (msgspec.convert(refund.to_dict(), _Refund).metadata or {}).get(REFUND_KEY)
