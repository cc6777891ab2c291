"""Group commit for the hot OCPP messages.

MeterValues, TransactionEvent(Updated), heartbeats and the message log arrive
thousands of times a minute. Instead of one database transaction each, rows
are buffered and written by one flusher in a single transaction per batch; a
caller that must not answer the charger before its data is durable awaits
``commit()``, which resolves once the batch holding its rows is written.
While one batch is being written the next one fills, so the batch size grows
with the load and an idle server still writes at once.

Best-effort rows (the message log) wait, up to ``LOG_DELAY_SECONDS`` or
``LOG_BATCH_ROWS`` rows, and then ride with a batch of durable rows (or make
one). Written together, many rows share the index pages they touch: one
write per page for dozens of log rows instead of one per batch.

One bad row must not take the rows of other chargers with it. When the
database refuses a batch for something in the data (a constraint, a value
out of range), the batch is split in halves and retried until the refused
rows are found; only they are dropped, logged, and reported to the task that
buffered them, whose next ``commit()`` raises. A database that is down fails
the whole batch the same way: every waiter hears of it, nothing is silent.

On SQLite a batch is a handful of ``executemany`` calls on the server's one
connection, without SQLAlchemy in between. A small batch runs on the event
loop itself, which costs less than handing it to aiosqlite's thread and back;
a big one, or one that would have to wait for another process's write lock,
runs on that thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

from plugpay.store import tables
from plugpay.store.batches import Batch, Item, Owner, Program, sorted_rows
from plugpay.store.database import Database
from plugpay.store.pg_bulk import bulk_sql, columns, combined
from plugpay.store.readings import merge_readings, merge_statement
from plugpay.store.sqlite_batch import (
    Prepared,
    checkpoint_before_batch,
    heartbeat_statement,
    latest_statement,
    loose_seen_statement,
    run_plan,
    run_steps,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


# How long best-effort rows wait to be written together, and how many at most.
LOG_DELAY_SECONDS = 0.25
LOG_BATCH_ROWS = 2000
# SQLite: a batch of up to this many rows is written on the event loop (a few
# milliseconds at most); a bigger one on the database thread.
INLINE_ROWS = 600


Plan = list[tuple[str, list[Sequence[Any]]]]
# Readings outside any transaction: (insert, rows, and where in a row its charger,
# connector and time are), each row looked for first.
LoosePlan = tuple[str, list[Sequence[Any]], int, int, int]


def _row_count(status: str) -> int:
    """Rows an asyncpg ``execute`` changed, from its status ("INSERT 0 1", "UPDATE 3")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _is_data_error(exc: BaseException) -> bool:
    """True when the database refused the rows themselves, not the connection."""
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError):
        return False
    if isinstance(exc, sqlite3.OperationalError | sqlite3.InterfaceError):
        return False
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return False
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):  # asyncpg, straight from the server: its own verdict
        return sqlstate[:2] in ("22", "23")  # a data exception, a constraint
    if isinstance(exc, OSError | TimeoutError) or type(exc).__module__.startswith("asyncpg"):
        return False  # the connection went (asyncpg's InterfaceError and the like)
    return isinstance(exc, Exception)


