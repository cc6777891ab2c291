"""What each charger's local authorisation list holds, and what it should hold."""

from __future__ import annotations

from typing import Protocol

# tag -> (status, expiry as ISO text or None)
Entries = dict[str, tuple[str, str | None]]


class LocalListStore(Protocol):
    async def sent(self, charger_id: str) -> tuple[int, Entries] | None:
        """The version and entries the charger last accepted (None: never sent)."""
        ...

    async def record(self, charger_id: str, version: int, entries: Entries) -> None: ...
    async def wanted(self) -> Entries: ...
    async def chargers(self) -> list[str]: ...
