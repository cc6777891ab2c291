"""A Server-Sent Events reader over httpx, as a browser's EventSource reads a stream."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

STATE = re.compile(r'data-state="([A-Z_]+)"')


@dataclass(frozen=True)
class SseEvent:
    id: str | None
    event: str
    data: str
    received: float  # time.monotonic() when the event was complete

    @property
    def version(self) -> int:
        assert self.id is not None
        return int(self.id)

    @property
    def state(self) -> str:
        match = STATE.search(self.data)
        assert match, self.data
        return match.group(1)


class SseStream:
    """``async with SseStream(client, "/s/…/events") as events``; read with ``next()``."""

    def __init__(self, client: httpx.AsyncClient, path: str, last_event_id: str | None = None):
        self.client = client
        self.path = path
        self.headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            self.headers["Last-Event-ID"] = last_event_id
        self.status: int | None = None
        self.ended = asyncio.Event()  # the server closed the stream
        self._events: asyncio.Queue[SseEvent] = asyncio.Queue()
        self._opened = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SseStream:
        self._task = asyncio.get_running_loop().create_task(self._read())
        await asyncio.wait_for(self._opened.wait(), 10)
        if self._task.done():
            self._task.result()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Drop the connection, as a phone losing its network does."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def next(self, timeout: float = 5.0) -> SseEvent:
        return await asyncio.wait_for(self._events.get(), timeout)

    async def nothing_within(self, seconds: float) -> bool:
        try:
            event = await asyncio.wait_for(self._events.get(), seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected event {event.id}: {event.state}")

    async def _read(self) -> None:
        try:
            async with self.client.stream("GET", self.path, headers=self.headers) as response:
                self.status = response.status_code
                self._opened.set()
                if response.status_code != 200:
                    return
                fields: dict[str, list[str]] = {}
                async for line in response.aiter_lines():
                    if line == "":
                        if "data" in fields:
                            self._events.put_nowait(
                                SseEvent(
                                    (fields.get("id") or [None])[-1],
                                    (fields.get("event") or ["message"])[-1],
                                    "\n".join(fields["data"]),
                                    time.monotonic(),
                                )
                            )
                        fields = {}
                        continue
                    if line.startswith(":"):
                        continue
                    name, _, value = line.partition(":")
                    fields.setdefault(name, []).append(value.removeprefix(" "))
        finally:
            self._opened.set()
            self.ended.set()
