"""Symmetric key material: algorithm names, lengths, strength, parsing and checks.

Names are APC's ``KeyAlgorithm`` values. Nothing here ever puts key bytes into a message.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Callable

from apckx.errors import InputError, KeyMaterialError

#: APC symmetric KeyAlgorithm -> key length in bytes (HMAC: the length APC generates).
KEY_ALGORITHMS: dict[str, int] = {
    "TDES_2KEY": 16,
    "TDES_3KEY": 24,
    "AES_128": 16,
    "AES_192": 24,
    "AES_256": 32,
    "HMAC_SHA224": 28,
    "HMAC_SHA256": 32,
    "HMAC_SHA384": 48,
    "HMAC_SHA512": 64,
}

# Security strength in bits (NIST SP 800-57 Part 1 Rev. 5, Table 2; HMAC keys are rated
# like APC's import/export strength table: the hash's collision strength).
_STRENGTH_BITS: dict[str, int] = {
    "TDES_2KEY": 80,
    "TDES_3KEY": 112,
    "AES_128": 128,
    "AES_192": 192,
    "AES_256": 256,
    "HMAC_SHA224": 112,
    "HMAC_SHA256": 128,
    "HMAC_SHA384": 192,
    "HMAC_SHA512": 256,
}

# HMAC keys may be imported with any length from 16 bytes up to the hash's block size.
_HMAC_BLOCK_SIZE: dict[str, int] = {
    "HMAC_SHA224": 64,
    "HMAC_SHA256": 64,
    "HMAC_SHA384": 128,
    "HMAC_SHA512": 128,
}
_HMAC_MIN_LENGTH = 16

_FAMILY_LENGTHS: dict[str, dict[int, str]] = {
    "T": {16: "TDES_2KEY", 24: "TDES_3KEY"},
    "A": {16: "AES_128", 24: "AES_192", 32: "AES_256"},
}

_HEX_RE = re.compile(r"[0-9A-Fa-f]*")
_WHITESPACE_RE = re.compile(r"\s+")


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in KEY_ALGORITHMS:
        names = ", ".join(KEY_ALGORITHMS)
        raise InputError(f"unknown key algorithm {algorithm!r}: expected one of {names}")


def is_tdes(algorithm: str) -> bool:
    """True for TDES_2KEY and TDES_3KEY."""
    return algorithm.startswith("TDES_")


def is_aes(algorithm: str) -> bool:
    """True for AES_128, AES_192 and AES_256."""
    return algorithm.startswith("AES_")


def is_hmac(algorithm: str) -> bool:
    """True for the HMAC_SHA* algorithms."""
    return algorithm.startswith("HMAC_")


def strength_bits(algorithm: str) -> int:
    """Security strength of a symmetric key algorithm in bits (TDES_2KEY 80 ... AES_256 256)."""
    _check_algorithm(algorithm)
    return _STRENGTH_BITS[algorithm]


def allowed_lengths(algorithm: str) -> range:
    """Key lengths in bytes accepted for ``algorithm``."""
    _check_algorithm(algorithm)
    if is_hmac(algorithm):
        return range(_HMAC_MIN_LENGTH, _HMAC_BLOCK_SIZE[algorithm] + 1)
    length = KEY_ALGORITHMS[algorithm]
    return range(length, length + 1)


def _describe_lengths(algorithm: str) -> str:
    lengths = allowed_lengths(algorithm)
    if len(lengths) == 1:
        return f"{2 * lengths[0]} hex characters ({lengths[0]} bytes)"
    return (
        f"{2 * lengths[0]} to {2 * lengths[-1]} hex characters "
        f"({lengths[0]} to {lengths[-1]} bytes)"
    )


def _without_parity(half: bytes) -> bytes:
    # DES ignores the low bit of every byte (FIPS 46-3 parity bit).
    return bytes(b & 0xFE for b in half)


def check_key_material(key: bytes, algorithm: str, *, what: str = "key") -> None:
    """Refuse key bytes of the wrong length or a degenerate value, without echoing the key.

    Degenerate: all zero bytes; TDES with K1 == K2 (or K2 == K3 for 3-key), parity ignored,
    which collapses TDES to single DES.
    """
    _check_algorithm(algorithm)
    if len(key) not in allowed_lengths(algorithm):
        raise KeyMaterialError(
            f"{what} must be {_describe_lengths(algorithm)} for {algorithm} (got {2 * len(key)})"
        )
    if not any(key):
        raise KeyMaterialError(f"{what} is all zeros: that is not a usable {algorithm} key")
    if is_tdes(algorithm):
        parts = [_without_parity(key[i : i + 8]) for i in range(0, len(key), 8)]
        if hmac.compare_digest(parts[0], parts[1]):
            raise KeyMaterialError(
                f"{what} has K1 == K2, which reduces {algorithm} to single DES: "
                "use independent halves"
            )
        if len(parts) == 3 and hmac.compare_digest(parts[1], parts[2]):
            raise KeyMaterialError(
                f"{what} has K2 == K3, which reduces {algorithm} to single DES: "
                "use independent thirds"
            )


def parse_hex(text: str, *, what: str = "value") -> bytes:
    """Decode hex text with optional whitespace; the message never echoes the input."""
    compact = _WHITESPACE_RE.sub("", text)
    if not _HEX_RE.fullmatch(compact):
        raise InputError(f"{what} is not hex: use only 0-9 and A-F (spaces allowed)")
    if len(compact) % 2:
        raise InputError(
            f"{what} has an odd number of hex characters ({len(compact)}): each byte needs two"
        )
    return bytes.fromhex(compact)


def parse_key_hex(text: str, algorithm: str, *, what: str = "key") -> bytes:
    """Parse a key given as hex (spaces allowed) and check it for ``algorithm``."""
    _check_algorithm(algorithm)
    compact = _WHITESPACE_RE.sub("", text)
    if not _HEX_RE.fullmatch(compact):
        raise KeyMaterialError(
            f"{what} is not hex: expected {_describe_lengths(algorithm)} for {algorithm} "
            "using only 0-9 and A-F (spaces allowed)"
        )
    if len(compact) % 2 or len(compact) // 2 not in allowed_lengths(algorithm):
        raise KeyMaterialError(
            f"{what} must be {_describe_lengths(algorithm)} for {algorithm} (got {len(compact)})"
        )
    key = bytes.fromhex(compact)
    check_key_material(key, algorithm, what=what)
    return key


def algorithm_for_length(family: str, length: int) -> str:
    """Map a TR-31 algorithm code and a key length to APC's name ("T", 16 -> TDES_2KEY)."""
    try:
        by_length = _FAMILY_LENGTHS[family]
    except KeyError:
        raise InputError(
            f"unknown key family {family!r}: expected 'T' (TDES) or 'A' (AES)"
        ) from None
    try:
        return by_length[length]
    except KeyError:
        expected = ", ".join(str(n) for n in by_length)
        raise KeyMaterialError(
            f"a {family!r} key must be {expected} bytes long (got {length})"
        ) from None


def generate_key(algorithm: str, *, rng: Callable[[int], bytes] = os.urandom) -> bytes:
    """Generate a fresh random key for ``algorithm`` (the one randomness edge)."""
    _check_algorithm(algorithm)
    for _ in range(8):
        key = rng(KEY_ALGORITHMS[algorithm])
        try:
            check_key_material(key, algorithm)
        except KeyMaterialError:
            continue  # astronomically rare with a real RNG; draw again
        return key
    raise KeyMaterialError(f"the random source keeps producing degenerate {algorithm} keys")
