"""The WebSocket handshake: only a known charger with its own password and an OCPP
sub-protocol we speak gets in; a refused one leaves no trace. A reconnecting
charger replaces its old connection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import websockets
from sqlalchemy import func, select

from conftest import PASSWORD
from plugpay.store import tables as t
from support.ocpp_client import OcppClient, basic_auth, counts, eventually, rows
from support.server import RunningServer, start_server


async def handshake_status(
    server: RunningServer, path_id: str, headers: dict[str, str], subprotocols: list[str] | None
) -> int:
    try:
        ws = await websockets.connect(
            f"{server.ocpp_url}/{path_id}",
            subprotocols=[websockets.Subprotocol(s) for s in subprotocols or []] or None,
            additional_headers=headers,
            open_timeout=5,
        )
    except websockets.InvalidStatus as refused:
        return refused.response.status_code
    await ws.close()
    return 101


async def trace(server: RunningServer, charger_id: str) -> dict[str, Any]:
    async with server.runtime.db.connect() as conn:
        messages = await conn.scalar(select(func.count()).select_from(t.ocpp_messages))
    return {
        "tables": await counts(server.runtime),
        "ocpp_messages": messages,
        "charger": await rows(server.runtime, t.chargers, t.chargers.c.id == charger_id),
    }


async def test_refused_handshakes_leave_no_trace(server: RunningServer, charger_id: str) -> None:
    await server.runtime.services.chargers.add_charger("CP-2", "another-password-0123")
    before = await trace(server, charger_id)
    ok = basic_auth(charger_id, PASSWORD)
    cases = [
        ("unknown charger", "CP-404", basic_auth("CP-404", PASSWORD), ["ocpp1.6"], 404),
        (
            "wrong password",
            charger_id,
            basic_auth(charger_id, "wrong-password-0123"),
            ["ocpp1.6"],
            401,
        ),
        (
            "another charger's password",
            charger_id,
            basic_auth(charger_id, "another-password-0123"),
            ["ocpp2.0.1"],
            401,
        ),
        (
            "username is not the path id",
            charger_id,
            basic_auth("CP-2", "another-password-0123"),
            ["ocpp1.6"],
            401,
        ),
        ("no Authorization header", charger_id, {}, ["ocpp1.6"], 401),
        ("not Basic auth", charger_id, {"Authorization": "Bearer abc"}, ["ocpp1.6"], 401),
        ("garbled Basic auth", charger_id, {"Authorization": "Basic !!!"}, ["ocpp1.6"], 401),
        ("unsupported sub-protocol", charger_id, ok, ["ocpp1.5", "ocpp2.1"], 400),
        ("no sub-protocol", charger_id, ok, None, 400),
        ("id encoded twice", "CP%252D1", basic_auth("CP%2D1", PASSWORD), ["ocpp1.6"], 404),
    ]
    for name, path_id, headers, subprotocols, status in cases:
        assert await handshake_status(server, path_id, headers, subprotocols) == status, name
    assert await trace(server, charger_id) == before
    view = await server.runtime.charger_store.get(charger_id)
    assert view is not None and not view.connected


async def test_the_first_offered_sub_protocol_we_speak_is_chosen(
    server: RunningServer, charger_id: str
) -> None:
    ws = await websockets.connect(
        f"{server.ocpp_url}/{charger_id}",
        subprotocols=[websockets.Subprotocol(s) for s in ("ocpp2.1", "ocpp2.0.1", "ocpp1.6")],
        additional_headers=basic_auth(charger_id, PASSWORD),
    )
    try:
        assert ws.subprotocol == "ocpp2.0.1"
    finally:
        await ws.close()


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_reconnecting_charger_replaces_its_old_connection(
    server: RunningServer, charger_id: str, version: str
) -> None:
    old = await OcppClient.connect(server.ocpp_url, charger_id, PASSWORD, version)
    await old.heartbeat_works()
    new = await OcppClient.connect(server.ocpp_url, charger_id, PASSWORD, version)
    try:
        await asyncio.wait_for(old.closed.wait(), 5)  # the server closed the old socket
        assert old.ws.close_code == 1000
        assert await new.heartbeat_works()

        async def still_connected() -> bool:
            view = await server.runtime.charger_store.get(charger_id)
            return view is not None and view.connected

        await asyncio.sleep(0.2)  # let the old connection's clean-up run
        assert await still_connected()
        assert len(server.runtime.registry) == 1

        # Commands now reach the new connection.
        command = asyncio.create_task(
            server.runtime.services.commands.trigger(charger_id, "Heartbeat")
        )
        frame = await new.server_call()
        assert frame[2] == "TriggerMessage"
        await new.answer(frame, {"status": "Accepted"})
        assert await command == "Accepted"
    finally:
        await new.close()
        await old.close()

    async def disconnected() -> bool:
        view = await server.runtime.charger_store.get(charger_id)
        return view is not None and not view.connected

    await eventually(disconnected)
    assert len(server.runtime.registry) == 0


async def test_a_charger_that_moved_to_another_instance_stays_connected(
    server: RunningServer, charger_id: str
) -> None:
    # Behind a load balancer the reconnect may land on another server instance;
    # the first instance notices the old socket is gone only later.
    other = await start_server(server.settings)
    try:
        first = await OcppClient.connect(server.ocpp_url, charger_id, PASSWORD, "1.6")
        await first.heartbeat_works()
        second = await OcppClient.connect(other.ocpp_url, charger_id, PASSWORD, "1.6")
        await second.heartbeat_works()
        await first.close()

        async def first_cleaned_up() -> bool:
            return server.runtime.registry.get(charger_id) is None

        await eventually(first_cleaned_up)
        await asyncio.sleep(0.3)  # the first instance records the close after forgetting it
        view = await server.runtime.charger_store.get(charger_id)
        assert view is not None and view.connected
        await second.close()

        async def disconnected() -> bool:
            view = await other.runtime.charger_store.get(charger_id)
            return view is not None and not view.connected

        await eventually(disconnected)
    finally:
        await other.stop()
