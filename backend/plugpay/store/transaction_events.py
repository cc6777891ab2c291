"""OCPP 2.0.1 TransactionEvents in SQL.

Each event is applied inside one database transaction together with the row
that remembers its answer (by transaction and seqNo), so a repeat gets the same
answer and changes nothing. Events may arrive in any order after an offline
spell: the start, the end and every reading keep the charger's own times.

An event that starts, ends or authorises a transaction is a program of steps
(``batches.Step``) the writer runs as one short transaction of its own
(``BatchWriter.run``): its statements are built once, so on SQLite they run on
the server's one connection as plain ``sqlite3`` calls, compiled once, and on
PostgreSQL they are found in SQLAlchemy's compiled cache. The jobs that tell
the driver's session are rows of that same transaction.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ClauseElement

from plugpay.services.ports import EventInput, TransactionRef
from plugpay.services.ports.jobs import NewJob
from plugpay.store import tables as t
from plugpay.store.batches import Program, Row, Step
from plugpay.store.clock import aware, now
from plugpay.store.jobs import job_values
from plugpay.store.readings import BEGIN, END, latest, merge_readings, merge_statement, reading_for
from plugpay.store.readings import reading_rows as rows_of
from plugpay.store.transaction_facts import ended_job, started_job

MISSING_START = "first message was not Started"
_TX = t.transactions
_MESSAGES = t.transaction_messages
# A transaction row just inserted: what the columns not given hold.
_NEW_ROW = dict.fromkeys(_TX.c.keys())


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying an event gave: the answer (stored, for a repeat), whether a job
    for the driver's session was queued with it, and the transaction as it now is."""

    response: dict[str, Any]
    queued: bool
    ref: TransactionRef


@dataclass(frozen=True, slots=True)
class _Statements:
    find: ClauseElement
    find_pk: ClauseElement
    find_locked: ClauseElement
    create: ClauseElement
    answer: ClauseElement
    readings: ClauseElement
    change: ClauseElement
    message: ClauseElement
    job: ClauseElement


@functools.cache
def statements(is_sqlite: bool) -> _Statements:
    """Every statement of an event, built once per dialect (so compiled once)."""
    dialect: Any = sqlite if is_sqlite else postgresql
    find = select(_TX).where(
        _TX.c.charger_id == bindparam("charger_id"),
        _TX.c.ocpp_transaction_id == bindparam("ocpp_id"),
    )
    return _Statements(
        find=find,
        find_pk=select(_TX).where(
            _TX.c.id == bindparam("pk"), _TX.c.charger_id == bindparam("charger_id")
        ),
        # PostgreSQL: the row stays as read until the event is applied (SQLite's
        # write transaction holds the whole database).
        find_locked=find.with_for_update(),
        create=insert(_TX).returning(_TX.c.id),
        answer=select(_MESSAGES.c.response, _MESSAGES.c.event_type).where(
            _MESSAGES.c.transaction_id == bindparam("tx"),
            _MESSAGES.c.kind == bindparam("kind"),
            _MESSAGES.c.seq_no == bindparam("seq_no"),
        ),
        readings=merge_statement(dialect),
        # The columns set are the keys of the parameters, besides ``tx_pk``.
        change=update(_TX).where(_TX.c.id == bindparam("tx_pk")),
        message=insert(_MESSAGES),
        job=dialect.insert(t.jobs).on_conflict_do_nothing(index_elements=[t.jobs.c.key]),
    )


def find_program(charger_id: str, ocpp_id: str, is_sqlite: bool) -> Program[TransactionRef | None]:
    """The 2.0.1 transaction ``ocpp_id`` of ``charger_id``."""
    row = yield Step(
        statements(is_sqlite).find, {"charger_id": charger_id, "ocpp_id": ocpp_id}, row=True
    )
    return transaction_ref(row) if row is not None else None


def find_pk_program(charger_id: str, pk: int, is_sqlite: bool) -> Program[TransactionRef | None]:
    """Transaction ``pk``, if it is ``charger_id``'s (the 1.6 transactionId)."""
    row = yield Step(statements(is_sqlite).find_pk, {"pk": pk, "charger_id": charger_id}, row=True)
    return transaction_ref(row) if row is not None else None


def transaction_ref(row: dict[str, Any]) -> TransactionRef:
    return TransactionRef(
        pk=int(row["id"]),
        charger_id=row["charger_id"],
        connector_id=row["connector_id"],
        ended=row["status"] == "ended",
        last_reading_at=aware(row["last_reading_at"]),
        last_energy_wh=row["last_energy_wh"],
    )


