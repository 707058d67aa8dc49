"""The emulator over real HTTP: AWS JSON 1.0 wire, errors as botocore parses them, SigV4."""

from __future__ import annotations

import datetime
import http.client
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest

from apckx.emulator import exceptions as wire_exceptions
from apckx.emulator.auth import EmulatorCredentials, Policy
from apckx.emulator.exceptions import ApcServiceException
from apckx.emulator.pytest_plugin import (
    EmulatorFixture,
    call_raw,
    make_emulator_client,
    post_raw,
    sign_request,
)
from apckx.emulator.server import EmulatorConfig, RunningEmulator, start_emulator

K0_AES = {
    "KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY",
    "KeyClass": "SYMMETRIC_KEY",
    "KeyAlgorithm": "AES_256",
    "KeyModesOfUse": {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True},
}


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with start_emulator(EmulatorConfig()) as running:
        yield running


def create_kek(client: Any, **extra: Any) -> str:
    arn: str = client.create_key(KeyAttributes=K0_AES, Exportable=True, **extra)["Key"]["KeyArn"]
    return arn


# --- through boto3 ----------------------------------------------------------------------


def test_boto3_roundtrip_with_request_id(apc_emulator: EmulatorFixture) -> None:
    client = apc_emulator.client
    created = client.create_key(
        KeyAttributes=K0_AES, Exportable=True, Tags=[{"Key": "team", "Value": "payments"}]
    )
    arn = created["Key"]["KeyArn"]
    assert arn.startswith("arn:aws:payment-cryptography:us-east-1:111122223333:key/")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert len(created["ResponseMetadata"]["RequestId"]) == 36
    assert created["Key"]["KeyCheckValue"]
    assert client.get_key(KeyIdentifier=arn)["Key"]["KeyState"] == "CREATE_COMPLETE"
    assert [key["KeyArn"] for key in client.list_keys()["Keys"]] == [arn]
    client.create_alias(AliasName="alias/kek", KeyArn=arn)
    assert client.get_key(KeyIdentifier="alias/kek")["Key"]["KeyArn"] == arn
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "team", "Value": "payments"}
    ]


def test_region_comes_from_the_signature_scope(apc_emulator: EmulatorFixture) -> None:
    eu = make_emulator_client(apc_emulator.url, region="eu-west-1")
    arn = create_kek(eu)
    assert ":eu-west-1:" in arn
    assert apc_emulator.client.list_keys()["Keys"] == []  # us-east-1 is another backend
    assert len(eu.list_keys()["Keys"]) == 1


def test_modeled_errors_parse_to_botocore_exception_classes(
    apc_emulator: EmulatorFixture,
) -> None:
    client = apc_emulator.client
    with pytest.raises(client.exceptions.ResourceNotFoundException) as not_found:
        client.get_key(KeyIdentifier="alias/absent")
    assert not_found.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert not_found.value.response["ResourceId"] == "alias/absent"
    with pytest.raises(client.exceptions.ValidationException) as invalid:
        client.get_key(KeyIdentifier="not an identifier")
    assert invalid.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    arn = create_kek(client)
    client.create_alias(AliasName="alias/once", KeyArn=arn)
    with pytest.raises(client.exceptions.ConflictException) as duplicate:
        client.create_alias(AliasName="alias/once", KeyArn=arn)
    assert duplicate.value.response["Error"]["Message"]
    for error in (not_found, invalid, duplicate):
        assert error.value.response["ResponseMetadata"]["RequestId"]


def every_wire_exception() -> list[type[ApcServiceException]]:
    found: list[type[ApcServiceException]] = []
    pending = [ApcServiceException]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub.__module__ == wire_exceptions.__name__:
                found.append(sub)
            pending.append(sub)
    return sorted(found, key=lambda cls: cls.__name__)


MODELED = {
    "AccessDeniedException", "ConflictException", "InternalServerException",
    "ResourceNotFoundException", "ServiceQuotaExceededException", "ServiceUnavailableException",
    "ThrottlingException", "ValidationException",
}  # fmt: skip


