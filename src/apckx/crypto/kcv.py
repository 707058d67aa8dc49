"""Key check values as APC reports them (spec section 6; ANSI X9.24-1, X9.143 section 6.3)."""

from __future__ import annotations

import hmac

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from apckx.crypto.kdf import hash_algorithm_for
from apckx.crypto.keys import is_hmac, is_tdes
from apckx.errors import InputError

KCV_ALGORITHMS = ("CMAC", "ANSI_X9_24", "HMAC")

_AES_LENGTHS = (16, 24, 32)
_TDES_LENGTHS = (16, 24)


def _tdes_key(key: bytes) -> bytes:
    # TDES_2KEY is used as K1||K2||K1 (keying option 2).
    return key + key[:8] if len(key) == 16 else key


def _aes_cmac_zero_block(key: bytes) -> bytes:
    if len(key) not in _AES_LENGTHS:
        raise InputError(f"a CMAC KCV needs a 16, 24 or 32 byte AES key (got {len(key)} bytes)")
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(bytes(16))
    return mac.finalize()


def _tdes_cmac_zero_block(key: bytes) -> bytes:
    mac = cmac.CMAC(TripleDES(_tdes_key(key)))
    mac.update(bytes(8))
    return mac.finalize()


def _tdes_ecb_zero_block(key: bytes) -> bytes:
    if len(key) not in _TDES_LENGTHS:
        raise InputError(f"an ANSI_X9_24 KCV needs a 16 or 24 byte TDES key (got {len(key)} bytes)")
    encryptor = Cipher(TripleDES(_tdes_key(key)), modes.ECB()).encryptor()  # noqa: S305
    return encryptor.update(bytes(8)) + encryptor.finalize()


def _hmac_empty_message(key: bytes, hash_algorithm: str) -> bytes:
    mac = _hmac.HMAC(key, hash_algorithm_for(hash_algorithm))
    return mac.finalize()


def _hmac_hash_name(key_algorithm: str | None, hash_algorithm: str | None) -> str:
    if hash_algorithm is not None:
        return hash_algorithm
    if key_algorithm is not None and is_hmac(key_algorithm):
        return "SHA_" + key_algorithm.removeprefix("HMAC_SHA")
    raise InputError("an HMAC KCV needs the key's hash (hash_algorithm, e.g. SHA_256)")


def _check_value(
    key: bytes, algorithm: str, hash_algorithm: str | None, key_algorithm: str | None
) -> bytes:
    if algorithm == "CMAC":
        if key_algorithm is not None and is_tdes(key_algorithm):
            return _tdes_cmac_zero_block(key)
        return _aes_cmac_zero_block(key)
    if algorithm == "ANSI_X9_24":
        return _tdes_ecb_zero_block(key)
    if algorithm == "HMAC":
        return _hmac_empty_message(key, _hmac_hash_name(key_algorithm, hash_algorithm))
    names = ", ".join(KCV_ALGORITHMS)
    raise InputError(f"unknown KCV algorithm {algorithm!r}: expected one of {names}")


def compute_kcv(
    key: bytes,
    algorithm: str,
    *,
    hash_algorithm: str | None = None,
    key_algorithm: str | None = None,
) -> str:
    """APC's 6 upper-case hex character KCV.

    ``CMAC``: AES-CMAC over 16 zero bytes (TDES-CMAC over 8 if ``key_algorithm`` is TDES);
    ``ANSI_X9_24``: TDES-ECB of 8 zero bytes; ``HMAC``: HMAC of the empty message with the
    key's hash (``hash_algorithm``, or implied by an ``HMAC_SHA*`` ``key_algorithm``).
    Always the leftmost 3 bytes.
    """
    return _check_value(key, algorithm, hash_algorithm, key_algorithm)[:3].hex().upper()


def compute_kcv_block(key: bytes, algorithm: str = "CMAC") -> str:
    """The KCV as X9.143 KC/KP optional blocks carry it (section 6.3.3).

    ``CMAC``: 5 bytes of AES-CMAC over a zero block (10 hex characters);
    ``ANSI_X9_24`` (legacy): 3 bytes of TDES-ECB of a zero block.
    """
    if algorithm == "CMAC":
        return _aes_cmac_zero_block(key)[:5].hex().upper()
    if algorithm == "ANSI_X9_24":
        return _tdes_ecb_zero_block(key)[:3].hex().upper()
    raise InputError(f"X9.143 KCV blocks use CMAC or ANSI_X9_24 (got {algorithm!r})")


def kcv_matches(a: str, b: str) -> bool:
    """Compare two KCVs case-insensitively in constant time."""
    try:
        a_bytes = a.strip().upper().encode("ascii")
        b_bytes = b.strip().upper().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(a_bytes, b_bytes)


__all__ = [
    "KCV_ALGORITHMS",
    "compute_kcv",
    "compute_kcv_block",
    "kcv_matches",
]
