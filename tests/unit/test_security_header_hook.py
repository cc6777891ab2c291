"""The security-headers hook: adds what is missing to HTTP responses, keeps what a handler
set, leaves WebSocket messages alone; HSTS only for a public https origin."""

from __future__ import annotations

from typing import Any, cast

import pytest
from litestar.types import Message, Scope

from plugpay.web.security import CONTENT_SECURITY_POLICY, security_headers, uses_hsts


def scope(path: str = "/", kind: str = "http") -> Scope:
    return cast(Scope, {"type": kind, "path": path, "headers": []})


async def sent(message: dict[str, Any], path: str = "/", kind: str = "http") -> dict[str, Any]:
    hook = security_headers("https://charge.example.com")
    await hook(cast(Message, message), scope(path, kind))
    return message


def names(message: dict[str, Any]) -> list[bytes]:
    return [name for name, _ in message["headers"]]


async def test_a_response_start_gets_every_header() -> None:
    message = await sent({"type": "http.response.start", "status": 404, "headers": []})
    headers = dict(message["headers"])
    assert headers[b"content-security-policy"] == CONTENT_SECURITY_POLICY.encode()
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"x-frame-options"] == b"DENY"
    assert headers[b"referrer-policy"] == b"same-origin"
    assert headers[b"cross-origin-opener-policy"] == b"same-origin"
    assert headers[b"strict-transport-security"] == b"max-age=63072000; includeSubDomains"
    assert b"payment=(self" in headers[b"permissions-policy"]


async def test_a_header_the_handler_set_is_kept_whatever_its_case() -> None:
    own = (b"Content-Security-Policy", b"default-src 'none'")
    message = await sent(
        {"type": "http.response.start", "status": 200, "headers": [own, (b"x-a", b"1")]}
    )
    assert message["headers"][:2] == [own, (b"x-a", b"1")]
    assert [n.lower() for n in names(message)].count(b"content-security-policy") == 1


async def test_headers_given_as_a_tuple_are_extended_too() -> None:
    message = await sent(
        {"type": "http.response.start", "status": 426, "headers": ((b"upgrade", b"websocket"),)}
    )
    assert message["headers"][0] == (b"upgrade", b"websocket")
    assert b"x-frame-options" in names(message)


@pytest.mark.parametrize(
    "message",
    [
        {"type": "http.response.body", "body": b"x", "more_body": False},
        {"type": "websocket.accept", "subprotocol": "ocpp1.6", "headers": []},
        {"type": "websocket.send", "text": '[2,"1","Heartbeat",{}]'},
        {"type": "websocket.close", "code": 1000},
    ],
)
async def test_bodies_and_websocket_messages_pass_untouched(message: dict[str, Any]) -> None:
    before = dict(message)
    kind = "websocket" if message["type"].startswith("websocket") else "http"
    assert await sent(message, "/ocpp/CP-1", kind) == before


async def test_the_payment_pages_may_open_popups() -> None:
    message = await sent({"type": "http.response.start", "status": 200, "headers": []}, "/pay/x")
    assert dict(message["headers"])[b"cross-origin-opener-policy"] == b"same-origin-allow-popups"


@pytest.mark.parametrize(
    ("public_url", "hsts"),
    [
        ("https://charge.example.com", True),
        ("https://charge.example.com:8443/base", True),
        ("https://10.0.0.5", True),
        ("http://charge.example.com", False),
        ("https://localhost", False),
        ("https://LOCALHOST:8443", False),
        ("https://plugpay.localhost", False),
        ("https://127.0.0.1:8000", False),
        ("https://127.1.2.3", False),
        ("https://[::1]:8443", False),
        ("http://127.0.0.1:8000", False),
    ],
)
def test_hsts_only_for_a_public_https_origin(public_url: str, hsts: bool) -> None:
    assert uses_hsts(public_url) is hsts
