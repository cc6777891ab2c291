"""Rate limits on what strangers can trigger (a guest start reserves a connector
and places a payment hold)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one hit on a limit.

    ``retry_after`` is 0.0 when allowed; when refused, the seconds until a hit
    on the same key would be allowed. ``remaining`` counts the hits still
    allowed in the window after this one.
    """

    allowed: bool
    retry_after: float
    remaining: int


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: float) -> Decision:
        """Count one hit on *key*: allowed while fewer than *limit* hits were
        allowed in the last *window_seconds* (a sliding window). A refused hit
        is not counted, so a client that waits ``retry_after`` gets through."""
        ...