def event_program(event: EventInput, response: dict[str, Any], is_sqlite: bool) -> Program[Applied]:
    """Apply a 2.0.1 TransactionEvent once; a repeat (same transaction, seqNo and event
    type) gets the stored answer and changes nothing."""
    s = statements(is_sqlite)
    stamp = now()
    row = yield Step(
        s.find_locked,
        {"charger_id": event.charger_id, "ocpp_id": event.ocpp_transaction_id},
        row=True,
    )
    created = row is None
    reused_seq_no = False
    new = _new_transaction(event, stamp) if created else {}
    if row is None:
        row = {**_NEW_ROW, **new}
    else:
        stored = yield Step(
            s.answer, {"tx": row["id"], "kind": "event", "seq_no": event.seq_no}, row=True
        )
        if stored is not None and stored["event_type"] == event.event_type:
            # A repeat: the same answer, no change.
            return Applied(dict(stored["response"]), False, transaction_ref(row))
        # The same seqNo on another kind of event is no repeat: a charger that
        # restarted its numbering (a reboot mid-transaction). Apply it, and say so.
        reused_seq_no = stored is not None
    connector_id = event.connector_id or row["connector_id"]
    # The row is ours until this transaction ends (locked, or SQLite's one
    # writer): its last reading moves on here, in the same statement as the rest.
    newest = latest(event.samples)
    last_at = aware(row["last_reading_at"])
    fresh: Row = {}
    if newest is not None and (last_at is None or last_at < newest[0]):
        fresh = {"last_reading_at": newest[0], "last_energy_wh": newest[1]}
    values = {**fresh, **_changes(event, {**row, **fresh}, connector_id, reused_seq_no, stamp)}
    if created:
        inserted = yield Step(s.create, {**new, **values}, row=True)
        row = {**row, "id": inserted["id"] if inserted else None}
    else:
        yield Step(s.change, {**values, "tx_pk": row["id"]})
    pk = int(row["id"])
    readings = merge_readings(rows_of(event.charger_id, connector_id, pk, event.samples))
    if readings:
        yield Step(s.readings, readings, many=True)
    if not reused_seq_no:
        yield Step(
            s.message,
            {
                "transaction_id": pk,
                "kind": "event",
                "event_type": event.event_type,
                "seq_no": event.seq_no,
                "at": event.at,
                "offline": event.offline,
                "response": response,
                "received_at": stamp,
            },
        )
    queued = False
    # The token that started it may come with Started or later (cable first,
    # authorised afterwards): the session hears of it once it is known.
    id_tag = event.id_tag or row["id_tag"]
    if id_tag and (event.event_type == "Started" or not row["id_tag"]):
        started_at = row["started_at"] if event.event_type != "Started" else event.at
        job = started_job(event.charger_id, pk, id_tag, aware(started_at) or event.at)
        queued |= bool((yield Step(s.job, _job_row(job, stamp))))
    if event.event_type == "Ended" and row["status"] != "ended":
        queued |= bool(
            (yield Step(s.job, _job_row(ended_job(event.charger_id, pk, id_tag), stamp)))
        )
    return Applied(response, queued, transaction_ref({**row, **values}))


def _new_transaction(event: EventInput, stamp: datetime) -> dict[str, Any]:
    missing_start = event.event_type != "Started"
    return {
        "charger_id": event.charger_id,
        "connector_id": event.connector_id or 0,
        "ocpp_transaction_id": event.ocpp_transaction_id,
        "id_tag": event.id_tag,
        "status": "active",
        "started_at": event.at,
        "meter_start_wh": reading_for(event.samples, BEGIN, first=True),
        "offline": event.offline,
        "needs_review": missing_start,
        "review_reason": MISSING_START if missing_start else None,
        "created_at": stamp,
        "updated_at": stamp,
    }


def _changes(
    event: EventInput,
    row: dict[str, Any],
    connector_id: int,
    reused_seq_no: bool,
    stamp: datetime,
) -> dict[str, Any]:
    """The columns the event changes on its transaction ``row``."""
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
        end_flag = next((f.flag for f in event.samples if f.sample.context == END and f.flag), "")
        if end_flag:
            reasons.append(f"Transaction.End: {end_flag}")
    if reused_seq_no:
        reasons.append(f"seqNo {event.seq_no} reused by {event.event_type}")
    if reasons:
        values.update(review_columns(row, "; ".join(reasons)))
    return values


def _job_row(job: NewJob, stamp: datetime) -> dict[str, Any]:
    """The row ``jobs.insert_job`` writes for ``job`` (not re-armed: once per key)."""
    assert not job.rearm
    return job_values(job, stamp)


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
