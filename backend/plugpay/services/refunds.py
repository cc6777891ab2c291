"""Refunds of captured sessions, in full or in part, through the ledger.

Asking is one unit of work: the refund is recorded (pending) and its job
queued; what may be refunded counts the refunds still pending, so two asks at
once can never give back more than was captured. Asking again for the same
refund (same session, amount and reason) finds the first one and refunds
nothing more.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from decimal import Decimal

from plugpay.domain.errors import InvalidInput, NotFound
from plugpay.domain.ledger import refunded, vat_share
from plugpay.domain.money import Money
from plugpay.services.jobs import GiveUp, RetryLater, backoff
from plugpay.services.ports import PaymentDeclined, PaymentGateway, PaymentUnavailable
from plugpay.services.ports.jobs import Job, JobKind, NewJob
from plugpay.services.ports.ledger import PaymentRecord, RefundRecord
from plugpay.services.ports.uow import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)
# How often a refund the provider still has pending is asked after.
PENDING_REFUND_SECONDS = 300.0


@dataclass(frozen=True)
class RefundAsked:
    refund: RefundRecord
    new: bool  # False: the same refund was asked for before


def refund_key(session_id: str, amount: str, reason: str) -> str:
    digest = hashlib.sha256(reason.strip().encode()).hexdigest()[:16]
    return f"refund:{session_id}:{amount}:{digest}"


@dataclass
class RefundService:
    uow: UnitOfWorkFactory
    payments: PaymentGateway

    async def refund(self, session_id: str, amount: Decimal | None, reason: str) -> RefundAsked:
        """Refund ``amount`` (major units of the session's currency) of a captured
        session; all that is left when None."""
        reason = reason.strip()
        if not reason:
            raise InvalidInput("a refund needs a reason")
        if len(reason) > 200:
            raise InvalidInput("a refund reason is at most 200 characters")
        async with self.uow() as uow:
            payment = await uow.payments.of_session(session_id)
            if payment is None:
                raise NotFound("no such session, or it has no payment")
            try:
                money = None if amount is None else Money.parse(str(amount), payment.currency)
            except ValueError as exc:
                raise InvalidInput(str(exc)) from None
            key = refund_key(session_id, "all" if money is None else str(money.minor), reason)
            known = await uow.payments.refund_by_key(key)
            if known is not None:
                return RefundAsked(known, False)
            if payment.captured_minor <= 0:
                raise InvalidInput("nothing was captured for this session")
            refunds = await uow.payments.refunds(payment.id)
            left = payment.captured_minor - sum(
                r.amount_minor for r in refunds if r.state != "failed"
            )
            asked = left if money is None else money.minor
            if left <= 0:
                raise InvalidInput("everything captured has been refunded already")
            if asked <= 0:
                raise InvalidInput("a refund must be for a positive amount")
            if asked > left:
                raise InvalidInput(f"at most {Money(left, payment.currency)} can still be refunded")
            refund, _ = await uow.payments.add_refund(payment, key, asked, reason)
            await uow.jobs.add(
                NewJob(
                    JobKind.REFUND,
                    f"refund:{refund.id}",
                    {"refund_id": refund.id},
                    session_id=session_id,
                )
            )
        return RefundAsked(refund, True)

    async def run_refund(self, job: Job) -> None:
        """Ask the provider for a refund (job ``payment.refund``), then book it."""
        refund_id = int(job.payload["refund_id"])
        async with self.uow() as uow:
            refund = await _refund(uow, refund_id)
            payment = await uow.payments.get(refund.payment_id)
        if payment is None or refund.state != "pending":
            return
        try:
            result = await self.payments.refund(
                payment.ref, refund.amount_minor, f"plugpay:{refund.key}", refund.reason
            )
        except PaymentUnavailable as exc:
            raise RetryLater(str(exc), backoff(job.attempts, base=5.0, cap=600.0)) from None
        except PaymentDeclined as exc:
            async with self.uow() as uow:
                refund = await _refund(uow, refund_id)
                await uow.payments.finish_refund(refund, "failed", None)
            raise GiveUp(f"refund refused: {exc}") from None
        if result.status in ("failed", "canceled"):
            async with self.uow() as uow:
                refund = await _refund(uow, refund_id)
                if refund.state == "pending":
                    await uow.payments.finish_refund(refund, "failed", result.ref)
            raise GiveUp(f"the provider's refund {result.ref} {result.status}")
        async with self.uow() as uow:
            refund = await _refund(uow, refund_id)
            current = await uow.payments.get(refund.payment_id)
            if current is None or refund.state != "pending":
                return
            if result.status != "succeeded":
                # Some methods refund later: the provider's refund events (or the
                # next try, with the same key) book it once it has succeeded.
                await uow.payments.note_refund_ref(refund, result.ref)
                raise RetryLater(f"refund {result.ref} is {result.status}", PENDING_REFUND_SECONDS)
            await uow.payments.finish_refund(refund, "succeeded", result.ref)
            await book_refund(uow, current, refund)


async def _refund(uow: UnitOfWork, refund_id: int) -> RefundRecord:
    refund = await uow.payments.refund(refund_id)
    if refund is None:
        raise GiveUp(f"no refund {refund_id}")
    return refund


async def book_refund(uow: UnitOfWork, payment: PaymentRecord, refund: RefundRecord) -> None:
    """The refund's journal, once: its VAT share of what was captured goes back too.

    The share is the VAT of everything refunded so far, this refund included, less
    the VAT already given back: refunds in parts then return exactly the VAT captured.
    """
    before = payment.refunded_minor
    after = before + refund.amount_minor
    captured, vat_total = payment.captured_minor, payment.captured_vat_minor
    vat = vat_share(after, captured, vat_total) - vat_share(before, captured, vat_total)
    await uow.payments.post(
        payment,
        f"refund:{refund.id}",
        refunded(refund.amount_minor, vat, payment.currency),
        refunded_minor=payment.refunded_minor + refund.amount_minor,
    )
