"""A hostile OpenID provider, for the ID-token checks a real provider never fails.

A real provider (tests/peers/oidc) never issues a token with a wrong nonce, for
another audience, already expired or unsigned. This one, a small aiohttp
server on loopback, serves discovery, its keys, an authorization endpoint
that sends the browser straight back with a code, and a token endpoint that
answers with the ID token ``mode`` asks for:

- ``good``: a correct token (so a refusal of the others means something);
- ``wrong_nonce``, ``other_audience``, ``expired``, ``wrong_issuer``;
- ``alg_none``: unsigned (``alg: none``), while discovery even claims to allow it;
- ``hs256``: an HMAC keyed with the client secret (a symmetric algorithm);
- ``foreign_key``: signed by a key the provider does not publish.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

MODES = (
    "good",
    "wrong_nonce",
    "other_audience",
    "expired",
    "wrong_issuer",
    "alg_none",
    "hs256",
    "foreign_key",
)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@dataclass
class HostileProvider:
    client_id: str
    client_secret: str
    mode: str = "good"
    subject: str = "hostile-driver"
    port: int = 0
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1"}))
    nonces: dict[str, str] = field(default_factory=dict)  # code -> nonce of its request
    token_requests: int = 0
    _runner: web.AppRunner | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _discovery(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
            }
        )

    async def _jwks(self, _: web.Request) -> web.Response:
        return web.json_response(KeySet([self.key]).as_dict(private=False))

    async def _authorize(self, request: web.Request) -> web.Response:
        query = request.query
        assert query.get("code_challenge_method") == "S256" and query.get("code_challenge")
        code = secrets.token_urlsafe(16)
        self.nonces[code] = query["nonce"]
        target = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        raise web.HTTPFound(target)

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        nonce = self.nonces.pop(str(form.get("code", "")), "")
        if not nonce:
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response(
            {"access_token": "at", "token_type": "Bearer", "id_token": self.id_token(nonce)}
        )

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "email": "hostile@example.org",
            "email_verified": True,
        }
        header: dict[str, Any] = {"alg": "RS256", "kid": "k1"}
        key: Any = self.key
        if self.mode == "wrong_nonce":
            claims["nonce"] = "not-" + nonce
        elif self.mode == "other_audience":
            claims["aud"] = "someone-else"
        elif self.mode == "expired":
            claims["iat"], claims["exp"] = now - 7200, now - 3600
        elif self.mode == "wrong_issuer":
            claims["iss"] = "https://issuer.example.org"
        elif self.mode == "alg_none":
            return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
        elif self.mode == "hs256":
            header = {"alg": "HS256"}
            key = OctKey.import_key(self.client_secret)
        elif self.mode == "foreign_key":
            key = RSAKey.generate_key(2048, {"kid": "k1"})
        algorithms = [header["alg"]]
        return jwt.encode(header, claims, key, algorithms=algorithms)
