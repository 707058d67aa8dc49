"""No tracebacks, ever (issue 12): a closed stdout (``| head``) on every command that prints
ends quietly, as pip does; anything unexpected is one line on stderr, exit 1."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from apckx import _cli
from apckx._cli import COMMANDS, main
from apckx.emulator.pytest_plugin import start_test_emulator
from apckx.emulator.server import RunningEmulator

pytestmark = pytest.mark.usefixtures("quiet_apckx_loggers")

KEK_HEX = "2B7E151628AED2A6ABF7158809CF4F3C762E7160F38B4DA56A784D9045190CFE"
WORK_HEX = "00112233445566778899AABBCCDDEEFF"
HELP_COMMANDS = [[], *([name] for name in COMMANDS)]


def run_into_closed_pipe(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run ``python -m apckx ARGV`` with stdout a pipe whose reading end is already closed
    (what ``| head`` leaves once head has exited): (exit code, stderr)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "apckx", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=cwd,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


@pytest.fixture
def child_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
        APCKX_TEST_KEK=KEK_HEX,
        APCKX_TEST_WORK=WORK_HEX,
    )
    return env


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    running = start_test_emulator()
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=lambda c: " ".join(c) or "apckx")
def test_help_into_a_closed_pipe_is_quiet(
    command: list[str], child_env: dict[str, str], tmp_path: Path
) -> None:
    code, err = run_into_closed_pipe([*command, "--help"], child_env, tmp_path)
    # argparse itself ignores a failed write of its help (exit 0); either way, not a word.
    assert err == ""
    assert code in (0, 1)


def test_version_into_a_closed_pipe_is_quiet(child_env: dict[str, str], tmp_path: Path) -> None:
    assert run_into_closed_pipe(["--version"], child_env, tmp_path) == (1, "")


@pytest.mark.parametrize(
    "argv",
    [
        ["tr31", "inspect", "D0112K0AB00E0000" + "0" * 96],
        ["tr31", "inspect", "D0112K0AB00E0000" + "0" * 96, "--output", "json"],
        ["kcv", "--key-env", "APCKX_TEST_KEK", "--key-algorithm", "AES_256"],
        ["demo"],
        ["demo", "--output", "json"],
        ["ceremonies"],
        ["ceremonies", "--output", "json"],
    ],
    ids=lambda argv: " ".join(argv[:2] + argv[-1:]),
)
def test_offline_command_output_into_a_closed_pipe_is_quiet(
    argv: list[str], child_env: dict[str, str], tmp_path: Path
) -> None:
    code, err = run_into_closed_pipe(argv, child_env, tmp_path)
    assert code == 1
    assert "Traceback" not in err
    assert "BrokenPipe" not in err
    if argv[0] != "demo":  # demo's progress lines go to stderr, as always
        assert err == ""


@pytest.mark.parametrize("output", ["text", "json"])
def test_ceremony_output_into_a_closed_pipe_is_quiet(
    output: str, emulator: RunningEmulator, child_env: dict[str, str], tmp_path: Path
) -> None:
    region = f"eu-west-{1 if output == 'text' else 2}"
    common = ["--endpoint-url", emulator.url, "--region", region, "--output", output]
    code, err = run_into_closed_pipe(
        ["import-kek", "--kek-env", "APCKX_TEST_KEK", *common], child_env, tmp_path
    )
    assert code == 1
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert (tmp_path / ".apckx" / "ceremonies").is_dir()  # the ceremony itself ran
    kek = ["--kek-id", "alias/import-kek-ecdh-result", "--kek-env", "APCKX_TEST_KEK"]
    manifest = tmp_path / "keys.csv"
    manifest.write_text(f"alias,key_hex,key_usage,key_algorithm\nalias/m-{output},{WORK_HEX},"
                        "D0,AES_128\n")  # fmt: skip
    # Every other command that prints, on the KEK just imported: each does its work, then
    # finds stdout closed.
    for argv in (
        ["import-key", *kek, "--key-env", "APCKX_TEST_WORK", "--key-usage", "D0",
         "--key-algorithm", "AES_128", "--alias", "alias/work"],
        ["export-key", "--key", "alias/work", *kek],
        ["check", "alias/work", "--key-env", "APCKX_TEST_WORK"],
        ["migrate", str(manifest), *kek, "--no-progress"],
        ["cleanup", "--alias", "alias/import-kek-ecdh-result", "--dry-run"],
    ):
        code, err = run_into_closed_pipe([*argv, *common], child_env, tmp_path)
        assert "Traceback" not in err and "BrokenPipe" not in err, argv[0]
        assert "apckx: error" not in err, err  # it worked: only stdout was gone
        assert code == 1, (argv[0], err)


def _fail_with(exc: BaseException, monkeypatch: pytest.MonkeyPatch) -> None:
    class Failing:
        @staticmethod
        def add_arguments(parser: object) -> None:
            pass

        @staticmethod
        def run(args: object) -> int:
            raise exc

    monkeypatch.setattr(_cli, "_load", lambda name: Failing)


def test_an_unexpected_exception_is_one_line_without_its_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fail_with(KeyError("00112233445566778899AABBCCDDEEFF"), monkeypatch)
    code = main(["kcv"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert re.match(r"apckx: error: internal error KeyError at apckx/\S+\.py:\d+: a bug", err)
    assert "00112233" not in err  # the message could be anything, a key included


def test_an_escaped_botocore_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import botocore.exceptions

    _fail_with(botocore.exceptions.ReadTimeoutError(endpoint_url="https://x\nsecond"), monkeypatch)
    code = main(["kcv"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        'apckx: error: AWS SDK error ReadTimeoutError: Read timeout on endpoint URL: "https://x'
        " (run with --debug for the calls)\n"
    )


def test_an_os_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fail_with(PermissionError(13, "Permission denied", "/var/x.json"), monkeypatch)
    assert main(["kcv"]) == 1
    assert capsys.readouterr().err == "apckx: error: Permission denied: /var/x.json\n"


def test_version_names_the_libraries(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib import metadata

    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    for name in ("botocore", "boto3", "cryptography"):
        assert f"{name} {metadata.version(name)}" in out
    assert out.startswith(f"apckx {_cli.__version__} (")
    assert f"Python {sys.version.split()[0]}" in out
