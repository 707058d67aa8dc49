"""ECDH key agreement and KBPK derivation as APC's DiffieHellmanTr31KeyBlock does it.

Spec section 7.4: Z = ECDH shared secret (x-coordinate, big-endian, field-size bytes);
NIST_SP800 = SP 800-56A one-step ConcatKDF with OtherInfo = SharedInformation only;
ANSI_X963 = X9.63 KDF. The output length is the derived key's size.

The checks a command runs before its first API call (:func:`normalize_curve`,
:func:`check_ecdh_strength`, :func:`parse_shared_info_hex`, :func:`normalize_kdf`) are plain
tables: importing this module loads no cryptography. pyca/cryptography's ``ec`` and the KDFs
are imported by the functions that compute (:func:`derive_kbpk`, :func:`generate_private_key`,
:func:`curve_class`), which a ceremony reaches after its first call has gone out
(``bench/process.py`` measures the start-up this keeps short).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from apckx.crypto.keys import KEY_ALGORITHMS, is_aes, is_tdes, parse_hex, strength_bits
from apckx.errors import InputError, StrengthError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

_CURVE_CLASS_NAMES = {"P256": "SECP256R1", "P384": "SECP384R1", "P521": "SECP521R1"}
_NAME_BY_CURVE_NAME = {"secp256r1": "P256", "secp384r1": "P384", "secp521r1": "P521"}

#: UG keys-importexport: the strongest key each curve may transport (bits).
_CURVE_CAP_BITS = {"P256": 128, "P384": 192, "P521": 256}
_CURVE_CAP_NAME = {"P256": "AES_128", "P384": "AES_192", "P521": "AES_256"}

#: APC KeyDerivationHashAlgorithm values.
KDF_HASHES = ("SHA_256", "SHA_384", "SHA_512")
#: DeriveKeyAlgorithm values usable as a TR-31 KBPK, with their lengths.
DERIVE_KEY_ALGORITHMS: dict[str, int] = {
    name: length for name, length in KEY_ALGORITHMS.items() if is_tdes(name) or is_aes(name)
}
_KDF_ALIASES = {
    "NIST_SP800": "NIST_SP800",
    "SP800": "NIST_SP800",
    "CONCAT": "NIST_SP800",
    "ANSI_X963": "ANSI_X963",
    "X963": "ANSI_X963",
}
_SHARED_INFO_MAX = 1024  # bytes (SharedInformation is 2..2048 hex characters)

def curve_class(curve: str) -> type[ec.EllipticCurve]:
    """The pyca/cryptography curve class of a curve name: "P-256" -> ``ec.SECP256R1``."""
    from cryptography.hazmat.primitives.asymmetric import ec

    curve_type: type[ec.EllipticCurve] = getattr(ec, _CURVE_CLASS_NAMES[normalize_curve(curve)])
    return curve_type


def __getattr__(name: str) -> Any:
    # CURVES (curve name -> pyca/cryptography curve class), built on first use so that
    # importing this module loads no cryptography.
    if name == "CURVES":
        return {curve: curve_class(curve) for curve in _CURVE_CLASS_NAMES}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def normalize_curve(text: str) -> str:
    """Accept P256, P-256, p256, ECC_NIST_P256, secp256r1 and return "P256"."""
    compact = text.strip().upper().replace("-", "").replace("_", "")
    compact = compact.removeprefix("ECCNIST")
    for curve, name in _NAME_BY_CURVE_NAME.items():
        if compact in (name, curve.upper()):
            return name
    raise InputError(f"unknown curve {text!r}: expected P256, P384 or P521")


def curve_name(
    key_or_curve: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey | ec.EllipticCurve | str,
) -> str:
    """ "P256", "P384" or "P521" for an EC key, a curve object or a curve name."""
    if isinstance(key_or_curve, str):
        return normalize_curve(key_or_curve)
    from cryptography.hazmat.primitives.asymmetric import ec

    curve = key_or_curve if isinstance(key_or_curve, ec.EllipticCurve) else key_or_curve.curve
    try:
        return _NAME_BY_CURVE_NAME[curve.name]
    except KeyError:
        raise InputError(
            f"curve {curve.name} is not supported: APC uses P256, P384 or P521"
        ) from None


def apc_key_algorithm(curve: str | ec.EllipticCurve) -> str:
    """APC's KeyAlgorithm for a curve: "P521" -> "ECC_NIST_P521"."""
    return "ECC_NIST_" + curve_name(curve)


