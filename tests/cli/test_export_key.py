"""``apckx export-key`` end to end: block to a file or stdout, components, over ECDH."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from apckx._cli import main
from apckx.ceremonies.export_key import read_component_file
from apckx.ceremonies.import_key import (
    WorkingKeySpec,
    compute_key_kcv,
    import_under_kek,
    resolve_key_usage,
)
from apckx.crypto.components import combine_components
from apckx.crypto.keys import generate_key
from apckx.emulator.requestlog import read_request_log
from apckx.service.apc import ApcService

KEK = bytes.fromhex("00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA9876543210")
# The factory of tests/cli/conftest.py: start(kek, *, certs_dir, journal_dir, ...).
EmulatorWithKek = Callable[..., tuple[Any, ApcService]]


# Another test's --debug leaves DEBUG handlers on apckx's loggers; stderr is asserted.
pytestmark = pytest.mark.usefixtures("quiet_apckx_loggers")


@pytest.fixture
def aws(
    aws_env: dict[str, str], tmp_path: Path, emulator_with_kek: EmulatorWithKek
) -> dict[str, Any]:
    request_log = tmp_path / "requests.jsonl"
    emulator, apc = emulator_with_kek(
        KEK,
        certs_dir=tmp_path / "certs",
        journal_dir=tmp_path / ".apckx" / "ceremonies",
        request_log_path=request_log,
    )
    key = generate_key("TDES_3KEY")
    spec = WorkingKeySpec(resolve_key_usage("P0"), "TDES_3KEY")
    import_under_kek(apc, kek_id="alias/kek", kek=KEK, key=key, spec=spec, alias="alias/zpk")
    kek_file = tmp_path / "kek.hex"
    kek_file.write_text(KEK.hex())
    kek_file.chmod(0o600)
    return {
        "apc": apc,
        "kek_file": kek_file,
        "tmp": tmp_path,
        "key": key,
        "request_log": request_log,
        "aws": ["--endpoint-url", emulator.url, "--region", "us-east-1"],
    }


def _export_under_kek(aws: dict[str, Any], *options: str) -> int:
    """``apckx export-key --key alias/zpk`` under alias/kek (its cleartext from the file)."""
    return main(
        [
            "export-key",
            "--key",
            "alias/zpk",
            "--kek-id",
            "alias/kek",
            "--kek-file",
            str(aws["kek_file"]),
            *options,
            *aws["aws"],
        ]
    )


def test_export_block_to_stdout_then_reimport(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    rc = _export_under_kek(aws, "--exportability", "N")
    out, err = capsys.readouterr()
    assert rc == 0, err
    block = out.strip()
    assert block.startswith("D") and block[5:7] == "P0" and block[11] == "N"
    kcv = compute_key_kcv(aws["key"], "TDES_3KEY")
    assert f"{kcv} (ANSI_X9_24), equal to APC's" in err
    assert aws["key"].hex().upper() not in (out + err).upper()
    rc = main(
        [
            "import-key",
            "--kek-id",
            "alias/kek",
            "--key-block",
            block,
            "--alias",
            "alias/zpk-back",
            "--kcv",
            kcv,
            *aws["aws"],
        ]
    )
    assert rc == 0
    assert aws["apc"].get_key("alias/zpk-back")["KeyCheckValue"].upper() == kcv
    assert aws["apc"].get_key("alias/zpk-back")["Exportable"] is False


def test_export_block_to_file(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    out_file = aws["tmp"] / "zpk.tr31"
    rc = _export_under_kek(aws, "--out", str(out_file), "--output", "json")
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["out"] == str(out_file) and "key_block" not in data
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    assert out_file.read_text().startswith("D")
    rc = _export_under_kek(aws, "--out", str(out_file))
    assert rc == 2 and "refusing to overwrite" in capsys.readouterr().err


def test_export_components_over_ecdh(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = aws["tmp"] / "custodians"
    rc = main(
        [
            "export-key",
            "--key",
            "alias/zpk",
            "--via",
            "ecdh",
            "--components",
            "3",
            "--out-dir",
            str(out_dir),
            "--certs-dir",
            str(aws["tmp"] / "certs"),
            *aws["aws"],
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    files = sorted(out_dir.iterdir())
    assert len(files) == 3
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert combine_components([read_component_file(f) for f in files]) == aws["key"]
    assert re.search(r"via\s+ecdh", out)
    for part in (read_component_file(f) for f in files):
        assert part.hex().upper() not in (out + err).upper()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--components", "3"], "--out-dir"),
        (["--components", "12", "--out-dir", "x"], "between 2 and 9"),
        (["--out-dir", "x"], "--out-dir is for --components"),
        (["--components", "2", "--out-dir", "x", "--out", "y"], "--out is for the block"),
        (["--mode-of-use", "Q"], "mode of use"),
        (["--optional-block", "LBX"], "ID=VALUE"),
    ],
)
def test_bad_options(
    aws: dict[str, Any], extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = _export_under_kek(aws, *extra)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1


def _operations(aws: dict[str, Any]) -> list[str]:
    """Every operation the emulator has answered so far (its request log)."""
    return [entry.operation for entry in read_request_log(aws["request_log"])]


def _journals(aws: dict[str, Any]) -> list[Path]:
    return sorted((aws["tmp"] / ".apckx" / "ceremonies").iterdir())


def _export_over_ecdh(aws: dict[str, Any], *options: str) -> int:
    """``apckx export-key --key alias/zpk --via ecdh`` with the fixture's certs."""
    certs = str(aws["tmp"] / "certs")
    return main(
        ["export-key", "--key", "alias/zpk", "--via", "ecdh", "--certs-dir", certs, *options,
         *aws["aws"]]
    )  # fmt: skip


