"""Key derivation functions used by APC's ECDH key exchange (pyca/cryptography recipes)."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from apckx.errors import InputError

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA_1": hashes.SHA1,  # CAVP vectors only; APC offers SHA_256/384/512
    "SHA_224": hashes.SHA224,
    "SHA_256": hashes.SHA256,
    "SHA_384": hashes.SHA384,
    "SHA_512": hashes.SHA512,
}


def normalize_hash_name(name: str) -> str:
    """Accept "SHA_256", "SHA-256", "sha256" and return APC's spelling "SHA_256"."""
    compact = name.strip().upper().replace("-", "").replace("_", "")
    for canonical in _HASHES:
        if canonical.replace("_", "") == compact:
            return canonical
    names = ", ".join(_HASHES)
    raise InputError(f"unknown hash algorithm {name!r}: expected one of {names}")


def hash_algorithm_for(name: str) -> hashes.HashAlgorithm:
    """The pyca/cryptography hash object for a name such as "SHA_256"."""
    return _HASHES[normalize_hash_name(name)]()


def _check_length(length: int) -> None:
    if not 1 <= length <= 1024:
        raise InputError(f"KDF output length must be 1 to 1024 bytes (got {length})")


def concat_kdf(z: bytes, other_info: bytes, length: int, hash_algorithm: str) -> bytes:
    """NIST SP 800-56A Rev. 3 section 5.8.2.1 one-step KDF (ConcatKDFHash).

    APC's ``NIST_SP800``: OtherInfo is exactly the shared information, nothing else.
    """
    _check_length(length)
    kdf = ConcatKDFHash(
        algorithm=hash_algorithm_for(hash_algorithm), length=length, otherinfo=other_info
    )
    return kdf.derive(z)


def x963_kdf(z: bytes, shared_info: bytes, length: int, hash_algorithm: str) -> bytes:
    """ANSI X9.63 section 5.6.3 KDF (X963KDF); APC's ``ANSI_X963``."""
    _check_length(length)
    kdf = X963KDF(
        algorithm=hash_algorithm_for(hash_algorithm), length=length, sharedinfo=shared_info
    )
    return kdf.derive(z)
