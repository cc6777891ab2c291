"""The job queue: work that must follow a committed change, and periodic work."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class JobKind(StrEnum):
    """What a job does; each kind has one handler (see app.py)."""

    SESSION_START = "session.start"  # send the start command to the charger
    SESSION_STOP = "session.stop"  # send the stop command
    LATE_STOP = "session.late_stop"  # stop a transaction that started after its session gave up
    TRANSACTION_STARTED = "transaction.started"  # the charger said so: tell the session
    TRANSACTION_ENDED = "transaction.ended"
    CAPTURE = "payment.capture"
    RELEASE = "payment.release"
    # A one-tap hold asked for but never recorded (provider down, crash): found, released
    RECOVER_HOLD = "payment.recover_hold"
    REFUND = "payment.refund"
    DELETE_CUSTOMER = "payment.delete_customer"  # a deleted account's customer and cards
    WEBHOOK = "webhook.process"
    RECEIPT = "receipt.push"
    IDLE_NOTICE = "session.idle_notice"  # the car stopped drawing power: the idle fee, by push
    CARD_REFUSED = "session.card_refused"  # an RFID card's hold was refused: tell the driver
    CHARGER_BACK = "charger.back"  # a charger reconnected: re-send what waits for it
    LOCAL_LIST = "charger.local_list"  # bring its local authorisation list in step
    # Periodic
    SWEEP_SESSIONS = "sweep.sessions"
    PURGE_MESSAGE_LOG = "purge.message_log"
    PURGE_JOBS = "purge.jobs"
    SWEEP_INSTANCES = "sweep.instances"


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # gave up; `plugpay jobs retry` puts it back


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to add in the same transaction as the change it follows.

    ``key`` is its identity: adding a job whose key exists changes nothing
    (unless ``rearm`` and that job is done or failed: then it runs again).
    """

    kind: str
    key: str
    payload: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    charger_id: str | None = None
    run_at: datetime | None = None  # None: at once
    give_up_at: datetime | None = None
    every_seconds: int | None = None  # periodic: runs again this long after each run
    rearm: bool = False


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    session_id: str | None
    charger_id: str | None
    state: JobState
    attempts: int  # claims so far, this one included
    run_at: datetime
    lease_until: datetime | None
    worker: str | None
    last_error: str | None
    give_up_at: datetime | None
    every_seconds: int | None
    created_at: datetime
    done_at: datetime | None


class JobRepository(Protocol):
    """Jobs inside a unit of work."""

    async def add(self, job: NewJob) -> bool:
        """True when the job was added (or re-armed); False when its key is taken."""
        ...

    async def pending(self, key: str) -> Job | None:
        """The job with ``key`` while it is pending or running."""
        ...

    async def wake(
        self, *, charger_id: str, kinds: frozenset[str], at: datetime | None = None
    ) -> int:
        """Make the pending jobs of ``kinds`` for a charger due now, or by ``at`` (it
        just came back)."""
        ...


class JobQueue(Protocol):
    """Claiming and finishing jobs, each in its own short transaction."""

    async def claim(self, worker: str, limit: int, lease_seconds: float) -> list[Job]:
        """Due jobs (and jobs whose lease ran out), leased to ``worker``; never to two."""
        ...

    async def extend(self, job_id: int, worker: str, lease_seconds: float) -> bool: ...

    async def finish(self, job: Job, worker: str, error: str | None = None) -> None:
        """Done; a periodic job is pending again for its next run (``error``: why its
        last run failed, shown in the listing until a run succeeds)."""
        ...

    async def retry(self, job: Job, worker: str, error: str, run_at: datetime) -> None: ...

    async def fail(self, job: Job, worker: str, error: str) -> None: ...

    async def ensure(self, jobs: list[NewJob]) -> None:
        """Add the periodic jobs that are missing (every instance does this at start)."""
        ...

    async def listing(self, state: JobState | None = None, limit: int = 100) -> list[Job]: ...

    async def get(self, job_id: int) -> Job | None: ...

    async def retry_now(self, job_id: int) -> Job | None:
        """Put a failed or pending job back to run at once (from the command line)."""
        ...

    async def purge(self, before: datetime) -> int:
        """Forget jobs done before ``before``."""
        ...
