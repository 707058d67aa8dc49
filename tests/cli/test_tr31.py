"""apckx tr31 inspect: every header field decoded, from the argument, a file or stdin."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from apckx._cli import main
from apckx.crypto.tr31 import build_header, wrap_key_block

KBPK = bytes.fromhex("89E88CF7931444F334BD7547FC3F380C")
KEY = bytes(range(1, 33))


# Another test's --debug leaves DEBUG handlers on apckx's loggers; stderr is asserted.
pytestmark = pytest.mark.usefixtures("quiet_apckx_loggers")


def _hmac_block() -> str:
    header = build_header(
        key_usage="M7",
        key_algorithm="HMAC_SHA256",
        kbpk_algorithm="AES_128",
        modes_of_use="C",
        exportability="N",
        key_version="12",
    )
    return wrap_key_block(KBPK, header, KEY)


def test_inspect_text(capsys: pytest.CaptureFixture[str]) -> None:
    block = _hmac_block()
    assert main(["tr31", "inspect", block]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "Version          D   AES key derivation binding" in out
    assert "M7  TR31_M7_HMAC_KEY" in out
    assert "H   HMAC_SHA256" in out
    assert "C   Generate, Verify" in out
    assert "Key version      12" in out
    assert "N   NON_EXPORTABLE" in out
    assert "HM             21" in out and "PB " in out
    assert block[40:] not in out  # the encrypted body isn't echoed


def test_inspect_json_from_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "block.txt"
    path.write_text(_hmac_block() + "\n")
    assert main(["tr31", "inspect", f"@{path}", "--output", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["version_id"] == "D"
    assert info["key_usage_name"] == "TR31_M7_HMAC_KEY"
    assert info["algorithm_name"] == "HMAC_SHA256"
    assert info["key_modes_of_use"] == ["Generate", "Verify"]
    assert info["exportable"] is False
    assert [b["id"] for b in info["optional_blocks"]] == ["HM", "PB"]
    assert info["apc_accepts_usage"] is True


def test_inspect_apc_vector_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A version B TDES block: the KEK export example of APC's user guide has this header.
    header = build_header(key_usage="K0", key_algorithm="TDES_2KEY", kbpk_algorithm="TDES_3KEY")
    block = wrap_key_block(
        bytes.fromhex("0123456789ABCDEFFEDCBA98765432101122334455667788"),
        header,
        bytes.fromhex("89ABCDEF0123456776543210FEDCBA98"),
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(block))
    assert main(["tr31", "inspect", "-", "--output", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["version_id"], info["key_usage"], info["algorithm"]) == ("B", "K0", "T")
    assert info["key_modes_of_use"] == ["Encrypt", "Decrypt", "Wrap", "Unwrap"]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("D0112K0AB00E0000", "length"),
        ("X0016K0AB00E0000", "version"),
        ("@/nonexistent/block", "no such file"),
        ("", "no key block"),
    ],
)
def test_inspect_bad_input_is_one_line(
    argument: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tr31", "inspect", argument]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("apckx: error: ") and err.count("\n") == 1
    assert message in err.lower()


def _vectors() -> list[dict[str, Any]]:
    path = Path(__file__).resolve().parents[1] / "vectors" / "tr31_wrap_unwrap.json"
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: str(v["id"]))
def test_inspect_every_published_vector(
    vector: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Versions A-D, with optional blocks: every header field as the vector's header has it."""
    assert main(["tr31", "inspect", vector["key_block"], "--output", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    header = vector["header"]
    assert info["header"] == header
    assert info["length"] == len(vector["key_block"])
    assert (info["version_id"], info["key_usage"], info["algorithm"]) == (
        header[0],
        header[5:7],
        header[7],
    )
    assert (info["mode_of_use"], info["key_version"], info["exportability"]) == (
        header[8],
        header[9:11],
        header[11],
    )
    assert len(info["optional_blocks"]) == int(header[12:14])
