"""Helpers for tests of charging sessions: drive a phone to a running charge, read the
session, its payment job and its ledger straight from the database."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select

from plugpay.domain.tariff import PriceBreakdown, Sample, price_session
from plugpay.services.ports import LoggedMessage, SessionRecord
from plugpay.services.sessions import to_sample
from plugpay.sim.charger import VirtualCharger
from plugpay.store import tables as t
from plugpay.store.chargers import aware
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
    e = t.ledger_entries
    async with server.runtime.db.connect() as conn:
        rows = (await conn.execute(select(e).where(e.c.session_id == session_id))).mappings()
        return [(r["kind"], r["amount_minor"]) for r in rows]


async def payment_job(server: RunningServer, session_id: str) -> dict[str, Any] | None:
    j = t.payment_jobs
    async with server.runtime.db.connect() as conn:
        row = (await conn.execute(select(j).where(j.c.session_id == session_id))).mappings().first()
    if row is None:
        return None
    return {k: aware(v) if isinstance(v, datetime) else v for k, v in row.items()}


async def first_attempt_failed(server: RunningServer, session_id: str) -> None:
    """Wait until the session's payment job was tried once (and failed)."""

    async def failed() -> bool:
        job = await payment_job(server, session_id)
        return job is not None and job["attempts"] >= 1

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
