"""A plugpay instance without a server and without a charger connection, for stateful
tests: the real services and store on a fresh SQLite file, driven from synchronous
code (a hypothesis state machine) through one event loop kept for its lifetime.

Every change of a session's state is recorded by a trigger in the test database, so
a test can check each single move against the transition table, whichever code made
it. Errors the job worker or the sweeper only log (a handler that raised something
other than RetryLater or GiveUp) are kept for the test to look at.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import make_url, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from plugpay.config import Settings
from plugpay.domain.ledger import Journal
from plugpay.payments.demo_gateway import DemoGateway
from plugpay.runtime import Runtime, build_runtime
from plugpay.services.ports import SessionRecord
from plugpay.services.ports.jobs import Job, JobState
from plugpay.store import tables as t
from plugpay.store.clock import aware
from plugpay.store.database import Database
from plugpay.store.jobs import job_of
from support.databases import SqliteDatabases

T = TypeVar("T")

CHARGER_ID = "CP-1"
CONNECTORS = 2
PASSWORD = "correct-horse-battery-staple"
# Energy and a flat fee, both with VAT: every bill has two receipt lines to add up.
TARIFF = {
    "country_code": "DE",
    "party_id": "PLG",
    "id": "STATE-MACHINE",
    "currency": "EUR",
    "type": "AD_HOC_PAYMENT",
    "elements": [
        {"price_components": [{"type": "ENERGY", "price": 0.40, "vat": 19.0, "step_size": 1}]},
        {"price_components": [{"type": "FLAT", "price": 0.50, "vat": 19.0, "step_size": 0}]},
    ],
    "last_updated": "2026-11-01T00:00:00Z",
}

_STATE_LOG = (
    "CREATE TABLE test_state_changes ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,"
    " old_state TEXT, new_state TEXT NOT NULL)",
    "CREATE TRIGGER test_state_created AFTER INSERT ON charging_sessions BEGIN"
    " INSERT INTO test_state_changes (session_id, old_state, new_state)"
    " VALUES (NEW.id, NULL, NEW.state); END",
    "CREATE TRIGGER test_state_changed AFTER UPDATE OF state ON charging_sessions"
    " WHEN OLD.state IS NOT NEW.state BEGIN"
    " INSERT INTO test_state_changes (session_id, old_state, new_state)"
    " VALUES (NEW.id, OLD.state, NEW.state); END",
)
# What the worker, the sweeper and the readings' listener log when something raised
# unexpectedly.
_WATCHED_LOGGERS = (
    "plugpay.services.jobs",
    "plugpay.services.deadlines",
    "plugpay.services.transactions",  # the live pricing of a reading
)
POOL_TIMEOUT = 2.0


def _path_of(url: str) -> Path:
    database = make_url(url).database
    assert database, url
    return Path(database)


class SeededDatabases:
    """Migrated SQLite files that already hold the tariff, the charger and the state
    change log: seeded once, then copied for every use (a copy costs far less than
    the password hash and the tariff import)."""

    def __init__(self, databases: SqliteDatabases, settings: Settings) -> None:
        url = databases.fresh()
        self.template = _path_of(url)
        asyncio.run(_seed(replace(settings, database_url=url)))

    def fresh(self) -> str:
        path = self.template.with_name(f"sm-{uuid.uuid4().hex}.db")
        shutil.copy(self.template, path)
        return f"sqlite+aiosqlite:///{path}"


async def _seed(settings: Settings) -> None:
    runtime = build_runtime(settings)
    try:
        services = runtime.services
        stored = await services.tariffs.import_tariff(json.dumps(TARIFF))
        await services.chargers.add_charger(
            CHARGER_ID, PASSWORD, connectors=CONNECTORS, site="Test site", time_zone="Europe/Berlin"
        )
        await services.tariffs.assign(stored.tariff_id, charger_id=CHARGER_ID)
        async with runtime.db.begin() as conn:
            for statement in _STATE_LOG:
                await conn.execute(text(statement))
    finally:
        await runtime.close()


class WaitsForItself(RuntimeError):
    """A task holding the database's only connection asked for another one."""


