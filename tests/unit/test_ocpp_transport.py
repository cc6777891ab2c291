"""The WebSocket protocol's flow control: a socket is paused only when frames pile
up for the app, not after every frame."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.server import ServerState
from websockets.protocol import State

from plugpay.ocpp.transport import PAUSE_AT, ChargerWebSocketProtocol, _Inbox


class FakeTransport:
    def __init__(self) -> None:
        self.paused = 0
        self.resumed = 0
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data

    def pause_reading(self) -> None:
        self.paused += 1

    def resume_reading(self) -> None:
        self.resumed += 1


async def _app(scope: Any, receive: Any, send: Any) -> None:  # never called here
    raise AssertionError


def protocol() -> tuple[ChargerWebSocketProtocol, FakeTransport]:
    config = uvicorn.Config(_app, ws=ChargerWebSocketProtocol)
    config.load()
    proto = ChargerWebSocketProtocol(config, ServerState(), {}, _loop=asyncio.get_running_loop())
    transport = FakeTransport()
    proto.transport = transport  # type: ignore[assignment]
    return proto, transport


def frame_in(proto: ChargerWebSocketProtocol, text: str) -> None:
    proto.frames = [text.encode()]
    proto.curr_msg_data_type = "text"
    proto.send_receive_event_to_app()


async def test_one_frame_at_a_time_never_pauses_the_socket() -> None:
    proto, transport = protocol()
    for n in range(20):
        frame_in(proto, f'[2,"{n}","Heartbeat",{{}}]')
        message = await proto.receive()
        assert message == {"type": "websocket.receive", "text": f'[2,"{n}","Heartbeat",{{}}]'}
    assert transport.paused == 0 and transport.resumed == 0


async def test_frames_piling_up_pause_the_socket_until_taken() -> None:
    proto, transport = protocol()
    for n in range(PAUSE_AT - 1):
        frame_in(proto, str(n))
    assert transport.paused == 0
    frame_in(proto, "last")
    assert transport.paused == 1 and proto.read_paused
    frame_in(proto, "already read from the socket")  # paused once, not again
    assert transport.paused == 1
    taken = [(await proto.receive())["text"] for _ in range(PAUSE_AT + 1)]
    assert taken == [*map(str, range(PAUSE_AT - 1)), "last", "already read from the socket"]
    assert transport.resumed == 1 and not proto.read_paused


async def test_inbox_hands_items_over_in_order_and_survives_cancelled_readers() -> None:
    inbox = _Inbox(asyncio.get_running_loop())
    first = asyncio.ensure_future(inbox.get())
    second = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait("a")
    first.cancel()  # woken, then cancelled before it ran: "a" goes to the next reader
    assert await asyncio.wait_for(second, 1) == "a"
    inbox.put_nowait("b")
    inbox.put_nowait("c")
    assert inbox.qsize() == 2
    assert [await inbox.get(), await inbox.get()] == ["b", "c"]
    assert inbox.empty()


async def test_send_text_writes_one_frame_and_refuses_a_gone_connection() -> None:
    proto, transport = protocol()
    with pytest.raises(ClientDisconnected):  # not accepted yet
        await proto.send_text('[3,"1",{}]')
    proto.handshake_complete = True
    proto.conn.state = State.OPEN
    await proto.send_text('[3,"1",{}]')
    # An unmasked server text frame: FIN and opcode 1, the length, the text.
    assert transport.written[2:] == b'[3,"1",{}]'
    assert transport.written[:2] == bytes([0x81, len(b'[3,"1",{}]')])
    proto.disconnected = True
    with pytest.raises(ClientDisconnected):
        await proto.send_text('[3,"2",{}]')