@pytest.mark.parametrize("via", ["kek", "ecdh"])
@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("missing-dir", "does not exist"),
        ("existing-file", "already exists: refusing to overwrite it"),
        ("parent-is-a-file", "is not a directory"),
        ("components-in-non-empty-dir", "already exists and is not empty"),
        ("components-under-a-file", "is not a directory"),
        ("components-dir-is-a-file", "is not a directory"),
    ],
)
def test_bad_destination_stops_before_any_call(
    aws: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    via: str,
    destination: str,
    message: str,
) -> None:
    tmp: Path = aws["tmp"]
    existing = tmp / "zpk.tr31"
    existing.write_text("an earlier block\n")
    custodians = tmp / "custodians"
    custodians.mkdir()
    (custodians / "notes.txt").write_text("not a component\n")
    options = {
        "missing-dir": ["--out", str(tmp / "no-such-dir" / "zpk.tr31")],
        "existing-file": ["--out", str(existing)],
        "parent-is-a-file": ["--out", str(existing / "zpk.tr31")],
        "components-in-non-empty-dir": ["--components", "3", "--out-dir", str(custodians)],
        "components-under-a-file": ["--components", "2", "--out-dir", str(existing / "c")],
        "components-dir-is-a-file": ["--components", "2", "--out-dir", str(existing)],
    }[destination]
    calls_before = _operations(aws)
    journals_before = _journals(aws)
    tree_before = sorted(tmp.rglob("*"))
    export = _export_under_kek if via == "kek" else _export_over_ecdh
    rc = export(aws, *options)
    out, err = capsys.readouterr()
    assert rc == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("apckx: error: ") and message in err
    # No API call at all (so no ExportKey), no journal, nothing written or created.
    assert _operations(aws) == calls_before
    assert "ExportKey" not in _operations(aws)
    assert _journals(aws) == journals_before
    assert sorted(tmp.rglob("*")) == tree_before
    assert existing.read_text() == "an earlier block\n"
    assert [p.name for p in custodians.iterdir()] == ["notes.txt"]


def test_unwritable_destination_stops_before_any_call(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Permission is checked too (simulated: the tests may run as root, who may write
    anywhere)."""
    import os

    locked = aws["tmp"] / "locked"
    locked.mkdir()
    real_access = os.access

    def access(path: Any, mode: int, **kwargs: Any) -> bool:
        if Path(path) == locked and mode & os.W_OK:
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    for options in (
        ["--out", str(locked / "zpk.tr31")],
        ["--components", "2", "--out-dir", str(locked)],
        ["--components", "2", "--out-dir", str(locked / "new" / "deeper")],
    ):
        rc = _export_under_kek(aws, *options)
        err = capsys.readouterr().err
        assert rc == 2 and "no write permission" in err and err.count("\n") == 1, options
    assert "ExportKey" not in _operations(aws)
    assert list(locked.iterdir()) == []


def test_components_into_an_existing_empty_dir(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = aws["tmp"] / "empty"
    out_dir.mkdir()
    rc = _export_under_kek(aws, "--components", "2", "--out-dir", str(out_dir))
    assert rc == 0, capsys.readouterr().err
    files = sorted(out_dir.iterdir())
    assert [f.name for f in files] == ["component-1-of-2.txt", "component-2-of-2.txt"]
    assert combine_components([read_component_file(f) for f in files]) == aws["key"]
    assert _operations(aws).count("ExportKey") == 1
