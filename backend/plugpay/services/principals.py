"""Who is asking: one typed principal, resolved once per request.

A guest is a browser, known by the capability cookie it got before its first
start; a driver is a signed-in account, and keeps its browser's capability
too (what it started before signing in stays its own). Operator users join
this union later.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass

from plugpay.services.ports.accounts import Account
from plugpay.services.ports.sessions import SessionRecord


class Principal(ABC):
    """Who is asking. An abstract base class (not a union): the web layer injects it
    as one type."""

    capability_hashes: tuple[str, ...]

    @property
    @abstractmethod
    def account_id(self) -> int | None:
        """The signed-in account, None for a guest."""

    @abstractmethod
    def owns(self, session: SessionRecord) -> bool:
        """Whether this principal may see and act on ``session``."""

    @property
    def audiences(self) -> tuple[str, ...]:
        """Whose prices apply (tariff assignments' audiences)."""
        return ("guest",)


@dataclass(frozen=True)
class Guest(Principal):
    """A browser. ``capability_hashes`` are what the database keeps of its cookie
    (the current HMAC, and the hash older versions kept), empty without one."""

    capability_hashes: tuple[str, ...] = ()

    @property
    def account_id(self) -> int | None:
        return None

    def owns(self, session: SessionRecord) -> bool:
        """A session of this browser's that no account has claimed (once claimed,
        it is the account's only: a signed-out browser no longer opens it)."""
        if session.account_id is not None:
            return False
        return any(secrets.compare_digest(session.owner_hash, h) for h in self.capability_hashes)


@dataclass(frozen=True)
class Driver(Principal):
    """A signed-in driver: the account's sessions, and the ones this browser started."""

    account: Account
    capability_hashes: tuple[str, ...] = ()

    @property
    def account_id(self) -> int:
        return self.account.id

    @property
    def audiences(self) -> tuple[str, ...]:
        return ("guest", *(f"member:{group}" for group in self.account.groups))

    def owns(self, session: SessionRecord) -> bool:
        if session.account_id is not None:
            return session.account_id == self.account.id
        return Guest(self.capability_hashes).owns(session)


def capability_hash(capability_key: str, token: str) -> str:
    """What the database keeps of a browser's capability cookie: an HMAC under the
    capability key (derived from the secret for this one use)."""
    return hmac.new(capability_key.encode(), token.encode(), hashlib.sha256).hexdigest()


def legacy_capability_hash(secret_key: str, token: str) -> str:
    """The hash kept before capability keys: sessions started then stay openable."""
    return hashlib.sha256(f"{secret_key}:{token}".encode()).hexdigest()


def guest_of(capability_key: str, secret_key: str, token: str | None) -> Guest:
    if not token or len(token) > 100:
        return Guest()
    return Guest(
        (capability_hash(capability_key, token), legacy_capability_hash(secret_key, token))
    )
