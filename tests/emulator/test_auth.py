"""SigV4 verification against requests signed by botocore itself, and the policy file."""

from __future__ import annotations

import datetime
import json
from email.message import Message
from pathlib import Path
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from apckx.emulator.auth import EmulatorCredentials, Policy, verify_request
from apckx.emulator.exceptions import (
    AccessDeniedException,
    ApcServiceException,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from apckx.errors import ConfigError

NOW = datetime.datetime(2026, 11, 28, 21, 0, 0, tzinfo=datetime.UTC)
BODY = b'{"KeyIdentifier":"alias/x"}'
HOST = "127.0.0.1:4566"
SECRET = "test"


def signed_headers(
    *,
    secret: str = SECRET,
    access_key: str = "test",
    token: str | None = None,
    region: str = "us-east-1",
    service: str = "payment-cryptography",
    when: datetime.datetime = NOW,
    body: bytes = BODY,
) -> Message:
    request = AWSRequest(
        method="POST",
        url=f"http://{HOST}/",
        data=body,
        headers={
            "X-Amz-Target": "PaymentCryptographyControlPlane.GetKey",
            "Content-Type": "application/x-amz-json-1.0",
            "User-Agent": "pytest",
        },
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
        SigV4Auth(Credentials(access_key, secret, token), service, region).add_auth(request)
    headers = Message()
    headers["Host"] = HOST
    for name, value in request.headers.items():
        headers[name] = value if isinstance(value, str) else value.decode()
    return headers


def verify(
    headers: Message,
    *,
    body: bytes = BODY,
    creds: EmulatorCredentials | None = None,
    now: datetime.datetime = NOW,
) -> str:
    caller = verify_request(
        method="POST",
        path="/",
        headers=headers,
        body=body,
        credentials=creds or EmulatorCredentials(),
        now=now,
    )
    return caller.region


def test_botocore_signature_verifies_and_gives_the_scope_region() -> None:
    assert verify(signed_headers(region="eu-west-2")) == "eu-west-2"


def test_session_token_accepted_when_signed() -> None:
    assert verify(signed_headers(token="session-abc")) == "us-east-1"
    creds = EmulatorCredentials(session_token="session-abc")
    assert verify(signed_headers(token="session-abc"), creds=creds) == "us-east-1"
    with pytest.raises(UnrecognizedClientException):
        verify(signed_headers(token="other"), creds=creds)
    with pytest.raises(UnrecognizedClientException):
        verify(signed_headers(), creds=creds)


def test_session_token_added_after_signing_is_refused() -> None:
    headers = signed_headers()
    headers["X-Amz-Security-Token"] = "smuggled"
    with pytest.raises(IncompleteSignatureException, match="must be signed"):
        verify(headers)


def test_wrong_secret_is_invalid_signature() -> None:
    with pytest.raises(InvalidSignatureException, match="does not match"):
        verify(signed_headers(secret="not-the-secret"))


def test_unknown_access_key_is_unrecognized_client() -> None:
    with pytest.raises(UnrecognizedClientException, match="security token"):
        verify(signed_headers(access_key="AKIAOTHER"))


def test_missing_authorization_is_missing_token() -> None:
    headers = signed_headers()
    del headers["Authorization"]
    with pytest.raises(MissingAuthenticationTokenException):
        verify(headers)


def test_tampered_body_is_invalid_signature() -> None:
    with pytest.raises(InvalidSignatureException):
        verify(signed_headers(), body=b'{"KeyIdentifier":"alias/y"}')


def test_tampered_signed_header_is_invalid_signature() -> None:
    headers = signed_headers()
    headers.replace_header("X-Amz-Target", "PaymentCryptographyControlPlane.DeleteKey")
    with pytest.raises(InvalidSignatureException):
        verify(headers)


def test_content_sha256_header_must_match_the_body() -> None:
    headers = signed_headers()
    headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    with pytest.raises(InvalidSignatureException, match="SHA-256"):
        verify(headers)


def test_expired_and_future_dates_are_refused_beyond_15_minutes() -> None:
    assert verify(signed_headers(when=NOW - datetime.timedelta(minutes=14))) == "us-east-1"
    assert verify(signed_headers(when=NOW + datetime.timedelta(minutes=14))) == "us-east-1"
    with pytest.raises(InvalidSignatureException, match="Signature expired"):
        verify(signed_headers(when=NOW - datetime.timedelta(minutes=16)))
    with pytest.raises(InvalidSignatureException, match="Signature expired"):
        verify(signed_headers(when=NOW + datetime.timedelta(minutes=16)))


def test_wrong_service_in_scope_is_refused() -> None:
    with pytest.raises(InvalidSignatureException, match="correct service"):
        verify(signed_headers(service="kms"))


def test_bad_region_in_scope_is_refused() -> None:
    with pytest.raises(InvalidSignatureException, match="valid region"):
        verify(signed_headers(region="Mars"))


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256 Credential=test/20261128/us-east-1/payment-cryptography/aws4_request",
        "AWS4-HMAC-SHA256 Credential=test/20261128/us-east-1/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=00",
        "AWS4-HMAC-SHA256 Credential=test/20261128/us-east-1/payment-cryptography/aws4_request, "
        "SignedHeaders=x-amz-date, Signature=00",
        "AWS4-HMAC-SHA256 Credential=test/20261128/us-east-1/payment-cryptography/aws4_request, "
        "SignedHeaders=x-amz-date;host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=test/20261128/us-east-1/payment-cryptography/aws4_request, "
        "SignedHeaders=host;x-amz-date;x-missing, Signature=00",
        "AWS HMAC test:abc",
        "garbage",
    ],
)
def test_malformed_authorization_is_incomplete_signature(authorization: str) -> None:
    headers = signed_headers()
    headers.replace_header("Authorization", authorization)
    with pytest.raises(IncompleteSignatureException):
        verify(headers)


