"""The handshake throttle's arithmetic, on a clock the test moves."""

from __future__ import annotations

import asyncio

import pytest

from plugpay.ocpp.throttle import CLEAN_ADDRESS_SLOTS, HandshakeThrottle, client_address


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def throttle(clock: Clock, *, window: float = 60.0, max_entries: int = 100) -> HandshakeThrottle:
    return HandshakeThrottle(
        free_failures=5,
        window=window,
        first_lockout=1.0,
        max_lockout=300.0,
        max_entries=max_entries,
        clock=clock,
    )


def fail(t: HandshakeThrottle, times: int, charger_id: str | None, address: str | None) -> None:
    for _ in range(times):
        t.failed(charger_id, address)


def test_the_first_failures_are_free_then_the_lockout_doubles_up_to_its_cap(
    clock: Clock,
) -> None:
    t = throttle(clock)
    lockouts = [t.failed("CP-1", "10.0.0.1") for _ in range(15)]
    assert lockouts[:4] == [None] * 4
    assert lockouts[4:] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert t.retry_after("CP-1", "10.0.0.1") == 300


def test_a_lockout_ends_and_the_next_failure_locks_again_for_longer(clock: Clock) -> None:
    t = throttle(clock)
    fail(t, 5, "CP-1", "10.0.0.1")
    assert t.retry_after("CP-1", "10.0.0.1") == 1.0
    clock.now += 0.5
    assert t.retry_after("CP-1", "10.0.0.1") == 0.5
    clock.now += 0.5
    assert t.retry_after("CP-1", "10.0.0.1") is None
    assert t.failed("CP-1", "10.0.0.1") == 2.0
    assert t.retry_after("CP-1", "10.0.0.1") == 2.0


def test_failures_are_forgotten_a_window_after_the_last_one_or_the_lockout(
    clock: Clock,
) -> None:
    t = throttle(clock, window=60.0)
    fail(t, 4, "CP-1", "10.0.0.1")
    clock.now += 59
    assert t.failed("CP-1", "10.0.0.1") == 1.0  # the fifth within the window
    clock.now += 1 + 60  # the lockout ended a window ago
    assert t.retry_after("CP-1", "10.0.0.1") is None
    assert len(t) == 0
    assert [t.failed("CP-1", "10.0.0.1") for _ in range(5)] == [None] * 4 + [1.0]


def test_a_long_lockout_keeps_its_count_past_the_window(clock: Clock) -> None:
    t = throttle(clock, window=60.0)
    fail(t, 12, "CP-1", "10.0.0.1")  # the last lockout: 128 s
    clock.now += 128
    assert t.retry_after("CP-1", "10.0.0.1") is None
    assert t.failed("CP-1", "10.0.0.1") == 256  # not a fresh start


def test_a_locked_address_is_refused_for_every_charger_id(clock: Clock) -> None:
    t = throttle(clock)
    fail(t, 5, None, "10.0.0.1")  # five made-up ids
    assert t.retry_after("CP-1", "10.0.0.1") == 1.0
    assert t.retry_after("anything", "10.0.0.1") == 1.0
    assert t.retry_after("CP-1", "10.0.0.2") is None


def test_made_up_ids_count_for_the_address_only(clock: Clock) -> None:
    t = throttle(clock)
    for n in range(4):
        t.failed(None, f"10.0.0.{n}")
    assert len(t) == 4  # no entry per made-up id


def test_a_locked_charger_id_is_refused_to_dirty_addresses_only(clock: Clock) -> None:
    t = throttle(clock)
    for n in range(5):  # five addresses, one failure each
        t.failed("CP-1", f"10.0.1.{n}")
    assert t.retry_after("CP-1", "10.0.1.0") == 1.0
    # The real charger's own address has no failure: it gets its verification.
    assert t.retry_after("CP-1", "192.0.2.7") is None
    # Without an address there is no telling who asks: the lock applies.
    assert t.retry_after("CP-1", None) == 1.0
    assert t.retry_after("CP-2", "10.0.1.0") is None


def test_a_success_forgives_the_id_and_an_address_that_failed_only_for_it(
    clock: Clock,
) -> None:
    t = throttle(clock)
    fail(t, 3, "CP-1", "10.0.0.1")  # a charger with a wrong password, then fixed
    t.failed("CP-9", "10.0.0.2")
    fail(t, 2, "CP-1", "10.0.0.2")
    t.succeeded("CP-1", "10.0.0.1")
    t.succeeded("CP-1", "10.0.0.2")
    # The id is clean again, the first address too; the second one also tried
    # CP-9, and owning CP-1 must not reset its count of guesses.
    assert [t.failed("CP-1", "10.0.0.3") for _ in range(5)][-1] == 1.0
    assert [t.failed("CP-7", "10.0.0.1") for _ in range(5)][-1] == 1.0
    assert [t.failed("CP-8", "10.0.0.2") for _ in range(2)][-1] == 1.0


