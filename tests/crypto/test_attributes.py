"""APC key attribute rules (UG keys-validattributes, spec section 4), kept as tables."""

from __future__ import annotations

import pytest

from apckx.crypto import attributes
from apckx.errors import InputError, StrengthError


def attrs(
    usage: str, algorithm: str, modes: str, key_class: str = "SYMMETRIC_KEY"
) -> dict[str, object]:
    return {
        "KeyUsage": usage,
        "KeyClass": key_class,
        "KeyAlgorithm": algorithm,
        "KeyModesOfUse": attributes.modes_from_code(modes),
    }


def test_usage_names_round_trip() -> None:
    assert attributes.normalize_key_usage("K0") == "TR31_K0_KEY_ENCRYPTION_KEY"
    assert attributes.normalize_key_usage("TR31_M7_HMAC_KEY") == "TR31_M7_HMAC_KEY"
    assert len(attributes.KEY_USAGES) == 24  # every KeyUsage in the botocore model
    for name, code in attributes.KEY_USAGES.items():
        assert name.startswith(f"TR31_{code}_")
    with pytest.raises(InputError, match="unknown key usage"):
        attributes.normalize_key_usage("K9")


@pytest.mark.parametrize("code", list(attributes.MODES))
def test_modes_round_trip(code: str) -> None:
    modes = attributes.modes_from_code(code)
    assert list(modes) == list(attributes.MODE_FLAGS)
    assert attributes.code_from_modes(modes) == code
    # Missing flags count as false
    assert attributes.code_from_modes({k: v for k, v in modes.items() if v}) == code


def test_modes_refused() -> None:
    with pytest.raises(InputError, match="no TR-31 mode of use"):
        attributes.code_from_modes({"Encrypt": True, "Decrypt": True})
    with pytest.raises(InputError, match="unknown KeyModesOfUse flag"):
        attributes.code_from_modes({"Encrypt": True, "Bogus": True})
    with pytest.raises(InputError, match="mode of use 'T'"):
        attributes.modes_from_code("T")


@pytest.mark.parametrize(
    "combination",
    [
        ("TR31_K0_KEY_ENCRYPTION_KEY", "AES_256", "B"),
        ("TR31_K1_KEY_BLOCK_PROTECTION_KEY", "TDES_2KEY", "E"),
        ("TR31_P0_PIN_ENCRYPTION_KEY", "AES_128", "D"),
        ("TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY", "TDES_3KEY", "N"),
        ("TR31_B0_BASE_DERIVATION_KEY", "AES_128", "X"),
        ("TR31_E6_EMV_MKEY_OTHER", "TDES_2KEY", "N"),
        ("TR31_C0_CARD_VERIFICATION_KEY", "TDES_2KEY", "C"),
        ("TR31_V2_VISA_PIN_VERIFICATION_KEY", "TDES_2KEY", "V"),
        ("TR31_M6_ISO_9797_5_CMAC_KEY", "AES_128", "G"),
        ("TR31_M1_ISO_9797_1_MAC_KEY", "TDES_2KEY", "C"),
        ("TR31_M7_HMAC_KEY", "HMAC_SHA512", "C"),
        ("TR31_M7_HMAC_KEY", "AES_256", "G"),
        ("TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT", "ECC_NIST_P521", "X", "ASYMMETRIC_KEY_PAIR"),
        ("TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE", "ECC_NIST_P521", "V", "PUBLIC_KEY"),
        ("TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE", "RSA_2048", "S", "ASYMMETRIC_KEY_PAIR"),
    ],
)
def test_valid_combinations(combination: tuple[str, ...]) -> None:
    attributes.validate_key_attributes(attrs(*combination))


