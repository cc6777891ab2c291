"""The job queue on a real database (SQLite, and PostgreSQL when configured).

Workers are separate Database objects, so separate connections (on PostgreSQL
truly concurrent ones); a worker that dies is a real process killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from plugpay.services.jobs import GiveUp, JobWorker, RetryLater
from plugpay.services.ports.jobs import Job, JobState, NewJob
from plugpay.store import tables as t
from plugpay.store.database import Database
from plugpay.store.jobs import SqlJobQueue
from plugpay.store.uow import SqlUnitOfWork
from support.driver import eventually

ROOT = Path(__file__).resolve().parents[2]
Databases = Callable[[], Awaitable[Database]]


def utcnow() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def connect(database_url: str) -> AsyncIterator[Databases]:
    """Open Database objects on the test's database (each its own connections)."""
    opened: list[Database] = []

    async def open_one() -> Database:
        db = Database(database_url)
        assert await db.ping()  # connected before the race starts
        opened.append(db)
        return db

    yield open_one
    for db in opened:
        await db.dispose()


async def add(db: Database, jobs: list[NewJob]) -> list[bool]:
    async with SqlUnitOfWork(db) as uow:
        return [await uow.jobs.add(job) for job in jobs]


async def row(db: Database, key: str) -> Job:
    job = next((j for j in await SqlJobQueue(db).listing(limit=10_000) if j.key == key), None)
    assert job is not None, f"no job {key}"
    return job


async def make_due(db: Database, key: str) -> None:
    """Let time pass for one job: it is due now."""
    async with db.begin() as conn:
        result = await conn.execute(
            update(t.jobs).where(t.jobs.c.key == key).values(run_at=utcnow() - timedelta(seconds=1))
        )
    assert result.rowcount == 1


async def job_count(db: Database) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(t.jobs)) or 0)


# -- (a) many workers racing ---------------------------------------------------------


async def test_four_racing_workers_claim_each_of_300_jobs_exactly_once(connect: Databases) -> None:
    writer = await connect()
    added = await add(writer, [NewJob("test.race", f"race:{i}", {"i": i}) for i in range(300)])
    assert all(added) and await job_count(writer) == 300

    claims: dict[str, list[int]] = {}
    go = asyncio.Event()

    async def claimer(name: str, db: Database) -> None:
        queue = SqlJobQueue(db)
        mine = claims.setdefault(name, [])
        await go.wait()
        while True:
            jobs = await queue.claim(name, 7, 60.0)
            if not jobs:
                return
            assert len(jobs) <= 7
            for job in jobs:
                assert (job.state, job.worker, job.attempts) == (JobState.RUNNING, name, 1)
                mine.append(job.id)
            for job in jobs:
                await queue.finish(job, name)
            # On SQLite a claim runs inline on the loop: let the others have a turn.
            await asyncio.sleep(0)

    workers = [claimer(f"worker-{n}", await connect()) for n in range(4)]
    tasks = [asyncio.ensure_future(w) for w in workers]
    go.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 60)

    every = [job_id for ids in claims.values() for job_id in ids]
    assert len(every) == 300, {name: len(ids) for name, ids in claims.items()}
    assert len(set(every)) == 300, "a job was claimed twice"
    assert sum(1 for ids in claims.values() if ids) >= 2, "the workers did not race"
    stored = await SqlJobQueue(writer).listing(limit=1000)
    assert {j.id for j in stored} == set(every)
    assert {(j.state, j.attempts, j.worker) for j in stored} == {(JobState.DONE, 1, None)}


# -- (b) a worker that dies mid-job ----------------------------------------------------


