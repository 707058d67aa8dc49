"""Rate limit, latency, injected faults and the request log, observed over real HTTP."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import botocore.exceptions
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apckx.emulator.pytest_plugin import call_raw, make_emulator_client, sign_request
from apckx.emulator.requestlog import (
    RequestLogEntry,
    max_concurrency,
    read_request_log,
    sequential_stages,
)
from apckx.emulator.server import (
    EmulatorConfig,
    FaultInjector,
    FaultSpec,
    TokenBucket,
    burst_for_rate,
    parse_fault_spec,
    start_emulator,
)
from apckx.errors import InputError

K0_AES = {
    "KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY",
    "KeyClass": "SYMMETRIC_KEY",
    "KeyAlgorithm": "AES_256",
    "KeyModesOfUse": {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True},
}


# --- units: fault specs, injector, bucket ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CreateKey:throttle:2", FaultSpec("CreateKey", "throttle", 2)),
        ("*:reset:always", FaultSpec("*", "reset", None)),
        ("ImportKey:error:1", FaultSpec("ImportKey", "error", 1)),
    ],
)
def test_parse_fault_spec(text: str, expected: FaultSpec) -> None:
    assert parse_fault_spec(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("CreateKey:throttle", "must be OPERATION:KIND:COUNT"),
        ("CreateKey:explode:1", "KIND must be one of throttle, error, reset"),
        ("CreateKey:error:0", "COUNT must be a positive number or 'always'"),
        ("CreateKey:error:many", "COUNT must be a positive number"),
        ("Create-Key:error:1", "OPERATION must be"),
    ],
)
def test_bad_fault_specs_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_fault_spec(text)


def test_fault_injector_counts_and_wildcards() -> None:
    injector = FaultInjector([FaultSpec("CreateKey", "throttle", 2), FaultSpec("*", "error", 1)])
    assert injector.take("CreateKey") == "throttle"
    assert injector.take("CreateKey") == "throttle"
    assert injector.take("CreateKey") == "error"
    assert injector.take("CreateKey") is None
    assert injector.take("GetKey") is None
    always = FaultInjector([FaultSpec("GetKey", "reset", None)])
    assert [always.take("GetKey") for _ in range(5)] == ["reset"] * 5
    assert always.take("ListKeys") is None


def test_token_bucket_refills_at_the_rate() -> None:
    now = [100.0]
    bucket = TokenBucket(5, burst_for_rate(5), clock=lambda: now[0])
    assert [bucket.try_acquire() for _ in range(6)] == [True] * 5 + [False]
    now[0] += 0.2  # one token back
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    now[0] += 10  # never more than the burst
    assert sum(bucket.try_acquire() for _ in range(10)) == 5
    assert burst_for_rate(0.5) == 1.0


# --- over HTTP --------------------------------------------------------------------------


def test_rate_limit_throttles_above_the_rate_and_never_below() -> None:
    rate = 10.0
    with start_emulator(EmulatorConfig(rate_limit=rate)) as running:
        client = make_emulator_client(running.url, max_attempts=1)
        # Below the rate (one call per 0.15 s): never throttled.
        for _ in range(5):
            client.list_keys()
            time.sleep(0.15)
        # Above it: 40 calls back to back.
        statuses = []
        started = time.monotonic()
        for _ in range(40):
            try:
                client.list_keys()
                statuses.append(200)
            except client.exceptions.ThrottlingException as throttled:
                assert throttled.response["ResponseMetadata"]["HTTPStatusCode"] == 429
                statuses.append(429)
        elapsed = time.monotonic() - started
        assert statuses[:9] == [200] * 9  # the burst (one second's worth) is there
        allowed = burst_for_rate(rate) + rate * elapsed
        assert statuses.count(200) <= allowed + 1
        assert statuses.count(429) >= 10
        # A standard-retry client rides it out.
        patient = make_emulator_client(running.url, max_attempts=5)
        assert patient.list_keys()["Keys"] == []


def test_rate_limit_counts_each_region_separately() -> None:
    with start_emulator(EmulatorConfig(rate_limit=1)) as running:
        east = make_emulator_client(running.url, max_attempts=1)
        west = make_emulator_client(running.url, region="us-west-2", max_attempts=1)
        east.list_keys()
        with pytest.raises(east.exceptions.ThrottlingException):
            east.list_keys()
        west.list_keys()


def test_latency_delays_every_answer() -> None:
    with start_emulator(EmulatorConfig(latency_ms=150)) as running:
        client = make_emulator_client(running.url)
        client.list_keys()
        started = time.monotonic()
        client.list_keys()
        elapsed = time.monotonic() - started
        assert 0.15 <= elapsed < 1.0
        started = time.monotonic()
        answer = call_raw(running.url, "ListKeys", {}, secret_access_key="wrong")
        assert answer.status == 403
        assert time.monotonic() - started >= 0.15


def test_throttle_fault_is_absorbed_by_standard_retries(tmp_path: Path) -> None:
    log_path = tmp_path / "requests.jsonl"
    config = EmulatorConfig(
        faults=(parse_fault_spec("CreateKey:throttle:1"),), request_log_path=log_path
    )
    with start_emulator(config) as running:
        client = make_emulator_client(running.url, max_attempts=3)
        created = client.create_key(KeyAttributes=K0_AES, Exportable=True)
        assert created["ResponseMetadata"]["RetryAttempts"] == 1
        assert len(client.list_keys()["Keys"]) == 1  # injected before the op: one key only
    entries = read_request_log(log_path)
    assert [(e.operation, e.status, e.error) for e in entries] == [
        ("CreateKey", 429, "ThrottlingException"),
        ("CreateKey", 200, None),
        ("ListKeys", 200, None),
    ]


def test_error_fault_is_a_500_without_side_effect() -> None:
    config = EmulatorConfig(faults=(parse_fault_spec("CreateKey:error:always"),))
    with start_emulator(config) as running:
        client = make_emulator_client(running.url, max_attempts=2)
        with pytest.raises(client.exceptions.InternalServerException) as failed:
            client.create_key(KeyAttributes=K0_AES, Exportable=True)
        assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert failed.value.response["ResponseMetadata"]["RetryAttempts"] == 1  # retried once
        assert client.list_keys()["Keys"] == []


def test_wildcard_fault_hits_any_operation_once() -> None:
    config = EmulatorConfig(faults=(parse_fault_spec("*:error:1"),))
    with start_emulator(config) as running:
        assert call_raw(running.url, "ListKeys", {}).status == 500
        assert call_raw(running.url, "ListAliases", {}).status == 200


def test_reset_fault_drops_the_connection_without_answering() -> None:
    config = EmulatorConfig(faults=(parse_fault_spec("CreateKey:reset:1"),))
    with start_emulator(config) as running:
        headers, body = sign_request(
            running.url, "CreateKey", {"KeyAttributes": K0_AES, "Exportable": True}
        )
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = (
            f"POST / HTTP/1.1\r\nHost: {running.host}:{running.port}\r\n{head}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        with socket.create_connection((running.host, running.port), timeout=5) as raw:
            raw.sendall(request)
            with pytest.raises(ConnectionResetError):
                while raw.recv(4096):  # an RST, not an answer and not a clean close
                    pass
        client = make_emulator_client(running.url, max_attempts=1)
        assert client.list_keys()["Keys"] == []  # no side effect
        client.create_key(KeyAttributes=K0_AES, Exportable=True)  # the count is spent


def test_reset_fault_is_a_connection_error_for_botocore() -> None:
    config = EmulatorConfig(faults=(parse_fault_spec("ListKeys:reset:always"),))
    with start_emulator(config) as running:
        client = make_emulator_client(running.url, max_attempts=1)
        with pytest.raises(
            (botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError)
        ):
            client.list_keys()
        assert client.list_aliases()["Aliases"] == []


def test_request_log_lines_have_no_bodies_and_measure_stages(tmp_path: Path) -> None:
    log_path = tmp_path / "requests.jsonl"
    with start_emulator(EmulatorConfig(request_log_path=log_path)) as running:
        client = make_emulator_client(running.url)
        arn = client.create_key(KeyAttributes=K0_AES, Exportable=True)["Key"]["KeyArn"]
        client.create_alias(AliasName="alias/logged", KeyArn=arn)
        call_raw(running.url, "ListKeys", {}, secret_access_key="wrong")
        # Read while the emulator runs: every line is already flushed.
        assert len(read_request_log(log_path)) == 3
    lines = log_path.read_text().splitlines()
    assert all(
        set(json.loads(line)) == {"request_id", "operation", "start", "end", "status", "error",
                                     "path"}
        for line in lines
    )
    assert arn not in log_path.read_text()
    assert "alias/logged" not in log_path.read_text()
    entries = read_request_log(log_path)
    assert [e.operation for e in entries] == ["CreateKey", "CreateAlias", "ListKeys"]
    assert [e.status for e in entries] == [200, 200, 403]
    assert all(e.start <= e.end for e in entries)
    assert sequential_stages(entries) == 3
    assert max_concurrency(entries) == 1


def test_stage_helpers() -> None:
    def entry(start: float, end: float) -> RequestLogEntry:
        return RequestLogEntry("id", "GetKey", start, end, 200)

    parallel = [entry(0.0, 1.0), entry(0.1, 0.9), entry(0.5, 1.5), entry(2.0, 2.5)]
    assert sequential_stages(parallel) == 2
    assert max_concurrency(parallel) == 3
    assert sequential_stages([entry(0.0, 1.0), entry(1.0, 2.0)]) == 2  # touching: in sequence
    assert max_concurrency([entry(0.0, 1.0), entry(1.0, 2.0)]) == 1
    assert sequential_stages([]) == 0
    assert max_concurrency([]) == 0


def test_bad_request_log_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"request_id": "a"}\n')
    with pytest.raises(InputError, match="line 1"):
        read_request_log(path)


def test_one_reset_is_absorbed_by_standard_retries() -> None:
    config = EmulatorConfig(faults=(parse_fault_spec("CreateKey:reset:1"),))
    with start_emulator(config) as running:
        client = make_emulator_client(running.url, max_attempts=3)
        created = client.create_key(KeyAttributes=K0_AES, Exportable=True)
        assert created["ResponseMetadata"]["RetryAttempts"] == 1
        assert len(client.list_keys()["Keys"]) == 1


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=50),
    gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=60),
)
def test_token_bucket_never_grants_more_than_burst_plus_rate(
    rate: float, gaps: list[float]
) -> None:
    """Over any call pattern: granted <= burst + rate * elapsed (429s above the rate)."""
    now = [0.0]
    bucket = TokenBucket(rate, burst_for_rate(rate), clock=lambda: now[0])
    granted = 0
    for gap in gaps:
        now[0] += gap
        granted += bucket.try_acquire()
    assert granted <= burst_for_rate(rate) + rate * now[0] + 1e-9


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=50),
    slack=st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=60),
)
def test_token_bucket_never_refuses_a_caller_at_or_below_the_rate(
    rate: float, slack: list[float]
) -> None:
    """Calls spaced at least 1/rate apart are never throttled (none below the rate)."""
    now = [0.0]
    bucket = TokenBucket(rate, burst_for_rate(rate), clock=lambda: now[0])
    for extra in slack:
        assert bucket.try_acquire()
        now[0] += 1.0 / rate + extra
