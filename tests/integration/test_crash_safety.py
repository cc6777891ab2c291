"""Every session and every cent survives a kill -9 at any moment.

A real ``plugpay serve`` process is killed with SIGKILL, started again, and the
guest session carries on to its end; then the database is audited: every
session final, nothing captured twice, every reading the charger got an answer
for kept, what was captured the engine's price, the ledger balanced, no hold
left behind.

Two kinds of kill: at named crash points (``plugpay.crashpoints``), aimed at
each window between two steps (payment answered -> authorised -> start sent;
transaction ended -> capture queued -> captured -> booked), one after the other
in one session; and at random moments of many sessions (seeded and printed, so
a failure can be replayed: PLUGPAY_CRASH_SEED). ``make soak RUNS=100`` runs
many more random rounds than ``make test`` does.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from conftest import make_settings
from plugpay.runtime import Runtime
from support.crash import (
    PASSWORD,
    CrashPhone,
    RecordingCharger,
    ServerProcess,
    Trip,
    audit,
    drive,
    report,
    seed,
    server_env,
    session_row,
)
from support.server import free_port

# The windows of one session, in the order the session reaches them.
WINDOWS = [
    "hold.answered",
    "payment.checked",
    "authorized.committed",
    "start.accepted",
    "stop.committed",
    "stop.accepted",
    "transaction.ended",
    "stopped.committed",
    "capture.answered",
    "settled.committed",
]
ROUNDS = int(os.environ.get("PLUGPAY_CRASH_RUNS", "3"))
SEED = int(os.environ.get("PLUGPAY_CRASH_SEED", str(int(time.time()) % 100_000)))

pytestmark = pytest.mark.timeout(600 + 120 * ROUNDS)


class Crashes:
    """A server process, the charger and the phone that outlive it."""

    def __init__(self, runtime: Runtime, server: ServerProcess, sim: RecordingCharger) -> None:
        self.runtime = runtime
        self.server = server
        self.sim = sim
        self.armed: list[str] = []
        self.phone = CrashPhone(server.url)
        self.task: asyncio.Task[None] | None = None

    async def run_charger(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.sim.run())
        await asyncio.wait_for(self.sim.booted.wait(), 15)

    async def restart(self) -> None:
        """The server died (a crash point, or our kill): start it again, armed with the
        next crash point if any."""
        if self.server.process is not None:
            await self.server.wait_dead()
            assert self.server.process.returncode == -9, self.server.tail()
        point = self.armed.pop(0) if self.armed else ""
        await self.server.start(crash_at=point)

    async def close(self) -> None:
        await self.phone.close()
        await self.sim.close()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.server.stop()
        await self.runtime.close()


Open = Callable[..., Awaitable[Crashes]]


@pytest.fixture
async def crashes(database_url: str, tmp_path: Path) -> AsyncIterator[Open]:
    opened: list[Crashes] = []

    async def open_(version: str = "1.6") -> Crashes:
        settings = make_settings(database_url)
        runtime = await seed(settings)
        server = ServerProcess(server_env(settings), free_port(), tmp_path)
        sim = RecordingCharger(
            "CP-1",
            server.ocpp_url,
            PASSWORD,
            version,
            connectors=2,
            meter_interval=0.2,
            power_kw=22.0,
            max_backoff=0.3,
            initial_backoff=0.1,
        )
        opened.append(Crashes(runtime, server, sim))
        return opened[-1]

    yield open_
    for harness in opened:
        await harness.close()


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_crash_in_every_window_of_a_session_loses_nothing(
    crashes: Open, version: str
) -> None:
    harness = await crashes(version)
    harness.armed = WINDOWS[1:]
    await harness.server.start(crash_at=WINDOWS[0])
    await harness.run_charger()
    trip = Trip(connector_id=1)

    final = await drive(
        harness.server, harness.runtime, harness.phone, trip, restart=harness.restart, timeout=400
    )

    await asyncio.sleep(0.5)
    if not harness.server.alive:  # the last point can come after the session settled
        trip.steps.append("restart")
        await harness.restart()
    print(f"crash points {WINDOWS} on {version}: {trip.steps}")
    assert final == "SETTLED", await report(harness.runtime, trip.session_id)
    assert harness.armed == [], f"never reached: {harness.armed}"
    assert trip.steps.count("restart") == len(WINDOWS)
    assert trip.session_id is not None
    assert await audit(harness.runtime, harness.sim, [trip.session_id]) == []


async def test_a_crash_while_a_failed_start_releases_its_hold_loses_nothing(
    crashes: Open,
) -> None:
    harness = await crashes()
    harness.sim.accepts_remote_start = False
    await harness.server.start(crash_at="release.answered")
    await harness.run_charger()
    trip = Trip(connector_id=2)

    final = await drive(
        harness.server, harness.runtime, harness.phone, trip, restart=harness.restart
    )

    assert final == "START_FAILED"
    # The release runs after the session shows START_FAILED: the crash comes then.
    for _ in range(100):
        if not harness.server.alive:
            trip.steps.append("restart")
            await harness.restart()
            break
        await asyncio.sleep(0.1)
    assert trip.steps.count("restart") == 1
    assert trip.session_id is not None
    assert await audit(harness.runtime, harness.sim, [trip.session_id]) == []


async def test_kills_at_random_moments_of_many_sessions_lose_nothing(crashes: Open) -> None:
    """Two connectors, sessions one after the other on each, the server killed at
    random moments throughout (seeded: PLUGPAY_CRASH_SEED replays a run)."""
    rng = random.Random(SEED)
    print(f"PLUGPAY_CRASH_SEED={SEED} PLUGPAY_CRASH_RUNS={ROUNDS}")
    harness = await crashes()
    await harness.server.start()
    await harness.run_charger()
    session_ids: list[str] = []
    kills: list[float] = []

    async def killer(stop: asyncio.Event) -> None:
        # A random moment of each life of the server, once it is up; a few kills per
        # session (a server killed every second would never get anything done).
        while not stop.is_set() and len(kills) < 3 * ROUNDS:
            await harness.server.ready.wait()
            # The first kill comes soon: short sessions may all end within a long wait.
            await asyncio.sleep(rng.uniform(0.5, 2.0) if not kills else rng.uniform(0.5, 6.0))
            if harness.server.alive and not stop.is_set():
                kills.append(time.monotonic())
                harness.server.kill()

    async def sessions_on(connector_id: int) -> None:
        phone = CrashPhone(harness.server.url)
        try:
            for _ in range(ROUNDS):
                trip = Trip(connector_id=connector_id, charged_for=rng.uniform(0.2, 2.0))
                await drive(
                    harness.server, harness.runtime, phone, trip, restart=restart_once, timeout=180
                )
                assert trip.session_id is not None
                session_ids.append(trip.session_id)
        finally:
            await phone.close()

    lock = asyncio.Lock()

    async def restart_once() -> None:
        async with lock:  # two drivers see the same death: one restart
            if not harness.server.alive:
                await harness.restart()

    stop = asyncio.Event()
    killing = asyncio.get_running_loop().create_task(killer(stop))
    try:
        await asyncio.gather(sessions_on(1), sessions_on(2))
    finally:
        stop.set()
        killing.cancel()
        await asyncio.gather(killing, return_exceptions=True)
    if not harness.server.alive:
        await harness.restart()
    await asyncio.sleep(1.0)  # the last receipts and releases
    problems = await audit(harness.runtime, harness.sim, session_ids)
    states: dict[str, int] = {}
    for session_id in session_ids:
        row = await session_row(harness.runtime, session_id)
        states[row["state"]] = states.get(row["state"], 0) + 1
    balance = await harness.runtime.ledger.trial_balance()
    print(
        f"seed {SEED}: {len(session_ids)} sessions, {len(kills)} kills, "
        f"{harness.server.starts} server starts; ended {states}; "
        f"ledger sum {sum(balance.values())}; captured "
        f"{balance.get(('EUR', 'driver_receivable'), 0)}"
        f" minor units; problems: {problems or 'none'}"
    )
    assert problems == [], f"seed {SEED}"
    assert len(session_ids) == 2 * ROUNDS
    assert kills, "the server was never killed"
