"""Helpers for tests of charging sessions: drive a phone to a running charge, read the
session, its payment job and its ledger straight from the database."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from plugpay.domain.tariff import PriceBreakdown, Sample, price_session
from plugpay.services.live_pricing import to_sample
from plugpay.services.ports import LoggedMessage, SessionRecord
from plugpay.services.snapshots import publish
from plugpay.sim.charger import VirtualCharger
from plugpay.store import tables as t
from plugpay.store.clock import aware
from support.driver import PASSWORD, Phone, eventually
from support.server import RunningServer

META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def meta_csrf(html: str) -> str:
    """The CSRF token a page gives its scripts (for the x-csrf-token header)."""
    match = META_CSRF.search(html)
    assert match, "page has no csrf-token meta"
    return match.group(1)


def session_id_of(response: httpx.Response) -> str:
    """The session id a start redirects to (``/pay/{id}``)."""
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/pay/"), location
    return location.rsplit("/", 1)[-1]


async def record_of(server: RunningServer, session_id: str) -> SessionRecord:
    record = await server.runtime.session_store.get(session_id)
    assert record is not None
    return record


async def wait_for_state(
    server: RunningServer, session_id: str, *states: str, timeout: float = 15.0
) -> SessionRecord:
    """Wait until the session is in one of ``states``; its record then."""

    async def reached() -> bool:
        return (await record_of(server, session_id)).state in states

    try:
        await eventually(reached, timeout=timeout)
    except AssertionError:
        record = await record_of(server, session_id)
        raise AssertionError(
            f"session stayed {record.state} ({record.reason}), expected {states}"
        ) from None
    return await record_of(server, session_id)


async def charging(
    server: RunningServer, phone: Phone, charger_id: str = "CP-1", connector_id: int = 1
) -> str:
    """Start, pay with the demo card and wait for the first priced reading; the session id."""
    session_id = session_id_of(await phone.start(charger_id, connector_id))
    paid = await phone.pay(session_id)
    assert paid.status_code == 303 and paid.headers["location"] == f"/s/{session_id}"

    async def priced() -> bool:
        record = await record_of(server, session_id)
        return record.state == "CHARGING" and record.last_reading_at is not None

    await eventually(priced)
    return session_id


async def ledger(server: RunningServer, session_id: str) -> list[tuple[str, int]]:
    """The money the session's payment moved: its captures and refunds (the hold's own
    journals, authorised and released, are left out). Every journal must balance."""
    journals = await server.runtime.ledger.journals_of_session(session_id)
    for journal in journals:
        assert sum(amount for _, amount in journal.lines) == 0, journal
    names = {"captured": "capture", "refunded": "refund"}
    return [(names[j.movement], j.amount) for j in journals if j.movement in names]


async def payment_job(server: RunningServer, session_id: str) -> dict[str, Any] | None:
    """The session's capture (or release) job, as a row of the job table."""
    j = t.jobs
    async with server.runtime.db.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(j).where(
                        j.c.session_id == session_id,
                        j.c.kind.in_(("payment.capture", "payment.release")),
                    )
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        return None
    job = {k: aware(v) if isinstance(v, datetime) else v for k, v in row.items()}
    job["kind"] = "capture" if row["kind"] == "payment.capture" else "cancel"
    job["amount_minor"] = row["payload"].get("amount_minor", 0)
    job["next_attempt_at"] = job["run_at"]
    return job


async def make_job_due(server: RunningServer, session_id: str, **values: Any) -> None:
    """Let time pass for the payment queue: the session's job is due now."""
    j = t.jobs
    async with server.runtime.db.begin() as conn:
        await conn.execute(
            update(j)
            .where(
                j.c.session_id == session_id,
                j.c.kind.in_(("payment.capture", "payment.release")),
            )
            .values(run_at=datetime.now(UTC) - timedelta(seconds=1), **values)
        )
    server.runtime.services.worker.wake()


