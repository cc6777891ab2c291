"""Charger passwords, stored only as salted argon2id hashes.

Verification runs in a worker thread (argon2 releases the GIL), so a storm
of reconnecting chargers does not stall the event loop. The parameters are
OWASP's minimum for argon2id (19 MiB, 2 passes): charger keys are 16-40
random characters, so the hash guards against a leaked database, not against
guessing.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Bound the memory a connect storm can take: each verification holds 19 MiB.
_slots = asyncio.Semaphore(4)


class Argon2Hasher:
    def hash(self, password: str) -> str:
        return _hasher.hash(password)

    async def verify(self, password_hash: str, password: str) -> bool:
        async with _slots:
            return await asyncio.to_thread(_verify, password_hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
