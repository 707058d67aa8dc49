"""TokenBucket and backoff: virtual time for the arithmetic, real threads for the spacing."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from apckx.errors import InputError, ServiceError
from apckx.service.pacing import (
    RetryStats,
    TokenBucket,
    backoff_delays,
    call_with_backoff,
    is_retryable,
    is_throttling,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_bucket_spaces_calls_at_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(11):
        bucket.acquire()
        starts.append(clock.now)
    assert starts[0] == 1000.0
    assert starts[-1] - starts[0] == pytest.approx(2.0)  # 10 intervals of 0.2 s
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(g == pytest.approx(0.2) for g in gaps)


def test_bucket_burst_then_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, burst=3, clock=clock, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(0.1)
    assert waits[4] == pytest.approx(0.1)


def test_bucket_idle_time_does_not_bank_more_than_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, burst=2, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    clock.now += 60  # a long idle period
    waits = [bucket.acquire() for _ in range(4)]
    assert waits[:2] == [0.0, 0.0]
    assert waits[2] == pytest.approx(0.1)


def test_bucket_pause_delays_next_slot() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    bucket.pause(1.0)
    assert bucket.acquire() == pytest.approx(1.1)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (5, 0.5)])
def test_bucket_rejects_bad_parameters(rate: float, burst: float) -> None:
    with pytest.raises(InputError):
        TokenBucket(rate, burst)


def test_bucket_paces_real_threads() -> None:
    bucket = TokenBucket(50)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            bucket.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    begin = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = max(stamps) - begin
    # 20 calls at 50/s: the 20th may start no earlier than 19 intervals in.
    assert elapsed >= 19 / 50 - 0.01
    assert elapsed < 1.5
    assert bucket.calls == 20


def test_backoff_delays_grow_and_cap() -> None:
    delays = backoff_delays(base=0.5, cap=4.0, rng=lambda: 1.0)
    assert [next(delays) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    low = backoff_delays(base=0.5, cap=4.0, rng=lambda: 0.0)
    assert next(low) == 0.25


def _throttle() -> ServiceError:
    return ServiceError("ImportKey", "ThrottlingException", "Rate exceeded")


def test_error_classification() -> None:
    assert is_throttling(_throttle())
    assert is_retryable(ServiceError("ImportKey", "ServiceUnavailableException", "x"))
    assert not is_retryable(ServiceError("ImportKey", "ValidationException", "x"))
    assert not is_retryable(ValueError("x"))


def test_call_with_backoff_retries_throttling_through_the_bucket() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100, clock=clock, sleep=clock.sleep)
    outcomes: list[Exception | str] = [_throttle(), _throttle(), "ok"]
    stats = RetryStats()

    def call() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    result = call_with_backoff(
        call, bucket, sleep=clock.sleep, rng=lambda: 1.0, stats=stats, base=0.25
    )
    assert result == "ok"
    assert bucket.calls == 3  # every attempt took a token
    assert (stats.calls, stats.retried, stats.throttled) == (3, 2, 2)
    assert 0.25 in clock.slept and 0.5 in clock.slept


def test_call_with_backoff_gives_up_after_max_attempts() -> None:
    clock = FakeClock()
    calls = []

    def call() -> None:
        calls.append(1)
        raise _throttle()

    with pytest.raises(ServiceError, match="ThrottlingException"):
        call_with_backoff(call, None, max_attempts=3, sleep=clock.sleep, rng=lambda: 0.0)
    assert len(calls) == 3


def test_call_with_backoff_does_not_retry_client_errors() -> None:
    calls = []

    def call() -> None:
        calls.append(1)
        raise ServiceError("ImportKey", "ValidationException", "bad block")

    with pytest.raises(ServiceError, match="ValidationException"):
        call_with_backoff(call, None, sleep=lambda s: None)
    assert len(calls) == 1


def test_dropped_connection_retried_only_for_reads() -> None:
    dropped = ServiceError("GetKey", "ConnectionError", "Connection was closed")
    assert not is_retryable(dropped)
    assert is_retryable(dropped, idempotent=True)
    outcomes: list[Exception | str] = [dropped, "ok"]

    def call() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert call_with_backoff(call, None, idempotent=True, sleep=lambda s: None) == "ok"
    with pytest.raises(ServiceError, match="ConnectionError"):
        call_with_backoff(lambda: (_ for _ in ()).throw(dropped), None, sleep=lambda s: None)
