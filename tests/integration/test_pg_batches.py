"""PostgreSQL: a group-commit batch is one statement over arrays, and writes what
one statement per row would have written."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from plugpay.store import tables as t
from plugpay.store.batches import Program, Step, one_row
from plugpay.store.database import Database
from plugpay.store.writer import BatchWriter
from support.databases import PG_URL, PostgresDatabases

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (PLUGPAY_TEST_DATABASE_URL)")

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def pg_url(postgres_databases: PostgresDatabases | None) -> str:
    assert postgres_databases is not None
    return postgres_databases.fresh()


def reading(transaction_id: int, minute: int, wh: int | None, power: int | None) -> dict[str, Any]:
    return {
        "transaction_id": transaction_id,
        "charger_id": "CP-B",
        "connector_id": 1,
        "at": T0 + timedelta(minutes=minute),
        "energy_wh": wh,
        "power_w": power,
        "current_ma": None,
        "soc": None,
        "context": None,
        "flag": "",
    }


async def transactions(db: Database, count: int) -> list[int]:
    async with db.begin() as conn:
        await conn.execute(
            insert(t.chargers).values(
                id="CP-B", password_hash="x", connector_count=1, created_at=T0
            )
        )
        ids = []
        for n in range(count):
            row = await conn.execute(
                insert(t.transactions)
                .values(
                    charger_id="CP-B",
                    connector_id=1,
                    status="active",
                    # The second already heard of a later reading than this batch brings.
                    last_reading_at=T0 + timedelta(hours=1) if n == 1 else None,
                    last_energy_wh=9_999 if n == 1 else None,
                    created_at=T0,
                    updated_at=T0,
                )
                .returning(t.transactions.c.id)
            )
            ids.append(int(row.scalar_one()))
    return ids


async def test_a_batch_of_many_rows_and_tables_is_one_statement(pg_url: str) -> None:
    db = Database(pg_url)
    writer = BatchWriter(db)
    try:
        first, second, third = await transactions(db, 3)
        await writer.commit()
        queries: list[str] = []
        conn = await writer._held_connection()  # the flusher's own connection
        conn.add_query_logger(lambda record: queries.append(record.query))

        async def batch(minute: int) -> None:
            writer.insert(
                t.ocpp_messages,
                {"charger_id": "CP-B", "direction": "in", "frame": f"[{minute}]", "at": T0},
            )
            for pk in (first, second, third):
                writer.reading(reading(pk, minute, 100 * minute + pk, None))
                writer.latest_reading(pk, T0 + timedelta(minutes=minute), 100 * minute + pk)
            # The same instant twice: merged into one row, the gap filled.
            writer.reading(reading(first, minute + 1, 100 * minute + 50, None))
            writer.reading(reading(first, minute + 1, None, 7_000))
            writer.heartbeat("CP-B", T0 + timedelta(minutes=minute + 2))
            await writer.commit()

        await batch(1)  # the first use of each array type asks the server about it
        queries.clear()
        await batch(3)
        assert len(queries) == 1 and queries[0].startswith("WITH w0 AS (")

        async with db.connect() as c:
            stored = (await c.execute(select(t.meter_readings))).mappings().all()
            tx = {r["id"]: r for r in (await c.execute(select(t.transactions))).mappings().all()}
            charger = (await c.execute(select(t.chargers))).mappings().one()
            logged = (await c.execute(select(t.ocpp_messages))).mappings().all()
        readings = {(r["transaction_id"], r["at"]): r for r in stored}
        assert len(stored) == 8
        merged = readings[(first, T0 + timedelta(minutes=4))]
        assert (merged["energy_wh"], merged["power_w"]) == (350, 7_000)
        assert tx[first]["last_energy_wh"] == 300 + first
        assert tx[second]["last_energy_wh"] == 9_999  # never moved back
        assert tx[third]["last_reading_at"] == T0 + timedelta(minutes=3)
        assert charger["last_heartbeat_at"] == T0 + timedelta(minutes=5)
        assert sorted(r["frame"] for r in logged) == ["[1]", "[3]"]
    finally:
        await writer.close()
        await db.dispose()


async def terminate_all(url: str) -> None:
    """Close, from the server's side, every other connection to the test's database."""
    admin = Database(url)
    try:
        async with admin.connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid != pg_backend_pid()"
                )
            )
    finally:
        await admin.dispose()


async def test_a_connection_the_server_closed_is_replaced_at_checkout(pg_url: str) -> None:
    """No ping per checkout: a pooled connection the server has closed (a restart,
    an idle timeout) is known closed by its socket and replaced, not handed out."""
    db = Database(pg_url)
    writer = BatchWriter(db)
    try:
        async with db.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await terminate_all(pg_url)
        await asyncio.sleep(0.2)  # the socket's end reaches the pooled connection
        async with db.connect() as conn:
            assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid
        # And again for the writer's programs, which take theirs from the same pool.
        await terminate_all(pg_url)
        await asyncio.sleep(0.2)
        found = await writer.run(one_row(select(t.chargers.c.id), {}), write=False)
        assert found is None
    finally:
        await writer.close()
        await db.dispose()


async def test_a_program_run_as_one_statement_may_not_run_a_second(pg_url: str) -> None:
    """``single`` programs run without BEGIN and COMMIT: a second statement would be
    a transaction of its own, so it is refused before it runs."""
    db = Database(pg_url)
    writer = BatchWriter(db)
    charger = {"id": "CP-S", "password_hash": "x", "connector_count": 1, "created_at": T0}

    def two_inserts() -> Program[None]:
        yield Step(insert(t.chargers), charger)
        yield Step(insert(t.chargers), {**charger, "id": "CP-T"})

    try:
        with pytest.raises(RuntimeError, match="second statement"):
            await writer.run(two_inserts(), single=True)
        async with db.connect() as conn:
            ids = (await conn.execute(select(t.chargers.c.id))).scalars().all()
        assert ids == ["CP-S"]  # the first was its own transaction, the second never ran
    finally:
        await writer.close()
        await db.dispose()
