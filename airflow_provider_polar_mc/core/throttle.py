"""Throttling: keep reads from the source under the spec's rows/s, MB/s and queries/s limits.

A token bucket per limit with one second of burst. ``acquire`` blocks until the caller may proceed;
callers charge what they consumed after the fact (rows and bytes are known only once a chunk is
read), so a limit holds on average over any window of a few seconds (the spec promises within 20%
over 10 s), while a single large chunk can exceed it briefly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate: float, burst_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.capacity = self.rate * burst_seconds
        self._tokens = self.capacity
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def charge(self, amount: float) -> None:
        """Record consumption; the balance may go negative (paid back by waiting later)."""
        with self._lock:
            self._refill()
            self._tokens -= amount

    def delay(self) -> float:
        """Seconds until the balance is non-negative again."""
        with self._lock:
            self._refill()
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class Throttle:
    """Limits for one reader; a limit of None is no limit. Thread-safe: one instance per task."""

    def __init__(
        self,
        rows_per_s: float | None = None,
        mb_per_s: float | None = None,
        queries_per_s: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._rows = TokenBucket(rows_per_s) if rows_per_s else None
        self._bytes = TokenBucket(mb_per_s * 1024 * 1024) if mb_per_s else None
        self._queries = TokenBucket(queries_per_s) if queries_per_s else None
        self._sleep = sleep

    @property
    def active(self) -> bool:
        return any((self._rows, self._bytes, self._queries))

    def before_query(self) -> None:
        """Wait until another query may be sent, and count it."""
        if self._queries:
            self._wait(self._queries)
            self._queries.charge(1)
        for bucket in (self._rows, self._bytes):
            if bucket:
                self._wait(bucket)

    def after_read(self, rows: int, nbytes: int) -> None:
        if self._rows:
            self._rows.charge(rows)
        if self._bytes:
            self._bytes.charge(nbytes)

    def _wait(self, bucket: TokenBucket) -> None:
        while (d := bucket.delay()) > 0:
            self._sleep(min(d, 1.0))