@pytest.mark.parametrize("error_class", every_wire_exception(), ids=lambda cls: cls.__name__)
def test_every_wire_exception_parses_in_botocore(
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    error_class: type[ApcServiceException],
) -> None:
    """Whatever the operation raises reaches botocore as the same class, status and text."""
    if error_class is wire_exceptions.ResourceNotFoundException:
        error: ApcServiceException = error_class("no such thing", resource_id="alias/x")
    else:
        error = error_class("no such thing")

    def raising(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise error

    monkeypatch.setattr(emulator._server.app, "_dispatch", raising)
    client = make_emulator_client(emulator.url, max_attempts=1)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client.list_keys()
    response = raised.value.response
    assert response["Error"]["Code"] == error_class.error_type
    assert response["Error"]["Message"] == "no such thing"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == error_class.status
    assert response["ResponseMetadata"]["RequestId"]
    if error_class.error_type in MODELED:
        assert isinstance(raised.value, getattr(client.exceptions, error_class.error_type))
    assert MODELED <= {cls.error_type for cls in every_wire_exception()}


def test_quota_exceeded_parses_to_its_class() -> None:
    with start_emulator(EmulatorConfig(key_quota=1, alias_quota=1)) as running:
        client = make_emulator_client(running.url)
        arn = create_kek(client)
        with pytest.raises(client.exceptions.ServiceQuotaExceededException) as keys:
            create_kek(client)
        assert keys.value.response["ResponseMetadata"]["HTTPStatusCode"] == 402
        client.create_alias(AliasName="alias/a", KeyArn=arn)
        with pytest.raises(client.exceptions.ServiceQuotaExceededException):
            client.create_alias(AliasName="alias/b", KeyArn=arn)
        assert len(client.list_keys()["Keys"]) == 1


def test_policy_denies_with_access_denied_naming_the_action() -> None:
    policy = Policy.from_document(
        {"Allow": ["payment-cryptography:CreateKey", "payment-cryptography:List*"]}
    )
    with start_emulator(EmulatorConfig(policy=policy)) as running:
        client = make_emulator_client(running.url)
        arn = create_kek(client)
        assert len(client.list_keys()["Keys"]) == 1
        with pytest.raises(client.exceptions.AccessDeniedException) as denied:
            client.delete_key(KeyIdentifier=arn)
        assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert "payment-cryptography:DeleteKey" in denied.value.response["Error"]["Message"]
        assert client.list_keys()["Keys"][0]["KeyState"] == "CREATE_COMPLETE"


# --- authentication over HTTP -----------------------------------------------------------


@pytest.mark.parametrize(
    ("client_options", "code", "status"),
    [
        ({"secret_access_key": "wrong"}, "InvalidSignatureException", 403),
        ({"access_key_id": "AKIAUNKNOWN"}, "UnrecognizedClientException", 403),
    ],
)
def test_boto3_with_wrong_credentials_is_refused(
    apc_emulator: EmulatorFixture, client_options: dict[str, str], code: str, status: int
) -> None:
    client = make_emulator_client(apc_emulator.url, max_attempts=1, **client_options)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        client.list_keys()
    assert refused.value.response["Error"]["Code"] == code
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert apc_emulator.client.list_keys()["Keys"] == []


def test_raw_post_signed_with_botocore_succeeds(emulator: RunningEmulator) -> None:
    answer = call_raw(emulator.url, "CreateKey", {"KeyAttributes": K0_AES, "Exportable": True})
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/x-amz-json-1.0"
    assert answer.headers["x-amzn-RequestId"]
    key = answer.json()["Key"]
    listed = call_raw(emulator.url, "ListKeys", {}).json()
    assert [item["KeyArn"] for item in listed["Keys"]] == [key["KeyArn"]]


def test_raw_session_token_is_accepted_when_signed(emulator: RunningEmulator) -> None:
    answer = call_raw(emulator.url, "ListKeys", {}, session_token="token-from-sts")
    assert answer.status == 200


def test_raw_missing_authorization(emulator: RunningEmulator) -> None:
    headers, body = sign_request(emulator.url, "ListKeys", {})
    del headers["Authorization"]
    answer = post_raw(emulator.url, headers, body)
    assert (answer.status, answer.json()["__type"]) == (403, "MissingAuthenticationTokenException")


def test_raw_tampered_body(emulator: RunningEmulator) -> None:
    headers, _ = sign_request(emulator.url, "CreateKey", {"KeyAttributes": K0_AES})
    tampered = json.dumps({"KeyAttributes": K0_AES, "Exportable": True}).encode()
    answer = post_raw(emulator.url, headers, tampered)
    assert (answer.status, answer.json()["__type"]) == (403, "InvalidSignatureException")
    assert call_raw(emulator.url, "ListKeys", {}).json()["Keys"] == []


def test_raw_expired_date(emulator: RunningEmulator) -> None:
    stale = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=20)
    answer = call_raw(emulator.url, "ListKeys", {}, when=stale)
    assert (answer.status, answer.json()["__type"]) == (403, "InvalidSignatureException")
    assert answer.json()["message"].startswith("Signature expired")
    recent = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=10)
    assert call_raw(emulator.url, "ListKeys", {}, when=recent).status == 200


