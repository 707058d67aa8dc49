"""Client-side pacing for APC's control-plane quota (default 5 calls/s per account and region).

:class:`TokenBucket` paces *calls*: every API call, including each retry, takes one token.
It is a GCRA ("virtual scheduling") bucket, so concurrent workers are spaced evenly at
``rate`` with at most ``burst`` calls back to back. :func:`call_with_backoff` retries
throttling and transient server errors with capped, jittered exponential backoff, and tells
the bucket to slow everybody down while APC is throttling.

The clock, the sleep and the randomness are injected so tests run in virtual time.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from apckx.errors import InputError, ServiceError

T = TypeVar("T")

DEFAULT_RATE = 5.0
"""APC's default control-plane quota, calls per second per account and region."""

THROTTLING_CODES = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "Throttling"}
)
CONNECTION_CODES = frozenset({"ConnectionError"})
TRANSIENT_CODES = frozenset(
    {
        "InternalServerException",
        "ServiceUnavailableException",
        "RequestTimeout",
        "500",
        "502",
        "503",
        "504",
    }
)


class TokenBucket:
    """Thread-safe pacing to ``rate`` calls per second with bursts of up to ``burst``.

    ``acquire()`` reserves the next free slot under a lock and sleeps outside it, so the
    workers of a pool are released one every ``1/rate`` seconds in arrival order.
    """

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise InputError(f"rate must be a positive number of calls per second (got {rate})")
        if not burst >= 1:
            raise InputError(f"burst must be at least 1 (got {burst})")
        self.rate = float(rate)
        self.burst = float(burst)
        self._interval = 1.0 / self.rate
        self._tolerance = (self.burst - 1.0) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat = clock()  # theoretical arrival time of the next call (GCRA)
        self.calls = 0
        self.waited = 0.0

    def reserve(self) -> float:
        """Take one slot; returns how long the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            start = max(now, self._tat - self._tolerance)
            self._tat = max(self._tat, start) + self._interval
            self.calls += 1
            wait = start - now
            self.waited += wait
            return wait

    def acquire(self) -> float:
        """Block until a call may be made; returns the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """Push every later slot back by ``seconds`` (APC said we are going too fast)."""
        if seconds <= 0:
            return
        with self._lock:
            self._tat = max(self._tat, self._clock()) + seconds


def backoff_delays(
    *, base: float = 0.25, cap: float = 8.0, rng: Callable[[], float] = random.random
) -> Iterator[float]:
    """Endless "full jitter" exponential backoff: uniform in [0, min(cap, base * 2**n)]."""
    attempt = 0
    while True:
        ceiling = min(cap, base * (2**attempt))
        yield ceiling * (0.5 + rng() / 2)  # at least half the ceiling: no zero-length retries
        attempt += 1


def is_throttling(error: BaseException) -> bool:
    return isinstance(error, ServiceError) and error.code in THROTTLING_CODES


def is_retryable(error: BaseException, *, idempotent: bool = False) -> bool:
    """Throttling and the server-side errors that AWS documents as safe to retry.

    A dropped connection is retried only for an ``idempotent`` call (a read): a write such
    as ImportKey may have happened, and repeating it could create a second key.
    """
    if not isinstance(error, ServiceError):
        return False
    if error.code in THROTTLING_CODES or error.code in TRANSIENT_CODES:
        return True
    return idempotent and error.code in CONNECTION_CODES


@dataclass
class RetryStats:
    """Thread-safe counters a caller can show in a summary."""

    calls: int = 0
    throttled: int = 0
    retried: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, *, calls: int = 0, throttled: int = 0, retried: int = 0) -> None:
        with self._lock:
            self.calls += calls
            self.throttled += throttled
            self.retried += retried


def call_with_backoff(
    call: Callable[[], T],
    bucket: TokenBucket | None,
    *,
    max_attempts: int = 8,
    base: float = 0.25,
    cap: float = 8.0,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    stats: RetryStats | None = None,
    idempotent: bool = False,
) -> T:
    """Run ``call`` through the bucket; retry throttling/transient errors with backoff.

    Every attempt takes its own token. On throttling the whole bucket is paused by the
    backoff delay too, so other workers don't keep hammering the quota. Non-retryable
    errors, and the last retryable one, propagate unchanged.
    """
    delays = backoff_delays(base=base, cap=cap, rng=rng)
    for attempt in range(1, max_attempts + 1):
        if bucket is not None:
            bucket.acquire()
        if stats is not None:
            stats.count(calls=1)
        try:
            return call()
        except ServiceError as exc:
            if not is_retryable(exc, idempotent=idempotent) or attempt == max_attempts:
                raise
            delay = next(delays)
            throttled = is_throttling(exc)
            if stats is not None:
                stats.count(retried=1, throttled=int(throttled))
            if throttled and bucket is not None:
                bucket.pause(delay / 4)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
