"""The emulator against hostile or broken clients, over real HTTP on 127.0.0.1 (issue 12's
wire defects; issue 13 items 7, 9 and 11). Every test is bounded in time."""

from __future__ import annotations

import datetime
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from apckx.emulator.pytest_plugin import call_raw, make_emulator_client, post_raw, sign_request
from apckx.emulator.requestlog import read_request_log
from apckx.emulator.server import EmulatorConfig, RunningEmulator, start_emulator

K0_AES = {
    "KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY",
    "KeyClass": "SYMMETRIC_KEY",
    "KeyAlgorithm": "AES_256",
    "KeyModesOfUse": {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True},
}


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "requests.jsonl"


@pytest.fixture
def emulator(log_path: Path) -> Iterator[RunningEmulator]:
    with start_emulator(EmulatorConfig(request_log_path=log_path)) as running:
        yield running


def read_answer(raw: socket.socket) -> tuple[int, bytes]:
    """One HTTP/1.1 answer from ``raw``: (status, body)."""
    response = http.client.HTTPResponse(raw)
    response.begin()
    return response.status, response.read()


# --- signed headers (item 7) ------------------------------------------------------------------


def host_and_date_only_capture(url: str, body: bytes) -> dict[str, str]:
    """A capture signed over host and x-amz-date only (the issue's replay)."""
    request = AWSRequest(method="POST", url=url.rstrip("/") + "/", data=body)
    signer = SigV4Auth(Credentials("test", "test"), "payment-cryptography", "us-east-1")
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    request.context["timestamp"] = stamp
    request.headers["X-Amz-Date"] = stamp
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    headers = {name: str(value) for name, value in request.headers.items()}
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, "
        f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(request))}, "
        f"Signature={signature}"
    )
    assert "SignedHeaders=host;x-amz-date," in headers["Authorization"]
    return headers


def test_a_capture_signed_over_host_and_date_only_is_not_replayable(
        emulator: RunningEmulator) -> None:
    client = make_emulator_client(emulator.url)
    arn = client.create_key(KeyAttributes=K0_AES, Exportable=True)["Key"]["KeyArn"]
    body = json.dumps({"KeyIdentifier": arn}).encode()
    headers = host_and_date_only_capture(emulator.url, body)
    headers["X-Amz-Target"] = "PaymentCryptographyControlPlane.DeleteKey"
    headers["Content-Type"] = "application/x-amz-json-1.0"
    answer = post_raw(emulator.url, headers, body)
    assert (answer.status, answer.json()["__type"]) == (400, "IncompleteSignatureException")
    assert "x-amz-target" in answer.json()["message"]
    assert client.get_key(KeyIdentifier=arn)["Key"]["KeyState"] == "CREATE_COMPLETE"


def test_content_type_must_be_signed_too(emulator: RunningEmulator) -> None:
    body = b"{}"
    headers = host_and_date_only_capture(emulator.url, body)
    # sign the target but not the content type: still refused
    request = AWSRequest(method="POST", url=emulator.url + "/", data=body, headers={
        "X-Amz-Target": "PaymentCryptographyControlPlane.ListKeys"})
    signer = SigV4Auth(Credentials("test", "test"), "payment-cryptography", "us-east-1")
    signer.add_auth(request)
    headers = {name: str(value) for name, value in request.headers.items()}
    assert "content-type" not in headers["Authorization"]
    headers["Content-Type"] = "application/x-amz-json-1.0"
    answer = post_raw(emulator.url, headers, body)
    assert (answer.status, answer.json()["__type"]) == (400, "IncompleteSignatureException")
    assert "content-type" in answer.json()["message"]
    # botocore, the AWS CLI and curl sign both: the usual request passes
    assert call_raw(emulator.url, "ListKeys", {}).status == 200


# --- a refused request leaves the connection clean; the log names the path --------------------


def test_unknown_path_drains_its_body_so_keep_alive_goes_on(
        emulator: RunningEmulator, log_path: Path) -> None:
    headers, body = sign_request(emulator.url, "ListKeys", {})
    junk = b'{"padding":"' + b"x" * 5000 + b'"}'
    with socket.create_connection((emulator.host, emulator.port), timeout=5) as raw:
        raw.sendall(b"POST /keys/nothing HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    b"application/json\r\nContent-Length: " + str(len(junk)).encode()
                    + b"\r\n\r\n" + junk)
        status, answer = read_answer(raw)
        assert status == 404
        assert json.loads(answer)["__type"] == "UnknownOperationException"
        lines = [f"Host: {emulator.host}:{emulator.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        request = ("POST / HTTP/1.1\r\n" + "".join(f"{line}\r\n" for line in lines)
                   + "\r\n").encode() + body
        raw.sendall(request)
        status, answer = read_answer(raw)
        assert status == 200, answer
        assert json.loads(answer) == {"Keys": []}
    entries = read_request_log(log_path)
    assert [(entry.path, entry.status) for entry in entries] == [
        ("/keys/nothing", 404), ("/", 200)]
    assert entries[1].operation == "ListKeys"


