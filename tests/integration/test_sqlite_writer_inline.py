"""On SQLite the batch writer runs small batches on the event loop. It must never
make the loop wait: not for another process's write lock, not for a big batch."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from typing import Any

from sqlalchemy import make_url
from test_ocpp_writer import all_rows, log_row, reading

from plugpay.store import tables as t
from plugpay.store import writer as writer_module
from plugpay.store.database import Database
from plugpay.store.writer import BatchWriter


async def _longest_stall(until: asyncio.Future[Any]) -> float:
    """The longest the loop went without running this task, until ``until`` is done."""
    loop = asyncio.get_running_loop()
    worst, last = 0.0, loop.time()
    while not until.done():
        await asyncio.sleep(0.01)
        now = loop.time()
        worst, last = max(worst, now - last), now
    return worst


async def count(db: Database, table: Any) -> int:
    return len(await all_rows(db, table))


async def test_a_write_lock_held_elsewhere_never_stalls_the_loop(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    writer = BatchWriter(db)
    path = make_url(sqlite_url).database
    locked, release = threading.Event(), threading.Event()

    def other_process() -> None:  # another program writing to the same file
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(5)
        conn.execute("ROLLBACK")
        conn.close()

    holder = threading.Thread(target=other_process)
    try:
        async with db.connect():  # the engine's connection exists before the lock is taken
            pass
        holder.start()
        assert await asyncio.to_thread(locked.wait, 5)
        loop = asyncio.get_running_loop()
        loop.call_later(0.6, release.set)

        async def write() -> None:
            writer.reading(reading(None, 1, 100))
            await writer.commit()

        written = asyncio.ensure_future(write())
        stall = await _longest_stall(written)
        await written
        # The batch waited for the lock on the database thread, not on the loop
        # (which would have stalled ~0.6 s, or deadlocked with a holder on it).
        assert stall < 0.3
        assert await count(db, t.meter_readings) == 1
    finally:
        release.set()
        holder.join(5)
        await writer.close()
        await db.dispose()


async def test_a_big_batch_is_written_off_the_loop(sqlite_url: str, monkeypatch: Any) -> None:
    db = Database(sqlite_url)
    writer = BatchWriter(db)
    monkeypatch.setattr(writer_module, "INLINE_ROWS", 10)
    calls: list[str] = []
    real = writer_module.run_plan

    def spy(*args: Any, wait: bool = True) -> bool:
        calls.append(threading.current_thread().name)
        return real(*args, wait=wait)

    monkeypatch.setattr(writer_module, "run_plan", spy)
    try:
        for n in range(5):  # small: on the loop
            writer.insert(t.ocpp_messages, log_row(n))
        await writer.commit()
        for n in range(5, 50):  # big: on the database thread
            writer.insert(t.ocpp_messages, log_row(n))
        await writer.commit()
        main = threading.main_thread().name
        assert calls[0] == main and calls[1] != main
        assert await count(db, t.ocpp_messages) == 50
    finally:
        await writer.close()
        await db.dispose()


async def test_a_transaction_left_open_on_the_connection_is_not_committed(
    sqlite_url: str,
) -> None:
    """Connections go back to the pool as they are; a batch must not commit what
    another user of the connection began and never finished."""
    db = Database(sqlite_url)
    writer = BatchWriter(db)
    try:
        raw = await db.engine.raw_connection()
        driver: Any = raw.driver_connection
        await driver.execute("BEGIN")
        await driver.execute(
            "INSERT INTO ocpp_messages (charger_id, direction, frame, at)"
            " VALUES ('CP-LEFT', 'in', '[]', '2026-01-01 00:00:00.000000')"
        )
        raw.close()
        writer.reading(reading(None, 1, 100))
        await writer.commit()
        assert await count(db, t.meter_readings) == 1
        assert await count(db, t.ocpp_messages) == 0
    finally:
        await writer.close()
        await db.dispose()
