"""Live updates across server instances through Redis pub/sub.

The instance that holds a charger's WebSocket prices its readings and
publishes; whichever instance holds the driver's SSE stream receives. One
Redis pub/sub connection per instance listens to the session channels it has
local subscribers for, and fans out in process.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
import redis.asyncio as aioredis

from plugpay.live.memory import MemoryLiveBus, Subscription

log = logging.getLogger(__name__)
CHANNEL = "plugpay:session:"


class RedisLiveBus:
    def __init__(self, url: str) -> None:
        self._redis = aioredis.from_url(url)
        self._local = MemoryLiveBus()
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._channels: set[str] = set()
        self._reader: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def publish(self, session_id: str, event: dict[str, Any]) -> None:
        await self._redis.publish(CHANNEL + session_id, msgspec.json.encode(event))

    async def subscribe(self, session_id: str) -> Subscription:
        subscription = self._local.subscribe_now(session_id)
        close = subscription.on_close

        def on_close(sub: Subscription) -> None:
            close(sub)
            if not self._local.has_subscribers(session_id):
                self._channels.discard(session_id)
                self._pending.add(
                    asyncio.get_running_loop().create_task(self._unsubscribe(session_id))
                )

        subscription.on_close = on_close
        if session_id not in self._channels:
            self._channels.add(session_id)
            await self._pubsub.subscribe(CHANNEL + session_id)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read())
        return subscription

    async def _unsubscribe(self, session_id: str) -> None:
        if session_id not in self._channels:
            await self._pubsub.unsubscribe(CHANNEL + session_id)

    async def _read(self) -> None:
        while self._channels or self._pubsub.subscribed:
            try:
                if not self._pubsub.subscribed:
                    await asyncio.sleep(0.01)
                    continue
                message = await self._pubsub.get_message(timeout=1.0)
            except Exception:
                log.exception("redis live bus read failed; retrying")
                await asyncio.sleep(1)
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"].decode()
            self._local.deliver(channel.removeprefix(CHANNEL), msgspec.json.decode(message["data"]))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._redis.aclose()
