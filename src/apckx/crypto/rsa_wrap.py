"""RSA wrap (APC's KeyCryptogram): RSAES-OAEP key transport, and the RSA strength rules.

UG keys-import "RSA Unwrap" and keys-importexport (apc-tr34.md section 3.5): the sender wraps
the raw key bytes with RSAES-OAEP (hash SHA-256 or SHA-512, MGF1 with the same hash, empty
label); the cryptogram travels as upper-case hex of the modulus-length ciphertext. RSA_2048
carries TDES keys only; AES_128 needs RSA_3072 or RSA_4096; nothing stronger than AES_128
travels under RSA at all. The same limits apply to TR-34, whose content key is RSA-wrapped.
"""

from __future__ import annotations

import re

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from apckx.crypto.keys import KEY_ALGORITHMS, is_tdes
from apckx.errors import InputError, IntegrityError, StrengthError

__all__ = [
    "RSA_ALGORITHMS",
    "WRAPPING_SPECS",
    "check_rsa_transport_strength",
    "cryptogram_from_hex",
    "cryptogram_to_hex",
    "oaep_padding",
    "rsa_algorithm_for",
    "unwrap_key",
    "wrap_key",
]

#: APC's RSA KeyAlgorithm -> modulus size in bits.
RSA_ALGORITHMS: dict[str, int] = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
_RSA_NAMES = {bits: name for name, bits in RSA_ALGORITHMS.items()}

#: APC's WrappingSpec -> the OAEP hash (MGF1 uses the same hash; apc-tr34.md 3.5 [I] for 512).
WRAPPING_SPECS: dict[str, type[hashes.SHA256 | hashes.SHA512]] = {
    "RSA_OAEP_SHA_256": hashes.SHA256,
    "RSA_OAEP_SHA_512": hashes.SHA512,
}

# UG keys-importexport table: what each RSA size may carry (TR-34 and RSA wrap alike).
_CARRIES: dict[str, frozenset[str]] = {
    "RSA_2048": frozenset({"TDES_2KEY", "TDES_3KEY"}),
    "RSA_3072": frozenset({"TDES_2KEY", "TDES_3KEY", "AES_128"}),
    "RSA_4096": frozenset({"TDES_2KEY", "TDES_3KEY", "AES_128"}),
}
_UPPER_HEX_RE = re.compile(r"[0-9A-F]+")
_CRYPTOGRAM_HEX_LENGTHS = range(16, 4097)  # the model's WrappedKeyCryptogram bounds


def rsa_algorithm_for(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> str:
    """APC's name for an RSA key's size: "RSA_2048", "RSA_3072" or "RSA_4096"."""
    name = _RSA_NAMES.get(key.key_size)
    if name is None:
        raise InputError(
            f"an RSA key of {key.key_size} bits is not one APC uses: use 2048, 3072 or 4096 bits"
        )
    return name


def check_rsa_transport_strength(rsa_algorithm: str, key_algorithm: str) -> None:
    """Raise ``StrengthError`` unless an ``rsa_algorithm`` key may carry ``key_algorithm``.

    RSA_2048 carries TDES_2KEY/TDES_3KEY; RSA_3072 and RSA_4096 also AES_128; AES_192,
    AES_256 and HMAC keys cannot travel under RSA (UG keys-importexport, keys-import).
    """
    if rsa_algorithm not in _CARRIES:
        raise InputError(
            f"wrapping key algorithm {rsa_algorithm!r} must be RSA_2048, RSA_3072 or RSA_4096"
        )
    if key_algorithm not in KEY_ALGORITHMS:
        raise InputError(f"unknown key algorithm {key_algorithm!r}")
    if key_algorithm in _CARRIES[rsa_algorithm]:
        return
    if key_algorithm == "AES_128":
        raise StrengthError(
            f"{rsa_algorithm} carries TDES keys only: an AES_128 key needs RSA_3072 or RSA_4096"
        )
    hint = "" if is_tdes(key_algorithm) else ": use TR-31 under a KEK, or ECDH"
    raise StrengthError(
        f"a {key_algorithm} key cannot be carried under RSA (TR-34 or RSA wrap carry TDES and "
        f"AES_128 only){hint}"
    )


def oaep_padding(wrapping_spec: str = "RSA_OAEP_SHA_256") -> padding.OAEP:
    """RSAES-OAEP with the spec's hash, MGF1 with the same hash and an empty label."""
    try:
        hash_type = WRAPPING_SPECS[wrapping_spec]
    except KeyError:
        raise InputError(
            f"wrapping spec {wrapping_spec!r} is not one APC supports: use "
            + " or ".join(WRAPPING_SPECS)
        ) from None
    return padding.OAEP(mgf=padding.MGF1(hash_type()), algorithm=hash_type(), label=None)


def wrap_key(
    key: bytes,
    public_key: rsa.RSAPublicKey,
    wrapping_spec: str = "RSA_OAEP_SHA_256",
    *,
    key_algorithm: str | None = None,
) -> bytes:
    """RSAES-OAEP ciphertext of ``key`` (modulus length); checks the strength rule if
    ``key_algorithm`` is given."""
    scheme = oaep_padding(wrapping_spec)
    if key_algorithm is not None:
        check_rsa_transport_strength(rsa_algorithm_for(public_key), key_algorithm)
    try:
        return public_key.encrypt(key, scheme)
    except ValueError:
        raise InputError(
            f"a {len(key)}-byte key is too long for {rsa_algorithm_for(public_key)} "
            f"with {wrapping_spec}"
        ) from None


def unwrap_key(
    cryptogram: bytes,
    private_key: rsa.RSAPrivateKey,
    wrapping_spec: str = "RSA_OAEP_SHA_256",
) -> bytes:
    """Recover the key from an RSAES-OAEP cryptogram; ``IntegrityError`` (no detail) if it
    does not decrypt under ``private_key`` with ``wrapping_spec``."""
    scheme = oaep_padding(wrapping_spec)
    if len(cryptogram) != (private_key.key_size + 7) // 8:
        raise IntegrityError("the key cryptogram does not decrypt under this RSA key")
    try:
        return private_key.decrypt(cryptogram, scheme)
    except ValueError:
        raise IntegrityError("the key cryptogram does not decrypt under this RSA key") from None


def cryptogram_to_hex(cryptogram: bytes) -> str:
    """APC's wire form: upper-case hex."""
    return cryptogram.hex().upper()


def cryptogram_from_hex(text: str) -> bytes:
    """Decode APC's ``WrappedKeyCryptogram`` / ``KeyMaterial``: upper-case hex, 16..4096."""
    if not _UPPER_HEX_RE.fullmatch(text) or len(text) % 2:
        raise InputError("a key cryptogram must be an even number of upper-case hex characters")
    if len(text) not in _CRYPTOGRAM_HEX_LENGTHS:
        raise InputError(f"a key cryptogram has 16 to 4096 hex characters (got {len(text)})")
    return bytes.fromhex(text)
