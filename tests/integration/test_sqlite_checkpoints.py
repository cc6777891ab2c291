"""SQLite's WAL is copied into the database file by a background checkpointer,
never inside one of the server's own commits."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from test_ocpp_writer import log_row

from conftest import make_settings
from plugpay.store import database
from plugpay.store import tables as t
from support.server import start_server


def big_row(n: int) -> dict[str, Any]:
    """A message log row with a 2,000-character frame."""
    return {**log_row(n), "frame": "x" * 2000, "at": datetime.now(UTC)}


async def test_the_wal_is_checkpointed_in_the_background(sqlite_url: str, monkeypatch: Any) -> None:
    monkeypatch.setattr(database, "CHECKPOINT_SECONDS", 0.2)
    server = await start_server(make_settings(sqlite_url))
    try:
        db = server.runtime.db
        assert db.checkpointer is not None
        async with db.connect() as conn:
            # The server's connection leaves checkpoints to the checkpointer.
            assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0
        path = db.checkpointer.path
        before = os.path.getsize(path)
        rows = [big_row(n) for n in range(3000)]
        async with db.begin() as conn:
            await conn.execute(t.ocpp_messages.insert(), rows)
        # 6 MB went to the WAL, far beyond SQLite's own 1,000-page threshold, and
        # the commit did not copy them into the database file itself.
        assert os.path.getsize(f"{path}-wal") > 4_000_000
        assert os.path.getsize(path) - before < 1_000_000
        # The background checkpointer does, shortly after.
        for _ in range(50):
            await asyncio.sleep(0.1)
            if os.path.getsize(path) - before > 4_000_000:
                break
        assert os.path.getsize(path) - before > 4_000_000
    finally:
        await server.stop()


async def test_the_wal_starts_over_under_steady_writes(sqlite_url: str, monkeypatch: Any) -> None:
    """A background checkpoint never catches up with a busy writer; without the
    writer's own catch-up checkpoint the WAL file would grow for as long as the
    writes go on."""
    monkeypatch.setattr(database, "CHECKPOINT_SECONDS", 0.1)
    server = await start_server(make_settings(sqlite_url))
    try:
        db, writer = server.runtime.db, server.runtime.writer
        assert db.checkpointer is not None
        wal = f"{db.checkpointer.path}-wal"
        written = 0
        loop = asyncio.get_running_loop()
        until = loop.time() + 2.0
        n = 0
        while loop.time() < until:
            for _ in range(10):
                n += 1
                writer.insert(t.ocpp_messages, big_row(n))
                written += 2000
            await writer.commit()
        assert written > 8_000_000, "too few writes to tell"
        # Every page of every commit goes through the WAL (several times the rows
        # written, as a commit rewrites the pages it touches); started over, the
        # WAL holds only what came since the last restart.
        assert os.path.getsize(wal) < written
    finally:
        await server.stop()


async def test_closing_waits_for_a_checkpoint_still_running(sqlite_url: str) -> None:
    """A checkpoint runs on a worker thread and goes on when its task is cancelled;
    closing its connection under it would crash the process."""
    db = database.Database(sqlite_url)
    checkpointer = db.checkpointer
    assert checkpointer is not None
    checkpointer.checkpoint()  # opens its connection
    running = checkpointer._lock  # held while a checkpoint runs
    running.acquire()
    closing = asyncio.ensure_future(checkpointer.close())
    await asyncio.sleep(0.3)
    assert not closing.done()
    running.release()
    await asyncio.wait_for(closing, 5)
    assert checkpointer.checkpoint()[0] == 1  # closed: nothing more is done
    await db.dispose()
