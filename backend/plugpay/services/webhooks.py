"""Payment provider webhooks: verify, store with the whole body, then act by type.

Intake verifies the signature, keeps the event by id with its body and queues
its processing, in one unit of work, and answers at once; a replay finds the
event and changes nothing. Processing is a job (retried until the provider can
be asked): an event only tells us *that* something changed, so what changed is
re-read from the provider wherever it matters, and a late, repeated or
out-of-order event cannot move a session the wrong way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import msgspec

from plugpay.domain.ledger import dispute_won, disputed, released
from plugpay.domain.session import Reason, SessionState, Timeouts, deadline_for
from plugpay.services.charging import ChargingService
from plugpay.services.jobs import RetryLater
from plugpay.services.ports import (
    PaymentGateway,
    PaymentUnavailable,
    UnitOfWorkFactory,
)
from plugpay.services.ports.jobs import Job, JobKind, NewJob
from plugpay.services.ports.payments import (
    ChargeRefundedDetails,
    DisputeDetails,
    EventDetails,
    IntentDetails,
    RefundDetails,
    SetupDetails,
)
from plugpay.services.refunds import book_refund
from plugpay.services.reservations import ReservationService
from plugpay.services.session_moves import cancel_reservation, fail_start, utcnow

log = logging.getLogger(__name__)
S = SessionState

# Events that may mean a hold became usable or unusable.
HOLD_EVENTS = frozenset(
    {
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
        "payment_intent.requires_action",
        "payment_intent.payment_failed",
        "payment_intent.processing",
    }
)
# Events after which the payment's refunds are read again from the provider.
REFUND_EVENTS = frozenset(
    {
        "charge.refunded",
        "charge.refund.updated",
        "refund.created",
        "refund.updated",
        "refund.failed",
    }
)
DETAIL_TYPES: dict[str, type[Any]] = {
    t.__name__: t
    for t in (RefundDetails, ChargeRefundedDetails, DisputeDetails, IntentDetails, SetupDetails)
}


@dataclass
class WebhookService:
    uow: UnitOfWorkFactory
    payments: PaymentGateway
    reservations: ReservationService
    charging: ChargingService
    timeouts: Timeouts

    async def receive(self, payload: bytes, signature: str | None) -> str:
        """ "stored" or "replay"; raises InvalidWebhook (and nothing is stored)."""
        event = self.payments.parse_webhook(payload, signature)
        body = (event.body or payload).decode("utf-8", "replace")
        details = event.details
        async with self.uow() as uow:
            new = await uow.webhooks.store(
                event.id, self.payments.name, event.type, event.payment_ref, body
            )
            if new:
                await uow.jobs.add(
                    NewJob(
                        JobKind.WEBHOOK,
                        f"webhook:{event.id}",
                        {
                            "id": event.id,
                            "type": event.type,
                            "payment_ref": event.payment_ref,
                            "details_type": type(details).__name__ if details else None,
                            "details": msgspec.to_builtins(details) if details else None,
                        },
                    )
                )
        return "stored" if new else "replay"

    async def run(self, job: Job) -> None:
        """Act on a stored event (job ``webhook.process``)."""
        kind = str(job.payload["type"])
        ref = job.payload.get("payment_ref")
        details = _details(job.payload)
        try:
            outcome = await self._route(kind, str(ref) if ref else None, details)
        except PaymentUnavailable as exc:
            raise RetryLater(f"provider unreachable: {exc}") from None
        async with self.uow() as uow:
            await uow.webhooks.processed(str(job.payload["id"]), outcome)

    async def _route(self, kind: str, ref: str | None, details: EventDetails | None) -> str:
        if kind in HOLD_EVENTS and ref:
            return await self._hold_changed(ref)
        if kind == "payment_intent.canceled" and ref:
            return await self._hold_canceled(ref)
        if kind in REFUND_EVENTS and ref:
            return await self._refunded(ref)
        if kind.startswith("charge.dispute.") and ref and isinstance(details, DisputeDetails):
            return await self._dispute(kind, ref, details)
        return "ignored"

    async def _hold_changed(self, ref: str) -> str:
        async with self.uow() as uow:
            record = await uow.sessions.by_payment_ref(ref)
        if record is None:
            return "no session"
        if record.state == S.CREATED:
            await self.reservations.confirm_payment(record.id)
            return "confirmed"
        return f"session {record.state}"

    async def _hold_canceled(self, ref: str) -> str:
        # The event alone is not trusted (nor its order): the hold must really be gone.
        if (await self.payments.get(ref)).status != "canceled":
            return await self._hold_changed(ref)
        async with self.uow() as uow:
            record = await uow.sessions.by_payment_ref(ref)
            if record is None:
                return "no session"
            state = S(record.state)
            if state == S.CREATED:
                # In this unit: a second one opened inside it would wait for itself.
                await cancel_reservation(
                    uow, record, Reason.HOLD_CANCELED_BY_PROVIDER, self.timeouts
                )
                return "reservation canceled"
            if state in (S.AUTHORIZED, S.STARTING) and record.transaction_pk is None:
                await fail_start(uow, record, Reason.HOLD_CANCELED_BY_PROVIDER, self.timeouts)
                return "start failed"
            hold = await uow.payments.by_ref(ref)
            if hold is not None and hold.authorised_minor > hold.captured_minor:
                # Whatever was still held has lapsed (expired or canceled elsewhere).
                rest = hold.authorised_minor - hold.captured_minor
                await uow.payments.post(
                    hold,
                    f"release:{record.id}",
                    released(rest, hold.currency, expired=True),
                    status="expired",
                )
            if state in (S.CHARGING, S.STOPPING):
                # The hold vanished under a running charge: stop; the money needs a person.
                await uow.sessions.alert(record, "hold_canceled_while_charging", {"ref": ref})
            elif state == S.STOPPED:
                moved = await uow.sessions.move(
                    record,
                    S.NEEDS_REVIEW,
                    reason=Reason.HOLD_EXPIRED,
                    reason_detail="the hold was canceled or expired before the capture",
                    deadline_at=deadline_for(
                        S.NEEDS_REVIEW, utcnow(), self.timeouts, authorized_at=record.authorized_at
                    ),
                )
                await uow.sessions.alert(moved, "hold_expired", {"ref": ref})
                return "needs review"
            else:
                return f"session {record.state}"
        await self.charging.stop(record.id, Reason.HOLD_CANCELED_BY_PROVIDER)
        return "stopped"

    async def _refunded(self, ref: str) -> str:
        """The payment's refunds as the provider lists them (events name no refunds, or
        not all): ours are booked once they succeed, and those made elsewhere (the
        provider's dashboard) are recorded and booked too."""
        listed = await self.payments.list_refunds(ref)
        booked = 0
        async with self.uow() as uow:
            payment = await uow.payments.by_ref(ref)
            if payment is None:
                return "no payment"
            for seen in sorted(listed, key=lambda r: r.ref):
                refund = await uow.payments.refund_by_provider_ref(seen.ref)
                if refund is None:
                    # Ours, whose job has not heard back yet? The same amount, pending.
                    pending = [
                        r
                        for r in await uow.payments.refunds(payment.id)
                        if r.state == "pending"
                        and r.provider_ref is None
                        and r.amount_minor == seen.amount_minor
                    ]
                    if pending:
                        refund = pending[0]
                    elif seen.status in ("succeeded", "pending"):
                        refund, _ = await uow.payments.add_refund(
                            payment,
                            f"provider:{seen.ref}",
                            seen.amount_minor,
                            seen.reason or "refunded at the payment provider",
                            source="provider",
                            provider_ref=seen.ref,
                        )
                    else:
                        continue
                if refund.state != "pending":
                    continue
                if seen.status == "succeeded":
                    await uow.payments.finish_refund(refund, "succeeded", seen.ref)
                    current = await uow.payments.get(payment.id)
                    assert current is not None
                    await book_refund(uow, current, refund)
                    booked += 1
                elif seen.status in ("failed", "canceled"):
                    await uow.payments.finish_refund(refund, "failed", seen.ref)
        return f"{booked} refunds booked"

    async def _dispute(self, kind: str, ref: str, details: DisputeDetails) -> str:
        async with self.uow() as uow:
            # The session first, then its payment: the order every unit locks them in.
            session = await uow.sessions.by_payment_ref(ref)
            payment = await uow.payments.by_ref(ref)
            if payment is None:
                return "no payment"
            withdrawn = await uow.payments.upsert_dispute(
                payment, details.ref, details.amount_minor, details.status, details.reason
            )
            if kind == "charge.dispute.funds_withdrawn" and not withdrawn:
                await uow.payments.post(
                    payment,
                    f"dispute:{details.ref}",
                    disputed(details.amount_minor, payment.currency),
                    status="disputed",
                )
                await uow.payments.mark_dispute_withdrawn(details.ref, True)
            elif kind == "charge.dispute.funds_reinstated" and withdrawn:
                await uow.payments.post(
                    payment,
                    f"dispute_won:{details.ref}",
                    dispute_won(details.amount_minor, payment.currency),
                    status="captured",
                )
                await uow.payments.mark_dispute_withdrawn(details.ref, False)
            if session is not None:
                await uow.sessions.alert(
                    session,
                    kind.removeprefix("charge."),
                    {"dispute": details.ref, "status": details.status, "reason": details.reason},
                )
        return f"dispute {details.status}"


def _details(payload: dict[str, Any]) -> EventDetails | None:
    name = payload.get("details_type")
    if not name or name not in DETAIL_TYPES or payload.get("details") is None:
        return None
    details: EventDetails = msgspec.convert(payload["details"], type=DETAIL_TYPES[str(name)])
    return details
