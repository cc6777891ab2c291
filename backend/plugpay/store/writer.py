"""Group commit for the hot OCPP messages.

MeterValues, TransactionEvent(Updated), heartbeats and the message log arrive
thousands of times a minute. Instead of one database transaction each, rows
are buffered and written by one flusher in a single transaction per batch; a
caller that must not answer the charger before its data is durable awaits
``commit()``, which resolves once the batch holding its rows is committed.
While one batch is being written the next one fills, so the batch size grows
with the load and an idle server still writes at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from sqlalchemy import Table, and_, bindparam, or_, update
from sqlalchemy.dialects import postgresql, sqlite

from plugpay.store import tables
from plugpay.store.database import Database

log = logging.getLogger(__name__)


class BatchWriter:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._inserts: dict[tuple[str, bool], list[dict[str, Any]]] = defaultdict(list)
        self._heartbeats: dict[str, Any] = {}
        self._latest: dict[int, tuple[Any, int]] = {}
        self._waiter: asyncio.Future[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    # -- buffering (no I/O) -------------------------------------------------
    def insert(self, table: Table, row: dict[str, Any], *, ignore_conflicts: bool = False) -> None:
        self._inserts[(table.name, ignore_conflicts)].append(row)
        self._kick()

    def heartbeat(self, charger_id: str, at: Any) -> None:
        """Record a heartbeat; only the latest per charger is written."""
        self._heartbeats[charger_id] = at
        self._kick()

    def latest_reading(self, transaction_pk: int, at: Any, energy_wh: int) -> None:
        current = self._latest.get(transaction_pk)
        if current is None or current[0] < at:
            self._latest[transaction_pk] = (at, energy_wh)
        self._kick()

    async def commit(self) -> None:
        """Wait until everything buffered so far is committed."""
        if self._waiter is None:
            if not self._pending():
                return
            self._waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._waiter)

    # -- flushing -----------------------------------------------------------
    def _pending(self) -> bool:
        return bool(self._inserts or self._heartbeats or self._latest)

    def _kick(self) -> None:
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._pending():
            inserts, self._inserts = self._inserts, defaultdict(list)
            heartbeats, self._heartbeats = self._heartbeats, {}
            latest, self._latest = self._latest, {}
            waiter, self._waiter = self._waiter, None
            try:
                await self._write(inserts, heartbeats, latest)
            except Exception as exc:
                log.exception("batch write failed")
                if waiter is not None and not waiter.done():
                    waiter.set_exception(exc)
                    waiter.exception()  # mark retrieved; callers re-raise it
                continue
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def _write(
        self,
        inserts: dict[tuple[str, bool], list[dict[str, Any]]],
        heartbeats: dict[str, Any],
        latest: dict[int, tuple[Any, int]],
    ) -> None:
        dialect = postgresql if not self._db.is_sqlite else sqlite
        async with self._db.begin() as connection:
            for (name, ignore_conflicts), rows in inserts.items():
                table = tables.metadata.tables[name]
                statement = dialect.insert(table)
                if ignore_conflicts:
                    statement = statement.on_conflict_do_nothing()
                await connection.execute(statement, rows)
            if heartbeats:
                await connection.execute(
                    update(tables.chargers)
                    .where(tables.chargers.c.id == bindparam("charger_id"))
                    .values(last_seen_at=bindparam("at"), last_heartbeat_at=bindparam("at")),
                    [{"charger_id": k, "at": v} for k, v in heartbeats.items()],
                )
            if latest:
                t = tables.transactions
                await connection.execute(
                    update(t)
                    .where(
                        and_(
                            t.c.id == bindparam("pk"),
                            or_(
                                t.c.last_reading_at.is_(None), t.c.last_reading_at < bindparam("at")
                            ),
                        )
                    )
                    .values(last_reading_at=bindparam("at"), last_energy_wh=bindparam("wh")),
                    [{"pk": k, "at": at, "wh": wh} for k, (at, wh) in latest.items()],
                )

    async def close(self) -> None:
        self._closed = True
        if self._pending():
            self._kick()
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
