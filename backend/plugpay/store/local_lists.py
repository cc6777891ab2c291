"""Local authorisation lists: what each charger holds, and what it should hold."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.dialects import postgresql, sqlite

from plugpay.store import tables as t
from plugpay.store.clock import aware, now
from plugpay.store.database import Database

_L = t.local_lists
_T = t.id_tags
_C = t.saved_cards
# tag -> (status, expiry as ISO text or None)
Entries = dict[str, tuple[str, str | None]]


class SqlLocalListStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def sent(self, charger_id: str) -> tuple[int, Entries] | None:
        async with self.db.connect() as conn:
            row = (
                (await conn.execute(select(_L).where(_L.c.charger_id == charger_id)))
                .mappings()
                .first()
            )
        if row is None:
            return None
        entries: dict[str, Any] = row["entries"] or {}
        return int(row["version"]), {k: (str(v[0]), v[1]) for k, v in entries.items()}

    async def record(self, charger_id: str, version: int, entries: Entries) -> None:
        dialect = sqlite if self.db.is_sqlite else postgresql
        values = {"version": version, "entries": {k: list(v) for k, v in entries.items()}}
        async with self.db.begin() as conn:
            await conn.execute(
                dialect.insert(_L)
                .values(charger_id=charger_id, updated_at=now(), **values)
                .on_conflict_do_update(
                    index_elements=[_L.c.charger_id], set_={**values, "updated_at": now()}
                )
            )

    async def wanted(self) -> Entries:
        """Every RFID card a charger should know offline: accepted cards that can be
        charged, and blocked or expired ones (so that they stay refused offline)."""
        has_card = (
            exists()
            .where(
                _C.c.account_id == _T.c.account_id,
                _C.c.is_default.is_(True),
                _C.c.removed_at.is_(None),
            )
            .label("has_card")
        )
        query = select(_T, has_card).where(_T.c.charger_id.is_(None))
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        moment = now()
        wanted: Entries = {}
        for r in rows:
            expires: datetime | None = aware(r["expires_at"])
            until = expires.isoformat(timespec="seconds") if expires else None
            if r["status"] == "Blocked":
                wanted[r["id_tag"]] = ("Blocked", until)
            elif expires is not None and expires < moment:
                wanted[r["id_tag"]] = ("Expired", until)
            elif (r["account_id"] is None and r["group_name"] is None) or r["has_card"]:
                wanted[r["id_tag"]] = ("Accepted", until)
        return wanted

    async def chargers(self) -> list[str]:
        async with self.db.connect() as conn:
            return [str(c) for c in (await conn.execute(select(t.chargers.c.id))).scalars()]
