"""Token buckets kept in memory (one BFF process): one per key (a rider, a client address), or one per
websocket connection."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

Clock = Callable[[], float]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved; starts full."""

    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now

    def retry_after(self, cost: float = 1.0) -> int:
        """0 when ``cost`` tokens are there now, else the seconds until they are (>= 1); spends nothing."""
        self._refill()
        if self._tokens >= cost:
            return 0
        return max(1, math.ceil((cost - self._tokens) / self._rate))

    def take(self, cost: float = 1.0) -> int:
        """Spend ``cost`` tokens and answer 0, or spend nothing and answer ``retry_after``."""
        wait = self.retry_after(cost)
        if not wait:
            self._tokens -= cost
        return wait


class RateLimiter:
    """A ``TokenBucket`` per key; the least recently seen keys are forgotten (at most ``max_keys``)."""

    def __init__(
        self,
        rate: float = 20.0,
        burst: float = 40.0,
        max_keys: int = 100_000,
        clock: Clock = time.monotonic,
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def _bucket(self, key: str) -> TokenBucket:
        bucket = self._buckets.pop(key, None) or TokenBucket(self._rate, self._burst, self._clock)
        self._buckets[key] = bucket
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return bucket

    def acquire(self, key: str) -> int:
        """0 when a request of ``key`` may go on (one token spent), else the seconds to wait (>= 1)."""
        return self._bucket(key).take()

    def retry_after(self, key: str) -> int:
        """0 when ``key`` has a token left, else the seconds until it has one; spends nothing."""
        bucket = self._buckets.get(key)
        return bucket.retry_after() if bucket is not None else 0
