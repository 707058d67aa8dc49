"""MACs as APC's GenerateMac / VerifyMac compute them (pure; psec, pyemv, cryptography).

- ISO 9797-1 MAC algorithm 1 (CBC-MAC; TDES, or AES) and algorithm 3 (the retail MAC:
  single DES under K1, the last block TDES), on psec. APC does not pad for them (observed on
  the live service): by default the message must be a whole number of blocks; ``padding=1|2``
  applies ISO 9797-1 method 1 or 2 for callers that want it.
- CMAC (NIST SP 800-38B) with TDES or AES keys, and HMAC SHA-224/256/384/512 (RFC 2104), on
  cryptography. Any message length.
- The EMV MAC: ISO 9797-1 algorithm 3 with padding method 2 under an EMV session key
  (:mod:`apckx.crypto.emv` derives the ICC master key and the session key).
- DUKPT MACs: ISO 9797-1 algorithm 1 / 3 and CMAC under the DUKPT MAC working key
  (:mod:`apckx.crypto.dukpt`).
- :data:`MAC_ALGORITHMS`: APC's ``MacAlgorithm`` names -> one function each
  ``(key, message, key_algorithm) -> full-length MAC``; :func:`generate_mac` applies APC's
  length rules, :func:`verify_mac` compares in constant time.

MAC lengths are in bytes. A MAC is truncated to its leftmost bytes (ISO 9797-1 section 5).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Final

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.ciphers import algorithms
from psec import mac as _psec_mac

from apckx.crypto import as2805, dukpt, emv
from apckx.crypto._quiet import quiet_tdes
from apckx.errors import InputError

__all__ = [
    "DEFAULT_MAC_LENGTHS",
    "DUKPT_MAC_ALGORITHMS",
    "HMAC_HASHES",
    "MAC_ALGORITHMS",
    "MAC_LENGTH_RANGE",
    "generate_cmac",
    "generate_dukpt_mac",
    "generate_emv_mac",
    "generate_hmac",
    "generate_iso9797_1_mac",
    "generate_iso9797_3_mac",
    "generate_mac",
    "mac_block_size",
    "truncate_mac",
    "verify_mac",
]

MacFunction = Callable[[bytes, bytes, str], bytes]

HMAC_HASHES: Final[dict[str, Callable[[], hashes.HashAlgorithm]]] = {
    "HMAC_SHA224": hashes.SHA224,
    "HMAC_SHA256": hashes.SHA256,
    "HMAC_SHA384": hashes.SHA384,
    "HMAC_SHA512": hashes.SHA512,
}

#: APC's MacLength bounds (IntegerRangeBetween4And16), in bytes.
MAC_LENGTH_RANGE: Final = range(4, 17)

#: The length APC returns when GenerateMac has no MacLength (inferred, docs/EMULATOR.md):
#: ISO 9797 algorithms 4 bytes (observed on the live service), CMAC one block, HMAC the full
#: digest, AS2805_4_1 4 bytes (as the ISO 9797 algorithm 3 it is).
DEFAULT_MAC_LENGTHS: Final[dict[str, int | None]] = {
    "ISO9797_ALGORITHM1": 4,
    "ISO9797_ALGORITHM3": 4,
    "CMAC": None,
    "HMAC": None,
    "HMAC_SHA224": None,
    "HMAC_SHA256": None,
    "HMAC_SHA384": None,
    "HMAC_SHA512": None,
    "AS2805_4_1": 4,
}

DUKPT_MAC_ALGORITHMS: Final = ("ISO9797_ALGORITHM1", "ISO9797_ALGORITHM3", "CMAC")

_TDES_ALGORITHMS = ("TDES_2KEY", "TDES_3KEY")
_AES_ALGORITHMS = ("AES_128", "AES_192", "AES_256")
_KEY_LENGTHS = {"TDES_2KEY": 16, "TDES_3KEY": 24, "AES_128": 16, "AES_192": 24, "AES_256": 32}


def _check_key(key: bytes, key_algorithm: str, allowed: tuple[str, ...], what: str) -> None:
    if key_algorithm not in allowed:
        raise InputError(f"{what} needs a {' or '.join(allowed)} key (got {key_algorithm})")
    if len(key) != _KEY_LENGTHS[key_algorithm]:
        raise InputError(
            f"a {key_algorithm} key must be {_KEY_LENGTHS[key_algorithm]} bytes (got {len(key)})"
        )


def mac_block_size(key_algorithm: str) -> int:
    """8 for TDES keys, 16 for AES keys."""
    return 8 if key_algorithm in _TDES_ALGORITHMS else 16


def _pad(message: bytes, block: int, padding: int | None, what: str) -> bytes:
    if padding is None:
        if not message or len(message) % block:
            raise InputError(
                f"{what} needs a message of whole {block}-byte blocks (got {len(message)} "
                "bytes): APC does not pad; pad it yourself (e.g. ISO 9797-1 method 2)"
            )
        return message
    if padding == 1:
        return bytes(_psec_mac.pad_iso_1(message, block))
    if padding == 2:
        return bytes(_psec_mac.pad_iso_2(message, block))
    raise InputError(f"ISO 9797-1 padding must be method 1 or 2 (got {padding})")


def _tdes_key(key: bytes) -> bytes:
    return key + key[:8] if len(key) == 16 else key


def generate_iso9797_1_mac(
    key: bytes, message: bytes, *, key_algorithm: str = "TDES_2KEY", padding: int | None = None
) -> bytes:
    """ISO 9797-1 MAC algorithm 1 (CBC-MAC, zero IV): the last cipher block, full length.

    TDES (8 bytes) or AES (16 bytes). ``padding=None`` requires whole blocks (APC's rule).
    """
    _check_key(key, key_algorithm, _TDES_ALGORITHMS + _AES_ALGORITHMS, "ISO 9797-1 algorithm 1")
    block = mac_block_size(key_algorithm)
    data = _pad(message, block, padding, "ISO 9797-1 algorithm 1")
    with quiet_tdes():
        if block == 8:
            return bytes(_psec_mac.generate_cbc_mac(_tdes_key(key), data, 1, 8))
        return bytes(_psec_mac.generate_cbc_mac(key, data, 1, 16, _psec_mac.Algorithm.AES))


def generate_iso9797_3_mac(
    key: bytes, message: bytes, *, key_algorithm: str = "TDES_2KEY", padding: int | None = None
) -> bytes:
    """ISO 9797-1 MAC algorithm 3 (the retail MAC, ANSI X9.19): single DES CBC under K1,
    then the last block decrypted under K2 and encrypted under K1. 8 bytes.

    The key is TDES (K1 = bytes 0..7, K2 = bytes 8..15). ``padding=None`` requires whole
    blocks.
    """
    _check_key(key, key_algorithm, _TDES_ALGORITHMS, "ISO 9797-1 algorithm 3")
    data = _pad(message, 8, padding, "ISO 9797-1 algorithm 3")
    with quiet_tdes():
        return bytes(_psec_mac.generate_retail_mac(key[:8], key[8:16], data, 1, 8))


def generate_cmac(key: bytes, message: bytes, *, key_algorithm: str) -> bytes:
    """CMAC (NIST SP 800-38B), one full block: TDES-CMAC (8 bytes) or AES-CMAC (16)."""
    _check_key(key, key_algorithm, _TDES_ALGORITHMS + _AES_ALGORITHMS, "CMAC")
    if key_algorithm in _TDES_ALGORITHMS:
        mac = cmac.CMAC(TripleDES(_tdes_key(key)))
    else:
        mac = cmac.CMAC(algorithms.AES(key))
    mac.update(message)
    return mac.finalize()


def generate_hmac(key: bytes, message: bytes, *, algorithm: str) -> bytes:
    """HMAC (RFC 2104) with ``algorithm`` HMAC_SHA224/256/384/512: the full digest."""
    factory = HMAC_HASHES.get(algorithm)
    if factory is None:
        raise InputError(
            f"unknown HMAC algorithm {algorithm!r}: use one of {', '.join(HMAC_HASHES)}"
        )
    if not key:
        raise InputError("an HMAC key must not be empty")
    mac = _hmac.HMAC(key, factory())
    mac.update(message)
    return mac.finalize()


def generate_emv_mac(
    issuer_master_key: bytes,
    message: bytes,
    *,
    pan: str,
    pan_sequence_number: str,
    major_key_derivation_mode: str,
    session_key_derivation_mode: str,
    atc: bytes | None = None,
    application_cryptogram: bytes | None = None,
) -> bytes:
    """APC's EmvMac: ISO 9797-1 algorithm 3 with padding method 2 under the session key.

    The ICC master key is derived from the issuer master key (EMV_OPTION_A / _B), then the
    session key by ``session_key_derivation_mode`` (EMV_COMMON_SESSION_KEY, EMV2000, AMEX,
    MASTERCARD_SESSION_KEY, VISA) from ``application_cryptogram`` or ``atc`` (APC's
    SessionKeyDerivationValue). Returns the 8-byte MAC.
    """
    if (atc is None) == (application_cryptogram is None):
        raise InputError("the EMV MAC needs exactly one of the ATC or the application cryptogram")
    with quiet_tdes():
        icc_mk = emv.derive_icc_master_key(
            issuer_master_key, pan, pan_sequence_number, mode=major_key_derivation_mode
        )
        session_key = emv.derive_session_key(
            icc_mk,
            session_key_derivation_mode,
            atc=atc,
            application_cryptogram=application_cryptogram,
        )
        return bytes(
            _psec_mac.generate_retail_mac(session_key[:8], session_key[8:], message, 2, 8)
        )


def generate_dukpt_mac(
    bdk: bytes,
    ksn: bytes,
    message: bytes,
    *,
    bdk_algorithm: str,
    algorithm: str,
    variant: str,
    key_algorithm: str | None = None,
) -> bytes:
    """APC's DukptIso9797Algorithm1 / DukptIso9797Algorithm3 / DukptCmac: the MAC under the
    DUKPT MAC working key of ``ksn`` (``variant`` REQUEST / RESPONSE / BIDIRECTIONAL;
    ``key_algorithm`` the DukptDerivationType, by default the BDK's). Full length.

    ``algorithm`` is ISO9797_ALGORITHM1, ISO9797_ALGORITHM3 or CMAC. APC needs a message
    of at least 8 bytes, and whole blocks for the ISO 9797 algorithms (it does not pad).
    """
    if algorithm not in DUKPT_MAC_ALGORITHMS:
        raise InputError(
            f"a DUKPT MAC is one of {', '.join(DUKPT_MAC_ALGORITHMS)} (got {algorithm!r})"
        )
    if len(message) < 8:
        raise InputError(f"a DUKPT MAC needs a message of at least 8 bytes (got {len(message)})")
    working_algorithm = key_algorithm or bdk_algorithm
    key = dukpt.derive_working_key(
        bdk, ksn, bdk_algorithm, "MAC", variant=variant, key_algorithm=working_algorithm
    )
    return MAC_ALGORITHMS[algorithm](key, message, working_algorithm)


def _hmac_for(name: str) -> MacFunction:
    def compute(key: bytes, message: bytes, key_algorithm: str) -> bytes:
        return generate_hmac(key, message, algorithm=name)

    return compute


def _hmac_by_key(key: bytes, message: bytes, key_algorithm: str) -> bytes:
    # APC's plain "HMAC": the hash comes from the key's algorithm (HMAC_SHA256 key -> SHA-256).
    if key_algorithm not in HMAC_HASHES:
        raise InputError(f"the HMAC algorithm needs an HMAC key (got {key_algorithm})")
    return generate_hmac(key, message, algorithm=key_algorithm)


def _as2805_4_1(key: bytes, message: bytes, key_algorithm: str) -> bytes:
    with quiet_tdes():
        return as2805.generate_as2805_mac(key, message, 8)


#: APC MacAlgorithm -> (key, message, key_algorithm) -> the full-length MAC.
MAC_ALGORITHMS: Final[dict[str, MacFunction]] = {
    "ISO9797_ALGORITHM1": lambda k, m, a: generate_iso9797_1_mac(k, m, key_algorithm=a),
    "ISO9797_ALGORITHM3": lambda k, m, a: generate_iso9797_3_mac(k, m, key_algorithm=a),
    "CMAC": lambda k, m, a: generate_cmac(k, m, key_algorithm=a),
    "HMAC": _hmac_by_key,
    "HMAC_SHA224": _hmac_for("HMAC_SHA224"),
    "HMAC_SHA256": _hmac_for("HMAC_SHA256"),
    "HMAC_SHA384": _hmac_for("HMAC_SHA384"),
    "HMAC_SHA512": _hmac_for("HMAC_SHA512"),
    "AS2805_4_1": _as2805_4_1,
}


def truncate_mac(mac: bytes, length: int | None) -> bytes:
    """The leftmost ``length`` bytes of ``mac`` (``None``: all of it).

    ``length`` must be 4..16 (APC's MacLength) and no longer than the MAC.
    """
    if length is None:
        return mac
    if length not in MAC_LENGTH_RANGE:
        raise InputError(f"the MAC length must be 4..16 bytes (got {length})")
    if length > len(mac):
        raise InputError(f"the MAC length {length} is longer than this MAC ({len(mac)} bytes)")
    return mac[:length]


def generate_mac(
    algorithm: str, key: bytes, message: bytes, *, key_algorithm: str, length: int | None = None
) -> bytes:
    """The MAC APC returns for ``algorithm`` (an APC MacAlgorithm name): computed by
    :data:`MAC_ALGORITHMS`, cut to ``length`` bytes or :data:`DEFAULT_MAC_LENGTHS`."""
    function = MAC_ALGORITHMS.get(algorithm)
    if function is None:
        raise InputError(
            f"unknown MAC algorithm {algorithm!r}: use one of {', '.join(MAC_ALGORITHMS)}"
        )
    full = function(key, message, key_algorithm)
    if length is None:
        length = DEFAULT_MAC_LENGTHS.get(algorithm)
    return truncate_mac(full, length)


def verify_mac(computed: bytes, given: bytes) -> bool:
    """True when ``given`` is ``computed`` or its leftmost 4+ bytes (constant-time compare).

    ``computed`` is the full-length MAC. A given MAC shorter than 4 bytes never verifies.
    """
    if len(given) < 4 or len(given) > len(computed):
        return False
    return hmac.compare_digest(computed[: len(given)], given)
