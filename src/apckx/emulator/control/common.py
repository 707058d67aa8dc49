"""Small helpers every control-plane module shares: refusals, pagination, public-key facts.

Messages never carry key material.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from apckx import errors
from apckx.emulator.exceptions import ValidationException

T = TypeVar("T")

DAY_SECONDS = 86400.0
DEFAULT_PAGE_SIZE = 50

ECC_CURVES: dict[str, ec.EllipticCurve] = {
    "ECC_NIST_P256": ec.SECP256R1(),
    "ECC_NIST_P384": ec.SECP384R1(),
    "ECC_NIST_P521": ec.SECP521R1(),
}
RSA_ALGORITHMS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
# Security strength of public keys in bits (NIST SP 800-57 Part 1, Table 2).
_EC_STRENGTH = {256: 128, 384: 192, 521: 256}


@contextmanager
def refusals(context: str) -> Iterator[None]:
    """Turn apckx's own errors (bad input, strength, integrity, certificates) into
    ``ValidationException``; their messages never carry key material."""
    try:
        yield
    except errors.IntegrityError:
        raise ValidationException(
            f"{context}: the key block failed its integrity check (wrong wrapping key, "
            "derivation inputs that differ from the sender's, or a tampered block)"
        ) from None
    except errors.ApckxError as exc:
        raise ValidationException(f"{context}: {exc}") from None


def to_datetime(epoch: float) -> datetime.datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)


def public_key_kcv(public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> str:
    """KCV of a public key: SHA-1 over the DER SubjectPublicKeyInfo, first 4 bytes (spec 6)."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha1(der, usedforsecurity=False).digest()[:4].hex().upper()


def public_key_strength(public_key: object) -> tuple[str, int]:
    """(family, bits of security) of a certificate's public key."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ECC", _EC_STRENGTH.get(public_key.curve.key_size, 0)
    if isinstance(public_key, rsa.RSAPublicKey):
        # NIST SP 800-57: 2048 -> 112, 3072 -> 128; 4096 is rated between 128 and 192.
        size = public_key.key_size
        return "RSA", 112 if size < 3072 else 128 if size < 4096 else 152
    return "OTHER", 0


def key_algorithm_of(public_key: object) -> str | None:
    """APC's KeyAlgorithm for a certificate's public key, or None if APC has no name."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        for name, curve in ECC_CURVES.items():
            if curve.name == public_key.curve.name:
                return name
        return None
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA_{public_key.key_size}" if public_key.key_size in (2048, 3072, 4096) else None
    return None


# --- pagination -----------------------------------------------------------------------------


def _encode_token(kind: str, after: str) -> str:
    raw = json.dumps({"kind": kind, "after": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(kind: str, token: str) -> str:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        decoded = None
    if (not isinstance(decoded, dict) or decoded.get("kind") != kind
            or not isinstance(decoded.get("after"), str)):
        raise ValidationException("NextToken is not a token this operation issued")
    after: str = decoded["after"]
    return after


def paginate(kind: str, items: Sequence[tuple[str, T]], next_token: str | None,
             max_results: int | None) -> tuple[list[T], str | None]:
    """One page of ``items`` (sorted by ident) and an opaque token for the next, if any."""
    page_size = DEFAULT_PAGE_SIZE if max_results is None else max_results
    if page_size < 1:
        raise ValidationException("MaxResults must be at least 1")
    ordered = sorted(items, key=lambda item: item[0])
    if next_token is not None:
        after = _decode_token(kind, next_token)
        ordered = [item for item in ordered if item[0] > after]
    page = ordered[:page_size]
    token = _encode_token(kind, page[-1][0]) if len(ordered) > page_size else None
    return [value for _, value in page], token
