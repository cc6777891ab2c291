"""Provider webhook events, kept with their whole body before anything acts on them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from plugpay.services.ports.webhooks import StoredEvent
from plugpay.store import tables as t
from plugpay.store.clock import aware, now

_W = t.webhook_events


def _event(row: Any) -> StoredEvent:
    return StoredEvent(
        id=row["id"],
        provider=row["provider"],
        type=row["type"],
        payment_ref=row["payment_ref"],
        body=row["body"],
        received_at=aware(row["received_at"]) or row["received_at"],
        processed_at=aware(row["processed_at"]),
        outcome=row["outcome"],
    )


class SqlWebhookRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def store(
        self, event_id: str, provider: str, type_: str, payment_ref: str | None, body: str
    ) -> bool:
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    insert(_W).values(
                        id=event_id,
                        provider=provider,
                        type=type_,
                        payment_ref=payment_ref,
                        body=body,
                        received_at=now(),
                    )
                )
        except IntegrityError:
            return False
        return True

    async def get(self, event_id: str) -> StoredEvent | None:
        row = (await self.conn.execute(select(_W).where(_W.c.id == event_id))).mappings().first()
        return _event(row) if row else None

    async def processed(self, event_id: str, outcome: str) -> None:
        await self.conn.execute(
            update(_W).where(_W.c.id == event_id).values(processed_at=now(), outcome=outcome[:200])
        )