def generate_private_key(curve: str) -> ec.EllipticCurvePrivateKey:
    """A fresh EC private key on ``curve``."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(curve_class(curve)())


def new_shared_info(length: int = 16, *, rng: Callable[[int], bytes] = os.urandom) -> bytes:
    """Random SharedInformation with no zero byte (APC: "It must not contain zero bytes")."""
    if not 1 <= length <= _SHARED_INFO_MAX:
        raise InputError(f"shared information must be 1 to 1024 bytes (got {length})")
    out = bytearray()
    while len(out) < length:
        out.extend(b for b in rng(length) if b)  # rejection sampling keeps bytes uniform
    return bytes(out[:length])


def check_shared_info(shared_info: bytes) -> None:
    """Refuse SharedInformation APC would refuse: empty, over 1024 bytes, or a zero byte."""
    if not 1 <= len(shared_info) <= _SHARED_INFO_MAX:
        raise InputError(f"shared information must be 1 to 1024 bytes (got {len(shared_info)})")
    if 0 in shared_info:
        raise InputError("shared information must not contain a zero byte (APC rule)")


def parse_shared_info_hex(text: str) -> bytes:
    """Decode SharedInformation hex and apply APC's rules."""
    shared_info = parse_hex(text, what="shared information")
    check_shared_info(shared_info)
    return shared_info


def normalize_kdf(kdf: str) -> str:
    """ "NIST_SP800" or "ANSI_X963" (also accepts "nist-sp800", "x963")."""
    compact = kdf.strip().upper().replace("-", "_")
    try:
        return _KDF_ALIASES[compact]
    except KeyError:
        raise InputError(f"unknown KDF {kdf!r}: expected NIST_SP800 or ANSI_X963") from None


def _check_derive_key_algorithm(key_algorithm: str) -> None:
    if key_algorithm not in DERIVE_KEY_ALGORITHMS:
        raise InputError(
            f"DeriveKeyAlgorithm {key_algorithm!r} cannot protect a TR-31 key block: "
            f"use one of {', '.join(DERIVE_KEY_ALGORITHMS)}"
        )


def shared_secret(
    private_key: ec.EllipticCurvePrivateKey, peer_public_key: ec.EllipticCurvePublicKey
) -> bytes:
    """ECDH Z (SP 800-56A section 5.7.1.2): bytes of the field size, never via an int."""
    own, peer = curve_name(private_key), curve_name(peer_public_key)
    if own != peer:
        raise InputError(
            f"ECDH needs both keys on the same curve: private key is {own}, peer key is {peer}"
        )
    from cryptography.hazmat.primitives.asymmetric import ec

    return private_key.exchange(ec.ECDH(), peer_public_key)


def derive_kbpk(
    private_key: ec.EllipticCurvePrivateKey,
    peer_public_key: ec.EllipticCurvePublicKey,
    *,
    kdf: str = "NIST_SP800",
    hash_algorithm: str = "SHA_256",
    key_algorithm: str = "AES_256",
    shared_info: bytes,
) -> bytes:
    """The one-time KBPK both sides derive from ECDH (APC DiffieHellmanTr31KeyBlock)."""
    from apckx.crypto.kdf import concat_kdf, normalize_hash_name, x963_kdf

    kdfs: dict[str, Callable[[bytes, bytes, int, str], bytes]] = {
        "NIST_SP800": concat_kdf,
        "ANSI_X963": x963_kdf,
    }
    kdf_name = normalize_kdf(kdf)
    hash_name = normalize_hash_name(hash_algorithm)
    if hash_name not in KDF_HASHES:
        raise InputError(
            f"KeyDerivationHashAlgorithm must be one of {', '.join(KDF_HASHES)} "
            f"(got {hash_algorithm!r})"
        )
    _check_derive_key_algorithm(key_algorithm)
    if not 1 <= len(shared_info) <= _SHARED_INFO_MAX:
        raise InputError(f"shared information must be 1 to 1024 bytes (got {len(shared_info)})")
    z = shared_secret(private_key, peer_public_key)
    return kdfs[kdf_name](z, shared_info, DERIVE_KEY_ALGORITHMS[key_algorithm], hash_name)


def check_ecdh_strength(curve: str, derive_key_algorithm: str, transported_algorithm: str) -> None:
    """APC's strength rules for an ECDH exchange, checked before any API call.

    The curve caps the transported key (P256: AES_128 and TDES; P384: AES_192; P521:
    AES_256) and the derived KBPK must be at least as strong as the transported key.
    """
    name = normalize_curve(curve)
    try:
        _check_derive_key_algorithm(derive_key_algorithm)
    except InputError as exc:
        raise StrengthError(str(exc)) from None
    transported = strength_bits(transported_algorithm)
    if transported > _CURVE_CAP_BITS[name]:
        raise StrengthError(
            f"ECDH on {name} can transport keys up to {_CURVE_CAP_NAME[name]} strength, not "
            f"{transported_algorithm}: use " + ("P384 or P521" if transported <= 192 else "P521")
        )
    if transported > strength_bits(derive_key_algorithm):
        raise StrengthError(
            f"a {derive_key_algorithm} derived KBPK cannot protect a {transported_algorithm} "
            "key: derive a key at least as strong as the key it wraps (e.g. AES_256)"
        )
