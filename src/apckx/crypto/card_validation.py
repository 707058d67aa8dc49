"""Card validation data as APC's Generate/VerifyCardValidationData compute it (pure).

- Visa CVV / CVV2 / iCVV (CardVerificationValue1/2; Mastercard's CVC is the same
  algorithm): PAN || expiry || service code, zero-filled to 32 digits; DES(A, block 1) xor
  block 2, then TDES(A||B); decimalized. CVV2 uses service code 000, iCVV 999. Built on psec's
  DES primitives; the decimalization takes the digits left to right, then the letters A-F
  as 0-5, so ``ValidationDataLength`` 3..5 is honoured.
- Mastercard dynamic CVC3 (DynamicCardVerificationCode): pyemv's CVC3 under the card's
  ICC key (EMV Option A from the issuer key), the rightmost N digits.
- Visa dCVV (DynamicCardVerificationValue): the CVV algorithm under the card's ICC key over
  the PAN with its first 4 digits replaced by the ATC, expiry, service code (as jPOS does
  it; its test values are our vectors; see docs/EMULATOR.md).
- American Express CSC version 1 and 2 (AmexCardSecurityCodeVersion1/2): the form public
  HSM simulators implement (inferred: see docs/EMULATOR.md); N = 5, 4 or 3 selects CSC-5,
  CSC-4 or CSC-3.

Not implemented (no public algorithm text): Discover dCVC and CardHolderVerificationValue;
:func:`check_supported` refuses them with one line that says why.

Digit strings in, digit strings out (APC's ValidationData); keys are bytes.
"""

from __future__ import annotations

import hmac
from typing import Final

from psec import des as _des
from pyemv import cvv as _pyemv_cvv

from apckx.crypto import emv
from apckx.crypto._quiet import quiet_tdes
from apckx.errors import InputError

__all__ = [
    "SUPPORTED_ATTRIBUTES",
    "UNSUPPORTED_ATTRIBUTES",
    "VALIDATION_DATA_LENGTHS",
    "check_supported",
    "generate_amex_csc",
    "generate_cvc3",
    "generate_cvv",
    "generate_cvv2",
    "generate_dcvv",
    "generate_icvv",
    "verify_validation_data",
]

#: APC's ValidationDataLength range (default 3).
VALIDATION_DATA_LENGTHS: Final = range(3, 6)
DEFAULT_VALIDATION_DATA_LENGTH: Final = 3

#: GenerationAttributes / VerificationAttributes members this module computes.
SUPPORTED_ATTRIBUTES: Final = (
    "CardVerificationValue1",
    "CardVerificationValue2",
    "DynamicCardVerificationCode",
    "DynamicCardVerificationValue",
    "AmexCardSecurityCodeVersion1",
    "AmexCardSecurityCodeVersion2",
)
#: Members with no public algorithm text: refused, never faked (docs/EMULATOR.md says what
#: was searched). The reason is the refusal's text.
UNSUPPORTED_ATTRIBUTES: Final[dict[str, str]] = {
    "CardHolderVerificationValue": (
        "the cardholder authentication verification value APC computes from an E6 EMV master "
        "key, UnpredictableNumber, PanSequenceNumber and ApplicationTransactionCounter has no "
        "public specification or implementation (AWS documents its inputs, not how they are "
        "combined)"
    ),
    "DiscoverDynamicCardVerificationCode": (
        "Discover's dCVC is defined in Discover's D-PAS and ZIP specifications, which are not "
        "public, and no public implementation or test values were found"
    ),
}


def check_supported(attribute: str) -> None:
    """Refuse a card-validation attribute this module does not compute (one line)."""
    if attribute in UNSUPPORTED_ATTRIBUTES:
        raise InputError(
            f"{attribute} is not supported by apckx: {UNSUPPORTED_ATTRIBUTES[attribute]}; "
            "apckx refuses it rather than compute a value AWS would not"
        )
    if attribute not in SUPPORTED_ATTRIBUTES:
        raise InputError(f"unknown card validation attribute {attribute!r}")


def _check_digits(text: str, what: str, lengths: range) -> None:
    if not (text.isascii() and text.isdigit()) or len(text) not in lengths:
        if lengths.stop - lengths.start == 1:
            raise InputError(f"{what} must be {lengths.start} digits (got {len(text)} characters)")
        raise InputError(
            f"{what} must be {lengths.start}..{lengths.stop - 1} digits (got {len(text)})"
        )


