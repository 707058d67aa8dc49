"""The AWS CLI against the emulator: ``aws payment-cryptography ... --endpoint-url``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apckx.emulator.server import EmulatorConfig, RunningEmulator, start_emulator


def find_aws() -> str | None:
    beside = Path(sys.executable).parent / "aws"  # the venv's own awscli, if installed
    return str(beside) if beside.exists() else shutil.which("aws")


AWS = find_aws()
TEST_SECRET = "test"
pytestmark = [
    pytest.mark.awscli,
    pytest.mark.skipif(AWS is None, reason="the AWS CLI (aws) is not installed"),
]


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with start_emulator(EmulatorConfig()) as running:
        yield running


def aws(
    emulator: RunningEmulator, tmp_path: Path, *args: str, secret: str = TEST_SECRET
) -> subprocess.CompletedProcess[str]:
    """Run ``aws payment-cryptography ARGS`` with only the environment it needs."""
    assert AWS is not None
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_MAX_ATTEMPTS": "1",
    }
    return subprocess.run(
        [AWS, "payment-cryptography", *args, "--endpoint-url", emulator.url, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def create_kek(emulator: RunningEmulator, tmp_path: Path) -> dict[str, Any]:
    """``aws payment-cryptography create-key`` of an exportable AES-256 K0; its ``Key``."""
    created = aws(
        emulator, tmp_path, "create-key", "--exportable",
        "--key-attributes",
        "KeyAlgorithm=AES_256,KeyUsage=TR31_K0_KEY_ENCRYPTION_KEY,KeyClass=SYMMETRIC_KEY,"
        "KeyModesOfUse={Encrypt=true,Decrypt=true,Wrap=true,Unwrap=true}",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    key: dict[str, Any] = json.loads(created.stdout)["Key"]
    return key


def test_create_key_then_alias_with_the_aws_cli(emulator: RunningEmulator, tmp_path: Path) -> None:
    key = create_kek(emulator, tmp_path)
    assert key["KeyArn"].startswith("arn:aws:payment-cryptography:us-east-1:111122223333:key/")
    assert key["KeyState"] == "CREATE_COMPLETE"
    aliased = aws(
        emulator, tmp_path, "create-alias", "--alias-name", "alias/cli", "--key-arn", key["KeyArn"]
    )
    assert aliased.returncode == 0, aliased.stderr
    fetched = aws(emulator, tmp_path, "get-key", "--key-identifier", "alias/cli")
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout)["Key"]["KeyArn"] == key["KeyArn"]


def test_aws_cli_shows_service_errors(emulator: RunningEmulator, tmp_path: Path) -> None:
    missing = aws(emulator, tmp_path, "get-alias", "--alias-name", "alias/absent")
    assert missing.returncode != 0
    assert "ResourceNotFoundException" in missing.stderr
    refused = aws(emulator, tmp_path, "list-keys", secret="wrong")
    assert refused.returncode != 0
    assert "InvalidSignatureException" in refused.stderr


def test_resource_policy_with_the_aws_cli(emulator: RunningEmulator, tmp_path: Path) -> None:
    arn = create_kek(emulator, tmp_path)["KeyArn"]

    def statement(principal: object) -> str:
        return json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": principal, "Resource": "*",
            "Action": "payment-cryptography:GetKey"}]})  # fmt: skip

    partner = statement({"AWS": "arn:aws:iam::444455556666:root"})
    put = aws(emulator, tmp_path, "put-resource-policy", "--resource-arn", arn,
              "--policy", partner)  # fmt: skip
    assert put.returncode == 0, put.stderr
    got = aws(emulator, tmp_path, "get-resource-policy", "--resource-arn", arn)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == {"ResourceArn": arn, "Policy": partner}
    public = aws(emulator, tmp_path, "put-resource-policy", "--resource-arn", arn,
                 "--policy", statement("*"))  # fmt: skip
    assert public.returncode != 0
    assert "(PublicPolicyException)" in public.stderr
    deleted = aws(emulator, tmp_path, "delete-resource-policy", "--resource-arn", arn)
    assert deleted.returncode == 0, deleted.stderr
    gone = aws(emulator, tmp_path, "get-resource-policy", "--resource-arn", arn)
    assert gone.returncode != 0 and "(ResourceNotFoundException)" in gone.stderr
