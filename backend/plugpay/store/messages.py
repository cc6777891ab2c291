"""The per-charger log of OCPP frames, in and out, for operators to read."""

from __future__ import annotations

from sqlalchemy import select

from plugpay.services.ports import LoggedMessage
from plugpay.store import tables as t
from plugpay.store.chargers import aware
from plugpay.store.database import Database
from plugpay.store.writer import BatchWriter

# Frames are kept whole up to this size; longer ones (firmware logs, signed
# meter data) are cut so one chatty charger cannot bloat the database.
MAX_FRAME_CHARS = 8_000


class SqlMessageLog:
    def __init__(self, db: Database, writer: BatchWriter) -> None:
        self.db = db
        self.writer = writer

    def append(self, message: LoggedMessage) -> None:
        self.writer.insert(
            t.ocpp_messages,
            {
                "charger_id": message.charger_id,
                "direction": message.direction,
                "message_type": message.message_type,
                "unique_id": message.unique_id,
                "action": message.action,
                "frame": message.frame[:MAX_FRAME_CHARS],
                "at": message.at,
            },
        )

    async def recent(self, charger_id: str, limit: int = 100) -> list[LoggedMessage]:
        await self.writer.commit()
        async with self.db.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(t.ocpp_messages)
                        .where(t.ocpp_messages.c.charger_id == charger_id)
                        .order_by(t.ocpp_messages.c.id.desc())
                        .limit(limit)
                    )
                )
                .mappings()
                .all()
            )
        return [
            LoggedMessage(
                r["charger_id"],
                r["direction"],
                r["message_type"],
                r["unique_id"],
                r["action"],
                r["frame"],
                aware(r["at"]) or r["at"],
            )
            for r in reversed(rows)
        ]
