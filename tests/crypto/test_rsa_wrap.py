"""RSA wrap (KeyCryptogram): RSAES-OAEP with SHA-256 / SHA-512, strength rules, wire hex."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from apckx.crypto import certs, rsa_wrap
from apckx.errors import InputError, IntegrityError, StrengthError

TDES_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
AES_KEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
_HASHES = {"RSA_OAEP_SHA_256": hashes.SHA256, "RSA_OAEP_SHA_512": hashes.SHA512}


@pytest.fixture(scope="module")
def keys() -> dict[int, rsa.RSAPrivateKey]:
    return {bits: certs.generate_rsa_key(bits) for bits in (2048, 3072, 4096)}


@pytest.mark.parametrize("spec", sorted(_HASHES))
@pytest.mark.parametrize("bits", [2048, 3072, 4096])
def test_round_trip(keys: dict[int, rsa.RSAPrivateKey], bits: int, spec: str) -> None:
    key = TDES_KEY if bits == 2048 else AES_KEY
    algorithm = "TDES_2KEY" if bits == 2048 else "AES_128"
    cryptogram = rsa_wrap.wrap_key(key, keys[bits].public_key(), spec, key_algorithm=algorithm)
    assert len(cryptogram) == bits // 8
    text = rsa_wrap.cryptogram_to_hex(cryptogram)
    assert text == text.upper()
    assert rsa_wrap.unwrap_key(rsa_wrap.cryptogram_from_hex(text), keys[bits], spec) == key
    # The scheme is OAEP with MGF1 over the same hash and an empty label, as cryptography
    # implements it independently of our helper.
    hash_type = _HASHES[spec]
    assert (
        keys[bits].decrypt(cryptogram, padding.OAEP(padding.MGF1(hash_type()), hash_type(), None))
        == key
    )


def test_wrong_key_or_spec_is_an_integrity_error(keys: dict[int, rsa.RSAPrivateKey]) -> None:
    cryptogram = rsa_wrap.wrap_key(TDES_KEY, keys[3072].public_key(), "RSA_OAEP_SHA_256")
    with pytest.raises(IntegrityError):
        rsa_wrap.unwrap_key(cryptogram, keys[3072], "RSA_OAEP_SHA_512")
    with pytest.raises(IntegrityError):
        rsa_wrap.unwrap_key(cryptogram, keys[4096], "RSA_OAEP_SHA_256")
    tampered = bytes([cryptogram[0] ^ 1]) + cryptogram[1:]
    with pytest.raises(IntegrityError) as caught:
        rsa_wrap.unwrap_key(tampered, keys[3072])
    assert TDES_KEY.hex() not in str(caught.value).lower()


@pytest.mark.parametrize(
    ("rsa_algorithm", "key_algorithm", "allowed"),
    [
        ("RSA_2048", "TDES_2KEY", True),
        ("RSA_2048", "TDES_3KEY", True),
        ("RSA_2048", "AES_128", False),
        ("RSA_3072", "AES_128", True),
        ("RSA_4096", "AES_128", True),
        ("RSA_3072", "AES_192", False),
        ("RSA_4096", "AES_256", False),
        ("RSA_4096", "HMAC_SHA256", False),
    ],
)
def test_strength_rules(rsa_algorithm: str, key_algorithm: str, allowed: bool) -> None:
    if allowed:
        rsa_wrap.check_rsa_transport_strength(rsa_algorithm, key_algorithm)
    else:
        with pytest.raises(StrengthError):
            rsa_wrap.check_rsa_transport_strength(rsa_algorithm, key_algorithm)


def test_wrap_checks_strength(keys: dict[int, rsa.RSAPrivateKey]) -> None:
    with pytest.raises(StrengthError, match="RSA_3072"):
        rsa_wrap.wrap_key(AES_KEY, keys[2048].public_key(), key_algorithm="AES_128")


def test_bad_inputs(keys: dict[int, rsa.RSAPrivateKey]) -> None:
    with pytest.raises(InputError, match="RSA_OAEP_SHA_256"):
        rsa_wrap.wrap_key(TDES_KEY, keys[2048].public_key(), "RSA_OAEP_SHA_1")
    with pytest.raises(InputError):
        rsa_wrap.check_rsa_transport_strength("RSA_1024", "TDES_2KEY")
    assert rsa_wrap.rsa_algorithm_for(keys[4096]) == "RSA_4096"
    for text in ("abcdef0123456789", "ABC", "0" * 14, "0" * 4098, "XYZ0123456789ABC"):
        with pytest.raises(InputError):
            rsa_wrap.cryptogram_from_hex(text)
