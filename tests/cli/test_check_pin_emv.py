"""``apckx check`` end to end over real HTTP for PIN, DUKPT and EMV keys (P0, B0, V1, V2,
E0, E1, E2, E4, E6): APC's answers against the published vectors, the cleartext and
expected values."""

from __future__ import annotations

from typing import Any

import pytest

from support.check import import_key, key_file, outcomes, run_check

# The ``aws`` fixture (emulator + KEK under alias/kek): tests/cli/conftest.py.
pytestmark = pytest.mark.usefixtures("quiet_apckx_loggers")


def test_e1_emv_encryption(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    imk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    import_key(aws, imk, "E1", "TDES_2KEY", "X", "alias/imk-smc")
    args = ["--input", "pan=5413123456784808", "--input", "atc=000B"]
    rc, record, err = run_check(aws, capsys, "alias/imk-smc", *args, "--key-file",
                             key_file(aws, imk))
    assert rc == 0, err
    assert outcomes(record) == {"KCV": "ok", "EMV encrypt": "ok", "EMV decrypt round trip": "ok"}
    rc, record, _ = run_check(aws, capsys, "alias/imk-smc", *args, "--expect",
                           "ciphertext=00112233445566778899AABBCCDDEEFF")
    assert rc == 1 and outcomes(record)["EMV encrypt"] == "mismatch"


BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


X9_PIN = ["--input", "pan=4012345678909", "--input", "pin=1234"]


def test_p0_pin_translation(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    pek = bytes.fromhex("0123456789ABCDEFFEDCBA98765432100123456789ABCDEF"[:32])
    import_key(aws, pek, "P0", "TDES_2KEY", "B", "alias/pek")
    rc, record, err = run_check(aws, capsys, "alias/pek", *X9_PIN, "--key-file", key_file(aws, pek))
    assert rc == 0, err
    assert outcomes(record) == {"KCV": "ok", "PIN translation": "ok"}
    rc, _, err = run_check(aws, capsys, "alias/pek", *X9_PIN)
    assert rc == 2 and "--input pin-block=HEX" in err


def test_b0_dukpt_round_trip_and_x9_pin_block(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    import_key(aws, BDK, "B0", "TDES_2KEY", "X", "alias/bdk")
    ksn = ["--input", "ksn=FFFF9876543210E00001"]
    rc, record, err = run_check(aws, capsys, "alias/bdk", *ksn, *X9_PIN, "--key-file",
                             key_file(aws, BDK))
    assert rc == 0, err
    assert outcomes(record) == {"KCV": "ok", "DUKPT encrypt": "ok", "DUKPT data round trip": "ok",
                                 "DUKPT PIN translation": "ok"}  # fmt: skip
    # No cleartext: the standard's encrypted PIN block must translate to itself.
    rc, record, err = run_check(aws, capsys, "alias/bdk", *ksn, *X9_PIN, "--input",
                             "pin-block=1B9C1845EB993A7A")
    assert rc == 0, err
    assert outcomes(record)["DUKPT PIN translation"] == "ok"
    rc, record, _ = run_check(aws, capsys, "alias/bdk", *X9_PIN, "--input",
                           "ksn=FFFF9876543210E00002", "--input", "pin-block=1B9C1845EB993A7A")
    # Under the next KSN's key the block is garbage: APC cannot even decode it.
    assert rc == 1 and record["status"] == "failed"
    assert outcomes(record)["data-plane call"] == "failed"


def test_v2_pvv(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from apckx.crypto import pin_block

    pvk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    pek = bytes.fromhex("1111111111111111222222222222222F")
    import_key(aws, pvk, "V2", "TDES_2KEY", "C", "alias/pvk")
    import_key(aws, pek, "P0", "TDES_2KEY", "B", "alias/pek")
    block = pin_block.encrypt_pin_block(pek, "4524", "ISO_FORMAT_0", pan="1122334455667788")
    args = ["--input", "pan=1122334455667788", "--input", "pvki=3", "--input", "pek=alias/pek",
            "--input", f"pin-block={block.hex()}"]  # fmt: skip
    rc, record, err = run_check(aws, capsys, "alias/pvk", *args, "--expect", "pvv=4021")
    assert rc == 0, err
    assert outcomes(record) == {"verify PIN (pvv)": "ok", "verify PIN (wrong pvv)": "ok"}
    rc, record, _ = run_check(aws, capsys, "alias/pvk", *args, "--expect", "pvv=4022")
    assert rc == 1 and outcomes(record)["verify PIN (pvv)"] == "mismatch"
    rc, record, err = run_check(aws, capsys, "alias/pvk", *args, "--input", "pin=4524",
                             "--key-file", key_file(aws, pvk))
    assert rc == 0, err


def test_e0_arqc(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    imk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    import_key(aws, imk, "E0", "TDES_2KEY", "X", "alias/imk-ac")
    args = [
        "--input", "pan=9137631040001422", "--input", "psn=01",
        "--input", "session-key-derivation=Visa", "--input",
        "transaction-data=00000000170000000000000008400080008000084016051700000000093800000B03011203000000",
    ]  # fmt: skip
    good = ["--expect", "arqc=D791093C8A921769"]
    rc, record, err = run_check(aws, capsys, "alias/imk-ac", *args, *good)
    assert rc == 0, err
    assert outcomes(record) == {"verify ARQC": "ok", "verify altered ARQC": "ok"}
    rc, record, err = run_check(aws, capsys, "alias/imk-ac", *args,
                                "--key-file", key_file(aws, imk))
    assert rc == 0, err
    rc, record, _ = run_check(aws, capsys, "alias/imk-ac", *args,
                              "--expect", "arqc=D791093C8A921768")
    assert rc == 1 and outcomes(record)["verify ARQC"] == "mismatch"


def test_e4_cvc3(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    imk = bytes.fromhex("01234567899876543210012345678998")
    import_key(aws, imk, "E4", "TDES_2KEY", "X", "alias/imk-cvc3")
    args = ["--input", "pan=5123456789012345", "--input", "atc=005E", "--input", "un=00000899",
            "--input", "track-data=5123456789012345D35121010000000000000F"]  # fmt: skip
    rc, record, err = run_check(aws, capsys, "alias/imk-cvc3", *args, "--expect", "cvc3=488")
    assert rc == 0, err
    rc, _, err = run_check(aws, capsys, "alias/imk-cvc3", *args, "--key-file", key_file(aws, imk))
    assert rc == 0, err
    rc, record, _ = run_check(aws, capsys, "alias/imk-cvc3", *args, "--expect", "cvc3=489")
    assert rc == 1 and outcomes(record)["generate CVC3"] == "mismatch"


def test_v1_ibm3624_offset(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from apckx.crypto import pin_block

    pvk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    pek = bytes.fromhex("1111111111111111222222222222222F")
    import_key(aws, pvk, "V1", "TDES_2KEY", "C", "alias/pvk-ibm")
    import_key(aws, pek, "P0", "TDES_2KEY", "B", "alias/pek")
    pan = "4000001234562000"
    block = pin_block.encrypt_pin_block(pek, "1234", "ISO_FORMAT_0", pan=pan)
    args = ["--input", f"pan={pan}", "--input", "pek=alias/pek",
            "--input", f"pin-block={block.hex()}",
            "--input", "decimalization-table=1234567890123456",
            "--input", "pin-validation-data=1122334455667788"]  # fmt: skip
    rc, record, err = run_check(aws, capsys, "alias/pvk-ibm", *args, "--expect", "offset=7710")
    assert rc == 0, err
    assert outcomes(record) == {"verify PIN (offset)": "ok", "verify PIN (wrong offset)": "ok"}
    rc, record, _ = run_check(aws, capsys, "alias/pvk-ibm", *args, "--expect", "offset=7711")
    assert rc == 1 and outcomes(record)["verify PIN (offset)"] == "mismatch"
    rc, record, err = run_check(aws, capsys, "alias/pvk-ibm", *args, "--input", "pin=1234",
                             "--key-file", key_file(aws, pvk))
    assert rc == 0, err


EMV_IMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def test_e2_emv_mac(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from apckx.crypto import mac

    import_key(aws, EMV_IMK, "E2", "TDES_2KEY", "X", "alias/imk-smi")
    args = ["--input", "pan=5413123456784808", "--input", "atc=0001", "--input",
            "message=8424000008"]  # fmt: skip
    rc, record, err = run_check(aws, capsys, "alias/imk-smi", *args, "--key-file",
                             key_file(aws, EMV_IMK))
    assert rc == 0, err
    assert outcomes(record) == {"KCV": "ok", "generate MAC": "ok", "verify MAC": "ok",
                                 "verify altered MAC": "ok"}  # fmt: skip
    good = mac.generate_emv_mac(
        EMV_IMK, bytes.fromhex("8424000008"), pan="5413123456784808", pan_sequence_number="00",
        major_key_derivation_mode="EMV_OPTION_A",
        session_key_derivation_mode="EMV_COMMON_SESSION_KEY", atc=bytes.fromhex("0001"),
    ).hex()  # fmt: skip
    rc, _, err = run_check(aws, capsys, "alias/imk-smi", *args, "--expect", f"mac={good}")
    assert rc == 0, err
    other_atc = ["--input", "pan=5413123456784808", "--input", "atc=0002",
                 "--input", "message=8424000008"]  # fmt: skip
    rc, record, _ = run_check(aws, capsys, "alias/imk-smi", *other_atc, "--expect", f"mac={good}")
    assert rc == 1 and outcomes(record)["generate MAC"] == "mismatch"


def test_e6_dcvv(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from apckx.crypto import card_validation

    import_key(aws, EMV_IMK, "E6", "TDES_2KEY", "X", "alias/imk-dcvv")
    args = ["--input", "pan=4012345678901234", "--input", "psn=01", "--input", "expiry=2512"]
    rc, record, err = run_check(aws, capsys, "alias/imk-dcvv", *args)
    assert rc == 0, err
    assert outcomes(record) == {"generate dCVV": "ok", "verify dCVV": "ok",
                                 "verify wrong dCVV": "ok"}  # fmt: skip
    dcvv = card_validation.generate_dcvv(EMV_IMK, "4012345678901234", "01", "2512", "101", "0001")
    rc, _, err = run_check(aws, capsys, "alias/imk-dcvv", *args, "--expect", f"dcvv={dcvv}")
    assert rc == 0, err
    wrong = dcvv[:-1] + str((int(dcvv[-1]) + 1) % 10)
    rc, record, _ = run_check(aws, capsys, "alias/imk-dcvv", *args, "--expect", f"dcvv={wrong}")
    assert rc == 1 and outcomes(record)["generate dCVV"] == "mismatch"
    # With the cleartext, APC's dCVV is compared with the local (jPOS-form) one.
    rc, record, err = run_check(aws, capsys, "alias/imk-dcvv", *args, "--key-file",
                             key_file(aws, EMV_IMK))
    assert rc == 0, err
    assert outcomes(record)["generate dCVV"] == "ok"
    assert outcomes(record)["KCV"] == "ok"
    other = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    rc, record, _ = run_check(aws, capsys, "alias/imk-dcvv", *args, "--key-file",
                           key_file(aws, other))
    assert rc == 1 and outcomes(record) == {"KCV": "mismatch"}  # a wrong key stops at its KCV


def test_b0_aes_dukpt(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """X9.24-3 AES-128 BDK: DUKPT data compared with the local working key, ISO format 4 PIN
    block translated BDK to BDK and deciphered locally."""
    bdk = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
    import_key(aws, bdk, "B0", "AES_128", "X", "alias/aes-bdk")
    args = ["--input", "ksn=123456789012345600000001", "--input", "pan=4111111111111111",
            "--key-file", key_file(aws, bdk)]  # fmt: skip
    rc, record, err = run_check(aws, capsys, "alias/aes-bdk", *args)
    assert rc == 0, err
    assert outcomes(record) == {"KCV": "ok", "DUKPT encrypt": "ok", "DUKPT data round trip": "ok",
                                 "DUKPT PIN translation": "ok"}  # fmt: skip
    rc, _, err = run_check(aws, capsys, "alias/aes-bdk", "--input", "ksn=1234567890123456FFFF0000F",
                        "--key-file", key_file(aws, bdk))
    assert rc == 2 and "--input ksn must be" in err
