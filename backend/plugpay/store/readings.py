"""Meter readings in SQL, stored exactly once.

A reading of a transaction at an instant that is already stored fills in what
is missing (a repeat changes nothing, a split instant is merged); a reading
outside any transaction is stored once per connector and instant. Readings
come through the group-commit writer on the hot path, or inside the database
transaction of the message that brings them (start, stop, 2.0.1 events).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from plugpay.services.ports import FlaggedSample
from plugpay.store import tables as t

BEGIN, END = "Transaction.Begin", "Transaction.End"
# Reading columns a repeated or split reading fills in, never overwrites.
_READING_VALUES = ("energy_wh", "power_w", "current_ma", "soc", "context")


def reading_rows(
    charger_id: str, connector_id: int, pk: int | None, samples: Sequence[FlaggedSample]
) -> list[dict[str, Any]]:
    return [
        {
            "transaction_id": pk,
            "charger_id": charger_id,
            "connector_id": connector_id,
            "at": f.sample.at,
            "energy_wh": f.sample.energy_wh,
            "power_w": f.sample.power_w,
            "current_ma": f.sample.current_ma,
            "soc": f.sample.soc,
            "context": f.sample.context,
            "flag": f.flag,
        }
        for f in samples
    ]


def latest(samples: Sequence[FlaggedSample]) -> tuple[datetime, int] | None:
    good = [f.sample for f in samples if not f.flag and f.sample.energy_wh is not None]
    if not good:
        return None
    last = max(good, key=lambda s: s.at)
    assert last.energy_wh is not None
    return last.at, last.energy_wh


async def store_readings(
    conn: AsyncConnection,
    dialect: Any,
    charger_id: str,
    connector_id: int,
    pk: int,
    samples: Sequence[FlaggedSample],
) -> None:
    """Write ``samples`` of transaction ``pk`` and move its last plausible reading on."""
    if not samples:
        return
    await write_readings(conn, dialect, reading_rows(charger_id, connector_id, pk, samples))
    newest = latest(samples)
    if newest is not None:
        await conn.execute(
            update(t.transactions)
            .where(
                t.transactions.c.id == pk,
                (t.transactions.c.last_reading_at.is_(None))
                | (t.transactions.c.last_reading_at < newest[0]),
            )
            .values(last_reading_at=newest[0], last_energy_wh=newest[1])
        )


def reading_for(samples: Sequence[FlaggedSample], context: str, *, first: bool) -> int | None:
    """The register value for Transaction.Begin/End, else the first/last plausible reading."""
    for f in samples:
        if f.sample.context == context and f.sample.energy_wh is not None:
            return f.sample.energy_wh
    good = [f.sample for f in samples if f.sample.energy_wh is not None and not f.flag]
    if not good:
        return None
    chosen = min(good, key=lambda s: s.at) if first else max(good, key=lambda s: s.at)
    return chosen.energy_wh


def merge_readings(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (transaction, instant): later rows fill what earlier ones left empty."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    copied: set[tuple[Any, ...]] = set()
    for row in rows:
        key: tuple[Any, ...] = (row["transaction_id"], row["at"])
        if row["transaction_id"] is None:
            key = (None, row["charger_id"], row["connector_id"], row["at"])
        first = merged.get(key)
        if first is None:
            merged[key] = row  # copied only if another row is merged into it
            continue
        if key not in copied:
            first = merged[key] = dict(first)
            copied.add(key)
        if first["energy_wh"] is None and row["energy_wh"] is not None:
            first["flag"] = row["flag"]
        for column in _READING_VALUES:
            if first[column] is None:
                first[column] = row[column]
    return list(merged.values())


@functools.cache
def merge_statement(dialect: Any) -> Any:
    """INSERT ... ON CONFLICT (transaction, instant) DO UPDATE filling the gaps; built
    once, as building and keying it per batch costs more than running it."""
    mr = t.meter_readings
    statement = dialect.insert(mr)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[mr.c.transaction_id, mr.c.at],
        set_={
            **{c: func.coalesce(mr.c[c], excluded[c]) for c in _READING_VALUES},
            "flag": case((mr.c.energy_wh.is_(None), excluded.flag), else_=mr.c.flag),
        },
    )


async def write_readings(
    connection: AsyncConnection, dialect: Any, rows: Sequence[dict[str, Any]]
) -> None:
    """Store meter readings exactly once (see the module docstring)."""
    mr = t.meter_readings
    rows = merge_readings(rows)
    attached = [r for r in rows if r["transaction_id"] is not None]
    loose = [r for r in rows if r["transaction_id"] is None]
    if attached:
        await connection.execute(merge_statement(dialect), attached)
    if loose:
        # NULL never conflicts in a unique index: look for the same reading first.
        existing = await connection.execute(
            select(mr.c.charger_id, mr.c.connector_id, mr.c.at).where(
                mr.c.transaction_id.is_(None),
                mr.c.charger_id.in_({r["charger_id"] for r in loose}),
                mr.c.at.in_({r["at"] for r in loose}),
            )
        )
        seen = {(c, n, _utc(at)) for c, n, at in existing}
        fresh = [
            r for r in loose if (r["charger_id"], r["connector_id"], _utc(r["at"])) not in seen
        ]
        if fresh:
            await connection.execute(dialect.insert(mr), fresh)


def _utc(value: Any) -> Any:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