def test_the_tables_are_bounded_and_drop_the_oldest(clock: Clock) -> None:
    t = throttle(clock, max_entries=3)
    for n in range(10):
        t.failed(f"CP-{n}", f"10.0.0.{n}")
        clock.now += 1
    assert len(t) == 6
    fail(t, 4, "CP-0", "10.0.0.0")  # forgotten: counting starts again
    assert t.retry_after("CP-0", "10.0.0.0") is None
    fail(t, 4, "CP-9", "10.0.0.9")  # still known: 1 + 4 failures
    assert t.retry_after("CP-9", "10.0.0.9") == 1.0


def test_a_refreshed_entry_is_not_the_oldest(clock: Clock) -> None:
    t = throttle(clock, max_entries=2)
    t.failed(None, "10.0.0.1")
    t.failed(None, "10.0.0.2")
    fail(t, 4, None, "10.0.0.1")  # locked, and now the newest
    t.failed(None, "10.0.0.3")  # drops 10.0.0.2
    assert t.retry_after("CP-1", "10.0.0.1") == 1.0


@pytest.mark.parametrize(
    ("client", "key"),
    [
        (("203.0.113.9", 51234), "203.0.113.9"),
        (["203.0.113.9", 1], "203.0.113.9"),
        (("2001:db8:1:2:3:4:5:6", 443), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:ffff::1", 443), "2001:db8:1:2::/64"),
        (("::ffff:198.51.100.4", 1), "198.51.100.4"),
        (("testclient", 50000), "testclient"),
        (None, None),
        ((), None),
    ],
)
def test_client_addresses_are_keyed_by_what_one_client_controls(
    client: object, key: str | None
) -> None:
    assert client_address(client) == key


async def test_verifications_of_one_charger_id_wait_their_turn(clock: Clock) -> None:
    t = throttle(clock)
    inside: list[str] = []
    most = 0

    async def attempt(address: str) -> None:
        nonlocal most
        async with t.turn("CP-1", address):
            inside.append(address)
            most = max(most, len(inside))
            await asyncio.sleep(0.01)
            inside.remove(address)

    await asyncio.gather(*(attempt(f"10.0.0.{n}") for n in range(5)))
    assert most == 1
    assert not t._id_gates and not t._address_gates  # nothing kept once idle


async def most_at_once(t: HandshakeThrottle, attempts: int, address: str) -> int:
    inside = 0
    most = 0

    async def attempt(charger_id: str) -> None:
        nonlocal inside, most
        async with t.turn(charger_id, address):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(attempt(f"CP-{n}") for n in range(attempts)))
    assert not t._address_gates
    return most


async def test_a_clean_address_verifies_a_few_at_a_time_one_with_failures_one(
    clock: Clock,
) -> None:
    t = throttle(clock)
    assert await most_at_once(t, 40, "10.0.0.1") == CLEAN_ADDRESS_SLOTS
    t.failed("CP-0", "10.0.0.1")
    assert await most_at_once(t, 10, "10.0.0.1") == 1


async def test_an_address_that_fails_meanwhile_is_let_in_one_at_a_time(clock: Clock) -> None:
    t = throttle(clock)
    inside = 0
    most_after_failure = 0

    async def attempt(n: int) -> None:
        nonlocal inside, most_after_failure
        async with t.turn(f"CP-{n}", "10.0.0.1"):
            inside += 1
            if n >= CLEAN_ADDRESS_SLOTS:
                most_after_failure = max(most_after_failure, inside)
            await asyncio.sleep(0.01)
            if n == 0:
                t.failed("CP-0", "10.0.0.1")
            inside -= 1

    await asyncio.gather(*(attempt(n) for n in range(CLEAN_ADDRESS_SLOTS + 10)))
    assert most_after_failure == 1


async def test_a_waiter_that_gives_up_does_not_hold_up_the_others(clock: Clock) -> None:
    t = throttle(clock)
    release = asyncio.Event()
    order: list[str] = []

    async def attempt(address: str) -> None:
        async with t.turn("CP-1", address):
            order.append(address)
            if address == "first":
                await release.wait()

    first = asyncio.create_task(attempt("first"))
    await asyncio.sleep(0)
    quitter = asyncio.create_task(attempt("quitter"))
    last = asyncio.create_task(attempt("last"))
    await asyncio.sleep(0)
    quitter.cancel()
    release.set()
    await asyncio.wait_for(asyncio.gather(first, last), 1)
    assert order == ["first", "last"]
    assert quitter.cancelled()
    assert not t._id_gates


async def test_a_waiter_woken_then_cancelled_passes_its_turn_on(clock: Clock) -> None:
    t = throttle(clock)
    order: list[str] = []

    async def attempt(address: str) -> None:
        async with t.turn("CP-1", address):
            order.append(address)

    holder = t.turn("CP-1", "first")
    await holder.__aenter__()
    woken = asyncio.create_task(attempt("woken"))
    last = asyncio.create_task(attempt("last"))
    await asyncio.sleep(0)
    await holder.__aexit__(None, None, None)  # wakes "woken", which has not run yet
    woken.cancel()
    await asyncio.wait_for(last, 1)
    assert order == ["last"]
    assert not t._id_gates
