"""Live updates within one process: a bounded queue per subscriber."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any

# A subscriber that falls this far behind loses the oldest updates; every
# update is a full snapshot, so the next one shows the true state again.
QUEUE_SIZE = 64


class Subscription:
    """Registered when created (so nothing published after that is missed); iterate to read."""

    def __init__(self, on_close: Callable[[Subscription], None]) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.on_close = on_close
        self._closed = False

    def put(self, event: dict[str, Any]) -> None:
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(event)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        return await self.queue.get()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self.on_close(self)


class MemoryLiveBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)

    async def publish(self, session_id: str, event: dict[str, Any]) -> None:
        self.deliver(session_id, event)

    def deliver(self, session_id: str, event: dict[str, Any]) -> None:
        for subscription in list(self._subscribers.get(session_id, ())):
            subscription.put(event)

    async def subscribe(self, session_id: str) -> Subscription:
        return self.subscribe_now(session_id)

    def subscribe_now(self, session_id: str) -> Subscription:
        def close(subscription: Subscription) -> None:
            subscribers = self._subscribers.get(session_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[session_id]

        subscription = Subscription(close)
        self._subscribers[session_id].add(subscription)
        return subscription

    def has_subscribers(self, session_id: str) -> bool:
        return bool(self._subscribers.get(session_id))

    async def close(self) -> None:
        self._subscribers.clear()
