"""Frames nested deeper than any OCPP message are format violations: answered with
the CALLERROR OCPP-J prescribes, on a connection that stays up, storing nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conftest import PASSWORD
from plugpay.domain.errors import CommandFailed
from plugpay.ocpp.framing import MAX_DEPTH
from support.ocpp_client import OcppClient, counts
from support.server import RunningServer

FORMAT = {"1.6": "FormationViolation", "2.0.1": "FormatViolation"}


def nested_objects(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


@pytest.fixture(params=["1.6", "2.0.1"])
async def client(
    request: pytest.FixtureRequest, server: RunningServer, charger_id: str
) -> AsyncIterator[OcppClient]:
    conn = await OcppClient.connect(server.ocpp_url, charger_id, PASSWORD, request.param)
    yield conn
    await conn.close()


async def expect_format_violation(client: OcppClient, unique_id: str) -> list[Any]:
    frame = await client.next_answer()
    assert frame[:3] == [4, unique_id, FORMAT[client.version]], frame
    assert isinstance(frame[3], str) and frame[4] == {}
    return frame


async def test_deeply_nested_frames_are_format_violations_and_the_charger_stays(
    server: RunningServer, client: OcppClient
) -> None:
    before = await counts(server.runtime)
    await client.send_raw("[" * 1024 + "]" * 1024)  # 2 KB, no message id to read
    await expect_format_violation(client, "-1")
    await client.send_raw(b"[" * 1024 + b"]" * 1024)  # the same as a binary frame
    await expect_format_violation(client, "-1")
    await client.send_raw('[2,"deep-1","Heartbeat",' + nested_objects(400) + "]")
    await expect_format_violation(client, "deep-1")
    await client.send_raw('[2,"deep-2","DataTransfer",{"vendorId":"v","data":' + "[" * 5000)
    await expect_format_violation(client, "deep-2")
    # Brackets inside strings do not nest, and cannot hide the nesting outside them.
    hidden = json.dumps("]" * 200)
    await client.send_raw(f'[2,"deep-3","Heartbeat",{{"s":{hidden},"a":{nested_objects(100)}}}]')
    await expect_format_violation(client, "deep-3")
    assert await counts(server.runtime) == before
    assert not client.closed.is_set()
    assert await client.heartbeat_works()


async def test_nesting_up_to_the_limit_is_read_as_usual(
    server: RunningServer, client: OcppClient
) -> None:
    # The frame's array, the payload, and customData: three levels before the rest.
    filler = {"s": "[" * 300}  # brackets in a string are not nesting
    custom: dict[str, Any] = {"vendorId": "v", **filler}
    for _ in range(MAX_DEPTH - 3):
        custom = {"vendorId": "v", "x": custom}
    frame = await client.call_frame("Heartbeat", {"customData": custom})
    if client.version == "2.0.1":
        assert frame[0] == 3, frame  # customData takes any extra properties
    else:
        assert frame[:3] == [4, frame[1], "FormationViolation"]  # 1.6 has no customData
        assert "nested" not in frame[3]
    deeper = {"vendorId": "v", "x": custom}
    await client.send_raw(json.dumps([2, "one-too-deep", "Heartbeat", {"customData": deeper}]))
    await expect_format_violation(client, "one-too-deep")
    assert await client.heartbeat_works()


async def test_a_deeply_nested_answer_fails_its_command_and_is_not_answered(
    server: RunningServer, client: OcppClient, charger_id: str
) -> None:
    command = asyncio.create_task(server.runtime.services.commands.trigger(charger_id, "Heartbeat"))
    call = await client.server_call()
    await client.send_raw(f'[3,"{call[1]}",{nested_objects(1000)}]')
    with pytest.raises(CommandFailed):
        await asyncio.wait_for(command, 5)
    await client.no_answer()
    assert await client.heartbeat_works()