def _one_connection_per_task(db: Database) -> None:
    """SQLite runs on one connection: a task that holds it and asks for a second one
    waits for itself (for the pool's timeout, then fails; on PostgreSQL it would wait
    on its own row locks instead). Say so at once, where it happens."""
    holders: weakref.WeakKeyDictionary[asyncio.Task[Any], bool] = weakref.WeakKeyDictionary()

    def guarded(
        take: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
    ) -> Callable[[], AbstractAsyncContextManager[AsyncConnection]]:
        @asynccontextmanager
        async def one() -> AsyncIterator[AsyncConnection]:
            task = asyncio.current_task()
            if task is not None and holders.get(task):
                raise WaitsForItself(
                    "a second database connection was asked for while this task holds the only one"
                )
            if task is not None:
                holders[task] = True
            try:
                async with take() as conn:
                    yield conn
            finally:
                if task is not None:
                    holders.pop(task, None)

        return one

    db.begin = guarded(db.begin)  # type: ignore[method-assign]
    db.connect = guarded(db.connect)  # type: ignore[method-assign]


async def open_runtime(settings: Settings) -> Runtime:
    """The runtime of an instance whose charger is connected (to no socket: commands
    to it find it offline), as after the charger's boot."""
    runtime = build_runtime(settings)
    _one_connection_per_task(runtime.db)
    # Any other wait for the one connection (across tasks) fails in seconds too.
    runtime.db.engine.sync_engine.pool._timeout = POOL_TIMEOUT  # type: ignore[attr-defined]
    await runtime.charger_store.set_connected(CHARGER_ID, "1.6", datetime.now(UTC))
    return runtime


async def let_time_pass(runtime: Runtime, by: timedelta, *, hold_clock: bool) -> None:
    """Move every clock a session waits on ``by`` into the past, and make every
    pending job due now. ``hold_clock``: the authorisation too (the hold's age)."""
    s = t.charging_sessions
    columns = ["created_at", "start_deadline", "stop_asked_at", "deadline_at"]
    if hold_clock:
        columns.append("authorized_at")
    async with runtime.db.begin() as conn:
        rows = (await conn.execute(select(s.c.id, *(s.c[c] for c in columns)))).mappings()
        for row in list(rows):
            values = {c: aware(row[c]) - by for c in columns if row[c] is not None}
            if values:
                await conn.execute(update(s).where(s.c.id == row["id"]).values(**values))
        past = datetime.now(UTC) - timedelta(seconds=1)
        await conn.execute(
            update(t.jobs).where(t.jobs.c.state == JobState.PENDING).values(run_at=past)
        )
        # The lease of a job whose worker died runs out.
        await conn.execute(
            update(t.jobs).where(t.jobs.c.state == JobState.RUNNING).values(lease_until=past)
        )


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


@dataclass(frozen=True)
class StateChange:
    id: int
    session_id: str
    old: str | None
    new: str


