"""A stand-in for a browser and its push service, for Web Push tests.

No browser can subscribe to a push service offline, so the tests play both
parts. :class:`FakeBrowser` does what ``PushManager.subscribe()`` does: it
makes a P-256 key pair and a 16-byte auth secret and hands out a subscription
``{endpoint, keys: {p256dh, auth}}``. :class:`PushReceiver` is the push service:
a local aiohttp server that takes the POST, checks the VAPID token the way a
push service does (signature, key = the ``applicationServerKey`` the browser
subscribed with) and decrypts the body as the browser would, with
``http_ece`` in ``aes128gcm``. It answers with a configurable status (201 by
default; 404 or 410 to play an expired subscription).

The JWT is verified here with ``cryptography`` directly, not with py_vapid, so
the check is independent of the library that signed it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from plugpay.services.ports import PushSubscription


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class FakeBrowser:
    """One browser profile subscribed with the server's application server key."""

    def __init__(self, application_server_key: str) -> None:
        self.application_server_key = application_server_key
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth_secret = secrets.token_bytes(16)
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.p256dh = b64url_encode(point)
        self.auth = b64url_encode(self.auth_secret)

    def decrypt(self, body: bytes) -> bytes:
        return bytes(
            http_ece.decrypt(
                body,
                private_key=self.private_key,
                auth_secret=self.auth_secret,
                version="aes128gcm",
            )
        )


@dataclass
class VapidToken:
    header: dict[str, Any]
    claims: dict[str, Any]
    key: str  # the k= parameter: the sender's public key, base64url
    signature_valid: bool


@dataclass
class ReceivedPush:
    endpoint: str
    headers: Mapping[str, str]  # case-insensitive
    status: int  # what the receiver answered
    token: VapidToken | None = None
    plaintext: bytes | None = None
    payload: Any = None
    errors: list[str] = field(default_factory=list)


def parse_vapid_authorization(value: str) -> VapidToken:
    """Parse ``Authorization: vapid t=<jwt>,k=<key>`` and verify the JWT's ES256 signature."""
    scheme, _, params = value.partition(" ")
    if scheme.lower() != "vapid":
        raise ValueError(f"authorization scheme is {scheme!r}, not vapid")
    parts = dict(item.strip().split("=", 1) for item in params.split(","))
    token, key = parts["t"], parts["k"]
    header_b64, claims_b64, signature_b64 = token.split(".")
    header = json.loads(b64url_decode(header_b64))
    claims = json.loads(b64url_decode(claims_b64))
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
    raw = b64url_decode(signature_b64)
    valid = len(raw) == 64 and header.get("alg") == "ES256"
    if valid:
        signature = encode_dss_signature(
            int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        )
        try:
            public_key.verify(
                signature, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature:
            valid = False
    return VapidToken(header, claims, key, valid)


class PushReceiver:
    """A push service on a free loopback port. Use as ``async with PushReceiver() as r``."""

    def __init__(self, status: int = 201, delay: float = 0.0) -> None:
        self.status = status  # answer to a valid message
        self.delay = delay  # seconds to wait before answering
        self.messages: list[ReceivedPush] = []
        self._browsers: dict[str, FakeBrowser] = {}
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Condition()
        self.port = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/push/{token}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> PushReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def subscribe(self, browser: FakeBrowser) -> PushSubscription:
        """What ``PushManager.subscribe()`` resolves to, pointing at this receiver."""
        token = secrets.token_urlsafe(24)
        self._browsers[token] = browser
        return PushSubscription(
            endpoint=f"{self.origin}/push/{token}", p256dh=browser.p256dh, auth=browser.auth
        )

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedPush]:
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.messages) >= count), timeout
            )
        return list(self.messages)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        browser = self._browsers.get(request.match_info["token"])
        message = ReceivedPush(
            endpoint=str(request.url), headers=request.headers.copy(), status=self.status
        )
        if browser is None:
            message.status = 404
            message.errors.append("unknown subscription")
        else:
            self._check(request, body, browser, message)
        async with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=message.status)

    def _check(
        self, request: web.Request, body: bytes, browser: FakeBrowser, message: ReceivedPush
    ) -> None:
        authorization = request.headers.get("Authorization", "")
        try:
            message.token = parse_vapid_authorization(authorization)
        except (ValueError, KeyError) as exc:
            message.errors.append(f"bad Authorization header: {exc}")
            message.status = 401
            return
        if not message.token.signature_valid:
            message.errors.append("VAPID signature does not verify")
            message.status = 401
            return
        if message.token.key != browser.application_server_key:
            message.errors.append("VAPID key differs from the applicationServerKey")
            message.status = 403
            return
        if request.headers.get("Content-Encoding") != "aes128gcm":
            message.errors.append(f"Content-Encoding {request.headers.get('Content-Encoding')}")
            message.status = 400
            return
        try:
            message.plaintext = browser.decrypt(body)
            message.payload = json.loads(message.plaintext)
        except Exception as exc:
            message.errors.append(f"cannot decrypt: {type(exc).__name__}: {exc}")
            message.status = 400
