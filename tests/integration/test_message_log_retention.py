"""The OCPP message log keeps PLUGPAY_MESSAGE_LOG_DAYS of frames: older rows are
purged oldest first, a chunk at a time, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import make_settings
from plugpay import runtime as runtime_module
from plugpay.store import tables as t
from plugpay.store.database import Database
from plugpay.store.messages import SqlMessageLog
from plugpay.store.writer import BatchWriter
from support.server import start_server

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def row(n: int, at: datetime) -> dict[str, Any]:
    return {
        "charger_id": "CP-R",
        "direction": "in",
        "message_type": 2,
        "unique_id": f"u{n}",
        "action": "Heartbeat",
        "frame": '[2,"u","Heartbeat",{}]',
        "at": at,
    }


async def unique_ids(db: Database) -> list[str]:
    async with db.connect() as conn:
        m = t.ocpp_messages
        return list((await conn.scalars(select(m.c.unique_id).order_by(m.c.id))).all())


async def test_rows_past_retention_are_purged_and_the_rest_kept(database_url: str) -> None:
    db = Database(database_url)
    writer = BatchWriter(db)
    log = SqlMessageLog(db, writer)
    try:
        rows = [row(n, NOW - timedelta(days=40, minutes=-n)) for n in range(25)]
        rows += [row(n, NOW - timedelta(days=2, minutes=-n)) for n in range(25, 30)]
        async with db.begin() as conn:
            await conn.execute(t.ocpp_messages.insert(), rows)
        # 25 old rows in chunks of 10: three chunks, the last one stops at a kept row.
        gone = await log.purge(NOW - timedelta(days=30), chunk=10)
        assert gone == 25
        assert await unique_ids(db) == [f"u{n}" for n in range(25, 30)]
        assert await log.purge(NOW - timedelta(days=30), chunk=10) == 0
        # Everything past retention: the log ends empty, and purging that is fine.
        assert await log.purge(NOW, chunk=10) == 5
        assert await log.purge(NOW, chunk=10) == 0
        async with db.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(t.ocpp_messages)) == 0
    finally:
        await writer.close()
        await db.dispose()


async def test_the_purge_stops_at_the_first_row_it_must_keep(database_url: str) -> None:
    """Ids grow with time; an old row behind a newer one (a clock set back) waits
    until the newer one ages out too, and nothing newer is ever deleted."""
    db = Database(database_url)
    writer = BatchWriter(db)
    log = SqlMessageLog(db, writer)
    try:
        old, new = NOW - timedelta(days=40), NOW - timedelta(days=1)
        async with db.begin() as conn:
            await conn.execute(
                t.ocpp_messages.insert(), [row(0, old), row(1, new), row(2, old), row(3, new)]
            )
        assert await log.purge(NOW - timedelta(days=30), chunk=1) == 1
        assert await unique_ids(db) == ["u1", "u2", "u3"]
    finally:
        await writer.close()
        await db.dispose()


@pytest.mark.parametrize("days", [30.0, 0.0])
async def test_a_running_server_purges_by_its_setting(
    sqlite_url: str, monkeypatch: Any, days: float
) -> None:
    monkeypatch.setattr(runtime_module, "LOG_RETENTION_SECONDS", 1)
    server = await start_server(make_settings(sqlite_url, message_log_days=days))
    try:
        db = server.runtime.db
        now = datetime.now(UTC)
        async with db.begin() as conn:
            await conn.execute(
                t.ocpp_messages.insert(), [row(0, now - timedelta(days=31)), row(1, now)]
            )
        for _ in range(100):  # the purge is a periodic job: once a second here
            if await unique_ids(db) == ["u1"]:
                break
            await asyncio.sleep(0.05)
        # 0 days: kept for ever.
        assert await unique_ids(db) == (["u1"] if days else ["u0", "u1"])
    finally:
        await server.stop()
