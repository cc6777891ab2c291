"""OCPP 2.0.1 TransactionEvents in SQL.

Each event is applied inside one database transaction together with the row
that remembers its answer (by transaction and seqNo), so a repeat gets the same
answer and changes nothing. Events may arrive in any order after an offline
spell: the start, the end and every reading keep the charger's own times.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from plugpay.services.ports import EventInput
from plugpay.store import tables as t
from plugpay.store.chargers import aware, now
from plugpay.store.database import Database
from plugpay.store.jobs import insert_job
from plugpay.store.readings import BEGIN, END, reading_for, store_readings
from plugpay.store.transaction_facts import ended_job, started_job

MISSING_START = "first message was not Started"


async def apply_event(
    db: Database, dialect: Any, event: EventInput, response: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """Apply a 2.0.1 TransactionEvent once; a repeat (same transaction, seqNo and event
    type) gets the stored answer and changes nothing. Also whether a job was queued
    for the driver's session (its transaction started or ended)."""
    stamp = now()
    async with db.begin() as conn:
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
        created = row is None
        if row is None:
            pk = await _create_from_event(conn, event, stamp)
            row = (
                (await conn.execute(select(t.transactions).where(t.transactions.c.id == pk)))
                .mappings()
                .one()
            )
        reused_seq_no = False
        if not created:
            stored = (
                await conn.execute(
                    select(
                        t.transaction_messages.c.response, t.transaction_messages.c.event_type
                    ).where(
                        and_(
                            t.transaction_messages.c.transaction_id == row["id"],
                            t.transaction_messages.c.kind == "event",
                            t.transaction_messages.c.seq_no == event.seq_no,
                        )
                    )
                )
            ).first()
            if stored is not None and stored.event_type == event.event_type:
                return dict(stored.response), False  # a repeat: the same answer, no change
            # The same seqNo on another kind of event is no repeat: a charger that
            # restarted its numbering (a reboot mid-transaction). Apply it, and say so.
            reused_seq_no = stored is not None
        pk = row["id"]
        connector_id = event.connector_id or row["connector_id"]
        await store_readings(conn, dialect, event.charger_id, connector_id, pk, event.samples)
        values: dict[str, Any] = {"updated_at": stamp}
        reasons: list[str] = []
        if event.offline:
            values["offline"] = True
        if event.id_tag and not row["id_tag"]:
            values["id_tag"] = event.id_tag
        if event.event_type == "Started":
            begin = reading_for(event.samples, BEGIN, first=True)
            values.update(started_at=event.at, connector_id=connector_id)
            if begin is not None:
                values["meter_start_wh"] = begin
            if row["review_reason"] == MISSING_START:
                # The start arrived after all (late, in an offline replay).
                values.update(needs_review=False, review_reason=None)
        elif event.event_type == "Ended" and row["status"] != "ended":
            end = reading_for(event.samples, END, first=False)
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
                reasons.append(f"Transaction.End: {end_flag}")
        if reused_seq_no:
            reasons.append(f"seqNo {event.seq_no} reused by {event.event_type}")
        if reasons:
            values.update(review_columns(row, "; ".join(reasons)))
        await conn.execute(update(t.transactions).where(t.transactions.c.id == pk).values(**values))
        if not reused_seq_no:
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
        queued = False
        # The token that started it may come with Started or later (cable first,
        # authorised afterwards): the session hears of it once it is known.
        id_tag = event.id_tag or row["id_tag"]
        if id_tag and (event.event_type == "Started" or not row["id_tag"]):
            started_at = row["started_at"] if event.event_type != "Started" else event.at
            queued |= await insert_job(
                conn,
                db.is_sqlite,
                started_job(event.charger_id, int(pk), id_tag, aware(started_at) or event.at),
            )
        if event.event_type == "Ended" and row["status"] != "ended":
            queued |= await insert_job(
                conn, db.is_sqlite, ended_job(event.charger_id, int(pk), id_tag)
            )
    return response, queued


async def _create_from_event(conn: AsyncConnection, event: EventInput, stamp: datetime) -> int:
    missing_start = event.event_type != "Started"
    begin = reading_for(event.samples, BEGIN, first=True)
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


def review_columns(row: Any, reason: str) -> dict[str, Any]:
    """Columns that put a transaction up for review, keeping an earlier reason."""
    earlier = row["review_reason"]
    if earlier and reason in earlier:  # a retried message: said already
        text = earlier
    elif earlier and earlier != MISSING_START:
        text = f"{earlier}; {reason}"
    else:
        text = reason
    return {"needs_review": True, "review_reason": text[:200]}
