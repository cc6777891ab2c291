"""Meter readings of a transaction, written inside the transaction that brings them.

(The hot path buffers readings in the group-commit writer instead; both end in
``write_readings``, so a reading is stored once whichever way it came.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from plugpay.services.ports import FlaggedSample
from plugpay.store import tables as t
from plugpay.store.writer import write_readings

BEGIN, END = "Transaction.Begin", "Transaction.End"


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
