"""STS GetCallerIdentity on the emulator's endpoint: boto3 and the AWS CLI get the account."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from apckx.emulator.pytest_plugin import make_emulator_client, post_raw
from apckx.emulator.server import EmulatorConfig, start_emulator

from .conftest import DataPlane

ACCOUNT = "444455556666"


def test_boto3_gets_the_configured_account() -> None:
    with start_emulator(EmulatorConfig(account_id=ACCOUNT)) as emulator:
        sts = make_emulator_client(emulator.url, service="sts")
        identity = sts.get_caller_identity()
        assert identity["Account"] == ACCOUNT
        assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/test"
        assert identity["UserId"] == "test"
        metadata = identity["ResponseMetadata"]
        assert metadata["HTTPHeaders"]["x-amzn-requestid"] == metadata["RequestId"]


def test_wrong_secret_and_other_actions_are_query_errors(data_plane: DataPlane) -> None:
    wrong = make_emulator_client(data_plane.url, service="sts", secret_access_key="nope",
                                 max_attempts=1)
    with pytest.raises(ClientError) as caught:
        wrong.get_caller_identity()
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    body = b"Action=AssumeRole&Version=2011-06-15"
    headers, _ = _form_signed(data_plane.url, body)
    answer = post_raw(data_plane.url, headers, body)
    assert answer.status == 400
    assert b"<Code>InvalidAction</Code>" in answer.body
    assert answer.headers["Content-Type"] == "text/xml"


def _form_signed(url: str, body: bytes) -> tuple[dict[str, str], bytes]:
    request = AWSRequest(method="POST", url=url + "/", data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    request.context["timestamp"] = datetime.datetime.now(datetime.UTC).strftime(
        "%Y%m%dT%H%M%SZ")
    SigV4Auth(Credentials("test", "test"), "sts", "us-east-1").add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}, body


AWS = str(Path(sys.executable).parent / "aws") if (
    Path(sys.executable).parent / "aws").exists() else shutil.which("aws")


def _aws(tmp_path: Path, *args: str, endpoint: str | None = None) -> Any:
    assert AWS is not None
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",  # the emulator's
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_MAX_ATTEMPTS": "1",
    }
    if endpoint is not None:
        env["AWS_ENDPOINT_URL"] = endpoint
    done = subprocess.run([AWS, *args, "--output", "json"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.awscli
@pytest.mark.skipif(AWS is None, reason="the AWS CLI (aws) is not installed")
def test_aws_cli_get_caller_identity(tmp_path: Path) -> None:
    with start_emulator(EmulatorConfig(account_id=ACCOUNT)) as emulator:
        identity = _aws(tmp_path, "sts", "get-caller-identity", "--endpoint-url", emulator.url)
        assert identity["Account"] == ACCOUNT


@pytest.mark.awscli
@pytest.mark.skipif(AWS is None, reason="the AWS CLI (aws) is not installed")
def test_one_aws_endpoint_url_serves_sts_and_both_planes(tmp_path: Path) -> None:
    with start_emulator(EmulatorConfig(account_id=ACCOUNT)) as emulator:
        url = emulator.url
        assert _aws(tmp_path, "sts", "get-caller-identity", endpoint=url)["Account"] == ACCOUNT
        key = _aws(tmp_path, "payment-cryptography", "create-key", "--exportable",
                   "--key-attributes", json.dumps({
                       "KeyUsage": "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY",
                       "KeyClass": "SYMMETRIC_KEY", "KeyAlgorithm": "AES_128",
                       "KeyModesOfUse": {"Encrypt": True, "Decrypt": True, "Wrap": True,
                                         "Unwrap": True}}), endpoint=url)["Key"]
        encrypted = _aws(tmp_path, "payment-cryptography-data", "encrypt-data",
                         "--key-identifier", key["KeyArn"], "--plain-text", "31" * 16,
                         "--encryption-attributes", "Symmetric={Mode=ECB}", endpoint=url)
        assert encrypted["KeyCheckValue"] == key["KeyCheckValue"]
        decrypted = _aws(tmp_path, "payment-cryptography-data", "decrypt-data",
                         "--key-identifier", key["KeyArn"], "--cipher-text",
                         encrypted["CipherText"], "--decryption-attributes",
                         "Symmetric={Mode=ECB}", endpoint=url)
        assert decrypted["PlainText"] == "31" * 16
