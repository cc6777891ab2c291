"""Crash tests: a real ``plugpay serve`` process, killed with SIGKILL and started again.

The charger (a virtual one) and the driver's phone live in the test process, so
they outlive the server as real ones would: the charger reconnects and replays
what it could not deliver, the phone tries again. ``ServerProcess`` runs the
server; ``drive`` takes one guest session to its end through any number of
crashes; ``audit`` checks what the database says afterwards.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from plugpay.config import Settings
from plugpay.domain.session import FINAL_STATES, TERMINAL_STATES
from plugpay.domain.tariff import price_session
from plugpay.runtime import Runtime, build_runtime
from plugpay.services.live_pricing import to_sample, with_meter_stop
from plugpay.sim.charger import Outbound, VirtualCharger
from plugpay.sim.state import ConnectorState, iso
from plugpay.store import tables as t
from plugpay.store.clock import aware
from support.server import free_port

PASSWORD = "correct-horse-battery-staple"
EXAMPLES = Path(__file__).resolve().parents[2] / "infra" / "examples"
PLUGPAY = [sys.executable, "-m", "plugpay.cli"]
# A loaded machine takes a while to import everything.
START_SECONDS = 120.0
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


class ServerProcess:
    """``plugpay serve`` on a fixed port, in its own process."""

    def __init__(self, env: dict[str, str], port: int, workdir: Path) -> None:
        self.env = env
        self.port = port
        self.workdir = workdir
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.kills = 0
        self.ready = asyncio.Event()  # set while a started server is up
        self.log = workdir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, crash_at: str = "") -> None:
        self.ready.clear()
        env = {**os.environ, **self.env, "PLUGPAY_CRASH_AT": crash_at}
        self.starts += 1
        with self.log.open("a") as log:
            log.write(f"\n--- start {self.starts} (crash at {crash_at or 'nothing'}) ---\n")
        handle = self.log.open("a")
        self.process = await asyncio.create_subprocess_exec(
            *PLUGPAY,
            "serve",
            "--port",
            str(self.port),
            env=env,
            cwd=self.workdir,
            stdout=handle,
            stderr=handle,
        )
        handle.close()
        deadline = time.monotonic() + START_SECONDS
        async with httpx.AsyncClient(base_url=self.url, timeout=1.0) as client:
            while time.monotonic() < deadline:
                if not self.alive:
                    assert self.process is not None
                    if self.process.returncode == -signal.SIGKILL:
                        return  # a crash point while starting up (its jobs run at once)
                    raise AssertionError(f"the server exited at start:\n{self.tail()}")
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        self.ready.set()
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"the server did not start:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no clean-up, no flush, as a power cut."""
        if self.alive:
            assert self.process is not None
            self.ready.clear()
            self.process.send_signal(signal.SIGKILL)
            self.kills += 1

    async def wait_dead(self, timeout: float = 10.0) -> None:
        assert self.process is not None
        await asyncio.wait_for(self.process.wait(), timeout)

    async def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        except OSError:
            return ""


class RecordingCharger(VirtualCharger):
    """A virtual charger that remembers every reading the server answered, per
    transaction (its id as the charger knows it): the readings a crash must not lose."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answered: list[tuple[Any, str, int]] = []  # (transaction state, at, Wh)

    def _send_meter(self, connector: ConnectorState) -> None:
        tx = connector.transaction
        if tx is None:
            return
        at, wh, power = iso(), connector.meter_wh, connector.power_w
        connector_id = connector.connector_id

        def answered(_: Any) -> None:
            self.answered.append((tx, at, wh))

        self._enqueue(
            Outbound(
                lambda offline: self.dialect.meter(connector_id, tx, at, wh, power, offline),
                True,
                on_result=answered,
            )
        )


@dataclass
class Trip:
    """One guest session through the crashes, as the phone saw it."""

    connector_id: int
    session_id: str | None = None
    steps: list[str] = field(default_factory=list)
    charged_for: float = 1.0  # seconds of charging before the driver stops


class CrashPhone:
    """The driver's browser: keeps its cookie across server restarts."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.AsyncClient(base_url=base_url, timeout=10.0)

    async def close(self) -> None:
        await self.client.aclose()

    async def _csrf(self, path: str) -> str:
        page = await self.client.get(path)
        match = CSRF.search(page.text)
        assert match, f"no form on {path} ({page.status_code})"
        return match.group(1)

    async def start(self, connector_id: int) -> str | None:
        """The new session's id; None while the connector cannot be started (the
        charger still booting, say)."""
        path = f"/c/CP-1/{connector_id}"
        page = await self.client.get(path)
        if page.status_code == 303:  # our own session holds it (the answer was lost)
            return page.headers["location"].rsplit("/", 1)[-1]
        match = CSRF.search(page.text)
        if match is None or 'id="start"' not in page.text:
            return None
        response = await self.client.post(f"{path}/start", data={"_csrf_token": match.group(1)})
        location = response.headers.get("location", "")
        assert response.status_code == 303 and location.startswith("/pay/"), (
            response.status_code,
            location,
        )
        return location.rsplit("/", 1)[-1]

    async def pay(self, session_id: str) -> None:
        token = await self._csrf(f"/pay/{session_id}")
        await self.client.post(
            f"/pay/{session_id}/demo", data={"_csrf_token": token, "card": "approve"}
        )

    async def stop(self, session_id: str) -> None:
        page = await self.client.get(f"/s/{session_id}")
        match = CSRF.search(page.text)
        if match is None:
            return  # no stop button: it is over already
        await self.client.post(f"/s/{session_id}/stop", data={"_csrf_token": match.group(1)})


