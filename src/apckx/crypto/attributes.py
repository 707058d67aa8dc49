"""APC key attribute rules: usages, modes of use and the combinations APC accepts.

Source: AWS Payment Cryptography User Guide "keys-validattributes" (apc-control-plane.md
section 4) and the import/export strength table (UG keys-importexport). Kept as tables.
"""

from __future__ import annotations

from collections.abc import Mapping

from apckx.crypto.keys import KEY_ALGORITHMS, is_aes, is_hmac, is_tdes, strength_bits
from apckx.errors import InputError, StrengthError

#: APC KeyUsage -> TR-31 key usage code.
KEY_USAGES: dict[str, str] = {
    "TR31_B0_BASE_DERIVATION_KEY": "B0",
    "TR31_C0_CARD_VERIFICATION_KEY": "C0",
    "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY": "D0",
    "TR31_D1_ASYMMETRIC_KEY_FOR_DATA_ENCRYPTION": "D1",
    "TR31_E0_EMV_MKEY_APP_CRYPTOGRAMS": "E0",
    "TR31_E1_EMV_MKEY_CONFIDENTIALITY": "E1",
    "TR31_E2_EMV_MKEY_INTEGRITY": "E2",
    "TR31_E4_EMV_MKEY_DYNAMIC_NUMBERS": "E4",
    "TR31_E5_EMV_MKEY_CARD_PERSONALIZATION": "E5",
    "TR31_E6_EMV_MKEY_OTHER": "E6",
    "TR31_K0_KEY_ENCRYPTION_KEY": "K0",
    "TR31_K1_KEY_BLOCK_PROTECTION_KEY": "K1",
    "TR31_K2_TR34_ASYMMETRIC_KEY": "K2",
    "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT": "K3",
    "TR31_M0_ISO_16609_MAC_KEY": "M0",
    "TR31_M1_ISO_9797_1_MAC_KEY": "M1",
    "TR31_M3_ISO_9797_3_MAC_KEY": "M3",
    "TR31_M6_ISO_9797_5_CMAC_KEY": "M6",
    "TR31_M7_HMAC_KEY": "M7",
    "TR31_P0_PIN_ENCRYPTION_KEY": "P0",
    "TR31_P1_PIN_GENERATION_KEY": "P1",
    "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE": "S0",
    "TR31_V1_IBM3624_PIN_VERIFICATION_KEY": "V1",
    "TR31_V2_VISA_PIN_VERIFICATION_KEY": "V2",
}
#: TR-31 key usage code -> APC KeyUsage.
USAGE_NAMES: dict[str, str] = {code: name for name, code in KEY_USAGES.items()}

#: APC KeyModesOfUse flags, in the model's order.
MODE_FLAGS: tuple[str, ...] = (
    "Encrypt",
    "Decrypt",
    "Wrap",
    "Unwrap",
    "Generate",
    "Sign",
    "Verify",
    "DeriveKey",
    "NoRestrictions",
)

#: TR-31 mode of use code -> the APC flags it sets (spec section 5.3).
MODES: dict[str, frozenset[str]] = {
    "B": frozenset({"Encrypt", "Decrypt", "Wrap", "Unwrap"}),
    "E": frozenset({"Encrypt", "Wrap"}),
    "D": frozenset({"Decrypt", "Unwrap"}),
    "X": frozenset({"DeriveKey"}),
    "N": frozenset({"NoRestrictions"}),
    "C": frozenset({"Generate", "Verify"}),
    "G": frozenset({"Generate"}),
    "V": frozenset({"Verify"}),
    "S": frozenset({"Sign"}),
}
_CODE_FOR_FLAGS: dict[frozenset[str], str] = {flags: code for code, flags in MODES.items()}

_TDES = frozenset({"TDES_2KEY", "TDES_3KEY"})
_AES = frozenset({"AES_128", "AES_192", "AES_256"})
_HMAC = frozenset({"HMAC_SHA224", "HMAC_SHA256", "HMAC_SHA384", "HMAC_SHA512"})
_ECC = frozenset({"ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521"})
_RSA = frozenset({"RSA_2048", "RSA_3072", "RSA_4096"})

_WRAPPING_MODES = frozenset("BEDN")
_DERIVATION_MODES = frozenset("XN")
_MAC_MODES = frozenset("CGVN")

