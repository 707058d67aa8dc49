"""The emulator under load, as a subprocess (``apckx emulator serve --state F``).

32 concurrent clients for 20 seconds of writes and reads (CreateKey with tags, CreateAlias,
GetKey, ListKeys): no 5xx (no error at all: there is no rate limit), and no lost write: every
key and alias whose creation was acknowledged is listed afterwards. Then a second burst is
cut by SIGKILL mid-run; the emulator restarts on the same state file, which must open, and
every acknowledged key and alias of both runs must be there.

``APCKX_LOAD_SECONDS`` changes the 20 seconds (e.g. 120 for a soak run).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from apckx.emulator.pytest_plugin import call_raw

CLIENTS = 32
LOAD_SECONDS = float(os.environ.get("APCKX_LOAD_SECONDS", "20"))
KILL_AFTER_SECONDS = 3.0
KEY_ATTRIBUTES = {
    "KeyAlgorithm": "AES_128",
    "KeyClass": "SYMMETRIC_KEY",
    "KeyUsage": "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY",
    "KeyModesOfUse": {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True},
}


@dataclass
class Emulator:
    process: subprocess.Popen[str]
    url: str


def serve(state: Path) -> Emulator:
    process = subprocess.Popen(
        [sys.executable, "-m", "apckx", "emulator", "serve", "--port", "0", "--state",
         str(state), "--key-quota", "100000", "--alias-quota", "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"the emulator did not start: {url!r} {err[-2000:]}")
    return Emulator(process, url)


def stop(emulator: Emulator) -> None:
    if emulator.process.poll() is None:
        emulator.process.send_signal(signal.SIGTERM)
        try:
            emulator.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            emulator.process.kill()
            emulator.process.wait()
    for stream in (emulator.process.stdout, emulator.process.stderr):
        if stream is not None:
            stream.close()


@dataclass
class Load:
    """What the clients were told, and every answer that was not a success."""

    keys: dict[str, str] = field(default_factory=dict)  # ARN -> client id
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> ARN
    calls: int = 0
    failures: list[tuple[str, int, str]] = field(default_factory=list)
    transport_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def client_loop(url: str, client_id: int, load: Load, deadline: float, killed: threading.Event,
                prefix: str) -> None:  # fmt: skip
    rng = random.Random(client_id)
    own: list[str] = []
    iteration = 0
    while time.monotonic() < deadline:
        iteration += 1
        if own and iteration % 3 == 0:
            operation = "CreateAlias"
            alias = f"alias/{prefix}-{client_id}-{iteration}"
            body: dict[str, Any] = {"AliasName": alias, "KeyArn": rng.choice(own)}
        elif own and iteration % 3 == 1:
            operation, body = "GetKey", {"KeyIdentifier": rng.choice(own)}
        elif iteration % 10 == 5:
            operation, body = "ListKeys", {"MaxResults": 10}
        else:
            operation = "CreateKey"
            body = {"KeyAttributes": KEY_ATTRIBUTES, "Exportable": True,
                    "Tags": [{"Key": "load", "Value": f"{prefix}-{client_id}"}]}  # fmt: skip
        try:
            answer = call_raw(url, operation, body)
        except OSError:
            with load.lock:
                load.transport_errors += 1
            if killed.is_set():
                return
            continue
        with load.lock:
            load.calls += 1
            if answer.status != 200:
                if not killed.is_set():
                    load.failures.append((operation, answer.status, answer.body[:200].decode()))
                continue
            if operation == "CreateKey":
                arn = answer.json()["Key"]["KeyArn"]
                load.keys[arn] = f"{prefix}-{client_id}"
                own.append(arn)
            elif operation == "CreateAlias":
                load.aliases[body["AliasName"]] = body["KeyArn"]


def run_load(url: str, seconds: float, prefix: str, *, kill: Emulator | None = None) -> Load:
    load = Load()
    killed = threading.Event()
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=client_loop, args=(url, i, load, deadline, killed, prefix),
                         name=f"load-{i}", daemon=True)
        for i in range(CLIENTS)
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    if kill is not None:
        time.sleep(KILL_AFTER_SECONDS)
        with load.lock:  # nothing is acknowledged while we kill: the set below is exact
            killed.set()
            kill.process.kill()  # SIGKILL mid-run
            kill.process.wait()
    for thread in threads:
        thread.join(timeout=seconds + 30)
        assert not thread.is_alive()
    return load


def list_all(url: str, operation: str, field_name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        body: dict[str, Any] = {"MaxResults": 100}
        if token:
            body["NextToken"] = token
        answer = call_raw(url, operation, body)
        assert answer.status == 200, answer.body[:300]
        data = answer.json()
        items += data[field_name]
        token = data.get("NextToken")
        if not token:
            return items


def assert_all_there(url: str, keys: dict[str, str], aliases: dict[str, str]) -> None:
    listed = {k["KeyArn"]: k for k in list_all(url, "ListKeys", "Keys")}
    missing = set(keys) - set(listed)
    assert not missing, f"{len(missing)} acknowledged keys lost, e.g. {sorted(missing)[:3]}"
    assert {listed[arn]["KeyState"] for arn in keys} == {"CREATE_COMPLETE"}
    listed_aliases = {a["AliasName"]: a.get("KeyArn") for a in
                      list_all(url, "ListAliases", "Aliases")}  # fmt: skip
    lost = {a for a, arn in aliases.items() if listed_aliases.get(a) != arn}
    assert not lost, f"{len(lost)} acknowledged aliases lost or wrong, e.g. {sorted(lost)[:3]}"


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "load-state.db"


def test_32_clients_then_kill_9_and_restart(state: Path) -> None:
    emulator = serve(state)
    try:
        load = run_load(emulator.url, LOAD_SECONDS, "a")
        # Under load: every call answered 200, nothing dropped.
        assert load.failures == [], load.failures[:5]
        assert load.transport_errors == 0
        assert load.calls >= CLIENTS * 2, f"only {load.calls} calls in {LOAD_SECONDS} s"
        assert len(load.keys) >= CLIENTS
        assert_all_there(emulator.url, load.keys, load.aliases)
        # A second burst, cut by SIGKILL mid-run.
        burst = run_load(emulator.url, 60.0, "b", kill=emulator)
        assert burst.failures == [], burst.failures[:5]
        assert burst.keys, "nothing was acknowledged before the kill"
    finally:
        stop(emulator)
    restarted = serve(state)
    try:
        assert_all_there(
            restarted.url, {**load.keys, **burst.keys}, {**load.aliases, **burst.aliases}
        )
        # The restarted emulator still takes writes.
        answer = call_raw(
            restarted.url, "CreateKey", {"KeyAttributes": KEY_ATTRIBUTES, "Exportable": True}
        )
        assert answer.status == 200, answer.body[:300]
    finally:
        stop(restarted)
    print(
        f"\nload: {load.calls} calls in {LOAD_SECONDS:g} s from {CLIENTS} clients "
        f"({load.calls / LOAD_SECONDS:.0f}/s), {len(load.keys)} keys, {len(load.aliases)} "
        f"aliases; kill -9 burst: {burst.calls} calls, {len(burst.keys)} keys acknowledged, "
        f"all present after restart"
    )
