"""Failed handshakes are throttled per charger id and per client address: guesses
are turned away with 429 before argon2 runs, the real charger still gets in from
its own address, and a lockout ends. Clients are told apart by X-Forwarded-For,
which the server trusts from loopback as it would from its proxy."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest
import websockets

from conftest import PASSWORD
from support.ocpp_client import SUBPROTOCOL, OcppClient, basic_auth
from support.server import RunningServer

ATTACKER = "203.0.113.7"
CHARGER_ADDRESS = "198.51.100.20"


class CountingHasher:
    """The server's hasher, counting the passwords it is asked to verify."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.verified: Counter[str] = Counter()

    def hash(self, password: str) -> str:
        return str(self.inner.hash(password))

    async def verify(self, password_hash: str, password: str) -> bool:
        self.verified[password] += 1
        return bool(await self.inner.verify(password_hash, password))


def count_verifications(server: RunningServer) -> CountingHasher:
    chargers = server.runtime.services.chargers
    counting = CountingHasher(chargers.hasher)
    chargers.hasher = counting
    return counting


async def open_ws(
    server: RunningServer, charger_id: str, password: str, address: str
) -> websockets.ClientConnection:
    return await websockets.connect(
        f"{server.ocpp_url}/{charger_id}",
        subprotocols=[websockets.Subprotocol(SUBPROTOCOL["1.6"])],
        additional_headers={**basic_auth(charger_id, password), "X-Forwarded-For": address},
        open_timeout=10,
        ping_interval=None,
    )


async def handshake(
    server: RunningServer, charger_id: str, password: str, address: str
) -> tuple[int, str | None]:
    """The handshake's HTTP status and its Retry-After header."""
    try:
        ws = await open_ws(server, charger_id, password, address)
    except websockets.InvalidStatus as refused:
        return refused.response.status_code, refused.response.headers.get("Retry-After")
    await ws.close()
    return 101, None


async def test_guessing_from_one_address_is_refused_without_argon2_while_the_charger_connects(
    server: RunningServer, charger_id: str
) -> None:
    hasher = count_verifications(server)
    statuses: list[int] = []
    retry_after: list[str | None] = []
    attempts = iter(range(400))
    connected = asyncio.Event()

    async def guess() -> None:
        for n in attempts:
            status, wait = await handshake(server, charger_id, f"guess-{n:04d}-abcdef", ATTACKER)
            statuses.append(status)
            if status == 429:
                retry_after.append(wait)
            if len(statuses) >= 200:
                await connected.wait()  # the charger connects in the middle of the attack

    async def real_charger() -> None:
        while len(statuses) < 100:
            await asyncio.sleep(0.01)
        ws = await open_ws(server, charger_id, PASSWORD, CHARGER_ADDRESS)
        client = OcppClient(ws, "1.6")
        try:
            assert await client.heartbeat_works()
        finally:
            connected.set()
            await client.close()

    started = time.perf_counter()
    await asyncio.gather(real_charger(), *(guess() for _ in range(8)))
    elapsed = time.perf_counter() - started

    assert len(statuses) == 400
    assert statuses[:5] == [401] * 5
    assert set(statuses) == {401, 429}
    guesses_verified = sum(n for password, n in hasher.verified.items() if password != PASSWORD)
    # Five free guesses, then one more each time a (doubling) lockout ends.
    assert guesses_verified <= 5 + int(elapsed).bit_length() + 1, (guesses_verified, elapsed)
    assert statuses.count(429) >= 400 - guesses_verified
    assert retry_after and all(w is not None and int(w) >= 1 for w in retry_after)
    assert hasher.verified[PASSWORD] == 1


async def test_a_lockout_ends_and_the_right_password_then_gets_in(
    server: RunningServer, charger_id: str
) -> None:
    hasher = count_verifications(server)
    for _ in range(5):
        assert (await handshake(server, charger_id, "wrong-password-0123", ATTACKER))[0] == 401
    status, wait = await handshake(server, charger_id, PASSWORD, ATTACKER)
    assert (status, wait) == (429, "1")  # even the right password waits: nothing is checked
    assert hasher.verified[PASSWORD] == 0
    await asyncio.sleep(1.05)
    assert (await handshake(server, charger_id, PASSWORD, ATTACKER))[0] == 101
    # The success forgave the address and the id: a slip is a plain 401 again.
    assert (await handshake(server, charger_id, "wrong-password-0123", ATTACKER))[0] == 401


async def test_made_up_charger_ids_are_throttled_per_address(
    server: RunningServer, charger_id: str
) -> None:
    hasher = count_verifications(server)
    for n in range(5):
        assert (await handshake(server, f"CP-GUESS-{n}", "x" * 20, ATTACKER))[0] == 404
    # Locked: the address learns nothing more, whether the id exists or not.
    assert (await handshake(server, "CP-GUESS-99", "x" * 20, ATTACKER))[0] == 429
    assert (await handshake(server, charger_id, "x" * 20, ATTACKER))[0] == 429
    assert sum(hasher.verified.values()) == 0
    # Made-up ids lock no real charger.
    assert (await handshake(server, charger_id, PASSWORD, CHARGER_ADDRESS))[0] == 101


async def test_handshakes_without_a_password_check_nothing_and_count_nothing(
    server: RunningServer, charger_id: str
) -> None:
    for _ in range(10):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(
                f"{server.ocpp_url}/{charger_id}",
                subprotocols=[websockets.Subprotocol("ocpp1.6")],
                additional_headers={"X-Forwarded-For": ATTACKER},
                open_timeout=5,
            )
        assert refused.value.response.status_code == 401
    assert (await handshake(server, charger_id, PASSWORD, ATTACKER))[0] == 101
