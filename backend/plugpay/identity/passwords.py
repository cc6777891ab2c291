"""Charger passwords, stored only as salted argon2id hashes.

Verification runs in a worker thread (argon2 releases the GIL), so a storm of
reconnecting chargers does not stall the event loop. The parameters are
OWASP's minimum for argon2id (19 MiB, 2 passes): charger keys are 16-40
characters, so the hash guards against a leaked database, not against
guessing.

A charger reconnects many times over a server's life (network blips, its own
reboots). Once a password has been verified against a stored hash, the
process remembers an HMAC of it under a random per-process key, so the next
connection with the same password is checked in microseconds. Nothing of this
leaves memory, and a changed stored hash (a new password) is not in the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections import OrderedDict

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Bound the memory a connect storm can take: each verification holds 19 MiB.
_SLOTS = 4
CACHE_SIZE = 100_000


class Argon2Hasher:
    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._verified: OrderedDict[str, bytes] = OrderedDict()
        self._slots: asyncio.Semaphore | None = None

    def hash(self, password: str) -> str:
        return _hasher.hash(password)

    def _tag(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode("utf-8"), hashlib.sha256).digest()

    async def verify(self, password_hash: str, password: str) -> bool:
        tag = self._tag(password)
        known = self._verified.get(password_hash)
        if known is not None:
            self._verified.move_to_end(password_hash)
            return hmac.compare_digest(known, tag)
        if self._slots is None:
            self._slots = asyncio.Semaphore(_SLOTS)
        async with self._slots:
            ok = await asyncio.to_thread(_verify, password_hash, password)
        if ok:
            self._verified[password_hash] = tag
            if len(self._verified) > CACHE_SIZE:
                self._verified.popitem(last=False)
        return ok


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
