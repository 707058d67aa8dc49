"""ECDH KBPK derivation: both parties agree, P-521's leading zeros, APC's strength rules."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash

from apckx.crypto import ecdh
from apckx.errors import InputError, StrengthError

SHARED_INFO = bytes.fromhex("0102030405060708090A0B0C0D0E0F10")


@pytest.mark.parametrize("curve", ["P256", "P384", "P521"])
@pytest.mark.parametrize("kdf", ["NIST_SP800", "ANSI_X963"])
@pytest.mark.parametrize(
    ("key_algorithm", "length"),
    [("AES_128", 16), ("AES_192", 24), ("AES_256", 32), ("TDES_2KEY", 16), ("TDES_3KEY", 24)],
)
def test_both_parties_derive_the_same_kbpk(
    curve: str, kdf: str, key_algorithm: str, length: int
) -> None:
    sender = ecdh.generate_private_key(curve)
    apc = ecdh.generate_private_key(curve)
    ours = ecdh.derive_kbpk(
        sender, apc.public_key(), kdf=kdf, key_algorithm=key_algorithm, shared_info=SHARED_INFO
    )
    theirs = ecdh.derive_kbpk(
        apc, sender.public_key(), kdf=kdf, key_algorithm=key_algorithm, shared_info=SHARED_INFO
    )
    assert ours == theirs
    assert len(ours) == length


def test_nist_sp800_is_concat_kdf_with_shared_info_only() -> None:
    # What AWS's samples do: ConcatKDFHash(otherinfo=shared_info) over the raw exchange.
    sender = ecdh.generate_private_key("P-521")
    apc = ecdh.generate_private_key("ECC_NIST_P521")
    z = sender.exchange(ec.ECDH(), apc.public_key())
    expected = ConcatKDFHash(hashes.SHA512(), 32, SHARED_INFO).derive(z)
    assert (
        ecdh.derive_kbpk(
            sender, apc.public_key(), hash_algorithm="SHA_512", shared_info=SHARED_INFO
        )
        == expected
    )
    other_hash = ecdh.derive_kbpk(
        sender, apc.public_key(), hash_algorithm="SHA-256", shared_info=SHARED_INFO
    )
    assert other_hash != expected
    other_kdf = ecdh.derive_kbpk(
        sender, apc.public_key(), kdf="ANSI_X963", hash_algorithm="SHA_512",
        shared_info=SHARED_INFO,
    )  # fmt: skip
    assert other_kdf != expected


def test_p521_shared_secret_keeps_leading_zero_bytes() -> None:
    # Search a few keys for a Z that starts with 0x00 (about half do): it must stay 66 bytes.
    sender = ecdh.generate_private_key("P521")
    for _ in range(64):
        peer = ecdh.generate_private_key("P521")
        z = ecdh.shared_secret(sender, peer.public_key())
        assert len(z) == 66
        if z[0] == 0:
            break
    else:
        pytest.fail("no P-521 shared secret with a leading zero byte in 64 tries")


def test_mismatched_curves_are_refused() -> None:
    with pytest.raises(InputError, match="same curve: private key is P256, peer key is P384"):
        ecdh.derive_kbpk(
            ecdh.generate_private_key("P256"),
            ecdh.generate_private_key("P384").public_key(),
            shared_info=SHARED_INFO,
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key_algorithm": "HMAC_SHA256"}, "cannot protect a TR-31 key block"),
        ({"key_algorithm": "RSA_2048"}, "cannot protect a TR-31 key block"),
        ({"kdf": "HKDF"}, "unknown KDF"),
        ({"hash_algorithm": "SHA_1"}, "KeyDerivationHashAlgorithm must be one of"),
        ({"hash_algorithm": "MD5"}, "unknown hash"),
        ({"shared_info": b""}, "1 to 1024 bytes"),
        ({"shared_info": b"\x01" * 1025}, "1 to 1024 bytes"),
    ],
)
def test_derive_kbpk_refuses(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"shared_info": SHARED_INFO, **kwargs}
    key = ecdh.generate_private_key("P256")
    with pytest.raises(InputError, match=message):
        ecdh.derive_kbpk(key, key.public_key(), **arguments)  # type: ignore[arg-type]


def test_new_shared_info_has_no_zero_byte() -> None:
    for _ in range(50):
        info = ecdh.new_shared_info()
        assert len(info) == 16
        assert 0 not in info
    # rejection sampling drops zeros from the injected source
    stream = iter([bytes([0, 1, 0, 2]), bytes([0, 0, 3, 4])])
    assert ecdh.new_shared_info(4, rng=lambda n: next(stream)) == bytes([1, 2, 3, 4])
    assert len(ecdh.new_shared_info(1024)) == 1024
    with pytest.raises(InputError):
        ecdh.new_shared_info(0)


def test_parse_shared_info_hex() -> None:
    assert ecdh.parse_shared_info_hex("0102 0a0B") == bytes([1, 2, 10, 11])
    with pytest.raises(InputError, match="zero byte"):
        ecdh.parse_shared_info_hex("010200")
    with pytest.raises(InputError, match="not hex"):
        ecdh.parse_shared_info_hex("01020G")
    with pytest.raises(InputError, match="1 to 1024"):
        ecdh.parse_shared_info_hex("")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("P256", "P256"), ("P-384", "P384"), ("p521", "P521"), ("ECC_NIST_P256", "P256"),
     ("secp384r1", "P384")],
)  # fmt: skip
def test_normalize_curve(text: str, expected: str) -> None:
    assert ecdh.normalize_curve(text) == expected
    assert ecdh.apc_key_algorithm(text) == "ECC_NIST_" + expected
    assert ecdh.curve_name(ecdh.generate_private_key(text)) == expected


def test_unknown_curves() -> None:
    with pytest.raises(InputError, match="unknown curve"):
        ecdh.normalize_curve("P224")
    with pytest.raises(InputError, match="not supported"):
        ecdh.curve_name(ec.generate_private_key(ec.SECP256K1()))


@pytest.mark.parametrize(
    ("curve", "derive", "transported"),
    [
        ("P256", "AES_128", "AES_128"),
        ("P256", "AES_256", "TDES_3KEY"),  # the UG's own example pairs P-256 with AES_256
        ("P256", "TDES_2KEY", "TDES_2KEY"),
        ("P384", "AES_192", "AES_192"),
        ("P521", "AES_256", "AES_256"),
        ("P521", "AES_256", "HMAC_SHA512"),
    ],
)
def test_check_ecdh_strength_allows(curve: str, derive: str, transported: str) -> None:
    ecdh.check_ecdh_strength(curve, derive, transported)


@pytest.mark.parametrize(
    ("curve", "derive", "transported", "error", "message"),
    [
        ("P256", "AES_256", "AES_192", StrengthError, "up to AES_128 strength.*P384 or P521"),
        ("P256", "AES_256", "AES_256", StrengthError, "use P521"),
        ("P384", "AES_256", "AES_256", StrengthError, "up to AES_192"),
        ("P521", "AES_128", "AES_256", StrengthError, "AES_128 derived KBPK cannot protect"),
        ("P521", "TDES_2KEY", "TDES_3KEY", StrengthError, "cannot protect"),
        ("P521", "TDES_3KEY", "AES_128", StrengthError, "cannot protect"),
        ("P521", "HMAC_SHA512", "AES_128", StrengthError, "cannot protect a TR-31"),
        ("P521", "AES_256", "RSA_2048", InputError, "unknown key algorithm"),
        ("P999", "AES_256", "AES_128", InputError, "unknown curve"),
    ],
)
def test_check_ecdh_strength_refuses(
    curve: str, derive: str, transported: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        ecdh.check_ecdh_strength(curve, derive, transported)