async def test_a_job_is_taken_again_only_when_the_lease_of_its_dead_worker_ran_out(
    connect: Databases,
) -> None:
    dead_db, alive_db = await connect(), await connect()
    dead, alive = SqlJobQueue(dead_db), SqlJobQueue(alive_db)
    await add(dead_db, [NewJob("test.lease", "lease:1", {"n": 1})])

    [job] = await dead.claim("dead", 10, 1.0)
    assert job.attempts == 1 and job.worker == "dead" and job.lease_until is not None
    lease_end = job.lease_until
    # While the lease runs, nobody else gets the job (asked again and again).
    while utcnow() < lease_end - timedelta(seconds=0.15):
        assert await alive.claim("alive", 10, 30.0) == []
        await asyncio.sleep(0.1)
    await asyncio.sleep(max(0.0, (lease_end - utcnow()).total_seconds()) + 0.05)

    [again] = await alive.claim("alive", 10, 30.0)
    assert again.id == job.id and again.worker == "alive" and again.attempts == 2

    # The dead worker waking up late changes nothing: the job is someone else's now.
    assert not await dead.extend(job.id, "dead", 30.0)
    await dead.finish(job, "dead")
    await dead.retry(job, "dead", "late", utcnow())
    await dead.fail(job, "dead", "late")
    current = await alive.get(job.id)
    assert current is not None
    assert (current.state, current.worker, current.attempts, current.last_error) == (
        JobState.RUNNING,
        "alive",
        2,
        None,
    )
    assert await dead.claim("dead", 10, 1.0) == []

    await alive.finish(again, "alive")
    done = await alive.get(job.id)
    assert done is not None and done.state == JobState.DONE and done.done_at is not None
    assert await alive.claim("alive", 10, 30.0) == []


DOOMED_WORKER = """
import asyncio, sys
from plugpay.services.jobs import JobWorker
from plugpay.store.database import Database
from plugpay.store.jobs import SqlJobQueue

async def main() -> None:
    db = Database(sys.argv[1])
    worker = JobWorker(SqlJobQueue(db), worker_id="doomed", lease_seconds=2.0, poll_seconds=0.1)

    async def hang(job):
        print("running", job.id, flush=True)
        await asyncio.Event().wait()

    worker.register("test.hang", hang)
    await worker.run()

asyncio.run(main())
"""


async def test_a_worker_killed_mid_job_leaves_it_to_another_once_its_lease_ends(
    connect: Databases, database_url: str
) -> None:
    db = await connect()
    await add(db, [NewJob("test.hang", "hang:1", {})])
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        DOOMED_WORKER,
        database_url,
        cwd=ROOT,
        env={**os.environ},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert line.startswith(b"running"), line
        first = await row(db, "hang:1")
        assert first.state == JobState.RUNNING and first.worker == "doomed"
        assert first.lease_until is not None
        # The worker is alive: it keeps its lease going past the first one.
        await asyncio.sleep(2.5)
        kept = await row(db, "hang:1")
        assert kept.lease_until is not None and kept.lease_until > first.lease_until
        assert kept.worker == "doomed"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        await process.wait()
    assert process.returncode == -signal.SIGKILL

    dead = await row(db, "hang:1")
    assert dead.state == JobState.RUNNING and dead.lease_until is not None
    ran: list[Job] = []

    async def finish_it(job: Job) -> None:
        ran.append(job)

    survivor = JobWorker(SqlJobQueue(db), worker_id="survivor", lease_seconds=30.0)
    survivor.register("test.hang", finish_it)
    while utcnow() < dead.lease_until - timedelta(seconds=0.2):
        assert await survivor.run_due() == 0  # still leased to the dead worker
        await asyncio.sleep(0.1)

    async def taken() -> bool:
        await survivor.run_due()
        return bool(ran)

    await eventually(taken, timeout=5, every=0.1)
    assert [j.attempts for j in ran] == [2]
    assert utcnow() >= dead.lease_until
    done = await row(db, "hang:1")
    assert done.state == JobState.DONE and done.attempts == 2


# -- (c) retries with backoff -----------------------------------------------------------


def failing(*errors: BaseException) -> Callable[[Job], Awaitable[None]]:
    queue = list(errors)

    async def handler(job: Job) -> None:
        if queue:
            raise queue.pop(0)

    return handler