def test_get_with_a_body_is_drained_too(emulator: RunningEmulator) -> None:
    with socket.create_connection((emulator.host, emulator.port), timeout=5) as raw:
        raw.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd")
        assert read_answer(raw)[0] == 405
        raw.sendall(b"GET /y HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert read_answer(raw)[0] == 405


@pytest.mark.parametrize(("request_line", "path"), [
    (b"POST /a\x01b HTTP/1.1 extra\r\n\r\n", "/a?b"),
    (b"BREW /pot HTTP/1.1\r\n\r\n", "/pot"),
    (b"garbage\r\n\r\n", ""),
])
def test_garbled_requests_are_logged_with_their_path(
        emulator: RunningEmulator, log_path: Path, request_line: bytes, path: str) -> None:
    with socket.create_connection((emulator.host, emulator.port), timeout=5) as raw:
        raw.sendall(request_line)
        status, _ = read_answer(raw)
    assert status in (400, 501)
    entries = read_request_log(log_path)
    assert [(entry.operation, entry.path, entry.status) for entry in entries] == [
        ("-", path, status)]


# --- nested JSON (item 11) ---------------------------------------------------------------------


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_deeply_nested_json_is_a_serialization_exception(
        emulator: RunningEmulator, depth: int) -> None:
    body = b'{"KeyIdentifier":' + b"[" * depth + b"]" * depth + b"}"
    answer = call_raw(emulator.url, "GetKey", body)
    assert (answer.status, answer.json()["__type"]) == (400, "SerializationException")
    assert call_raw(emulator.url, "ListKeys", {}).status == 200


# --- connections (item 9) -----------------------------------------------------------------------


def test_connections_over_the_cap_are_refused_and_freed_slots_serve_again() -> None:
    with start_emulator(EmulatorConfig(max_connections=4)) as emulator:
        held = [socket.create_connection((emulator.host, emulator.port), timeout=5)
                for _ in range(4)]
        try:
            time.sleep(0.2)  # let the server register them
            with socket.create_connection((emulator.host, emulator.port), timeout=5) as extra:
                status, body = read_answer(extra)
            assert status == 503
            assert json.loads(body)["__type"] == "ServiceUnavailableException"
        finally:
            for connection in held:
                connection.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if call_raw(emulator.url, "ListKeys", {}).status == 200:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the emulator did not serve again after connections closed")


def test_a_client_that_trickles_bytes_is_cut_at_the_deadline() -> None:
    with start_emulator(EmulatorConfig(request_deadline=1.0)) as emulator:
        with socket.create_connection((emulator.host, emulator.port), timeout=5) as raw:
            start = time.monotonic()
            raw.sendall(b"POST / HTTP/1.1\r\n")
            cut = False
            for _ in range(40):  # one header byte every 0.1 s: never idle, never done
                try:
                    raw.sendall(b"X")
                    raw.settimeout(0.1)
                    if raw.recv(1024) == b"":
                        cut = True
                        break
                except TimeoutError:
                    continue
                except OSError:
                    cut = True
                    break
            elapsed = time.monotonic() - start
        assert cut, "the trickling client was never cut off"
        assert elapsed < 3.0
        assert call_raw(emulator.url, "ListKeys", {}).status == 200


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_SERVE_WITH_FEW_DESCRIPTORS = """
import resource, sys, time
from apckx.emulator.server import EmulatorConfig, start_emulator
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
with start_emulator(EmulatorConfig(max_connections=1000)) as emulator:
    print(emulator.port, flush=True)
    sys.stdin.readline()
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to read CPU time")
def test_descriptor_exhaustion_backs_off_instead_of_spinning() -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVE_WITH_FEW_DESCRIPTORS],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    held: list[socket.socket] = []
    try:
        assert server.stdout is not None and server.stdin is not None
        port = int(server.stdout.readline())
        for _ in range(80):  # more than the server has descriptors for
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)
        before = _cpu_seconds(server.pid)
        time.sleep(2.0)
        used = _cpu_seconds(server.pid) - before
        assert used < 0.6, f"the server used {used:.2f} s of CPU in 2 s while out of descriptors"
        for connection in held:
            connection.close()
        held.clear()
        deadline = time.monotonic() + 10
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                if call_raw(url, "ListKeys", {}).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not recover"
            time.sleep(0.1)
    finally:
        for connection in held:
            connection.close()
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
