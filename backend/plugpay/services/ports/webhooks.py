"""Provider webhook events as kept before they are acted on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: str
    provider: str
    type: str
    payment_ref: str | None
    body: str | None
    received_at: datetime
    processed_at: datetime | None
    outcome: str | None


class WebhookRepository(Protocol):
    async def store(
        self, event_id: str, provider: str, type_: str, payment_ref: str | None, body: str
    ) -> bool:
        """Keep the event with its whole body; False when it is there already."""
        ...

    async def get(self, event_id: str) -> StoredEvent | None: ...
    async def processed(self, event_id: str, outcome: str) -> None: ...
