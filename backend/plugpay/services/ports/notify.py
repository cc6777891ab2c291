"""Notifications to the driver's devices (Web Push)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class PushSubscription:
    endpoint: str
    p256dh: str
    auth: str


class PushSender(Protocol):
    public_key: str  # VAPID application server key (base64url, uncompressed P-256 point)

    async def send(self, subscription: PushSubscription, payload: dict[str, Any]) -> str:
        """Deliver one notification: "sent", "gone" (404/410: forget it) or "failed"."""
        ...
