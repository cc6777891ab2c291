"""RFID cards: issued by a station owner to a driver group, linked by a driver to
their account, whose default saved card pays for what the card starts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RfidCard:
    id_tag: str
    status: str  # Accepted | Blocked
    account_id: int | None
    group_name: str | None
    label: str | None
    expires_at: datetime | None
    created_at: datetime


class RfidRepository(Protocol):
    """Inside a unit of work; session tokens (id_tags with a charger) are no cards."""

    async def get(self, id_tag: str) -> RfidCard | None: ...
    async def is_session_token(self, id_tag: str) -> bool: ...
    async def add(
        self,
        id_tag: str,
        *,
        account_id: int | None,
        group_name: str | None,
        label: str | None,
        expires_at: datetime | None,
        now: datetime,
    ) -> RfidCard: ...
    async def link(self, id_tag: str, account_id: int | None, label: str | None) -> None: ...
    async def delete(self, id_tag: str) -> None: ...
    async def set_status(self, id_tag: str, status: str) -> bool: ...


class RfidStore(Protocol):
    async def card(self, id_tag: str) -> RfidCard | None: ...
    async def cards(self, account_id: int | None = None, limit: int = 1000) -> list[RfidCard]:
        """The account's cards (every card: None), newest first."""
        ...
