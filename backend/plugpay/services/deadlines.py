"""The sweeper: every session past its deadline is moved on, so none waits forever.

It runs as a periodic job (once a second across all instances). Each session
is looked at in a unit of work of its own; what is overdue is decided from the
session itself (a deadline only says when to look), so a deadline set early,
or by an older version, does no harm.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from plugpay.domain.session import Reason, SessionState, Timeouts, deadline_for, hold_expires_at
from plugpay.services.ports import LiveBus, SessionRecord, UnitOfWork, UnitOfWorkFactory
from plugpay.services.ports.jobs import Job, JobKind, NewJob
from plugpay.services.session_moves import (
    ask_to_stop,
    cancel_reservation,
    fail_start,
    hold_deadline,
    utcnow,
)
from plugpay.services.settlement import SettlementService
from plugpay.services.snapshots import publish

log = logging.getLogger(__name__)
S = SessionState
BATCH = 100


@dataclass(frozen=True)
class Finish:
    """Settle the session from its readings, for this reason (None: it just ended)."""

    reason: Reason | None


@dataclass
class DeadlineSweeper:
    uow: UnitOfWorkFactory
    settlement: SettlementService
    live: LiveBus
    timeouts: Timeouts

    async def run(self, job: Job | None = None) -> int:
        """Move on every session whose deadline has passed; how many were due."""
        now = utcnow()
        async with self.uow() as uow:
            due = await uow.sessions.due(now, BATCH)
        for session_id in due:
            try:
                await self.sweep(session_id)
            except Exception:
                log.exception("sweeping session %s failed", session_id)
        return len(due)

    async def sweep(self, session_id: str) -> None:
        async with self.uow() as uow:
            record = await uow.sessions.get(session_id)
            if record is None or record.deadline_at is None or record.deadline_at > utcnow():
                return
            result = await self._decide(uow, record)
        if isinstance(result, Finish):
            await self.settlement.finish(session_id, result.reason)
        else:
            await publish(self.live, result)

    async def _decide(self, uow: UnitOfWork, record: SessionRecord) -> SessionRecord | Finish:
        """The session as moved on, or Finish when it must be settled from its
        readings (outside this unit: pricing reads many rows)."""
        now = utcnow()
        t = self.timeouts
        state = S(record.state)
        if state == S.CREATED:
            if now >= record.created_at + t.reservation:
                moved = await cancel_reservation(uow, record, Reason.NOT_PAID_IN_TIME, t)
                if record.transaction_pk is not None:
                    # An RFID card's charge whose hold never came: it stops now.
                    await uow.jobs.add(
                        NewJob(
                            JobKind.LATE_STOP,
                            f"late_stop:{record.transaction_pk}",
                            {"transaction_pk": record.transaction_pk},
                            session_id=record.id,
                            charger_id=record.charger_id,
                        )
                    )
                    await uow.sessions.alert(moved, "rfid_not_paid", {"why": "no hold in time"})
                return moved
            return await self._later(uow, record, record.created_at + t.reservation)
        if state in (S.AUTHORIZED, S.STARTING):
            start_by = record.start_deadline or (record.authorized_at or now) + t.start
            if record.transaction_pk is not None:
                return await self._later(uow, record, now + t.silent)
            if now >= start_by:
                reason = _start_reason(record)
                return await fail_start(uow, record, reason, t)
            return await self._later(uow, record, start_by)
        if state == S.CHARGING:
            if await uow.sessions.charger_connected(record.charger_id):
                # Connected but quiet (a long metering interval): look again later.
                return await self._later(uow, record, now + t.silent)
            info = await self._info(uow, record)
            return Finish(None if info else Reason.CHARGER_SILENT)
        if state == S.STOPPING:
            if await self._info(uow, record):
                return Finish(None)
            asked = record.stop_asked_at or now
            connected = await uow.sessions.charger_connected(record.charger_id)
            if now - asked >= t.silent:
                return Finish(Reason.STOP_IGNORED if connected else Reason.CHARGER_SILENT)
            if connected:
                await ask_to_stop(uow, record, again=True)
            return await self._later(uow, record, now + t.stop_retry)
        if state == S.STOPPED:
            expiry = hold_deadline(record, t)
            if now >= expiry:
                moved = await uow.sessions.move(
                    record,
                    S.NEEDS_REVIEW,
                    reason=Reason.PROVIDER_UNREACHABLE,
                    reason_detail="the capture did not finish before the hold expired",
                    deadline_at=deadline_for(
                        S.NEEDS_REVIEW, now, t, authorized_at=record.authorized_at
                    ),
                )
                await uow.sessions.alert(moved, "capture_not_finished", {})
                return moved
            await self._ensure_money_job(uow, record)
            return await self._later(uow, record, expiry)
        if state == S.NEEDS_REVIEW:
            expiry = hold_expires_at(record.authorized_at or record.created_at, t)
            await uow.sessions.alert(
                record,
                "hold_expiring" if now < expiry else "hold_expired",
                {"expires_at": expiry.isoformat(), "reason": record.reason},
            )
            # A person settles it now; nothing more happens by itself.
            return await uow.sessions.update(record, deadline_at=None)
        return await uow.sessions.update(record, deadline_at=None)

    async def _later(self, uow: UnitOfWork, record: SessionRecord, at: datetime) -> SessionRecord:
        return await uow.sessions.update(record, deadline_at=at)

    async def _info(self, uow: UnitOfWork, record: SessionRecord) -> bool:
        """Whether the session's transaction has ended."""
        if record.transaction_pk is None:
            return False
        info = await uow.sessions.transaction_info(record.transaction_pk)
        return info is not None and info.ended

    async def _ensure_money_job(self, uow: UnitOfWork, record: SessionRecord) -> None:
        """A STOPPED session always has its capture or release queued (the same unit
        queued it; this only mends sessions from before that was so)."""
        if record.payment_ref is None:
            return
        if await uow.jobs.pending(f"capture:{record.id}") or await uow.jobs.pending(
            f"release:{record.id}"
        ):
            return
        amount = min(record.cost_minor, record.hold_minor)
        kind, key = (
            (JobKind.CAPTURE, f"capture:{record.id}")
            if amount > 0
            else (JobKind.RELEASE, f"release:{record.id}")
        )
        await uow.jobs.add(
            NewJob(
                kind,
                key,
                {"amount_minor": amount},
                session_id=record.id,
                give_up_at=hold_deadline(record, self.timeouts),
            )
        )


def _start_reason(record: SessionRecord) -> Reason:
    """Why a start never came: what the start job noted, if anything."""
    if record.reason in (
        Reason.CHARGER_NOT_RESPONDING,
        Reason.CHARGER_OFFLINE,
        Reason.CHARGER_REJECTED,
    ):
        return Reason(record.reason)
    return Reason.CHARGER_DID_NOT_START
