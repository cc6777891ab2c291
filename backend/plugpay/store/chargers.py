"""Chargers, connectors, id tags and review items in SQL."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from plugpay.domain.errors import AlreadyExists
from plugpay.services.ports import BootInfo, ChargerView, ConnectorView, NewCharger
from plugpay.services.ports.jobs import NewJob
from plugpay.store import tables as t
from plugpay.store.batches import one_row
from plugpay.store.clock import aware, now
from plugpay.store.database import Database
from plugpay.store.jobs import insert_job
from plugpay.store.writer import BatchWriter

_CARD = t.saved_cards
# The tag, and whether its account has a card to charge (a default saved card).
_ID_TAG = select(
    t.id_tags,
    exists()
    .where(
        _CARD.c.account_id == t.id_tags.c.account_id,
        _CARD.c.is_default.is_(True),
        _CARD.c.removed_at.is_(None),
    )
    .label("has_card"),
).where(t.id_tags.c.id_tag == bindparam("id_tag"))


class SqlChargerStore:
    def __init__(self, db: Database, writer: BatchWriter) -> None:
        self.db = db
        self.writer = writer

    async def add(self, charger: NewCharger) -> None:
        async with self.db.begin() as conn:
            site_id = None
            if charger.site_name:
                site_id = await conn.scalar(
                    select(t.sites.c.id).where(t.sites.c.name == charger.site_name)
                )
                if site_id is None:
                    site_id = (
                        await conn.execute(
                            insert(t.sites).values(
                                name=charger.site_name,
                                time_zone=charger.time_zone,
                                created_at=now(),
                            )
                        )
                    ).inserted_primary_key[0]  # type: ignore[index]
            try:
                await conn.execute(
                    insert(t.chargers).values(
                        id=charger.id,
                        site_id=site_id,
                        password_hash=charger.password_hash,
                        connector_count=charger.connector_count,
                        connected=False,
                        created_at=now(),
                    )
                )
            except IntegrityError:
                raise AlreadyExists(f"charger {charger.id} already exists") from None
            await conn.execute(
                insert(t.connectors),
                [
                    {
                        "charger_id": charger.id,
                        "connector_id": n,
                        "status": "Unknown",
                        "standard": charger.standard,
                        "max_power_w": charger.max_power_w,
                    }
                    for n in range(1, charger.connector_count + 1)
                ],
            )

    async def password_hash(self, charger_id: str) -> str | None:
        async with self.db.connect() as conn:
            value = await conn.scalar(
                select(t.chargers.c.password_hash).where(t.chargers.c.id == charger_id)
            )
        return value

    async def _views(self, where: Any = None) -> list[ChargerView]:
        query = select(t.chargers, t.sites.c.name.label("site_name")).outerjoin(
            t.sites, t.sites.c.id == t.chargers.c.site_id
        )
        if where is not None:
            query = query.where(where)
        async with self.db.connect() as conn:
            rows = (await conn.execute(query.order_by(t.chargers.c.id))).mappings().all()
            ids = [r["id"] for r in rows]
            connector_rows = (
                (
                    await conn.execute(
                        select(t.connectors)
                        .where(t.connectors.c.charger_id.in_(ids))
                        .order_by(t.connectors.c.charger_id, t.connectors.c.connector_id)
                    )
                )
                .mappings()
                .all()
                if ids
                else []
            )
        by_charger: dict[str, list[ConnectorView]] = {}
        for c in connector_rows:
            by_charger.setdefault(c["charger_id"], []).append(
                ConnectorView(
                    c["connector_id"], c["status"], c["error_code"], aware(c["status_at"])
                )
            )
        return [
            ChargerView(
                id=r["id"],
                site=r["site_name"],
                connected=bool(r["connected"]),
                ocpp_version=r["ocpp_version"],
                vendor=r["vendor"],
                model=r["model"],
                firmware_version=r["firmware_version"],
                firmware_status=r["firmware_status"],
                boot_status=r["boot_status"],
                last_boot_at=aware(r["last_boot_at"]),
                last_heartbeat_at=aware(r["last_heartbeat_at"]),
                connectors=tuple(by_charger.get(r["id"], [])),
            )
            for r in rows
        ]

    async def list_chargers(self) -> list[ChargerView]:
        return await self._views()

    async def get(self, charger_id: str) -> ChargerView | None:
        views = await self._views(t.chargers.c.id == charger_id)
        return views[0] if views else None

    async def set_connected(
        self, charger_id: str, version: str | None, at: datetime, instance: str | None = None
    ) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                update(t.chargers)
                .where(t.chargers.c.id == charger_id)
                .values(
                    connected=True,
                    connected_at=at,
                    connected_instance=instance,
                    ocpp_version=version,
                    last_seen_at=at,
                )
            )

    async def connected_instances(self) -> list[str]:
        """The server instances that hold connected chargers, as the database says."""
        c = t.chargers.c
        async with self.db.connect() as conn:
            found = await conn.scalars(
                select(c.connected_instance)
                .where(c.connected.is_(True), c.connected_instance.is_not(None))
                .distinct()
            )
            return [str(i) for i in found.all()]

    async def release_instance(self, instance: str, at: datetime) -> int:
        """Mark the chargers of a server instance that is gone disconnected."""
        c = t.chargers.c
        async with self.db.begin() as conn:
            result = await conn.execute(
                update(t.chargers)
                .where(c.connected.is_(True), c.connected_instance == instance)
                .values(connected=False, disconnected_at=at)
            )
        return int(result.rowcount or 0)

    async def reset_connections(self) -> int:
        """Mark every charger disconnected (a single instance starting up holds none)."""
        async with self.db.begin() as conn:
            result = await conn.execute(
                update(t.chargers).where(t.chargers.c.connected.is_(True)).values(connected=False)
            )
        return int(result.rowcount or 0)

    async def set_disconnected(
        self, charger_id: str, at: datetime, connected_at: datetime | None = None
    ) -> None:
        query = update(t.chargers).where(t.chargers.c.id == charger_id)
        if connected_at is not None:
            query = query.where(
                t.chargers.c.connected_at.is_(None) | (t.chargers.c.connected_at <= connected_at)
            )
        async with self.db.begin() as conn:
            await conn.execute(query.values(connected=False, disconnected_at=at))

    async def record_boot(
        self, charger_id: str, info: BootInfo, status: str, at: datetime, job: NewJob | None = None
    ) -> None:
        async with self.db.begin() as conn:
            if job is not None:
                await insert_job(conn, self.db.is_sqlite, job)
            await conn.execute(
                update(t.chargers)
                .where(t.chargers.c.id == charger_id)
                .values(
                    vendor=info.vendor,
                    model=info.model,
                    serial_number=info.serial_number,
                    firmware_version=info.firmware_version,
                    boot_status=status,
                    last_boot_at=at,
                    last_seen_at=at,
                )
            )

    def record_heartbeat(self, charger_id: str, at: datetime) -> None:
        self.writer.heartbeat(charger_id, at)

    async def record_status(
        self, charger_id: str, connector_id: int, status: str, error_code: str | None, at: datetime
    ) -> None:
        async with self.db.begin() as conn:
            if connector_id == 0:
                # Connector 0 is the charger as a whole; it is not a place to plug in.
                await conn.execute(
                    update(t.chargers).where(t.chargers.c.id == charger_id).values(last_seen_at=at)
                )
                return
            result = await conn.execute(
                update(t.connectors)
                .where(
                    t.connectors.c.charger_id == charger_id,
                    t.connectors.c.connector_id == connector_id,
                    # Out-of-order notifications never overwrite a newer status.
                    (t.connectors.c.status_at.is_(None)) | (t.connectors.c.status_at <= at),
                )
                .values(status=status, error_code=error_code, status_at=at)
            )
            if result.rowcount == 0:
                exists = await conn.scalar(
                    select(t.connectors.c.connector_id).where(
                        t.connectors.c.charger_id == charger_id,
                        t.connectors.c.connector_id == connector_id,
                    )
                )
                if exists is None:
                    # A connector the operator did not register: keep it, it is real.
                    await conn.execute(
                        insert(t.connectors).values(
                            charger_id=charger_id,
                            connector_id=connector_id,
                            status=status,
                            error_code=error_code,
                            status_at=at,
                        )
                    )

    async def record_firmware_status(self, charger_id: str, status: str, at: datetime) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                update(t.chargers)
                .where(t.chargers.c.id == charger_id)
                .values(firmware_status=status, last_seen_at=at)
            )

    async def id_tag_status(self, id_tag: str, charger_id: str | None = None) -> str:
        status = (await self.id_tag_lookup(id_tag, charger_id))[0]
        return "Invalid" if status == "Unknown" else status

    async def id_tag_lookup(
        self, id_tag: str, charger_id: str | None = None
    ) -> tuple[str, datetime | None]:
        # Read on every Authorize and every event with an idToken, never cached (a
        # session's token is revoked when it ends): one statement compiled once.
        row = await self.writer.run(one_row(_ID_TAG, {"id_tag": id_tag}), write=False)
        if row is None:
            return "Unknown", None
        if row["charger_id"] is not None and row["charger_id"] != charger_id:
            return "Invalid", None  # a paid session's token, shown at another charger
        expires = aware(row["expires_at"])
        if expires is not None and expires < now():
            return "Expired", expires
        status = str(row["status"])
        billed = row["account_id"] is not None or row["group_name"] is not None
        if status == "Accepted" and billed and not row["has_card"]:
            return "NoCredit", expires  # a driver's card with nothing to charge
        return status, expires

    async def add_id_tag(
        self, id_tag: str, status: str = "Accepted", note: str | None = None
    ) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                insert(t.id_tags).values(id_tag=id_tag, status=status, note=note, created_at=now())
            )

    async def add_review(self, charger_id: str, kind: str, detail: dict[str, Any]) -> None:
        """Keep an item for an operator; a repeat of an open item (a retried message) is not
        added again."""
        detail = json.loads(json.dumps(detail, default=str))
        async with self.db.begin() as conn:
            open_items = await conn.scalars(
                select(t.review_items.c.detail)
                .where(
                    t.review_items.c.charger_id == charger_id,
                    t.review_items.c.kind == kind,
                    t.review_items.c.resolved_at.is_(None),
                )
                .order_by(t.review_items.c.id.desc())
                .limit(100)  # a retry repeats a recent item
            )
            if any(item == detail for item in open_items):
                return
            await conn.execute(
                insert(t.review_items).values(
                    charger_id=charger_id, kind=kind, detail=detail, created_at=now()
                )
            )

    async def reviews(self, charger_id: str | None = None) -> list[dict[str, Any]]:
        query = select(t.review_items).order_by(t.review_items.c.id)
        if charger_id is not None:
            query = query.where(t.review_items.c.charger_id == charger_id)
        async with self.db.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings().all()]

    async def flush(self) -> None:
        await self.writer.commit()
