"""``apckx migrate`` end to end: bad manifests, progress, and 200 keys paced at 20 TPS,
killed half-way and resumed, each key imported exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from apckx._cli import main
from apckx.ceremonies.import_key import (
    WorkingKeySpec,
    build_working_key_block,
    compute_key_kcv,
    resolve_key_usage,
)
from apckx.crypto.keys import generate_key
from apckx.emulator.requestlog import read_request_log
from apckx.service.apc import ApcService

KEK = bytes.fromhex("00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA9876543210")
# The factory of tests/cli/conftest.py: start(kek, *, certs_dir, journal_dir, ...).
EmulatorWithKek = Callable[..., tuple[Any, ApcService]]
StartWithKek = Callable[..., tuple[Any, ApcService]]
RATE = 20


# Another test's --debug leaves DEBUG handlers on apckx's loggers; stderr is asserted.
pytestmark = pytest.mark.usefixtures("quiet_apckx_loggers")


@pytest.fixture
def start_with_kek(tmp_path: Path, emulator_with_kek: EmulatorWithKek) -> StartWithKek:
    """``start(**config)``: an emulator holding alias/kek, a client with 5 attempts per call."""

    def start(**config: Any) -> tuple[Any, ApcService]:
        return emulator_with_kek(
            KEK,
            certs_dir=tmp_path / "certs",
            journal_dir=tmp_path / "kek-journal",
            max_attempts=5,
            **config,
        )

    return start


def _migrate_args(manifest: Path, endpoint_url: str, *options: str) -> list[str]:
    """``apckx migrate MANIFEST --kek-id alias/kek [options]`` against ``endpoint_url``."""
    return [
        "migrate",
        str(manifest),
        "--kek-id",
        "alias/kek",
        *options,
        "--endpoint-url",
        endpoint_url,
        "--region",
        "us-east-1",
    ]


def _write_manifest(path: Path, count: int) -> dict[str, str]:
    """``count`` key_block rows (every other one with a kcv column); alias -> expected KCV."""
    expected: dict[str, str] = {}
    lines = ["alias,key_block,tags,kcv"]
    spec = WorkingKeySpec(resolve_key_usage("D0"), "AES_128")
    for i in range(count):
        key = generate_key("AES_128")
        kcv = compute_key_kcv(key, "AES_128")
        alias = f"alias/migrated/key-{i:03d}"
        expected[alias] = kcv
        block = build_working_key_block(KEK, "AES_256", key, spec)
        lines.append(f"{alias},{block},batch=1;n={i},{kcv if i % 2 else ''}")
    path.write_text("\n".join(lines) + "\n")
    return expected


def _break_mac_of_second_row(path: Path) -> None:
    """Change the last MAC characters of the manifest's second key block to 0000."""
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(lines[2].split(",")[1][-4:], "0000")
    path.write_text("\n".join(lines) + "\n")


def _d0_keys(apc: ApcService) -> list[dict[str, Any]]:
    return [
        k
        for k in apc.list_keys()
        if k["KeyAttributes"]["KeyUsage"] == "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY"
    ]


def _calls_per_second(entries: list[Any]) -> float:
    span = max(e.end for e in entries) - min(e.start for e in entries)
    return len(entries) / span


def test_bad_manifest_reports_every_line_before_any_call(
    aws_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "alias,key_block,key_hex,key_usage,key_algorithm\n"
        "alias/a,,00112233445566778899AABBCCDDEEFG,D0,AES_128\n"
        "alias/a,,00112233445566778899AABBCCDDEEFF,D0,AES_128\n"
        "alias/b,,00112233445566778899AABBCCDDEEFF,ZZ,AES_128\n"
        "alias/c,\n"
    )
    # An endpoint nobody listens on: any API call would fail differently.
    rc = main(_migrate_args(manifest, "http://127.0.0.1:9"))
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.splitlines()
    assert lines[0].startswith("apckx: manifest.csv:2: key_hex is not hex")
    assert lines[1].startswith("apckx: manifest.csv:4: column key_usage: key usage ZZ")
    assert lines[2].startswith("apckx: manifest.csv:5: needs key_block")
    assert lines[-1].startswith("apckx: error: manifest.csv:2:")
    assert "00112233445566778899AABBCCDDEEF" not in err