def test_raw_wrong_secret(emulator: RunningEmulator) -> None:
    answer = call_raw(emulator.url, "ListKeys", {}, secret_access_key="nope")
    assert (answer.status, answer.json()["__type"]) == (403, "InvalidSignatureException")


def test_configured_credentials_are_the_ones_accepted() -> None:
    config = EmulatorConfig(credentials=EmulatorCredentials("AKIDEMU", "s3cr3t"))
    with start_emulator(config) as running:
        ok = call_raw(
            running.url, "ListKeys", {}, access_key_id="AKIDEMU", secret_access_key="s3cr3t"
        )
        assert ok.status == 200
        assert call_raw(running.url, "ListKeys", {}).json()["__type"] == (
            "UnrecognizedClientException"
        )


# --- the wire: unknown operations, bad bodies, methods, paths -----------------------------


def test_unknown_target_is_named(emulator: RunningEmulator) -> None:
    answer = call_raw(emulator.url, "FlyToTheMoon", {})
    assert (answer.status, answer.json()["__type"]) == (400, "UnknownOperationException")
    assert "FlyToTheMoon" in answer.json()["message"]


def test_model_operation_not_implemented_is_named(emulator: RunningEmulator) -> None:
    answer = call_raw(emulator.url, "GetMpaTeamAssociation", {})
    assert (answer.status, answer.json()["__type"]) == (400, "UnknownOperationException")
    assert "GetMpaTeamAssociation is not implemented" in answer.json()["message"]


def test_missing_or_foreign_target(emulator: RunningEmulator) -> None:
    answer = call_raw(emulator.url, None, {})
    assert (answer.status, answer.json()["__type"]) == (400, "UnknownOperationException")
    answer = call_raw(emulator.url, None, {}, headers={"X-Amz-Target": "TrentService.ListKeys"})
    assert answer.json()["__type"] == "UnknownOperationException"
    assert "TrentService.ListKeys" in answer.json()["message"]


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_malformed_or_non_object_body_is_a_serialization_error(
    emulator: RunningEmulator, body: bytes
) -> None:
    answer = call_raw(emulator.url, "ListKeys", body)
    assert (answer.status, answer.json()["__type"]) == (400, "SerializationException")


def test_wrong_content_type(emulator: RunningEmulator) -> None:
    answer = call_raw(emulator.url, "ListKeys", {}, headers={"Content-Type": "text/plain"})
    assert (answer.status, answer.json()["__type"]) == (400, "SerializationException")


