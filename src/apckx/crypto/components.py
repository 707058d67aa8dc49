"""XOR key components (ANSI X9.24-1 key component entry): combine 2..9, split into N."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from apckx.crypto.kcv import compute_kcv, kcv_matches
from apckx.errors import InputError, KcvMismatchError, KeyMaterialError

MIN_COMPONENTS = 2
MAX_COMPONENTS = 9


def _xor(parts: Sequence[bytes]) -> bytes:
    out = bytearray(len(parts[0]))
    for part in parts:
        for i, byte in enumerate(part):
            out[i] ^= byte
    return bytes(out)


def _check_count(count: int) -> None:
    if not MIN_COMPONENTS <= count <= MAX_COMPONENTS:
        raise InputError(
            f"a key is made of {MIN_COMPONENTS} to {MAX_COMPONENTS} components (got {count})"
        )


def combine_components(components: Sequence[bytes]) -> bytes:
    """XOR 2 to 9 components of equal, non-zero length into the key."""
    _check_count(len(components))
    lengths = sorted({len(component) for component in components})
    if len(lengths) != 1:
        raise KeyMaterialError(
            f"components must all have the same length (got lengths {lengths} bytes)"
        )
    if lengths[0] == 0:
        raise KeyMaterialError("components must not be empty")
    return _xor(components)


def check_component_kcvs(
    components: Sequence[bytes],
    kcvs: Sequence[str],
    kcv_algorithm: str,
    *,
    key_algorithm: str | None = None,
) -> None:
    """Check each component against the KCV its custodian wrote down.

    Raises ``KcvMismatchError`` naming the component (numbered from 1); KCVs are not secret.
    """
    if len(kcvs) != len(components):
        raise InputError(f"got {len(components)} components but {len(kcvs)} KCVs")
    for number, (component, expected) in enumerate(zip(components, kcvs, strict=True), 1):
        actual = compute_kcv(component, kcv_algorithm, key_algorithm=key_algorithm)
        if not kcv_matches(actual, expected):
            raise KcvMismatchError(
                f"component {number} has KCV {actual}, not {expected.upper()}: "
                "re-enter it or check the custodian's record"
            )


def split_key(key: bytes, count: int, *, rng: Callable[[int], bytes] = os.urandom) -> list[bytes]:
    """Split ``key`` into ``count`` random components whose XOR is the key."""
    _check_count(count)
    if not key:
        raise KeyMaterialError("cannot split an empty key")
    randoms = [rng(len(key)) for _ in range(count - 1)]
    if any(len(part) != len(key) for part in randoms):
        raise InputError("the random source returned the wrong number of bytes")
    return [*randoms, _xor([key, *randoms])]
