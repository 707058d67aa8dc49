"""Card validation data against the published vectors, byte for byte
(tests/vectors/dataplane/card_validation.json), and psec / pyemv as a second implementation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from psec import cvv as psec_cvv

from apckx.crypto import card_validation as cv
from apckx.errors import InputError

DATAPLANE = Path(__file__).resolve().parents[1] / "vectors" / "dataplane"


def _cases(algorithms: tuple[str, ...]) -> Any:
    with (DATAPLANE / "card_validation.json").open(encoding="utf-8") as handle:
        entries = [e for e in json.load(handle) if e["algorithm"] in algorithms]
    assert entries
    return pytest.mark.parametrize("entry", entries, ids=[e["id"] for e in entries])


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@_cases(("CVV", "CVV2", "ICVV"))
def test_cvv_vectors(entry: dict[str, Any]) -> None:
    cvk, pan, expiry = h(entry["cvk"]), entry["pan"], entry["card_expiry_date"]
    got = cv.generate_cvv(cvk, pan, expiry, entry["service_code"])
    assert got == entry["validation_data"]
    assert got == psec_cvv.generate_cvv(cvk, pan, expiry, entry["service_code"])
    if entry["algorithm"] == "CVV2":
        assert cv.generate_cvv2(cvk, pan, expiry) == entry["validation_data"]
    if entry["algorithm"] == "ICVV":
        assert cv.generate_icvv(cvk, pan, expiry) == entry["validation_data"]
    assert cv.verify_validation_data(got, entry["validation_data"])
    wrong = str((int(got) + 1) % 1000).zfill(3)
    assert not cv.verify_validation_data(got, wrong)


@_cases(("CVV",))
def test_longer_cvv_extends_the_same_digits(entry: dict[str, Any]) -> None:
    cvk, pan, expiry = h(entry["cvk"]), entry["pan"], entry["card_expiry_date"]
    five = cv.generate_cvv(cvk, pan, expiry, entry["service_code"], 5)
    assert five[:3] == entry["validation_data"]
    assert len(five) == 5 and five.isdigit()


@_cases(("MASTERCARD_CVC3",))
def test_cvc3_vector(entry: dict[str, Any]) -> None:
    args = (
        h(entry["imk_cvc3"]),
        entry["pan"],
        entry["pan_sequence_number"],
        h(entry["track_data"]),
        entry["application_transaction_counter"],
        entry["unpredictable_number"],
    )
    assert cv.generate_cvc3(*args) == entry["validation_data_3"]
    assert cv.generate_cvc3(*args, 5) == entry["cvc3_full"]
    other_atc = (*args[:4], "005F", args[5])
    assert cv.generate_cvc3(*other_atc, 5) != entry["cvc3_full"]


def _dcvv_cases() -> Any:
    with (DATAPLANE / "dcvv_jpos.json").open(encoding="utf-8") as handle:
        entries = json.load(handle)
    assert entries
    return pytest.mark.parametrize("entry", entries, ids=[e["id"] for e in entries])


@_dcvv_cases()
def test_dcvv_jpos_vectors(entry: dict[str, Any]) -> None:
    args = (
        h(entry["imk_ac"]),
        entry["pan"],
        entry["pan_sequence_number"],
        entry["card_expiry_date"],
        entry["service_code"],
        entry["application_transaction_counter"],
    )
    mode = entry["major_key_derivation_mode"]
    got = cv.generate_dcvv(*args, major_key_derivation_mode=mode)
    assert got == entry["validation_data"]
    # Longer values extend the same decimalized digits.
    assert cv.generate_dcvv(*args, 5, major_key_derivation_mode=mode)[:3] == got
    other_atc = (*args[:5], "3211")
    assert cv.generate_dcvv(*other_atc, 5, major_key_derivation_mode=mode) != cv.generate_dcvv(
        *args, 5, major_key_derivation_mode=mode
    )


def test_dcvv_is_the_cvv_of_the_atc_altered_pan_under_the_icc_key() -> None:
    from apckx.crypto import emv
    from apckx.crypto._quiet import quiet_tdes

    imk = h("0123456789ABCDEFFEDCBA9876543210")
    with quiet_tdes():
        icc = emv.derive_icc_master_key(imk, "4012345678901234", "01")
        # psec's CVV (a second implementation) over PAN digits 5.. behind the ATC.
        expected = psec_cvv.generate_cvv(icc, "0001" + "345678901234", "2512", "101")
    assert cv.generate_dcvv(imk, "4012345678901234", "01", "2512", "101", "0001") == expected
    assert cv.generate_dcvv(imk, "4012345678901234", "01", "2512", "101", "01") == expected
    variants = {
        cv.generate_dcvv(imk, "4012345678901234", "01", "2512", "101", "0009", 5),
        cv.generate_dcvv(imk, "4012345678901234", "00", "2512", "101", "0001", 5),
        cv.generate_dcvv(imk, "4012345678901234", "01", "2601", "101", "0001", 5),
        cv.generate_dcvv(imk, "4012345678901234", "01", "2512", "101", "0001", 5),
    }
    assert len(variants) == 4


def test_amex_csc_lengths_are_slices_of_one_computation() -> None:
    key = h("0123456789ABCDEFFEDCBA9876543210")
    for pan in ("371234567890123", "344131234567848"):
        for version, service_code in ((1, None), (2, "702")):
            csc = {
                n: cv.generate_amex_csc(
                    key, pan, "1224", version=version, service_code=service_code, length=n
                )
                for n in (3, 4, 5)
            }
            assert all(len(v) == n and v.isdigit() for n, v in csc.items())
    v1 = cv.generate_amex_csc(key, "371234567890123", "1224", version=1, length=5)
    v2 = cv.generate_amex_csc(
        key, "371234567890123", "1224", version=2, service_code="702", length=5
    )
    assert v1 != v2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cv.generate_cvv(bytes(8), "4123456789012345", "8701", "101"), "16-byte"),
        (lambda: cv.generate_cvv(bytes(16), "41234567", "8701", "101"), "the PAN must be 12..19"),
        (lambda: cv.generate_cvv(bytes(16), "4123456789012345", "870", "101"), "expiry date"),
        (lambda: cv.generate_cvv(bytes(16), "4123456789012345", "8701", "1X1"), "service code"),
        (lambda: cv.generate_cvv(bytes(16), "4123456789012345", "8701", "101", 6), "3..5"),
        (
            lambda: cv.generate_amex_csc(bytes(16), "411111111111111", "1224", version=1),
            "starts with 34 or 37",
        ),
        (
            lambda: cv.generate_amex_csc(bytes(16), "371234567890123", "1224", version=2),
            "needs the service code",
        ),
        (
            lambda: cv.generate_cvc3(bytes(16), "5123456789012345", "00", b"\x51", "5E0", "99"),
            "whole bytes",
        ),
        (
            lambda: cv.check_supported("DiscoverDynamicCardVerificationCode"),
            "DiscoverDynamicCardVerificationCode is not supported by apckx: Discover's dCVC is "
            "defined in Discover's D-PAS and ZIP specifications, which are not public",
        ),
        (
            lambda: cv.check_supported("CardHolderVerificationValue"),
            "CardHolderVerificationValue is not supported by apckx: .* has no public "
            "specification or implementation",
        ),
    ],
)
def test_bad_input_is_refused(call: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()


def test_supported_attributes_pass_the_check() -> None:
    for name in cv.SUPPORTED_ATTRIBUTES:
        cv.check_supported(name)


def test_no_tdes_deprecation_warnings_reach_the_caller() -> None:
    import warnings

    from apckx.crypto import mac

    key = h("0123456789ABCDEFFEDCBA9876543210")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cv.generate_cvv(key, "4123456789012345", "8701", "101")
        cv.generate_cvc3(key, "5123456789012345", "00", h("5123D3512101FF"), "005E", "00000899")
        cv.generate_amex_csc(key, "371234567890123", "1224", version=1)
        mac.generate_mac("ISO9797_ALGORITHM3", key, bytes(8), key_algorithm="TDES_2KEY")
        mac.generate_mac("ISO9797_ALGORITHM1", key, bytes(8), key_algorithm="TDES_2KEY")
        mac.generate_emv_mac(key, b"\x84", pan="5413123456784808", pan_sequence_number="00",
                             major_key_derivation_mode="EMV_OPTION_A",
                             session_key_derivation_mode="EMV_COMMON_SESSION_KEY",
                             atc=h("0001"))  # fmt: skip