async def force(server: RunningServer, session_id: str, **values: Any) -> SessionRecord:
    """Put a session into a state by hand (pages are tested in states that take a
    charger minutes to reach), and tell its live page, as a change would."""
    s = t.charging_sessions
    async with server.runtime.db.begin() as conn:
        await conn.execute(
            update(s).where(s.c.id == session_id).values(version=s.c.version + 1, **values)
        )
    record = await record_of(server, session_id)
    await publish(server.runtime.live, record)
    return record


async def repeat_job(server: RunningServer, key: str) -> None:
    """Run the job with ``key`` once more, as if what it carries had come again."""
    j = t.jobs
    async with server.runtime.db.begin() as conn:
        result = await conn.execute(
            update(j)
            .where(j.c.key == key)
            .values(state="pending", run_at=datetime.now(UTC), done_at=None)
        )
    assert result.rowcount == 1, f"no job {key}"
    server.runtime.services.worker.wake()

    async def done() -> bool:
        async with server.runtime.db.connect() as conn:
            state = await conn.scalar(select(j.c.state).where(j.c.key == key))
        return state == "done"

    await eventually(done, timeout=5)


async def first_attempt_failed(server: RunningServer, session_id: str) -> None:
    """Wait until the session's payment job was tried once (and failed)."""

    async def failed() -> bool:
        job = await payment_job(server, session_id)
        return job is not None and job["last_error"] is not None

    await eventually(failed, timeout=5)


async def payment_intents(server: RunningServer) -> list[str]:
    """The demo provider's payment intents (each one is a hold that was asked for)."""
    d = t.demo_payments
    async with server.runtime.db.connect() as conn:
        refs = (await conn.execute(select(d.c.ref))).scalars().all()
    return [ref for ref in refs if ref.startswith("demo_pi_")]


async def sent_to_charger(
    server: RunningServer, charger_id: str, action: str
) -> list[LoggedMessage]:
    """The CALLs of ``action`` the server sent the charger (from the message log)."""
    messages = await server.runtime.message_log.recent(charger_id, 1000)
    return [
        m for m in messages if m.direction == "out" and m.action == action and m.message_type == 2
    ]


async def price_up_to(
    server: RunningServer, record: SessionRecord, until: Any = None
) -> PriceBreakdown:
    """The engine's price of the stored readings up to ``until``; by default of all of
    them and the transaction's meterStop. Computed here, independently of the session's
    live and final pricing."""
    assert record.transaction_pk is not None
    store = server.runtime.session_store
    readings = await store.transaction_readings(record.transaction_pk)
    if until is not None:
        readings = [r for r in readings if r.at <= until]
    info = await store.transaction_info(record.transaction_pk)
    assert readings and info is not None
    samples = [to_sample(r) for r in readings]
    if until is None and info.ended and info.stopped_at and info.meter_stop_wh is not None:
        samples.append(Sample(info.stopped_at, info.meter_stop_wh, charging=False, power_w=0))
    started = info.started_at or readings[0].at
    _, tariff = await server.runtime.services.tariffs.version(record.tariff_pk)
    return price_session(tariff, samples, record.time_zone, min(started, readings[0].at))


async def run_charger(server: RunningServer, sim: VirtualCharger) -> asyncio.Task[None]:
    """Run ``sim`` against the server until its connectors show Available there."""
    task = asyncio.get_running_loop().create_task(sim.run())
    await asyncio.wait_for(sim.booted.wait(), 10)

    async def available() -> bool:
        view = await server.runtime.charger_store.get(sim.charger_id)
        return (
            view is not None
            and view.connected
            and all(c.status == "Available" for c in view.connectors)
        )

    await eventually(available)
    return task


def charger(server: RunningServer, version: str = "1.6", **kwargs: Any) -> VirtualCharger:
    """CP-1 of ``demo_site``, reconnecting quickly (at most 1 s between attempts)."""
    kwargs.setdefault("max_backoff", 1.0)
    return VirtualCharger("CP-1", server.ocpp_url, PASSWORD, version, **kwargs)
