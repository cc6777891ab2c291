"""Charger passwords: argon2id at rest, a fast path only for what was verified before."""

from __future__ import annotations

import time

from plugpay.identity.passwords import Argon2Hasher


async def test_hash_is_salted_argon2id_and_verifies() -> None:
    hasher = Argon2Hasher()
    first, second = hasher.hash("a-long-charger-password"), hasher.hash("a-long-charger-password")
    assert first.startswith("$argon2id$") and first != second
    assert "a-long-charger-password" not in first
    assert await hasher.verify(first, "a-long-charger-password")
    assert not await hasher.verify(first, "a-wrong-charger-password")
    assert not await hasher.verify("not a hash", "a-long-charger-password")


async def test_a_reconnect_with_the_verified_password_skips_argon2() -> None:
    hasher = Argon2Hasher()
    stored = hasher.hash("a-long-charger-password")
    started = time.perf_counter()
    assert await hasher.verify(stored, "a-long-charger-password")
    cold = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(100):
        assert await hasher.verify(stored, "a-long-charger-password")
    warm = (time.perf_counter() - started) / 100
    assert warm < cold / 20
    # The fast path never accepts a different password, and a new stored hash starts cold.
    assert not await hasher.verify(stored, "a-wrong-charger-password")
    assert not await hasher.verify(
        hasher.hash("another-charger-password"), "a-long-charger-password"
    )
