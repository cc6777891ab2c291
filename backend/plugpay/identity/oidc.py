"""OpenID Connect providers: discovery, the code flow with PKCE, checked ID tokens.

authlib builds the authorization URL (S256 code challenge) and exchanges the
code at the token endpoint with the client's secret; joserfc checks the ID
token: its signature against the provider's published keys (JWKS), only with
an asymmetric algorithm the provider announces (never ``none``, never an HMAC
keyed with the client secret), and its ``iss``, ``aud`` (``azp`` when several),
``exp``, ``iat``, ``sub`` and the ``nonce`` this sign-in sent.

Discovery and keys are fetched on first use and kept for an hour; a token
signed with a key id not seen yet fetches the keys again (a provider rotating
its keys), at most once a minute.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any, Final

import httpx
from authlib.deprecate import AuthlibDeprecationWarning
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from plugpay.services.ports.accounts import (
    ProviderUnavailable,
    SignInRefused,
    VerifiedIdentity,
)

with warnings.catch_warnings():
    # authlib announces a move from httpx to httpx2; plugpay uses httpx (authlib < 2).
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.httpx_client import AsyncOAuth2Client

log = logging.getLogger(__name__)

# Asymmetric signatures only: the provider's private key, checked with its public one.
ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
SCOPE: Final = "openid email profile"
CACHE_SECONDS: Final = 3600.0
REFETCH_SECONDS: Final = 60.0
LEEWAY_SECONDS: Final = 60
TIMEOUT: Final = httpx.Timeout(10.0)


@dataclass(frozen=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]


class OidcProvider:
    """One provider of ``PLUGPAY_OIDC_PROVIDERS``, found by discovery at its issuer."""

    def __init__(
        self,
        name: str,
        issuer: str,
        client_id: str,
        client_secret: str,
        *,
        title: str | None = None,
    ) -> None:
        self.name = name
        self.title = title or name
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self._metadata: Metadata | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:  # the secret stays out of logs and tracebacks
        return f"OidcProvider({self.name!r}, {self.issuer!r})"

    async def authorization_url(
        self, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        metadata = await self._discover()
        async with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                metadata.authorization_endpoint,
                state=state,
                code_verifier=code_verifier,
                nonce=nonce,
            )
        return str(url)

    async def identity(
        self, code: str, code_verifier: str, redirect_uri: str, nonce: str
    ) -> VerifiedIdentity:
        metadata = await self._discover()
        async with self._client(redirect_uri) as client:
            try:
                token = await client.fetch_token(
                    metadata.token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                    redirect_uri=redirect_uri,
                )
            except OAuthError as exc:
                raise SignInRefused(f"token endpoint refused the code: {exc.error}") from None
            except (httpx.HTTPError, ValueError) as exc:
                raise ProviderUnavailable(f"token endpoint: {type(exc).__name__}") from None
        id_token = token.get("id_token") if isinstance(token, dict) else None
        if not isinstance(id_token, str):
            raise SignInRefused("the token response holds no ID token")
        return await self.check_id_token(id_token, nonce)

    async def check_id_token(self, id_token: str, nonce: str) -> VerifiedIdentity:
        metadata = await self._discover()
        claims = self._verified_claims(id_token, await self._key_set(), metadata, nonce)
        if claims is None:  # perhaps a key the provider added since: look once more
            claims = self._verified_claims(
                id_token, await self._key_set(refresh=True), metadata, nonce
            )
        if claims is None:
            raise SignInRefused("the ID token's signature matches none of the provider's keys")
        # Only an address the provider says it verified (an unverified one is anyone's).
        email = claims.get("email") if claims.get("email_verified") is True else None
        return VerifiedIdentity(
            issuer=metadata.issuer,
            subject=str(claims["sub"]),
            email=_text(email, 320),
            name=_text(claims.get("name"), 200),
        )

    def _verified_claims(
        self, id_token: str, keys: KeySet, metadata: Metadata, nonce: str
    ) -> dict[str, Any] | None:
        """The claims if the signature holds with ``keys`` (None if no key fits);
        SignInRefused for any other fault."""
        try:
            token = jwt.decode(id_token, keys, algorithms=list(metadata.algorithms))
        except JoseError as exc:
            if exc.error in ("bad_signature", "invalid_key_id", "missing_key"):
                return None
            raise SignInRefused(f"ID token refused: {exc.error}") from None
        except ValueError as exc:
            raise SignInRefused(f"ID token unreadable: {exc}") from None
        claims = dict(token.claims)
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": metadata.issuer},
            aud={"essential": True, "value": self.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise SignInRefused(f"ID token refused: {exc.error} {exc.description}") from None
        audience = claims["aud"]
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.client_id:
            raise SignInRefused("ID token refused: several audiences and azp is not ours")
        if not isinstance(claims["sub"], str) or not 0 < len(claims["sub"]) <= 255:
            raise SignInRefused("ID token refused: sub is not a short string")
        return claims

    def _client(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self._client_secret,
            scope=SCOPE,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name
            timeout=TIMEOUT,
        )

    async def _discover(self) -> Metadata:
        if self._metadata is not None and time.monotonic() - self._metadata_at < CACHE_SECONDS:
            return self._metadata
        async with self._lock:
            if self._metadata is None or time.monotonic() - self._metadata_at >= CACHE_SECONDS:
                document = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
                self._metadata = self._parse_metadata(document)
                self._metadata_at = time.monotonic()
        return self._metadata

    def _parse_metadata(self, document: dict[str, Any]) -> Metadata:
        if str(document.get("issuer", "")).rstrip("/") != self.issuer:
            raise ProviderUnavailable(f"{self.name}: discovery names another issuer")
        try:
            endpoints = [
                str(document[key])
                for key in ("authorization_endpoint", "token_endpoint", "jwks_uri")
            ]
        except KeyError as exc:
            raise ProviderUnavailable(f"{self.name}: discovery lacks {exc.args[0]}") from None
        offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = tuple(a for a in offered if a in ALGORITHMS)
        if not algorithms:
            raise ProviderUnavailable(f"{self.name}: no signing algorithm plugpay accepts")
        authorize, token, jwks = endpoints
        # The exact issuer, trailing slash and all: the ID token's iss must equal it.
        return Metadata(str(document["issuer"]), authorize, token, jwks, algorithms)

    async def _key_set(self, refresh: bool = False) -> KeySet:
        age = time.monotonic() - self._keys_at
        fresh = self._keys is not None and age < CACHE_SECONDS
        if fresh and not (refresh and age >= REFETCH_SECONDS):
            assert self._keys is not None
            return self._keys
        metadata = await self._discover()
        document = await self._get_json(metadata.jwks_uri)
        try:
            keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise ProviderUnavailable(f"{self.name}: unreadable keys ({exc})") from None
        self._keys, self._keys_at = keys, time.monotonic()
        return keys

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT) as client:
                response = await client.get(url)
                response.raise_for_status()
                document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailable(f"{self.name}: {url}: {type(exc).__name__}") from None
        if not isinstance(document, dict):
            raise ProviderUnavailable(f"{self.name}: {url} is not a JSON object")
        return document


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None
