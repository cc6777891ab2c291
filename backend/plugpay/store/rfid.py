"""RFID cards: the id_tags rows without a charger (those are paid sessions' tokens)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from plugpay.services.ports.rfid import RfidCard
from plugpay.store import tables as t
from plugpay.store.clock import aware
from plugpay.store.database import Database

_T = t.id_tags
_CARDS = _T.c.charger_id.is_(None)


def _card(row: Any) -> RfidCard:
    return RfidCard(
        id_tag=row["id_tag"],
        status=row["status"],
        account_id=row["account_id"],
        group_name=row["group_name"],
        label=row["label"],
        expires_at=aware(row["expires_at"]),
        created_at=aware(row["created_at"]) or row["created_at"],
    )


class SqlRfidRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def get(self, id_tag: str) -> RfidCard | None:
        query = select(_T).where(_T.c.id_tag == id_tag, _CARDS)
        row = (await self.conn.execute(query)).mappings().first()
        return _card(row) if row else None

    async def is_session_token(self, id_tag: str) -> bool:
        query = select(_T.c.id_tag).where(_T.c.id_tag == id_tag, _T.c.charger_id.is_not(None))
        return (await self.conn.execute(query)).first() is not None

    async def add(
        self,
        id_tag: str,
        *,
        account_id: int | None,
        group_name: str | None,
        label: str | None,
        expires_at: datetime | None,
        now: datetime,
    ) -> RfidCard:
        await self.conn.execute(
            insert(_T).values(
                id_tag=id_tag,
                status="Accepted",
                account_id=account_id,
                group_name=group_name,
                label=label,
                expires_at=expires_at,
                note="rfid card",
                created_at=now,
            )
        )
        card = await self.get(id_tag)
        assert card is not None
        return card

    async def link(self, id_tag: str, account_id: int | None, label: str | None) -> None:
        await self.conn.execute(
            update(_T)
            .where(_T.c.id_tag == id_tag, _CARDS)
            .values(account_id=account_id, label=label)
        )

    async def delete(self, id_tag: str) -> None:
        await self.conn.execute(delete(_T).where(_T.c.id_tag == id_tag, _CARDS))

    async def set_status(self, id_tag: str, status: str) -> bool:
        result = await self.conn.execute(
            update(_T).where(_T.c.id_tag == id_tag, _CARDS).values(status=status)
        )
        return bool(result.rowcount)


class SqlRfidStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def card(self, id_tag: str) -> RfidCard | None:
        async with self.db.connect() as conn:
            row = (
                (await conn.execute(select(_T).where(_T.c.id_tag == id_tag, _CARDS)))
                .mappings()
                .first()
            )
        return _card(row) if row else None

    async def cards(self, account_id: int | None = None, limit: int = 1000) -> list[RfidCard]:
        query = select(_T).where(_CARDS)
        if account_id is not None:
            query = query.where(_T.c.account_id == account_id)
        async with self.db.connect() as conn:
            rows = (
                (await conn.execute(query.order_by(_T.c.created_at.desc()).limit(limit)))
                .mappings()
                .all()
            )
        return [_card(r) for r in rows]
