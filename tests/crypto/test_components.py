"""XOR key components: combine 2..9 with their KCVs, split into N."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apckx.crypto import components, kcv
from apckx.errors import InputError, KcvMismatchError, KeyMaterialError

# ANSI X9.24 style example: two TDES components and their XOR
C1 = bytes.fromhex("0123456789ABCDEF0123456789ABCDEF")
C2 = bytes.fromhex("FEDCBA9876543210FEDCBA9876543210")


def test_combine_two_components() -> None:
    assert components.combine_components([C1, C2]) == bytes([0xFF] * 16)


@settings(max_examples=40, deadline=None)
@given(
    key=st.binary(min_size=16, max_size=32),
    count=st.integers(min_value=components.MIN_COMPONENTS, max_value=components.MAX_COMPONENTS),
)
def test_split_then_combine(key: bytes, count: int) -> None:
    parts = components.split_key(key, count)
    assert len(parts) == count
    assert all(len(part) == len(key) for part in parts)
    assert components.combine_components(parts) == key


def test_split_uses_injected_rng() -> None:
    key = bytes(range(16))
    parts = components.split_key(key, 3, rng=lambda n: bytes([0xAA] * n))
    assert parts[:2] == [bytes([0xAA] * 16)] * 2
    assert parts[2] == key  # 0xAA ^ 0xAA cancels


@pytest.mark.parametrize("count", [0, 1, 10])
def test_component_count_is_2_to_9(count: int) -> None:
    with pytest.raises(InputError, match="2 to 9 components"):
        components.combine_components([os.urandom(16)] * count)
    with pytest.raises(InputError, match="2 to 9 components"):
        components.split_key(os.urandom(16), count)


def test_components_must_have_equal_length() -> None:
    with pytest.raises(KeyMaterialError, match="same length"):
        components.combine_components([os.urandom(16), os.urandom(24)])
    with pytest.raises(KeyMaterialError, match="empty"):
        components.combine_components([b"", b""])
    with pytest.raises(KeyMaterialError, match="empty"):
        components.split_key(b"", 2)


def test_check_component_kcvs() -> None:
    kcvs = [kcv.compute_kcv(c, "ANSI_X9_24") for c in (C1, C2)]
    components.check_component_kcvs([C1, C2], [k.lower() for k in kcvs], "ANSI_X9_24")
    with pytest.raises(KcvMismatchError, match=r"component 2 has KCV .* not 000000"):
        components.check_component_kcvs([C1, C2], [kcvs[0], "000000"], "ANSI_X9_24")
    with pytest.raises(InputError, match="2 components but 1 KCVs"):
        components.check_component_kcvs([C1, C2], kcvs[:1], "ANSI_X9_24")
    aes = [os.urandom(32) for _ in range(3)]
    components.check_component_kcvs(aes, [kcv.compute_kcv(c, "CMAC") for c in aes], "CMAC")