def test_body_over_the_limit_is_refused_before_reading() -> None:
    with start_emulator(EmulatorConfig(max_body_bytes=1024)) as running:
        answer = call_raw(running.url, "ListKeys", b" " * 2048)
        assert answer.status == 413
        assert answer.json()["__type"] == "RequestEntityTooLargeException"
        assert answer.headers["x-amzn-RequestId"]
        assert call_raw(running.url, "ListKeys", b" " * 1000).status == 200


def test_get_and_other_paths_are_json_errors(emulator: RunningEmulator) -> None:
    answer = post_raw(emulator.url, {}, b"", method="GET")
    assert answer.status == 405
    assert answer.json()["__type"] == "UnknownOperationException"
    assert answer.headers["x-amzn-RequestId"]
    headers, body = sign_request(emulator.url, "ListKeys", {})
    answer = post_raw(emulator.url, headers, body, path="/keys")
    assert (answer.status, answer.json()["__type"]) == (404, "UnknownOperationException")
    answer = post_raw(emulator.url, {}, b"", method="BREW")
    assert answer.status == 501
    assert answer.json()["__type"] == "SerializationException"


def test_keep_alive_serves_several_requests_on_one_connection(emulator: RunningEmulator) -> None:
    connection = http.client.HTTPConnection(emulator.host, emulator.port, timeout=5)
    try:
        request_ids = set()
        for _ in range(3):
            headers, body = sign_request(emulator.url, "ListKeys", {})
            connection.request("POST", "/", body=body, headers=headers)
            response = connection.getresponse()
            assert response.status == 200
            assert json.loads(response.read()) == {"Keys": []}
            request_ids.add(response.getheader("x-amzn-RequestId"))
        assert len(request_ids) == 3
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.status == 405
        response.read()
        headers, body = sign_request(emulator.url, "ListKeys", {})
        connection.request("POST", "/", body=body, headers=headers)
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_malformed_request_line_gets_a_json_error(emulator: RunningEmulator) -> None:
    with socket.create_connection((emulator.host, emulator.port), timeout=5) as raw:
        raw.sendall(b"POST / HTTP/1.1 extra\r\n\r\n")
        reply = raw.recv(65536)
    assert reply.startswith(b"HTTP/1.1 400")
    assert b'"__type":"SerializationException"' in reply


