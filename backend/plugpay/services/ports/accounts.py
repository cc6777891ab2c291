"""Drivers' accounts and their sign-in through OpenID Connect providers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    issuer: str
    subject: str
    email: str | None
    name: str | None
    created_at: datetime
    groups: tuple[str, ...] = ()  # driver groups: the tariff audiences "member:<group>"


@dataclass(frozen=True, slots=True)
class Device:
    """A browser of the account's that gets its receipts by Web Push."""

    id: int
    endpoint: str
    p256dh: str
    auth: str
    label: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """What a provider's checked ID token says about who signed in."""

    issuer: str
    subject: str
    email: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class SignInAttempt:
    """A sign-in between the redirect to the provider and its answer."""

    provider: str
    nonce: str
    code_verifier: str
    return_to: str | None
    expires_at: datetime


class SignInRefused(Exception):
    """The provider's answer cannot sign anyone in (the message says why, for logs)."""


class ProviderUnavailable(Exception):
    """The provider could not be reached or answered nonsense: try again later."""


class IdentityProvider(Protocol):
    """One OpenID Connect provider (adapters: identity/oidc.py)."""

    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str:
        """What the sign-in button says: "Sign in with {title}"."""
        ...

    async def authorization_url(
        self, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        """Where to send the browser: the authorization code flow with PKCE (S256)."""
        ...

    async def identity(
        self, code: str, code_verifier: str, redirect_uri: str, nonce: str
    ) -> VerifiedIdentity:
        """Exchange the code and check the ID token (signature, iss, aud, exp, nonce).
        Raises SignInRefused or ProviderUnavailable."""
        ...


class AccountRepository(Protocol):
    """Accounts, signed-in browsers and sign-ins under way, inside a unit of work."""

    async def add_attempt(self, state_hash: str, attempt: SignInAttempt, now: datetime) -> None: ...

    async def take_attempt(self, state_hash: str, now: datetime) -> SignInAttempt | None:
        """The attempt, deleted: a second answer with the same state finds nothing."""
        ...

    async def sign_in(self, identity: VerifiedIdentity, now: datetime) -> Account:
        """The account of (issuer, subject), made at the first sign-in."""
        ...

    async def add_login(
        self, token_hash: str, account_id: int, now: datetime, expires_at: datetime
    ) -> None: ...

    async def end_login(self, token_hash: str) -> None: ...

    async def claim_sessions(self, owner_hashes: Sequence[str], account_id: int) -> int:
        """Give the account the browser's sessions that belong to no account yet."""
        ...

    async def join_groups(self, account_id: int, groups: Sequence[str], now: datetime) -> None:
        """Add the account to these groups (a member already stays one)."""
        ...

    async def leave_group(self, account_id: int, group: str) -> bool: ...

    async def add_device(
        self,
        account_id: int,
        endpoint: str,
        p256dh: str,
        auth: str,
        label: str | None,
        now: datetime,
    ) -> None:
        """The device, or its new keys when the browser subscribed again."""
        ...

    async def remove_device(self, account_id: int, device_id: int) -> bool: ...
    async def forget_endpoint(self, account_id: int, endpoint: str) -> None:
        """A push service called this endpoint gone."""
        ...

    async def unfinished_sessions(self, account_id: int, final_states: Sequence[str]) -> int: ...

    async def delete(self, account_id: int, now: datetime) -> None:
        """Personal data out (name, e-mail, the provider's subject, logins, push
        subscriptions, saved cards, RFID cards); the row and the account's sessions
        stay for the books."""
        ...


class AccountStore(Protocol):
    """Reads outside a unit of work (one per request)."""

    async def logged_in(self, token_hash: str, now: datetime) -> Account | None:
        """The signed-in account, with its groups."""
        ...

    async def find(self, account_id: int | None = None, email: str | None = None) -> Account | None:
        """An account that is not deleted, by id or e-mail address."""
        ...

    async def devices(self, account_id: int) -> list[Device]: ...

    async def members(self, group: str | None = None) -> list[tuple[str, Account]]:
        """(group, account) for every member of ``group`` (of every group: None)."""
        ...