async def session_row(runtime: Runtime, session_id: str) -> dict[str, Any]:
    s = t.charging_sessions
    async with runtime.db.connect() as conn:
        row = (await conn.execute(select(s).where(s.c.id == session_id))).mappings().one()
    return dict(row)


async def drive(
    server: ServerProcess,
    runtime: Runtime,
    phone: CrashPhone,
    trip: Trip,
    *,
    restart: Callable[[], Awaitable[None]],
    timeout: float = 90.0,
) -> str:
    """Take the trip's session to a final state, starting the server again whenever
    it died; the final state."""
    deadline = time.monotonic() + timeout
    charging_since: float | None = None
    stop_asked = False
    while time.monotonic() < deadline:
        if not server.alive:
            trip.steps.append("restart")
            await restart()
        try:
            if trip.session_id is None:
                trip.session_id = await phone.start(trip.connector_id)
                if trip.session_id is not None:
                    trip.steps.append("started")
                await asyncio.sleep(0.2)
                continue
            row = await session_row(runtime, trip.session_id)
            state = row["state"]
            if state in FINAL_STATES:
                return str(state)
            if state == "CREATED":
                await phone.pay(trip.session_id)
                trip.steps.append("paid")
            elif state == "CHARGING":
                if row["last_reading_at"] is not None and charging_since is None:
                    charging_since = time.monotonic()
                if charging_since is not None and (
                    time.monotonic() - charging_since >= trip.charged_for
                ):
                    await phone.stop(trip.session_id)
                    if not stop_asked:
                        trip.steps.append("stop")
                    stop_asked = True
        except (httpx.TransportError, AssertionError) as exc:
            if server.alive and isinstance(exc, AssertionError):
                raise
        await asyncio.sleep(0.2)
    raise AssertionError(
        f"session {trip.session_id} did not end in {timeout:.0f} s after {trip.steps}:\n"
        f"{await report(runtime, trip.session_id)}\n{server.tail()}"
    )


async def report(runtime: Runtime, session_id: str | None) -> str:
    """What the database says of a session, for a failure's message."""
    if session_id is None:
        return "no session"
    row = await session_row(runtime, session_id)
    j = t.jobs
    async with runtime.db.connect() as conn:
        jobs = (
            await conn.execute(select(j).where(j.c.session_id == session_id).order_by(j.c.id))
        ).mappings()
        lines = [
            f"  job {r['kind']} {r['state']} tries={r['attempts']} error={r['last_error']}"
            for r in jobs
        ]
    frames = await runtime.message_log.recent("CP-1", 40)
    lines += [f"  {m.direction} {m.action or ''} {m.frame[:150]}" for m in frames]
    head = f"session {row['state']} reason={row['reason']} detail={row['reason_detail']}"
    return "\n".join([head, *lines])


async def quiet(runtime: Runtime, timeout: float = 60.0) -> None:
    """Wait until no job is left to run but the periodic ones (a job a dead server
    held is taken again once its lease ends)."""
    j = t.jobs
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with runtime.db.connect() as conn:
            left = await conn.scalar(
                select(func.count()).where(
                    j.c.state.in_(("pending", "running")), j.c.every_seconds.is_(None)
                )
            )
        if not left:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("jobs still waiting after a minute")


