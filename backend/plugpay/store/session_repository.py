"""Charging sessions inside a unit of work: locked reads, moves along the table."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from plugpay.domain.session import TERMINAL_STATES, SessionState, check_transition, sources_of
from plugpay.services.ports import (
    ConnectorTaken,
    PushSubscription,
    SessionRecord,
    StaleSession,
    TransactionInfo,
)
from plugpay.store import tables as t
from plugpay.store.clock import now
from plugpay.store.sessions import session_record, transaction_info_of

log = logging.getLogger(__name__)
_S = t.charging_sessions
# A paid session's token outlives no session: revoked when it ends, and this
# long at most in any case.
TOKEN_LIFETIME = timedelta(days=2)


class SqlSessionRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def _one(self, where: Any) -> SessionRecord | None:
        row = (
            (await self.conn.execute(select(_S).where(where).with_for_update())).mappings().first()
        )
        return session_record(row) if row else None

    async def get(self, session_id: str) -> SessionRecord | None:
        return await self._one(_S.c.id == session_id)

    async def by_id_tag(self, id_tag: str) -> SessionRecord | None:
        return await self._one(_S.c.id_tag == id_tag)

    async def by_transaction(self, transaction_pk: int) -> SessionRecord | None:
        return await self._one(_S.c.transaction_pk == transaction_pk)

    async def by_payment_ref(self, payment_ref: str) -> SessionRecord | None:
        return await self._one(_S.c.payment_ref == payment_ref)

    async def create(self, values: dict[str, Any]) -> SessionRecord:
        stamp = now()
        try:
            # A savepoint: on PostgreSQL a failed statement would abort the unit.
            async with self.conn.begin_nested():
                row = (
                    (
                        await self.conn.execute(
                            insert(_S)
                            .values(
                                state=SessionState.CREATED,
                                energy_wh=0,
                                cost_minor=0,
                                created_at=stamp,
                                updated_at=stamp,
                                version=0,
                                **values,
                            )
                            .returning(*_S.c)
                        )
                    )
                    .mappings()
                    .one()
                )
        except IntegrityError as exc:
            text = str(exc.orig).lower()
            if "connector" in text or "uq_charging_sessions_active" in text:
                raise ConnectorTaken(f"connector {values['connector_id']} is taken") from None
            raise
        return session_record(row)

    async def move(self, record: SessionRecord, target: str, **values: Any) -> SessionRecord:
        goal = check_transition(record.state, SessionState(target))
        if goal in TERMINAL_STATES:
            values["deadline_at"] = None  # nothing more to wait for
        row = (
            (
                await self.conn.execute(
                    update(_S)
                    .where(
                        _S.c.id == record.id,
                        _S.c.state == record.state,
                        _S.c.state.in_(sorted(sources_of(goal))),
                    )
                    .values(state=goal, updated_at=now(), version=_S.c.version + 1, **values)
                    .returning(*_S.c)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise StaleSession(f"session {record.id} is no longer {record.state}")
        return session_record(row)

    async def update(self, record: SessionRecord, **values: Any) -> SessionRecord:
        row = (
            (
                await self.conn.execute(
                    update(_S)
                    .where(_S.c.id == record.id)
                    .values(updated_at=now(), version=_S.c.version + 1, **values)
                    .returning(*_S.c)
                )
            )
            .mappings()
            .one()
        )
        return session_record(row)

    async def next_receipt_number(self) -> int:
        # The counter's row stays locked until this transaction ends: numbers are
        # taken one after the other, and one rolled back is taken again.
        c = t.counters
        dialect = sqlite if self.conn.dialect.name == "sqlite" else postgresql
        statement = dialect.insert(c).values(name="receipt", value=1)
        taken = await self.conn.execute(
            statement.on_conflict_do_update(
                index_elements=[c.c.name], set_={"value": c.c.value + 1}
            ).returning(c.c.value)
        )
        return int(taken.scalar_one())

    async def stopping_on(self, charger_id: str) -> list[str]:
        rows = await self.conn.execute(
            select(_S.c.id).where(
                _S.c.charger_id == charger_id, _S.c.state == SessionState.STOPPING
            )
        )
        return [r.id for r in rows]

    async def due(self, at: datetime, limit: int) -> list[str]:
        rows = await self.conn.execute(
            select(_S.c.id).where(_S.c.deadline_at <= at).order_by(_S.c.deadline_at).limit(limit)
        )
        return [r.id for r in rows]

    async def transaction_info(self, transaction_pk: int) -> TransactionInfo | None:
        return await transaction_info_of(self.conn, transaction_pk)

    async def charger_connected(self, charger_id: str) -> bool:
        value = await self.conn.scalar(
            select(t.chargers.c.connected).where(t.chargers.c.id == charger_id)
        )
        return bool(value)

    async def add_push_subscription(self, session_id: str, sub: PushSubscription) -> None:
        p = t.push_subscriptions
        await self.conn.execute(
            p.delete().where(p.c.session_id == session_id, p.c.endpoint == sub.endpoint)
        )
        await self.conn.execute(
            insert(p).values(
                session_id=session_id,
                endpoint=sub.endpoint,
                p256dh=sub.p256dh,
                auth=sub.auth,
                created_at=now(),
            )
        )

    async def add_id_tag(self, id_tag: str, note: str, charger_id: str | None = None) -> None:
        stamp = now()
        await self.conn.execute(
            insert(t.id_tags).values(
                id_tag=id_tag,
                status="Accepted",
                note=note,
                charger_id=charger_id,
                expires_at=stamp + TOKEN_LIFETIME,
                created_at=stamp,
            )
        )

    async def revoke_id_tag(self, id_tag: str) -> None:
        stamp = now()
        await self.conn.execute(
            update(t.id_tags)
            .where(t.id_tags.c.id_tag == id_tag, t.id_tags.c.expires_at > stamp)
            .values(expires_at=stamp)
        )

    async def alert(self, session: SessionRecord, kind: str, detail: dict[str, Any]) -> None:
        log.error("session %s: %s %s", session.id, kind, detail)
        await self.conn.execute(
            insert(t.review_items).values(
                charger_id=session.charger_id,
                kind=kind,
                detail={"session": session.id, **detail},
                created_at=now(),
            )
        )
