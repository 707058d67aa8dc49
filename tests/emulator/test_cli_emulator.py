"""``apckx emulator serve``: as a subprocess (URL, serving, SIGTERM/SIGINT, kill -9 with
--state) and in-process through ``main`` for option errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from apckx._cli import main
from apckx.emulator.pytest_plugin import make_emulator_client
from apckx.emulator.requestlog import read_request_log
from apckx.emulator.server import EmulatorConfig, start_emulator

K0_AES = {
    "KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY",
    "KeyClass": "SYMMETRIC_KEY",
    "KeyAlgorithm": "AES_256",
    "KeyModesOfUse": {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True},
}


class Served:
    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url


def serve(*options: str) -> Served:
    """Start ``apckx emulator serve --port 0 OPTIONS`` and read the URL it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "apckx", "emulator", "serve", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url:
        process.kill()
        _, stderr = process.communicate(timeout=10)
        pytest.fail(f"no URL printed; stderr: {stderr}")
    return Served(process, url)


@pytest.fixture
def served_factory() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for served in started:  # never leave a process behind
        if served.process.poll() is None:
            served.process.kill()
            served.process.communicate(timeout=10)


def test_serve_prints_url_serves_and_exits_0_on_sigterm(
    served_factory: list[Served], tmp_path: Path
) -> None:
    log_path = tmp_path / "requests.jsonl"
    served = serve("--request-log", str(log_path))
    served_factory.append(served)
    assert served.url.startswith("http://127.0.0.1:")
    client = make_emulator_client(served.url)
    arn = client.create_key(KeyAttributes=K0_AES, Exportable=True)["Key"]["KeyArn"]
    assert client.get_key(KeyIdentifier=arn)["Key"]["KeyArn"] == arn
    served.process.send_signal(signal.SIGTERM)
    stdout, stderr = served.process.communicate(timeout=15)
    assert served.process.returncode == 0
    assert stdout == ""  # the URL line was all
    assert "for rehearsal and tests only" in stderr
    assert "never put production keys" in stderr
    assert "Traceback" not in stderr
    assert [entry.operation for entry in read_request_log(log_path)] == ["CreateKey", "GetKey"]


def test_sigint_also_exits_0(served_factory: list[Served]) -> None:
    served = serve()
    served_factory.append(served)
    assert make_emulator_client(served.url).list_keys()["Keys"] == []
    served.process.send_signal(signal.SIGINT)
    _, stderr = served.process.communicate(timeout=15)
    assert served.process.returncode == 0
    assert "Traceback" not in stderr


def test_options_reach_the_server(served_factory: list[Served], tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"Deny": ["payment-cryptography:Delete*"]}))
    served = serve(
        "--access-key-id", "AKIDEMU", "--secret-access-key", "s3cret",
        "--account-id", "123456789012", "--policy", str(policy),
        "--fault", "ListAliases:error:always", "--key-quota", "1",
    )  # fmt: skip
    served_factory.append(served)
    client = make_emulator_client(
        served.url, access_key_id="AKIDEMU", secret_access_key="s3cret", max_attempts=1
    )
    arn = client.create_key(KeyAttributes=K0_AES, Exportable=True)["Key"]["KeyArn"]
    assert ":123456789012:key/" in arn
    with pytest.raises(client.exceptions.ServiceQuotaExceededException):
        client.create_key(KeyAttributes=K0_AES, Exportable=True)
    with pytest.raises(client.exceptions.AccessDeniedException):
        client.delete_key(KeyIdentifier=arn)
    with pytest.raises(client.exceptions.InternalServerException):
        client.list_aliases()
    default_client = make_emulator_client(served.url, max_attempts=1)
    with pytest.raises(default_client.exceptions.ClientError, match="Unrecognized"):
        default_client.list_keys()
    served.process.send_signal(signal.SIGTERM)
    served.process.communicate(timeout=15)
    assert served.process.returncode == 0


def test_state_survives_kill_9(served_factory: list[Served], tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    served = serve("--state", str(state))
    served_factory.append(served)
    client = make_emulator_client(served.url)
    arns = {
        client.create_key(KeyAttributes=K0_AES, Exportable=True)["Key"]["KeyArn"] for _ in range(5)
    }
    client.create_alias(AliasName="alias/survivor", KeyArn=sorted(arns)[0])
    served.process.send_signal(signal.SIGKILL)
    served.process.communicate(timeout=15)
    assert (tmp_path / "state.db.key").stat().st_mode & 0o777 == 0o600
    with start_emulator(EmulatorConfig(state_path=state)) as restarted:
        again = make_emulator_client(restarted.url)
        assert {key["KeyArn"] for key in again.list_keys()["Keys"]} == arns
        assert again.get_alias(AliasName="alias/survivor")["Alias"]["KeyArn"] == min(arns)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--fault", "CreateKey:explode:1"], "KIND must be one of throttle, error, reset"),
        (["--fault", "CreateKey"], "must be OPERATION:KIND:COUNT"),
        (["--fault", "CreatKey:error:1"], "CreatKey is not an operation the emulator serves"),
        (["--rate-limit", "fast"], "--rate-limit must be a number"),
        (["--rate-limit", "0"], "--rate-limit must be greater than 0"),
        (["--rate-limit", "-3"], "--rate-limit must be at least 0"),
        (["--latency-ms", "-1"], "--latency-ms must be at least 0"),
        (["--key-quota", "1.5"], "--key-quota must be a whole number"),
        (["--port", "70000"], "--port must be 0..65535"),
        (["--host", "0.0.0.0"], "needs --allow-remote"),  # noqa: S104 (refused on purpose)
        (["--account-id", "12"], "--account-id must be 12 digits"),
        (["--policy", "/nonexistent/policy.json"], "cannot read policy file"),
    ],
)
def test_bad_options_are_one_line_errors_exit_2(
    options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["emulator", "serve", *options]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("apckx: error: ")
    assert message in lines[0]


def test_too_open_master_key_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.db"
    key_file = tmp_path / "state.db.key"
    key_file.write_bytes(os.urandom(32))
    key_file.chmod(0o644)
    assert main(["emulator", "serve", "--state", str(state)]) == 2
    assert "must be 0600" in capsys.readouterr().err


def test_serve_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator"]) == 2
    assert main(["emulator", "serve", "--help"]) == 0
    help_text = capsys.readouterr().out
    for option in ("--rate-limit", "--fault", "--state", "--policy", "--allow-remote"):
        assert option in help_text
