"""``apckx tr34 inspect``: a block's public facts in text and JSON, never its key."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from apckx._cli import main
from apckx.crypto import certs, tr34

KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


@pytest.fixture(scope="module")
def blocks() -> dict[str, bytes]:
    ca_key, ca = certs.new_rsa_sender_ca("RSA_2048")
    signing_key, signing_cert = certs.new_rsa_signing_leaf(ca_key, ca)
    _, krd = certs.new_rsa_wrapping_leaf(ca_key, ca, "RSA_2048")
    header = tr34.build_tr34_header(key_usage="K0", key_algorithm="TDES_2KEY")
    common = {"signing_key": signing_key, "signing_certificate": signing_cert,
              "wrapping_certificate": krd}  # fmt: skip
    return {
        "two": tr34.build_key_block(KEY, header, nonce=bytes.fromhex("0011223344556677"), **common),
        "one": tr34.build_key_block(
            KEY, header, signing_time=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), **common
        ),
    }


def test_inspect_two_pass_text(
    blocks: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "block.hex"
    path.write_text(tr34.key_block_to_hex(blocks["two"]) + "\n")
    assert main(["tr34", "inspect", f"@{path}"]) == 0
    out = capsys.readouterr().out
    assert "2-pass" in out and "0011223344556677" in out and "D9999K0TB00E0000" in out
    assert "TDES_CBC" in out and "TR31_K0_KEY_ENCRYPTION_KEY" in out
    assert KEY.hex().upper() not in out.upper()


def test_inspect_one_pass_json_from_der_file(
    blocks: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "block.der"
    path.write_bytes(blocks["one"])
    assert main(["tr34", "inspect", f"@{path}", "--output", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    parsed = tr34.parse_key_block(blocks["one"])
    assert data["passes"] == 1 and data["random_nonce"] is None
    assert data["signing_time"].startswith("2026-01-02T03:04:05")
    assert data["recipient"]["serial_number"] == f"{parsed.recipient.serial_number:X}"
    assert data["header_decoded"]["key_usage"] == "K0"
    assert KEY.hex().upper() not in json.dumps(data).upper()


@pytest.mark.parametrize(
    ("block", "message"),
    [("3082", "not a TR-34 block"), ("30G1", "upper-case hex"), ("@/nonexistent/x", "x")],
)
def test_inspect_bad_input_one_line(
    block: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tr34", "inspect", block]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_inspect_tampered_block_refused(
    blocks: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    tampered = tr34.key_block_to_hex(blocks["two"][:-1])
    assert main(["tr34", "inspect", tampered]) == 2
    assert capsys.readouterr().err.startswith("apckx: error: ")
