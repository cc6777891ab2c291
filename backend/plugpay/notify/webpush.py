"""Web Push delivery with VAPID (RFC 8030, RFC 8291, RFC 8292), through pywebpush.

Key format
----------
``PLUGPAY_VAPID_PRIVATE_KEY`` holds the VAPID private key as the **base64url
encoding of the raw 32-byte P-256 private scalar** (43 characters, padding
optional) — the format :func:`generate_vapid_private_key` produces and the one
the ``web-push`` tools print as the "private key". A PEM-encoded EC P-256
private key (PKCS#8 or SEC 1, unencrypted) is accepted as well. The matching
public key, which the browser needs as ``applicationServerKey``, is derived
from it: :attr:`WebPushSender.public_key`.

In development, :func:`load_or_create_dev_key` generates a key on first use and
keeps it in a file readable by its owner only, so that subscriptions survive a
restart. Changing the key invalidates every stored subscription.

``PLUGPAY_VAPID_SUBJECT`` is the contact the push services see in the token's
``sub`` claim: a ``mailto:`` address or an ``https:`` URL.

Outcomes
--------
:meth:`WebPushSender.send` answers ``"sent"``, ``"gone"`` or ``"failed"``:

* ``"sent"``: the push service accepted the message (2xx).
* ``"gone"``: the push service answered 404 or 410, or the subscription is
  malformed (endpoint or keys unusable) so that no delivery can ever succeed;
  the caller should forget the subscription.
* ``"failed"``: anything else (other HTTP status, redirect, timeout, unreachable
  endpoint, payload too large, an endpoint refused as not public); the
  subscription is kept.

Public hosts only
-----------------
A subscription's endpoint is whatever URL the driver's browser (or anyone
posing as one) handed in, so unless the sender is built with
``allow_private=True`` (development and tests, where the push service is a
local process) it posts only to public https hosts. Each send checks the
endpoint with :func:`plugpay.domain.push.check_push_endpoint`, resolves its
host and refuses if any address is not public, and checks the address the
connection actually reached before the TLS handshake: a name that was public
when the driver subscribed, or a moment ago, may point inside the network now
(DNS rebinding). A refusal is logged as a warning and answers ``"failed"``: it
is this server's policy, not the push service's word that the subscription is
gone. Through an HTTP(S) proxy the proxy resolves the name and connects, so
its own egress rules are what guard the last step.

Neither the keys nor the payload are ever logged; log lines name the endpoint's
origin only, since the endpoint path identifies the subscriber.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import re
import socket
import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02, VapidException
from pywebpush import WebPushException, webpush
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool

from plugpay.domain.errors import InvalidInput
from plugpay.domain.push import check_push_endpoint, is_public_address
from plugpay.services.ports import PushSubscription

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "PushOutcome",
    "WebPushSender",
    "generate_vapid_private_key",
    "load_or_create_dev_key",
]

log = logging.getLogger(__name__)

PushOutcome = Literal["sent", "gone", "failed"]

#: Largest plaintext that fits one aes128gcm record of 4096 bytes:
#: 4096 - 86 (header with the sender's public key) - 16 (tag) - 1 (padding delimiter).
MAX_PAYLOAD_BYTES = 3993

DEFAULT_TTL = 24 * 60 * 60  # seconds the push service may hold an undelivered message
DEFAULT_TIMEOUT = 10.0  # seconds, for connecting and for reading the answer
TOKEN_LIFETIME = 12 * 60 * 60  # RFC 8292 allows at most 24 hours

_KEY_FORMAT_HELP = (
    "the VAPID private key must be the base64url encoding of a raw 32-byte P-256 "
    "private key, or a PEM-encoded EC P-256 private key"
)
_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


def _b64url_decode(text: str) -> bytes:
    """Strict base64url decoding (padding optional); ValueError on anything else."""
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _load_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """Parse a VAPID private key; ValueError (never quoting the key) if malformed."""
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"{_KEY_FORMAT_HELP}; it is empty")
    if stripped.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(stripped.encode("ascii"), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm, UnicodeEncodeError):
            raise ValueError(f"{_KEY_FORMAT_HELP}; the PEM could not be read") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise ValueError(f"{_KEY_FORMAT_HELP}; the PEM holds another kind of key")
        return key
    try:
        raw = _b64url_decode(stripped)
    except ValueError:
        raise ValueError(f"{_KEY_FORMAT_HELP}; it is not valid base64url") from None
    if len(raw) != 32:
        raise ValueError(f"{_KEY_FORMAT_HELP}; it decodes to {len(raw)} bytes, not 32")
    try:
        return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except ValueError:
        raise ValueError(f"{_KEY_FORMAT_HELP}; the value is outside the curve's range") from None


def _public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url_encode(point)


def generate_vapid_private_key() -> str:
    """A new VAPID private key in the format ``PLUGPAY_VAPID_PRIVATE_KEY`` takes."""
    key = ec.generate_private_key(ec.SECP256R1())
    return _b64url_encode(key.private_numbers().private_value.to_bytes(32, "big"))


def load_or_create_dev_key(path: str | os.PathLike[str]) -> str:
    """Read the development VAPID key from *path*, generating it there on first use.

    The file is created with mode 0600. A file that exists but does not hold a
    valid key raises ValueError rather than being overwritten (delete it to get
    a new key; existing subscriptions then stop working).
    """
    file = Path(path)
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = file.read_text(encoding="utf-8").strip()
        try:
            _load_private_key(value)
        except ValueError as exc:
            raise ValueError(f"VAPID key file {file}: {exc}") from None
        return value
    value = generate_vapid_private_key()
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(value + "\n")
    return value


def _origin(endpoint: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) endpoint (the token's ``aud``), or None."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in ("http", "https") or not host or ":" in host:
        return None
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


def _subscription_usable(subscription: PushSubscription) -> bool:
    """True if the subscription's keys are a P-256 point and a 16-byte auth secret."""
    try:
        point = _b64url_decode(subscription.p256dh)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        auth = _b64url_decode(subscription.auth)
    except (ValueError, TypeError):
        return False
    return len(point) == 65 and len(auth) == 16


