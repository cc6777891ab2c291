"""The group-commit writer: a row the database refuses costs only its own caller,
and that caller hears of it (the charger gets InternalError, not an ack)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from conftest import PASSWORD
from plugpay.store import tables as t
from plugpay.store.database import Database
from plugpay.store.writer import BatchWriter
from support.ocpp_client import OcppClient, rows
from support.server import RunningServer

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def log_row(n: int) -> dict[str, Any]:
    return {
        "charger_id": "CP-X",
        "direction": "in",
        "message_type": 2,
        "unique_id": f"u{n}",
        "action": "Heartbeat",
        "frame": "[]",
        "at": T0,
    }


def reading(transaction_id: int | None, minute: int, wh: int) -> dict[str, Any]:
    return {
        "transaction_id": transaction_id,
        "charger_id": "CP-X",
        "connector_id": 1,
        "at": T0 + timedelta(minutes=minute),
        "energy_wh": wh,
        "power_w": None,
        "current_ma": None,
        "soc": None,
        "context": None,
        "flag": "",
    }


async def test_a_refused_row_fails_only_the_caller_that_wrote_it(database_url: str) -> None:
    db = Database(database_url)
    writer = BatchWriter(db)
    try:

        async def caller(rows_to_write: list[dict[str, Any]]) -> None:
            for row in rows_to_write:
                writer.reading(row)
            await writer.commit()

        for n in range(5):
            writer.insert(t.ocpp_messages, log_row(n), durable=False)
        # All buffered before the flusher runs: one batch. Transaction 999 does not
        # exist, so the database refuses that reading (foreign key).
        good = asyncio.create_task(caller([reading(None, 1, 100), reading(None, 2, 200)]))
        bad = asyncio.create_task(caller([reading(999, 3, 300)]))
        also_good = asyncio.create_task(caller([reading(None, 4, 400)]))
        results = await asyncio.gather(good, bad, also_good, return_exceptions=True)
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], Exception)

        stored = await all_rows(db, t.meter_readings)
        assert sorted(r["energy_wh"] for r in stored) == [100, 200, 400]
        # Log rows wait to be written together; asked for, they are all there.
        await writer.commit(best_effort=True)
        assert len(await all_rows(db, t.ocpp_messages)) == 5

        # The failure was reported once; the caller's next write is clean.
        retry = asyncio.create_task(caller([reading(None, 5, 500)]))
        await retry
    finally:
        await writer.close()
        await db.dispose()


async def test_a_database_that_is_down_fails_every_waiter_and_says_so(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
    writer = BatchWriter(db)
    try:

        async def caller(n: int) -> None:
            writer.reading(reading(None, n, n))
            await writer.commit()

        writer.insert(t.ocpp_messages, log_row(1), durable=False)
        with caplog.at_level(logging.ERROR, logger="plugpay.store.writer"):
            results = await asyncio.gather(caller(1), caller(2), caller(3), return_exceptions=True)
        assert all(isinstance(r, Exception) for r in results)
        assert "could not be written" in caplog.text
    finally:
        await writer.close()
        await db.dispose()


async def all_rows(db: Database, table: Any) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        return [dict(r) for r in (await conn.execute(select(table))).mappings().all()]


async def refuse_energy(server: RunningServer, wh: int) -> None:
    """Make the database refuse any reading of exactly ``wh`` (a stand-in for a bad row)."""
    async with server.runtime.db.begin() as conn:
        if server.runtime.db.is_sqlite:
            await conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON meter_readings "
                    f"WHEN NEW.energy_wh = {wh} BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            await conn.execute(
                text(f"ALTER TABLE meter_readings ADD CONSTRAINT refuse CHECK (energy_wh <> {wh})")
            )


async def drop_refusal(server: RunningServer) -> None:
    async with server.runtime.db.begin() as conn:
        if server.runtime.db.is_sqlite:
            await conn.execute(text("DROP TRIGGER refuse"))
        else:
            await conn.execute(text("ALTER TABLE meter_readings DROP CONSTRAINT refuse"))


async def test_a_charger_whose_readings_cannot_be_stored_is_not_acknowledged(
    server: RunningServer, charger_id: str
) -> None:
    await server.runtime.services.chargers.add_charger("CP-2", PASSWORD, connectors=1)
    cp1 = await OcppClient.connect(server.ocpp_url, charger_id, PASSWORD, "1.6")
    cp2 = await OcppClient.connect(server.ocpp_url, "CP-2", PASSWORD, "1.6")
    await refuse_energy(server, 666)
    try:
        meter = {"timestamp": T0.isoformat(), "sampledValue": [{"value": "666"}]}
        other = {"timestamp": T0.isoformat(), "sampledValue": [{"value": "777"}]}
        refused, acked = await asyncio.gather(
            cp1.call_frame("MeterValues", {"connectorId": 1, "meterValue": [meter]}),
            cp2.call_frame("MeterValues", {"connectorId": 1, "meterValue": [other]}),
        )
        assert refused[0] == 4 and refused[2] == "InternalError"
        assert acked[0] == 3
        assert await cp1.heartbeat_works()  # one refused message does not poison the next

        stored = await rows(server.runtime, t.meter_readings)
        assert [(r["charger_id"], r["energy_wh"]) for r in stored] == [("CP-2", 777)]

        # Once the database takes it, the charger's retry is stored (once).
        await drop_refusal(server)
        assert (await cp1.call("MeterValues", {"connectorId": 1, "meterValue": [meter]})) == {}
        stored = await rows(
            server.runtime, t.meter_readings, t.meter_readings.c.charger_id == charger_id
        )
        assert [r["energy_wh"] for r in stored] == [666]
        log = await server.runtime.message_log.recent(charger_id, 50)
        assert sum(1 for m in log if m.action == "MeterValues" and m.direction == "in") == 2
    finally:
        await cp1.close()
        await cp2.close()


async def test_rows_of_one_table_with_different_columns_are_all_written_whole(
    database_url: str,
) -> None:
    db = Database(database_url)
    writer = BatchWriter(db)
    try:
        exchange = {**log_row(2), "answer": '[3,"u2",{}]', "answered_at": T0}
        # One batch, three shapes of message-log row in either order.
        writer.insert(t.ocpp_messages, log_row(1), durable=False)
        writer.insert(t.ocpp_messages, exchange, durable=False)
        writer.insert(t.ocpp_messages, {**log_row(3), "answer": None}, durable=False)
        await writer.commit(best_effort=True)
        stored = {r["unique_id"]: r for r in await all_rows(db, t.ocpp_messages)}
        assert set(stored) == {"u1", "u2", "u3"}
        assert stored["u2"]["answer"] == '[3,"u2",{}]'
        assert stored["u2"]["answered_at"] is not None
        assert stored["u1"]["answer"] is None
    finally:
        await writer.close()
        await db.dispose()


async def test_log_rows_are_written_together_after_a_short_wait(database_url: str) -> None:
    from plugpay.store import writer as writer_module

    db = Database(database_url)
    writer = BatchWriter(db)
    try:
        writer.insert(t.ocpp_messages, log_row(1), durable=False)
        # A durable row is written at once; the log row does not ride along yet.
        writer.reading(reading(None, 1, 100))
        await writer.commit()
        assert await all_rows(db, t.ocpp_messages) == []
        # Nobody asks for it: it is written after LOG_DELAY_SECONDS all the same.
        await asyncio.sleep(writer_module.LOG_DELAY_SECONDS + 0.3)
        assert [r["unique_id"] for r in await all_rows(db, t.ocpp_messages)] == ["u1"]
        # Many waiting rows go out without waiting for the timer.
        for n in range(writer_module.LOG_BATCH_ROWS):
            writer.insert(t.ocpp_messages, log_row(10_000 + n), durable=False)
        for _ in range(15):  # well inside LOG_DELAY_SECONDS: not the timer's doing
            await asyncio.sleep(0.01)
            if len(await all_rows(db, t.ocpp_messages)) > 1:
                break
        assert len(await all_rows(db, t.ocpp_messages)) == 1 + writer_module.LOG_BATCH_ROWS
    finally:
        await writer.close()
        await db.dispose()
