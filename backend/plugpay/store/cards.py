"""Saved cards and the accounts' customers at the payment provider."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from plugpay.services.ports.cards import NewCard, SavedCard
from plugpay.store import tables as t
from plugpay.store.clock import aware
from plugpay.store.database import Database

_C = t.saved_cards
_P = t.payment_customers


def _card(row: Any) -> SavedCard:
    return SavedCard(
        id=row["id"],
        account_id=row["account_id"],
        provider=row["provider"],
        customer_ref=row["customer_ref"],
        method_ref=row["method_ref"],
        card_brand=row["card_brand"],
        card_last4=row["card_last4"],
        exp_month=row["exp_month"],
        exp_year=row["exp_year"],
        is_default=bool(row["is_default"]),
        created_at=aware(row["created_at"]) or row["created_at"],
    )


class SqlCardRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def customer_of(self, account_id: int, provider: str) -> str | None:
        ref = await self.conn.execute(
            select(_P.c.customer_ref).where(
                _P.c.account_id == account_id, _P.c.provider == provider
            )
        )
        value = ref.scalar_one_or_none()
        return str(value) if value is not None else None

    async def customers(self, account_id: int) -> list[tuple[str, str]]:
        rows = await self.conn.execute(
            select(_P.c.provider, _P.c.customer_ref)
            .where(_P.c.account_id == account_id)
            .order_by(_P.c.provider)
        )
        return [(str(provider), str(ref)) for provider, ref in rows]

    async def add_customer(
        self, account_id: int, provider: str, customer_ref: str, now: datetime
    ) -> str:
        dialect = sqlite if self.conn.dialect.name == "sqlite" else postgresql
        await self.conn.execute(
            dialect.insert(_P)
            .values(
                account_id=account_id, provider=provider, customer_ref=customer_ref, created_at=now
            )
            .on_conflict_do_nothing()
        )
        return await self.customer_of(account_id, provider) or customer_ref

    async def add(
        self, account_id: int, provider: str, customer_ref: str, card: NewCard, now: datetime
    ) -> SavedCard:
        known = (
            (await self.conn.execute(select(_C).where(_C.c.method_ref == card.method_ref)))
            .mappings()
            .first()
        )
        if known is not None:
            if known["removed_at"] is None:
                return _card(known)
            await self.conn.execute(
                update(_C).where(_C.c.id == known["id"]).values(removed_at=None, is_default=False)
            )
            card_id = int(known["id"])
        else:
            # A second request saving the same card at the same time (a double click)
            # finds the row the first one made.
            dialect = sqlite if self.conn.dialect.name == "sqlite" else postgresql
            await self.conn.execute(
                dialect.insert(_C)
                .values(
                    account_id=account_id,
                    provider=provider,
                    customer_ref=customer_ref,
                    method_ref=card.method_ref,
                    card_brand=card.card_brand,
                    card_last4=card.card_last4,
                    exp_month=card.exp_month,
                    exp_year=card.exp_year,
                    is_default=False,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=[_C.c.method_ref])
            )
            made = await self.conn.execute(
                select(_C.c.id).where(_C.c.method_ref == card.method_ref)
            )
            card_id = int(made.scalar_one())
        has_default = (
            await self.conn.execute(
                select(_C.c.id).where(
                    _C.c.account_id == account_id,
                    _C.c.provider == provider,
                    _C.c.removed_at.is_(None),
                    _C.c.is_default.is_(True),
                )
            )
        ).first()
        if has_default is None:
            await self.conn.execute(update(_C).where(_C.c.id == card_id).values(is_default=True))
        row = (await self.conn.execute(select(_C).where(_C.c.id == card_id))).mappings().one()
        return _card(row)

    async def get(self, account_id: int, card_id: int) -> SavedCard | None:
        row = (
            (
                await self.conn.execute(
                    select(_C).where(
                        _C.c.id == card_id, _C.c.account_id == account_id, _C.c.removed_at.is_(None)
                    )
                )
            )
            .mappings()
            .first()
        )
        return _card(row) if row else None

    async def remove(self, card: SavedCard, now: datetime) -> None:
        await self.conn.execute(
            update(_C).where(_C.c.id == card.id).values(removed_at=now, is_default=False)
        )
        if card.is_default:
            newest = (
                await self.conn.execute(
                    select(_C.c.id)
                    .where(
                        _C.c.account_id == card.account_id,
                        _C.c.provider == card.provider,
                        _C.c.removed_at.is_(None),
                    )
                    .order_by(_C.c.created_at.desc(), _C.c.id.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if newest is not None:
                await self.conn.execute(update(_C).where(_C.c.id == newest).values(is_default=True))

    async def make_default(self, card: SavedCard) -> None:
        mine = (_C.c.account_id == card.account_id) & (_C.c.provider == card.provider)
        await self.conn.execute(update(_C).where(mine).values(is_default=False))
        await self.conn.execute(update(_C).where(_C.c.id == card.id).values(is_default=True))


class SqlCardStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def cards(self, account_id: int, provider: str) -> list[SavedCard]:
        async with self.db.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(_C)
                        .where(
                            _C.c.account_id == account_id,
                            _C.c.provider == provider,
                            _C.c.removed_at.is_(None),
                        )
                        .order_by(_C.c.is_default.desc(), _C.c.created_at.desc(), _C.c.id.desc())
                    )
                )
                .mappings()
                .all()
            )
        return [_card(r) for r in rows]
