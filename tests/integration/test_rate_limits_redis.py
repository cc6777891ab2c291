"""Rate limits shared by several server instances through the real Redis."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from plugpay.limits.redis import RedisRateLimiter
from plugpay.services.limits import GuestStartLimits, Limit, check_guest_start
from plugpay.services.ports.limits import Decision, RateLimiter
from support.server import free_port

REDIS_URL = os.environ.get("PLUGPAY_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="PLUGPAY_TEST_REDIS_URL is not set")


class Clock:
    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key space of this test's own, emptied afterwards."""
    assert REDIS_URL is not None
    prefix = f"plugpay-test:rate:{uuid.uuid4().hex}:"
    yield prefix
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def make_limiter(prefix: str) -> AsyncIterator[Callable[..., RedisRateLimiter]]:
    """Builds limiters as separate server instances would: each its own client.
    A busy test machine may take longer than the production timeout to answer,
    and these tests are about counting, not about failing open."""
    built: list[RedisRateLimiter] = []

    def make(clock: Callable[[], float] | None = None) -> RedisRateLimiter:
        assert REDIS_URL is not None
        limiter = RedisRateLimiter(REDIS_URL, prefix=prefix, timeout=5.0, clock=clock)
        built.append(limiter)
        return limiter

    yield make
    for limiter in built:
        await limiter.close()


@needs_redis
async def test_the_redis_limiter_satisfies_the_port(
    make_limiter: Callable[..., RedisRateLimiter],
) -> None:
    port: RateLimiter = make_limiter()
    assert await port.hit("k", 2, 60) == Decision(True, 0.0, 1)


@needs_redis
async def test_two_instances_share_one_limit(
    make_limiter: Callable[..., RedisRateLimiter],
) -> None:
    a, b = make_limiter(), make_limiter()
    answers = [await limiter.hit("shared", 4, 60) for limiter in (a, b, a, b, a, b)]
    assert [d.allowed for d in answers] == [True, True, True, True, False, False]
    assert [d.remaining for d in answers] == [3, 2, 1, 0, 0, 0]
    assert 59 < answers[-1].retry_after <= 60
    assert (await b.hit("other", 4, 60)).allowed


@needs_redis
async def test_concurrent_hits_from_two_instances_never_exceed_the_limit(
    make_limiter: Callable[..., RedisRateLimiter],
) -> None:
    a, b = make_limiter(), make_limiter()
    answers = await asyncio.gather(*(limiter.hit("busy", 10, 60) for limiter in [a, b] * 40))
    assert sum(d.allowed for d in answers) == 10
    assert sorted(d.remaining for d in answers if d.allowed) == list(range(10))


@needs_redis
async def test_the_window_slides_for_every_instance(
    make_limiter: Callable[..., RedisRateLimiter],
) -> None:
    clock = Clock()
    start = clock.now
    a, b = make_limiter(clock=clock), make_limiter(clock=clock)
    for limiter in (a, b, a):
        assert (await limiter.hit("slide", 3, 10)).allowed
        clock.now += 1
    clock.now = start + 9.5
    refused = await b.hit("slide", 3, 10)
    assert not refused.allowed and refused.retry_after == pytest.approx(0.5)
    clock.now = start + 10  # the first hit is exactly one window old
    assert await b.hit("slide", 3, 10) == Decision(True, 0.0, 0)
    clock.now = start + 10.25
    assert (await a.hit("slide", 3, 10)).retry_after == pytest.approx(0.75)
    clock.now = start + 30
    assert await a.hit("slide", 3, 10) == Decision(True, 0.0, 2)


@needs_redis
async def test_on_redis_time_a_refused_client_gets_in_after_retry_after(
    make_limiter: Callable[..., RedisRateLimiter],
) -> None:
    a, b = make_limiter(), make_limiter()
    assert (await a.hit("real-time", 2, 0.6)).allowed
    assert (await b.hit("real-time", 2, 0.6)).allowed
    refused = await a.hit("real-time", 2, 0.6)
    assert not refused.allowed and 0 < refused.retry_after <= 0.6
    await asyncio.sleep(refused.retry_after + 0.05)
    assert (await b.hit("real-time", 2, 0.6)).allowed


@needs_redis
async def test_refused_hits_are_not_stored_and_keys_expire(
    make_limiter: Callable[..., RedisRateLimiter], prefix: str
) -> None:
    limiter = make_limiter()
    for _ in range(5):
        await limiter.hit("stored", 2, 30)
    assert REDIS_URL is not None
    client = aioredis.from_url(REDIS_URL)
    try:
        assert await client.zcard(prefix + "stored") == 2
        assert 29_000 < await client.pttl(prefix + "stored") <= 30_000
        await limiter.hit("brief", 1, 0.2)
        await asyncio.sleep(0.4)
        assert await client.exists(prefix + "brief") == 0
    finally:
        await client.aclose()


@needs_redis
async def test_guest_start_limits_hold_across_instances(
    make_limiter: Callable[..., RedisRateLimiter],
) -> None:
    a, b = make_limiter(), make_limiter()
    limits = GuestStartLimits(per_address=Limit(2, 600), per_connector=Limit(3, 600))
    assert (await check_guest_start(a, "203.0.113.7", "CP-1", 1, limits)).allowed
    assert (await check_guest_start(b, "203.0.113.7", "CP-1", 1, limits)).allowed
    assert not (await check_guest_start(a, "203.0.113.7", "CP-1", 1, limits)).allowed
    assert (await check_guest_start(b, "198.51.100.1", "CP-1", 1, limits)).allowed
    refused = await check_guest_start(a, "198.51.100.2", "CP-1", 1, limits)
    assert not refused.allowed and 599 < refused.retry_after <= 600


# -- Redis unavailable -------------------------------------------------------------
async def test_without_redis_hits_are_allowed_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="plugpay")
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", timeout=0.3)
    try:
        started = time.monotonic()
        for _ in range(3):
            assert await limiter.hit("k", 1, 60) == Decision(True, 0.0, 0)
        assert time.monotonic() - started < 3 * 0.3 + 0.5
    finally:
        await limiter.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Redis unavailable" in warnings[0].getMessage()


class Relay:
    """A TCP relay in front of Redis that the test can cut and restore."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in self._writers:
            writer.close()
        for task in self._pipes:
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        self._writers.clear()
        self._pipes.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()


@needs_redis
async def test_a_redis_blip_lets_hits_through_and_the_limits_return_after_it(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert REDIS_URL is not None
    redis = urlsplit(REDIS_URL)
    relay = Relay(redis.hostname or "127.0.0.1", redis.port or 6379)
    await relay.start()
    caplog.set_level(logging.INFO, logger="plugpay")
    through_relay = redis._replace(netloc=f"127.0.0.1:{relay.port}").geturl()
    limiter = RedisRateLimiter(through_relay, prefix=prefix, timeout=0.3)
    try:
        assert await limiter.hit("blip", 1, 60) == Decision(True, 0.0, 0)
        assert not (await limiter.hit("blip", 1, 60)).allowed

        await relay.cut()
        assert (await limiter.hit("blip", 1, 60)).allowed  # failing open
        assert (await limiter.hit("blip", 1, 60)).allowed
        assert "Redis unavailable" in caplog.text

        await relay.start()
        assert not (await limiter.hit("blip", 1, 60)).allowed  # the count survived in Redis
        assert "Redis is back" in caplog.text
    finally:
        await limiter.close()
        await relay.cut()
