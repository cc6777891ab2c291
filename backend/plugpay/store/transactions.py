"""OCPP transactions, their readings and the answers given, in SQL.

Every message that changes a transaction is applied inside one database
transaction together with the row that remembers its answer, so a repeat finds
that row and gets the same answer without changing anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from plugpay.crashpoints import crash_point
from plugpay.services.ports import (
    EventInput,
    FlaggedSample,
    StartInput,
    StopInput,
    TransactionRef,
)
from plugpay.store import tables as t
from plugpay.store.clock import aware, now
from plugpay.store.database import Database
from plugpay.store.jobs import insert_job
from plugpay.store.readings import END, latest, reading_rows, store_readings
from plugpay.store.transaction_events import (
    event_program,
    find_pk_program,
    find_program,
    review_columns,
)
from plugpay.store.transaction_facts import ended_job, started_job
from plugpay.store.writer import BatchWriter

MAX_ID = 2**63 - 1  # BIGINT
# How many running 2.0.1 transactions an instance remembers (a few hundred bytes each).
SEEN_TRANSACTIONS = 100_000


def _ref(row: Any) -> TransactionRef:
    return TransactionRef(
        pk=row["id"],
        charger_id=row["charger_id"],
        connector_id=row["connector_id"],
        ended=row["status"] == "ended",
        last_reading_at=aware(row["last_reading_at"]),
        last_energy_wh=row["last_energy_wh"],
    )


class SqlTransactionStore:
    def __init__(
        self, db: Database, writer: BatchWriter, on_jobs: Callable[[], None] | None = None
    ) -> None:
        self.db = db
        self.writer = writer
        self.on_jobs = on_jobs
        self._dialect: Any = sqlite if db.is_sqlite else postgresql
        # 2.0.1 transactions this instance applied events of (or looked up), by
        # (charger, transaction id), oldest first: an Updated finds its transaction
        # without a query. What a ref holds does not change while the transaction runs, bar its
        # last reading (the service keeps the newest); one that ended is dropped, so
        # a late event of it is looked up again.
        self._seen: dict[tuple[str, str], TransactionRef] = {}

    def _queued(self) -> None:
        if self.on_jobs is not None:
            self.on_jobs()

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
                await store_readings(
                    conn, self._dialect, start.charger_id, start.connector_id, pk, samples
                )
                await insert_job(
                    conn,
                    self.db.is_sqlite,
                    started_job(start.charger_id, int(pk), start.id_tag, start.at),
                )
            self._queued()
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
            await store_readings(
                conn, self._dialect, stop.charger_id, row["connector_id"], row["id"], stop.samples
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
                values.update(review_columns(row, f"meterStop: {end_flag}"))
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
            await insert_job(
                conn,
                self.db.is_sqlite,
                ended_job(stop.charger_id, int(row["id"]), row["id_tag"] or stop.id_tag),
            )
        crash_point("transaction.ended")
        self._queued()
        return response

    async def find(self, charger_id: str, pk: int) -> TransactionRef | None:
        if not 0 < pk <= MAX_ID:
            return None  # not an id this database could have handed out
        return await self.writer.run(
            find_pk_program(charger_id, pk, self.db.is_sqlite), write=False
        )

    async def find_by_ocpp_id(self, charger_id: str, ocpp_id: str) -> TransactionRef | None:
        """The 2.0.1 transaction ``ocpp_id`` of ``charger_id``; from memory once this
        instance has applied an event of it (see ``_seen``)."""
        key = (charger_id, ocpp_id)
        known = self._seen.get(key)
        if known is not None:
            return known
        found = await self.writer.run(
            find_program(charger_id, ocpp_id, self.db.is_sqlite), write=False
        )
        if found is not None and not found.ended:
            self._remember(key, found)
        return found

    def _remember(self, key: tuple[str, str], ref: TransactionRef) -> None:
        seen = self._seen
        seen.pop(key, None)
        seen[key] = ref
        if len(seen) > SEEN_TRANSACTIONS:
            del seen[next(iter(seen))]  # the one longest unused

    def record_readings(
        self, charger_id: str, connector_id: int, pk: int | None, samples: Sequence[FlaggedSample]
    ) -> None:
        for row in reading_rows(charger_id, connector_id, pk, samples):
            self.writer.reading(row)
        newest = latest(samples)
        if pk is not None and newest is not None:
            self.writer.latest_reading(pk, newest[0], newest[1])

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
        key = (event.charger_id, event.ocpp_transaction_id)
        self._seen.pop(key, None)  # whatever happens next, the database knows best
        applied = await self.writer.run(event_program(event, response, self.db.is_sqlite))
        if not applied.ref.ended:
            self._remember(key, applied.ref)
        if event.event_type == "Ended":
            crash_point("transaction.ended")
        if applied.queued:
            self._queued()
        return applied.response
