"""``apckx emulator serve`` keeps its secrets out of argv, and its files owner-only
(issue 13, item 17)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from apckx._cli import main
from apckx.cli.emulator import add_arguments, build_config
from apckx.emulator.pytest_plugin import make_emulator_client
from apckx.emulator.server import EmulatorConfig, start_emulator


def parse(*options: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["serve", *options])


def secret_file(tmp_path: Path, text: str, mode: int = 0o600, name: str = "secret") -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return path


def test_secrets_from_files(tmp_path: Path) -> None:
    secret = secret_file(tmp_path, "from-a-file\n")
    token = tmp_path / "token"
    token.write_text("tok-123\nignored second line\n")
    token.chmod(0o400)
    config = build_config(parse("--secret-access-key-file", str(secret),
                                "--session-token-file", str(token)))
    assert config.credentials.secret_access_key == "from-a-file"
    assert config.credentials.session_token == "tok-123"


def test_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCKX_EMULATOR_SECRET_ACCESS_KEY", "from-env")
    monkeypatch.setenv("APCKX_EMULATOR_SESSION_TOKEN", "env-token")
    config = build_config(parse())
    assert (config.credentials.secret_access_key, config.credentials.session_token) == (
        "from-env", "env-token")
    monkeypatch.delenv("APCKX_EMULATOR_SECRET_ACCESS_KEY")
    monkeypatch.delenv("APCKX_EMULATOR_SESSION_TOKEN")
    config = build_config(parse())
    assert (config.credentials.secret_access_key, config.credentials.session_token) == (
        "test", None)


def test_a_secret_on_the_command_line_gets_a_warning(
        capsys: pytest.CaptureFixture[str]) -> None:
    config = build_config(parse("--secret-access-key", "argv-secret"))
    assert config.credentials.secret_access_key == "argv-secret"
    err = capsys.readouterr().err
    assert "visible to other users (ps)" in err
    assert "argv-secret" not in err


@pytest.mark.parametrize(("setup", "message"), [
    ("group-readable", "must be readable by its owner only"),
    ("empty", "is empty"),
    ("both", "not both"),
    ("missing", "cannot read --secret-access-key-file"),
    ("directory", "is not a regular file"),
])
def test_bad_secret_files_are_one_line_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, message: str) -> None:
    if setup == "group-readable":
        options = ["--secret-access-key-file",
                   str(secret_file(tmp_path, "s3cret-value\n", 0o640))]
    elif setup == "empty":
        options = ["--secret-access-key-file", str(secret_file(tmp_path, "\n"))]
    elif setup == "both":
        options = ["--secret-access-key", "x", "--secret-access-key-file",
                   str(secret_file(tmp_path, "y\n"))]
    elif setup == "missing":
        options = ["--secret-access-key-file", str(tmp_path / "nope")]
    else:
        options = ["--secret-access-key-file", str(tmp_path)]
    assert main(["emulator", "serve", *options]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if "warning" not in line]
    assert len(lines) == 1 and lines[0].startswith("apckx: error: ")
    assert message in lines[0]
    assert "s3cret-value" not in err


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_served_with_a_secret_file_the_secret_is_not_in_its_argv(tmp_path: Path) -> None:
    secret = secret_file(tmp_path, "only-in-a-file\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "apckx", "emulator", "serve", "--port", "0",
         "--secret-access-key-file", str(secret)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert b"only-in-a-file" not in Path(f"/proc/{process.pid}/cmdline").read_bytes()
        client = make_emulator_client(url, secret_access_key="only-in-a-file", max_attempts=1)
        assert client.list_keys()["Keys"] == []
        wrong = make_emulator_client(url, max_attempts=1)
        with pytest.raises(wrong.exceptions.ClientError, match="InvalidSignature"):
            wrong.list_keys()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0
    assert "only-in-a-file" not in stderr


def test_pre_existing_state_and_request_log_are_forced_to_0600(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    log = tmp_path / "requests.jsonl"
    with start_emulator(EmulatorConfig(state_path=state)):
        pass
    for path in (state, log):
        path.touch()
        path.chmod(0o644)
    wal = tmp_path / "state.db-wal"
    if wal.exists():
        wal.chmod(0o644)
    with start_emulator(EmulatorConfig(state_path=state, request_log_path=log)) as emulator:
        make_emulator_client(emulator.url).list_keys()
        for path in (state, log, wal):
            if path.exists():
                assert path.stat().st_mode & 0o777 == 0o600, path


def test_a_new_request_log_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        with start_emulator(EmulatorConfig(request_log_path=tmp_path / "new.jsonl")):
            pass
    finally:
        os.umask(previous)
    assert (tmp_path / "new.jsonl").stat().st_mode & 0o777 == 0o600


def test_a_request_log_that_is_a_symlink_is_refused(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("")
    link = tmp_path / "requests.jsonl"
    link.symlink_to(target)
    assert main(["emulator", "serve", "--request-log", str(link)]) == 2
    assert "is a symbolic link" in capsys.readouterr().err