def _check_length(length: int) -> None:
    if length not in VALIDATION_DATA_LENGTHS:
        raise InputError(f"the validation data length must be 3..5 digits (got {length})")


def _check_double_key(key: bytes, what: str) -> None:
    if len(key) != 16:
        raise InputError(f"{what} must be a 16-byte TDES_2KEY key (got {len(key)} bytes)")


def _hex_field(text: str, what: str, width: int) -> bytes:
    if not text or len(text) > width or len(text) % 2:
        raise InputError(f"{what} must be 2..{width} hex characters, whole bytes (got {len(text)})")
    try:
        return bytes.fromhex(text.rjust(width, "0"))
    except ValueError:
        raise InputError(f"{what} must be hex (0-9, A-F)") from None


def _decimalize(block_hex: str, length: int) -> str:
    # Visa's CVV/PVV rule: the decimal digits left to right, then the letters A-F as 0-5.
    digits = [c for c in block_hex if c.isdigit()]
    letters = [str(int(c, 16) - 10) for c in block_hex if not c.isdigit()]
    return "".join((digits + letters)[:length])


def _cvv_block(cvk: bytes, data_digits: str) -> str:
    block = data_digits.ljust(32, "0")
    with quiet_tdes():
        step = _des.encrypt_tdes_ecb(cvk[:8], bytes.fromhex(block[:16]))
        step = bytes(a ^ b for a, b in zip(step, bytes.fromhex(block[16:]), strict=True))
        return bytes(_des.encrypt_tdes_ecb(cvk, step)).hex().upper()


def generate_cvv(
    cvk: bytes,
    pan: str,
    expiry: str,
    service_code: str,
    length: int = DEFAULT_VALIDATION_DATA_LENGTH,
) -> str:
    """The Visa CVV (Mastercard CVC) of a card, ``length`` digits (APC's CardVerificationValue1).

    ``expiry`` is taken as given (YYMM or MMYY, as the issuer uses it).
    """
    _check_double_key(cvk, "the card verification key")
    _check_digits(pan, "the PAN", range(12, 20))
    _check_digits(expiry, "the card expiry date", range(4, 5))
    _check_digits(service_code, "the service code", range(3, 4))
    _check_length(length)
    return _decimalize(_cvv_block(cvk, pan + expiry + service_code), length)


def generate_cvv2(
    cvk: bytes, pan: str, expiry: str, length: int = DEFAULT_VALIDATION_DATA_LENGTH
) -> str:
    """CVV2 (CardVerificationValue2): the CVV with service code 000."""
    return generate_cvv(cvk, pan, expiry, "000", length)


def generate_icvv(
    cvk: bytes, pan: str, expiry: str, length: int = DEFAULT_VALIDATION_DATA_LENGTH
) -> str:
    """iCVV (the chip's track-2 CVV): the CVV with service code 999."""
    return generate_cvv(cvk, pan, expiry, "999", length)


def generate_cvc3(
    issuer_cvc3_key: bytes,
    pan: str,
    pan_sequence_number: str,
    track_data: bytes,
    atc_hex: str,
    unpredictable_number_hex: str,
    length: int = DEFAULT_VALIDATION_DATA_LENGTH,
    *,
    major_key_derivation_mode: str = "EMV_OPTION_A",
) -> str:
    """Mastercard dynamic CVC3 (DynamicCardVerificationCode): the rightmost ``length`` digits.

    The card's ICC CVC3 key is derived from the issuer key (EMV Option A by default); the
    IVCVC3 is the last 2 bytes of ISO 9797-1 algorithm 3 over ``track_data`` and the CVC3 the
    last 2 bytes of TDES(IVCVC3 || UN || ATC), as a 5-digit number (pyemv). The ATC (2..4
    hex) and UN (2..8 hex) are right-justified in 2 and 4 bytes.
    """
    _check_double_key(issuer_cvc3_key, "the issuer CVC3 key")
    _check_length(length)
    if not track_data:
        raise InputError("the track data must not be empty")
    atc = _hex_field(atc_hex, "the application transaction counter", 4)
    un = _hex_field(unpredictable_number_hex, "the unpredictable number", 8)
    with quiet_tdes():
        icc_key = emv.derive_icc_master_key(
            issuer_cvc3_key, pan, pan_sequence_number, mode=major_key_derivation_mode
        )
        full = str(_pyemv_cvv.generate_cvc3(icc_key, track_data, atc, un)).zfill(5)
    return full[-length:]


