"""apckx.crypto.cipher: NIST SP 800-38A vectors, CFB-s built from the block cipher, RSA.

The vectors are tests/vectors/cipher_sp800_38a.json (NIST SP 800-38A Appendix F; each entry
names its section). tests/vectors/README.md is a copy of the shared one, so the file is
described here rather than there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from apckx.crypto import cipher
from apckx.errors import InputError

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "cipher_sp800_38a.json").read_text())


def h(text: str | None) -> bytes | None:
    return None if text is None else bytes.fromhex(text)


@pytest.mark.parametrize("entry", VECTORS, ids=[e["id"] for e in VECTORS])
def test_sp800_38a_encrypt_and_decrypt(entry: dict[str, Any]) -> None:
    key, plaintext, ciphertext = (bytes.fromhex(entry[n]) for n in ("key", "plaintext",
                                                                     "ciphertext"))
    iv = h(entry["iv"])
    assert cipher.encrypt_symmetric(key, entry["family"], entry["mode"], plaintext, iv) == (
        ciphertext)
    assert cipher.decrypt_symmetric(key, entry["family"], entry["mode"], ciphertext, iv) == (
        plaintext)


@pytest.mark.parametrize(("family", "segment_mode", "library_mode"), [
    ("TDES", "CFB8", "CFB8"), ("TDES", "CFB64", "CFB"), ("AES", "CFB128", "CFB"),
])
def test_named_cfb_modes_agree_with_the_library(family: str, segment_mode: str,
                                                library_mode: str) -> None:
    key, iv = os.urandom(24 if family == "TDES" else 16), os.urandom(cipher.block_size(family))
    data = os.urandom(48)
    built = cipher._cfb_bits(cipher._algorithm(key, family), iv, data,
                             cipher._segment_bits(segment_mode, len(iv)) or 0, decrypt=False)
    assert built == cipher.encrypt_symmetric(key, family, library_mode, data, iv)
    assert cipher.encrypt_symmetric(key, family, segment_mode, data, iv) == built


@pytest.mark.parametrize("mode", ["CFB1", "CFB64"])
def test_bit_and_half_block_cfb_round_trip_and_chain(mode: str) -> None:
    key, iv = os.urandom(16), os.urandom(16)
    data = os.urandom(32)
    encrypted = cipher.encrypt_symmetric(key, "AES", mode, data, iv)
    assert encrypted != data
    assert cipher.decrypt_symmetric(key, "AES", mode, encrypted, iv) == data
    # A flipped ciphertext bit flips that plaintext bit and garbles what follows while it is
    # in the 128-bit feedback register; then CFB resynchronizes (SP 800-38A 6.3), unlike OFB.
    flipped = bytes([encrypted[0] ^ 0x80]) + encrypted[1:]
    garbled = cipher.decrypt_symmetric(key, "AES", mode, flipped, iv)
    assert (garbled[0] ^ data[0]) & 0x80
    assert garbled[:24] != data[:24]
    assert garbled[24:] == data[24:]


def test_tdes_two_key_is_k1_k2_k1() -> None:
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    data = os.urandom(16)
    assert cipher.encrypt_symmetric(key, "TDES", "CBC", data) == cipher.encrypt_symmetric(
        key + key[:8], "TDES", "CBC", data)


@pytest.mark.parametrize(("family", "mode", "data", "iv", "message"), [
    ("TDES", "CFB128", bytes(16), None, "needs a block of at least 128 bits"),
    ("AES", "CBC", bytes(15), None, "multiple of 16 bytes"),
    ("TDES", "ECB", bytes(12), None, "multiple of 8 bytes"),
    ("AES", "CBC", bytes(16), bytes(8), "initialization vector is 16 bytes"),
    ("AES", "CTR", bytes(16), None, "mode must be one of"),
    ("DES", "ECB", bytes(8), None, "TDES or AES"),
])
def test_bad_inputs_are_refused(family: str, mode: str, data: bytes, iv: bytes | None,
                                message: str) -> None:
    with pytest.raises(InputError, match=message):
        cipher.encrypt_symmetric(bytes(16), family, mode, data, iv)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(("padding", "limit"), [
    ("PKCS1", 245), ("OAEP_SHA1", 214), ("OAEP_SHA256", 190), ("OAEP_SHA512", 126),
])
def test_rsa_paddings_round_trip_up_to_their_limit(rsa_key: rsa.RSAPrivateKey, padding: str,
                                                   limit: int) -> None:
    assert cipher.max_rsa_plaintext(256, padding) == limit
    data = os.urandom(limit)
    encrypted = cipher.encrypt_rsa(rsa_key.public_key(), data, padding)
    assert len(encrypted) == 256
    assert cipher.decrypt_rsa(rsa_key, encrypted, padding) == data
    with pytest.raises(InputError, match=f"at most {limit} bytes"):
        cipher.encrypt_rsa(rsa_key.public_key(), data + b"x", padding)
    with pytest.raises(InputError, match="RSA decryption failed"):
        # (PKCS1 v1.5 decryption rejects implicitly, returning random bytes: only OAEP raises)
        other = "OAEP_SHA256" if padding != "OAEP_SHA256" else "OAEP_SHA1"
        cipher.decrypt_rsa(rsa_key, encrypted, other)


def test_raw_rsa_takes_exactly_the_modulus(rsa_key: rsa.RSAPrivateKey) -> None:
    data = b"\x00" + os.urandom(255)
    encrypted = cipher.encrypt_rsa(rsa_key.public_key(), data, None)
    numbers = rsa_key.public_key().public_numbers()
    assert int.from_bytes(encrypted, "big") == pow(int.from_bytes(data, "big"), numbers.e,
                                                   numbers.n)
    assert cipher.decrypt_rsa(rsa_key, encrypted, None) == data
    with pytest.raises(InputError, match="exactly 256 bytes"):
        cipher.encrypt_rsa(rsa_key.public_key(), data[1:], None)
    with pytest.raises(InputError, match="smaller than the modulus"):
        cipher.encrypt_rsa(rsa_key.public_key(), b"\xff" * 256, None)
