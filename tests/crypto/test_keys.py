"""Key material parsing and checks: lengths, degenerate keys, messages that never echo keys."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apckx.crypto import keys
from apckx.errors import InputError, KeyMaterialError

TDES2_HEX = "0123456789ABCDEFFEDCBA9876543210"


def test_parse_key_hex_accepts_spaces_and_lower_case() -> None:
    spaced = "0123 4567 89ab cdef  FEDC BA98 7654 3210"
    assert keys.parse_key_hex(spaced, "TDES_2KEY") == bytes.fromhex(TDES2_HEX)


@pytest.mark.parametrize(
    ("algorithm", "length"),
    [(name, length) for name, length in keys.KEY_ALGORITHMS.items()],
)
def test_parse_key_hex_every_algorithm(algorithm: str, length: int) -> None:
    key = bytes(range(1, length + 1))
    assert keys.parse_key_hex(key.hex(), algorithm) == key


@pytest.mark.parametrize(
    ("text", "algorithm", "message"),
    [
        (TDES2_HEX[:-2], "TDES_2KEY", r"32 hex characters \(16 bytes\) for TDES_2KEY \(got 30\)"),
        (TDES2_HEX + "0", "TDES_2KEY", "got 33"),
        (TDES2_HEX, "AES_256", r"64 hex characters \(32 bytes\) for AES_256 \(got 32\)"),
        (TDES2_HEX, "TDES_3KEY", "48 hex characters"),
        ("00" * 15, "HMAC_SHA256", "32 to 128 hex characters"),
        ("00" * 65, "HMAC_SHA256", "got 130"),
        ("ZZ" + TDES2_HEX[2:], "TDES_2KEY", "not hex"),
        ("0x" + TDES2_HEX, "TDES_2KEY", "not hex"),
        ("00" * 16, "AES_128", "all zeros"),
        ("0123456789ABCDEF0123456789ABCDEF", "TDES_2KEY", "K1 == K2"),
        ("0123456789ABCDEF0022446688AACCEE", "TDES_2KEY", "K1 == K2"),  # parity bits only
        ("0123456789ABCDEF" "FEDCBA9876543210" "FEDCBA9876543210", "TDES_3KEY", "K2 == K3"),
        ("0123456789ABCDEF" "0123456789ABCDEF" "FEDCBA9876543210", "TDES_3KEY", "K1 == K2"),
    ],
    ids=[
        "short", "odd", "aes-too-short", "3key-too-short", "hmac-too-short", "hmac-too-long",
        "non-hex", "0x-prefix", "all-zero", "k1-eq-k2", "k1-eq-k2-parity", "k2-eq-k3",
        "3key-k1-eq-k2",
    ],
)  # fmt: skip
def test_parse_key_hex_refuses(text: str, algorithm: str, message: str) -> None:
    with pytest.raises(KeyMaterialError, match=message) as info:
        keys.parse_key_hex(text, algorithm, what="--kek")
    assert str(info.value).startswith("--kek ")
    assert "\n" not in str(info.value)
    # The message never echoes the key, in any spelling.
    compact = text.replace(" ", "")
    for fragment in (compact, compact.upper(), compact.lower(), compact[:16], compact[-16:]):
        if len(fragment) >= 8:
            assert fragment not in str(info.value)


def test_k1_equal_k3_is_a_valid_three_key_key() -> None:
    key = keys.parse_key_hex("0123456789ABCDEFFEDCBA98765432100123456789ABCDEF", "TDES_3KEY")
    assert len(key) == 24


def test_unknown_algorithm() -> None:
    with pytest.raises(InputError, match="unknown key algorithm 'DES'"):
        keys.parse_key_hex(TDES2_HEX, "DES")
    with pytest.raises(InputError):
        keys.strength_bits("RSA_2048")


def test_check_key_material_on_bytes() -> None:
    keys.check_key_material(bytes(range(1, 33)), "AES_256")
    with pytest.raises(KeyMaterialError, match="got 62"):
        keys.check_key_material(bytes(31), "AES_256")


@pytest.mark.parametrize(
    ("algorithm", "bits"),
    [
        ("TDES_2KEY", 80), ("TDES_3KEY", 112), ("AES_128", 128), ("AES_192", 192),
        ("AES_256", 256), ("HMAC_SHA224", 112), ("HMAC_SHA256", 128), ("HMAC_SHA384", 192),
        ("HMAC_SHA512", 256),
    ],
)  # fmt: skip
def test_strength_bits(algorithm: str, bits: int) -> None:
    assert keys.strength_bits(algorithm) == bits


def test_algorithm_for_length() -> None:
    assert keys.algorithm_for_length("T", 16) == "TDES_2KEY"
    assert keys.algorithm_for_length("T", 24) == "TDES_3KEY"
    assert keys.algorithm_for_length("A", 24) == "AES_192"
    with pytest.raises(KeyMaterialError, match="16, 24 bytes"):
        keys.algorithm_for_length("T", 8)
    with pytest.raises(InputError, match="unknown key family"):
        keys.algorithm_for_length("H", 32)


def test_generate_key_uses_the_injected_rng_and_skips_degenerate_draws() -> None:
    draws = [bytes(16), bytes([1] * 8 + [1] * 8), bytes(range(1, 17))]
    assert keys.generate_key("TDES_2KEY", rng=lambda n: draws.pop(0)) == bytes(range(1, 17))
    with pytest.raises(KeyMaterialError, match="degenerate"):
        keys.generate_key("AES_128", rng=bytes)
    for name, length in keys.KEY_ALGORITHMS.items():
        assert len(keys.generate_key(name)) == length


def test_parse_hex() -> None:
    assert keys.parse_hex("0a 0B") == b"\x0a\x0b"
    with pytest.raises(InputError, match="odd number"):
        keys.parse_hex("abc")
    with pytest.raises(InputError, match="not hex"):
        keys.parse_hex("xyz0")


@settings(max_examples=60, deadline=None)
@given(
    algorithm=st.sampled_from(sorted(keys.KEY_ALGORITHMS)),
    data=st.data(),
)
def test_parse_key_hex_round_trip_and_never_echoes(algorithm: str, data: st.DataObject) -> None:
    lengths = keys.allowed_lengths(algorithm)
    key = data.draw(st.binary(min_size=lengths[0], max_size=lengths[-1]))
    spaced = " ".join(key.hex()[i : i + 4] for i in range(0, 2 * len(key), 4))
    try:
        keys.check_key_material(key, algorithm)
    except KeyMaterialError as exc:
        with pytest.raises(KeyMaterialError) as info:
            keys.parse_key_hex(spaced, algorithm)
        assert str(info.value) == str(exc)
        assert key.hex() not in str(exc).lower()
        return
    assert keys.parse_key_hex(spaced.upper(), algorithm) == key
    # One character too many: refused, and the message does not carry the key.
    with pytest.raises(KeyMaterialError) as info:
        keys.parse_key_hex(spaced + "0", algorithm)
    assert key.hex()[:8] not in str(info.value).lower()
