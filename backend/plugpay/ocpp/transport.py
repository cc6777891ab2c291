"""The WebSocket protocol ``plugpay serve`` gives uvicorn: its sans-I/O
protocol, with flow control fitted to chargers.

uvicorn stops reading a socket after every frame until the app has taken it,
then starts again: two ``epoll_ctl`` system calls per frame, and an
``asyncio.Queue`` whose ``get`` asks for the running loop (a ``getpid`` call
on Python 3.11). A charger sends one CALL and waits for the answer, so here a
socket is paused only once ``PAUSE_AT`` frames wait for the app (a charger
ignoring OCPP-J's one-CALL-at-a-time rule, or a burst of answers), and the
frames wait in a plain deque bound to the connection's loop.

It also offers the app a direct way to send a text frame, as the ASGI
extension ``SEND_TEXT`` in the connection's scope: the same as sending
``websocket.send``, without a message dict and the middleware every ASGI
message passes through. The OCPP endpoint uses it when it is there.
"""

from __future__ import annotations

import asyncio
from collections import deque
from contextlib import suppress
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.http11 import Request

# Frames waiting for the app before the socket is paused (it resumes once they
# are all taken).
PAUSE_AT = 4
# The scope extension holding ``async send_text(text)``.
SEND_TEXT = "plugpay.websocket.send_text"


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

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # an upgrade the app will see
            scope["extensions"][SEND_TEXT] = self.send_text

    async def send_text(self, text: str) -> None:
        """Send a text frame on an accepted connection (``websocket.send`` in short)."""
        if not self.writable.is_set():
            await self.writable.wait()
        if self.disconnected or self.close_sent or not self.handshake_complete:
            raise ClientDisconnected()
        try:
            self.conn.send_text(text.encode())
        except InvalidState:
            raise ClientDisconnected() from None
        self.transport.write(b"".join(self.conn.data_to_send()))
