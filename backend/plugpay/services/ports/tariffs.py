"""Tariffs and where connectors are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StoredTariff:
    pk: int  # this exact version
    tariff_id: str
    version: int
    ocpi_json: str  # exact decimals, as imported


@dataclass(frozen=True, slots=True)
class ConnectorPlace:
    """Where a connector is: what the driver's page and the tariff choice need."""

    charger_id: str
    connector_id: int
    site_id: int | None
    site_name: str | None
    time_zone: str
    status: str
    connected: bool
    connector_count: int
    standard: str | None = None
    max_power_w: int | None = None


class TariffStore(Protocol):
    async def add_version(self, tariff_id: str, currency: str, ocpi_json: str) -> StoredTariff: ...
    async def latest(self, tariff_id: str) -> StoredTariff | None: ...
    async def by_pk(self, pk: int) -> StoredTariff | None: ...
    async def list_latest(self) -> list[StoredTariff]: ...
    async def assign(
        self,
        tariff_id: str,
        *,
        site_id: int | None = None,
        charger_id: str | None = None,
        connector_id: int | None = None,
        audience: str = "*",
    ) -> None: ...
    async def assignments_for(
        self, site_id: int | None, charger_id: str, connector_id: int
    ) -> list[tuple[str, str, str]]:
        """(scope, audience, tariff_id) candidates: scope is connector | charger | site."""
        ...

    async def place(self, charger_id: str, connector_id: int) -> ConnectorPlace | None: ...
