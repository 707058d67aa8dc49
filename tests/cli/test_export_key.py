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
    emulator, apc = emulator_with_kek(
        KEK, certs_dir=tmp_path / "certs", journal_dir=tmp_path / ".apckx" / "ceremonies"
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
