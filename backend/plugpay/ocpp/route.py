"""The OCPP WebSocket endpoint ``/ocpp/{charger_id}`` as a raw ASGI handler.

Raw ASGI keeps the per-frame cost to the minimum and lets the handshake be
refused with a real HTTP status (401 wrong credentials, 404 unknown charger,
400 no common sub-protocol, 429 too many failures: see ``throttle``) through
the ASGI WebSocket Denial Response extension; servers without it close with
403 instead.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from plugpay.ocpp import handlers16, handlers201
from plugpay.ocpp.connection import ChargerConnection, Handler
from plugpay.ocpp.metrics import HANDSHAKES
from plugpay.ocpp.registry import ConnectionRegistry
from plugpay.ocpp.throttle import HandshakeThrottle, client_address
from plugpay.ocpp.transport import SEND_TEXT
from plugpay.services.ports import MessageLog

log = logging.getLogger(__name__)

SUBPROTOCOLS: dict[str, tuple[str, dict[str, Handler]]] = {
    "ocpp1.6": ("1.6", handlers16.HANDLERS),
    "ocpp2.0.1": ("2.0.1", handlers201.HANDLERS),
}

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def basic_credentials(headers: list[tuple[bytes, bytes]]) -> tuple[str, str] | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, encoded = value.decode("latin-1").partition(" ")
            if scheme.lower() != "basic":
                return None
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            username, sep, password = decoded.partition(":")
            return (username, password) if sep else None
    return None


def pick_subprotocol(offered: list[str]) -> str | None:
    for name in offered:
        if name in SUBPROTOCOLS:
            return name
    return None


async def _deny(
    scope: dict[str, Any], send: Any, status: int, reason: str, retry_after: float | None = None
) -> None:
    HANDSHAKES.labels(str(status)).inc()
    if "websocket.http.response" in scope.get("extensions", {}):
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        if status == 401:
            headers.append((b"www-authenticate", b'Basic realm="plugpay OCPP"'))
        if retry_after is not None:
            headers.append((b"retry-after", str(max(1, math.ceil(retry_after))).encode()))
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": reason.encode()})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": reason})


async def _replace(old: ChargerConnection, charger_id: str) -> None:
    """Close the connection a reconnecting charger left behind."""
    old.fail_pending("replaced by a new connection")
    if old.close_hook is None:
        return
    try:
        await old.close_hook()
    except Exception:  # the old socket may already be gone
        log.debug("closing replaced connection of %s failed", charger_id)


async def _authenticate(
    services: Any,
    throttle: HandshakeThrottle,
    charger_id: str,
    password: str | None,
    address: str | None,
) -> tuple[str, float | None]:
    """The outcome of a handshake's credentials ('ok', 'unknown', 'denied' or
    'throttled') and, when throttled, the seconds to wait."""
    async with throttle.turn(charger_id, address):
        wait = throttle.retry_after(charger_id, address)
        if wait is not None:
            return "throttled", wait
        outcome: str = await services.chargers.authenticate(charger_id, password)
        if outcome == "ok":
            throttle.succeeded(charger_id, address)
        elif outcome == "unknown" or password is not None:
            lockout = throttle.failed(charger_id if outcome == "denied" else None, address)
            if lockout is not None:
                log.warning(
                    "handshakes for %s from %s refused for %.0f s after repeated failures",
                    charger_id[:64],
                    address,
                    lockout,
                )
    return outcome, None


def make_ocpp_endpoint(
    services: Any,
    registry: ConnectionRegistry,
    message_log: MessageLog,
    call_timeout: float,
    throttle: HandshakeThrottle | None = None,
) -> ASGIApp:
    if throttle is None:  # not `or`: an empty throttle has no length, and is falsy
        throttle = HandshakeThrottle()

    async def endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await send(
                {
                    "type": "http.response.start",
                    "status": 426,
                    "headers": [(b"content-type", b"text/plain"), (b"upgrade", b"websocket")],
                }
            )
            await send({"type": "http.response.body", "body": b"OCPP needs a WebSocket upgrade"})
            return
        # ASGI has already percent-decoded the path: decoding again would let
        # "CP%252D1" reach charger "CP-1".
        charger_id = scope["path"].rstrip("/").rsplit("/", 1)[-1]
        if (await receive())["type"] != "websocket.connect":
            return
        subprotocol = pick_subprotocol(list(scope.get("subprotocols") or []))
        if subprotocol is None:
            await _deny(scope, send, 400, "no supported OCPP sub-protocol (ocpp1.6, ocpp2.0.1)")
            return
        address = client_address(scope.get("client"))
        # A locked-out client is turned away before it waits for a turn.
        wait = throttle.retry_after(charger_id, address)
        if wait is not None:
            await _deny(scope, send, 429, "too many failed handshakes", wait)
            return
        credentials = basic_credentials(scope.get("headers", []))
        if credentials is not None and credentials[0] != charger_id:
            await _deny(scope, send, 401, "username differs from the charger id")
            return
        outcome, wait = await _authenticate(
            services, throttle, charger_id, credentials[1] if credentials else None, address
        )
        if outcome == "throttled":
            await _deny(scope, send, 429, "too many failed handshakes", wait)
            return
        if outcome == "unknown":
            await _deny(scope, send, 404, "unknown charger")
            return
        if outcome != "ok":
            await _deny(scope, send, 401, "wrong or missing password")
            return
        version, handlers = SUBPROTOCOLS[subprotocol]
        await send({"type": "websocket.accept", "subprotocol": subprotocol})
        HANDSHAKES.labels("accepted").inc()

        send_text = scope.get("extensions", {}).get(SEND_TEXT)
        if send_text is None:  # another ASGI server: the standard message

            async def send_text(text: str) -> None:
                await send({"type": "websocket.send", "text": text})

        conn = ChargerConnection(
            charger_id, version, send_text, handlers, message_log, services, call_timeout
        )

        async def close() -> None:
            await send(
                {"type": "websocket.close", "code": 1000, "reason": "replaced by a new connection"}
            )

        conn.close_hook = close
        old = registry.add(conn)
        connected_at = datetime.now(UTC)
        try:
            if old is not None:
                await _replace(old, charger_id)
            await services.chargers.connected(charger_id, version, connected_at, registry.instance)
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    # Binary frames are read as UTF-8 text: some chargers send them.
                    data = message.get("text")
                    await conn.receive(data if data is not None else message.get("bytes") or b"")
                elif kind == "websocket.disconnect":
                    break
        except (asyncio.CancelledError, OSError):
            pass
        except Exception:
            log.exception("connection of %s failed", charger_id)
        finally:
            conn.fail_pending("connection closed")
            # What the charger sent before it went is still applied (and made
            # durable) before it is marked disconnected.
            await conn.drain()
            if registry.remove(conn):
                try:
                    await asyncio.shield(
                        services.chargers.disconnected(charger_id, datetime.now(UTC), connected_at)
                    )
                except Exception:
                    log.exception("could not record the disconnect of %s", charger_id)

    return endpoint
