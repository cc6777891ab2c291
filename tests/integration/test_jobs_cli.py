"""`plugpay jobs list` and `plugpay jobs retry` as an operator runs them: real processes
on a real SQLite file that the test fills with jobs in every state."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from plugpay.services.ports.jobs import Job, JobState, NewJob
from plugpay.store import tables as t
from plugpay.store.database import Database
from plugpay.store.jobs import SqlJobQueue
from plugpay.store.migrate import upgrade
from plugpay.store.uow import SqlUnitOfWork

PLUGPAY = [sys.executable, "-m", "plugpay.cli"]
HEADER = ["ID", "KIND", "STATE", "TRIES", "RUNS", "FOR", "LAST", "ERROR"]


@dataclass
class Cli:
    url: str
    env: dict[str, str]
    cwd: Path

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PLUGPAY, *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def jobs(self) -> dict[int, Job]:
        async def read() -> list[Job]:
            db = Database(self.url)
            try:
                return await SqlJobQueue(db).listing(limit=1000)
            finally:
                await db.dispose()

        return {job.id: job for job in asyncio.run(read())}


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    url = f"sqlite+aiosqlite:///{tmp_path}/jobs.db"
    upgrade(url)
    env = {
        **os.environ,
        "PLUGPAY_DATABASE_URL": url,
        "PLUGPAY_SECRET_FILE": str(tmp_path / "secret"),
    }
    return Cli(url, env, tmp_path)


@dataclass(frozen=True)
class Seeded:
    pending: int
    waiting: int
    failed: int
    done: int
    running: int
    periodic: int


def seed(url: str) -> Seeded:
    """One job in every state, as servers leave them."""

    async def go() -> Seeded:
        db = Database(url)
        queue = SqlJobQueue(db)
        later = datetime.now(UTC) + timedelta(hours=1)
        try:
            async with SqlUnitOfWork(db) as uow:
                for job in (
                    NewJob(
                        "payment.refund", "refund:1", {"refund_id": 1}, session_id="sess-failed"
                    ),
                    NewJob("receipt.push", "receipt:done", {}, session_id="sess-done"),
                    NewJob("session.stop", "stop:running", {}, session_id="sess-running"),
                ):
                    await uow.jobs.add(job)
            claimed = {job.key: job for job in await queue.claim("gone-worker", 10, 600.0)}
            await queue.fail(claimed["refund:1"], "gone-worker", "refund refused: card lost")
            await queue.finish(claimed["receipt:done"], "gone-worker")
            async with db.begin() as conn:  # it failed on its fifth try
                await conn.execute(
                    update(t.jobs).where(t.jobs.c.key == "refund:1").values(attempts=5)
                )
            async with SqlUnitOfWork(db) as uow:
                await uow.jobs.add(
                    NewJob(
                        "payment.capture",
                        "capture:sess-pending",
                        {"amount_minor": 1234},
                        session_id="sess-pending",
                    )
                )
                await uow.jobs.add(
                    NewJob("session.start", "start:waiting", {}, charger_id="CP-9", run_at=later)
                )
            await queue.ensure([NewJob("sweep.sessions", "periodic:sweep", every_seconds=60)])
            ids = {job.key: job.id for job in await queue.listing(limit=100)}
        finally:
            await db.dispose()
        return Seeded(
            pending=ids["capture:sess-pending"],
            waiting=ids["start:waiting"],
            failed=ids["refund:1"],
            done=ids["receipt:done"],
            running=ids["stop:running"],
            periodic=ids["periodic:sweep"],
        )

    return asyncio.run(go())


def table(stdout: str) -> dict[int, str]:
    """The rows of `plugpay jobs list`, by job id."""
    lines = stdout.strip().splitlines()
    assert lines and lines[0].split() == HEADER, stdout
    rows = {}
    for line in lines[1:]:
        job_id = line.split(" ", 1)[0]
        rows[int(job_id)] = line
    return rows


def cells(line: str) -> list[str]:
    return line.split()


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.startswith("plugpay: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr.strip()


def test_jobs_list_shows_every_job_with_its_state_tries_and_last_error(cli: Cli) -> None:
    ids = seed(cli.url)
    listed = cli("jobs", "list")
    assert listed.returncode == 0, listed.stderr
    rows = table(listed.stdout)
    assert set(rows) == {ids.pending, ids.waiting, ids.failed, ids.done, ids.running, ids.periodic}

    assert cells(rows[ids.failed])[:4] == [str(ids.failed), "payment.refund", "failed", "5"]
    assert "sess-failed" in rows[ids.failed]
    assert rows[ids.failed].endswith("refund refused: card lost")
    assert cells(rows[ids.done])[:4] == [str(ids.done), "receipt.push", "done", "1"]
    assert cells(rows[ids.running])[:4] == [str(ids.running), "session.stop", "running", "1"]
    assert cells(rows[ids.pending])[:4] == [str(ids.pending), "payment.capture", "pending", "0"]
    assert "sess-pending" in rows[ids.pending]
    assert cells(rows[ids.waiting])[:4] == [str(ids.waiting), "session.start", "pending", "0"]
    assert "CP-9" in rows[ids.waiting]
    assert "every 60s" in rows[ids.periodic]
    # Newest first: the one waiting an hour heads the list.
    assert next(iter(rows)) == ids.waiting

    limited = cli("jobs", "list", "--limit", "2")
    assert limited.returncode == 0 and len(table(limited.stdout)) == 2


@pytest.mark.parametrize(
    ("state", "expected"),
    [("failed", "failed"), ("done", "done"), ("running", "running"), ("pending", "pending")],
)
def test_jobs_list_state_shows_only_jobs_in_that_state(cli: Cli, state: str, expected: str) -> None:
    ids = seed(cli.url)
    listed = cli("jobs", "list", "--state", state)
    assert listed.returncode == 0, listed.stderr
    rows = table(listed.stdout)
    by_state = {
        "failed": {ids.failed},
        "done": {ids.done},
        "running": {ids.running},
        "pending": {ids.pending, ids.waiting, ids.periodic},
    }
    assert set(rows) == by_state[state]
    assert all(cells(line)[2] == expected for line in rows.values())


def test_jobs_list_of_an_empty_queue_says_so(cli: Cli) -> None:
    listed = cli("jobs", "list")
    assert listed.returncode == 0 and listed.stdout.strip() == "no jobs"
    seed(cli.url)
    assert cli("jobs", "list", "--state", "failed").returncode == 0
    assert one_line_error(cli("jobs", "list", "--limit", "0")) == (
        "plugpay: --limit must be at least 1"
    )


def test_jobs_retry_puts_a_failed_job_back_to_run_now(cli: Cli) -> None:
    ids = seed(cli.url)
    before = cli.jobs()

    retried = cli("jobs", "retry", str(ids.failed))
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == f"job {ids.failed} (payment.refund) will run again now"
    after = cli.jobs()
    job = after[ids.failed]
    assert (job.state, job.attempts) == (JobState.PENDING, 0)
    assert job.run_at <= datetime.now(UTC) and job.done_at is None
    # Nothing else moved.
    assert {k: v for k, v in after.items() if k != ids.failed} == {
        k: v for k, v in before.items() if k != ids.failed
    }
    assert cli("jobs", "list", "--state", "failed").stdout.strip() == "no jobs"
    pending = table(cli("jobs", "list", "--state", "pending").stdout)
    assert cells(pending[ids.failed])[:4] == [str(ids.failed), "payment.refund", "pending", "0"]


def test_jobs_retry_makes_a_waiting_job_due_now(cli: Cli) -> None:
    ids = seed(cli.url)
    retried = cli("jobs", "retry", str(ids.waiting))
    assert retried.returncode == 0, retried.stderr
    job = cli.jobs()[ids.waiting]
    assert job.state == JobState.PENDING and job.run_at <= datetime.now(UTC)


def test_jobs_retry_of_an_unknown_job_is_refused_in_one_line(cli: Cli) -> None:
    seed(cli.url)
    before = cli.jobs()
    assert one_line_error(cli("jobs", "retry", "9999")) == (
        "plugpay: no job 9999 (see: plugpay jobs list)"
    )
    assert cli.jobs() == before


@pytest.mark.parametrize("which", ["done", "running"])
def test_jobs_retry_of_a_done_or_running_job_is_refused_in_one_line(cli: Cli, which: str) -> None:
    ids = seed(cli.url)
    job_id = ids.done if which == "done" else ids.running
    before = cli.jobs()
    assert one_line_error(cli("jobs", "retry", str(job_id))) == (
        f"plugpay: job {job_id} is {which}: only failed or pending jobs are retried"
    )
    assert cli.jobs() == before
