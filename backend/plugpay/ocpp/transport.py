"""The WebSocket protocol ``plugpay serve`` gives uvicorn: its sans-I/O
protocol, with flow control fitted to chargers.

uvicorn stops reading a socket after every frame until the app has taken it,
then starts again: two ``epoll_ctl`` system calls per frame, and an
``asyncio.Queue`` whose ``get`` asks for the running loop (a ``getpid`` call
on Python 3.11). A charger sends one CALL and waits for the answer, so here a
socket is paused only once ``PAUSE_AT`` frames wait for the app (a charger
ignoring OCPP-J's one-CALL-at-a-time rule, or a burst of answers), and the
frames wait in a plain deque bound to the connection's loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from contextlib import suppress
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

# Frames waiting for the app before the socket is paused (it resumes once they
# are all taken).
PAUSE_AT = 4


class _Inbox:
    """The part of ``asyncio.Queue`` uvicorn's protocol uses, on a known loop."""

    __slots__ = ("_items", "_loop", "_waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: deque[Any] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self._wake_next()

    async def get(self) -> Any:
        while not self._items:
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                waiter.cancel()
                with suppress(ValueError):
                    self._waiters.remove(waiter)
                if self._items and not waiter.cancelled():
                    self._wake_next()  # woken, then cancelled: the next waiter's turn
                raise
        return self._items.popleft()

    def _wake_next(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class ChargerWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox(self.loop)  # type: ignore[assignment]

    def send_receive_event_to_app(self) -> None:
        paused = self.read_paused
        self.read_paused = True  # uvicorn pauses after every frame: not here
        try:
            super().send_receive_event_to_app()
        finally:
            self.read_paused = paused
        if not paused and self.queue.qsize() >= PAUSE_AT:
            self.read_paused = True
            self.transport.pause_reading()
