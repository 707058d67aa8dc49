"""The AWS credential chain, as the AWS CLI resolves it, through make_client and the CLI.

Issue 12: an SSO or assume-role profile failed every command with ``UnknownServiceError``
(the old one-service data loader hid ``sso`` and ``sts`` from botocore's own credential
providers). A loopback stand-in answers SSO ``GetRoleCredentials`` and STS ``AssumeRole`` /
``AssumeRoleWithWebIdentity``; botocore reaches it through its service-specific endpoint
settings (``AWS_ENDPOINT_URL_SSO``, ``AWS_ENDPOINT_URL_STS``), exactly as it would reach AWS.
The credentials it hands out are the emulator's, with a session token the emulator requires,
so a call that gets through proves the chain's credentials signed it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from apckx._cli import main
from apckx.emulator.auth import EmulatorCredentials
from apckx.emulator.pytest_plugin import start_test_emulator
from apckx.emulator.server import EmulatorConfig, RunningEmulator
from apckx.errors import ConfigError
from apckx.service.apc import ApcService
from apckx.service.client import make_client

SESSION_TOKEN = "stand-in-session-token"
SSO_BEARER = "cached-sso-access-token"
ROLE_ARN = "arn:aws:iam::111122223333:role/KeyCustodian"
MFA_SERIAL = "arn:aws:iam::111122223333:mfa/custodian"
START_URL = "https://example.awsapps.com/start"
KEK_HEX = "2B7E151628AED2A6ABF7158809CF4F3C762E7160F38B4DA56A784D9045190CFE"


@dataclass
class StandIn:
    """What the stand-in received: one dict per request."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    stand_in: StandIn

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: str, content_type: str, error_type: str = "") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:  # IMDSv2 session token
        self.stand_in.requests.append({"op": "IMDSToken", "path": self.path})
        self._send(200, "imds-session-token", "text/plain")

    def do_GET(self) -> None:  # SSO GetRoleCredentials; container and instance metadata
        parts = urlsplit(self.path)
        expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        metadata = {"AccessKeyId": "test", "SecretAccessKey": "test", "Token": SESSION_TOKEN,
                    "Expiration": expiration}  # fmt: skip
        if parts.path == "/container-credentials":
            self.stand_in.requests.append(
                {"op": "ContainerCredentials", "auth": self.headers.get("Authorization")}
            )
            self._send(200, json.dumps(metadata), "application/json")
            return
        if parts.path.startswith("/latest/meta-data/iam/security-credentials"):
            token = self.headers.get("x-aws-ec2-metadata-token")
            self.stand_in.requests.append({"op": "InstanceMetadata", "path": parts.path,
                                           "token": token})  # fmt: skip
            if parts.path.rstrip("/").endswith("security-credentials"):
                self._send(200, "KeyCustodianInstance", "text/plain")
            else:
                self._send(200, json.dumps({**metadata, "Code": "Success"}), "application/json")
            return
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.stand_in.requests.append(
            {"op": "GetRoleCredentials", "path": parts.path, **query,
             "bearer": self.headers.get("x-amz-sso_bearer_token")}
        )  # fmt: skip
        if parts.path != "/federation/credentials":
            self._send(404, "{}", "application/json")
            return
        if self.headers.get("x-amz-sso_bearer_token") != SSO_BEARER:
            body = {"message": "Session token not found or invalid"}
            self._send(401, json.dumps(body), "application/json", "UnauthorizedException")
            return
        expiration = int((time.time() + 3600) * 1000)
        body = {"roleCredentials": {"accessKeyId": "test", "secretAccessKey": "test",
                                    "sessionToken": SESSION_TOKEN, "expiration": expiration}}
        self._send(200, json.dumps(body), "application/json")  # fmt: skip

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        auth = self.headers.get("Authorization", "")
        signed_by = None
        if "Credential=" in auth:
            signed_by = auth.split("Credential=", 1)[1].split("/", 1)[0]
        self.stand_in.requests.append({"op": form.get("Action"), **form, "signed_by": signed_by})
        action = form.get("Action")
        if action not in ("AssumeRole", "AssumeRoleWithWebIdentity"):
            self._send(400, "<ErrorResponse/>", "text/xml")
            return
        if action == "AssumeRole" and form.get("RoleArn") == ROLE_ARN + "-denied":
            error = (
                "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>"
                "User is not authorized to perform: sts:AssumeRole</Message></Error>"
                "</ErrorResponse>"
            )
            self._send(403, error, "text/xml")
            return
        expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        xmlns = "https://sts.amazonaws.com/doc/2011-06-15/"
        body = (
            f'<{action}Response xmlns="{xmlns}"><{action}Result><Credentials>'
            f"<AccessKeyId>test</AccessKeyId><SecretAccessKey>test</SecretAccessKey>"
            f"<SessionToken>{SESSION_TOKEN}</SessionToken><Expiration>{expiration}</Expiration>"
            f"</Credentials><AssumedRoleUser><AssumedRoleId>AROA:apckx</AssumedRoleId>"
            f"<Arn>{ROLE_ARN}/apckx</Arn></AssumedRoleUser></{action}Result>"
            f"</{action}Response>"
        )
        self._send(200, body, "text/xml")


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    record = StandIn()
    handler = type("Handler", (_Handler,), {"stand_in": record})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    record.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield record
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    """An emulator that accepts only the stand-in's credentials, session token included."""
    running = start_test_emulator(
        EmulatorConfig(credentials=EmulatorCredentials(session_token=SESSION_TOKEN))
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def aws_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stand_in: StandIn) -> Path:
    """A HOME with ~/.aws/config (written by each test), no AWS_* variables except the
    stand-in's endpoints, and no instance metadata."""
    for var in list(os.environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var)
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / ".aws" / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / ".aws" / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSO", stand_in.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", stand_in.url)
    # botocore computes the SSO token cache's directory from HOME once, at import.
    sso_cache = str(home / ".aws" / "sso" / "cache")
    monkeypatch.setattr("botocore.credentials.SSOProvider._SSO_TOKEN_CACHE_DIR", sso_cache)
    monkeypatch.setattr("botocore.tokens.SSOTokenProvider._SSO_TOKEN_CACHE_DIR", sso_cache)
    monkeypatch.chdir(tmp_path)
    return home


