"""A sliding-window rate limiter shared by every server instance, in Redis.

Each key is a sorted set of the allowed hits in the window, scored by time.
One Lua script drops the hits that left the window, counts, and adds the new
hit if there is room, so concurrent hits from several instances never let
more through than the limit. Time is Redis's own clock (``TIME``), so that
instances whose clocks differ still share one window; a key expires one
window after its last allowed hit. Needs Redis 5 or later (scripts that read
``TIME`` before writing).

When Redis cannot be reached within the timeout, a hit is **allowed** (fail
open, with ``remaining`` as if it were the first hit) and a warning is logged
once per outage: the limits guard against abuse
that takes minutes to matter, whereas refusing every guest start while Redis
blips would stop every driver from charging.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from plugpay.services.ports.limits import Decision

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "plugpay:rate:"
DEFAULT_TIMEOUT = 0.5  # seconds a guest start may wait for Redis before going on without it

# ARGV: limit, window (s), now (s; empty: Redis's clock), a unique member.
# Numbers go back to Redis as fixed-point strings: a Lua number would be
# rounded to 14 significant digits, a tenth of a millisecond at today's epoch.
_HIT = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.6f', now - window))
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, string.format('%.6f', now), ARGV[4])
  redis.call('PEXPIRE', key, math.ceil(window * 1000))
  return {1, '0', limit - count - 1}
end
local pivot = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
return {0, string.format('%.6f', tonumber(pivot[2]) + window - now), 0}
"""


class RedisRateLimiter:
    """The :class:`~plugpay.services.ports.limits.RateLimiter` across instances.

    Instances built with the same Redis and *prefix* share every limit.
    *clock* replaces Redis's clock (seconds; tests slide the window with it).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] | None = None,
    ) -> None:
        # One immediate retry covers a pooled connection the server has
        # closed; waiting out a backoff would only delay the fail-open answer.
        self._redis = aioredis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        self._script = self._redis.register_script(_HIT)
        self._prefix = prefix
        self._timeout = timeout
        self._clock = clock
        self._unavailable = False

    async def hit(self, key: str, limit: int, window_seconds: float) -> Decision:
        if limit < 1 or not window_seconds > 0:
            raise ValueError("a rate limit needs limit >= 1 and window_seconds > 0")
        now = "" if self._clock is None else f"{self._clock():.6f}"
        try:
            async with asyncio.timeout(self._timeout):
                allowed, retry_after, remaining = await self._script(
                    keys=[self._prefix + key],
                    args=[limit, f"{window_seconds:.6f}", now, secrets.token_hex(8)],
                )
        except (RedisError, OSError, TimeoutError) as exc:
            if not self._unavailable:
                self._unavailable = True
                log.warning(
                    "rate limits: Redis unavailable (%s); allowing every hit until it is back",
                    type(exc).__name__,
                )
            return Decision(allowed=True, retry_after=0.0, remaining=limit - 1)
        if self._unavailable:
            self._unavailable = False
            log.info("rate limits: Redis is back; limits apply again")
        return Decision(
            allowed=bool(allowed), retry_after=float(retry_after), remaining=int(remaining)
        )

    async def close(self) -> None:
        await self._redis.aclose()
