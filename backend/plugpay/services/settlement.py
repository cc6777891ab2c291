"""Ending a session with money: final price, one capture, release, receipt.

A capture or release is first written to a durable job queue, then tried at
once; if the provider cannot be reached it is retried with the same
idempotency key (so the provider applies it at most once) until it succeeds
or the hold is about to expire, when the session is flagged for review.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from plugpay.domain.money import Money
from plugpay.domain.session import SessionState
from plugpay.domain.tariff import breakdown_to_json
from plugpay.services.ports import (
    PaymentDeclined,
    PaymentJob,
    PaymentUnavailable,
    PushSender,
    SessionRecord,
)
from plugpay.services.sessions import SessionService, utcnow

log = logging.getLogger(__name__)
S = SessionState

# Card holds on Stripe last 7 days; stop retrying a little before.
HOLD_LIFETIME = timedelta(days=6, hours=12)
MAX_RETRY_DELAY = timedelta(minutes=10)


def _give_up_at(record: SessionRecord) -> datetime:
    return (record.authorized_at or record.created_at) + HOLD_LIFETIME


async def enqueue_release(sessions: SessionService, session_id: str) -> None:
    record = await sessions.store.get(session_id)
    if record is None or record.payment_ref is None:
        return
    await sessions.store.add_payment_job(
        PaymentJob(session_id, "cancel", 0, f"{session_id}:release", 0, _give_up_at(record))
    )


@dataclass
class SettlementService:
    sessions: SessionService
    push: PushSender | None = None
    public_url: str = "http://127.0.0.1:8000"
    receipt_text: Any = None  # (total_text, url, lang) -> payload; set by the wiring
    _busy: set[str] = field(default_factory=set)

    @property
    def store(self) -> Any:
        return self.sessions.store

    async def on_transaction_ended(self, transaction_pk: int, id_tag: str | None = None) -> None:
        record = await self.store.by_transaction(transaction_pk)
        if record is None and id_tag is not None:
            linked = await self.store.by_id_tag(id_tag)
            if linked is not None and linked.transaction_pk is None:
                info = await self.store.transaction_info(transaction_pk)
                started = info.started_at if info and info.started_at else utcnow()
                await self.sessions.on_transaction_started(transaction_pk, id_tag, started)
                record = await self.store.by_transaction(transaction_pk)
        if record is None:
            return
        if record.state in (S.CHARGING, S.STOPPING, S.STARTING):
            await self.finish(record.id, reason=None)
        elif (
            record.state in (S.STOPPED, S.SETTLED, S.NEEDS_REVIEW)
            and record.reason == "charger_silent"
        ):
            await self.reconcile(record)

    async def finish(self, session_id: str, reason: str | None) -> None:
        """The transaction is over (or the charger went silent): fix the price, capture it."""
        record = await self.sessions.store.get(session_id)
        if record is None or record.transaction_pk is None:
            return
        breakdown, energy_wh, last_at = await self.sessions.final_price(record)
        total = breakdown.total_due().minor
        capture = min(total, record.hold_minor)
        note = reason
        if total > record.hold_minor:
            note = f"price {total} exceeded the hold {record.hold_minor}"
        info = await self.store.transaction_info(record.transaction_pk)
        stopped_at = (info.stopped_at if info and info.stopped_at else None) or last_at or utcnow()
        moved = await self.store.transition(
            session_id,
            frozenset({S.CHARGING, S.STOPPING, S.STARTING}),
            S.STOPPED,
            breakdown=breakdown_to_json(breakdown),
            cost_minor=total,
            energy_wh=energy_wh,
            stopped_at=stopped_at,
            reason=note or record.reason,
        )
        if not moved:
            return
        self.sessions.forget(session_id, record.transaction_pk)
        kind = "capture" if capture > 0 else "cancel"
        await self.store.add_payment_job(
            PaymentJob(session_id, kind, capture, f"{session_id}:{kind}", 0, _give_up_at(record))
        )
        await self.sessions.publish(session_id)
        # The capture is durable in the job queue now; run it without holding up
        # the charger's answer (the timers retry it if this attempt fails).
        self.sessions.spawn(self.run_job(session_id))

    async def reconcile(self, record: SessionRecord) -> None:
        """A silent charger finally delivered its stop: compare, never capture twice."""
        assert record.transaction_pk is not None
        breakdown, _, _ = await self.sessions.final_price(record)
        total = breakdown.total_due().minor
        if total != record.cost_minor:
            await self.store.update(
                record.id,
                reason=f"charger_silent; late stop priced {total}, settled {record.cost_minor}",
            )

    async def run_due_jobs(self, now: datetime | None = None) -> None:
        for job in await self.store.due_payment_jobs(now or utcnow()):
            await self.run_job(job.session_id)

    async def run_job(self, session_id: str) -> None:
        if session_id in self._busy:
            return
        self._busy.add(session_id)
        try:
            await self._run_job(session_id)
        finally:
            self._busy.discard(session_id)

    async def _run_job(self, session_id: str) -> None:
        job = await self.store.payment_job(session_id)
        record = await self.store.get(session_id)
        if job is None or record is None or record.payment_ref is None:
            return
        payments = self.sessions.payments
        try:
            if job.kind == "capture":
                state = await payments.capture(
                    record.payment_ref, job.amount_minor, job.idempotency_key
                )
            else:
                state = await payments.cancel(record.payment_ref, job.idempotency_key)
        except PaymentUnavailable as exc:
            now = utcnow()
            if now >= job.give_up_at:
                await self._review(
                    record, f"payment provider unreachable until the hold expired: {exc}"
                )
                await self.store.payment_job_done(session_id)
                return
            delay = min(timedelta(seconds=5 * 2**job.attempts), MAX_RETRY_DELAY)
            await self.store.payment_job_retry(session_id, str(exc), now + delay)
            return
        except PaymentDeclined as exc:
            await self._review(record, f"payment provider refused: {exc}")
            await self.store.payment_job_done(session_id)
            return
        if record.state != S.STOPPED:  # a release for a session that never charged
            await self.store.payment_job_done(session_id)
            return
        target = S.NEEDS_REVIEW if (record.reason or "").startswith("price ") else S.SETTLED
        captured = job.amount_minor if job.kind == "capture" else 0
        if await self.store.settle(
            session_id,
            target,
            captured,
            record.payment_ref,
            record.currency,
            state.card_brand or record.card_brand,
            state.card_last4 or record.card_last4,
        ):
            await self.sessions.publish(session_id)
            await self.send_receipt(session_id)

    async def _review(self, record: SessionRecord, why: str) -> None:
        log.error("session %s needs review: %s", record.id, why)
        await self.store.transition(
            record.id, frozenset({S.STOPPED}), S.NEEDS_REVIEW, reason=why[:200]
        )
        await self.sessions.publish(record.id)

    async def send_receipt(self, session_id: str) -> None:
        """One Web Push with the total, once, to every subscription of the session."""
        if self.push is None or self.receipt_text is None:
            return
        subscriptions = await self.store.push_subscriptions(session_id)
        if not subscriptions or not await self.store.claim_receipt_push(session_id):
            return
        record = await self.store.get(session_id)
        assert record is not None
        total = Money(record.captured_minor or 0, record.currency)
        payload = self.receipt_text(total, f"{self.public_url}/r/{session_id}", record.lang)
        for subscription in subscriptions:
            outcome = await self.push.send(subscription, payload)
            if outcome == "gone":
                await self.store.remove_push_subscription(session_id, subscription.endpoint)

    # -- timers -----------------------------------------------------------------
    async def tick(self, now: datetime | None = None) -> None:
        """Give every session a bounded life: run once a second or so by each instance."""
        now = now or utcnow()
        settings = self.sessions.settings
        for record in await self.store.timers_due(
            now,
            unpaid_before=now - timedelta(seconds=settings.reservation_timeout),
            silent_before=now - timedelta(seconds=settings.silent_timeout),
        ):
            try:
                if record.state == S.CREATED and now - record.created_at > timedelta(
                    seconds=settings.reservation_timeout
                ):
                    await self.sessions.cancel(record.id, "not_paid_in_time")
                elif (
                    record.state == S.STARTING
                    and record.start_deadline
                    and now > record.start_deadline
                ):
                    await self.sessions.fail_start(record.id, "charger_did_not_start")
                elif record.state in (S.CHARGING, S.STOPPING) and record.transaction_pk is not None:
                    await self._check_silent(record, now)
            except Exception:
                log.exception("timer failed for session %s", record.id)
        await self.run_due_jobs(now)

    async def _check_silent(self, record: SessionRecord, now: datetime) -> None:
        last = record.last_reading_at or record.started_at or record.created_at
        if now - last <= timedelta(seconds=self.sessions.settings.silent_timeout):
            return
        if await self.store.charger_connected(record.charger_id):
            return
        assert record.transaction_pk is not None
        info = await self.store.transaction_info(record.transaction_pk)
        if info is not None and info.ended:
            await self.finish(record.id, reason=None)
        else:
            await self.finish(record.id, reason="charger_silent")
