"""Two server processes on one PostgreSQL database and one Redis: their workers race
for the same jobs, and each job runs once; one instance killed with SIGKILL in the
middle of a capture, and the other finishes it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import make_settings
from plugpay.runtime import Runtime
from plugpay.store import tables as t
from support.crash import (
    PASSWORD,
    CrashPhone,
    RecordingCharger,
    ServerProcess,
    audit,
    quiet,
    report,
    seed,
    server_env,
    session_row,
)
from support.databases import PG_URL, PostgresDatabases
from support.server import free_port

REDIS_URL = os.environ.get("PLUGPAY_TEST_REDIS_URL")
pytestmark = [
    pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (PLUGPAY_TEST_DATABASE_URL)"),
    pytest.mark.skipif(not REDIS_URL, reason="needs Redis (PLUGPAY_TEST_REDIS_URL)"),
    pytest.mark.timeout(600),
]


class Pair:
    def __init__(self, runtime: Runtime, a: ServerProcess, b: ServerProcess) -> None:
        self.runtime, self.a, self.b = runtime, a, b


@pytest.fixture
def pg_url(postgres_databases: PostgresDatabases | None) -> str:
    assert postgres_databases is not None
    return postgres_databases.fresh()


@pytest.fixture
async def pair(pg_url: str, tmp_path: Path) -> AsyncIterator[Pair]:
    settings = make_settings(pg_url, redis_url=REDIS_URL)
    runtime = await seed(settings)
    once = tmp_path / "crashed-once"
    env = server_env(settings, PLUGPAY_REDIS_URL=REDIS_URL or "", PLUGPAY_CRASH_ONCE=str(once))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = ServerProcess(env, free_port(), tmp_path / "a")
    b = ServerProcess(env, free_port(), tmp_path / "b")
    yield Pair(runtime, a, b)
    await a.stop()
    await b.stop()
    await runtime.close()


async def job_rows(runtime: Runtime, session_id: str) -> list[dict[str, object]]:
    j = t.jobs
    async with runtime.db.connect() as conn:
        rows = (
            await conn.execute(select(j).where(j.c.session_id == session_id).order_by(j.c.id))
        ).mappings()
        return [dict(r) for r in rows]


async def until(check: object, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.2)
    raise AssertionError(what)


async def test_a_capture_cut_short_by_a_kill_is_finished_by_the_other_instance(
    pair: Pair,
) -> None:
    # Both armed at the capture, once between them: whichever claims the capture
    # dies right after the provider took the money, before booking it.
    await pair.a.start(crash_at="capture.answered")
    await pair.b.start(crash_at="capture.answered")
    sim = RecordingCharger(
        "CP-1",
        pair.a.ocpp_url,
        PASSWORD,
        "1.6",
        connectors=2,
        meter_interval=0.2,
        power_kw=22.0,
        max_backoff=0.3,
        initial_backoff=0.1,
    )
    run = asyncio.get_running_loop().create_task(sim.run())
    # The driver's phone talks to B, the charger to A: commands cross through
    # Redis, and every job is taken by whichever worker comes first.
    phone = CrashPhone(pair.b.url)
    try:
        await asyncio.wait_for(sim.booted.wait(), 30)

        async def started() -> str | None:
            return await phone.start(1)

        session_id: str | None = None
        for _ in range(100):
            session_id = await started()
            if session_id:
                break
            await asyncio.sleep(0.2)
        assert session_id is not None
        await phone.pay(session_id)

        async def charging() -> bool:
            row = await session_row(pair.runtime, session_id)
            return row["state"] == "CHARGING" and row["last_reading_at"] is not None

        await until(charging, 60, "the charge did not start")
        await asyncio.sleep(1.0)
        await phone.stop(session_id)

        async def settled() -> bool:
            return (await session_row(pair.runtime, session_id))["state"] == "SETTLED"

        await until(settled, 120, f"not settled: {await report(pair.runtime, session_id)}")
        dead = [s for s in (pair.a, pair.b) if not s.alive]
        assert len(dead) == 1, "one instance, and only one, died at the capture"
        await quiet(pair.runtime)  # the receipt job, after the settlement
        jobs = {r["kind"]: r for r in await job_rows(pair.runtime, session_id)}
        # The capture: taken over once the dead worker's lease ran out, done once.
        capture = jobs["payment.capture"]
        assert (capture["state"], capture["attempts"]) == ("done", 2), capture
        # Every other job of the session ran once, on one instance or the other.
        for kind, row in jobs.items():
            if kind != "payment.capture":
                assert (row["state"], row["attempts"]) == ("done", 1), (kind, row)
        assert await audit(pair.runtime, sim, [session_id]) == []
    finally:
        await phone.close()
        await sim.close()
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
