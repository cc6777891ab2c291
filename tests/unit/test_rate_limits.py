"""Rate limits in one process, and the guest-start policy built on any limiter."""

from __future__ import annotations

import pytest

from plugpay.limits.memory import MemoryRateLimiter
from plugpay.services.limits import (
    GUEST_START,
    GuestStartLimits,
    Limit,
    check_guest_start,
    client_key,
    most_restrictive,
)
from plugpay.services.ports.limits import Decision, RateLimiter


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(clock: Clock) -> MemoryRateLimiter:
    return MemoryRateLimiter(clock=clock)


def test_the_memory_limiter_satisfies_the_port(limiter: MemoryRateLimiter) -> None:
    port: RateLimiter = limiter
    assert port is limiter


async def test_hits_up_to_the_limit_are_allowed_and_count_down(
    limiter: MemoryRateLimiter, clock: Clock
) -> None:
    answers = []
    for _ in range(3):
        answers.append(await limiter.hit("k", 3, 60))
        clock.advance(1)
    assert answers == [Decision(True, 0.0, 2), Decision(True, 0.0, 1), Decision(True, 0.0, 0)]
    refused = await limiter.hit("k", 3, 60)
    assert not refused.allowed and refused.remaining == 0
    assert refused.retry_after == pytest.approx(57.0)  # the first hit leaves the window at +60


async def test_the_window_slides(limiter: MemoryRateLimiter, clock: Clock) -> None:
    for _ in range(3):
        assert (await limiter.hit("k", 3, 10)).allowed
        clock.advance(1)
    clock.now = 1009.5
    assert (await limiter.hit("k", 3, 10)).retry_after == pytest.approx(0.5)
    clock.now = 1010.0  # the first hit, at 1000, is exactly one window old
    assert await limiter.hit("k", 3, 10) == Decision(True, 0.0, 0)
    clock.now = 1010.5
    assert (await limiter.hit("k", 3, 10)).retry_after == pytest.approx(0.5)  # the one at 1001
    clock.now = 1030.0
    assert await limiter.hit("k", 3, 10) == Decision(True, 0.0, 2)


async def test_refused_hits_are_not_counted(limiter: MemoryRateLimiter, clock: Clock) -> None:
    assert (await limiter.hit("k", 1, 10)).allowed
    for _ in range(9):
        clock.advance(1)
        assert not (await limiter.hit("k", 1, 10)).allowed
    clock.advance(1)
    assert (await limiter.hit("k", 1, 10)).allowed


async def test_keys_are_counted_apart(limiter: MemoryRateLimiter) -> None:
    assert (await limiter.hit("a", 1, 10)).allowed
    assert not (await limiter.hit("a", 1, 10)).allowed
    assert (await limiter.hit("b", 1, 10)).allowed


async def test_a_lowered_limit_opens_when_enough_hits_have_left(
    limiter: MemoryRateLimiter, clock: Clock
) -> None:
    for _ in range(5):
        assert (await limiter.hit("k", 5, 100)).allowed
        clock.advance(10)
    # hits at 1000..1040, now 1050: with a limit of 2, the hit at 1030 must leave first
    refused = await limiter.hit("k", 2, 100)
    assert not refused.allowed and refused.retry_after == pytest.approx(80.0)


async def test_memory_is_bounded_and_the_key_hit_longest_ago_goes_first(clock: Clock) -> None:
    limiter = MemoryRateLimiter(max_keys=3, clock=clock)
    for key in ("a", "b", "c", "a"):
        await limiter.hit(key, 1, 60)
    await limiter.hit("d", 1, 60)
    assert len(limiter) == 3
    assert not (await limiter.hit("a", 1, 60)).allowed  # hit again recently: kept
    assert (await limiter.hit("b", 1, 60)).allowed  # forgotten
    for n in range(100):
        await limiter.hit(f"flood-{n}", 1, 60)
    assert len(limiter) == 3


@pytest.mark.parametrize(("limit", "window"), [(0, 10.0), (-1, 10.0), (1, 0.0), (1, -5.0)])
async def test_a_limit_needs_a_positive_count_and_window(
    limiter: MemoryRateLimiter, limit: int, window: float
) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        await limiter.hit("k", limit, window)


def test_max_keys_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_keys"):
        MemoryRateLimiter(max_keys=0)


# -- the guest-start policy ------------------------------------------------------
def test_guest_start_defaults() -> None:
    assert GUEST_START.per_address == Limit(5, 600)
    assert GUEST_START.per_connector == Limit(10, 600)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("2001:DB8:1:3::1", "2001:db8:1:3::/64"),
        ("testclient", "other"),
        ("", "other"),
    ],
)
def test_client_key(address: str, key: str) -> None:
    assert client_key(address) == key


def test_most_restrictive() -> None:
    open_few = Decision(True, 0.0, 1)
    open_many = Decision(True, 0.0, 8)
    short = Decision(False, 30.0, 0)
    long = Decision(False, 300.0, 0)
    assert most_restrictive(open_many, open_few) == open_few
    assert most_restrictive(open_few, short) == short
    assert most_restrictive(short, open_few, long) == long
    with pytest.raises(ValueError, match="at least one"):
        most_restrictive()


async def test_five_guest_starts_per_address_in_ten_minutes(
    limiter: MemoryRateLimiter, clock: Clock
) -> None:
    for connector in range(1, 6):
        decision = await check_guest_start(limiter, "203.0.113.7", "CP-1", connector)
        assert decision.allowed
        clock.advance(60)
    assert decision.remaining == 0
    sixth = await check_guest_start(limiter, "203.0.113.7", "CP-1", 6)
    assert not sixth.allowed and sixth.retry_after == pytest.approx(300.0)
    assert (await check_guest_start(limiter, "198.51.100.1", "CP-1", 6)).allowed


async def test_ten_guest_starts_per_connector_from_any_addresses(
    limiter: MemoryRateLimiter, clock: Clock
) -> None:
    for n in range(10):
        assert (await check_guest_start(limiter, f"203.0.113.{n}", "CP-1", 1)).allowed
        clock.advance(1)
    eleventh = await check_guest_start(limiter, "198.51.100.1", "CP-1", 1)
    assert not eleventh.allowed and eleventh.retry_after == pytest.approx(590.0)
    assert (await check_guest_start(limiter, "198.51.100.1", "CP-1", 2)).allowed
    assert (await check_guest_start(limiter, "198.51.100.1", "CP-2", 1)).allowed


async def test_a_blocked_address_does_not_use_up_the_connector(
    limiter: MemoryRateLimiter,
) -> None:
    limits = GuestStartLimits(per_address=Limit(1, 600), per_connector=Limit(2, 600))
    assert (await check_guest_start(limiter, "203.0.113.7", "CP-1", 1, limits)).allowed
    for _ in range(20):
        assert not (await check_guest_start(limiter, "203.0.113.7", "CP-1", 1, limits)).allowed
    last = await check_guest_start(limiter, "198.51.100.1", "CP-1", 1, limits)
    assert last == Decision(True, 0.0, 0)


async def test_one_ipv6_network_shares_one_address_limit(limiter: MemoryRateLimiter) -> None:
    limits = GuestStartLimits(per_address=Limit(2, 600))
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2"):
        assert (await check_guest_start(limiter, host, "CP-1", 1, limits)).allowed
    assert not (await check_guest_start(limiter, "2001:db8:1:2::3", "CP-1", 1, limits)).allowed
    assert (await check_guest_start(limiter, "2001:db8:1:3::1", "CP-1", 1, limits)).allowed
