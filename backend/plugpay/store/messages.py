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


def _text(value: str) -> str:
    # PostgreSQL text cannot hold NUL; a charger's garbage may.
    return value.replace("\x00", "\\u0000") if "\x00" in value else value


def _cut(value: str | None, limit: int = 64) -> str | None:
    return _text(value[:limit]) if value is not None else None


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
                # Whatever the charger sent must fit the columns (64 chars): a
                # refused row would cost a retry of the whole batch.
                "unique_id": _cut(message.unique_id),
                "action": _cut(message.action),
                "frame": _text(message.frame[:MAX_FRAME_CHARS]),
                "at": message.at,
            },
            durable=False,  # a lost log row is logged, never a reason to fail a message
        )

    async def recent(self, charger_id: str, limit: int = 100) -> list[LoggedMessage]:
        await self.writer.commit(best_effort=True)
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
