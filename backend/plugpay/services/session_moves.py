"""The moves of a session that always bring follow-up work, inside a unit of work.

Each function changes the session and adds the jobs that must follow, in the
caller's unit, so both are committed together or not at all.
"""

from __future__ import annotations

from datetime import UTC, datetime

from plugpay.domain.session import Reason, SessionState, Timeouts, deadline_for, hold_expires_at
from plugpay.services.ports import SessionRecord, UnitOfWork
from plugpay.services.ports.jobs import JobKind, NewJob

S = SessionState


def utcnow() -> datetime:
    return datetime.now(UTC)


def hold_deadline(record: SessionRecord, timeouts: Timeouts) -> datetime:
    """When a capture must be done by: the hold is gone soon after."""
    return hold_expires_at(record.authorized_at or record.created_at, timeouts)


async def release_hold(uow: UnitOfWork, record: SessionRecord, timeouts: Timeouts) -> None:
    """Queue the release of the session's hold (nothing to do without one)."""
    if record.payment_ref is None:
        return
    await uow.jobs.add(
        NewJob(
            JobKind.RELEASE,
            f"release:{record.id}",
            session_id=record.id,
            give_up_at=hold_deadline(record, timeouts),
        )
    )


async def cancel_reservation(
    uow: UnitOfWork, record: SessionRecord, reason: Reason, timeouts: Timeouts
) -> SessionRecord:
    """CREATED -> CANCELED: the connector is free again, any hold released."""
    moved = await uow.sessions.move(record, S.CANCELED, reason=reason)
    await uow.sessions.revoke_id_tag(record.id_tag)
    await release_hold(uow, moved, timeouts)
    return moved


async def fail_start(
    uow: UnitOfWork, record: SessionRecord, reason: Reason, timeouts: Timeouts
) -> SessionRecord:
    """AUTHORIZED/STARTING -> START_FAILED: the charge never began; release the hold."""
    moved = await uow.sessions.move(record, S.START_FAILED, reason=reason)
    await uow.sessions.revoke_id_tag(record.id_tag)
    await release_hold(uow, moved, timeouts)
    return moved


async def ask_to_stop(uow: UnitOfWork, record: SessionRecord, *, again: bool = False) -> None:
    """Queue (or, ``again``, re-queue) the stop command for the session's transaction."""
    await uow.jobs.add(
        NewJob(
            JobKind.SESSION_STOP,
            f"stop:{record.id}",
            session_id=record.id,
            charger_id=record.charger_id,
            rearm=again,
        )
    )


async def request_stop(
    uow: UnitOfWork, record: SessionRecord, reason: Reason, timeouts: Timeouts
) -> SessionRecord:
    """CHARGING -> STOPPING, with the stop command queued; before the transaction
    started, the start fails instead (there is nothing to stop)."""
    if record.state in (S.AUTHORIZED, S.STARTING) and record.transaction_pk is None:
        return await fail_start(uow, record, Reason.STOPPED_BEFORE_START, timeouts)
    if record.state != S.CHARGING:
        return record
    now = utcnow()
    moved = await uow.sessions.move(
        record,
        S.STOPPING,
        reason=reason,
        stop_asked_at=now,
        deadline_at=deadline_for(S.STOPPING, now, timeouts),
    )
    await ask_to_stop(uow, moved, again=True)
    return moved
