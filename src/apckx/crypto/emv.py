"""EMV key derivation, application cryptograms and secure messaging (pure, on pyemv).

The pieces APC's EMV operations are made of, each named after what it computes:

- ICC master keys from an issuer master key: :func:`derive_icc_master_key` with APC's
  ``MajorKeyDerivationMode`` (``EMV_OPTION_A`` / ``EMV_OPTION_B``; EMV 4.3 Book 2 Annex A1.4).
- Session keys from an ICC master key: :func:`derive_session_key`, one function for every
  derivation APC names (the ``SESSION_KEY_DERIVATIONS`` table). The data plane's EMV MAC
  (``EmvMac``) and EMV encryption (``EmvEncryptionAttributes``) call this too.
- ARQC generation and verification (ISO 9797-1 algorithm 3 over the caller's data; the
  comparison is constant time), ARPC method 1 (ARC) and method 2 (CSU, proprietary data).
- Secure messaging for PIN change (GenerateMacEmvPinChange): the issuer-script MAC, the ISO 9564
  format 2 and VIS PIN blocks, and the PIN block enciphered for the card under SK-SMC.

Everything is bytes in, bytes out; PAN and PAN sequence numbers are digit strings as APC sends
them. Errors are :class:`apckx.errors.InputError` with a message that names the bad value's role
and never echoes key material.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Final

from psec import des as _des
from pyemv import ac as _ac
from pyemv import kd as _kd
from pyemv import mac as _mac
from pyemv import sm as _sm
from pyemv import tools as _tools

from apckx.errors import InputError

__all__ = [
    "MAJOR_KEY_DERIVATION_MODES",
    "SESSION_KEY_DERIVATIONS",
    "decrypt_pin_block_from_card",
    "derive_icc_master_key",
    "derive_session_key",
    "encrypt_pin_block_for_card",
    "format_iso2_pin_block",
    "format_vis_pin_block",
    "generate_arpc_method1",
    "generate_arpc_method2",
    "generate_arqc",
    "generate_script_mac",
    "pad_iso7816",
    "verify_arqc",
]

MAJOR_KEY_DERIVATION_MODES: Final = ("EMV_OPTION_A", "EMV_OPTION_B")

#: APC's session-key derivations, by the names its models use: VerifyAuthRequestCryptogram's
#: ``SessionKeyDerivationAttributes`` members (EmvCommon, Mastercard, Emv2000, Amex, Visa,
#: UnionPay) and EmvMac's ``SessionKeyDerivationMode`` values (EMV_COMMON_SESSION_KEY,
#: MASTERCARD_SESSION_KEY, EMV2000, AMEX, VISA, UNION_PAY). Every spelling maps to one
#: canonical name (``UNIONPAY`` is kept for callers that used it).
SESSION_KEY_DERIVATIONS: Final[dict[str, str]] = {
    "EmvCommon": "EMV_COMMON_SESSION_KEY",
    "EMV_COMMON_SESSION_KEY": "EMV_COMMON_SESSION_KEY",
    "Mastercard": "MASTERCARD_SESSION_KEY",
    "MASTERCARD_SESSION_KEY": "MASTERCARD_SESSION_KEY",
    "Emv2000": "EMV2000",
    "EMV2000": "EMV2000",
    "Amex": "AMEX",
    "AMEX": "AMEX",
    "Visa": "VISA",
    "VISA": "VISA",
    "UnionPay": "UNIONPAY",
    "UNION_PAY": "UNIONPAY",
    "UNIONPAY": "UNIONPAY",
}

_BLOCK = 8


def _check_tdes_double(key: bytes, what: str) -> None:
    if len(key) != 16:
        raise InputError(f"{what} must be a 16-byte TDES_2KEY key (got {len(key)} bytes)")


def _check_digits(text: str, what: str, lengths: range) -> None:
    if not text.isdigit() or not text.isascii() or len(text) not in lengths:
        raise InputError(
            f"{what} must be {lengths.start}..{lengths.stop - 1} decimal digits (got {len(text)})"
        )


def _check_fixed(value: bytes | None, length: int, what: str, derivation: str) -> bytes:
    if value is None:
        raise InputError(f"the {derivation} session-key derivation needs the {what}")
    if len(value) != length:
        raise InputError(f"{what} must be {length} bytes (got {len(value)})")
    return value


# --- ICC master keys (EMV 4.3 Book 2 Annex A1.4)


def derive_icc_master_key(
    issuer_master_key: bytes,
    pan: str,
    pan_sequence_number: str = "00",
    *,
    mode: str = "EMV_OPTION_A",
) -> bytes:
    """The ICC master key (UDK) of one card, with odd parity.

    ``EMV_OPTION_A``: Y = the rightmost 16 digits of PAN||PSN; MK = TDES(IMK, Y) ||
    TDES(IMK, Y xor FF..FF). ``EMV_OPTION_B`` (PANs of 17..19 digits; shorter PANs fall back to
    Option A, as EMV says): Y is decimalized from SHA-1 of PAN||PSN.
    """
    _check_tdes_double(issuer_master_key, "the issuer master key")
    _check_digits(pan, "the PAN", range(1, 20))
    _check_digits(pan_sequence_number, "the PAN sequence number", range(2, 3))
    if mode == "EMV_OPTION_A":
        return bytes(_kd.derive_icc_mk_a(issuer_master_key, pan, pan_sequence_number))
    if mode == "EMV_OPTION_B":
        return bytes(_kd.derive_icc_mk_b(issuer_master_key, pan, pan_sequence_number))
    raise InputError(
        f"major key derivation mode must be one of {', '.join(MAJOR_KEY_DERIVATION_MODES)}"
    )


# --- session keys


def _derive_common(
    icc_mk: bytes, atc: bytes | None, un: bytes | None, ac: bytes | None, name: str
) -> bytes:
    # R = ATC || 00*6 for application cryptograms; R = the ARQC for secure messaging
    # (EMV 4.3 Book 2 Annex A1.3.1).
    if ac is not None:
        r = _check_fixed(ac, 8, "application cryptogram", name)
    else:
        r = _check_fixed(atc, 2, "application transaction counter", name) + bytes(6)
    return bytes(_kd.derive_common_sk(icc_mk, r))


def _derive_mastercard(
    icc_mk: bytes, atc: bytes | None, un: bytes | None, ac: bytes | None, name: str
) -> bytes:
    # Mastercard SKD (M/Chip): R = ATC || 00 00 || UN for cryptograms; for secure messaging
    # M/Chip uses R = the ARQC, as the common session key does.
    if ac is not None:
        r = _check_fixed(ac, 8, "application cryptogram", name)
    else:
        atc_b = _check_fixed(atc, 2, "application transaction counter", name)
        r = atc_b + bytes(2) + _check_fixed(un, 4, "unpredictable number", name)
    return bytes(_kd.derive_common_sk(icc_mk, r))


def _derive_emv2000(
    icc_mk: bytes, atc: bytes | None, un: bytes | None, ac: bytes | None, name: str
) -> bytes:
    # EMV2000 tree (EMV 2000 Book 2 Annex A1.3): height 8, branch factor 4, zero IV.
    atc_b = _check_fixed(atc, 2, "application transaction counter", name)
    return bytes(_kd.derive_emv2000_tree_sk(icc_mk, atc_b))


def _derive_visa(
    icc_mk: bytes, atc: bytes | None, un: bytes | None, ac: bytes | None, name: str
) -> bytes:
    # Cryptograms (CVN10): no session key, the ICC MK is used directly. Secure messaging (VIS):
    # SK = MK xor (00*6 || ATC) | MK xor (00*6 || ATC xor FFFF).
    if atc is None:
        return icc_mk
    return bytes(
        _kd.derive_visa_sm_sk(icc_mk, _check_fixed(atc, 2, "application transaction counter", name))
    )


_SESSION_KEY_TABLE: Final[
    dict[str, Callable[[bytes, bytes | None, bytes | None, bytes | None, str], bytes]]
] = {
    "EMV_COMMON_SESSION_KEY": _derive_common,
    "MASTERCARD_SESSION_KEY": _derive_mastercard,
    "EMV2000": _derive_emv2000,
    "AMEX": _derive_visa,
    "VISA": _derive_visa,
    "UNIONPAY": _derive_common,
}


def derive_session_key(
    icc_master_key: bytes,
    derivation: str,
    *,
    atc: bytes | None = None,
    unpredictable_number: bytes | None = None,
    application_cryptogram: bytes | None = None,
) -> bytes:
    """The session key for one transaction, from the card's ICC master key.

    ``derivation`` is any key of :data:`SESSION_KEY_DERIVATIONS`. What each one needs:

    - ``EMV_COMMON_SESSION_KEY`` / ``EmvCommon`` (and ``UnionPay``, which uses the same TDES
      derivation): ``atc`` (R = ATC||000000000000) or ``application_cryptogram`` (R = ARQC, the
      secure-messaging keys).
    - ``MASTERCARD_SESSION_KEY`` / ``Mastercard``: ``atc`` and ``unpredictable_number``
      (R = ATC||0000||UN), or ``application_cryptogram`` (R = ARQC).
    - ``EMV2000``: ``atc`` (EMV2000 tree, height 8, branch factor 4, zero IV).
    - ``VISA`` / ``AMEX``: with no ``atc`` the ICC master key itself (Visa CVN10; what AWS's
      sample shows for Amex); with ``atc``, the VIS secure-messaging key MK xor ATC.
    """
    _check_tdes_double(icc_master_key, "the ICC master key")
    canonical = SESSION_KEY_DERIVATIONS.get(derivation)
    if canonical is None:
        names = ", ".join(sorted(set(SESSION_KEY_DERIVATIONS.values())))
        raise InputError(f"unknown session-key derivation {derivation!r}: use one of {names}")
    return _SESSION_KEY_TABLE[canonical](
        icc_master_key, atc, unpredictable_number, application_cryptogram, canonical
    )


# --- application cryptograms


def generate_arqc(key: bytes, transaction_data: bytes) -> bytes:
    """The 8-byte ARQC: ISO 9797-1 algorithm 3 (retail MAC) under ``key`` (the session key, or
    the ICC MK for derivations that use it directly).

    APC expects the caller to pad the transaction data; data that is not a whole number of
    8-byte blocks is zero-padded (ISO 9797-1 method 1), which leaves aligned data unchanged.
    """
    _check_tdes_double(key, "the cryptogram key")
    if not transaction_data:
        raise InputError("transaction data must not be empty")
    return bytes(_ac.generate_ac(key, transaction_data, _ac.PaddingType.VISA))


def verify_arqc(key: bytes, transaction_data: bytes, arqc: bytes) -> bool:
    """True when ``arqc`` is the cryptogram of ``transaction_data`` (constant-time compare)."""
    if len(arqc) != 8:
        raise InputError(f"the ARQC must be 8 bytes (got {len(arqc)})")
    return hmac.compare_digest(generate_arqc(key, transaction_data), arqc)


def generate_arpc_method1(key: bytes, arqc: bytes, auth_response_code: bytes) -> bytes:
    """ARPC method 1 (EMV 4.3 Book 2 8.2.1): TDES(key, ARQC xor (ARC || 00*6)), 8 bytes."""
    _check_tdes_double(key, "the ARPC key")
    if len(arqc) != 8 or len(auth_response_code) != 2:
        raise InputError("ARPC method 1 needs an 8-byte ARQC and a 2-byte auth response code")
    return bytes(_ac.generate_arpc_1(key, arqc, auth_response_code))


def generate_arpc_method2(
    key: bytes, arqc: bytes, card_status_update: bytes, proprietary_data: bytes = b""
) -> bytes:
    """ARPC method 2 (EMV 4.3 Book 2 8.2.2): the first 4 bytes of ISO 9797-1 algorithm 3 with
    padding method 2 over ARQC || CSU || proprietary authentication data (0..8 bytes)."""
    _check_tdes_double(key, "the ARPC key")
    if len(arqc) != 8 or len(card_status_update) != 4:
        raise InputError("ARPC method 2 needs an 8-byte ARQC and a 4-byte card status update")
    if len(proprietary_data) > 8:
        raise InputError(
            f"proprietary authentication data must be 0..8 bytes (got {len(proprietary_data)})"
        )
    return bytes(_ac.generate_arpc_2(key, arqc, card_status_update, proprietary_data or None))


# --- secure messaging (issuer scripts, PIN change)


def generate_script_mac(sk_smi: bytes, message: bytes, length: int = 8) -> bytes:
    """Issuer-script MAC (EMV 4.3 Book 2 9.2.3): ISO 9797-1 algorithm 3, padding method 2,
    under the integrity session key, over the command header || (enciphered) data."""
    _check_tdes_double(sk_smi, "the secure-messaging integrity key")
    if not 4 <= length <= 8:
        raise InputError(f"the script MAC length must be 4..8 bytes (got {length})")
    return bytes(_sm.generate_command_mac(sk_smi, message, length))


def _check_pin(pin: str, what: str = "the PIN") -> None:
    if not pin.isascii() or not pin.isdigit() or not 4 <= len(pin) <= 12:
        raise InputError(f"{what} must be 4..12 decimal digits")


def format_iso2_pin_block(pin: str) -> bytes:
    """ISO 9564 format 2 (the ICC offline-PIN format): 2 || N || PIN || F fill."""
    _check_pin(pin)
    return bytes(_sm.format_iso9564_2_pin_block(pin))


def format_vis_pin_block(icc_mk_ac: bytes, pin: str, current_pin: str | None = None) -> bytes:
    """The VIS PIN block: (0 || N || PIN || F fill) xor (00*4 || ICC MK-AC bytes 4..7), xor the
    current PIN (left-justified, zero-filled) when one is given."""
    _check_tdes_double(icc_mk_ac, "the ICC master key for application cryptograms")
    _check_pin(pin)
    if current_pin is not None:
        _check_pin(current_pin, "the current PIN")
    return bytes(_sm.format_vis_pin_block(icc_mk_ac, pin, current_pin))


def pad_iso7816(data: bytes) -> bytes:
    """ISO/IEC 7816-4 padding (= ISO 9797-1 method 2): 80 then zeros to a whole 8-byte block."""
    return bytes(_mac.pad_iso9797_2(data, _BLOCK))


def encrypt_pin_block_for_card(
    sk_smc: bytes,
    pin_block: bytes,
    *,
    mode: str = "CBC",
    padding: str = "ISO_IEC_7816_4",
    length_position: str = "NONE",
) -> bytes:
    """The PIN block enciphered for the card under the confidentiality session key.

    The three APC parameters (EmvCommon's ``Mode``, ``PinBlockPaddingType`` and
    ``PinBlockLengthPosition``) span the schemes pyemv names: EMV (CBC, ISO_IEC_7816_4, NONE),
    Mastercard (CBC, NO_PADDING for an aligned block) and VIS (ECB, ISO_IEC_7816_4,
    FRONT_OF_PIN_BLOCK: a length byte first). TDES with a zero IV.
    """
    _check_tdes_double(sk_smc, "the secure-messaging confidentiality key")
    data = pin_block
    if length_position == "FRONT_OF_PIN_BLOCK":
        data = bytes([len(pin_block)]) + data
    elif length_position != "NONE":
        raise InputError("PinBlockLengthPosition must be NONE or FRONT_OF_PIN_BLOCK")
    if padding == "ISO_IEC_7816_4":
        data = pad_iso7816(data)
    elif padding != "NO_PADDING":
        raise InputError("PinBlockPaddingType must be NO_PADDING or ISO_IEC_7816_4")
    if len(data) % _BLOCK:
        raise InputError(
            "the PIN block is not a whole number of 8-byte blocks: use ISO_IEC_7816_4 padding"
        )
    if mode == "CBC":
        return bytes(_tools.encrypt_tdes_cbc(sk_smc, bytes(_BLOCK), data))
    if mode == "ECB":
        return bytes(_tools.encrypt_tdes_ecb(sk_smc, data))
    raise InputError("Mode must be ECB or CBC")


def decrypt_pin_block_from_card(sk_smc: bytes, ciphertext: bytes, *, mode: str = "CBC") -> bytes:
    """TDES-decipher a PIN-change payload (for tests and round trips); padding is left on."""
    _check_tdes_double(sk_smc, "the secure-messaging confidentiality key")
    if not ciphertext or len(ciphertext) % _BLOCK:
        raise InputError("the ciphertext must be a whole number of 8-byte blocks")
    if mode == "CBC":
        return bytes(_des.decrypt_tdes_cbc(sk_smc, bytes(_BLOCK), ciphertext))
    return bytes(_des.decrypt_tdes_ecb(sk_smc, ciphertext))