def test_internal_error_is_generic_and_the_server_keeps_serving(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret_hex = "00112233445566778899aabbccddeeff"

    def broken_dispatch(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError(f"bug while holding key {secret_hex}")

    app = emulator._server.app
    real_dispatch = app._dispatch
    monkeypatch.setattr(app, "_dispatch", broken_dispatch)
    answer = call_raw(emulator.url, "ListKeys", {})
    assert (answer.status, answer.json()["__type"]) == (500, "InternalServerException")
    assert secret_hex not in answer.body.decode()
    assert "RuntimeError" not in answer.body.decode()
    assert secret_hex not in caplog.text
    assert "RuntimeError" in caplog.text
    monkeypatch.setattr(app, "_dispatch", real_dispatch)
    assert call_raw(emulator.url, "ListKeys", {}).status == 200


def test_non_json_result_is_an_internal_error(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = emulator._server.app
    monkeypatch.setattr(app, "_dispatch", lambda *a, **k: {"when": datetime.datetime.now()})
    answer = call_raw(emulator.url, "ListKeys", {})
    assert (answer.status, answer.json()["__type"]) == (500, "InternalServerException")


def test_remote_host_needs_allow_remote() -> None:
    from apckx.errors import ConfigError

    with pytest.raises(ConfigError, match="--allow-remote"):
        start_emulator(EmulatorConfig(host="0.0.0.0"))  # noqa: S104 (refused on purpose)


def test_port_in_use_is_a_config_error(emulator: RunningEmulator) -> None:
    from apckx.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot listen"):
        start_emulator(EmulatorConfig(port=emulator.port))


def test_stop_is_idempotent_and_closes_idle_keep_alive_connections() -> None:
    running = start_emulator(EmulatorConfig())
    client = make_emulator_client(running.url, max_attempts=1)
    client.list_keys()  # leaves an idle keep-alive connection in the pool
    running.stop()
    running.stop()
    # The pooled connection is closed by the server, or a request that slipped in first is
    # answered 503: never a hang, never served after stop.
    with pytest.raises(
        (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ClientError,
        )
    ) as refused:
        client.list_keys()
    if isinstance(refused.value, botocore.exceptions.ClientError):
        assert refused.value.response["Error"]["Code"] == "ServiceUnavailableException"


def test_a_bug_outside_dispatch_is_also_a_generic_500(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import apckx.emulator.server as server_module

    def broken_verify(**kwargs: Any) -> Any:
        raise KeyError("secret detail")

    monkeypatch.setattr(server_module, "verify_request", broken_verify)
    answer = call_raw(emulator.url, "ListKeys", {})
    assert (answer.status, answer.json()["__type"]) == (500, "InternalServerException")
    assert "secret detail" not in answer.body.decode()
    monkeypatch.undo()
    assert call_raw(emulator.url, "ListKeys", {}).status == 200


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize(
    "extra", [[], ["-H", "Expect: 100-continue"]], ids=["plain", "expect-100-continue"]
)
def test_curl_own_sigv4_signer_is_accepted(emulator: RunningEmulator, extra: list[str]) -> None:
    """An independent SigV4 implementation (curl's) verifies too, and an
    ``Expect: 100-continue`` is answered at once (curl would wait 1 s otherwise)."""
    body = json.dumps({"MaxResults": 5, "Padding": "x" * 4096})
    started = time.monotonic()
    completed = subprocess.run(
        [
            "curl", "-s", "-i", "--max-time", "10", *extra,
            "--aws-sigv4", "aws:amz:us-east-1:payment-cryptography", "--user", "test:test",
            "-H", "X-Amz-Target: PaymentCryptographyControlPlane.ListAliases",
            "-H", "Content-Type: application/x-amz-json-1.0",
            "--data", body, emulator.url + "/",
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert time.monotonic() - started < 0.9  # curl waits 1 s for a 100 that never comes
    lines = completed.stdout.splitlines()
    assert "HTTP/1.1 200 OK" in lines
    assert lines[-1] == '{"Aliases":[]}'
    wrong = subprocess.run(
        [
            "curl", "-s", "--max-time", "10",
            "--aws-sigv4", "aws:amz:us-east-1:payment-cryptography", "--user", "test:nope",
            "-H", "X-Amz-Target: PaymentCryptographyControlPlane.ListAliases",
            "-H", "Content-Type: application/x-amz-json-1.0",
            "--data", "{}", emulator.url + "/",
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert json.loads(wrong.stdout)["__type"] == "InvalidSignatureException"


@pytest.mark.parametrize(
    ("framing", "status", "error_type"),
    [
        ("Transfer-Encoding: chunked\r\n", 411, "SerializationException"),
        ("Content-Length: twelve\r\n", 400, "SerializationException"),
        ("Content-Length: -5\r\n", 400, "SerializationException"),
    ],
)
def test_bad_body_framing_is_a_json_error_and_closes(
    emulator: RunningEmulator, framing: str, status: int, error_type: str
) -> None:
    request = (
        f"POST / HTTP/1.1\r\nHost: {emulator.host}:{emulator.port}\r\n"
        f"X-Amz-Target: PaymentCryptographyControlPlane.ListKeys\r\n{framing}\r\n"
    ).encode()
    with socket.create_connection((emulator.host, emulator.port), timeout=5) as raw:
        raw.sendall(request)
        reply = b""
        while chunk := raw.recv(65536):  # the server closes: the framing can't be trusted
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode())
    assert b"Connection: close" in head
    assert b"x-amzn-RequestId: " in head
    assert json.loads(body)["__type"] == error_type
