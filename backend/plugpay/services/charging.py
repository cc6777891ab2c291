"""Start and stop: the commands to the charger, and what the charger answers.

Commands run as jobs, never inside a request or a charger's own message
handler: a start waits for a charger that is reconnecting (within the start
timeout), a stop is re-sent when the charger comes back, and a transaction the
charger reports is applied to its session from a durable job, exactly once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from plugpay.crashpoints import crash_point
from plugpay.domain.errors import ChargerOffline, CommandFailed, CommandTimeout, NotFound
from plugpay.domain.session import Reason, SessionState, Timeouts, deadline_for
from plugpay.services.commands import CommandService
from plugpay.services.jobs import GiveUp, RetryLater, backoff
from plugpay.services.ports import LiveBus, SessionRecord, SessionStore, UnitOfWorkFactory
from plugpay.services.ports.jobs import Job, JobKind, NewJob
from plugpay.services.session_moves import ask_to_stop, fail_start, request_stop, utcnow
from plugpay.services.snapshots import publish

log = logging.getLogger(__name__)
S = SessionState
# Jobs that wait for an offline charger: its connection makes them due at once.
WAIT_FOR_CHARGER = frozenset({JobKind.SESSION_START, JobKind.SESSION_STOP, JobKind.LATE_STOP})

# Seconds between tries to start on a charger that is not connected (yet).
START_RETRY_SECONDS = 1.0
# Tries to stop a transaction that started after its session gave up.
LATE_STOP_ATTEMPTS = 8


@dataclass
class ChargingService:
    uow: UnitOfWorkFactory
    commands: CommandService
    live: LiveBus
    timeouts: Timeouts
    sessions: SessionStore
    # The charge an RFID card started (set in runtime.py: RfidService.start_from_card).
    card_start: Callable[[int, str, datetime], Awaitable[object]] | None = None
    # Jobs that wait for an offline charger and can wait a little longer: its
    # connection makes them due at a random moment within so many seconds (a
    # storm of reconnecting chargers is not also a storm of their commands).
    spread_wake: dict[str, float] = field(default_factory=dict)

    # -- start ------------------------------------------------------------------
    async def run_start(self, job: Job) -> None:
        """The start command, for an AUTHORIZED session (job ``session.start``)."""
        session_id = str(job.session_id)
        async with self.uow() as uow:
            record = await uow.sessions.get(session_id)
            if record is None or record.state not in (S.AUTHORIZED, S.STARTING):
                return  # started, failed or stopped meanwhile
            if record.transaction_pk is not None:
                return
            if record.state == S.AUTHORIZED:
                record = await uow.sessions.move(record, S.STARTING)
        await publish(self.live, record)
        deadline = record.start_deadline or utcnow()
        try:
            accepted = await self.commands.remote_start(
                record.charger_id, record.connector_id, record.id_tag
            )
        except ChargerOffline:
            # Not sent: after a restart or a network blip the charger is usually
            # back within seconds; its reconnection wakes this job at once.
            if utcnow() < deadline:
                if record.reason != Reason.CHARGER_OFFLINE:
                    await self._note(session_id, Reason.CHARGER_OFFLINE)
                raise RetryLater("charger offline", START_RETRY_SECONDS) from None
            await self._fail_start(session_id, Reason.CHARGER_OFFLINE)
            return
        except CommandTimeout:
            # Maybe received: sending again could start twice. Wait for the
            # transaction; the sweeper ends the session at its deadline.
            await self._note(session_id, Reason.CHARGER_NOT_RESPONDING)
            return
        except CommandFailed:
            await self._fail_start(session_id, Reason.CHARGER_NOT_RESPONDING)
            return
        crash_point("start.accepted")
        if accepted:
            return
        if job.attempts > 1:
            # Asked again (the first try's outcome was lost to a crash): the charger
            # may refuse because it started on the first one. Its transaction, or the
            # start deadline, decides.
            await self._note(session_id, Reason.CHARGER_REJECTED)
            return
        await self._fail_start(session_id, Reason.CHARGER_REJECTED)

    async def _fail_start(self, session_id: str, reason: Reason) -> None:
        async with self.uow() as uow:
            record = await uow.sessions.get(session_id)
            if record is None or record.state not in (S.AUTHORIZED, S.STARTING):
                return
            if record.transaction_pk is not None:
                return  # it started after all
            record = await fail_start(uow, record, reason, self.timeouts)
        await publish(self.live, record)

    async def _note(self, session_id: str, reason: Reason) -> None:
        """What went wrong so far, for the sweeper should the start never come."""
        async with self.uow() as uow:
            record = await uow.sessions.get(session_id)
            if record is not None and record.state == S.STARTING:
                await uow.sessions.update(record, reason=reason)

    # -- stop -------------------------------------------------------------------
    async def stop(self, session_id: str, reason: Reason = Reason.DRIVER) -> SessionRecord:
        """Ask the charger to end the transaction; the session settles when it has."""
        async with self.uow() as uow:
            record = await uow.sessions.get(session_id)
            if record is None:
                raise NotFound("no such session")
            record = await request_stop(uow, record, reason, self.timeouts)
        crash_point("stop.committed")
        await publish(self.live, record)
        return record

    async def run_stop(self, job: Job) -> None:
        """The stop command, for a STOPPING session (job ``session.stop``)."""
        async with self.uow() as uow:
            record = await uow.sessions.get(str(job.session_id))
            if record is None or record.state != S.STOPPING or record.transaction_pk is None:
                return
            info = await uow.sessions.transaction_info(record.transaction_pk)
        if info is None or info.ended or info.ocpp_transaction_id is None:
            return  # over already: the transaction's end settles the session
        try:
            accepted = await self.commands.remote_stop(record.charger_id, info.ocpp_transaction_id)
        except (ChargerOffline, CommandTimeout, CommandFailed) as exc:
            # Stays STOPPING: asked again when the charger is back, and by the
            # sweeper while it keeps metering.
            raise RetryLater(f"stop not confirmed: {exc}", backoff(job.attempts, 2, 30)) from None
        crash_point("stop.accepted")
        if accepted:
            return
        # The charger said no and charges on: back to CHARGING, so the driver can
        # ask again and the hold limit keeps watching. Not when this was asked
        # again (after a reconnect, or by the sweeper): a charger already ending
        # the transaction refuses a second stop, and the session waits for the end.
        log.warning("session %s: the charger refused to stop", record.id)
        asked = record.stop_asked_at or utcnow()
        if utcnow() - asked > self.timeouts.stop_retry:
            return
        async with self.uow() as uow:
            current = await uow.sessions.get(record.id)
            if current is None or current.state != S.STOPPING:
                return
            last = current.last_reading_at or current.started_at
            record = await uow.sessions.move(
                current,
                S.CHARGING,
                reason=None,
                stop_asked_at=None,
                deadline_at=deadline_for(S.CHARGING, utcnow(), self.timeouts, last_sign_at=last),
            )
        await publish(self.live, record)

    async def run_late_stop(self, job: Job) -> None:
        """Stop a transaction that started after its session gave up and released the
        hold (job ``session.late_stop``). A 1.6 charger learns the transaction id
        from our answer to its StartTransaction and refuses a stop that overtakes
        that answer: tried again a few times, until it is accepted or has ended."""
        transaction_pk = int(job.payload["transaction_pk"])
        async with self.uow() as uow:
            info = await uow.sessions.transaction_info(transaction_pk)
        if info is None or info.ended or info.ocpp_transaction_id is None:
            return
        try:
            if await self.commands.remote_stop(str(job.charger_id), info.ocpp_transaction_id):
                return
        except (ChargerOffline, CommandTimeout, CommandFailed):
            pass
        if job.attempts >= LATE_STOP_ATTEMPTS:
            raise GiveUp(f"late transaction {transaction_pk} could not be stopped")
        raise RetryLater("late transaction not stopped yet", 0.5 * 2 ** (job.attempts - 1))

    # -- what the charger tells us ------------------------------------------------
    async def run_transaction_started(self, job: Job) -> None:
        """A transaction began on a charger (job ``transaction.started``, written with
        the transaction itself): link it to the session whose token started it."""
        transaction_pk = int(job.payload["transaction_pk"])
        id_tag = job.payload.get("id_tag")
        started_at = datetime.fromisoformat(str(job.payload["started_at"]))
        record = await self.apply_started(transaction_pk, id_tag, started_at)
        if record is not None:
            await publish(self.live, record)
        elif id_tag and self.card_start is not None:
            # No session's token: perhaps a driver's RFID card (services/rfid.py).
            await self.card_start(transaction_pk, str(id_tag), started_at)

    async def apply_started(
        self, transaction_pk: int, id_tag: str | None, started_at: datetime
    ) -> SessionRecord | None:
        # Most transactions are no driver's session (an RFID card, a token of
        # nobody's): one read, no write transaction, tells.
        if not id_tag or await self.sessions.by_id_tag(id_tag) is None:
            return None
        async with self.uow() as uow:
            record = await uow.sessions.by_id_tag(id_tag)
            if record is None or record.transaction_pk == transaction_pk:
                return None
            if record.state in (S.START_FAILED, S.CANCELED) or record.transaction_pk is not None:
                # Started after we gave up and released the hold (or a second
                # transaction on one token): stop it at once.
                await uow.jobs.add(
                    NewJob(
                        JobKind.LATE_STOP,
                        f"late_stop:{transaction_pk}",
                        {"transaction_pk": transaction_pk},
                        session_id=record.id,
                        charger_id=record.charger_id,
                    )
                )
                return None
            if record.state not in (S.AUTHORIZED, S.STARTING):
                return None
            return await uow.sessions.move(
                record,
                S.CHARGING,
                transaction_pk=transaction_pk,
                started_at=started_at,
                reason=None,
                deadline_at=deadline_for(
                    S.CHARGING, utcnow(), self.timeouts, last_sign_at=started_at
                ),
            )

    async def notice_idle(self, session_id: str) -> None:
        """The car stopped drawing power and the tariff has an idle fee: tell the driver
        by push (job ``session.idle_notice``; its key makes it once per session)."""
        async with self.uow() as uow:
            await uow.jobs.add(
                NewJob(JobKind.IDLE_NOTICE, f"idle:{session_id}", session_id=session_id)
            )

    async def charger_back(self, charger_id: str) -> None:
        """A charger (re)connected or booted: what waits for it goes out now."""
        async with self.uow() as uow:
            await uow.jobs.wake(charger_id=charger_id, kinds=WAIT_FOR_CHARGER)
            for kind, seconds in self.spread_wake.items():
                later = utcnow() + timedelta(seconds=random.uniform(0.0, seconds))
                await uow.jobs.wake(charger_id=charger_id, kinds=frozenset({kind}), at=later)

            for session_id in await uow.sessions.stopping_on(charger_id):
                record = await uow.sessions.get(session_id)
                if record is not None and record.state == S.STOPPING:
                    await ask_to_stop(uow, record, again=True)
