"""Refunds of captured holds at Stripe."""

from __future__ import annotations

import stripe

from plugpay.payments import wording
from plugpay.payments.stripe_amounts import to_stripe_amount
from plugpay.payments.stripe_base import StripeBase
from plugpay.payments.stripe_objects import (
    EXPAND,
    REFUND_KEY,
    REFUND_REASON,
    STRIPE_REFUND_REASONS,
    intent_state,
    refund_key,
    refund_state,
)
from plugpay.services.ports.payments import (
    PaymentDeclined,
    PaymentState,
    PaymentUnavailable,
    RefundState,
)

# Refunds of one payment that plugpay reads at once; a session has a handful.
REFUNDS_LISTED = 100

# Refund states in which no money moves, now or later.
VOID = frozenset({"failed", "canceled"})

# Stripe's refusals of a refund, told in their own words (wording.refund_refusal).
REFUND_REFUSALS = frozenset({"amount_too_large", "charge_already_refunded", "charge_disputed"})


class StripeRefunds(StripeBase):
    async def refund(
        self, ref: str, amount_minor: int, idempotency_key: str, reason: str | None = None
    ) -> RefundState:
        """Refund ``amount_minor`` of the captured PaymentIntent ``ref``.

        A refund made with this key earlier is found by the key in its metadata,
        also after Stripe has forgotten the key (24 hours), and answered again.
        Stripe refuses a refund beyond what is left of the capture itself;
        localstripe does not, so there the adapter refuses it.
        """
        if amount_minor <= 0:
            raise ValueError("refund a positive amount")
        payment = self._remember(
            intent_state(
                await self._request(lambda: self._intents.retrieve_async(ref, {"expand": EXPAND}))
            )
        )
        if payment.status != "succeeded":
            raise PaymentDeclined(wording.NOT_CAPTURED)
        refunds = await self._refunds(ref)
        for made in refunds:
            if refund_key(made) == idempotency_key:
                known = refund_state(made, ref)
                if known.amount_minor != amount_minor:
                    raise PaymentUnavailable(
                        f"the refund key {idempotency_key!r} went with another amount"
                    )
                return known
        if self._localstripe:
            ours = [refund_state(r, ref) for r in refunds if refund_key(r)]
            _refuse_excess(payment, ours, amount_minor)
        metadata = {REFUND_KEY: idempotency_key}
        params: stripe.params.RefundCreateParams = {
            "payment_intent": ref,
            "amount": to_stripe_amount(amount_minor, payment.currency),
            "metadata": metadata,
        }
        if reason:
            metadata[REFUND_REASON] = reason
            if reason in STRIPE_REFUND_REASONS and not self._localstripe:
                params["reason"] = reason
        try:
            made = await self._request(
                lambda: self._client.v1.refunds.create_async(
                    params, {"idempotency_key": idempotency_key}
                )
            )
        except PaymentDeclined as refused:
            cause = refused.__cause__
            if isinstance(cause, stripe.InvalidRequestError) and cause.code in REFUND_REFUSALS:
                raise PaymentDeclined(wording.refund_refusal(cause.code)) from cause
            raise
        return refund_state(made, ref)

    async def get_refund(self, ref: str) -> RefundState:
        refund = await self._request(
            lambda: self._client.v1.refunds.retrieve_async(ref), wording.UNKNOWN_REFUND
        )
        return refund_state(refund)

    async def list_refunds(self, payment_ref: str) -> list[RefundState]:
        """Every refund of the PaymentIntent, newest first, as Stripe lists them."""
        if self._localstripe:
            # localstripe cannot list the refunds of an intent without a charge, and
            # books the released part of a partial capture as a refund of its own.
            payment = intent_state(
                await self._request(lambda: self._intents.retrieve_async(payment_ref))
            )
            if payment.status != "succeeded":
                return []
            listed = await self._refunds(payment_ref)
            return [refund_state(r, payment_ref) for r in listed if refund_key(r)]
        return [refund_state(r, payment_ref) for r in await self._refunds(payment_ref)]

    async def _refunds(self, payment_ref: str) -> list[stripe.Refund]:
        listed = await self._request(
            lambda: self._client.v1.refunds.list_async(
                {"payment_intent": payment_ref, "limit": REFUNDS_LISTED}
            )
        )
        return list(listed.data)


def _refuse_excess(payment: PaymentState, refunds: list[RefundState], amount_minor: int) -> None:
    """Stripe's own check, for a stand-in that has none: the refunds of a payment
    never add up to more than its capture."""
    refunded = sum(r.amount_minor for r in refunds if r.status not in VOID)
    if refunded + amount_minor <= payment.amount_received_minor:
        return
    if refunded >= payment.amount_received_minor:
        raise PaymentDeclined(wording.ALREADY_REFUNDED)
    raise PaymentDeclined(wording.REFUND_EXCEEDS)
