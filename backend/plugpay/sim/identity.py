"""A demo OpenID provider for ``plugpay demo``: sign-in without an account anywhere.

It stands in for Google or a company's Keycloak so that ``make run`` shows
the signed-in path next to the guest path. It is a real, if tiny, provider:
discovery, a published RS256 key, the authorization code flow with PKCE (S256
only) and nonce, client authentication at the token endpoint, one-use codes
that expire after a minute. plugpay signs in with it exactly as with any
other provider. Its key and codes live in memory: a restart of the demo
forgets them, which only means signing in again. Never mount it in production.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from litestar import Request, Response, Router, get, post
from litestar.response import Redirect

PATH = "/demo-id"
CODE_SECONDS = 60


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str
    subject: str
    name: str
    expires: float


@dataclass
class DemoIdentityProvider:
    public_url: str
    client_id: str = "plugpay-demo"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "demo"}))
    grants: dict[str, _Grant] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return f"{self.public_url.rstrip('/')}{PATH}"

    def redirect_uri(self) -> str:
        return f"{self.public_url.rstrip('/')}/auth/demo/callback"

    def router(self) -> Router:
        return Router(
            path=PATH,
            route_handlers=[
                self._discovery(),
                self._jwks(),
                self._authorize(),
                self._approve(),
                self._token(),
            ],
            include_in_schema=False,
        )

    def _discovery(self) -> Any:
        @get("/.well-known/openid-configuration", sync_to_thread=False)
        def discovery() -> dict[str, Any]:
            return {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }

        return discovery

    def _jwks(self) -> Any:
        @get("/jwks", sync_to_thread=False)
        def jwks() -> dict[str, Any]:
            return dict(KeySet([self.key]).as_dict(private=False))

        return jwks

    def _authorize(self) -> Any:
        @get("/authorize", sync_to_thread=False)
        def authorize(request: Request[Any, Any, Any]) -> Response[str]:
            query = dict(request.query_params)
            problem = self._check_request(query)
            if problem:
                return Response(problem, status_code=400, media_type="text/plain")
            choices = "".join(
                f'<li><a class="btn" href="{PATH}/approve?'
                f'{html.escape(urlencode({**query, "who": who}))}">{html.escape(who)}</a></li>'
                for who in ("Alex Demo", "Sam Demo")
            )
            page = (
                '<!doctype html><html lang="en"><head><meta charset="utf-8">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                '<title>Demo ID</title><link rel="stylesheet" href="/static/css/app.css"></head>'
                '<body><main><section class="card"><h1>Demo ID</h1>'
                "<p>A stand-in for a real sign-in provider (Google, your company's"
                " Keycloak, ...). Choose who you are:</p>"
                f'<ul class="providers">{choices}</ul></section></main></body></html>'
            )
            return Response(page, media_type="text/html")

        return authorize

    def _approve(self) -> Any:
        @get("/approve", sync_to_thread=False)
        def approve(request: Request[Any, Any, Any]) -> Response[Any]:
            query = dict(request.query_params)
            problem = self._check_request(query)
            if problem:
                return Response(problem, status_code=400, media_type="text/plain")
            name = query.get("who", "Alex Demo")[:60]
            code = secrets.token_urlsafe(24)
            self.grants[code] = _Grant(
                client_id=query["client_id"],
                redirect_uri=query["redirect_uri"],
                nonce=query.get("nonce", ""),
                challenge=query["code_challenge"],
                subject="demo-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"),
                name=name,
                expires=time.monotonic() + CODE_SECONDS,
            )
            back = urlencode({"code": code, "state": query.get("state", "")})
            return Redirect(f"{query['redirect_uri']}?{back}", status_code=303)

        return approve

    def _token(self) -> Any:
        @post("/token", status_code=200)
        async def token(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
            form = await request.form()
            grant = self.grants.pop(str(form.get("code", "")), None)
            if not self._client_authenticated(request.headers.get("authorization", "")):
                return Response({"error": "invalid_client"}, status_code=401)
            verifier = str(form.get("code_verifier", ""))
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .rstrip(b"=")
                .decode()
            )
            if (
                grant is None
                or grant.expires < time.monotonic()
                or grant.redirect_uri != form.get("redirect_uri")
                or not secrets.compare_digest(grant.challenge, challenge)
            ):
                return Response({"error": "invalid_grant"}, status_code=400)
            now = int(time.time())
            claims = {
                "iss": self.issuer,
                "sub": grant.subject,
                "aud": grant.client_id,
                "iat": now,
                "exp": now + 300,
                "nonce": grant.nonce,
                "name": grant.name,
                "email": f"{grant.subject}@demo.invalid",
                "email_verified": True,
            }
            id_token = jwt.encode({"alg": "RS256", "kid": "demo"}, claims, self.key)
            return Response(
                {
                    "access_token": secrets.token_urlsafe(16),
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": id_token,
                }
            )

        return token

    def _check_request(self, query: dict[str, str]) -> str | None:
        if query.get("client_id") != self.client_id:
            return "unknown client"
        if query.get("redirect_uri") != self.redirect_uri():
            return "redirect_uri is not the one registered"
        if query.get("response_type") != "code":
            return "only response_type=code"
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return "PKCE (S256) is required"
        return None

    def _client_authenticated(self, header: str) -> bool:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        return secrets.compare_digest(header, f"Basic {expected}")