def test_small_migration_progress_and_json(
    aws_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    start_with_kek: StartWithKek,
) -> None:
    emulator, _apc = start_with_kek()
    try:
        manifest = tmp_path / "keys.csv"
        expected = _write_manifest(manifest, 6)
        common = _migrate_args(manifest, emulator.url, "--rate", "100")
        assert main(common) == 0
        out, err = capsys.readouterr()
        assert "apckx: migrate: 6/6 keys: 6 done, 0 failed" in err
        for alias, kcv in expected.items():
            assert alias in out and kcv in out
        assert "6 keys: 6 imported, 0 already there, 0 failed" in out
        assert main([*common, "--output", "json"]) == 0
        out, err = capsys.readouterr()
        assert err == ""  # no progress with --output json
        data = json.loads(out)
        assert (data["total"], data["skipped"], data["failed"]) == (6, 6, 0)
        assert {k["alias"]: k["kcv"] for k in data["keys"]} == expected
    finally:
        emulator.stop()


def test_failed_key_gives_exit_code_1(
    aws_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    start_with_kek: StartWithKek,
) -> None:
    emulator, apc = start_with_kek()
    try:
        manifest = tmp_path / "keys.csv"
        _write_manifest(manifest, 3)
        _break_mac_of_second_row(manifest)
        rc = main(_migrate_args(manifest, emulator.url, "--rate", "100"))
        out, err = capsys.readouterr()
        assert rc == 1
        assert "failed" in out and "ValidationException" in out
        assert "1 key(s) failed" in err
        assert len(_d0_keys(apc)) == 2
    finally:
        emulator.stop()


def test_failed_key_with_json_output_says_so_on_stderr(
    aws_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    start_with_kek: StartWithKek,
) -> None:
    emulator, apc = start_with_kek()
    try:
        manifest = tmp_path / "keys.csv"
        expected = _write_manifest(manifest, 3)
        _break_mac_of_second_row(manifest)
        args = _migrate_args(manifest, emulator.url, "--rate", "100", "--output", "json")
        rc = main(args)
        out, err = capsys.readouterr()
        assert rc == 1
        data = json.loads(out)  # stdout is the JSON record alone
        assert (data["total"], data["imported"], data["failed"]) == (3, 2, 1)
        failed = [k for k in data["keys"] if k["status"] == "failed"]
        assert [k["alias"] for k in failed] == ["alias/migrated/key-001"]
        assert err.splitlines() == [
            "apckx: 1 key(s) failed; fix them and re-run the same command: keys already "
            "imported are skipped"
        ]
        assert len(_d0_keys(apc)) == 2
        # A clean re-run (the failed row dropped) succeeds with nothing on stderr.
        lines = manifest.read_text().splitlines()
        manifest.write_text("\n".join(lines[:2] + lines[3:]) + "\n")
        assert main(args) == 0
        out, err = capsys.readouterr()
        data = json.loads(out)
        assert err == "" and (data["total"], data["skipped"], data["failed"]) == (2, 2, 0)
        assert {k["alias"] for k in data["keys"]} == set(expected) - {"alias/migrated/key-001"}
    finally:
        emulator.stop()


