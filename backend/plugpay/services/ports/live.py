"""Live session updates across server instances."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol


class LiveBus(Protocol):
    """Live session updates to whichever instance holds the driver's SSE stream."""

    async def publish(self, session_id: str, event: dict[str, Any]) -> None: ...
    async def subscribe(self, session_id: str) -> LiveSubscription:
        """Registered when this returns: nothing published after that is missed."""
        ...


class LiveSubscription(Protocol):
    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...
    async def aclose(self) -> None: ...