# KeyUsage -> (key classes, algorithms, allowed mode codes). UG keys-validattributes.
# M7 is TDES/AES in the UG table and HMAC in its create-keys example: both allowed.
# S0 PUBLIC_KEY imports are Verify only (checked separately).
_SYMMETRIC = frozenset({"SYMMETRIC_KEY"})
_RULES: dict[str, tuple[frozenset[str], frozenset[str], frozenset[str]]] = {
    "TR31_K0_KEY_ENCRYPTION_KEY": (_SYMMETRIC, _TDES | _AES, _WRAPPING_MODES),
    "TR31_K1_KEY_BLOCK_PROTECTION_KEY": (_SYMMETRIC, _TDES | _AES, _WRAPPING_MODES),
    "TR31_P0_PIN_ENCRYPTION_KEY": (_SYMMETRIC, _TDES | _AES, _WRAPPING_MODES),
    "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY": (_SYMMETRIC, _TDES | _AES, _WRAPPING_MODES),
    "TR31_B0_BASE_DERIVATION_KEY": (_SYMMETRIC, _TDES | _AES, _DERIVATION_MODES),
    "TR31_E0_EMV_MKEY_APP_CRYPTOGRAMS": (_SYMMETRIC, _TDES | _AES, _DERIVATION_MODES),
    "TR31_E1_EMV_MKEY_CONFIDENTIALITY": (_SYMMETRIC, _TDES | _AES, _DERIVATION_MODES),
    "TR31_E2_EMV_MKEY_INTEGRITY": (_SYMMETRIC, _TDES | _AES, _DERIVATION_MODES),
    "TR31_E4_EMV_MKEY_DYNAMIC_NUMBERS": (_SYMMETRIC, _TDES | _AES, _DERIVATION_MODES),
    "TR31_E5_EMV_MKEY_CARD_PERSONALIZATION": (_SYMMETRIC, _TDES | _AES, _DERIVATION_MODES),
    "TR31_E6_EMV_MKEY_OTHER": (_SYMMETRIC, _TDES | _AES, _DERIVATION_MODES),
    "TR31_C0_CARD_VERIFICATION_KEY": (_SYMMETRIC, _TDES | _AES, _MAC_MODES),
    "TR31_V1_IBM3624_PIN_VERIFICATION_KEY": (_SYMMETRIC, _TDES | _AES, _MAC_MODES),
    "TR31_V2_VISA_PIN_VERIFICATION_KEY": (_SYMMETRIC, _TDES | _AES, _MAC_MODES),
    "TR31_P1_PIN_GENERATION_KEY": (_SYMMETRIC, _TDES | _AES, _MAC_MODES),
    "TR31_M6_ISO_9797_5_CMAC_KEY": (_SYMMETRIC, _TDES | _AES, _MAC_MODES),
    "TR31_M7_HMAC_KEY": (_SYMMETRIC, _TDES | _AES | _HMAC, _MAC_MODES),
    "TR31_M0_ISO_16609_MAC_KEY": (_SYMMETRIC, _TDES, _MAC_MODES),
    "TR31_M1_ISO_9797_1_MAC_KEY": (_SYMMETRIC, _TDES, _MAC_MODES),
    "TR31_M3_ISO_9797_3_MAC_KEY": (_SYMMETRIC, _TDES, _MAC_MODES),
    "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT": (
        frozenset({"ASYMMETRIC_KEY_PAIR", "PUBLIC_KEY"}),
        _ECC,
        frozenset("X"),
    ),
    "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE": (
        frozenset({"ASYMMETRIC_KEY_PAIR", "PUBLIC_KEY"}),
        _RSA | _ECC,
        frozenset("SV"),
    ),
}


def normalize_key_usage(usage: str) -> str:
    """ "K0" or "TR31_K0_KEY_ENCRYPTION_KEY" -> "TR31_K0_KEY_ENCRYPTION_KEY"."""
    if usage in KEY_USAGES:
        return usage
    if usage in USAGE_NAMES:
        return USAGE_NAMES[usage]
    raise InputError(
        f"unknown key usage {usage!r}: use a TR-31 code such as K0 or APC's name such as "
        "TR31_K0_KEY_ENCRYPTION_KEY"
    )


def modes_from_code(code: str) -> dict[str, bool]:
    """A TR-31 mode of use code as APC's KeyModesOfUse (all nine flags)."""
    try:
        flags = MODES[code]
    except KeyError:
        raise InputError(
            f"mode of use {code!r} is not one APC supports: expected one of {''.join(MODES)}"
        ) from None
    return {flag: flag in flags for flag in MODE_FLAGS}


