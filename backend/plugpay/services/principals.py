"""Who is asking: one typed principal, resolved once per request.

Today that is a guest, known by the capability cookie of the browser that
started a session; driver accounts and operator users join this union later.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class Guest:
    """A browser. ``capability_hashes`` are what the database keeps of its cookie
    (the current HMAC, and the hash older versions kept), empty without one."""

    capability_hashes: tuple[str, ...] = ()

    def owns(self, owner_hash: str) -> bool:
        return any(secrets.compare_digest(owner_hash, h) for h in self.capability_hashes)


Principal = Guest


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
