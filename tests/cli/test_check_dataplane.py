"""``apckx check`` and ``migrate --check`` end to end over real HTTP for data, MAC and card
keys (D0, M3, M6, M7, C0), pacing, and the migrate hook (PIN/DUKPT/EMV keys: test_check_pin_emv)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apckx._cli import main
from apckx.service.apc import ApcService
from support.check import import_key, key_file, logged_ops, outcomes, run_check

# The ``aws`` fixture (emulator + KEK under alias/kek): tests/cli/conftest.py.
pytestmark = pytest.mark.usefixtures("quiet_apckx_loggers")


D0_KEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")  # NIST SP 800-38A AES-128


def test_d0_round_trip_and_local_comparison(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    import_key(aws, D0_KEY, "D0", "AES_128", "B", "alias/dek")
    rc, record, err = run_check(aws, capsys, "alias/dek", "--key-file", key_file(aws, D0_KEY))
    assert rc == 0, err
    assert record["status"] == "ok"
    assert record["compared_with"] == "cleartext"
    assert outcomes(record) == {"KCV": "ok", "encrypt": "ok", "decrypt round trip": "ok"}
    assert D0_KEY.hex().upper() not in json.dumps(record).upper()
    operations = logged_ops(aws["log"])
    assert "EncryptData" in operations and "DecryptData" in operations


def test_d0_wrong_cleartext_is_a_mismatch_without_data_calls(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    import_key(aws, D0_KEY, "D0", "AES_128", "B", "alias/dek")
    wrong = bytes(reversed(D0_KEY))
    rc, record, err = run_check(aws, capsys, "alias/dek", "--key-file", key_file(aws, wrong))
    assert rc == 1
    assert outcomes(record) == {"KCV": "mismatch"}
    assert "check mismatch" in err
    assert "EncryptData" not in logged_ops(aws["log"])


def test_d0_expected_ciphertext(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    import_key(aws, D0_KEY, "D0", "AES_128", "B", "alias/dek")
    plaintext = bytes.fromhex("6BC1BEE22E409F96E93D7E117393172A")
    encryptor = Cipher(algorithms.AES(D0_KEY), modes.CBC(bytes(16))).encryptor()
    good = (encryptor.update(plaintext) + encryptor.finalize()).hex().upper()
    args = ["--input", f"plaintext={plaintext.hex()}"]
    rc, record, _ = run_check(aws, capsys, "alias/dek", *args, "--expect", f"ciphertext={good}")
    assert rc == 0
    assert record["compared_with"] == "expected values"
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    rc, record, err = run_check(aws, capsys, "alias/dek", *args, "--expect", f"ciphertext={bad}")
    assert rc == 1
    assert outcomes(record)["encrypt"] == "mismatch"
    assert good not in err and bad not in err


def test_d0_text_output(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    import_key(aws, D0_KEY, "D0", "AES_128", "B", "alias/dek")
    capsys.readouterr()
    rc = main(["check", "alias/dek", *aws["aws"]])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert out.startswith("apckx check: OK")
    assert "APC only (round trips)" in out
    assert "decrypt round trip" in out and "EncryptData" in out


def test_migrate_check_d0_rows(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    plaintext = bytes.fromhex("6BC1BEE22E409F96E93D7E117393172A")
    encryptor = Cipher(algorithms.AES(D0_KEY), modes.CBC(bytes(16))).encryptor()
    good = (encryptor.update(plaintext) + encryptor.finalize()).hex().upper()
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    manifest = aws["tmp"] / "keys.csv"
    manifest.write_text(
        "alias,key_hex,key_usage,key_algorithm,mode_of_use,check_input,expect\n"
        f"alias/m-dek,{D0_KEY.hex()},D0,AES_128,B,plaintext={plaintext.hex()},ciphertext={good}\n"
        f"alias/m-dek-bad,{D0_KEY.hex()},D0,AES_128,B,plaintext={plaintext.hex()},"
        f"ciphertext={bad}\n"
        f"alias/m-kek,{'11' * 16 + '22' * 16},K0,AES_256,B,,\n"
    )
    capsys.readouterr()
    rc = main(["migrate", str(manifest), "--kek-id", "alias/kek", "--kek-file",
               str(aws["kek_file"]), "--check", "--no-progress", "--rate", "100",
               *aws["aws"]])  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 1
    assert "CHECK" in out.splitlines()[0]
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.startswith("alias/")}
    assert lines["alias/m-dek"].split()[1:2] == ["imported"]
    assert lines["alias/m-dek"].endswith("  ok")
    assert "mismatch: encrypt" in lines["alias/m-dek-bad"]
    assert "skipped: no data-plane check" in lines["alias/m-kek"]
    assert "1 key(s) failed their check" in err
    assert good not in out + err
    operations = logged_ops(aws["log"])
    assert operations.count("EncryptData") == 2 and operations.count("DecryptData") == 2
    capsys.readouterr()
    rc = main(["migrate", str(manifest), "--kek-id", "alias/kek", "--kek-file",
               str(aws["kek_file"]), "--check", "--output", "json", "--rate", "100",
               *aws["aws"]])  # fmt: skip
    out, _ = capsys.readouterr()
    record = json.loads(out)
    assert rc == 1 and record["check_failed"] == 1
    assert {k["alias"]: k["check"] for k in record["keys"]}["alias/m-dek"] == "ok"


def test_check_key_paces_every_data_plane_call(aws: dict[str, Any]) -> None:
    from apckx.ceremonies.check import check_key
    from apckx.emulator.pytest_plugin import make_emulator_client
    from apckx.service.data import ApcDataService

    import_key(aws, D0_KEY, "D0", "AES_128", "B", "alias/dek")
    apc: ApcService = aws["apc"]
    url = aws["aws"][1]
    data = ApcDataService(make_emulator_client(url, service="payment-cryptography-data"))
    paced: list[int] = []
    result = check_key(apc, data, apc.get_key("alias/dek"), cleartext=D0_KEY,
                       pace=lambda: paced.append(len(data.calls)))  # fmt: skip
    assert result.ok
    assert [c.operation for c in data.calls] == ["EncryptData", "DecryptData"]
    assert paced == [0, 1]  # once before each call, before it is made


CVK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


CARD = ["--input", "pan=4123456789012349", "--input", "expiry=2511", "--input", "service-code=201"]


def test_c0_cvv_against_cleartext_and_expected(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    import_key(aws, CVK, "C0", "TDES_2KEY", "C", "alias/cvk")
    rc, record, err = run_check(aws, capsys, "alias/cvk", *CARD, "--key-file", key_file(aws, CVK))
    assert rc == 0, err
    assert outcomes(record) == {
        "KCV": "ok", "generate CVV": "ok", "verify CVV": "ok", "verify wrong CVV": "ok",
    }  # fmt: skip
    rc, record, _ = run_check(aws, capsys, "alias/cvk", *CARD, "--expect", "cvv=526")
    assert rc == 0 and record["compared_with"] == "expected values"
    rc, record, err = run_check(aws, capsys, "alias/cvk", *CARD, "--expect", "cvv=527")
    assert rc == 1
    assert outcomes(record)["generate CVV"] == "mismatch"
    assert "526" not in err and "526" not in json.dumps(record)


def test_c0_verify_only_key_uses_the_expected_cvv(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    import_key(aws, CVK, "C0", "TDES_2KEY", "V", "alias/cvk-v")
    rc, record, err = run_check(aws, capsys, "alias/cvk-v", *CARD, "--expect", "cvv=526")
    assert rc == 0, err
    assert outcomes(record) == {"verify CVV": "ok", "verify wrong CVV": "ok"}
    rc, record, _ = run_check(aws, capsys, "alias/cvk-v", *CARD, "--expect", "cvv=527")
    assert rc == 1 and outcomes(record)["verify CVV"] == "mismatch"


def test_m3_retail_mac(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    key = bytes.fromhex("7CA110454A1A6E570131D9619DC1376E")
    import_key(aws, key, "M3", "TDES_2KEY", "C", "alias/mac3")
    message = ["--input", "message=48656C6C6F20576F726C642021212121"]
    rc, record, err = run_check(aws, capsys, "alias/mac3", *message, "--expect",
                             "mac=F09B856213BAB83B", "--key-file", key_file(aws, key))
    assert rc == 0, err
    assert outcomes(record) == {"KCV": "ok", "generate MAC": "ok", "verify MAC": "ok",
                                 "verify altered MAC": "ok"}  # fmt: skip
    rc, record, _ = run_check(aws, capsys, "alias/mac3", *message,
                              "--expect", "mac=F09B856313BAB83B")
    assert rc == 1 and outcomes(record)["generate MAC"] == "mismatch"


def test_m6_aes_cmac(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    key = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
    import_key(aws, key, "M6", "AES_128", "C", "alias/cmac")
    rc, record, err = run_check(
        aws, capsys, "alias/cmac", "--input", "message=6BC1BEE22E409F96E93D7E117393172A",
        "--expect", "mac=070A16B46B4D4144F79BDD9DD04A287C", "--key-file", key_file(aws, key),
    )  # fmt: skip
    assert rc == 0, err
    assert record["status"] == "ok"


def test_migrate_check_adds_a_check_column(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = aws["tmp"] / "keys.csv"
    manifest.write_text(
        "alias,key_hex,key_usage,key_algorithm,mode_of_use,check_input,expect\n"
        f"alias/m-cvk,{CVK.hex()},C0,TDES_2KEY,C,pan=4123456789012349;expiry=2511;"
        "service-code=201,cvv=526\n"
        f"alias/m-cvk-bad,{CVK.hex()},C0,TDES_2KEY,C,pan=4123456789012349;expiry=2511;"
        "service-code=201,cvv=527\n"
        f"alias/m-kek,{'11' * 16 + '22' * 16},K0,AES_256,B,,\n"
    )
    capsys.readouterr()
    rc = main(["migrate", str(manifest), "--kek-id", "alias/kek", "--kek-file",
               str(aws["kek_file"]), "--check", "--no-progress", "--rate", "100",
               *aws["aws"]])  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 1
    assert "CHECK" in out.splitlines()[0]
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.startswith("alias/")}
    assert lines["alias/m-cvk"].endswith("  ok")
    assert "mismatch: generate CVV" in lines["alias/m-cvk-bad"]
    assert "skipped: no data-plane check" in lines["alias/m-kek"]
    assert "1 key(s) failed their check" in err
    assert "526" not in out + err


def test_m7_hmac(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    key = bytes(range(1, 33))
    import_key(aws, key, "M7", "HMAC_SHA256", "C", "alias/hmac")
    rc, record, err = run_check(aws, capsys, "alias/hmac", "--key-file", key_file(aws, key))
    assert rc == 0, err
    assert outcomes(record)["generate MAC"] == "ok"
    rc, record, err = run_check(aws, capsys, "alias/hmac", "--key-file",
                             key_file(aws, bytes(range(2, 34)), "other.hex"))
    assert rc == 1 and outcomes(record) == {"KCV": "mismatch"}