def write_config(home: Path, text: str, credentials: str = "") -> None:
    (home / ".aws" / "config").write_text(text, encoding="utf-8")
    (home / ".aws" / "credentials").write_text(credentials, encoding="utf-8")


def write_sso_token(
    home: Path, cache_key: str, *, expires_in: float, access_token: str = SSO_BEARER
) -> None:
    """The token ``aws sso login`` caches: ~/.aws/sso/cache/<sha1 of the key>.json."""
    cache = home / ".aws" / "sso" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + expires_in))
    token = {"startUrl": START_URL, "region": "us-east-1", "accessToken": access_token,
             "expiresAt": expires}  # fmt: skip
    name = hashlib.sha1(cache_key.encode()).hexdigest()  # noqa: S324 (botocore's cache key)
    (cache / f"{name}.json").write_text(json.dumps(token), encoding="utf-8")


SSO_PROFILE = f"""\
[profile sso-dev]
sso_start_url = {START_URL}
sso_region = us-east-1
sso_account_id = 111122223333
sso_role_name = KeyCustodian
region = us-east-1
"""

SSO_SESSION_PROFILE = f"""\
[profile sso-new]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = KeyCustodian
region = us-east-1

[sso-session corp]
sso_start_url = {START_URL}
sso_region = us-east-1
sso_registration_scopes = sso:account:access
"""

ASSUME_ROLE_PROFILE = f"""\
[profile base]
region = us-east-1

[profile custodian]
role_arn = {ROLE_ARN}
source_profile = base
region = us-east-1

[profile custodian-mfa]
role_arn = {ROLE_ARN}
source_profile = base
mfa_serial = {MFA_SERIAL}
region = us-east-1

[profile denied]
role_arn = {ROLE_ARN}-denied
source_profile = base
region = us-east-1
"""