class LoopedInstance:
    """A runtime on its own event loop; ``run`` drives one coroutine to its end."""

    def __init__(self, settings: Settings) -> None:
        self.runner = asyncio.Runner()
        self.runtime: Runtime = self.runner.run(open_runtime(settings))
        gateway = self.runtime.payments
        assert isinstance(gateway, DemoGateway)
        self.gateway = gateway
        self.webhook_secret = settings.key("demo-signatures")
        self._errors = _Keep()
        for name in _WATCHED_LOGGERS:
            logging.getLogger(name).addHandler(self._errors)

    def run(self, coroutine: Awaitable[T]) -> T:
        return self.runner.run(coroutine)  # type: ignore[arg-type]

    def close(self) -> None:
        for name in _WATCHED_LOGGERS:
            logging.getLogger(name).removeHandler(self._errors)
        try:
            self.runner.run(self.runtime.close())
        finally:
            self.runner.close()
        path = _path_of(self.runtime.settings.database_url)
        for leftover in (
            path,
            path.with_name(path.name + "-wal"),
            path.with_name(path.name + "-shm"),
        ):
            leftover.unlink(missing_ok=True)

    def unexpected_errors(self) -> list[str]:
        """What a job or a sweep raised besides RetryLater and GiveUp, so far."""
        return [f"{r.getMessage()}: {r.exc_info[1]!r}" for r in self._errors.records if r.exc_info]

    # -- reads ------------------------------------------------------------------
    async def session(self, session_id: str) -> SessionRecord:
        record = await self.runtime.session_store.get(session_id)
        assert record is not None, session_id
        return record

    async def sessions(self) -> list[SessionRecord]:
        s = t.charging_sessions
        async with self.runtime.db.connect() as conn:
            ids = (await conn.execute(select(s.c.id).order_by(s.c.created_at))).scalars().all()
        return [await self.session(i) for i in ids]

    async def state_changes(self, after: int) -> list[StateChange]:
        async with self.runtime.db.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT id, session_id, old_state, new_state FROM test_state_changes"
                    " WHERE id > :after ORDER BY id"
                ),
                {"after": after},
            )
            return [StateChange(r.id, r.session_id, r.old_state, r.new_state) for r in rows]

    async def jobs_of(self, session_id: str) -> list[Job]:
        j = t.jobs
        async with self.runtime.db.connect() as conn:
            rows = (
                (await conn.execute(select(j).where(j.c.session_id == session_id).order_by(j.c.id)))
                .mappings()
                .all()
            )
        return [job_of(r) for r in rows]

    async def jobs(self) -> list[Job]:
        async with self.runtime.db.connect() as conn:
            rows = (await conn.execute(select(t.jobs).order_by(t.jobs.c.id))).mappings().all()
        return [job_of(r) for r in rows]

    async def intent(self, ref: str) -> dict[str, Any]:
        """The demo provider's whole record of a hold (its state, replies, refunds)."""
        d = t.demo_payments
        async with self.runtime.db.connect() as conn:
            data = await conn.scalar(select(d.c.data).where(d.c.ref == ref))
        assert data is not None, ref
        return dict(data)

    async def journals(self, session_id: str) -> list[Journal]:
        return await self.runtime.ledger.journals_of_session(session_id)

    async def webhook_events(self) -> list[dict[str, Any]]:
        async with self.runtime.db.connect() as conn:
            rows = (await conn.execute(select(t.webhook_events))).mappings().all()
        return [dict(r) for r in rows]

    # -- changes the world makes ------------------------------------------------
    async def let_time_pass(self, by: timedelta, *, hold_clock: bool) -> None:
        await let_time_pass(self.runtime, by, hold_clock=hold_clock)

    async def due_jobs(self) -> list[Job]:
        j = t.jobs
        async with self.runtime.db.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(j)
                        .where(j.c.state == JobState.PENDING, j.c.run_at <= datetime.now(UTC))
                        .order_by(j.c.id)
                    )
                )
                .mappings()
                .all()
            )
        return [job_of(r) for r in rows]

    async def claimed_by_a_dead_worker(self, job: Job) -> None:
        """``job`` claimed, as the queue claims it, by a worker that then died: it
        stays running until its lease runs out (``let_time_pass``)."""
        lease = timedelta(seconds=self.runtime.settings.job_lease_seconds)
        async with self.runtime.db.begin() as conn:
            await conn.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job.id, t.jobs.c.state == JobState.PENDING)
                .values(
                    state=JobState.RUNNING,
                    worker="worker-that-died",
                    lease_until=datetime.now(UTC) + lease,
                    attempts=t.jobs.c.attempts + 1,
                )
            )

    async def run_again(self, job: Job) -> None:
        """Put a finished job back as if its worker had died before recording it done
        (a failed one the way ``plugpay jobs retry`` does)."""
        if job.state == JobState.FAILED:
            assert await self.runtime.jobs.retry_now(job.id) is not None
            return
        async with self.runtime.db.begin() as conn:
            await conn.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job.id)
                .values(state=JobState.PENDING, run_at=datetime.now(UTC), done_at=None)
            )


__all__ = [
    "CHARGER_ID",
    "CONNECTORS",
    "LoopedInstance",
    "SeededDatabases",
    "StateChange",
    "WaitsForItself",
    "let_time_pass",
    "open_runtime",
]
