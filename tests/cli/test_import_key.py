"""``apckx import-key`` end to end: under a KEK, a key block as is, over ECDH; bad input."""

from __future__ import annotations

import json
import re
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

# The cleartext of the KEK the ``aws`` fixture of tests/cli/conftest.py imports (alias/kek).
KEK = bytes.fromhex("00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA9876543210")


# Another test's --debug leaves DEBUG handlers on apckx's loggers; stderr is asserted.
pytestmark = pytest.mark.usefixtures("quiet_apckx_loggers")


def _key_file(tmp: Path, key: bytes) -> Path:
    path = tmp / "key.hex"
    path.write_text(key.hex())
    path.chmod(0o600)
    return path


def test_import_under_kek(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    key = generate_key("TDES_2KEY")
    rc = main(
        [
            "import-key",
            "--kek-id",
            "alias/kek",
            "--kek-file",
            str(aws["kek_file"]),
            "--key-file",
            str(_key_file(aws["tmp"], key)),
            "--key-usage",
            "C0",
            "--key-algorithm",
            "TDES_2KEY",
            "--mode-of-use",
            "V",
            "--alias",
            "alias/cvk",
            "--tag",
            "team=cards",
            "--output",
            "json",
            *aws["aws"],
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    data = json.loads(out)
    assert data["kcv"] == compute_key_kcv(key, "TDES_2KEY")
    assert data["key_usage"] == "TR31_C0_CARD_VERIFICATION_KEY"
    described = aws["apc"].get_key("alias/cvk")
    assert described["KeyCheckValue"].upper() == data["kcv"]
    assert described["KeyAttributes"]["KeyModesOfUse"]["Verify"] is True
    assert described["KeyAttributes"]["KeyModesOfUse"]["Generate"] is False
    assert aws["apc"].list_tags_for_resource(described["KeyArn"])["team"] == "cards"
    assert key.hex().upper() not in (out + err).upper()
    assert KEK.hex().upper() not in (out + err).upper()


def test_import_under_kek_from_components(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = generate_key("AES_128")
    first = generate_key("AES_128")
    second = bytes(a ^ b for a, b in zip(key, first, strict=True))
    answers = iter([first.hex(), second.hex()])
    monkeypatch.setattr("getpass.getpass", lambda prompt, stream=None: next(answers))
    rc = main(
        [
            "import-key",
            "--kek-id",
            "alias/kek",
            "--kek-file",
            str(aws["kek_file"]),
            "--key-components",
            "2",
            "--key-usage",
            "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY",
            "--key-algorithm",
            "AES_128",
            "--alias",
            "alias/dek",
            *aws["aws"],
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert re.search(rf"KCV\s+{compute_key_kcv(key, 'AES_128')} ", out)


def test_wrong_kek_stops_before_import(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = aws["tmp"] / "wrong.hex"
    wrong.write_text(bytes(reversed(KEK)).hex())
    wrong.chmod(0o600)
    rc = main(
        [
            "import-key",
            "--kek-id",
            "alias/kek",
            "--kek-file",
            str(wrong),
            "--key-file",
            str(_key_file(aws["tmp"], generate_key("AES_128"))),
            "--key-usage",
            "D0",
            "--key-algorithm",
            "AES_128",
            *aws["aws"],
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1
    assert "does not match alias/kek" in err and err.count("\n") == 1
    log = (aws["tmp"] / "requests.jsonl").read_text()
    assert "ImportKey" not in log.rsplit('"operation":"GetKey"', 1)[-1]


def test_import_key_block_shows_header(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    key = generate_key("HMAC_SHA256")
    spec = WorkingKeySpec(resolve_key_usage("M7"), "HMAC_SHA256", "G")
    block_file = aws["tmp"] / "hsm-export.txt"
    block_file.write_text(build_working_key_block(KEK, "AES_256", key, spec) + "\n")
    kcv = compute_key_kcv(key, "HMAC_SHA256")
    rc = main(
        [
            "import-key",
            "--kek-id",
            "alias/kek",
            "--key-block",
            f"@{block_file}",
            "--alias",
            "alias/hmac",
            "--kcv",
            kcv,
            *aws["aws"],
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "M7  TR31_M7_HMAC_KEY" in err and "HMAC_SHA256" in err
    assert kcv in out
    assert aws["apc"].get_key("alias/hmac")["KeyAttributes"]["KeyAlgorithm"] == "HMAC_SHA256"


def _import_over_ecdh(
    aws: dict[str, Any], key: bytes, usage: str, algorithm: str, alias: str
) -> int:
    """``apckx import-key --via ecdh`` with the fixture's certs dir, JSON output."""
    return main(
        [
            "import-key",
            "--via",
            "ecdh",
            "--key-file",
            str(_key_file(aws["tmp"], key)),
            "--key-usage",
            usage,
            "--key-algorithm",
            algorithm,
            "--alias",
            alias,
            "--certs-dir",
            str(aws["tmp"] / "certs"),
            "--output",
            "json",
            *aws["aws"],
        ]
    )


def test_import_over_ecdh(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    key = generate_key("AES_256")
    rc = _import_over_ecdh(aws, key, "B0", "AES_256", "alias/bdk")
    out, err = capsys.readouterr()
    assert rc == 0, err
    data = json.loads(out)
    assert data["kcv"] == compute_key_kcv(key, "AES_256") and data["via"] == "ecdh"
    assert aws["apc"].get_key("alias/bdk")["KeyAttributes"]["KeyUsage"] == (
        "TR31_B0_BASE_DERIVATION_KEY"
    )


def test_import_over_ecdh_journal_says_working_key_and_cleans_up(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    key = generate_key("AES_128")
    rc = _import_over_ecdh(aws, key, "D0", "AES_128", "alias/dek-ecdh")
    out, err = capsys.readouterr()
    assert rc == 0, err
    data = json.loads(out)
    cid = data["ceremony_id"]
    assert cid.startswith("key-")
    journal = json.loads((aws["tmp"] / ".apckx" / "ceremonies" / f"{cid}.json").read_text())
    assert journal["kind"] == "key" and journal["status"] == "complete"
    working = [r for r in journal["resources"] if r["role"] == "working"]
    assert {(r["kind"], r["arn"]) for r in working} == {
        ("key", data["key_arn"]),
        ("alias", data["key_arn"]),
    }
    assert "kek" not in {r["role"] for r in journal["resources"]}
    assert aws["apc"].list_tags_for_resource(data["key_arn"])["apckx:role"] == "working"
    rc = main(["cleanup", "--ceremony", cid, *aws["aws"]])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert aws["apc"].get_key(data["key_arn"])["KeyState"] == "DELETE_PENDING"
    assert "alias/dek-ecdh" not in {a["AliasName"] for a in aws["apc"].list_aliases()}
    # The KEK the fixture imported (another ceremony) is untouched.
    assert aws["apc"].get_key("alias/kek")["KeyState"] == "CREATE_COMPLETE"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--key-usage", "M2", "--key-algorithm", "TDES_2KEY"], "APC accepts B0, C0"),
        (["--key-usage", "D0", "--key-algorithm", "AES_512"], "--key-algorithm must be"),
        (["--key-usage", "D0", "--key-algorithm", "AES_128", "--mode-of-use", "Q"], "mode of use"),
        (["--key-usage", "D0", "--key-algorithm", "AES_128", "--alias", "bad"], "alias/NAME"),
        (["--key-usage", "D0", "--key-algorithm", "AES_128", "--tag", "x"], "KEY=VALUE"),
    ],
)
def test_bad_options_fail_in_one_line_before_any_call(
    aws: dict[str, Any], extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    log = aws["tmp"] / "requests.jsonl"
    before = log.read_text()
    rc = main(
        [
            "import-key",
            "--kek-id",
            "alias/kek",
            "--kek-file",
            str(aws["kek_file"]),
            "--key-file",
            str(_key_file(aws["tmp"], generate_key("AES_128"))),
            *extra,
            *aws["aws"],
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and err.count("\n") == 1
    assert log.read_text() == before