BASE_CREDENTIALS = "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = base-secret\n"


def list_keys_with(profile: str, emulator: RunningEmulator) -> ApcService:
    client = make_client(profile=profile, endpoint_url=emulator.url, require_credentials=True)
    apc = ApcService(client)
    assert list(apc.client.list_keys()["Keys"]) == []  # signed with the chain's credentials
    return apc


def test_sso_profile_with_a_cached_token(
    aws_home: Path, stand_in: StandIn, emulator: RunningEmulator
) -> None:
    write_config(aws_home, SSO_PROFILE)
    write_sso_token(aws_home, START_URL, expires_in=3600)
    list_keys_with("sso-dev", emulator)
    (request,) = stand_in.requests
    assert request == {
        "op": "GetRoleCredentials", "path": "/federation/credentials",
        "role_name": "KeyCustodian", "account_id": "111122223333", "bearer": SSO_BEARER,
    }  # fmt: skip


def test_sso_session_profile_with_a_cached_token(
    aws_home: Path, stand_in: StandIn, emulator: RunningEmulator
) -> None:
    write_config(aws_home, SSO_SESSION_PROFILE)
    write_sso_token(aws_home, "corp", expires_in=3600)
    list_keys_with("sso-new", emulator)
    assert [r["bearer"] for r in stand_in.requests] == [SSO_BEARER]


@pytest.mark.parametrize(("profile", "config", "key"), [
    ("sso-dev", SSO_PROFILE, START_URL), ("sso-new", SSO_SESSION_PROFILE, "corp"),
])  # fmt: skip
def test_expired_sso_token_says_run_aws_sso_login(
    profile: str, config: str, key: str, aws_home: Path, stand_in: StandIn
) -> None:
    write_config(aws_home, config)
    write_sso_token(aws_home, key, expires_in=-60)
    with pytest.raises(ConfigError) as caught:
        make_client(profile=profile, endpoint_url="http://127.0.0.1:9", require_credentials=True)
    message = str(caught.value)
    assert f"AWS profile {profile!r}" in message
    assert message.endswith(f"run aws sso login --profile {profile}")
    assert "\n" not in message
    assert stand_in.requests == []


def test_sso_token_the_portal_refuses_says_run_aws_sso_login(
    aws_home: Path, stand_in: StandIn
) -> None:
    write_config(aws_home, SSO_PROFILE)
    # Not expired, but revoked: the stand-in answers 401 UnauthorizedException.
    write_sso_token(aws_home, START_URL, expires_in=3600, access_token="revoked-token")
    with pytest.raises(ConfigError, match=r"^AWS profile 'sso-dev': .*run aws sso login "
                       r"--profile sso-dev$"):  # fmt: skip
        make_client(profile="sso-dev", endpoint_url="http://127.0.0.1:9", require_credentials=True)
    assert [r["op"] for r in stand_in.requests] == ["GetRoleCredentials"]


def test_sso_profile_never_logged_in(aws_home: Path, stand_in: StandIn) -> None:
    write_config(aws_home, SSO_PROFILE)
    with pytest.raises(ConfigError, match=r"run aws sso login --profile sso-dev$"):
        make_client(profile="sso-dev", endpoint_url="http://127.0.0.1:9", require_credentials=True)


def test_assume_role_profile(aws_home: Path, stand_in: StandIn, emulator: RunningEmulator) -> None:
    write_config(aws_home, ASSUME_ROLE_PROFILE, BASE_CREDENTIALS)
    list_keys_with("custodian", emulator)
    (request,) = stand_in.requests
    assert request["op"] == "AssumeRole"
    assert request["RoleArn"] == ROLE_ARN
    assert request["signed_by"] == "AKIDBASE"  # the source profile signed the AssumeRole
    assert "SerialNumber" not in request
    # As the AWS CLI, the role's credentials are cached in ~/.aws/cli/cache: a second client
    # (a second command) assumes nothing.
    assert list((aws_home / ".aws" / "cli" / "cache").glob("*.json"))
    list_keys_with("custodian", emulator)
    assert len(stand_in.requests) == 1