def test_scope_date_must_match_x_amz_date() -> None:
    headers = signed_headers()
    value = headers["Authorization"].replace("/20261128/", "/20261127/")
    headers.replace_header("Authorization", value)
    with pytest.raises(InvalidSignatureException, match="Date in Credential scope"):
        verify(headers)


def test_auth_errors_carry_aws_codes_and_statuses() -> None:
    expected = {
        MissingAuthenticationTokenException: ("MissingAuthenticationTokenException", 403),
        IncompleteSignatureException: ("IncompleteSignatureException", 400),
        InvalidSignatureException: ("InvalidSignatureException", 403),
        UnrecognizedClientException: ("UnrecognizedClientException", 403),
        AccessDeniedException: ("AccessDeniedException", 403),
    }
    for cls, (code, status) in expected.items():
        error: ApcServiceException = cls("x")
        assert (error.error_type, error.status) == (code, status)


def test_secret_not_in_credentials_repr() -> None:
    creds = EmulatorCredentials("AKID", "very-secret-value", "token-value")
    assert "very-secret-value" not in repr(creds)
    assert "token-value" not in repr(creds)


# --- policy ---


def test_policy_allow_list_with_wildcards_and_deny_wins() -> None:
    policy = Policy.from_document(
        {
            "Allow": ["payment-cryptography:CreateKey", "payment-cryptography:Get*"],
            "Deny": ["payment-cryptography:GetPublicKeyCertificate"],
        }
    )
    assert policy.is_allowed("CreateKey")
    assert policy.is_allowed("GetKey")
    assert policy.is_allowed("GetAlias")
    assert not policy.is_allowed("GetPublicKeyCertificate")
    assert not policy.is_allowed("DeleteKey")
    with pytest.raises(AccessDeniedException, match="payment-cryptography:DeleteKey"):
        policy.check("DeleteKey", account_id="111122223333", access_key_id="test")
    policy.check("GetKey", account_id="111122223333", access_key_id="test")


def test_policy_without_allow_allows_all_but_denied() -> None:
    policy = Policy.from_document({"Deny": ["payment-cryptography:Delete*"]})
    assert policy.is_allowed("ExportKey")
    assert not policy.is_allowed("DeleteKey")
    assert not policy.is_allowed("DeleteAlias")


def test_policy_matching_ignores_case() -> None:
    policy = Policy.from_document({"Allow": ["Payment-Cryptography:getkey"]})
    assert policy.is_allowed("GetKey")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "must be a JSON object"),
        ({"Allow": ["kms:*"]}, "must start with 'payment-cryptography:'"),
        ({"Allow": [1]}, "must be a list"),
        ({"Allowed": []}, "unknown member 'Allowed'"),
    ],
)
def test_bad_policy_documents_are_config_errors(document: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Policy.from_document(document)


def test_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"Allow": ["payment-cryptography:List*"]}))
    assert Policy.from_file(path).is_allowed("ListKeys")
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        Policy.from_file(path)
    with pytest.raises(ConfigError, match="cannot read policy file"):
        Policy.from_file(tmp_path / "absent.json")


def test_tampered_host_is_invalid_signature() -> None:
    headers = signed_headers()
    headers.replace_header("Host", "[bad host")
    with pytest.raises(InvalidSignatureException):
        verify(headers)


def test_protocol_headers_must_be_signed_when_present() -> None:
    """JSON 1.0: x-amz-target and content-type, when carried, are in SignedHeaders; a
    capture signed over host and date only cannot be replayed as another operation."""
    from apckx.emulator.auth import JSON_RPC_SIGNED_HEADERS, REST_JSON_SIGNED_HEADERS

    request = AWSRequest(method="POST", url=f"http://{HOST}/", data=BODY)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        SigV4Auth(Credentials("test", SECRET), "payment-cryptography", "us-east-1").add_auth(
            request)
    headers = Message()
    headers["Host"] = HOST
    for name, value in request.headers.items():
        headers[name] = value if isinstance(value, str) else value.decode()
    assert "SignedHeaders=host;x-amz-date," in headers["Authorization"]
    assert verify_request(method="POST", path="/", headers=headers, body=BODY,
                          credentials=EmulatorCredentials(), now=NOW,
                          required_signed_headers=JSON_RPC_SIGNED_HEADERS).region == "us-east-1"
    headers["X-Amz-Target"] = "PaymentCryptographyControlPlane.DeleteKey"
    with pytest.raises(IncompleteSignatureException, match="x-amz-target"):
        verify_request(method="POST", path="/", headers=headers, body=BODY,
                       credentials=EmulatorCredentials(), now=NOW,
                       required_signed_headers=JSON_RPC_SIGNED_HEADERS)
    del headers["X-Amz-Target"]
    headers["Content-Type"] = "application/json"
    for rule in (JSON_RPC_SIGNED_HEADERS, REST_JSON_SIGNED_HEADERS):
        with pytest.raises(IncompleteSignatureException, match="content-type"):
            verify_request(method="POST", path="/", headers=headers, body=BODY,
                           credentials=EmulatorCredentials(), now=NOW,
                           required_signed_headers=rule)
    # botocore signs every header it sends: the usual request passes under the JSON rule
    assert verify_request(method="POST", path="/", headers=signed_headers(), body=BODY,
                          credentials=EmulatorCredentials(), now=NOW,
                          required_signed_headers=JSON_RPC_SIGNED_HEADERS).region == "us-east-1"
