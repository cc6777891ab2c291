"""A sliding-window rate limiter for one server instance."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

from plugpay.services.ports.limits import Decision

DEFAULT_MAX_KEYS = 10_000


class MemoryRateLimiter:
    """The :class:`~plugpay.services.ports.limits.RateLimiter` of a single instance.

    Each key keeps the times of its allowed hits in the window (at most
    *limit* of them). At most *max_keys* keys are kept; the one hit longest
    ago is forgotten first, which is almost always one whose window has
    passed anyway. Several instances each count on their own: use the Redis
    limiter for those.
    """

    def __init__(
        self,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._max_keys = max_keys
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hits)

    async def hit(self, key: str, limit: int, window_seconds: float) -> Decision:
        if limit < 1 or not window_seconds > 0:
            raise ValueError("a rate limit needs limit >= 1 and window_seconds > 0")
        now = self._clock()
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self._max_keys:
                self._hits.popitem(last=False)
            hits = self._hits[key] = deque()
        else:
            self._hits.move_to_end(key)
        horizon = now - window_seconds
        while hits and hits[0] <= horizon:
            hits.popleft()
        if len(hits) < limit:
            hits.append(now)
            return Decision(allowed=True, retry_after=0.0, remaining=limit - len(hits))
        # With a limit lower than before there may be more hits than the limit:
        # the key opens when enough of them have left the window.
        opens_at = hits[len(hits) - limit] + window_seconds
        return Decision(allowed=False, retry_after=opens_at - now, remaining=0)
