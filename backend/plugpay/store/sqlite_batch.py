"""The SQLite fast path of the group-commit writer: statements compiled once, rows
as plain parameter sequences, the whole batch in one ``executemany`` run.

A batch is written on the server's one SQLite connection without SQLAlchemy in
between: ``Prepared`` holds a statement compiled once with the order and bind
processing of its parameters; ``run_plan`` runs a batch in one transaction,
on the event loop when it is small (``wait=False``: never waiting for another
process's write lock) or on aiosqlite's thread. ``run_steps`` runs the short
transactions of ``BatchWriter.run`` (a 2.0.1 transaction's start or end) the
same way.
"""

from __future__ import annotations

import functools
import logging
import operator
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, and_, bindparam, literal_column, or_, select, update
from sqlalchemy.dialects import sqlite

from plugpay.store import tables
from plugpay.store.batches import Program
from plugpay.store.database import BUSY_TIMEOUT_MS

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement compiled once for SQLite, with the order and bind processing of
    its parameters: rows become plain sequences for ``executemany``."""

    sql: str
    keys: tuple[str, ...]
    defaults: tuple[Any, ...]
    # All of a row's values at once, in ``keys`` order (a row without one of the
    # keys takes the slow path, with the column defaults).
    getter: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    # (position, bind processor) of the values that need one.
    converted: tuple[tuple[int, Any], ...]
    # What a statement returns: (column, result processor or None), in order.
    results: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, statement: Any, keys: Sequence[str], dialect: Any) -> Prepared:
        # No RETURNING a statement does not ask for (PostgreSQL adds the key's to a
        # single-row insert): rows are written by ``executemany``.
        many = not getattr(statement, "_returning", ())
        compiled = statement.compile(dialect=dialect, column_keys=list(keys), for_executemany=many)
        if compiled.post_compile_params:
            # An IN (...) of a list is rendered anew for each execution.
            raise ValueError(f"cannot prepare a statement with expanding parameters: {compiled}")
        names = tuple(compiled.positiontup)
        binds = compiled.binds
        processors = []
        defaults = []
        table = getattr(statement, "table", None)
        for name in names:
            processors.append(bind_processor(binds[name].type, dialect))
            default = None
            if name not in keys and table is not None and name in table.c:
                column_default = table.c[name].default
                if column_default is not None:
                    if not column_default.is_scalar:
                        raise ValueError(f"{table.name}.{name}: only scalar defaults here")
                    default = column_default.arg
            elif name not in keys and binds[name].callable is None:
                default = binds[name].value  # a literal in the statement (``x + 1``, OFFSET 0)
            defaults.append(default)
        getter: Callable[[Mapping[str, Any]], tuple[Any, ...]]
        if len(names) > 1:
            getter = operator.itemgetter(*names)
        elif names:
            pick = operator.itemgetter(names[0])
            getter = lambda row: (pick(row),)  # noqa: E731
        else:
            getter = lambda row: ()  # noqa: E731
        converted = tuple((i, p) for i, p in enumerate(processors) if p is not None)
        results = tuple(
            (column.keyname, column.type._cached_result_processor(dialect, None))
            for column in getattr(compiled, "_result_columns", ())
        )
        return cls(str(compiled), names, tuple(defaults), getter, converted, results)

    def row(self, values: Sequence[Any]) -> dict[str, Any]:
        """A returned row as a dict of Python values (as SQLAlchemy would give them)."""
        return {
            name: process(value) if process is not None and value is not None else value
            for (name, process), value in zip(self.results, values, strict=True)
        }

    def params(self, rows: Sequence[Mapping[str, Any]]) -> list[Sequence[Any]]:
        getter, converted = self.getter, self.converted
        out: list[Sequence[Any]] = []
        for row in rows:
            try:
                values: Sequence[Any] = getter(row)
            except KeyError:
                values = tuple(map(row.get, self.keys, self.defaults))
            if converted:
                values = list(values)
                for i, process in converted:
                    value = values[i]
                    if value is not None:
                        values[i] = process(value)
            out.append(values)
        return out


_SQLITE_DATETIME = sqlite.DATETIME._storage_format
_DATETIME_TEXT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


def bind_processor(type_: Any, dialect: Any) -> Any:
    """SQLAlchemy's bind processing, with a faster path for SQLite date-times.

    SQLAlchemy formats a datetime for SQLite through a dict of its fields; one
    ``%`` with a tuple writes the same text ("YYYY-MM-DD HH:MM:SS.ffffff", zone
    dropped) in a third of the time (and faster than ``isoformat``, which looks
    up the zone only to have it cut off).
    """
    process = type_._cached_bind_processor(dialect)
    if (
        process is None
        or dialect.name != "sqlite"
        or not isinstance(type_, DateTime)
        or getattr(type_.dialect_impl(dialect), "_storage_format", None) != _SQLITE_DATETIME
    ):
        return process

    def datetime_text(value: Any) -> Any:
        if type(value) is datetime:
            return _DATETIME_TEXT % (
                value.year,
                value.month,
                value.day,
                value.hour,
                value.minute,
                value.second,
                value.microsecond,
            )
        return process(value)

    return datetime_text


LOOSE_SEEN = (
    "SELECT 1 FROM meter_readings WHERE transaction_id IS NULL"
    " AND charger_id = ? AND connector_id = ? AND at = ?"
)


def checkpoint_before_batch(conn: sqlite3.Connection) -> None:
    """Copy what the background checkpointer left (``database.Checkpointer``): the
    next batch then writes the WAL from its start."""
    if conn.in_transaction:
        return
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as exc:  # the batch matters more; the next catch-up tries again
        log.warning("WAL checkpoint before a batch failed: %s", exc)


def begin_immediate(conn: sqlite3.Connection, *, wait: bool) -> bool:
    """Begin a write transaction. ``wait=False`` (on the event loop): if another
    process holds the write lock, touch nothing and return False instead of
    waiting for it."""
    if conn.in_transaction:
        # Left open by a user of the connection that was cancelled mid-way (the
        # pool hands connections back as they are): not ours to commit.
        log.warning("a SQLite transaction was left open on the connection; rolled back")
        conn.rollback()
    if wait:
        conn.execute("BEGIN IMMEDIATE")
        return True
    conn.execute("PRAGMA busy_timeout=0")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
            return False
        raise
    finally:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return True


def run_plan(
    conn: sqlite3.Connection,
    plan: Sequence[tuple[str, list[Sequence[Any]]]],
    loose: tuple[str, list[Sequence[Any]], int, int, int] | None,
    *,
    wait: bool = True,
) -> bool:
    """Run the batch in one transaction, commit or roll back; False (and nothing
    done) when ``wait=False`` and another process holds the write lock."""
    if not begin_immediate(conn, wait=wait):
        return False
    try:
        for sql, params in plan:
            conn.executemany(sql, params)
        if loose is not None:
            # NULL never conflicts in a unique index: look for the same reading first.
            sql, params, charger, connector, at = loose
            fresh = [
                p
                for p in params
                if conn.execute(LOOSE_SEEN, (p[charger], p[connector], p[at])).fetchone() is None
            ]
            if fresh:
                conn.executemany(sql, fresh)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return True


def run_steps(
    conn: sqlite3.Connection,
    program: Program[Any],
    prepare: Callable[[Any, tuple[str, ...]], Prepared],
    *,
    write: bool,
    wait: bool = True,
) -> tuple[bool, Any]:
    """Run ``program`` (see ``batches.Step``): with ``write`` in one transaction,
    committed at its end and rolled back if anything fails, else as plain reads.
    (True, what it returned), or (False, None) with nothing done when ``wait=False``
    and another process holds the write lock."""
    if write and not begin_immediate(conn, wait=wait):
        return False, None
    try:
        result: Any = None
        while True:
            try:
                step = program.send(result)
            except StopIteration as stop:
                value = stop.value
                break
            rows = step.rows()
            prepared = prepare(step.statement, tuple(rows[0]) if rows else ())
            if step.many:
                result = conn.executemany(prepared.sql, prepared.params(rows)).rowcount
                continue
            cursor = conn.execute(prepared.sql, prepared.params(rows)[0])
            if step.all_rows:
                result = [prepared.row(found) for found in cursor.fetchall()]
            elif step.row:
                found = cursor.fetchall()  # all of them: a RETURNING is done only then
                result = prepared.row(found[0]) if found else None
            else:
                result = cursor.rowcount
        if write:
            conn.commit()
    except BaseException:
        if write and conn.in_transaction:
            conn.rollback()
        program.close()
        raise
    return True, value


@functools.cache
def loose_seen_statement() -> Any:
    """``LOOSE_SEEN`` for any dialect (bind parameters c, n, a)."""
    mr = tables.meter_readings
    return select(literal_column("1")).where(
        mr.c.transaction_id.is_(None),
        mr.c.charger_id == bindparam("c"),
        mr.c.connector_id == bindparam("n"),
        mr.c.at == bindparam("a"),
    )


@functools.cache
def heartbeat_statement() -> Any:
    return (
        update(tables.chargers)
        .where(tables.chargers.c.id == bindparam("charger_id"))
        .values(last_seen_at=bindparam("at"), last_heartbeat_at=bindparam("at"))
    )


@functools.cache
def latest_statement() -> Any:
    t = tables.transactions
    return (
        update(t)
        .where(
            and_(
                t.c.id == bindparam("pk"),
                or_(t.c.last_reading_at.is_(None), t.c.last_reading_at < bindparam("at")),
            )
        )
        .values(last_reading_at=bindparam("at"), last_energy_wh=bindparam("wh"))
    )