@pytest.mark.parametrize(
    ("combination", "message"),
    [
        (("TR31_K0_KEY_ENCRYPTION_KEY", "AES_256", "X"), "KeyModesOfUse for TR31_K0"),
        (("TR31_K0_KEY_ENCRYPTION_KEY", "HMAC_SHA256", "B"), "not valid for TR31_K0"),
        (("TR31_B0_BASE_DERIVATION_KEY", "AES_128", "E"), "KeyModesOfUse for TR31_B0"),
        (("TR31_E0_EMV_MKEY_APP_CRYPTOGRAMS", "AES_128", "C"), "KeyModesOfUse for TR31_E0"),
        (("TR31_C0_CARD_VERIFICATION_KEY", "AES_128", "B"), "KeyModesOfUse for TR31_C0"),
        (("TR31_M3_ISO_9797_3_MAC_KEY", "AES_128", "C"), "not valid for TR31_M3"),
        (("TR31_M0_ISO_16609_MAC_KEY", "AES_256", "G"), "not valid for TR31_M0"),
        (("TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT", "ECC_NIST_P256", "B",
          "ASYMMETRIC_KEY_PAIR"), "KeyModesOfUse for TR31_K3"),
        (("TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT", "ECC_NIST_P256", "X"), "KeyClass"),
        (("TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT", "RSA_2048", "X",
          "ASYMMETRIC_KEY_PAIR"), "not valid for TR31_K3"),
        (("TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE", "ECC_NIST_P521", "S", "PUBLIC_KEY"),
         "only have KeyModesOfUse \\{Verify\\}"),
        (("TR31_K0_KEY_ENCRYPTION_KEY", "AES_256", "B", "PUBLIC_KEY"), "KeyClass"),
        (("TR31_K2_TR34_ASYMMETRIC_KEY", "RSA_2048", "B"), "not supported by apckx"),
        (("TR31_Z9", "AES_128", "B"), "not an APC key usage"),
    ],
)  # fmt: skip
def test_invalid_combinations(combination: tuple[str, ...], message: str) -> None:
    with pytest.raises(InputError, match=message):
        attributes.validate_key_attributes(attrs(*combination))


def test_modes_must_be_a_mapping() -> None:
    bad = {"KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY", "KeyClass": "SYMMETRIC_KEY",
           "KeyAlgorithm": "AES_128", "KeyModesOfUse": "B"}  # fmt: skip
    with pytest.raises(InputError, match="mapping"):
        attributes.validate_key_attributes(bad)


@pytest.mark.parametrize(
    ("kbpk", "key", "allowed"),
    [
        ("TDES_2KEY", "TDES_2KEY", True),
        ("TDES_2KEY", "TDES_3KEY", False),
        ("TDES_3KEY", "TDES_3KEY", True),
        ("TDES_3KEY", "AES_128", False),
        ("AES_128", "TDES_3KEY", True),
        ("AES_128", "AES_128", True),
        ("AES_128", "AES_192", False),
        ("AES_192", "AES_192", True),
        ("AES_192", "AES_256", False),
        ("AES_256", "AES_256", True),
        ("AES_256", "HMAC_SHA512", True),
        ("AES_128", "HMAC_SHA384", False),
    ],
)
def test_check_wrapping_strength(kbpk: str, key: str, allowed: bool) -> None:
    if allowed:
        attributes.check_wrapping_strength(kbpk, key)
    else:
        with pytest.raises(StrengthError, match=f"{kbpk} .* cannot protect a {key} key"):
            attributes.check_wrapping_strength(kbpk, key)


def test_kbpk_must_be_tdes_or_aes() -> None:
    with pytest.raises(InputError, match="TDES or AES"):
        attributes.check_wrapping_strength("HMAC_SHA512", "AES_128")


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [("TDES_2KEY", "ANSI_X9_24"), ("AES_256", "CMAC"), ("HMAC_SHA224", "HMAC")],
)
def test_default_kcv_algorithm(algorithm: str, expected: str) -> None:
    assert attributes.default_kcv_algorithm(algorithm) == expected
    with pytest.raises(InputError):
        attributes.default_kcv_algorithm("ECC_NIST_P256")
