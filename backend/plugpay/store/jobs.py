"""The job table: added inside a unit of work, claimed with a lease by one worker.

PostgreSQL: the claim picks due rows ``FOR UPDATE SKIP LOCKED``, so workers of
any number of instances never take the same job and never wait for each other.
SQLite: every write goes through the database's one write lock (one writer at a
time, across processes too), so the same UPDATE ... RETURNING is atomic there.
A worker that dies leaves its jobs ``running`` with a lease that runs out; the
next claim takes them again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from plugpay.services.ports.jobs import Job, JobState, NewJob
from plugpay.store import tables as t
from plugpay.store.batches import Program, Row, Rows, Step
from plugpay.store.clock import aware, now
from plugpay.store.database import Database
from plugpay.store.writer import BatchWriter

_J = t.jobs
_ERROR_CHARS = 500


def job_of(row: Any) -> Job:
    return Job(
        id=int(row["id"]),
        kind=row["kind"],
        key=row["key"],
        payload=dict(row["payload"] or {}),
        session_id=row["session_id"],
        charger_id=row["charger_id"],
        state=JobState(row["state"]),
        attempts=int(row["attempts"]),
        run_at=aware(row["run_at"]) or row["run_at"],
        lease_until=aware(row["lease_until"]),
        worker=row["worker"],
        last_error=row["last_error"],
        give_up_at=aware(row["give_up_at"]),
        every_seconds=row["every_seconds"],
        created_at=aware(row["created_at"]) or row["created_at"],
        done_at=aware(row["done_at"]),
    )


def _insert(is_sqlite: bool) -> Any:
    return (sqlite if is_sqlite else postgresql).insert(_J)


def job_values(job: NewJob, stamp: datetime) -> dict[str, Any]:
    return {
        "kind": job.kind,
        "key": job.key,
        "payload": job.payload,
        "session_id": job.session_id,
        "charger_id": job.charger_id,
        "state": JobState.PENDING,
        "attempts": 0,
        "run_at": job.run_at or stamp,
        "give_up_at": job.give_up_at,
        "every_seconds": job.every_seconds,
        "created_at": stamp,
        "updated_at": stamp,
    }


async def insert_job(conn: AsyncConnection, is_sqlite: bool, job: NewJob) -> bool:
    """Add ``job`` in the caller's transaction; False when its key is taken (and,
    with ``rearm``, the job with that key is not done or failed)."""
    stamp = now()
    statement = _insert(is_sqlite).values(**job_values(job, stamp))
    if job.rearm:
        statement = statement.on_conflict_do_update(
            index_elements=[_J.c.key],
            set_={
                "state": JobState.PENDING,
                "payload": statement.excluded.payload,
                "attempts": 0,
                "run_at": statement.excluded.run_at,
                "give_up_at": statement.excluded.give_up_at,
                "last_error": None,
                "lease_until": None,
                "worker": None,
                "done_at": None,
                "updated_at": stamp,
            },
            where=_J.c.state.in_((JobState.DONE, JobState.FAILED)),
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=[_J.c.key])
    result = await conn.execute(statement)
    return bool(result.rowcount)


class SqlJobRepository:
    """Jobs inside a unit of work: written with the change they follow."""

    def __init__(self, conn: AsyncConnection, is_sqlite: bool) -> None:
        self.conn = conn
        self.is_sqlite = is_sqlite
        self.added = 0

    async def add(self, job: NewJob) -> bool:
        added = await insert_job(self.conn, self.is_sqlite, job)
        self.added += added
        return added

    async def pending(self, key: str) -> Job | None:
        row = (
            (
                await self.conn.execute(
                    select(_J).where(
                        _J.c.key == key, _J.c.state.in_((JobState.PENDING, JobState.RUNNING))
                    )
                )
            )
            .mappings()
            .first()
        )
        return job_of(row) if row else None

    async def wake(
        self, *, charger_id: str, kinds: frozenset[str], at: datetime | None = None
    ) -> int:
        stamp = now()
        due = at if at is not None and at > stamp else stamp
        result = await self.conn.execute(
            update(_J)
            .where(
                _J.c.charger_id == charger_id,
                _J.c.state == JobState.PENDING,
                _J.c.kind.in_(sorted(kinds)),
                _J.c.run_at > due,
            )
            .values(run_at=due, updated_at=stamp)
        )
        self.added += result.rowcount
        return int(result.rowcount)


# The worker's statements, built once (so compiled once): each runs as a
# program through the writer (on SQLite inline on the server's connection).
_STAMP = bindparam("stamp", type_=_J.c.run_at.type)
_CLAIM = (
    update(_J)
    .where(
        _J.c.id.in_(
            select(_J.c.id)
            .where(
                or_(
                    and_(_J.c.state == bindparam("st_pending"), _J.c.run_at <= _STAMP),
                    and_(_J.c.state == bindparam("st_running"), _J.c.lease_until < _STAMP),
                )
            )
            .order_by(_J.c.run_at)
            .limit(bindparam("limit", type_=Integer))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(
        state=bindparam("st_running"),
        worker=bindparam("new_worker"),
        lease_until=bindparam("lease", type_=_J.c.lease_until.type),
        attempts=_J.c.attempts + 1,
        updated_at=_STAMP,
    )
    .returning(*_J.c)
)
# One worker's running job; the columns set are the keys of the parameters
# besides job_id, job_worker and st_running.
_UPDATE_MINE = update(_J).where(
    _J.c.id == bindparam("job_id"),
    _J.c.worker == bindparam("job_worker"),
    _J.c.state == bindparam("st_running"),
)


def _claim_program(worker: str, limit: int, lease_seconds: float) -> Program[list[Job]]:
    stamp = now()
    params = {
        "stamp": stamp,
        "st_pending": JobState.PENDING,
        "st_running": JobState.RUNNING,
        "limit": limit,
        "new_worker": worker,
        "lease": stamp + timedelta(seconds=lease_seconds),
    }
    rows: Rows = yield Step(_CLAIM, params, all_rows=True)
    return sorted((job_of(r) for r in rows), key=lambda j: j.run_at)


def _mine_program(job_id: int, worker: str, values: Row) -> Program[bool]:
    """Set ``values`` on job ``job_id`` if ``worker`` still runs it."""
    params = {
        "job_id": job_id,
        "job_worker": worker,
        "st_running": JobState.RUNNING,
        "updated_at": now(),
        **values,
    }
    changed: int = yield Step(_UPDATE_MINE, params)
    return bool(changed)


class SqlJobQueue:
    """Claiming, finishing and listing jobs; each call one short transaction."""

    def __init__(self, db: Database, writer: BatchWriter | None = None) -> None:
        self.db = db
        # The server's writer (it knows what runs on SQLite's connection); a
        # queue of its own in tools and tests.
        self.writer = writer or BatchWriter(db)

    async def claim(self, worker: str, limit: int, lease_seconds: float) -> list[Job]:
        return await self.writer.run(_claim_program(worker, limit, lease_seconds), single=True)

    async def extend(self, job_id: int, worker: str, lease_seconds: float) -> bool:
        lease = now() + timedelta(seconds=lease_seconds)
        return await self.writer.run(
            _mine_program(job_id, worker, {"lease_until": lease}), single=True
        )

    async def finish(self, job: Job, worker: str, error: str | None = None) -> None:
        """Done; a periodic job is due again a period later (``error``: its last run
        failed, kept to be seen in the listing)."""
        stamp = now()
        values: Row = {"lease_until": None, "worker": None, "done_at": stamp}
        if job.every_seconds:
            period = timedelta(seconds=job.every_seconds)
            # Once per period across instances; after a pause (a late run), the
            # next period starts now rather than running every missed one at once.
            next_at = job.run_at + period
            if next_at <= stamp:
                next_at = stamp + period
            values |= {
                "state": JobState.PENDING,
                "run_at": next_at,
                "attempts": 0,
                "last_error": error[:_ERROR_CHARS] if error else None,
            }
        else:
            values["state"] = JobState.DONE
        await self.writer.run(_mine_program(job.id, worker, values), single=True)

    async def retry(self, job: Job, worker: str, error: str, run_at: datetime) -> None:
        values = {
            "state": JobState.PENDING,
            "run_at": run_at,
            "last_error": error[:_ERROR_CHARS],
            "lease_until": None,
            "worker": None,
        }
        await self.writer.run(_mine_program(job.id, worker, values), single=True)

    async def fail(self, job: Job, worker: str, error: str) -> None:
        values = {
            "state": JobState.FAILED,
            "last_error": error[:_ERROR_CHARS],
            "lease_until": None,
            "worker": None,
            "done_at": now(),
        }
        await self.writer.run(_mine_program(job.id, worker, values), single=True)

    async def ensure(self, jobs: list[NewJob]) -> None:
        if not jobs:
            return
        stamp = now()
        async with self.db.begin() as conn:
            for job in jobs:
                statement = _insert(self.db.is_sqlite).values(**job_values(job, stamp))
                # A changed period applies at once; the next run stays where it is.
                await conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=[_J.c.key],
                        set_={"every_seconds": statement.excluded.every_seconds},
                        where=_J.c.every_seconds != statement.excluded.every_seconds,
                    )
                )

    async def listing(self, state: JobState | None = None, limit: int = 100) -> list[Job]:
        query = select(_J).order_by(_J.c.run_at.desc(), _J.c.id.desc()).limit(limit)
        if state is not None:
            query = query.where(_J.c.state == state)
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [job_of(r) for r in rows]

    async def get(self, job_id: int) -> Job | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(select(_J).where(_J.c.id == job_id))).mappings().first()
        return job_of(row) if row else None

    async def retry_now(self, job_id: int) -> Job | None:
        stamp = now()
        async with self.db.begin() as conn:
            row = (
                (
                    await conn.execute(
                        update(_J)
                        .where(
                            _J.c.id == job_id,
                            _J.c.state.in_((JobState.FAILED, JobState.PENDING)),
                        )
                        .values(
                            state=JobState.PENDING,
                            run_at=stamp,
                            attempts=0,
                            done_at=None,
                            updated_at=stamp,
                        )
                        .returning(*_J.c)
                    )
                )
                .mappings()
                .first()
            )
        return job_of(row) if row else None

    async def purge(self, before: datetime) -> int:
        async with self.db.begin() as conn:
            result = await conn.execute(
                delete(_J).where(
                    _J.c.state == JobState.DONE,
                    _J.c.every_seconds.is_(None),
                    _J.c.done_at < before,
                )
            )
        return int(result.rowcount)