def test_200_keys_at_20_tps_killed_and_resumed(
    aws_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    start_with_kek: StartWithKek,
) -> None:
    log_path = tmp_path / "requests.jsonl"
    emulator, apc = start_with_kek(rate_limit=RATE, request_log_path=log_path)
    try:
        manifest = tmp_path / "hsm-export.csv"
        expected = _write_manifest(manifest, 200)
        journal_dir = tmp_path / "journal"
        args = _migrate_args(
            manifest, emulator.url, "--rate", str(RATE), "--journal-dir", str(journal_dir)
        )
        first_started = time.time()  # measure the migration's calls only
        first = subprocess.Popen(
            [sys.executable, "-m", "apckx", *args],
            env={**os.environ, **aws_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        aliased = 0
        while time.monotonic() < deadline and first.poll() is None:
            logs = list(journal_dir.glob("*.keys.jsonl"))
            if logs:
                aliased = logs[0].read_text().count('"alias_created"')
                if aliased >= 100:
                    break
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)  # no clean-up of any kind: a crash
        _, first_err = first.communicate(timeout=10)
        assert aliased >= 100, first_err
        killed_at = time.time()
        assert "apckx: migrate: " in first_err  # plain progress lines (stderr is no TTY)
        first_run = [e for e in read_request_log(log_path) if e.start >= first_started]
        assert first_run and all(e.start <= killed_at for e in first_run)
        keys_after_kill = len(_d0_keys(apc))
        assert 100 <= keys_after_kill < 200

        second_started = time.time()
        # The resumed run in its own process too (as a user runs it; and the in-process
        # emulator then doesn't share a GIL with the client being measured).
        second = subprocess.run(
            [sys.executable, "-m", "apckx", *args, "--output", "json"],
            env={**os.environ, **aws_env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert second.returncode == 0, second.stderr
        result = json.loads(second.stdout)
        second_run = [e for e in read_request_log(log_path) if e.start >= second_started]
        assert result["failed"] == 0 and result["total"] == 200
        assert result["imported"] + result["skipped"] == 200
        assert result["skipped"] >= 100

        # Every key exactly once, each alias on a key with the expected KCV.
        keys = _d0_keys(apc)
        assert len(keys) == 200
        by_arn = {k["KeyArn"]: k["KeyCheckValue"].upper() for k in keys}
        aliases = {a["AliasName"]: a.get("KeyArn") for a in apc.list_aliases()}
        assert {by_arn[aliases[alias]] for alias in expected} == set(expected.values())
        assert all(by_arn[aliases[alias]] == kcv for alias, kcv in expected.items())

        # Throughput: both runs at >= 90 % of the 20 TPS limit, measured by the emulator.
        throttled = [e for e in first_run + second_run if e.error == "ThrottlingException"]
        print(  # shown with pytest -s: the figures for the report
            f"\nfirst run: {len(first_run)} calls at {_calls_per_second(first_run):.2f}/s; "
            f"second run: {len(second_run)} calls at {_calls_per_second(second_run):.2f}/s; "
            f"throttled {len(throttled)}; keys after kill {keys_after_kill}"
        )
        assert len(throttled) <= 5
        assert _calls_per_second(first_run) >= 0.9 * RATE
        assert _calls_per_second(second_run) >= 0.9 * RATE
    finally:
        emulator.stop()


def test_progress_bar_on_a_tty() -> None:
    import io

    from apckx.ceremonies.migrate import Progress
    from apckx.cli.migrate import ProgressReporter

    stream = io.StringIO()
    reporter = ProgressReporter(stream, tty=True)
    reporter(Progress(total=4, done=1, failed=1, elapsed=2.0))
    reporter(Progress(total=4, done=3, failed=1, elapsed=4.0))
    text = stream.getvalue()
    assert text.startswith("\r[###############...............] 2/4 keys: 1 done, 1 failed")
    assert "ETA 2 s" in text
    assert text.endswith("4/4 keys: 3 done, 1 failed, 1.0 keys/s, ETA 0 s\x1b[K\n")


def test_plain_progress_lines_are_throttled() -> None:
    import io

    from apckx.ceremonies.migrate import Progress
    from apckx.cli.migrate import ProgressReporter

    stream = io.StringIO()
    reporter = ProgressReporter(stream, tty=False, interval=3600)
    for done in range(1, 11):
        reporter(Progress(total=10, done=done, failed=0, elapsed=done * 0.5))
    lines = stream.getvalue().splitlines()
    assert lines == [
        "apckx: migrate: 1/10 keys: 1 done, 0 failed, 2.0 keys/s, ETA 4 s",
        "apckx: migrate: 10/10 keys: 10 done, 0 failed, 2.0 keys/s, ETA 0 s",
    ]
