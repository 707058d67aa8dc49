"""AS2805 (Australian node-to-node) key management and MAC, pure, written from what AWS documents.

AS2805 is a paid Standards Australia text and no public library implements it. What is here
follows AWS's user guide (``as2805.*`` pages: KEK validation, working keys, PIN translation, MAC)
and the node-to-node sample that runs against the real service (KEK validation: KRs under the
KEK's 0x82 variant, KRr = the one's complement of the random key under the 0x84 variant, TDES-CBC
with a zero IV; working-key cryptograms: TDES-CBC, zero IV, under KEK xor 28C0../24C0../22C0..;
the PIN key of a transaction: OWF(KPP, STAN || amount)). Every choice AWS does not document is
listed in docs/EMULATOR.md ("AS2805"), and marked ``inferred`` below.

- Variants: a variant is a byte pattern XORed over the whole KEK (:func:`apply_variant`).
- KEK validation (AS2805.6.3): :func:`generate_kek_validation_request`,
  :func:`generate_kek_validation_response`, :func:`verify_kek_validation`.
- Key cryptograms (``As2805KeyCryptogram`` in ImportKey/ExportKey): :func:`wrap_key_cryptogram`,
  :func:`unwrap_key_cryptogram`, one variant per key type (:data:`KEY_VARIANTS`).
- The per-transaction PIN key (AS2805.6.6.3, ``IncomingAs2805Attributes``):
  :func:`derive_kpe` with the one-way function :func:`one_way_function`.
- The ``AS2805_4_1`` MAC: :func:`generate_as2805_mac`, :func:`verify_as2805_mac`.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from typing import Final

from psec import des as _des
from psec import mac as _mac

from apckx.errors import InputError

__all__ = [
    "KEY_VARIANTS",
    "KEY_VARIANT_USAGES",
    "KRR_VARIANTS",
    "KRS_VARIANTS",
    "RANDOM_KEY_LENGTHS",
    "apply_variant",
    "derive_kpe",
    "generate_as2805_mac",
    "generate_kek_validation_request",
    "generate_kek_validation_response",
    "invert_random_key",
    "kpe_derivation_data",
    "one_way_function",
    "unwrap_key_cryptogram",
    "verify_as2805_mac",
    "verify_kek_validation",
    "wrap_key_cryptogram",
]

Rng = Callable[[int], bytes]

#: ``As2805KeyVariant`` -> the two-byte pattern XORed over the KEK, repeated (AWS's node-to-node
#: sample 2_1, run against the service: 28C0, 24C0, 22C0). 00C0 for the terminal major key is
#: inferred: the sample has no such key, and the pattern is the type's number then C0 like the
#: others.
KEY_VARIANTS: Final[dict[str, bytes]] = {
    "TERMINAL_MAJOR_KEY_VARIANT_00": b"\x00\xc0",
    "PIN_ENCRYPTION_KEY_VARIANT_28": b"\x28\xc0",
    "MESSAGE_AUTHENTICATION_KEY_VARIANT_24": b"\x24\xc0",
    "DATA_ENCRYPTION_KEY_VARIANT_22": b"\x22\xc0",
}

#: ``As2805KeyVariant`` -> the APC key usage of the key under import/export (AWS UG as2805 page).
KEY_VARIANT_USAGES: Final[dict[str, str]] = {
    "TERMINAL_MAJOR_KEY_VARIANT_00": "TR31_K0_KEY_ENCRYPTION_KEY",
    "PIN_ENCRYPTION_KEY_VARIANT_28": "TR31_P0_PIN_ENCRYPTION_KEY",
    "MESSAGE_AUTHENTICATION_KEY_VARIANT_24": "TR31_M0_ISO_16609_MAC_KEY",
    "DATA_ENCRYPTION_KEY_VARIANT_22": "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY",
}

#: ``RandomKeySendVariantMask`` -> the pattern XORed over the KEK for KRs (the AWS sample uses
#: 0x82 in every byte for VARIANT_MASK_82; VARIANT_MASK_82C0 as the two-byte pattern 82C0 is
#: inferred) and for KRr (0x84 in the sample; 84C0 inferred for the 82C0 mask).
KRS_VARIANTS: Final[dict[str, bytes]] = {
    "VARIANT_MASK_82": b"\x82",
    "VARIANT_MASK_82C0": b"\x82\xc0",
}
KRR_VARIANTS: Final[dict[str, bytes]] = {
    "VARIANT_MASK_82": b"\x84",
    "VARIANT_MASK_82C0": b"\x84\xc0",
}

#: Random key length by ``DeriveKeyAlgorithm`` (``RandomKeyMaxLength`` may lower it).
RANDOM_KEY_LENGTHS: Final[dict[str, int]] = {"TDES_2KEY": 16, "TDES_3KEY": 24}
_MAX_LENGTHS: Final[dict[str, int]] = {"BYTES_8": 8, "BYTES_16": 16, "BYTES_24": 24}

_ZERO_IV = bytes(8)


def _check_kek(kek: bytes) -> None:
    if len(kek) not in (16, 24):
        raise InputError("an AS2805 KEK is TDES_2KEY or TDES_3KEY (16 or 24 bytes)")


def _check_blocks(data: bytes, what: str) -> None:
    if len(data) not in (8, 16, 24):
        raise InputError(f"{what} must be 8, 16 or 24 bytes (got {len(data)})")


def apply_variant(kek: bytes, pattern: bytes) -> bytes:
    """KEK xor the variant pattern repeated over the KEK's length."""
    _check_kek(kek)
    return bytes(b ^ pattern[i % len(pattern)] for i, b in enumerate(kek))