async def test_a_failing_job_is_retried_later_with_growing_backoff_keeping_its_error(
    connect: Databases,
) -> None:
    db = await connect()
    worker = JobWorker(SqlJobQueue(db), worker_id="w")
    worker.register("test.flaky", failing(ValueError("meter service down"), OSError("reset")))
    await add(db, [NewJob("test.flaky", "flaky:1", {"n": 1})])

    before = utcnow()
    assert await worker.run_due() == 1
    after = utcnow()
    first = await row(db, "flaky:1")
    assert (first.state, first.attempts) == (JobState.PENDING, 1)
    assert first.last_error == "ValueError: meter service down"
    assert first.worker is None and first.lease_until is None
    # 2 s, less up to a fifth of jitter, from the moment the attempt failed.
    assert before + timedelta(seconds=1.6) <= first.run_at <= after + timedelta(seconds=2)
    assert await worker.run_due() == 0  # not due yet

    await make_due(db, "flaky:1")
    before = utcnow()
    assert await worker.run_due() == 1
    after = utcnow()
    second = await row(db, "flaky:1")
    assert (second.state, second.attempts) == (JobState.PENDING, 2)
    assert second.last_error == "OSError: reset"
    assert before + timedelta(seconds=3.2) <= second.run_at <= after + timedelta(seconds=4)

    await make_due(db, "flaky:1")
    assert await worker.run_due() == 1
    done = await row(db, "flaky:1")
    assert (done.state, done.attempts) == (JobState.DONE, 3)


async def test_retry_later_waits_as_long_as_the_handler_asks(connect: Databases) -> None:
    db = await connect()
    worker = JobWorker(SqlJobQueue(db), worker_id="w")
    worker.register("test.later", failing(RetryLater("provider busy", 30.0)))
    await add(db, [NewJob("test.later", "later:1", {})])

    before = utcnow()
    assert await worker.run_due() == 1
    after = utcnow()
    job = await row(db, "later:1")
    assert (job.state, job.attempts, job.last_error) == (JobState.PENDING, 1, "provider busy")
    assert before + timedelta(seconds=30) <= job.run_at <= after + timedelta(seconds=30)


async def test_a_job_failing_every_attempt_fails_and_retry_now_puts_it_back(
    connect: Databases,
) -> None:
    db = await connect()
    queue = SqlJobQueue(db)
    worker = JobWorker(queue, worker_id="w", max_attempts=3)
    worker.register("test.broken", failing(*(RuntimeError(f"try {n}") for n in (1, 2, 3))))
    await add(db, [NewJob("test.broken", "broken:1", {"n": 1})])

    for attempt in (1, 2, 3):
        if attempt > 1:
            await make_due(db, "broken:1")
        assert await worker.run_due() == 1
    failed = await row(db, "broken:1")
    assert (failed.state, failed.attempts) == (JobState.FAILED, 3)
    assert failed.last_error == "RuntimeError: try 3"
    assert failed.done_at is not None and failed.worker is None
    await make_due(db, "broken:1")
    assert await worker.run_due() == 0  # a failed job is never claimed again by itself
    assert [j.id for j in await queue.listing(JobState.FAILED)] == [failed.id]

    back = await queue.retry_now(failed.id)
    assert back is not None and back.state == JobState.PENDING and back.attempts == 0
    assert back.run_at <= utcnow() and back.done_at is None
    assert await worker.run_due() == 1  # the handler works now
    done = await row(db, "broken:1")
    assert (done.state, done.attempts) == (JobState.DONE, 1)


async def test_give_up_fails_a_job_at_once(connect: Databases) -> None:
    db = await connect()
    worker = JobWorker(SqlJobQueue(db), worker_id="w")
    worker.register("test.hopeless", failing(GiveUp("card expired")))
    await add(db, [NewJob("test.hopeless", "hopeless:1", {})])

    assert await worker.run_due() == 1
    job = await row(db, "hopeless:1")
    assert (job.state, job.attempts, job.last_error) == (JobState.FAILED, 1, "card expired")


async def test_retry_now_leaves_done_running_and_unknown_jobs_alone(connect: Databases) -> None:
    db = await connect()
    queue = SqlJobQueue(db)
    await add(db, [NewJob("test.x", "x:done", {}), NewJob("test.x", "x:running", {})])
    claimed = {j.key: j for j in await queue.claim("w", 10, 60.0)}
    await queue.finish(claimed["x:done"], "w")
    done, running = await row(db, "x:done"), await row(db, "x:running")

    assert await queue.retry_now(done.id) is None
    assert await queue.retry_now(running.id) is None
    assert await queue.retry_now(10_000) is None
    assert (await row(db, "x:done")) == done
    assert (await row(db, "x:running")) == running


