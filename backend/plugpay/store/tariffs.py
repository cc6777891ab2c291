"""Tariff versions and their assignment to connectors, chargers, sites and audiences."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from plugpay.services.ports import ConnectorPlace, StoredTariff
from plugpay.store import tables as t
from plugpay.store.clock import now
from plugpay.store.database import Database


def _stored(row: Any) -> StoredTariff:
    return StoredTariff(row["id"], row["tariff_id"], row["version"], row["ocpi"])


class SqlTariffStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_version(self, tariff_id: str, currency: str, ocpi_json: str) -> StoredTariff:
        for _ in range(3):  # two imports racing for the same version number retry
            try:
                async with self.db.begin() as conn:
                    current = await conn.scalar(
                        select(func.max(t.tariffs.c.version)).where(
                            t.tariffs.c.tariff_id == tariff_id
                        )
                    )
                    version = int(current or 0) + 1
                    pk = (
                        await conn.execute(
                            insert(t.tariffs).values(
                                tariff_id=tariff_id,
                                version=version,
                                currency=currency,
                                ocpi=ocpi_json,
                                created_at=now(),
                            )
                        )
                    ).inserted_primary_key[0]  # type: ignore[index]
                return StoredTariff(int(pk), tariff_id, version, ocpi_json)
            except IntegrityError:
                continue
        raise RuntimeError(f"could not store a new version of tariff {tariff_id}")

    async def latest(self, tariff_id: str) -> StoredTariff | None:
        async with self.db.connect() as conn:
            row = (
                (
                    await conn.execute(
                        select(t.tariffs)
                        .where(t.tariffs.c.tariff_id == tariff_id)
                        .order_by(t.tariffs.c.version.desc())
                        .limit(1)
                    )
                )
                .mappings()
                .first()
            )
        return _stored(row) if row else None

    async def by_pk(self, pk: int) -> StoredTariff | None:
        async with self.db.connect() as conn:
            row = (
                (await conn.execute(select(t.tariffs).where(t.tariffs.c.id == pk)))
                .mappings()
                .first()
            )
        return _stored(row) if row else None

    async def list_latest(self) -> list[StoredTariff]:
        newest = (
            select(t.tariffs.c.tariff_id, func.max(t.tariffs.c.version).label("v"))
            .group_by(t.tariffs.c.tariff_id)
            .subquery()
        )
        query = select(t.tariffs).join(
            newest,
            (newest.c.tariff_id == t.tariffs.c.tariff_id) & (newest.c.v == t.tariffs.c.version),
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query.order_by(t.tariffs.c.tariff_id))).mappings().all()
        return [_stored(r) for r in rows]

    async def assign(
        self,
        tariff_id: str,
        *,
        site_id: int | None = None,
        charger_id: str | None = None,
        connector_id: int | None = None,
        audience: str = "*",
    ) -> None:
        a = t.tariff_assignments
        async with self.db.begin() as conn:
            await conn.execute(
                a.delete().where(
                    a.c.site_id.is_(None) if site_id is None else a.c.site_id == site_id,
                    a.c.charger_id.is_(None)
                    if charger_id is None
                    else a.c.charger_id == charger_id,
                    a.c.connector_id.is_(None)
                    if connector_id is None
                    else a.c.connector_id == connector_id,
                    a.c.audience == audience,
                )
            )
            await conn.execute(
                insert(a).values(
                    site_id=site_id,
                    charger_id=charger_id,
                    connector_id=connector_id,
                    audience=audience,
                    tariff_id=tariff_id,
                    created_at=now(),
                )
            )

    async def assignments_for(
        self, site_id: int | None, charger_id: str, connector_id: int
    ) -> list[tuple[str, str, str]]:
        a = t.tariff_assignments
        async with self.db.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(a).where(
                            (
                                (a.c.charger_id == charger_id)
                                & ((a.c.connector_id == connector_id) | a.c.connector_id.is_(None))
                            )
                            | ((a.c.site_id == site_id) & a.c.charger_id.is_(None))
                        )
                    )
                )
                .mappings()
                .all()
            )
        result = []
        for r in rows:
            scope = (
                "connector"
                if r["connector_id"] is not None
                else "charger"
                if r["charger_id"]
                else "site"
            )
            result.append((scope, str(r["audience"]), str(r["tariff_id"])))
        return result

    async def site_id(self, name: str) -> int | None:
        async with self.db.connect() as conn:
            value = await conn.scalar(select(t.sites.c.id).where(t.sites.c.name == name))
        return None if value is None else int(value)

    async def place(self, charger_id: str, connector_id: int) -> ConnectorPlace | None:
        query = (
            select(
                t.chargers.c.id,
                t.chargers.c.site_id,
                t.chargers.c.connected,
                t.chargers.c.connector_count,
                t.sites.c.name,
                t.sites.c.time_zone,
                t.connectors.c.status,
                t.connectors.c.standard,
                t.connectors.c.max_power_w,
            )
            .join(
                t.connectors,
                (t.connectors.c.charger_id == t.chargers.c.id)
                & (t.connectors.c.connector_id == connector_id),
            )
            .outerjoin(t.sites, t.sites.c.id == t.chargers.c.site_id)
            .where(t.chargers.c.id == charger_id)
        )
        async with self.db.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        return ConnectorPlace(
            charger_id=row["id"],
            connector_id=connector_id,
            site_id=row["site_id"],
            site_name=row["name"],
            time_zone=row["time_zone"] or "UTC",
            status=row["status"],
            connected=bool(row["connected"]),
            connector_count=row["connector_count"],
            standard=row["standard"],
            max_power_w=row["max_power_w"],
        )