def _variant(table: dict[str, bytes], name: str, what: str) -> bytes:
    try:
        return table[name]
    except KeyError:
        raise InputError(f"unknown {what} {name!r}: use one of {', '.join(table)}") from None


# --- KEK validation (AS2805.6.3) ---------------------------------------------------------------


def invert_random_key(random_key: bytes) -> bytes:
    """The one's complement of the random key, each byte then set to odd parity."""
    return bytes(_des.adjust_key_parity(bytes(~b & 0xFF for b in random_key)))


def _krr(kek: bytes, random_key: bytes, mask: str) -> bytes:
    key = apply_variant(kek, _variant(KRR_VARIANTS, mask, "RandomKeySendVariantMask"))
    return bytes(_des.encrypt_tdes_cbc(key, _ZERO_IV, invert_random_key(random_key)))


def _random_key_length(derive_key_algorithm: str, max_length: str | None) -> int:
    if derive_key_algorithm not in RANDOM_KEY_LENGTHS:
        raise InputError(
            f"AS2805 KEK validation derives TDES_2KEY or TDES_3KEY random keys "
            f"(got {derive_key_algorithm})"
        )
    length = RANDOM_KEY_LENGTHS[derive_key_algorithm]
    if max_length is not None:
        if max_length not in _MAX_LENGTHS:
            raise InputError(f"RandomKeyMaxLength must be one of {', '.join(_MAX_LENGTHS)}")
        length = min(length, _MAX_LENGTHS[max_length])
    return length


def generate_kek_validation_request(
    kek: bytes,
    derive_key_algorithm: str,
    mask: str,
    *,
    max_length: str | None = None,
    rng: Rng = os.urandom,
) -> tuple[bytes, bytes]:
    """(KRs, KRr) for a random key KR: KRs = TDES-CBC(KEK xor KRs-variant, KR) for the partner,
    KRr = TDES-CBC(KEK xor KRr-variant, ~KR) kept to compare with the partner's answer."""
    _check_kek(kek)
    length = _random_key_length(derive_key_algorithm, max_length)
    random_key = bytes(_des.adjust_key_parity(rng(length)))
    send_key = apply_variant(kek, _variant(KRS_VARIANTS, mask, "RandomKeySendVariantMask"))
    kr_send = bytes(_des.encrypt_tdes_cbc(send_key, _ZERO_IV, random_key))
    return kr_send, _krr(kek, random_key, mask)


def generate_kek_validation_response(kek: bytes, kr_send: bytes, mask: str) -> bytes:
    """KRr from a partner's KRs: decipher under the KRs variant, invert, encipher under KRr's."""
    _check_kek(kek)
    _check_blocks(kr_send, "RandomKeySend")
    send_key = apply_variant(kek, _variant(KRS_VARIANTS, mask, "RandomKeySendVariantMask"))
    random_key = bytes(_des.decrypt_tdes_cbc(send_key, _ZERO_IV, kr_send))
    return _krr(kek, random_key, mask)


def verify_kek_validation(expected_kr_receive: bytes, partner_kr_receive: bytes) -> bool:
    """True when the partner's KRr equals the one kept from the request (constant time)."""
    return hmac.compare_digest(expected_kr_receive, partner_kr_receive)