def generate_dcvv(
    issuer_master_key: bytes,
    pan: str,
    pan_sequence_number: str,
    expiry: str,
    service_code: str,
    atc_hex: str,
    length: int = DEFAULT_VALIDATION_DATA_LENGTH,
    *,
    major_key_derivation_mode: str = "EMV_OPTION_A",
) -> str:
    """Visa dCVV (DynamicCardVerificationValue), as jPOS computes it
    (``JCESecurityModule.calculatedCVV``; its published test values are our vectors).

    The card's ICC key is derived from the issuer master key (EMV Option A by default) with
    the PAN and PAN sequence number; the dCVV is the CVV algorithm under that key over the
    PAN whose leftmost 4 digits are replaced by the ATC (2 bytes, 4 hex digits), the expiry
    and the service code. The ATC (2..4 hex, whole bytes) is right-justified in 2 bytes.
    """
    _check_double_key(issuer_master_key, "the issuer master key")
    _check_digits(pan, "the PAN", range(12, 20))
    _check_digits(expiry, "the card expiry date", range(4, 5))
    _check_digits(service_code, "the service code", range(3, 4))
    _check_length(length)
    atc = _hex_field(atc_hex, "the application transaction counter", 4).hex().upper()
    with quiet_tdes():
        icc_key = emv.derive_icc_master_key(
            issuer_master_key, pan, pan_sequence_number, mode=major_key_derivation_mode
        )
    # The altered PAN keeps the ATC's hex letters, if any, as nibbles of the block.
    block = _cvv_block(icc_key, atc + pan[4:] + expiry + service_code)
    return _decimalize(block, length)


def _amex_decimalize(block_hex: str) -> str:
    # The 12 CSC digits: the decimal digits left to right; if fewer than 12, the letters
    # left to right, A..F -> 1..6, and from the 6th position on, shifted by 5 (mod 10).
    digits = "".join(c for c in block_hex if c.isdigit())
    position = 0
    while len(digits) < 12:
        char = block_hex[position]
        if not char.isdigit():
            value = ord(char) - 64
            if position >= 5:
                value = (value + 5) % 10
            digits += str(value % 10)
        position += 1
    return digits[:12]


def generate_amex_csc(
    csc_key: bytes,
    pan: str,
    expiry: str,
    *,
    version: int,
    service_code: str | None = None,
    length: int = DEFAULT_VALIDATION_DATA_LENGTH,
) -> str:
    """American Express CSC, inferred form (docs/EMULATOR.md); ``length`` 5, 4 or 3 gives
    CSC-5, CSC-4 or CSC-3.

    The 16-digit field is expiry || PAN digits 3..14 for a PAN starting 37, and PAN digits
    3..14 || expiry for one starting 34. Version 1: TDES-ECB of the field. Version 2: the
    field || service code, zero-filled to 32 digits, TDES-ECB, its second block. The 12
    decimalized digits are CSC-5 || CSC-4 || CSC-3.
    """
    _check_double_key(csc_key, "the CSC key")
    _check_digits(pan, "the PAN", range(15, 16))
    _check_digits(expiry, "the card expiry date", range(4, 5))
    _check_length(length)
    if pan.startswith("37"):
        field = expiry + pan[2:14]
    elif pan.startswith("34"):
        field = pan[2:14] + expiry
    else:
        raise InputError("an American Express PAN starts with 34 or 37")
    if version == 1:
        with quiet_tdes():
            block = bytes(_des.encrypt_tdes_ecb(csc_key, bytes.fromhex(field)))
    elif version == 2:
        if service_code is None:
            raise InputError("CSC version 2 needs the service code")
        _check_digits(service_code, "the service code", range(3, 4))
        data = (field + service_code).ljust(32, "0")
        with quiet_tdes():
            block = bytes(_des.encrypt_tdes_ecb(csc_key, bytes.fromhex(data)))[8:]
    else:
        raise InputError(f"the Amex CSC version must be 1 or 2 (got {version})")
    digits = _amex_decimalize(block.hex().upper())
    offset = {5: 0, 4: 5, 3: 9}[length]
    return digits[offset : offset + length]


def verify_validation_data(computed: str, given: str) -> bool:
    """True when ``given`` equals ``computed`` (constant-time; lengths must match)."""
    return hmac.compare_digest(computed.encode("ascii"), given.encode("ascii"))
