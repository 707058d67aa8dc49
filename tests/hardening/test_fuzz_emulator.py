"""The emulator fed garbage over real HTTP: malformed JSON, wrong types, unknown targets,
oversize bodies, bad signatures. Every answer is a 4xx JSON error (never a 5xx, never a hang)
and the emulator keeps serving: a well-formed call succeeds afterwards.

``APCKX_FUZZ_EXAMPLES`` scales the examples (default 40).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apckx.emulator.pytest_plugin import RawAnswer, call_raw, post_raw, sign_request
from apckx.emulator.server import EmulatorConfig, RunningEmulator, start_emulator

FUZZ = settings(
    max_examples=int(os.environ.get("APCKX_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MAX_BODY = 64 * 1024

OPERATIONS = ["CreateKey", "ImportKey", "ExportKey", "GetKey", "DeleteKey", "CreateAlias",
              "UpdateAlias", "GetPublicKeyCertificate", "TagResource", "ListKeys",
              "ListAliases", "ListTagsForResource", "RestoreKey", "StartKeyUsage"]  # fmt: skip
FIELD_NAMES = ["KeyAttributes", "KeyIdentifier", "KeyMaterial", "AliasName", "KeyArn",
               "Exportable", "Enabled", "Tags", "KeyCheckValueAlgorithm", "NextToken",
               "MaxResults", "ResourceArn", "DeleteKeyInDays", "ExportKeyIdentifier",
               "KeyUsage", "KeyClass", "KeyAlgorithm", "KeyModesOfUse", "Tr31KeyBlock",
               "WrappedKeyBlock", "DiffieHellmanTr31KeyBlock", "RootCertificatePublicKey",
               "PublicKeyCertificate", "DeriveKeyUsage", "x"]  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
    | st.sampled_from(["alias/a", "arn:aws:payment-cryptography:us-east-1:111122223333:key/x",
                       "AES_256", "TR31_K0_KEY_ENCRYPTION_KEY", "SYMMETRIC_KEY", "*" * 300]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), children, max_size=5),
    max_leaves=15,
)  # fmt: skip


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    running = start_emulator(EmulatorConfig(max_body_bytes=MAX_BODY))
    try:
        yield running
    finally:
        running.stop()


def assert_client_error(answer: RawAnswer) -> dict[str, Any]:
    assert 400 <= answer.status < 500, (answer.status, answer.body[:300])
    body = answer.json()
    assert isinstance(body, dict) and body.get("__type"), body
    assert "Traceback" not in answer.body.decode("utf-8", "replace")
    return body


def assert_still_serving(emulator: RunningEmulator) -> None:
    answer = call_raw(emulator.url, "ListKeys", {})
    assert answer.status == 200, answer.body[:300]


@FUZZ
@given(st.sampled_from(OPERATIONS), st.dictionaries(st.sampled_from(FIELD_NAMES), json_values,
                                                    min_size=1, max_size=6))  # fmt: skip
def test_wrong_types_and_shapes_are_4xx(
    emulator: RunningEmulator, operation: str, body: dict[str, Any]
) -> None:
    answer = call_raw(emulator.url, operation, body)
    if answer.status == 200:  # the fuzzer can stumble on a valid request (ListKeys {...})
        return
    assert_client_error(answer)


@FUZZ
@given(st.sampled_from(OPERATIONS), st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_malformed_json_is_4xx(emulator: RunningEmulator, operation: str, data: bytes) -> None:
    try:
        parsed = json.loads(data) if data.strip() else {}  # no body counts as {}
    except ValueError:
        parsed = None
    answer = call_raw(emulator.url, operation, data)
    if isinstance(parsed, dict) and answer.status == 200:
        return
    assert_client_error(answer)


@FUZZ
@given(st.text(max_size=60) | st.sampled_from(
    ["PaymentCryptographyControlPlane.", "PaymentCryptographyControlPlane.EncryptData",
     "PaymentCryptographyDataPlane.EncryptData", "PaymentCryptographyControlPlane.__init__",
     "PaymentCryptographyControlPlane.import_key", "PaymentCryptographyControlPlane.ImportKey "]
))  # fmt: skip
def test_unknown_targets_are_4xx(emulator: RunningEmulator, target: str) -> None:
    target = target.replace("\r", "").replace("\n", "").replace("\x00", "")
    try:
        target.encode("latin-1")
    except UnicodeEncodeError:
        target = target.encode("ascii", "replace").decode()
    headers, data = sign_request(emulator.url, None, {}, headers={"X-Amz-Target": target})
    answer = post_raw(emulator.url, headers, data)
    if target == "PaymentCryptographyControlPlane.ListKeys":
        return
    assert_client_error(answer)


@FUZZ
@given(
    st.sampled_from(["signature", "date", "credential", "secret", "region", "body", "drop"]),
    st.text(alphabet="0123456789abcdef", min_size=1, max_size=8),
)
def test_bad_signatures_are_4xx(emulator: RunningEmulator, what: str, noise: str) -> None:
    body = {"KeyIdentifier": "alias/none"}
    if what == "secret":
        headers, data = sign_request(emulator.url, "GetKey", body, secret_access_key="wrong")
    elif what == "region":
        headers, data = sign_request(emulator.url, "GetKey", body, region=f"xx-{noise}-1")
    else:
        headers, data = sign_request(emulator.url, "GetKey", body)
        auth = headers["Authorization"]
        if what == "signature":
            tail = auth[-len(noise) :]  # changed, whatever it was: never the same signature
            headers["Authorization"] = auth[: -len(noise)] + "".join(
                "1" if c == "0" else "0" for c in tail
            )
        elif what == "date":
            headers["X-Amz-Date"] = "20200101T000000Z"
        elif what == "credential":
            headers["Authorization"] = auth.replace("Credential=test/", f"Credential={noise}/")
        elif what == "body":
            data = data + noise.encode()
            headers["Content-Length"] = str(len(data))
        else:
            del headers["Authorization"]
    answer = post_raw(emulator.url, headers, data)
    if what == "region":  # a region the signature is valid for: any region name is a region
        assert answer.status in (400, 403, 404), answer.body[:200]
        return
    body_out = assert_client_error(answer)
    assert body_out["__type"] != "ResourceNotFoundException"


def test_oversize_body_is_413_and_connection_recovers(emulator: RunningEmulator) -> None:
    big = json.dumps({"KeyIdentifier": "x" * (MAX_BODY + 10)}).encode()
    headers, data = sign_request(emulator.url, "GetKey", big)
    answer = post_raw(emulator.url, headers, data)
    assert answer.status == 413
    assert answer.json()["__type"] == "RequestEntityTooLargeException"
    assert_still_serving(emulator)


def test_lying_content_length_and_garbage_request_lines(emulator: RunningEmulator) -> None:
    parts = urlsplit(emulator.url)
    assert parts.hostname is not None and parts.port is not None
    raw_requests = [
        b"GARBAGE\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /../../etc/passwd HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        b"POST / HTTP/1.1\r\n" + b"X-Long: " + b"a" * 70000 + b"\r\n\r\n",
    ]
    for raw in raw_requests:
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
            sock.sendall(raw)
            answer = sock.recv(65536)
        status_line = answer.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1."), (raw[:40], answer[:80])
        status = int(status_line.split()[1])
        assert 400 <= status < 500, (raw[:40], status_line)
    # A short body that never comes: the server must not wedge on it.
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    assert_still_serving(emulator)


def test_keeps_serving_after_every_kind_of_garbage(emulator: RunningEmulator) -> None:
    parts = urlsplit(emulator.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        for method in ("GET", "PUT", "DELETE", "OPTIONS"):
            connection.request(method, "/")
            response = connection.getresponse()
            response.read()
            assert response.status == 405
    finally:
        connection.close()
    assert_still_serving(emulator)