# -- (d) periodic jobs ----------------------------------------------------------------


def every_minute(key: str = "periodic:test") -> NewJob:
    return NewJob("test.periodic", key, every_seconds=60)


async def test_ensuring_periodic_jobs_again_adds_nothing(connect: Databases) -> None:
    first, second = await connect(), await connect()
    await SqlJobQueue(first).ensure([every_minute()])
    before = await row(first, "periodic:test")
    await SqlJobQueue(first).ensure([every_minute()])
    # Two instances starting at once.
    await asyncio.gather(
        SqlJobQueue(first).ensure([every_minute()]), SqlJobQueue(second).ensure([every_minute()])
    )
    assert await job_count(first) == 1
    assert await row(first, "periodic:test") == before

    # A changed period applies; the next run stays where it was.
    await SqlJobQueue(second).ensure([NewJob("test.periodic", "periodic:test", every_seconds=90)])
    changed = await row(first, "periodic:test")
    assert changed.every_seconds == 90 and changed.run_at == before.run_at
    assert await job_count(first) == 1


async def test_a_finished_periodic_job_is_pending_again_one_period_later(
    connect: Databases,
) -> None:
    db = await connect()
    queue = SqlJobQueue(db)
    await queue.ensure([every_minute()])
    [job] = await queue.claim("w", 10, 30.0)
    await queue.finish(job, "w")

    again = await row(db, "periodic:test")
    assert again.state == JobState.PENDING and again.attempts == 0
    assert again.run_at == job.run_at + timedelta(seconds=60)
    assert again.done_at is not None and again.worker is None and again.lease_until is None
    assert await queue.claim("w", 10, 30.0) == []  # not before its next period


async def test_a_failing_periodic_job_runs_next_period_and_keeps_its_error_to_be_seen(
    connect: Databases,
) -> None:
    db = await connect()
    queue = SqlJobQueue(db)
    await queue.ensure([every_minute()])
    first = await row(db, "periodic:test")
    worker = JobWorker(queue, worker_id="w")
    worker.register("test.periodic", failing(OSError("disk full")))

    assert await worker.run_due() == 1
    after = await row(db, "periodic:test")
    # No backoff for periodic work: it simply runs again next period...
    assert after.state == JobState.PENDING
    assert after.run_at == first.run_at + timedelta(seconds=60)
    # ...and `plugpay jobs list` shows why the last run failed.
    assert after.last_error == "OSError: disk full"


async def test_a_periodic_job_run_late_after_a_pause_is_not_due_again_at_once(
    connect: Databases,
) -> None:
    db = await connect()
    queue = SqlJobQueue(db)
    await queue.ensure([every_minute()])
    # Every instance was down for ten periods.
    async with db.begin() as conn:
        await conn.execute(
            update(t.jobs)
            .where(t.jobs.c.key == "periodic:test")
            .values(run_at=utcnow() - timedelta(minutes=10))
        )
    [late] = await queue.claim("w", 10, 30.0)
    await queue.finish(late, "w")

    # It ran for the period under way: the next run is in the future, not right now.
    after = await row(db, "periodic:test")
    assert after.run_at > utcnow(), f"due again at once: {after.run_at}"
    assert await queue.claim("w", 10, 30.0) == []


async def test_a_periodic_period_taken_over_from_a_stalled_worker_runs_once(
    connect: Databases,
) -> None:
    stalled_db, other_db = await connect(), await connect()
    stalled, other = SqlJobQueue(stalled_db), SqlJobQueue(other_db)
    await stalled.ensure([every_minute()])

    [slow] = await stalled.claim("stalled", 10, 1.0)
    assert await other.claim("other", 10, 30.0) == []
    assert slow.lease_until is not None
    await asyncio.sleep(max(0.0, (slow.lease_until - utcnow()).total_seconds()) + 0.05)
    [taken] = await other.claim("other", 10, 30.0)
    assert taken.run_at == slow.run_at and taken.attempts == 2
    await other.finish(taken, "other")
    next_run = await row(other_db, "periodic:test")
    assert next_run.run_at == slow.run_at + timedelta(seconds=60)

    # The stalled worker finishing its (taken over) run must not move the period again.
    await stalled.finish(slow, "stalled")
    assert await row(other_db, "periodic:test") == next_run
    assert await stalled.claim("stalled", 10, 30.0) == []
    assert await other.claim("other", 10, 30.0) == []


