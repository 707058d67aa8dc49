"""KCVs beyond the vectors: the spec's reference values, HMAC hashes, comparisons."""

from __future__ import annotations

import hmac

import pytest

from apckx.crypto import kcv
from apckx.errors import InputError


@pytest.mark.parametrize(
    ("key_hex", "algorithm", "kwargs", "expected"),
    [
        # apc-control-plane.md section 6 reference vectors
        ("0123456789ABCDEFFEDCBA9876543210", "ANSI_X9_24", {}, "08D7B4"),
        ("2B7E151628AED2A6ABF7158809CF4F3C", "CMAC", {}, "7AD386"),
        ("00112233445566778899AABBCCDDEEFF", "HMAC", {"hash_algorithm": "SHA_256"}, "E8A065"),
        ("00112233445566778899AABBCCDDEEFF", "HMAC", {"key_algorithm": "HMAC_SHA256"}, "E8A065"),
    ],
)
def test_reference_kcvs(
    key_hex: str, algorithm: str, kwargs: dict[str, str], expected: str
) -> None:
    assert kcv.compute_kcv(bytes.fromhex(key_hex), algorithm, **kwargs) == expected


@pytest.mark.parametrize(
    ("key_algorithm", "digest"),
    [("HMAC_SHA224", "sha224"), ("HMAC_SHA256", "sha256"), ("HMAC_SHA384", "sha384"),
     ("HMAC_SHA512", "sha512")],
)  # fmt: skip
def test_hmac_kcv_uses_the_keys_hash(key_algorithm: str, digest: str) -> None:
    key = bytes(range(40))
    expected = hmac.new(key, b"", digest).digest()[:3].hex().upper()
    assert kcv.compute_kcv(key, "HMAC", key_algorithm=key_algorithm) == expected


def test_three_key_tdes_and_tdes_cmac() -> None:
    key = bytes.fromhex("0123456789ABCDEFFEDCBA987654321089ABCDEF01234567")
    assert kcv.compute_kcv(key, "ANSI_X9_24") == "3FD539"
    # 2-key TDES equals 3-key TDES with K3 = K1
    two_key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    assert kcv.compute_kcv(two_key, "ANSI_X9_24") == kcv.compute_kcv(
        two_key + two_key[:8], "ANSI_X9_24"
    )
    tdes_cmac = kcv.compute_kcv(two_key, "CMAC", key_algorithm="TDES_2KEY")
    assert tdes_cmac != kcv.compute_kcv(two_key, "CMAC")
    assert len(tdes_cmac) == 6


@pytest.mark.parametrize(
    ("key", "algorithm", "kwargs", "message"),
    [
        (bytes(range(1, 9)), "ANSI_X9_24", {}, "16 or 24 byte TDES key"),
        (bytes(range(1, 21)), "CMAC", {}, "16, 24 or 32 byte AES key"),
        (bytes(range(1, 33)), "HMAC", {}, "needs the key's hash"),
        (bytes(range(1, 33)), "SHA_1", {}, "unknown KCV algorithm"),
        (bytes(range(1, 33)), "HMAC", {"hash_algorithm": "MD5"}, "unknown hash"),
    ],
)
def test_compute_kcv_refuses(
    key: bytes, algorithm: str, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        kcv.compute_kcv(key, algorithm, **kwargs)


def test_kcv_matches() -> None:
    assert kcv.kcv_matches("08d7b4", "08D7B4")
    assert kcv.kcv_matches(" 08D7B4", "08d7b4 ")
    assert not kcv.kcv_matches("08D7B5", "08D7B4")
    assert not kcv.kcv_matches("08D7B4", "08D7B")
    assert not kcv.kcv_matches("08D7B4", "08D7B4é")


def test_kcv_block_forms() -> None:
    key = bytes.fromhex("3F419E1CB7079442AA37474C2EFBF8B8")
    assert kcv.compute_kcv_block(key) == "08793E25AB"
    assert kcv.compute_kcv_block(key, "ANSI_X9_24") == "57C409"
    with pytest.raises(InputError):
        kcv.compute_kcv_block(key, "HMAC")
