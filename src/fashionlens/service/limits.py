"""Back-pressure: a token bucket per client on analyses and writes (429), and a bound on the model work queued
behind the one model lock (503). Both answer with `Retry-After`, so a client backs off instead of piling up.

An unbounded queue is what made p99 latency grow with the number of clients: every request waited its turn behind
all the others. With a bound, a request either starts within about `max_queue` analyses' time or is told at once
to come back.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request

from fashionlens.service.errors import ApiError


class RateLimiter:
    """`per_minute` requests a minute for each key, in bursts of up to `per_minute` (a token bucket)."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.capacity, self.rate = float(per_minute), per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Spend one token of `key`'s bucket, or raise the 429 that says when the next one is there."""
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                wait = math.ceil((1 - tokens) / self.rate)
                raise ApiError(429, "too_many_requests",
                               f"over the rate limit of {self.capacity:.0f} analyses and writes a minute "
                               f"(FASHIONLENS_RATE_LIMIT); retry in {wait} s", headers={"Retry-After": str(wait)})
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > 100_000:  # many addresses: forget the full buckets, they are the default
                self._buckets = {k: v for k, v in self._buckets.items() if v[0] + (now - v[1]) * self.rate < self.capacity}


class ModelQueue:
    """At most `limit` requests running or waiting for the models; the rest are refused with 503 at once.

    `Retry-After` is about the time the queue takes to turn over: the recent mean time a request held its slot
    (waiting and running)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.depth = 0
        self._seconds = 1.0  # recent mean time in a slot
        self._lock = threading.Lock()

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            if self.depth >= self.limit:
                wait = max(1, math.ceil(self._seconds))
                raise ApiError(503, "busy", f"{self.depth} requests are already queued for the models "
                                            f"(FASHIONLENS_MAX_QUEUE={self.limit}); retry in {wait} s",
                               headers={"Retry-After": str(wait)})
            self.depth += 1
        start = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self.depth -= 1
                self._seconds = 0.8 * self._seconds + 0.2 * (time.monotonic() - start)


def limit_rate(request: Request) -> None:
    """A dependency after the access check: spends from the caller's bucket (its token's, else its address's)."""
    key = getattr(request.state, "client_key", None) or f"address:{request.client.host if request.client else '-'}"
    request.app.state.rate_limiter.take(key)
