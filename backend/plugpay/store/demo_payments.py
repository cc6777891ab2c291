"""The demo payment provider's records (holds, customers, setups), kept across restarts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update

from plugpay.store import tables as t
from plugpay.store.clock import now
from plugpay.store.database import Database


class SqlDemoPaymentStore:
    """Keeps the demo provider's payment intents across restarts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self, ref: str) -> dict[str, Any] | None:
        async with self.db.connect() as conn:
            value = await conn.scalar(
                select(t.demo_payments.c.data).where(t.demo_payments.c.ref == ref)
            )
        return dict(value) if value is not None else None

    async def save(self, ref: str, data: dict[str, Any]) -> None:
        d = t.demo_payments
        async with self.db.begin() as conn:
            changed = await conn.execute(
                update(d).where(d.c.ref == ref).values(data=data, updated_at=now())
            )
            if changed.rowcount == 0:
                await conn.execute(insert(d).values(ref=ref, data=data, updated_at=now()))
