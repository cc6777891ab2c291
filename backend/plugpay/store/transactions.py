"""OCPP transactions, their readings and the answers given, in SQL.

Every message that changes a transaction is applied inside one database
transaction together with the row that remembers its answer, so a repeat finds
that row and gets the same answer without changing anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from plugpay.services.ports import (
    EventInput,
    FlaggedSample,
    StartInput,
    StopInput,
    TransactionRef,
)
from plugpay.store import tables as t
from plugpay.store.chargers import aware, now
from plugpay.store.database import Database
from plugpay.store.writer import BatchWriter, write_readings

BEGIN, END = "Transaction.Begin", "Transaction.End"
MISSING_START = "first message was not Started"
MAX_ID = 2**63 - 1  # BIGINT


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


def _ref(row: Any) -> TransactionRef:
    return TransactionRef(
        pk=row["id"],
        charger_id=row["charger_id"],
        connector_id=row["connector_id"],
        ended=row["status"] == "ended",
        last_reading_at=aware(row["last_reading_at"]),
        last_energy_wh=row["last_energy_wh"],
    )


def _latest(samples: Sequence[FlaggedSample]) -> tuple[datetime, int] | None:
    good = [f.sample for f in samples if not f.flag and f.sample.energy_wh is not None]
    if not good:
        return None
    last = max(good, key=lambda s: s.at)
    assert last.energy_wh is not None
    return last.at, last.energy_wh


class SqlTransactionStore:
    def __init__(self, db: Database, writer: BatchWriter) -> None:
        self.db = db
        self.writer = writer
        self._dialect: Any = sqlite if db.is_sqlite else postgresql

    async def _readings(
        self,
        conn: AsyncConnection,
        charger_id: str,
        connector_id: int,
        pk: int,
        samples: Sequence[FlaggedSample],
    ) -> None:
        if not samples:
            return
        await write_readings(
            conn, self._dialect, reading_rows(charger_id, connector_id, pk, samples)
        )
        latest = _latest(samples)
        if latest is not None:
            await conn.execute(
                update(t.transactions)
                .where(
                    t.transactions.c.id == pk,
                    (t.transactions.c.last_reading_at.is_(None))
                    | (t.transactions.c.last_reading_at < latest[0]),
                )
                .values(last_reading_at=latest[0], last_energy_wh=latest[1])
            )

    # -- 1.6 ----------------------------------------------------------------
    async def start(self, start: StartInput, samples: Sequence[FlaggedSample]) -> tuple[int, bool]:
        key = f"{start.connector_id}|{start.id_tag}|{start.at.isoformat()}|{start.meter_start_wh}"
        stamp = now()
        try:
            async with self.db.begin() as conn:
                pk = (
                    await conn.execute(
                        insert(t.transactions).values(
                            charger_id=start.charger_id,
                            connector_id=start.connector_id,
                            start_key=key,
                            id_tag=start.id_tag,
                            status="active",
                            started_at=start.at,
                            meter_start_wh=start.meter_start_wh,
                            offline=False,
                            needs_review=False,
                            created_at=stamp,
                            updated_at=stamp,
                        )
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
                await conn.execute(
                    update(t.transactions)
                    .where(t.transactions.c.id == pk)
                    .values(ocpp_transaction_id=str(pk))
                )
                await conn.execute(
                    insert(t.transaction_messages).values(
                        transaction_id=pk,
                        kind="start",
                        seq_no=0,
                        at=start.at,
                        offline=False,
                        response={"transactionId": pk},
                        received_at=stamp,
                    )
                )
                await self._readings(conn, start.charger_id, start.connector_id, pk, samples)
            return int(pk), True
        except IntegrityError:
            async with self.db.connect() as conn:
                existing = await conn.scalar(
                    select(t.transactions.c.id).where(
                        t.transactions.c.charger_id == start.charger_id,
                        t.transactions.c.start_key == key,
                    )
                )
            if existing is None:
                raise
            return int(existing), False

    async def stop(self, stop: StopInput, response: dict[str, Any]) -> dict[str, Any] | None:
        if not 0 < stop.transaction_pk <= MAX_ID:
            return None
        stamp = now()
        async with self.db.begin() as conn:
            row = (
                (
                    await conn.execute(
                        select(t.transactions).where(
                            t.transactions.c.id == stop.transaction_pk,
                            t.transactions.c.charger_id == stop.charger_id,
                        )
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            if row["status"] == "ended":
                stored = await conn.scalar(
                    select(t.transaction_messages.c.response).where(
                        t.transaction_messages.c.transaction_id == row["id"],
                        t.transaction_messages.c.kind == "stop",
                    )
                )
                return dict(stored) if stored is not None else dict(response)
            await self._readings(
                conn, stop.charger_id, row["connector_id"], row["id"], stop.samples
            )
            values: dict[str, Any] = {
                "status": "ended",
                "stopped_at": stop.at,
                "meter_stop_wh": stop.meter_stop_wh,
                "stop_reason": stop.reason or "Local",
                "stop_id_tag": stop.id_tag,
                "updated_at": stamp,
            }
            end_flag = next(
                (
                    f.flag
                    for f in stop.samples
                    if f.sample.context == END and f.sample.at == stop.at and f.flag
                ),
                "",
            )
            if end_flag:
                values.update(_review(row, f"meterStop: {end_flag}"))
            await conn.execute(
                update(t.transactions).where(t.transactions.c.id == row["id"]).values(**values)
            )
            await conn.execute(
                insert(t.transaction_messages).values(
                    transaction_id=row["id"],
                    kind="stop",
                    seq_no=0,
                    at=stop.at,
                    offline=False,
                    response=response,
                    received_at=stamp,
                )
            )
        return response

    async def find(self, charger_id: str, pk: int) -> TransactionRef | None:
        if not 0 < pk <= MAX_ID:
            return None  # not an id this database could have handed out
        async with self.db.connect() as conn:
            row = (
                (
                    await conn.execute(
                        select(t.transactions).where(
                            t.transactions.c.id == pk, t.transactions.c.charger_id == charger_id
                        )
                    )
                )
                .mappings()
                .first()
            )
        return _ref(row) if row else None

    async def find_by_ocpp_id(self, charger_id: str, ocpp_id: str) -> TransactionRef | None:
        async with self.db.connect() as conn:
            row = (
                (
                    await conn.execute(
                        select(t.transactions).where(
                            t.transactions.c.charger_id == charger_id,
                            t.transactions.c.ocpp_transaction_id == ocpp_id,
                        )
                    )
                )
                .mappings()
                .first()
            )
        return _ref(row) if row else None

    def record_readings(
        self, charger_id: str, connector_id: int, pk: int | None, samples: Sequence[FlaggedSample]
    ) -> None:
        for row in reading_rows(charger_id, connector_id, pk, samples):
            self.writer.reading(row)
        latest = _latest(samples)
        if pk is not None and latest is not None:
            self.writer.latest_reading(pk, latest[0], latest[1])

    def record_update(self, ref: TransactionRef, event: EventInput) -> None:
        self.writer.insert(
            t.transaction_messages,
            {
                "transaction_id": ref.pk,
                "kind": "event",
                "event_type": event.event_type,
                "seq_no": event.seq_no,
                "at": event.at,
                "offline": event.offline,
                "response": {},
                "received_at": now(),
            },
            ignore_conflicts=True,
        )
        self.record_readings(
            ref.charger_id, event.connector_id or ref.connector_id, ref.pk, event.samples
        )

    async def flush(self) -> None:
        await self.writer.commit()

    # -- 2.0.1 --------------------------------------------------------------
    async def apply_event(self, event: EventInput, response: dict[str, Any]) -> dict[str, Any]:
        stamp = now()
        async with self.db.begin() as conn:
            row = (
                (
                    await conn.execute(
                        select(t.transactions).where(
                            t.transactions.c.charger_id == event.charger_id,
                            t.transactions.c.ocpp_transaction_id == event.ocpp_transaction_id,
                        )
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                pk = await self._create_from_event(conn, event, stamp)
                row = (
                    (await conn.execute(select(t.transactions).where(t.transactions.c.id == pk)))
                    .mappings()
                    .one()
                )
            else:
                stored = await conn.scalar(
                    select(t.transaction_messages.c.response).where(
                        and_(
                            t.transaction_messages.c.transaction_id == row["id"],
                            t.transaction_messages.c.kind == "event",
                            t.transaction_messages.c.seq_no == event.seq_no,
                        )
                    )
                )
                if stored is not None:
                    return dict(stored)
            pk = row["id"]
            connector_id = event.connector_id or row["connector_id"]
            await self._readings(conn, event.charger_id, connector_id, pk, event.samples)
            values: dict[str, Any] = {"updated_at": stamp}
            if event.offline:
                values["offline"] = True
            if event.id_tag and not row["id_tag"]:
                values["id_tag"] = event.id_tag
            if event.event_type == "Started":
                begin = _reading_for(event.samples, BEGIN, first=True)
                values.update(started_at=event.at, connector_id=connector_id)
                if begin is not None:
                    values["meter_start_wh"] = begin
                if row["review_reason"] == MISSING_START:
                    # The start arrived after all (late, in an offline replay).
                    values.update(needs_review=False, review_reason=None)
            elif event.event_type == "Ended" and row["status"] != "ended":
                end = _reading_for(event.samples, END, first=False)
                values.update(
                    status="ended",
                    stopped_at=event.at,
                    stop_reason=event.stopped_reason or "Local",
                    meter_stop_wh=end if end is not None else row["last_energy_wh"],
                )
                end_flag = next(
                    (f.flag for f in event.samples if f.sample.context == END and f.flag), ""
                )
                if end_flag:
                    values.update(_review(row, f"Transaction.End: {end_flag}"))
            await conn.execute(
                update(t.transactions).where(t.transactions.c.id == pk).values(**values)
            )
            await conn.execute(
                insert(t.transaction_messages).values(
                    transaction_id=pk,
                    kind="event",
                    event_type=event.event_type,
                    seq_no=event.seq_no,
                    at=event.at,
                    offline=event.offline,
                    response=response,
                    received_at=stamp,
                )
            )
        return response

    async def _create_from_event(
        self, conn: AsyncConnection, event: EventInput, stamp: datetime
    ) -> int:
        missing_start = event.event_type != "Started"
        begin = _reading_for(event.samples, BEGIN, first=True)
        pk = (
            await conn.execute(
                insert(t.transactions).values(
                    charger_id=event.charger_id,
                    connector_id=event.connector_id or 0,
                    ocpp_transaction_id=event.ocpp_transaction_id,
                    id_tag=event.id_tag,
                    status="active",
                    started_at=event.at,
                    meter_start_wh=begin,
                    offline=event.offline,
                    needs_review=missing_start,
                    review_reason=MISSING_START if missing_start else None,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        return int(pk)


def _review(row: Any, reason: str) -> dict[str, Any]:
    """Columns that put a transaction up for review, keeping an earlier reason."""
    earlier = row["review_reason"]
    text = f"{earlier}; {reason}" if earlier and earlier != MISSING_START else reason
    return {"needs_review": True, "review_reason": text[:200]}


def _reading_for(samples: Sequence[FlaggedSample], context: str, *, first: bool) -> int | None:
    """The register value for Transaction.Begin/End, else the first/last plausible reading."""
    for f in samples:
        if f.sample.context == context and f.sample.energy_wh is not None:
            return f.sample.energy_wh
    good = [f.sample for f in samples if f.sample.energy_wh is not None and not f.flag]
    if not good:
        return None
    chosen = min(good, key=lambda s: s.at) if first else max(good, key=lambda s: s.at)
    return chosen.energy_wh
