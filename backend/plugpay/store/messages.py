"""The per-charger log of OCPP frames, in and out, for operators to read.

A CALL from a charger and the answer we sent share one row (the hot path
writes half the rows); ``recent`` lists them as two frames again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select

from plugpay.services.ports import LoggedMessage
from plugpay.store import tables as t
from plugpay.store.clock import aware
from plugpay.store.database import Database
from plugpay.store.writer import BatchWriter

CALL = 2

# The log is purged this many rows per transaction, oldest first.
PURGE_CHUNK = 2_000

# Frames are kept whole up to this size; longer ones (firmware logs, signed
# meter data) are cut so one chatty charger cannot bloat the database.
MAX_FRAME_CHARS = 8_000


def _text(value: str) -> str:
    # PostgreSQL text cannot hold NUL; a charger's garbage may.
    return value.replace("\x00", "\\u0000") if "\x00" in value else value


def _cut(value: str | None, limit: int = 64) -> str | None:
    return _text(value[:limit]) if value is not None else None


def _row(
    charger_id: str,
    direction: str,
    message_type: int | None,
    unique_id: str | None,
    action: str | None,
    frame: str,
    at: datetime,
) -> dict[str, Any]:
    return {
        "charger_id": charger_id,
        "direction": direction,
        "message_type": message_type,
        # Whatever the charger sent must fit the columns (64 chars): a refused
        # row would cost a retry of the whole batch.
        "unique_id": _cut(unique_id),
        "action": _cut(action),
        "frame": _text(frame[:MAX_FRAME_CHARS]),
        "at": at,
    }


class SqlMessageLog:
    def __init__(self, db: Database, writer: BatchWriter) -> None:
        self.db = db
        self.writer = writer

    def append(self, message: LoggedMessage) -> None:
        self._insert(
            _row(
                message.charger_id,
                message.direction,
                message.message_type,
                message.unique_id,
                message.action,
                message.frame,
                message.at,
            )
        )

    def exchange(
        self,
        charger_id: str,
        unique_id: str,
        action: str,
        frame: str,
        at: datetime,
        answer: str,
        answered_at: datetime,
    ) -> None:
        row = _row(charger_id, "in", CALL, unique_id, action, frame, at)
        row["answer"] = _text(answer[:MAX_FRAME_CHARS])
        row["answered_at"] = answered_at
        self._insert(row)

    def _insert(self, row: dict[str, Any]) -> None:
        # A lost log row is logged, never a reason to fail a message.
        self.writer.insert(t.ocpp_messages, row, durable=False)

    async def purge(self, before: datetime, chunk: int = PURGE_CHUNK) -> int:
        """Delete the rows older than ``before``; how many went.

        Rows are taken in id order, ``chunk`` at a time in short transactions
        (the hot writes wait for none of them for long), and the purge stops at
        the first chunk holding a row it must keep: ids grow with time, so
        everything after it is newer. Needs no index beyond the primary key.
        """
        m = t.ocpp_messages
        total = 0
        async with self.db.connect() as conn:
            first = await conn.scalar(select(func.min(m.c.id)))
        while first is not None:
            end = first + chunk
            async with self.db.begin() as conn:
                result = await conn.execute(delete(m).where(m.c.id < end, m.c.at < before))
                first = await conn.scalar(select(func.min(m.c.id)))
            gone = result.rowcount or 0
            total += gone
            if not gone or (first is not None and first < end):  # a row of this chunk is kept
                break
        return total

    async def recent(self, charger_id: str, limit: int = 100) -> list[LoggedMessage]:
        """The last ``limit`` frames of ``charger_id``, oldest first."""
        await self.writer.commit(best_effort=True)
        async with self.db.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(t.ocpp_messages)
                        .where(t.ocpp_messages.c.charger_id == charger_id)
                        .order_by(t.ocpp_messages.c.at.desc(), t.ocpp_messages.c.id.desc())
                        .limit(limit)
                    )
                )
                .mappings()
                .all()
            )
        frames: list[LoggedMessage] = []
        for r in reversed(rows):
            frames.append(
                LoggedMessage(
                    r["charger_id"],
                    r["direction"],
                    r["message_type"],
                    r["unique_id"],
                    r["action"],
                    r["frame"],
                    aware(r["at"]) or r["at"],
                )
            )
            if r["answer"] is not None:
                frames.append(
                    LoggedMessage(
                        r["charger_id"],
                        "out",
                        _answer_type(r["answer"]),
                        r["unique_id"],
                        r["action"],
                        r["answer"],
                        aware(r["answered_at"]) or r["answered_at"],
                    )
                )
        return frames[-limit:]


def _answer_type(frame: str) -> int | None:
    # "[3," or "[4," — the answer frames are ours, written by framing.
    kind = frame[1:2]
    return int(kind) if kind.isdigit() else None