def test_assume_role_with_mfa_prompts_for_the_code(
    aws_home: Path, stand_in: StandIn, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(aws_home, ASSUME_ROLE_PROFILE, BASE_CREDENTIALS)
    prompts: list[str] = []
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr("getpass.getpass", lambda text: prompts.append(text) or "123456")
    list_keys_with("custodian-mfa", emulator)
    assert prompts == [f"Enter MFA code for {MFA_SERIAL}: "]
    (request,) = stand_in.requests
    assert (request["SerialNumber"], request["TokenCode"]) == (MFA_SERIAL, "123456")


def test_assume_role_with_mfa_and_no_terminal(
    aws_home: Path, stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(aws_home, ASSUME_ROLE_PROFILE, BASE_CREDENTIALS)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    with pytest.raises(ConfigError, match=r"'custodian-mfa' needs an MFA code .*no terminal"):
        make_client(profile="custodian-mfa", endpoint_url="http://127.0.0.1:9",
                    require_credentials=True)  # fmt: skip
    assert stand_in.requests == []


def test_assume_role_denied_is_one_line(aws_home: Path, stand_in: StandIn) -> None:
    write_config(aws_home, ASSUME_ROLE_PROFILE, BASE_CREDENTIALS)
    with pytest.raises(ConfigError) as caught:
        make_client(profile="denied", endpoint_url="http://127.0.0.1:9", require_credentials=True)
    assert str(caught.value) == (
        "AWS profile 'denied': AssumeRole failed: AccessDenied: User is not authorized to "
        "perform: sts:AssumeRole: check role_arn, the role's trust policy and the source "
        "credentials"
    )


def test_web_identity_profile(
    aws_home: Path, stand_in: StandIn, emulator: RunningEmulator, tmp_path: Path
) -> None:
    token_file = tmp_path / "token.jwt"
    token_file.write_text("header.payload.signature", encoding="utf-8")
    write_config(
        aws_home,
        f"[profile ci]\nrole_arn = {ROLE_ARN}\nweb_identity_token_file = {token_file}\n"
        "region = us-east-1\n",
    )
    list_keys_with("ci", emulator)
    (request,) = stand_in.requests
    assert request["op"] == "AssumeRoleWithWebIdentity"
    assert request["WebIdentityToken"] == "header.payload.signature"
    assert request["signed_by"] is None  # AssumeRoleWithWebIdentity is unsigned


def credential_process_profile(tmp_path: Path, script: str) -> str:
    path = tmp_path / "creds.py"
    path.write_text(script, encoding="utf-8")
    return f"[profile proc]\ncredential_process = {sys.executable} {path}\nregion = us-east-1\n"


def test_credential_process_success(
    aws_home: Path, emulator: RunningEmulator, tmp_path: Path
) -> None:
    creds = {"Version": 1, "AccessKeyId": "test", "SecretAccessKey": "test",
             "SessionToken": SESSION_TOKEN}  # fmt: skip
    write_config(aws_home, credential_process_profile(tmp_path, f"print({json.dumps(creds)!r})"))
    list_keys_with("proc", emulator)


def test_credential_process_failure_is_one_line(
    aws_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APCKX_TEST_KEK", KEK_HEX)
    script = "import sys\nsys.stderr.write('token for vault expired\\nmore\\n')\nsys.exit(3)\n"
    write_config(aws_home, credential_process_profile(tmp_path, script))
    code = main(["import-kek", "--profile", "proc", "--kek-env", "APCKX_TEST_KEK",
                 "--endpoint-url", "http://127.0.0.1:9"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "apckx: error: AWS profile 'proc': credential_process failed: token for vault expired: "
        "run that command yourself to see why, or fix credential_process in the profile\n"
    )
    assert not (tmp_path / ".apckx").exists()


def test_credential_process_that_does_not_exist(aws_home: Path, tmp_path: Path) -> None:
    write_config(
        aws_home, f"[profile proc]\ncredential_process = {tmp_path / 'nope'}\nregion = us-east-1\n"
    )
    with pytest.raises(ConfigError, match=r"^AWS profile 'proc': cannot get credentials: "):
        make_client(profile="proc", endpoint_url="http://127.0.0.1:9", require_credentials=True)


def test_no_region_says_what_works(aws_home: Path) -> None:
    write_config(aws_home, "[profile noregion]\n", "[noregion]\naws_access_key_id = a\n"
                 "aws_secret_access_key = b\n")  # fmt: skip
    os.environ["AWS_REGION"] = "us-east-1"  # botocore ignores it; the message must not advise it
    try:
        with pytest.raises(ConfigError) as caught:
            make_client(profile="noregion", endpoint_url="http://127.0.0.1:9")
    finally:
        del os.environ["AWS_REGION"]
    assert str(caught.value) == (
        "no AWS region for profile 'noregion': pass --region, set AWS_DEFAULT_REGION, or run "
        "aws configure set region REGION --profile noregion"
    )


def test_a_whole_ceremony_signs_in_with_sso(
    aws_home: Path,
    stand_in: StandIn,
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_config(aws_home, SSO_PROFILE)
    write_sso_token(aws_home, START_URL, expires_in=3600)
    monkeypatch.setenv("APCKX_TEST_KEK", KEK_HEX)
    code = main(["import-kek", "--profile", "sso-dev", "--kek-env", "APCKX_TEST_KEK",
                 "--endpoint-url", emulator.url, "--output", "json"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["key_arn"].startswith("arn:aws:payment-cryptography:")
    assert [r["op"] for r in stand_in.requests] == ["GetRoleCredentials"]


def test_container_credentials(
    aws_home: Path, stand_in: StandIn, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(aws_home, "[default]\nregion = us-east-1\n")
    uri = f"{stand_in.url}/container-credentials"
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri)
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-auth")
    list_keys_with("default", emulator)
    assert stand_in.requests == [{"op": "ContainerCredentials", "auth": "container-auth"}]


def test_instance_metadata_credentials(
    aws_home: Path, stand_in: StandIn, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(aws_home, "[default]\nregion = us-east-1\n")
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", stand_in.url)
    list_keys_with("default", emulator)
    ops = [(r["op"], r.get("token")) for r in stand_in.requests]
    assert ("IMDSToken", None) in ops
    assert ("InstanceMetadata", "imds-session-token") in ops


def test_a_call_whose_credentials_cannot_be_refreshed_names_the_profile(
    aws_home: Path, emulator: RunningEmulator
) -> None:
    """Mid-run (a migration outlives its SSO session or role): the service layer says it is
    sign-in, for which profile, not that APC refused the call."""
    import botocore.exceptions

    from apckx.errors import ServiceError

    write_config(aws_home, ASSUME_ROLE_PROFILE, BASE_CREDENTIALS)
    client = make_client(profile="base", endpoint_url=emulator.url)
    apc = ApcService(client)
    denied = {"Error": {"Code": "AccessDenied", "Message": "Not authorized to assume"}}

    def fail(error: BaseException) -> None:
        def raise_it(**_kw: object) -> None:
            raise error

        client.list_keys = raise_it  # type: ignore[method-assign]

    fail(botocore.exceptions.ClientError(denied, "AssumeRole"))
    with pytest.raises(ConfigError, match=r"^AWS profile 'base': AssumeRole failed: AccessDenied"):
        apc.list_keys()
    fail(botocore.exceptions.UnauthorizedSSOTokenError())
    with pytest.raises(ConfigError, match=r"run aws sso login --profile base$"):
        apc.list_keys()
    fail(botocore.exceptions.ClientError(denied, "ListKeys"))  # APC's own answer
    with pytest.raises(ServiceError, match=r"^ListKeys failed: AccessDenied"):
        apc.list_keys()
