"""Ending a session with money: final price, one capture, release, receipt.

``finish`` fixes the price and moves the session to STOPPED in the same unit
of work that queues its capture (or release); the capture job asks the
provider with an idempotency key from the session, then records the capture
in the ledger, settles the session and queues the receipt, again in one unit.
A provider that cannot be reached is asked again with backoff until the hold
is about to expire, when the session needs review.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plugpay.crashpoints import crash_point
from plugpay.domain.ledger import captured, released, vat_share
from plugpay.domain.money import Money
from plugpay.domain.session import Reason, SessionState, Timeouts, deadline_for
from plugpay.domain.tariff import PriceBreakdown, breakdown_to_record
from plugpay.domain.tariff.display import display_tariff
from plugpay.domain.tariff.model import Dimension
from plugpay.domain.tariff.now import price_now
from plugpay.services.charging import ChargingService
from plugpay.services.jobs import GiveUp, RetryLater, backoff
from plugpay.services.live_pricing import LivePricing
from plugpay.services.ports import (
    AccountStore,
    LiveBus,
    PaymentDeclined,
    PaymentGateway,
    PaymentUnavailable,
    PushSender,
    PushSubscription,
    SessionRecord,
    SessionStore,
    UnitOfWork,
    UnitOfWorkFactory,
)
from plugpay.services.ports.jobs import Job, JobKind, NewJob
from plugpay.services.session_moves import hold_deadline, release_hold, utcnow
from plugpay.services.snapshots import publish

log = logging.getLogger(__name__)
S = SessionState

# The longest wait between two tries of a capture the provider did not take.
MAX_RETRY_SECONDS = 600.0
RUNNING = frozenset({S.AUTHORIZED, S.STARTING, S.CHARGING, S.STOPPING})
# (total, receipt URL, language) -> the notification's payload
ReceiptText = Callable[[Money, str, str], dict[str, Any]]
IdleText = Callable[[str, str, str], dict[str, Any]]  # (price, live page URL, language)


def vat_minor(breakdown: PriceBreakdown) -> int:
    """The VAT in a breakdown's total, in minor units (0 when the tariff states none)."""
    if breakdown.total_incl_vat is None:
        return 0
    incl = Money.from_decimal(breakdown.total_incl_vat, breakdown.currency).minor
    excl = Money.from_decimal(breakdown.total_excl_vat, breakdown.currency).minor
    return max(incl - excl, 0)


