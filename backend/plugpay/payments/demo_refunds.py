"""Refunds at the demo provider: as Stripe makes them, never more than the capture.

A refund lives on its intent's record (under "refunds", oldest first) and has a
record of its own that names the intent, so it can be read by its ref.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from plugpay.payments import wording
from plugpay.payments.demo_base import DemoBase, check_amount, new_ref, state_of
from plugpay.services.ports.payments import (
    PaymentDeclined,
    PaymentState,
    PaymentUnavailable,
    RefundState,
)

# Refund states in which no money moves, now or later.
_VOID = ("failed", "canceled")


class DemoRefunds(DemoBase):
    async def refund(
        self, ref: str, amount_minor: int, idempotency_key: str, reason: str | None = None
    ) -> RefundState:
        """Give back ``amount_minor`` of a captured hold. As at Stripe, a key keeps
        its first answer (a refusal included), and refunds never add up to more
        than the capture."""
        if amount_minor <= 0:
            raise ValueError("refund a positive amount")
        self.api_calls += 1
        request = f"refund:{amount_minor}"
        async with self._lock:
            record = await self._intent(ref)
            replies: dict[str, Any] = record["replies"]
            reply = replies.get(idempotency_key)
            if reply is not None:
                if reply["request"] != request:
                    raise PaymentUnavailable(
                        f"the refund key {idempotency_key!r} went with another amount"
                    )
                if "declined" in reply:
                    raise PaymentDeclined(reply["declined"])
                return _refund_of(record, reply["refund"])
            refunds: list[dict[str, Any]] = record.setdefault("refunds", [])
            try:
                state = _refund(state_of(record), refunds, amount_minor, reason)
            except PaymentDeclined as refused:
                replies[idempotency_key] = {"request": request, "declined": str(refused)}
                await self._store.save(ref, record)
                raise
            refunds.append(asdict(state))
            replies[idempotency_key] = {"request": request, "refund": state.ref}
            await self._store.save(ref, record)
            await self._store.save(state.ref, {"payment_ref": ref})
        return state

    async def get_refund(self, ref: str) -> RefundState:
        self.api_calls += 1
        made = await self._record(ref, "demo_re_", wording.UNKNOWN_REFUND)
        return _refund_of(await self._intent(str(made["payment_ref"])), ref)

    async def list_refunds(self, payment_ref: str) -> list[RefundState]:
        """Newest first, as Stripe lists them."""
        self.api_calls += 1
        record = await self._intent(payment_ref)
        return [RefundState(**r) for r in reversed(record.get("refunds", []))]


def _refund(
    payment: PaymentState, refunds: list[dict[str, Any]], amount_minor: int, reason: str | None
) -> RefundState:
    if payment.status != "succeeded":
        raise PaymentDeclined(wording.NOT_CAPTURED)
    check_amount(amount_minor, payment.currency)
    refunded = sum(r["amount_minor"] for r in refunds if r["status"] not in _VOID)
    if refunded >= payment.amount_received_minor:
        raise PaymentDeclined(wording.ALREADY_REFUNDED)
    if refunded + amount_minor > payment.amount_received_minor:
        raise PaymentDeclined(wording.REFUND_EXCEEDS)
    return RefundState(
        ref=new_ref("demo_re_"),
        payment_ref=payment.ref,
        amount_minor=amount_minor,
        currency=payment.currency,
        status="succeeded",
        reason=reason,
    )


def _refund_of(record: dict[str, Any], ref: str) -> RefundState:
    for refund in record.get("refunds", []):
        if refund["ref"] == ref:
            return RefundState(**refund)
    raise PaymentDeclined(wording.UNKNOWN_REFUND)