def code_from_modes(modes: Mapping[str, bool]) -> str:
    """APC's KeyModesOfUse as a TR-31 mode of use code ({Encrypt, Wrap} -> "E")."""
    unknown = sorted(set(modes) - set(MODE_FLAGS))
    if unknown:
        raise InputError(f"unknown KeyModesOfUse flag(s): {', '.join(unknown)}")
    flags = frozenset(flag for flag, on in modes.items() if on)
    try:
        return _CODE_FOR_FLAGS[flags]
    except KeyError:
        shown = ", ".join(sorted(flags)) or "none"
        raise InputError(
            f"KeyModesOfUse {{{shown}}} has no TR-31 mode of use: APC accepts "
            "{Encrypt,Decrypt,Wrap,Unwrap}, {Encrypt,Wrap}, {Decrypt,Unwrap}, {DeriveKey}, "
            "{Generate}, {Verify}, {Generate,Verify}, {Sign} or {NoRestrictions}"
        ) from None


def validate_key_attributes(attrs: Mapping[str, object]) -> None:
    """Raise ``InputError`` for a KeyAttributes combination APC rejects (spec section 4)."""
    usage = attrs.get("KeyUsage")
    key_class = attrs.get("KeyClass")
    algorithm = attrs.get("KeyAlgorithm")
    modes = attrs.get("KeyModesOfUse")
    if not isinstance(usage, str) or usage not in KEY_USAGES:
        raise InputError(f"KeyUsage {usage!r} is not an APC key usage")
    if usage not in _RULES:
        raise InputError(f"KeyUsage {usage} is not supported by apckx")
    classes, algorithms, mode_codes = _RULES[usage]
    if key_class not in classes:
        raise InputError(
            f"KeyClass {key_class!r} is not valid for {usage}: use {' or '.join(sorted(classes))}"
        )
    if algorithm not in algorithms:
        raise InputError(
            f"KeyAlgorithm {algorithm!r} is not valid for {usage}: "
            f"use one of {', '.join(sorted(algorithms))}"
        )
    if not isinstance(modes, Mapping):
        raise InputError("KeyModesOfUse must be a mapping of flag names to booleans")
    code = code_from_modes(modes)
    if code not in mode_codes:
        allowed = ", ".join(
            "{" + ",".join(f for f in MODE_FLAGS if f in MODES[c]) + "}" for c in sorted(mode_codes)
        )
        raise InputError(f"KeyModesOfUse for {usage} must be one of {allowed}")
    if (
        usage == "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE"
        and key_class == "PUBLIC_KEY"
        and code != "V"
    ):
        raise InputError("an S0 PUBLIC_KEY (certificate) can only have KeyModesOfUse {Verify}")


def check_wrapping_strength(kbpk_algorithm: str, key_algorithm: str) -> None:
    """Raise ``StrengthError`` unless ``kbpk_algorithm`` may protect ``key_algorithm``.

    UG keys-importexport: the wrapping key must be at least as strong as the wrapped key
    (TDES_2KEY protects only TDES_2KEY; TDES_3KEY no AES; AES_128 up to AES_128 ...).
    """
    if kbpk_algorithm not in KEY_ALGORITHMS or not (
        is_tdes(kbpk_algorithm) or is_aes(kbpk_algorithm)
    ):
        raise InputError(f"a key block protection key must be TDES or AES (got {kbpk_algorithm!r})")
    if strength_bits(key_algorithm) > strength_bits(kbpk_algorithm):
        raise StrengthError(
            f"{kbpk_algorithm} ({strength_bits(kbpk_algorithm)}-bit strength) cannot protect "
            f"a {key_algorithm} key ({strength_bits(key_algorithm)}-bit): use a wrapping key "
            "at least as strong as the key it wraps"
        )


def default_kcv_algorithm(key_algorithm: str) -> str:
    """APC's default KeyCheckValueAlgorithm: ANSI_X9_24 for TDES, CMAC for AES, HMAC."""
    if is_tdes(key_algorithm):
        return "ANSI_X9_24"
    if is_aes(key_algorithm):
        return "CMAC"
    if is_hmac(key_algorithm):
        return "HMAC"
    raise InputError(f"no symmetric KCV algorithm for {key_algorithm!r}")
