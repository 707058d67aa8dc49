"""16 concurrent clients x 200 mixed calls over HTTP: nothing lost."""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from apckx.emulator.pytest_plugin import make_emulator_client, sign_request
from apckx.emulator.requestlog import max_concurrency, read_request_log
from apckx.emulator.server import EmulatorConfig, start_emulator

CLIENTS = 16
CALLS_PER_CLIENT = 200
K0_AES = {
    "KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY",
    "KeyClass": "SYMMETRIC_KEY",
    "KeyAlgorithm": "AES_256",
    "KeyModesOfUse": {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True},
}


class RawClient:
    """One keep-alive connection, requests signed with botocore's SigV4 (lighter than boto3,
    so the test measures the emulator rather than client-side overhead)."""

    def __init__(self, url: str, host: str, port: int) -> None:
        self.url = url
        self.connection = http.client.HTTPConnection(host, port, timeout=30)

    def call(self, operation: str, **body: Any) -> dict[str, Any]:
        headers, data = sign_request(self.url, operation, body)
        self.connection.request("POST", "/", body=data, headers=headers)
        response = self.connection.getresponse()
        answer: dict[str, Any] = json.loads(response.read())
        if response.status != 200:
            raise AssertionError(f"{operation}: {response.status} {answer}")
        return answer

    def close(self) -> None:
        self.connection.close()


def run_client(
    client: RawClient, worker: int, made: dict[int, tuple[list[str], list[str]]]
) -> None:
    """200 calls: per round of 8, a key, an alias on it, a tag, and five reads."""
    keys: list[str] = []
    aliases: list[str] = []
    calls = 0
    while calls < CALLS_PER_CLIENT:
        arn = client.call("CreateKey", KeyAttributes=K0_AES, Exportable=True)["Key"]["KeyArn"]
        keys.append(arn)
        alias = f"alias/w{worker}-{len(aliases)}"
        client.call("CreateAlias", AliasName=alias, KeyArn=arn)
        aliases.append(alias)
        client.call("TagResource", ResourceArn=arn, Tags=[{"Key": "worker", "Value": str(worker)}])
        assert client.call("GetKey", KeyIdentifier=alias)["Key"]["KeyArn"] == arn
        assert client.call("GetAlias", AliasName=alias)["Alias"]["KeyArn"] == arn
        client.call("ListKeys", MaxResults=5)
        client.call("ListAliases", MaxResults=5)
        tags = client.call("ListTagsForResource", ResourceArn=arn)["Tags"]
        assert tags == [{"Key": "worker", "Value": str(worker)}]
        calls += 8
    made[worker] = (keys, aliases)


def count_all(client: Any, operation: str, items: str) -> list[dict[str, Any]]:
    paginator = client.get_paginator(operation)
    return [item for page in paginator.paginate() for item in page[items]]


@pytest.mark.slow
def test_concurrent_clients_lose_nothing(tmp_path: Path) -> None:
    """With --state (the harder case: every write is an SQLite commit) and a request log."""
    log_path = tmp_path / "requests.jsonl"
    config = EmulatorConfig(state_path=tmp_path / "state.db", request_log_path=log_path)
    made: dict[int, tuple[list[str], list[str]]] = {}
    errors: list[BaseException] = []
    with start_emulator(config) as running:
        clients = [RawClient(running.url, running.host, running.port) for _ in range(CLIENTS)]

        def work(worker: int) -> None:
            try:
                run_client(clients[worker], worker, made)
            except BaseException as exc:  # report in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for client in clients:
            client.close()
        assert errors == []
        expected_keys = {arn for keys, _ in made.values() for arn in keys}
        expected_aliases = {name for _, aliases in made.values() for name in aliases}
        assert len(expected_keys) == CLIENTS * CALLS_PER_CLIENT // 8
        observer = make_emulator_client(running.url)
        assert {key["KeyArn"] for key in count_all(observer, "list_keys", "Keys")} == (
            expected_keys
        )
        listed = count_all(observer, "list_aliases", "Aliases")
        assert {alias["AliasName"] for alias in listed} == expected_aliases

    entries = read_request_log(log_path)
    statuses = Counter(entry.status for entry in entries[: CLIENTS * CALLS_PER_CLIENT])
    assert statuses == {200: CLIENTS * CALLS_PER_CLIENT}
    assert max_concurrency(entries) > 1  # the calls really overlapped

    with start_emulator(config) as restarted:
        observer = make_emulator_client(restarted.url)
        assert len(count_all(observer, "list_keys", "Keys")) == len(expected_keys)
        assert len(count_all(observer, "list_aliases", "Aliases")) == len(expected_aliases)


def test_a_burst_of_new_connections_is_accepted() -> None:
    """48 clients connecting at the same instant: none refused or reset (listen backlog)."""
    failures: list[str] = []
    with start_emulator(EmulatorConfig()) as running:
        barrier = threading.Barrier(48)

        def connect_and_call() -> None:
            client = RawClient(running.url, running.host, running.port)
            try:
                barrier.wait(timeout=10)
                client.call("ListAliases")
            except Exception as exc:  # collected, asserted below
                failures.append(repr(exc))
            finally:
                client.close()

        threads = [threading.Thread(target=connect_and_call) for _ in range(48)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
