"""The chargers connected to this server instance, and the link services use to reach them."""

from __future__ import annotations

import uuid
from typing import Any

from plugpay.domain.errors import ChargerOffline
from plugpay.ocpp.connection import ChargerConnection
from plugpay.ocpp.metrics import CONNECTED


class ConnectionRegistry:
    def __init__(self) -> None:
        self._connections: dict[str, ChargerConnection] = {}
        # This server instance, as recorded with the chargers it holds.
        self.instance = uuid.uuid4().hex

    def add(self, conn: ChargerConnection) -> ChargerConnection | None:
        """Register ``conn``; return the connection it replaces, if any."""
        old = self._connections.get(conn.charger_id)
        self._connections[conn.charger_id] = conn
        CONNECTED.set(len(self._connections))
        return old

    def remove(self, conn: ChargerConnection) -> bool:
        """Forget ``conn`` unless a newer connection already replaced it."""
        if self._connections.get(conn.charger_id) is conn:
            del self._connections[conn.charger_id]
            CONNECTED.set(len(self._connections))
            return True
        return False

    def get(self, charger_id: str) -> ChargerConnection | None:
        return self._connections.get(charger_id)

    def __len__(self) -> int:
        return len(self._connections)

    def ids(self) -> list[str]:
        return list(self._connections)


class LocalChargerLink:
    """ChargerLink for chargers connected to this process."""

    def __init__(self, registry: ConnectionRegistry) -> None:
        self.registry = registry

    async def version(self, charger_id: str) -> str | None:
        conn = self.registry.get(charger_id)
        return conn.version if conn and not conn.closed else None

    async def call(
        self, charger_id: str, action: str, payload: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        conn = self.registry.get(charger_id)
        if conn is None or conn.closed:
            raise ChargerOffline(f"charger {charger_id} is not connected")
        return await conn.call(action, payload, timeout)
