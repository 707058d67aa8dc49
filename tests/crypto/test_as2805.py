"""apckx.crypto.as2805: KEK validation between two nodes, key cryptograms, the AS2805.4.1 MAC.

No published vectors exist (a paid standard). KEK validation is checked against an independent
re-computation of the steps of AWS's node-to-node sample with `cryptography` primitives; the
MAC against a CBC computation written out here.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from apckx.crypto import as2805
from apckx.errors import InputError

KEK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
OTHER = bytes.fromhex("1111111111111111FEDCBA9876543210")


def tdes(key: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cipher = Cipher(TripleDES(key), modes.CBC(bytes(8)))
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()


def odd(b: int) -> int:
    return b if bin(b).count("1") % 2 else b ^ 1


def xor_all(key: bytes, byte: int) -> bytes:
    return bytes(k ^ byte for k in key)


def fixed(data: bytes) -> Any:
    return lambda n: (data * n)[:n]


def test_request_matches_the_sample_steps() -> None:
    kr_send, kr_receive = as2805.generate_kek_validation_request(
        KEK, "TDES_2KEY", "VARIANT_MASK_82", rng=fixed(b"\x13\x57\x9b\xdf")
    )
    random_key = tdes(xor_all(KEK, 0x82), kr_send, decrypt=True)
    assert random_key == bytes(odd(b) for b in fixed(b"\x13\x57\x9b\xdf")(16))
    inverted = bytes(odd(~b & 0xFF) for b in random_key)
    assert kr_receive == tdes(xor_all(KEK, 0x84), inverted)


@pytest.mark.parametrize("mask", ["VARIANT_MASK_82", "VARIANT_MASK_82C0"])
@pytest.mark.parametrize("algorithm", ["TDES_2KEY", "TDES_3KEY"])
def test_two_nodes_agree_and_a_wrong_kek_does_not(mask: str, algorithm: str) -> None:
    kr_send, kr_receive = as2805.generate_kek_validation_request(KEK, algorithm, mask)
    assert len(kr_send) == as2805.RANDOM_KEY_LENGTHS[algorithm]
    partner = as2805.generate_kek_validation_response(KEK, kr_send, mask)
    assert as2805.verify_kek_validation(kr_receive, partner)
    wrong = as2805.generate_kek_validation_response(OTHER, kr_send, mask)
    assert not as2805.verify_kek_validation(kr_receive, wrong)


def test_the_two_masks_differ() -> None:
    rng = fixed(b"\x42")
    a = as2805.generate_kek_validation_request(KEK, "TDES_2KEY", "VARIANT_MASK_82", rng=rng)
    b = as2805.generate_kek_validation_request(KEK, "TDES_2KEY", "VARIANT_MASK_82C0", rng=rng)
    assert a[0] != b[0] and a[1] != b[1]


def test_random_key_max_length() -> None:
    kr_send, _ = as2805.generate_kek_validation_request(
        KEK, "TDES_3KEY", "VARIANT_MASK_82", max_length="BYTES_8"
    )
    assert len(kr_send) == 8


#: AWS's node-to-node sample 2_1 (run against the service): the mask over a 16-byte KEK for each
#: key type it exchanges, spelled out there as a two-byte pattern repeated 8 times.
SAMPLE_2_1_MASKS = {
    "PIN_ENCRYPTION_KEY_VARIANT_28": bytes.fromhex("28C0") * 8,
    "DATA_ENCRYPTION_KEY_VARIANT_22": bytes.fromhex("22C0") * 8,
    "MESSAGE_AUTHENTICATION_KEY_VARIANT_24": bytes.fromhex("24C0") * 8,
}


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("variant", sorted(SAMPLE_2_1_MASKS))
def test_key_cryptogram_is_the_sample_2_1_scheme(variant: str) -> None:
    """TDES-CBC, zero IV, under KEK xor the sample's mask (as node 2 wraps and unwraps)."""
    key = bytes.fromhex("A1A2A3A4A5A6A7A8B1B2B3B4B5B6B7B8")
    cryptogram = as2805.wrap_key_cryptogram(KEK, key, variant)
    assert cryptogram == tdes(xor(KEK, SAMPLE_2_1_MASKS[variant]), key)
    assert as2805.unwrap_key_cryptogram(KEK, cryptogram, variant) == key
    assert tdes(xor(KEK, SAMPLE_2_1_MASKS[variant]), cryptogram, decrypt=True) == key