@dataclass
class SettlementService:
    uow: UnitOfWorkFactory
    store: SessionStore
    payments: PaymentGateway
    pricing: LivePricing
    charging: ChargingService
    live: LiveBus
    timeouts: Timeouts
    push: PushSender | None = None
    public_url: str = "http://127.0.0.1:8000"
    receipt_text: ReceiptText | None = None
    accounts: AccountStore | None = None  # a signed-in driver's devices get receipts too
    idle_text: IdleText | None = None
    refused_text: Callable[[str, str], dict[str, Any]] | None = None  # (cards URL, language)

    # -- the transaction is over ------------------------------------------------
    async def run_transaction_ended(self, job: Job) -> None:
        """The charger ended a transaction (job ``transaction.ended``, written with the
        transaction's end): settle its session, or reconcile one settled without it."""
        transaction_pk = int(job.payload["transaction_pk"])
        id_tag = job.payload.get("id_tag")
        record = await self.store.by_transaction(transaction_pk)
        if record is None and id_tag and await self.store.by_id_tag(str(id_tag)) is not None:
            # Its start was never applied (both came in one offline replay): now.
            info = await self.store.transaction_info(transaction_pk)
            started = info.started_at if info and info.started_at else utcnow()
            await self.charging.apply_started(transaction_pk, str(id_tag), started)
            record = await self.store.by_transaction(transaction_pk)
        if record is None:
            return
        if record.state in RUNNING:
            await self.finish(record.id, reason=None)
        elif record.state in (S.STOPPED, S.SETTLED, S.NEEDS_REVIEW) and record.reason in (
            Reason.CHARGER_SILENT,
            Reason.STOP_IGNORED,
        ):
            await self.reconcile(record)

    async def finish(self, session_id: str, reason: Reason | None) -> SessionRecord | None:
        """The transaction is over (or the charger went silent): fix the price, queue
        the capture. The price is the engine's over every stored reading."""
        record = await self.store.get(session_id)
        if record is None or record.transaction_pk is None or record.state not in RUNNING:
            return None
        breakdown, energy_wh, last_at = await self.pricing.final_price(record)
        total = breakdown.total_due().minor
        capture = min(total, record.hold_minor)
        detail = None
        if total > record.hold_minor:
            detail = f"price {total} exceeded the hold {record.hold_minor}"
        info = await self.store.transaction_info(record.transaction_pk)
        stopped_at = (info.stopped_at if info and info.stopped_at else None) or last_at or utcnow()
        async with self.uow() as uow:
            current = await uow.sessions.get(session_id)
            if current is None or current.state not in RUNNING:
                return None
            if current.state == S.AUTHORIZED:  # the start was never seen: it did start
                current = await uow.sessions.move(current, S.CHARGING)
            moved = await uow.sessions.move(
                current,
                S.STOPPED,
                breakdown=breakdown_to_record(breakdown),
                cost_minor=total,
                energy_wh=energy_wh,
                stopped_at=stopped_at,
                reason=reason or current.reason,
                reason_detail=detail,
                deadline_at=deadline_for(
                    S.STOPPED, utcnow(), self.timeouts, authorized_at=current.authorized_at
                ),
            )
            await uow.sessions.revoke_id_tag(moved.id_tag)
            if capture > 0:
                await uow.jobs.add(
                    NewJob(
                        JobKind.CAPTURE,
                        f"capture:{session_id}",
                        {
                            "amount_minor": capture,
                            "vat_minor": vat_share(capture, total, vat_minor(breakdown)),
                        },
                        session_id=session_id,
                        give_up_at=hold_deadline(moved, self.timeouts),
                    )
                )
            else:
                await release_hold(uow, moved, self.timeouts)
        crash_point("stopped.committed")
        self.pricing.forget(session_id, record.transaction_pk)
        await publish(self.live, moved)
        return moved

    async def reconcile(self, record: SessionRecord) -> None:
        """A silent charger finally delivered its stop: compare, never capture twice."""
        assert record.transaction_pk is not None
        breakdown, _, _ = await self.pricing.final_price(record)
        total = breakdown.total_due().minor
        if total == record.cost_minor:
            return
        async with self.uow() as uow:
            current = await uow.sessions.get(record.id)
            if current is not None:
                late = f"late stop priced {total}, settled {record.cost_minor}"
                earlier = current.reason_detail
                await uow.sessions.update(
                    current, reason_detail=f"{earlier}; {late}" if earlier else late
                )

    # -- money ------------------------------------------------------------------
    async def run_capture(self, job: Job) -> None:
        """Capture the final price (job ``payment.capture``)."""
        record = await self.store.get(str(job.session_id))
        if record is None or record.payment_ref is None:
            return
        if record.state not in (S.STOPPED, S.NEEDS_REVIEW) or record.settled_at is not None:
            return
        amount = int(job.payload["amount_minor"])
        try:
            state = await self.payments.capture(record.payment_ref, amount, f"{record.id}:capture")
        except PaymentUnavailable as exc:
            await self._not_now(job, record, str(exc))
            return
        except PaymentDeclined as exc:
            await self._review(record, Reason.PROVIDER_REFUSED, f"payment provider refused: {exc}")
            raise GiveUp(f"refused: {exc}") from None
        crash_point("capture.answered")
        vat = int(job.payload.get("vat_minor", 0))
        async with self.uow() as uow:
            current = await uow.sessions.get(record.id)
            if current is None or current.settled_at is not None:
                return
            hold = await uow.payments.by_ref(record.payment_ref)
            if hold is not None:
                await uow.payments.post(
                    hold,
                    f"capture:{record.id}",
                    captured(amount, vat, record.currency),
                    status="captured",
                    captured_minor=amount,
                    captured_vat_minor=vat,
                )
                rest = hold.authorised_minor - amount
                if rest > 0:  # the provider released the rest with the capture
                    await uow.payments.post(
                        hold, f"release:{record.id}", released(rest, record.currency)
                    )
            # The bill fixed at the stop is more than the hold could take.
            over = (current.cost_minor or 0) > amount
            target = S.NEEDS_REVIEW if over else S.SETTLED
            values = {
                "captured_minor": amount,
                "settled_at": utcnow(),
                "card_brand": state.card_brand or current.card_brand,
                "card_last4": state.card_last4 or current.card_last4,
            }
            if amount > 0 and current.receipt_no is None:
                # Numbered with the capture it records, in the same transaction.
                values["receipt_no"] = await uow.sessions.next_receipt_number()
            if current.state == target:
                settled = await uow.sessions.update(current, **values)
            else:
                settled = await uow.sessions.move(
                    current,
                    target,
                    reason=Reason.PRICE_EXCEEDED_HOLD if over else current.reason,
                    deadline_at=deadline_for(
                        target, utcnow(), self.timeouts, authorized_at=current.authorized_at
                    ),
                    **values,
                )
            if over:
                await uow.sessions.alert(settled, "price_exceeded_hold", {"captured": amount})
            await self._queue_receipt(uow, settled)
        crash_point("settled.committed")
        await publish(self.live, settled)

    async def run_release(self, job: Job) -> None:
        """Release the whole hold (job ``payment.release``): the charge never started,
        or it cost nothing."""
        record = await self.store.get(str(job.session_id))
        if record is None or record.payment_ref is None:
            return
        try:
            await self.payments.cancel(record.payment_ref, f"{record.id}:release")
        except PaymentUnavailable as exc:
            await self._not_now(job, record, str(exc))
            return
        except PaymentDeclined as exc:
            # The provider will not cancel (captured elsewhere, or gone): a person looks.
            async with self.uow() as uow:
                current = await uow.sessions.get(record.id)
                if current is not None:
                    await uow.sessions.alert(current, "release_refused", {"error": str(exc)})
            raise GiveUp(f"release refused: {exc}") from None
        crash_point("release.answered")
        async with self.uow() as uow:
            current = await uow.sessions.get(record.id)
            if current is None:
                return
            hold = await uow.payments.by_ref(record.payment_ref)
            if hold is not None and hold.authorised_minor > hold.captured_minor:
                await uow.payments.post(
                    hold,
                    f"release:{record.id}",
                    released(hold.authorised_minor - hold.captured_minor, record.currency),
                    status="released",
                )
            if current.state != S.STOPPED:
                return  # a start that failed or a reservation canceled: nothing more
            settled = await uow.sessions.move(
                current, S.SETTLED, captured_minor=0, settled_at=utcnow()
            )
            await self._queue_receipt(uow, settled)
        await publish(self.live, settled)

    async def _not_now(self, job: Job, record: SessionRecord, error: str) -> None:
        give_up = job.give_up_at or hold_deadline(record, self.timeouts)
        if utcnow() >= give_up:
            await self._review(
                record,
                Reason.PROVIDER_UNREACHABLE,
                f"payment provider unreachable until the hold expired: {error}",
            )
            raise GiveUp(error)
        raise RetryLater(error, backoff(job.attempts, base=5.0, cap=MAX_RETRY_SECONDS))

    async def _review(self, record: SessionRecord, reason: Reason, why: str) -> None:
        async with self.uow() as uow:
            current = await uow.sessions.get(record.id)
            if current is None:
                return
            if current.state == S.STOPPED:
                current = await uow.sessions.move(
                    current,
                    S.NEEDS_REVIEW,
                    reason=reason,
                    reason_detail=why[:300],
                    deadline_at=deadline_for(
                        S.NEEDS_REVIEW, utcnow(), self.timeouts, authorized_at=current.authorized_at
                    ),
                )
            await uow.sessions.alert(current, "needs_review", {"reason": reason, "why": why[:300]})
        await publish(self.live, current)

    # -- the receipt ----------------------------------------------------------
    async def _queue_receipt(self, uow: UnitOfWork, record: SessionRecord) -> None:
        if self.push is None:
            return
        await uow.jobs.add(NewJob(JobKind.RECEIPT, f"receipt:{record.id}", session_id=record.id))

    async def run_idle_notice(self, job: Job) -> None:
        """The car stopped drawing power while an idle fee applies: one Web Push to the
        session's subscriptions and the account's devices (job ``session.idle_notice``)."""
        if self.push is None or self.idle_text is None:
            return
        record = await self.store.get(str(job.session_id))
        if record is None or record.state != S.CHARGING:
            return  # stopped meanwhile: nothing to warn of
        tariff = await self.pricing.tariff_of(record)
        now = utcnow()
        elapsed = now - (record.started_at or now)
        if (
            Dimension.PARKING_TIME
            not in price_now(tariff, record.time_zone, now, elapsed, record.energy_wh).elements
        ):
            return  # no idle fee at this hour, or not yet for this session
        shown = display_tariff(
            tariff, locale=record.lang, tz=record.time_zone, example_start=utcnow()
        )
        prices = [item.amount for item in shown.items if item.kind == "PARKING_TIME"]
        if not prices:
            return
        payload = self.idle_text(prices[0], f"{self.public_url}/s/{record.id}", record.lang)
        await self._push(record, payload)

    async def run_card_refused(self, job: Job) -> None:
        """An RFID card's charge was stopped, its saved card having refused the hold:
        tell the driver on the account's devices (job ``session.card_refused``)."""
        if self.push is None or self.refused_text is None:
            return
        record = await self.store.get(str(job.session_id))
        if record is None or record.account_id is None:
            return
        await self._push(record, self.refused_text(f"{self.public_url}/me/cards", record.lang))

    async def _push(self, record: SessionRecord, payload: dict[str, Any]) -> int:
        """One message to every subscription of the session and every device of its
        account, each endpoint once; an endpoint the push service calls gone is pruned.
        How many endpoints there were."""
        assert self.push is not None
        subscriptions = {s.endpoint: s for s in await self.store.push_subscriptions(record.id)}
        account_id = record.account_id
        if account_id is not None and self.accounts is not None:
            for device in await self.accounts.devices(account_id):
                subscriptions.setdefault(
                    device.endpoint, PushSubscription(device.endpoint, device.p256dh, device.auth)
                )
        for subscription in subscriptions.values():
            outcome = await self.push.send(subscription, payload)
            if outcome == "gone":
                await self.store.remove_push_subscription(record.id, subscription.endpoint)
                if account_id is not None:
                    async with self.uow() as uow:
                        await uow.accounts.forget_endpoint(account_id, subscription.endpoint)
        return len(subscriptions)

    async def run_receipt(self, job: Job) -> None:
        """One Web Push with the total to every subscription of the session (job
        ``receipt.push``; the job is done once, so the receipt is sent once)."""
        if self.push is None or self.receipt_text is None:
            return
        session_id = str(job.session_id)
        record = await self.store.get(session_id)
        if record is None:
            return
        total = Money(record.captured_minor or 0, record.currency)
        sent = await self._push(
            record, self.receipt_text(total, f"{self.public_url}/r/{session_id}", record.lang)
        )
        if not sent:
            return  # nobody to tell: the session stays as it is
        async with self.uow() as uow:
            current = await uow.sessions.get(session_id)
            if current is not None:
                await uow.sessions.update(current, receipt_pushed_at=utcnow())
