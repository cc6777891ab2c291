"""Migration 0006 on databases that version 0005 filled: the one-row ledger and the
payment_jobs queue become payments, balanced journals and jobs; down to 0005 and up
again. On an empty database of its own per test: an SQLite file, and a throwaway
PostgreSQL database when PLUGPAY_TEST_DATABASE_URL is set."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect, select, text
from sqlalchemy.engine import Connection

from conftest import BACKENDS, make_settings
from plugpay.domain.ledger import vat_share
from plugpay.payments.demo_gateway import DemoGateway
from plugpay.runtime import build_runtime
from plugpay.services.ports import HoldRequest
from plugpay.store import tables as t
from plugpay.store.clock import aware
from plugpay.store.database import Database, create_engine
from plugpay.store.demo_payments import SqlDemoPaymentStore
from plugpay.store.migrate import alembic_config, upgrade
from support.databases import PG_URL

EXAMPLES = Path(__file__).resolve().parents[2] / "infra" / "examples"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # when the sessions were paid
HOLD = 5000


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


class PostgresAdmin:
    def __init__(self, url: str) -> None:
        self.dsn = url.replace("postgresql+asyncpg", "postgresql")
        self.base = url.rpartition("/")[0]

    def execute(self, statement: str) -> None:
        async def go() -> None:
            conn = await asyncpg.connect(self.dsn)
            try:
                await conn.execute(statement)
            finally:
                await conn.close()

        run(go())

    def create(self) -> tuple[str, str]:
        name = f"plugpay_migration_{uuid.uuid4().hex[:12]}"
        self.execute(f'CREATE DATABASE "{name}"')
        return name, f"{self.base}/{name}"

    def drop(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of a database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/{uuid.uuid4().hex}.db"
        return
    assert PG_URL
    admin = PostgresAdmin(PG_URL)
    name, url = admin.create()
    try:
        yield url
    finally:
        admin.drop(name)


@pytest.fixture
def second_empty_database(empty_database: str, tmp_path: Path) -> Iterator[str]:
    """Another empty database on the same backend (to compare schemas with)."""
    if empty_database.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path}/{uuid.uuid4().hex}.db"
        return
    assert PG_URL
    admin = PostgresAdmin(PG_URL)
    name, url = admin.create()
    try:
        yield url
    finally:
        admin.drop(name)


# -- how version 0005 stored its rows ---------------------------------------------------


class Old:
    """Rows written through the tables as they are at revision 0005 (reflected), so
    values are stored exactly as SQLAlchemy stored them for the 0005 code."""

    def __init__(self, url: str) -> None:
        self.url = url

    def insert(self, table: str, *rows: dict[str, Any]) -> None:
        async def go() -> None:
            engine = create_engine(self.url)
            try:
                async with engine.begin() as conn:
                    meta = MetaData()
                    await conn.run_sync(lambda c: meta.reflect(c, only=[table]))
                    await conn.execute(meta.tables[table].insert(), list(rows))
            finally:
                await engine.dispose()

        run(go())

    def site_charger_and_tariff(self) -> None:
        self.insert("sites", {"id": 1, "name": "Depot", "time_zone": "UTC", "created_at": T0})
        self.insert(
            "chargers",
            {
                "id": "CP-1",
                "site_id": 1,
                "password_hash": "x",
                "connector_count": 2,
                "connected": False,
                "created_at": T0,
            },
        )
        self.insert(
            "tariffs",
            {
                "id": 1,
                "tariff_id": "SIMPLE-KWH",
                "version": 1,
                "currency": "EUR",
                "ocpi": (EXAMPLES / "simple-per-kwh.json").read_text(),
                "created_at": T0,
            },
        )

    def session(
        self,
        session_id: str,
        state: str,
        *,
        connector_id: int = 1,
        paid: bool = True,
        captured: int | None = None,
        breakdown: dict[str, Any] | None = None,
        reason: str | None = None,
        payment_ref: str | None = None,
    ) -> None:
        settled_at = T0 + timedelta(hours=1) if state in ("SETTLED", "NEEDS_REVIEW") else None
        self.insert(
            "charging_sessions",
            {
                "id": session_id,
                "charger_id": "CP-1",
                "connector_id": connector_id,
                "state": state,
                "owner_hash": "0" * 64,
                "lang": "en",
                "tariff_pk": 1,
                "time_zone": "UTC",
                "currency": "EUR",
                "hold_minor": HOLD,
                "id_tag": session_id[:20],
                "payment_provider": "demo",
                "payment_ref": payment_ref or f"demo_pi_{session_id}",
                "energy_wh": 10_000 if breakdown else 0,
                "cost_minor": captured or 0,
                "captured_minor": captured,
                "breakdown": breakdown,
                "reason": reason,
                "created_at": T0 - timedelta(minutes=1),
                "authorized_at": T0 if paid else None,
                "started_at": T0 + timedelta(minutes=1) if breakdown else None,
                "stopped_at": T0 + timedelta(minutes=50) if breakdown else None,
                "settled_at": settled_at,
                "updated_at": settled_at or T0,
                "version": 3,
            },
        )

    def capture(self, session_id: str, amount: int) -> None:
        """The 0005 ledger: one row per capture, and its payment job done."""
        at = T0 + timedelta(hours=1)
        self.insert(
            "ledger_entries",
            {
                "session_id": session_id,
                "kind": "capture",
                "amount_minor": amount,
                "currency": "EUR",
                "payment_ref": f"demo_pi_{session_id}",
                "created_at": at,
            },
        )
        self.payment_job(session_id, "capture", amount, done_at=at)

    def payment_job(
        self,
        session_id: str,
        kind: str,
        amount: int,
        *,
        attempts: int = 1,
        next_attempt_at: datetime = T0,
        give_up_at: datetime = T0 + timedelta(days=6, hours=12),
        last_error: str | None = None,
        done_at: datetime | None = None,
    ) -> None:
        self.insert(
            "payment_jobs",
            {
                "session_id": session_id,
                "kind": kind,
                "amount_minor": amount,
                "idempotency_key": f"{session_id}:{kind}",
                "attempts": attempts,
                "next_attempt_at": next_attempt_at,
                "give_up_at": give_up_at,
                "last_error": last_error,
                "done_at": done_at,
            },
        )


def breakdown(excl: str, incl: str) -> dict[str, Any]:
    """A 0005 price breakdown (the JSON of `plugpay tariff quote --json`)."""
    return {
        "currency": "EUR",
        "total_excl_vat": excl,
        "total_incl_vat": incl,
        "lines": [
            {
                "dimension": "ENERGY",
                "quantity": "10.000",
                "unit": "kWh",
                "amount_excl_vat": excl,
                "vat_rate": "19",
                "amount_incl_vat": incl,
            }
        ],
    }


# -- reading the result -------------------------------------------------------------------


def rows(url: str, table: str, order: str = "id") -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                meta = MetaData()
                await conn.run_sync(lambda c: meta.reflect(c, only=[table]))
                found = meta.tables[table]
                result = await conn.execute(select(found).order_by(found.c[order]))
                return [
                    {k: aware(v) if isinstance(v, datetime) else v for k, v in r.items()}
                    for r in result.mappings()
                ]
        finally:
            await engine.dispose()

    return list(run(go()))


def by_session(url: str, table: str) -> dict[str, dict[str, Any]]:
    return {r["session_id"]: r for r in rows(url, table)}


def journals(url: str) -> dict[str, dict[str, int]]:
    """journal key -> {account: amount}, each journal checked to balance."""
    found: dict[str, dict[str, int]] = {}
    for entry in rows(url, "ledger_entries"):
        found.setdefault(entry["journal"], {})[entry["account"]] = int(entry["amount_minor"])
    for key, lines in found.items():
        assert sum(lines.values()) == 0, (key, lines)
    return found


def movements(url: str) -> dict[str, str]:
    return {e["journal"]: e["movement"] for e in rows(url, "ledger_entries")}


def deadlines(url: str) -> dict[str, datetime | None]:
    return {r["id"]: r["deadline_at"] for r in rows(url, "charging_sessions")}


def trial_balance(url: str) -> int:
    return sum(int(e["amount_minor"]) for e in rows(url, "ledger_entries"))


def authorise(hold: int = HOLD) -> dict[str, int]:
    return {"driver_hold": hold, "hold_offset": -hold}


def capture(amount: int, vat: int) -> dict[str, int]:
    return {
        "hold_offset": amount,
        "driver_hold": -amount,
        "driver_receivable": amount,
        "operator_revenue": -(amount - vat),
        "vat_payable": -vat,
    }


def release(amount: int) -> dict[str, int]:
    return {"hold_offset": amount, "driver_hold": -amount}


# -- schemas ------------------------------------------------------------------------------


def _describe(conn: Connection) -> dict[str, Any]:
    inspector = inspect(conn)
    described: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        if table == "alembic_version":
            continue
        described[table] = {
            "columns": {
                c["name"]: (re.sub(r"\s+", " ", str(c["type"])), c["nullable"])
                for c in inspector.get_columns(table)
            },
            "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
            "unique": sorted(
                tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            ),
            "foreign keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in inspector.get_foreign_keys(table)
            ),
        }
    if conn.dialect.name == "sqlite":
        index_rows = conn.execute(
            text("SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'index'")
        )
    else:
        index_rows = conn.execute(
            text(
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            )
        )
    indexes: dict[str, str | None] = {}
    for table, name, sql in index_rows:
        if table != "alembic_version" and sql is not None:
            # Indexes by what they index (a partial index keeps its WHERE).
            indexes[f"{table}.{name}"] = re.sub(r"\s+", " ", sql).replace('"', "")
    described["indexes"] = dict(sorted(indexes.items()))
    return described


def schema(url: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return dict(await conn.run_sync(_describe))
        finally:
            await engine.dispose()

    return dict(run(go()))


def differences_from_the_tables(url: str) -> list[Any]:
    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, t.metadata))

    async def go() -> list[Any]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return list(await conn.run_sync(diff))
        finally:
            await engine.dispose()

    return list(run(go()))


def demo_hold(url: str, session_id: str) -> str:
    """A hold the demo provider authorised (its intents table is the same at 0005)."""

    async def go() -> str:
        db = Database(url)
        try:
            gateway = DemoGateway(SqlDemoPaymentStore(db))
            state = await gateway.create_hold(
                HoldRequest(session_id, HOLD, "EUR", "Charging", f"{session_id}:hold")
            )
            confirmed = await gateway.confirm(state.ref, "approve")
            assert confirmed.status == "requires_capture"
            return state.ref
        finally:
            await db.dispose()

    return str(run(go()))


# -- the tests ------------------------------------------------------------------------------


def test_an_empty_0005_database_goes_up_down_and_up_again(
    empty_database: str, second_empty_database: str
) -> None:
    upgrade(empty_database, "0005")
    upgrade(second_empty_database, "0005")
    at_0005 = schema(second_empty_database)
    assert {"ledger_entries", "payment_jobs"} <= set(at_0005)

    upgrade(empty_database)
    assert differences_from_the_tables(empty_database) == []
    downgrade(empty_database, "0005")
    assert schema(empty_database) == at_0005
    upgrade(empty_database)
    assert differences_from_the_tables(empty_database) == []
    upgrade(second_empty_database)
    assert schema(empty_database) == schema(second_empty_database)


def test_settled_canceled_and_running_sessions_become_payments_with_balanced_journals(
    empty_database: str,
) -> None:
    url = empty_database
    upgrade(url, "0005")
    old = Old(url)
    old.site_charger_and_tariff()
    # Settled: 12.34 captured of a 50.00 hold, 1.97 of it VAT.
    old.session("s-settled", "SETTLED", captured=1234, breakdown=breakdown("10.37", "12.34"))
    old.capture("s-settled", 1234)
    # Priced over the hold: the whole hold captured, VAT in proportion (50.00 of 59.50).
    old.session(
        "s-over-hold",
        "NEEDS_REVIEW",
        connector_id=2,
        captured=HOLD,
        breakdown=breakdown("50.00", "59.50"),
        reason=f"price 5950 exceeded the hold {HOLD}",
    )
    old.capture("s-over-hold", HOLD)
    # Canceled after the hold was placed (released), and before paying at all.
    old.session("s-canceled", "CANCELED")
    old.payment_job("s-canceled", "cancel", 0, done_at=T0 + timedelta(minutes=2))
    old.session("s-unpaid", "CANCELED", paid=False)
    # Still charging.
    old.session("s-charging", "CHARGING")

    upgrade(url)

    payments = by_session(url, "payments")
    assert set(payments) == {"s-settled", "s-over-hold", "s-canceled", "s-unpaid", "s-charging"}
    summary = {
        sid: (
            p["status"],
            p["authorised_minor"],
            p["captured_minor"],
            p["captured_vat_minor"],
            p["refunded_minor"],
            p["provider"],
            p["ref"],
            p["currency"],
        )
        for sid, p in payments.items()
    }
    over_vat = vat_share(HOLD, 5950, 950)
    assert summary == {
        "s-settled": ("captured", HOLD, 1234, 197, 0, "demo", "demo_pi_s-settled", "EUR"),
        "s-over-hold": ("captured", HOLD, HOLD, over_vat, 0, "demo", "demo_pi_s-over-hold", "EUR"),
        "s-canceled": ("released", HOLD, 0, 0, 0, "demo", "demo_pi_s-canceled", "EUR"),
        "s-unpaid": ("created", 0, 0, 0, 0, "demo", "demo_pi_s-unpaid", "EUR"),
        "s-charging": ("authorised", HOLD, 0, 0, 0, "demo", "demo_pi_s-charging", "EUR"),
    }

    books = journals(url)
    assert books == {
        "authorise:s-settled": authorise(),
        "capture:s-settled": capture(1234, 197),
        "release:s-settled": release(HOLD - 1234),
        "authorise:s-over-hold": authorise(),
        "capture:s-over-hold": capture(HOLD, over_vat),
        "authorise:s-canceled": authorise(),
        "release:s-canceled": release(HOLD),
        "authorise:s-charging": authorise(),
    }
    assert movements(url) == {
        key: {"authorise": "authorised", "capture": "captured", "release": "released"}[
            key.split(":")[0]
        ]
        for key in books
    }
    assert trial_balance(url) == 0
    entries = rows(url, "ledger_entries")
    by_id = {p["id"]: sid for sid, p in payments.items()}
    assert all(by_id[e["payment_id"]] == e["session_id"] for e in entries)
    assert all(e["currency"] == "EUR" for e in entries)
    captured_at = {e["created_at"] for e in entries if e["journal"] == "capture:s-settled"}
    assert captured_at == {T0 + timedelta(hours=1)}  # when 0005 captured it

    # Nothing was queued (the old jobs were done); unfinished sessions got a deadline.
    assert rows(url, "jobs") == []
    due = deadlines(url)
    assert due["s-settled"] is None and due["s-canceled"] is None and due["s-unpaid"] is None
    for sid in ("s-charging", "s-over-hold"):
        deadline = due[sid]
        assert deadline is not None and deadline <= datetime.now(UTC) + timedelta(seconds=5)
    assert differences_from_the_tables(url) == []


def test_a_capture_still_queued_in_0005_becomes_a_capture_job_that_books_its_vat(
    empty_database: str,
) -> None:
    url = empty_database
    upgrade(url, "0005")
    old = Old(url)
    old.site_charger_and_tariff()
    ref = demo_hold(url, "s-queued")
    # Stopped, priced 10.00 (1.60 VAT); the capture failed three times and waits.
    old.session(
        "s-queued", "STOPPED", captured=None, breakdown=breakdown("8.40", "10.00"), payment_ref=ref
    )
    retry_at = datetime.now(UTC) - timedelta(minutes=1)
    give_up_at = T0 + timedelta(days=6, hours=12)
    old.payment_job(
        "s-queued",
        "capture",
        1000,
        attempts=3,
        next_attempt_at=retry_at,
        give_up_at=give_up_at,
        last_error="connection refused",
    )

    upgrade(url)

    [job] = rows(url, "jobs")
    payload = json.loads(job["payload"]) if isinstance(job["payload"], str) else job["payload"]
    assert (job["kind"], job["key"], job["session_id"], job["state"]) == (
        "payment.capture",
        "capture:s-queued",
        "s-queued",
        "pending",
    )
    assert (job["attempts"], job["last_error"]) == (3, "connection refused")
    assert job["run_at"] == retry_at and job["give_up_at"] == give_up_at
    assert job["every_seconds"] is None and job["worker"] is None
    # The job carries what a capture queued by the new code carries: amount and VAT.
    assert payload == {"amount_minor": 1000, "vat_minor": 160}
    payment = by_session(url, "payments")["s-queued"]
    assert (payment["status"], payment["authorised_minor"], payment["captured_minor"]) == (
        "authorised",
        HOLD,
        0,
    )
    assert journals(url) == {"authorise:s-queued": authorise()}
    assert deadlines(url)["s-queued"] is not None

    # The new worker runs it: captured once, VAT split as the breakdown says.
    async def work() -> int:
        runtime = build_runtime(make_settings(url))
        try:
            return await runtime.services.worker.run_due()
        finally:
            await runtime.close()

    assert run(work()) == 1
    [done] = rows(url, "jobs")
    assert done["state"] == "done" and done["attempts"] == 4
    session = {r["id"]: r for r in rows(url, "charging_sessions")}["s-queued"]
    assert session["state"] == "SETTLED" and session["captured_minor"] == 1000
    assert journals(url) == {
        "authorise:s-queued": authorise(),
        "capture:s-queued": capture(1000, 160),
        "release:s-queued": release(HOLD - 1000),
    }
    assert by_session(url, "payments")["s-queued"]["captured_vat_minor"] == 160
    assert trial_balance(url) == 0


def test_a_filled_database_goes_down_to_0005_and_up_again(
    empty_database: str, second_empty_database: str
) -> None:
    url = empty_database
    upgrade(url, "0005")
    old = Old(url)
    old.site_charger_and_tariff()
    old.session("s-settled", "SETTLED", captured=1234, breakdown=breakdown("10.37", "12.34"))
    old.capture("s-settled", 1234)
    old.session("s-charging", "CHARGING")
    upgrade(url)
    first_books = journals(url)
    first_payments = {
        sid: {k: v for k, v in p.items() if k != "id"}
        for sid, p in by_session(url, "payments").items()
    }

    downgrade(url, "0005")
    upgrade(second_empty_database, "0005")
    assert schema(url) == schema(second_empty_database)
    # The captures are the old ledger again.
    assert [
        (r["session_id"], r["kind"], r["amount_minor"], r["currency"], r["payment_ref"])
        for r in rows(url, "ledger_entries")
    ] == [("s-settled", "capture", 1234, "EUR", "demo_pi_s-settled")]

    upgrade(url)
    assert differences_from_the_tables(url) == []
    assert journals(url) == first_books
    assert {
        sid: {k: v for k, v in p.items() if k != "id"}
        for sid, p in by_session(url, "payments").items()
    } == first_payments
    assert trial_balance(url) == 0