@pytest.mark.parametrize("variant", sorted(as2805.KEY_VARIANTS))
def test_key_cryptogram_round_trip(variant: str) -> None:
    key = bytes.fromhex("A1A2A3A4A5A6A7A8B1B2B3B4B5B6B7B8C1C2C3C4C5C6C7C8")
    kek = KEK + bytes.fromhex("0011223344556677")
    cryptogram = as2805.wrap_key_cryptogram(kek, key, variant)
    # The two-byte pattern repeats over a TDES_3KEY KEK too (inferred beyond the sample).
    mask = (as2805.KEY_VARIANTS[variant] * 12)[:24]
    assert cryptogram == tdes(xor(kek, mask), key)
    assert as2805.unwrap_key_cryptogram(kek, cryptogram, variant) == key
    others = {as2805.wrap_key_cryptogram(kek, key, v) for v in as2805.KEY_VARIANTS}
    assert len(others) == len(as2805.KEY_VARIANTS)


def test_terminal_major_key_variant_is_00c0() -> None:
    assert as2805.KEY_VARIANTS["TERMINAL_MAJOR_KEY_VARIANT_00"] == bytes.fromhex("00C0")


# --- sample 3_1: the per-transaction KPE --------------------------------------------------

SAMPLE_STAN, SAMPLE_AMOUNT = "000438", "000000000328"


def owf_as_the_sample_states(key: bytes, data: bytes) -> bytes:
    """3_1's steps: M = last block of TDES-CBC(key, data, IV 0); TDES-CBC(key, data, IV M)
    xor data."""
    chain = tdes(key, data)[-8:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = Cipher(TripleDES(key), modes.CBC(chain)).encryptor()
    return xor(enc.update(data) + enc.finalize(), data)


def test_kpe_derivation_data_is_the_sample_3_1_layout() -> None:
    data = as2805.kpe_derivation_data(SAMPLE_STAN, SAMPLE_AMOUNT)
    assert data.hex().upper() == "0004380000000000" "0000000000000328"


def test_kpe_is_the_owf_of_the_kpp_over_stan_and_amount() -> None:
    kpp = bytes.fromhex("89ABCDEF0123456776543210FEDCBA98")
    data = bytes.fromhex("0004380000000000" "0000000000000328")
    kpe = as2805.derive_kpe(kpp, SAMPLE_STAN, SAMPLE_AMOUNT)
    assert kpe == owf_as_the_sample_states(kpp, data)
    assert as2805.one_way_function(kpp, data) == kpe
    assert len(kpe) == 16 and kpe not in (kpp, data)
    assert as2805.derive_kpe(kpp, "000439", SAMPLE_AMOUNT) != kpe
    assert as2805.derive_kpe(kpp, SAMPLE_STAN, "000000000329") != kpe
    assert as2805.derive_kpe(OTHER, SAMPLE_STAN, SAMPLE_AMOUNT) != kpe


def test_as2805_mac_is_retail_mac_with_zero_padding() -> None:
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    message = bytes.fromhex("73D8BA54D3852951DAEA41")
    padded = message + bytes(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = Cipher(algorithms.TripleDES(key[:8] * 3), modes.CBC(bytes(8))).encryptor()
    chain = (enc.update(padded) + enc.finalize())[-8:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k2 = Cipher(algorithms.TripleDES(key[8:] * 3), modes.ECB()).decryptor()  # noqa: S305 (one block)
        k1 = Cipher(algorithms.TripleDES(key[:8] * 3), modes.ECB()).encryptor()  # noqa: S305 (one block)
    expected = k1.update(k2.update(chain))
    assert as2805.generate_as2805_mac(key, message) == expected
    assert as2805.verify_as2805_mac(key, message, expected[:4])
    assert not as2805.verify_as2805_mac(key, b"\x72" + message[1:], expected[:4])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: as2805.apply_variant(bytes(8), b"\x82"), "TDES_2KEY"),
        (lambda: as2805.generate_kek_validation_request(KEK, "AES_128", "VARIANT_MASK_82"), "TDES"),
        (lambda: as2805.generate_kek_validation_request(KEK, "TDES_2KEY", "MASK_99"), "unknown"),
        (
            lambda: as2805.generate_kek_validation_response(KEK, bytes(5), "VARIANT_MASK_82"),
            "8, 16",
        ),
        (lambda: as2805.wrap_key_cryptogram(KEK, bytes(16), "PIN_VARIANT"), "unknown"),
        (lambda: as2805.generate_as2805_mac(bytes(24), b"x"), "TDES_2KEY"),
        (lambda: as2805.generate_as2805_mac(KEK, b""), "empty"),
        (lambda: as2805.derive_kpe(KEK, "43", SAMPLE_AMOUNT), "6 digits"),
        (lambda: as2805.derive_kpe(KEK, SAMPLE_STAN, "328"), "12 digits"),
        (lambda: as2805.derive_kpe(KEK, "00043A", SAMPLE_AMOUNT), "6 digits"),
        (lambda: as2805.derive_kpe(KEK + bytes(8), SAMPLE_STAN, SAMPLE_AMOUNT), "TDES_2KEY"),
        (lambda: as2805.one_way_function(KEK, bytes(5)), "8-byte blocks"),
    ],
)
def test_refusals(call: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()
