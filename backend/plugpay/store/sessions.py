"""Charging sessions: reads, and the live figures written at every reading.

Every other change to a session is made inside a unit of work
(``store/session_repository.py``), with the jobs that must follow it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, case, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ClauseElement

from plugpay.services.ports import PushSubscription, Reading, SessionRecord, TransactionInfo
from plugpay.store import tables as t
from plugpay.store.batches import Row, one_row
from plugpay.store.clock import aware, now
from plugpay.store.database import Database
from plugpay.store.writer import BatchWriter

_S = t.charging_sessions
_TIMES = {
    "created_at",
    "authorized_at",
    "start_deadline",
    "started_at",
    "last_reading_at",
    "stopped_at",
    "settled_at",
    "receipt_pushed_at",
    "deadline_at",
    "stop_asked_at",
}


@functools.cache
def _live_update(columns: tuple[str, ...]) -> Any:
    """The live-figures UPDATE for these columns, built once: it runs for every
    reading of every charging session, and building it costs more than running it."""
    values: dict[str, Any] = {c: bindparam(f"new_{c}") for c in columns if c != "deadline_at"}
    if "deadline_at" in columns:
        # The silent-charger deadline moves on while charging; a stopping session
        # keeps the deadline of its stop (the row may have moved on meanwhile).
        values["deadline_at"] = case(
            (_S.c.state == "CHARGING", bindparam("new_deadline_at")), else_=_S.c.deadline_at
        )
    return (
        update(_S)
        # No IN (...) of literals: it would be expanded per execution, and this
        # statement is compiled once.
        .where(
            _S.c.id == bindparam("session_id"),
            or_(_S.c.state == "CHARGING", _S.c.state == "STOPPING"),
        )
        .values(updated_at=bindparam("updated_at"), version=_S.c.version + 1, **values)
        .returning(*_S.c)
    )


def session_record(row: Any) -> SessionRecord:
    values: dict[str, Any] = {k: (aware(v) if k in _TIMES else v) for k, v in dict(row).items()}
    values.pop("updated_at", None)
    return SessionRecord(**values)


async def readings_of(conn: Any, transaction_pk: int) -> list[Reading]:
    m = t.meter_readings
    rows = (
        await conn.execute(
            select(m.c.at, m.c.energy_wh, m.c.power_w)
            .where(
                m.c.transaction_id == transaction_pk,
                m.c.flag == "",
                m.c.energy_wh.is_not(None),
            )
            .order_by(m.c.at)
        )
    ).all()
    return [Reading(aware(r.at) or r.at, int(r.energy_wh), r.power_w) for r in rows]


_TX = t.transactions
_TRANSACTION_INFO = select(
    _TX.c.ocpp_transaction_id,
    _TX.c.started_at,
    _TX.c.stopped_at,
    _TX.c.status,
    _TX.c.meter_start_wh,
    _TX.c.meter_stop_wh,
    _TX.c.charger_id,
    _TX.c.connector_id,
).where(_TX.c.id == bindparam("pk"))


def _transaction_info(row: RowMapping | Row) -> TransactionInfo:
    return TransactionInfo(
        row["ocpp_transaction_id"],
        aware(row["started_at"]),
        aware(row["stopped_at"]),
        row["status"] == "ended",
        row["meter_start_wh"],
        row["meter_stop_wh"],
        row["charger_id"],
        row["connector_id"],
    )


async def transaction_info_of(conn: AsyncConnection, transaction_pk: int) -> TransactionInfo | None:
    row = (await conn.execute(_TRANSACTION_INFO, {"pk": transaction_pk})).mappings().first()
    return _transaction_info(row) if row else None


@functools.cache
def _session_by(column: str) -> ClauseElement:
    return select(_S).where(_S.c[column] == bindparam("value"))


class SqlSessionStore:
    def __init__(self, db: Database, writer: BatchWriter | None = None) -> None:
        self.db = db
        # The reads of every reading and every job run as programs through the
        # writer: their statements compiled once (the server passes its own).
        self.writer = writer or BatchWriter(db)

    async def _one(self, where: Any) -> SessionRecord | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(select(_S).where(where))).mappings().first()
        return session_record(row) if row else None

    async def _by(self, column: str, value: str | int) -> SessionRecord | None:
        program = one_row(_session_by(column), {"value": value})
        row = await self.writer.run(program, write=False)
        return session_record(row) if row else None

    async def get(self, session_id: str) -> SessionRecord | None:
        return await self._by("id", session_id)

    async def by_transaction(self, transaction_pk: int) -> SessionRecord | None:
        return await self._by("transaction_pk", transaction_pk)

    async def by_id_tag(self, id_tag: str) -> SessionRecord | None:
        return await self._by("id_tag", id_tag)

    async def active_on(self, charger_id: str, connector_id: int) -> SessionRecord | None:
        return await self._one(
            (_S.c.charger_id == charger_id)
            & (_S.c.connector_id == connector_id)
            & _S.c.state.in_(t.ACTIVE_SESSION_STATES)
        )

    async def of_owner(
        self, owner_hashes: Sequence[str], account_id: int | None = None, limit: int = 20
    ) -> list[SessionRecord]:
        """A browser's sessions that belong to no account, and the account's."""
        if not owner_hashes and account_id is None:
            return []
        mine = and_(_S.c.owner_hash.in_(list(owner_hashes)), _S.c.account_id.is_(None))
        if account_id is not None:
            mine = or_(mine, _S.c.account_id == account_id)
        async with self.db.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(_S).where(mine).order_by(_S.c.created_at.desc()).limit(limit)
                    )
                )
                .mappings()
                .all()
            )
        return [session_record(r) for r in rows]

    async def update_live(self, session_id: str, **values: Any) -> SessionRecord | None:
        """Set a charging session's running figures and return it, in one statement.

        Only while it is CHARGING or STOPPING; None once it has moved on.
        """
        statement = _live_update(tuple(sorted(values)))
        params = {f"new_{k}": v for k, v in values.items()}
        program = one_row(statement, {"session_id": session_id, "updated_at": now(), **params})
        row = await self.writer.run(program, single=True)
        return session_record(row) if row else None

    async def transaction_readings(self, transaction_pk: int) -> list[Reading]:
        async with self.db.connect() as conn:
            return await readings_of(conn, transaction_pk)

    async def transaction_info(self, transaction_pk: int) -> TransactionInfo | None:
        row = await self.writer.run(one_row(_TRANSACTION_INFO, {"pk": transaction_pk}), write=False)
        return _transaction_info(row) if row else None

    async def push_subscriptions(self, session_id: str) -> list[PushSubscription]:
        p = t.push_subscriptions
        async with self.db.connect() as conn:
            rows = (
                (await conn.execute(select(p).where(p.c.session_id == session_id))).mappings().all()
            )
        return [PushSubscription(r["endpoint"], r["p256dh"], r["auth"]) for r in rows]

    async def remove_push_subscription(self, session_id: str, endpoint: str) -> None:
        p = t.push_subscriptions
        async with self.db.begin() as conn:
            await conn.execute(
                p.delete().where(p.c.session_id == session_id, p.c.endpoint == endpoint)
            )