class BatchWriter:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._dialect: Any = sqlite if db.is_sqlite else postgresql
        self._buffer: Batch | None = None
        self._in_flight: Batch | None = None
        self._flusher: asyncio.Task[None] | None = None
        # The loop the flusher runs on, asked for the current task directly: asking
        # the running loop costs a getpid() system call per row on Python 3.11.
        self._loop: asyncio.AbstractEventLoop | None = None
        # Best-effort rows waiting for the next batch, and the timer that writes
        # them when no batch comes.
        self._lazy: list[Item] = []
        self._lazy_timer: asyncio.TimerHandle | None = None
        self._lazy_due = False
        self._statements: dict[Any, Prepared] = {}
        # PostgreSQL: the connection the flusher keeps while batches follow each other.
        self._held: Any = None
        # SQLite: work handed to aiosqlite's thread and not finished there yet.
        self._thread_jobs: set[object] = set()
        # Failures not yet reported to the task whose rows failed.
        self._failures: weakref.WeakKeyDictionary[asyncio.Task[Any], BaseException] = (
            weakref.WeakKeyDictionary()
        )

    # -- buffering (no I/O) -------------------------------------------------
    def _owner(self) -> Owner:
        """The task buffering a row: it hears of the row's failure at its next commit."""
        if self._loop is not None:
            return asyncio.current_task(self._loop)
        try:
            return asyncio.current_task()
        except RuntimeError:
            return None

    def _batch(self) -> Batch:
        if self._buffer is None:
            self._buffer = Batch()
        self._kick()
        return self._buffer

    def insert(
        self,
        table: Table,
        row: dict[str, Any],
        *,
        ignore_conflicts: bool = False,
        durable: bool = True,
    ) -> None:
        """Buffer an insert. ``durable=False`` rows (the message log) are best effort: if
        the database refuses one it is logged, and no ``commit()`` raises for it."""
        if not durable:
            self._lazy.append(Item("insert", table.name, row, set(), ignore_conflicts))
            if self._lazy_timer is None:
                self._lazy_timer = asyncio.get_running_loop().call_later(
                    LOG_DELAY_SECONDS, self._flush_lazy
                )
            elif len(self._lazy) >= LOG_BATCH_ROWS:
                self._flush_lazy()
            return
        self._batch().items.append(
            Item("insert", table.name, row, {self._owner()}, ignore_conflicts=ignore_conflicts)
        )

    def reading(self, row: dict[str, Any]) -> None:
        """Buffer a meter reading. A reading of a transaction at an instant that is
        already stored fills in what is missing (a repeat changes nothing); a
        reading outside any transaction is stored once per connector and instant."""
        self._batch().items.append(
            Item("reading", tables.meter_readings.name, row, {self._owner()})
        )

    def heartbeat(self, charger_id: str, at: Any) -> None:
        """Record a heartbeat; only the latest per charger is written."""
        batch = self._batch()
        item = batch.heartbeats.get(charger_id)
        if item is None:
            batch.heartbeats[charger_id] = Item(
                "heartbeat",
                tables.chargers.name,
                {"charger_id": charger_id, "at": at},
                {self._owner()},
            )
        else:
            item.row["at"] = max(item.row["at"], at)
            item.owners.add(self._owner())

    def latest_reading(self, transaction_pk: int, at: Any, energy_wh: int) -> None:
        batch = self._batch()
        item = batch.latest.get(transaction_pk)
        if item is None:
            batch.latest[transaction_pk] = Item(
                "latest",
                tables.transactions.name,
                {"pk": transaction_pk, "at": at, "wh": energy_wh},
                {self._owner()},
            )
            return
        item.owners.add(self._owner())
        if item.row["at"] < at:
            item.row.update(at=at, wh=energy_wh)

    async def commit(self, *, best_effort: bool = False) -> None:
        """Wait until everything buffered so far is written; with ``best_effort``
        also the best-effort rows, which are otherwise left to ride with a later batch.

        Raises the error of any row of the calling task that the database refused
        since its last commit; other tasks' failures are theirs to hear about.
        """
        if best_effort and self._lazy:
            self._flush_lazy()
        # Batches are written one after the other: the newest one done means all are.
        batch = self._buffer if self._buffer is not None else self._in_flight
        if batch is not None and not batch.written:
            waiter = (self._loop or asyncio.get_running_loop()).create_future()
            batch.waiters.append(waiter)
            await waiter
        owner = self._owner()
        if owner is not None:
            failure = self._failures.pop(owner, None)
            if failure is not None:
                raise failure

    # -- flushing -----------------------------------------------------------
    def _flush_lazy(self) -> None:
        """Write the waiting best-effort rows: with the buffered batch, or alone."""
        if self._lazy_timer is not None:
            self._lazy_timer.cancel()
            self._lazy_timer = None
        if self._lazy:
            self._lazy_due = True
            self._batch()  # _run takes the waiting rows with the batch

    def _kick(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._loop = asyncio.get_running_loop()
            self._flusher = self._loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            await self._drain()
        finally:
            self._release()

    async def _drain(self) -> None:
        while self._buffer is not None:
            batch, self._buffer = self._buffer, None
            if self._lazy and self._lazy_due:
                batch.items[:0] = self._lazy
                self._lazy = []
                self._lazy_due = False
                if self._lazy_timer is not None:
                    self._lazy_timer.cancel()
                    self._lazy_timer = None
            if not batch:
                batch.finish()
                continue
            self._in_flight = batch
            items = batch.all_items()
            try:
                await self._write_isolating(items)
            except BaseException as exc:  # cancelled mid-write: nobody may think it was written
                self._fail(items, exc)
                raise
            finally:
                self._in_flight = None
                batch.finish()

    async def _write_isolating(self, items: Sequence[Item]) -> None:
        """Write ``items``; on a data error split them until the refused rows are found."""
        try:
            await self._write(items)
        except Exception as exc:
            if len(items) > 1 and _is_data_error(exc):
                half = len(items) // 2
                await self._write_isolating(items[:half])
                await self._write_isolating(items[half:])
                return
            self._fail(items, exc)

    def _fail(self, items: Sequence[Item], exc: BaseException) -> None:
        if len(items) == 1:
            item = items[0]
            log.error("the database refused a %s row (%s): %s", item.table, item.kind, exc)
        else:
            log.error("a batch of %d rows could not be written: %s", len(items), exc)
        for item in items:
            for owner in item.owners:
                if owner is not None:
                    self._failures[owner] = exc

    async def _write(self, items: Sequence[Item]) -> None:
        if self._db.is_sqlite:
            await self._write_sqlite(items)
        else:
            await self._write_core(items)

    async def _write_core(self, items: Sequence[Item]) -> None:
        """PostgreSQL: the batch's statements, compiled once, over arrays of its rows
        (``pg_bulk``), as one statement when they can be. While batches follow each
        other the flusher keeps its connection (no checkout and return per batch); it
        goes back to the pool when there is nothing left to write."""
        plan, loose = self._plan(items)
        conn = await self._held_connection()
        bulks = [bulk_sql(sql) for sql, _ in plan]
        try:
            if loose is None and all(bulks):
                # The whole batch in one statement over arrays: one round trip.
                parts = [(b, columns(p)) for b, (_, p) in zip(bulks, plan, strict=True) if b]
                sql, args = combined(parts)
                await conn.execute(sql, *args)
                return
            async with conn.transaction():
                for bulk, (sql, params) in zip(bulks, plan, strict=True):
                    if bulk is not None:  # one statement over arrays, not one per row
                        await conn.execute(bulk, *columns(params))
                    else:
                        await conn.executemany(sql, params)
                if loose is not None:
                    sql, params, charger, connector, at = loose
                    seen = self._prepared(("loose-seen",), loose_seen_statement(), ("c", "n", "a"))
                    fresh = [
                        p
                        for p in params
                        if await conn.fetchval(seen.sql, p[charger], p[connector], p[at]) is None
                    ]
                    if fresh:
                        await conn.executemany(sql, fresh)
        except BaseException as exc:
            if not _is_data_error(exc):  # the connection's state is unknown: not reused
                self._release(broken=True)
            raise

    async def _held_connection(self) -> Any:
        if self._held is None:
            self._held = await self._db.engine.raw_connection()
        return self._held.driver_connection  # asyncpg.Connection

    def _release(self, *, broken: bool = False) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        if broken:
            # Closed under the pool's feet: its ping at the next checkout finds out
            # and opens a new connection.
            with contextlib.suppress(Exception):
                held.driver_connection.terminate()
        held.close()

    def _plan(self, items: Sequence[Item]) -> tuple[Plan, LoosePlan | None]:
        """A batch's statements (prepared once for the dialect) and their parameters;
        readings outside any transaction apart: each is looked for first."""
        dialect = self._dialect
        inserts, readings, heartbeats, latest = sorted_rows(items)
        plan: Plan = []
        for (name, ignore_conflicts, keys), rows in inserts.items():
            table = tables.metadata.tables[name]
            statement = dialect.insert(table)
            if ignore_conflicts:
                statement = statement.on_conflict_do_nothing()
            prepared = self._prepared(("insert", name, ignore_conflicts, keys), statement, keys)
            plan.append((prepared.sql, prepared.params(rows)))
        loose_plan = None
        if readings:
            merged = merge_readings(readings)
            attached = [r for r in merged if r["transaction_id"] is not None]
            if attached:
                keys = tuple(attached[0])
                prepared = self._prepared(("merge", keys), merge_statement(dialect), keys)
                plan.append((prepared.sql, prepared.params(attached)))
            fresh = [r for r in merged if r["transaction_id"] is None]
            if fresh:
                keys = tuple(fresh[0])
                loose = self._prepared(("loose", keys), dialect.insert(tables.meter_readings), keys)
                loose_plan = (
                    loose.sql,
                    loose.params(fresh),
                    loose.keys.index("charger_id"),
                    loose.keys.index("connector_id"),
                    loose.keys.index("at"),
                )
        if heartbeats:
            prepared = self._prepared(("heartbeat",), heartbeat_statement(), ("charger_id", "at"))
            plan.append((prepared.sql, prepared.params(heartbeats)))
        if latest:
            prepared = self._prepared(("latest",), latest_statement(), ("pk", "at", "wh"))
            plan.append((prepared.sql, prepared.params(latest)))
        return plan, loose_plan

    # -- SQLite: the whole batch in one call on the database thread -------------
    def _prepared(self, key: Any, statement: Any, keys: Sequence[str]) -> Prepared:
        prepared = self._statements.get(key)
        if prepared is None:
            prepared = Prepared.of(statement, keys, self._db.engine.dialect)
            self._statements[key] = prepared
        return prepared

    async def _write_sqlite(self, items: Sequence[Item]) -> None:
        """Every statement of the batch runs as a plain ``executemany`` in one function
        (``run_plan``), nothing compiled: on the event loop when the batch is small,
        else in one hop to aiosqlite's thread."""
        plan, loose_plan = self._plan(items)
        checkpointer = self._db.checkpointer
        catch_up = False
        if checkpointer is not None and checkpointer.catch_up:
            checkpointer.catch_up, catch_up = False, True
        size = sum(len(params) for _, params in plan) + (len(loose_plan[1]) if loose_plan else 0)
        # Straight from the pool: no SQLAlchemy Connection around it (a greenlet
        # each to open, unwrap and close it, for a batch that uses none of it).
        raw = await self._db.engine.raw_connection()
        try:
            driver: Any = raw.driver_connection  # aiosqlite.Connection
            if catch_up:  # it syncs the files: on the database thread
                await self._on_thread(driver, checkpoint_before_batch, driver._conn)
            # The connection is ours until it goes back, and aiosqlite's thread
            # has finished everything asked of it (unless a cancelled batch still
            # runs there): a small batch runs right here, sparing the hop to that
            # thread and back (and two threads taking turns at the interpreter
            # lock, which costs more than the batch).
            if (
                size <= INLINE_ROWS
                and not self._thread_jobs
                and run_plan(driver._conn, plan, loose_plan, wait=False)
            ):
                return
            await self._on_thread(driver, run_plan, driver._conn, plan, loose_plan)
        finally:
            raw.close()

    # -- short transactions of their own -------------------------------------
    async def run(self, program: Program[T], *, write: bool = True, single: bool = False) -> T:
        """Run ``program`` now (see ``batches.Step``), not in a batch: with ``write`` in
        one database transaction of its own, durable when this returns; else as reads.
        ``single``: the program is one statement, which on PostgreSQL is then its
        own transaction (no BEGIN and COMMIT around it: two round trips fewer).

        On SQLite it runs on the server's one connection like a small batch: its
        statements compiled once, on the event loop, or on aiosqlite's thread
        when another process holds the write lock. Elsewhere through SQLAlchemy,
        its statements (built once) found in SQLAlchemy's compiled cache.
        """
        if not self._db.is_sqlite:
            return await self._run_core(program, write, single)
        raw = await self._db.engine.raw_connection()
        try:
            driver: Any = raw.driver_connection  # aiosqlite.Connection
            conn = driver._conn
            if not self._thread_jobs:
                done, value = run_steps(conn, program, self._prepare, write=write, wait=False)
                if done:
                    return cast(T, value)
            run = functools.partial(run_steps, write=write)
            _, value = await self._on_thread(driver, run, conn, program, self._prepare)
            return cast(T, value)
        finally:
            raw.close()

    def _prepare(self, statement: Any, keys: tuple[str, ...]) -> Prepared:
        return self._prepared((id(statement), keys), statement, keys)

    async def _run_core(self, program: Program[T], write: bool, single: bool) -> T:
        """PostgreSQL: the program's statements, compiled once, as asyncpg calls on a
        connection of the pool, in one transaction with ``write`` (unless ``single``)."""
        raw = await self._db.engine.raw_connection()
        conn: Any = raw.driver_connection  # asyncpg.Connection
        broken = False
        try:
            transaction = conn.transaction() if write and not single else None
            if transaction is not None:
                await transaction.start()
            try:
                result: Any = None
                steps = 0
                while True:
                    try:
                        step = program.send(result)
                    except StopIteration as stop:
                        value = stop.value
                        break
                    steps += 1
                    if single and steps > 1:
                        raise RuntimeError("a program run as single has a second statement")
                    rows = step.rows()
                    prepared = self._prepare(step.statement, tuple(rows[0]) if rows else ())
                    if step.many:
                        await conn.executemany(prepared.sql, prepared.params(rows))
                        result = len(rows)
                        continue
                    values = prepared.params(rows)[0]
                    if step.all_rows:
                        result = [prepared.row(r) for r in await conn.fetch(prepared.sql, *values)]
                    elif step.row:
                        found = await conn.fetchrow(prepared.sql, *values)
                        result = prepared.row(found) if found is not None else None
                    else:
                        result = _row_count(await conn.execute(prepared.sql, *values))
                if transaction is not None:
                    await transaction.commit()
            except BaseException as exc:
                program.close()
                broken = not _is_data_error(exc)
                if transaction is not None and not broken:
                    with contextlib.suppress(Exception):
                        await transaction.rollback()
                raise
            return cast(T, value)
        finally:
            if broken:  # its state is unknown: the pool's ping replaces it
                with contextlib.suppress(Exception):
                    conn.terminate()
            raw.close()

    async def _on_thread(self, driver: Any, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function`` on aiosqlite's thread; ``_thread_jobs`` knows until it ends
        there, even if the task awaiting it is cancelled first."""
        job = object()
        self._thread_jobs.add(job)

        def run() -> Any:
            try:
                return function(*args)
            finally:
                self._thread_jobs.discard(job)

        return await driver._execute(run)

    async def close(self) -> None:
        if self._lazy:
            self._flush_lazy()
        if self._buffer:
            self._kick()
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