# Not an OSError, so urllib3 and requests let it through rather than retrying it.
class _NonPublicPeer(Exception):
    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.address = address


def _public_peer(sock: socket.socket) -> socket.socket:
    address = str(sock.getpeername()[0])
    if not is_public_address(address):
        sock.close()
        raise _NonPublicPeer(address)
    return sock


# The check sits in _new_conn: after the TCP connect, before the TLS handshake
# and the request, on the address reached rather than the one DNS gave earlier.
class _PublicHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _public_peer(super()._new_conn())


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class _PublicOnlyAdapter(HTTPAdapter):
    """Connects directly only to public addresses (proxied requests are left to the proxy).
    https only: without allow_private, a plain http endpoint is refused before sending."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            **self.poolmanager.pool_classes_by_scheme,
            "https": _PublicHTTPSPool,
        }


class WebPushSender:
    """The :class:`~plugpay.services.ports.PushSender` for real browsers' push services."""

    public_key: str

    def __init__(
        self,
        private_key: str,
        subject: str,
        *,
        ttl: int = DEFAULT_TTL,
        timeout: float = DEFAULT_TIMEOUT,
        allow_private: bool = False,
    ) -> None:
        key = _load_private_key(private_key)
        self._vapid: Any = Vapid02(private_key=key)
        try:  # sign once now, so that a subject py_vapid refuses fails at start-up
            self._vapid.sign({"sub": subject, "aud": "https://push.example", "exp": 1})
        except VapidException:
            raise ValueError(
                "the VAPID subject must be a mailto: address (mailto:ops@example.com) "
                f"or an https: URL without a path, got {subject!r}"
            ) from None
        self._subject = subject
        self._ttl = ttl
        self._timeout = timeout
        self._allow_private = allow_private
        self.public_key = _public_key_b64(key)

    @property
    def subject(self) -> str:
        return self._subject

    async def send(self, subscription: PushSubscription, payload: dict[str, Any]) -> str:
        """Encrypt *payload* as JSON and deliver it: "sent", "gone" or "failed"."""
        origin = _origin(subscription.endpoint)
        if origin is None or not _subscription_usable(subscription):
            log.info("web push: malformed subscription (origin %s), reporting it gone", origin)
            return "gone"
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        size = len(data.encode("utf-8"))
        if size > MAX_PAYLOAD_BYTES:
            log.warning("web push to %s: payload of %d bytes is too large", origin, size)
            return "failed"
        if not self._allow_private and not await self._public_endpoint(
            subscription.endpoint, origin
        ):
            return "failed"
        # pywebpush writes into the claims it is given: a new dict for every message.
        claims: dict[str, str | int] = {
            "sub": self._subject,
            "aud": origin,
            "exp": int(time.time()) + TOKEN_LIFETIME,
        }
        return await asyncio.to_thread(self._deliver, subscription, origin, data, claims)

    async def _public_endpoint(self, endpoint: str, origin: str) -> bool:
        """True if *endpoint* passes the subscription-time check and its host
        resolves to public addresses only (any one of them may be the one used)."""
        try:
            check_push_endpoint(endpoint, allow_private=False)
        except InvalidInput as exc:
            log.warning("web push to %s refused: %s", origin, exc)
            return False
        parts = urlsplit(endpoint)
        try:
            async with asyncio.timeout(self._timeout):
                found = await asyncio.get_running_loop().getaddrinfo(
                    parts.hostname, parts.port or 443, type=socket.SOCK_STREAM
                )
        except (OSError, TimeoutError) as exc:
            log.warning("web push to %s failed (cannot resolve: %s)", origin, type(exc).__name__)
            return False
        for *_, sockaddr in found:
            address = str(sockaddr[0])
            if not is_public_address(address):
                log.warning(
                    "web push to %s refused: its host resolves to %s, not a public address",
                    origin,
                    address,
                )
                return False
        return True

    def _deliver(
        self,
        subscription: PushSubscription,
        origin: str,
        data: str,
        claims: dict[str, str | int],
    ) -> PushOutcome:
        info = {
            "endpoint": subscription.endpoint,
            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
        }
        with requests.Session() as session:
            session.max_redirects = 0  # a push service answers; it does not redirect
            if not self._allow_private:
                session.mount("https://", _PublicOnlyAdapter())
            try:
                response = webpush(
                    subscription_info=info,
                    data=data,
                    vapid_private_key=self._vapid,
                    vapid_claims=claims,
                    ttl=self._ttl,
                    timeout=self._timeout,
                    headers={"Urgency": "high"},
                    requests_session=session,
                )
            except WebPushException as exc:
                status = getattr(exc.response, "status_code", None)
                if status in (404, 410):
                    log.info("web push to %s: subscription gone (HTTP %s)", origin, status)
                    return "gone"
                log.warning("web push to %s failed (HTTP %s)", origin, status)
                return "failed"
            except _NonPublicPeer as exc:
                log.warning(
                    "web push to %s refused: the connection reached %s, not a public address",
                    origin,
                    exc.address,
                )
                return "failed"
            except Exception as exc:  # transport errors, timeouts, redirects
                log.warning("web push to %s failed (%s)", origin, type(exc).__name__)
                return "failed"
        status = getattr(response, "status_code", None)
        if not isinstance(status, int) or not 200 <= status < 300:
            log.warning("web push to %s failed (HTTP %s)", origin, status)
            return "failed"
        return "sent"