async def audit(runtime: Runtime, sim: RecordingCharger, session_ids: list[str]) -> list[str]:
    """What must hold after any crash, once every job has run; the problems found
    (none when all is well)."""
    await quiet(runtime)
    problems: list[str] = []
    db = runtime.db
    async with db.connect() as conn:
        sessions = {
            r["id"]: dict(r)
            for r in (
                await conn.execute(
                    select(t.charging_sessions).where(t.charging_sessions.c.id.in_(session_ids))
                )
            ).mappings()
        }
        demo = {
            r["ref"]: dict(r["data"])
            for r in (await conn.execute(select(t.demo_payments))).mappings()
            if r["ref"].startswith("demo_pi_")
        }
    for session_id in session_ids:
        row = sessions[session_id]
        state, reason = row["state"], row["reason"]
        label = f"session {session_id[:8]} ({state}, {reason})"
        if state not in TERMINAL_STATES and not (state == "NEEDS_REVIEW" and reason):
            problems.append(f"{label}: not final")
        intent = demo.get(row["payment_ref"] or "")
        journals = await runtime.ledger.journals_of_session(session_id)
        captures = [j for j in journals if j.movement == "captured"]
        if len(captures) > 1:
            problems.append(f"{label}: captured {len(captures)} times")
        if intent is not None:
            keys = sorted(k for k in intent["replies"] if k.endswith(":capture"))
            if len(keys) > 1:
                problems.append(f"{label}: the provider saw captures {keys}")
            received = int(intent["state"]["amount_received_minor"])
            booked = sum(j.amount for j in captures)
            if received != booked:
                problems.append(f"{label}: provider took {received}, the ledger says {booked}")
            if state in ("START_FAILED", "CANCELED") and intent["state"]["status"] not in (
                "canceled",
                "requires_payment_method",
            ):
                problems.append(f"{label}: hold left {intent['state']['status']}")
        if state in TERMINAL_STATES and journals:
            held = sum(a for j in journals for acc, a in j.lines if acc == "driver_hold")
            if held != 0:
                problems.append(f"{label}: {held} still held in the ledger")
        if state == "SETTLED" and row["captured_minor"]:
            price = await engine_price(runtime, row)
            if row["captured_minor"] != min(price, row["hold_minor"]):
                problems.append(f"{label}: captured {row['captured_minor']}, priced {price}")
    balance = await runtime.ledger.trial_balance()
    if sum(balance.values()) != 0:
        problems.append(f"the ledger does not balance: {balance}")
    problems += await lost_readings(runtime, sim)
    return problems


async def engine_price(runtime: Runtime, row: dict[str, Any]) -> int:
    """The engine's price of the session's stored readings, computed here."""
    store = runtime.session_store
    pk = row["transaction_pk"]
    readings = await store.transaction_readings(pk)
    info = await store.transaction_info(pk)
    assert readings and info is not None
    samples = [to_sample(r) for r in with_meter_stop(readings, info)]
    _, tariff = await runtime.services.tariffs.version(row["tariff_pk"])
    started = info.started_at or readings[0].at
    breakdown = price_session(tariff, samples, row["time_zone"], min(started, readings[0].at))
    return breakdown.total_due().minor


async def lost_readings(runtime: Runtime, sim: RecordingCharger) -> list[str]:
    """Readings the server answered (so the charger forgot them) that are not stored."""
    m, tx = t.meter_readings, t.transactions
    async with runtime.db.connect() as conn:
        rows = (
            await conn.execute(
                select(tx.c.id, tx.c.ocpp_transaction_id, m.c.at, m.c.energy_wh).join(
                    m, m.c.transaction_id == tx.c.id
                )
            )
        ).all()
    stored = {(str(r.ocpp_transaction_id), aware(r.at), int(r.energy_wh or 0)) for r in rows}
    missing = []
    for state, at, wh in sim.answered:
        key = (str(state.transaction_id), datetime.fromisoformat(at.replace("Z", "+00:00")), wh)
        if key not in stored:
            missing.append(f"answered reading lost: transaction {key[0]} at {at} ({wh} Wh)")
    return missing


async def seed(settings: Settings, connectors: int = 2) -> Runtime:
    """A charger with a time-of-use tariff, and a runtime for reading the database."""
    runtime = build_runtime(settings)
    services = runtime.services
    stored = await services.tariffs.import_tariff(
        (EXAMPLES / "time-of-use-idle-fee.json").read_bytes()
    )
    await services.chargers.add_charger(
        "CP-1", PASSWORD, connectors=connectors, site="Crash site", time_zone="Europe/Berlin"
    )
    await services.tariffs.assign(stored.tariff_id, charger_id="CP-1")
    return runtime


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        "PLUGPAY_DATABASE_URL": settings.database_url,
        "PLUGPAY_SECRET_KEY": settings.secret_key,
        "PLUGPAY_VAPID_PRIVATE_KEY": settings.vapid_private_key or "",
        "PLUGPAY_START_TIMEOUT": "120",
        "PLUGPAY_OCPP_CALL_TIMEOUT": "5",
        "PLUGPAY_JOB_LEASE_SECONDS": "3",
        "PLUGPAY_GUEST_STARTS_PER_ADDRESS": "10000",
        "PLUGPAY_GUEST_STARTS_PER_CONNECTOR": "10000",
        "PLUGPAY_ENV": "development",
        **extra,
    }


def now() -> datetime:
    return datetime.now(UTC)


__all__ = ["free_port"]