async def test_two_running_workers_run_each_period_of_a_periodic_job_once(
    connect: Databases,
) -> None:
    first, second = await connect(), await connect()
    await SqlJobQueue(first).ensure([NewJob("test.tick", "periodic:tick", every_seconds=1)])
    runs: list[tuple[str, datetime]] = []

    def handler(name: str) -> Callable[[Job], Awaitable[None]]:
        async def run(job: Job) -> None:
            runs.append((name, job.run_at))
            await asyncio.sleep(0.05)

        return run

    workers = []
    for name, db in (("one", first), ("two", second)):
        worker = JobWorker(SqlJobQueue(db), worker_id=name, lease_seconds=5.0, poll_seconds=0.02)
        worker.register("test.tick", handler(name))
        workers.append(asyncio.ensure_future(worker.run()))
    started = asyncio.get_running_loop().time()
    await asyncio.sleep(3.3)
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    elapsed = asyncio.get_running_loop().time() - started

    periods = [at for _, at in runs]
    assert len(periods) == len(set(periods)), f"a period ran twice: {runs}"
    assert 3 <= len(runs) <= int(elapsed) + 1, runs
    assert all(b - a >= timedelta(seconds=1) for a, b in itertools.pairwise(periods))


# -- (e) keys and rearm -------------------------------------------------------------------


async def test_a_job_whose_key_exists_changes_nothing_unless_rearmed_when_over(
    connect: Databases,
) -> None:
    db = await connect()
    queue = SqlJobQueue(db)

    def job(n: int, rearm: bool = False) -> NewJob:
        return NewJob("test.rearm", "rearm:1", {"n": n}, rearm=rearm)

    assert await add(db, [job(1)]) == [True]
    pending = await row(db, "rearm:1")
    assert await add(db, [job(2), job(3, rearm=True)]) == [False, False]
    assert await row(db, "rearm:1") == pending  # pending: untouched, rearm or not

    [claimed] = await queue.claim("w", 10, 30.0)
    running = await row(db, "rearm:1")
    assert await add(db, [job(4), job(5, rearm=True)]) == [False, False]
    assert await row(db, "rearm:1") == running  # running: untouched too

    await queue.fail(claimed, "w", "boom")
    failed = await row(db, "rearm:1")
    assert await add(db, [job(6)]) == [False]
    assert await row(db, "rearm:1") == failed
    assert await add(db, [job(7, rearm=True)]) == [True]
    rearmed = await row(db, "rearm:1")
    assert rearmed.id == pending.id and rearmed.payload == {"n": 7}
    assert (rearmed.state, rearmed.attempts, rearmed.last_error) == (JobState.PENDING, 0, None)
    assert rearmed.done_at is None and rearmed.worker is None and rearmed.run_at <= utcnow()

    [again] = await queue.claim("w", 10, 30.0)
    await queue.finish(again, "w")
    done = await row(db, "rearm:1")
    assert done.state == JobState.DONE
    assert await add(db, [job(8)]) == [False]
    assert await row(db, "rearm:1") == done
    assert await add(db, [job(9, rearm=True)]) == [True]
    back = await row(db, "rearm:1")
    assert (back.state, back.payload, back.attempts) == (JobState.PENDING, {"n": 9}, 0)
    assert await job_count(db) == 1


async def test_jobs_added_in_a_unit_of_work_that_fails_are_not_kept(connect: Databases) -> None:
    db = await connect()

    async def failing_use_case() -> None:
        async with SqlUnitOfWork(db) as uow:
            assert await uow.jobs.add(NewJob("test.x", "rolled-back", {}))
            raise RuntimeError("the use case failed")

    with pytest.raises(RuntimeError):
        await failing_use_case()
    assert await job_count(db) == 0
