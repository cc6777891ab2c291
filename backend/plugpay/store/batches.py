"""What the group-commit writer gathers: rows to write, and the batch they ride in;
and the steps of the short transactions it runs on its own (``Step``, ``Program``)."""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy.sql.elements import ClauseElement

Owner = asyncio.Task[Any] | None
T = TypeVar("T")


@dataclass(slots=True)
class Item:
    """One row to write: an insert, a reading, a heartbeat or a last-reading update."""

    kind: str  # insert | reading | heartbeat | latest
    table: str
    row: dict[str, Any]
    owners: set[Owner] = field(default_factory=set)
    ignore_conflicts: bool = False


@dataclass
class Batch:
    items: list[Item] = field(default_factory=list)
    heartbeats: dict[str, Item] = field(default_factory=dict)
    latest: dict[int, Item] = field(default_factory=dict)
    # One future per waiting task: a waiter that is cancelled cancels only its own.
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    written: bool = False

    def __bool__(self) -> bool:
        return bool(self.items or self.heartbeats or self.latest)

    def finish(self) -> None:
        self.written = True
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.waiters.clear()

    def all_items(self) -> list[Item]:
        return [*self.items, *self.heartbeats.values(), *self.latest.values()]


Row = dict[str, Any]
Rows = list[Row]
# One row of parameters, or the rows of an ``executemany``.
Params = Mapping[str, Any] | Sequence[Mapping[str, Any]]


def sorted_rows(
    items: Sequence[Item],
) -> tuple[dict[tuple[str, bool, tuple[str, ...]], Rows], Rows, Rows, Rows]:
    """A batch's rows by what is done with them: inserts (grouped by table, conflict
    handling and the columns they fill: one executemany needs one shape), readings,
    heartbeats and last-reading updates."""
    inserts: dict[tuple[str, bool, tuple[str, ...]], Rows] = {}
    readings: Rows = []
    heartbeats: Rows = []
    latest: Rows = []
    for item in items:
        if item.kind == "insert":
            key = (item.table, item.ignore_conflicts, tuple(item.row))
            inserts.setdefault(key, []).append(item.row)
        elif item.kind == "reading":
            readings.append(item.row)
        elif item.kind == "heartbeat":
            heartbeats.append(item.row)
        else:
            latest.append(item.row)
    return inserts, readings, heartbeats, latest


@dataclass(frozen=True, slots=True)
class Step:
    """One statement of a short program run by ``BatchWriter.run``.

    ``statement`` is built once, with its parameters bound by name (so it is
    compiled once too); ``params`` is one row, or with ``many`` the rows of an
    ``executemany``. The program gets back the first row as a dict (or None)
    when ``row`` is set, every row as a list of dicts with ``all_rows``, else
    the number of rows the statement changed.
    """

    statement: ClauseElement
    params: Params
    many: bool = False
    row: bool = False
    all_rows: bool = False

    def rows(self) -> Sequence[Mapping[str, Any]]:
        """The parameter rows: the one row, or every row with ``many``."""
        if self.many:
            return cast(Sequence[Mapping[str, Any]], self.params)
        return (cast(Mapping[str, Any], self.params),)


# A program: a generator of the steps of one transaction; what it returns is
# the answer of ``BatchWriter.run``. It computes between steps and does no I/O
# itself, so the same program runs on SQLite's connection and on PostgreSQL's.
Program = Generator[Step, Any, T]


def one_row(statement: ClauseElement, params: Params) -> Program[Row | None]:
    """The program of one statement whose first row (or None) is its answer."""
    row: Row | None = yield Step(statement, params, row=True)
    return row
