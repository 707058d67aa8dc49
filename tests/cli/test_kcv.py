"""apckx kcv: file, stdin, env, prompt and components; inference rule; no key echoed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from apckx._cli import main

TDES_HEX = "0123456789ABCDEFFEDCBA9876543210"  # KCV 08D7B4 (spec section 6)
AES_HEX = "2B7E151628AED2A6ABF7158809CF4F3C"  # AES_128 CMAC KCV 7AD386
HMAC_HEX = "00112233445566778899AABBCCDDEEFF"  # HMAC_SHA256 KCV E8A065


# Another test's --debug leaves DEBUG handlers on apckx's loggers; stderr is asserted.
pytestmark = pytest.mark.usefixtures("quiet_apckx_loggers")


def _key_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "key.hex"
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_kcv_inferred_tdes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kcv", "--key-file", str(_key_file(tmp_path, TDES_HEX))]) == 0
    out = capsys.readouterr().out
    assert "TDES_2KEY (inferred from 16 bytes; pass --key-algorithm AES_128" in out
    assert "ANSI_X9_24" in out and "08D7B4" in out
    assert TDES_HEX not in out


def test_kcv_explicit_aes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _key_file(tmp_path, AES_HEX)
    assert (
        main(["kcv", "--key-file", str(path), "--key-algorithm", "AES_128", "--output", "json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out) == {
        "key_algorithm": "AES_128",
        "kcv_algorithm": "CMAC",
        "kcv": "7AD386",
        "key_algorithm_inferred": False,
    }


def test_kcv_hmac_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(HMAC_HEX + "\n"))
    assert main(["kcv", "--key-file", "-", "--key-algorithm", "HMAC_SHA256"]) == 0
    assert "E8A065" in capsys.readouterr().out


def test_kcv_from_env_inferred_via_stdin_rules(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APCKX_TEST_KEY", TDES_HEX)
    assert main(["kcv", "--key-env", "APCKX_TEST_KEY", "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["kcv"] == "08D7B4"


def test_kcv_components(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = bytes.fromhex(TDES_HEX)
    first = bytes.fromhex("1111111111111111AAAAAAAAAAAAAAAA")
    second = bytes(a ^ b for a, b in zip(key, first, strict=True))
    answers = iter([first.hex(), second.hex()])
    monkeypatch.setattr("getpass.getpass", lambda prompt, stream=None: next(answers))
    assert main(["kcv", "--key-components", "2", "--key-algorithm", "TDES_2KEY"]) == 0
    out, err = capsys.readouterr()
    assert "08D7B4" in out
    assert "component 1 of 2 KCV" in err
    assert first.hex().upper() not in out + err and TDES_HEX not in out + err


def test_prompt_needs_the_algorithm(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kcv", "--key-prompt"]) == 2
    assert "need --key-algorithm" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [("ABCDEF", "cannot infer"), ("XYZ", "cannot infer"), ("0" * 32, "all zero")],
)
def test_bad_keys(
    tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kcv", "--key-file", str(_key_file(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