# --- key cryptograms (As2805KeyCryptogram) -----------------------------------------------------


def wrap_key_cryptogram(kek: bytes, key: bytes, key_variant: str) -> bytes:
    """The key enciphered under KEK xor its type's variant, TDES-CBC with a zero IV (as AWS's
    sample 2_1 unwraps what the service exports, and wraps what it imports)."""
    _check_blocks(key, "the key under a cryptogram")
    wrapping = apply_variant(kek, _variant(KEY_VARIANTS, key_variant, "As2805KeyVariant"))
    return bytes(_des.encrypt_tdes_cbc(wrapping, _ZERO_IV, key))


def unwrap_key_cryptogram(kek: bytes, cryptogram: bytes, key_variant: str) -> bytes:
    """The inverse of :func:`wrap_key_cryptogram`."""
    _check_blocks(cryptogram, "the key cryptogram")
    wrapping = apply_variant(kek, _variant(KEY_VARIANTS, key_variant, "As2805KeyVariant"))
    return bytes(_des.decrypt_tdes_cbc(wrapping, _ZERO_IV, cryptogram))


# --- the per-transaction PIN key (AS2805.6.6.3) ------------------------------------------------


def one_way_function(key: bytes, data: bytes) -> bytes:
    """The AS2805 one-way function over whole blocks, as AWS's sample 3_1 states it: M = the
    last block of TDES-CBC(key, data, zero IV); OWF = TDES-CBC(key, data, IV M) xor data."""
    _check_kek(key)
    if not data or len(data) % 8:
        raise InputError(f"the one-way function takes whole 8-byte blocks (got {len(data)} bytes)")
    chain = bytes(_des.encrypt_tdes_cbc(key, _ZERO_IV, data))[-8:]
    enciphered = bytes(_des.encrypt_tdes_cbc(key, chain, data))
    return bytes(a ^ b for a, b in zip(enciphered, data, strict=True))


def kpe_derivation_data(stan: str, amount: str) -> bytes:
    """D = E || F: the 6-digit STAN left-justified and zero-filled to 16 digits, then the
    12-digit amount right-justified and zero-filled to 16 digits (sample 3_1)."""
    if len(stan) != 6 or not stan.isdigit():
        raise InputError(f"SystemTraceAuditNumber must be 6 digits (got {len(stan)} characters)")
    if len(amount) != 12 or not amount.isdigit():
        raise InputError(f"TransactionAmount must be 12 digits (got {len(amount)} characters)")
    return bytes.fromhex(stan.ljust(16, "0") + amount.rjust(16, "0"))


def derive_kpe(kpp: bytes, stan: str, amount: str) -> bytes:
    """KPE = OWF(KPP, D) (AS2805.6.6.3, as AWS's sample 3_1 derives it); a TDES_2KEY KPP gives
    a 16-byte KPE (parity is left as the OWF makes it: TDES ignores it)."""
    if len(kpp) != 16:
        raise InputError(f"the AS2805 PIN protection key must be TDES_2KEY (got {len(kpp)} bytes)")
    return one_way_function(kpp, kpe_derivation_data(stan, amount))


# --- AS2805.4.1 MAC ------------------------------------------------------------------------


def generate_as2805_mac(key: bytes, message: bytes, length: int = 8) -> bytes:
    """AS2805.4.1 MAC as ISO 9797-1 algorithm 3 (single DES CBC under K1, the last block TDES
    K1-K2-K1), padding method 1 (zeros) (inferred: the ANSI X9.19 form AS2805.4 adopts)."""
    if len(key) != 16:
        raise InputError("the AS2805_4_1 MAC needs a TDES_2KEY key (16 bytes)")
    if not message:
        raise InputError("the message to MAC must not be empty")
    if not 4 <= length <= 8:
        raise InputError(f"the AS2805_4_1 MAC length must be 4..8 bytes (got {length})")
    return bytes(_mac.generate_retail_mac(key[:8], key[8:], message, 1, length))


def verify_as2805_mac(key: bytes, message: bytes, mac: bytes) -> bool:
    if not 4 <= len(mac) <= 8:
        raise InputError(f"the AS2805_4_1 MAC must be 4..8 bytes (got {len(mac)})")
    return hmac.compare_digest(generate_as2805_mac(key, message, len(mac)), mac)
