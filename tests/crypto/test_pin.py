"""apckx.crypto.pin_block and pin_verification against tests/vectors/dataplane/pin_blocks.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from psec import des

from apckx.crypto import pin_block, pin_verification
from apckx.errors import InputError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "dataplane" / "pin_blocks.json"


def load(keep: Any) -> Any:
    with VECTORS.open(encoding="utf-8") as handle:
        entries = [e for e in json.load(handle) if keep(e)]
    assert entries
    return pytest.mark.parametrize("entry", entries, ids=[e["id"] for e in entries])


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def fixed(data: bytes) -> Any:
    return lambda n: (data * n)[:n]


@load(lambda e: e.get("format") in {"ISO_FORMAT_0", "ISO_FORMAT_2"} and "clear_pin_block" in e)
def test_iso0_iso2_encode_decode(entry: dict[str, Any]) -> None:
    pan = entry.get("pan")
    block = pin_block.encode_pin_block(entry["pin"], entry["format"], pan=pan)
    assert block == h(entry["clear_pin_block"])
    assert pin_block.decode_pin_block(block, entry["format"], pan=pan) == entry["pin"]
    if "pan_field" in entry:
        assert pin_block.pan_field(entry["pan"]) == h(entry["pan_field"])


@load(lambda e: e.get("format") in {"ISO_FORMAT_1", "ISO_FORMAT_3"})
def test_iso1_iso3_with_given_fill(entry: dict[str, Any]) -> None:
    pan = entry.get("pan")
    block = pin_block.encode_pin_block(entry["pin"], entry["format"], pan=pan, fill=entry["fill"])
    assert block == h(entry["clear_pin_block"])
    assert pin_block.decode_pin_block(block, entry["format"], pan=pan) == entry["pin"]


def test_as2805_format0_is_laid_out_as_iso0() -> None:
    block = pin_block.encode_pin_block("1234", "As2805Format0", pan="4012345678909")
    assert block == h("041274EDCBA9876F")
    assert pin_block.decode_pin_block(block, "AS2805_FORMAT_0", pan="4012345678909") == "1234"


@load(lambda e: e.get("format") == "ISO_FORMAT_4" and "encrypted_pin_block" in e)
def test_iso4_encipher_decipher(entry: dict[str, Any]) -> None:
    key = h(entry["key"])
    field = pin_block.encode_iso4_pin_field(entry["pin"], h(entry["random"]))
    assert field == h(entry["plain_text_pin_field"])
    assert pin_block.encode_iso4_pan_field(entry["pan"]) == h(entry["pan_field"])
    epb = pin_block.encipher_iso4_pin_block(
        key, entry["pin"], entry["pan"], random=h(entry["random"])
    )
    assert epb == h(entry["encrypted_pin_block"])
    assert pin_block.decipher_iso4_pin_block(key, epb, entry["pan"]) == entry["pin"]
    assert (
        pin_block.decrypt_pin_block(key, epb, "IsoFormat4", pan=entry["pan"], aes=True)
        == (entry["pin"])
    )


@load(lambda e: e.get("format") == "ISO_FORMAT_4" and "encrypted_pin_block" not in e)
def test_iso4_pan_field(entry: dict[str, Any]) -> None:
    assert pin_block.encode_iso4_pan_field(entry["pan"]) == h(entry["pan_field"])


@pytest.mark.parametrize("fmt", ["ISO_FORMAT_0", "ISO_FORMAT_1", "ISO_FORMAT_3"])
def test_tdes_round_trip_with_random_fill(fmt: str) -> None:
    key = h("0123456789ABCDEFFEDCBA9876543210")
    epb = pin_block.encrypt_pin_block(key, "98765", fmt, pan="4012345678909")
    assert len(epb) == 8
    assert pin_block.decrypt_pin_block(key, epb, fmt, pan="4012345678909") == "98765"
    clear = des.decrypt_tdes_ecb(key, epb)
    assert clear.hex().upper()[0] == fmt[-1]


def test_format3_random_fill_is_a_to_f() -> None:
    block = pin_block.encode_pin_block("1234", "ISO_FORMAT_3", pan="5555555551234567")
    field = bytes(
        a ^ b for a, b in zip(block, pin_block.pan_field("5555555551234567"), strict=True)
    )
    assert all(c in "ABCDEF" for c in field.hex().upper()[6:])


@load(lambda e: e["id"].startswith("ibm3624"))
def test_ibm3624(entry: dict[str, Any]) -> None:
    args = (
        h(entry["pvk"]),
        entry["decimalization_table"],
        entry["pin_validation_data"],
        entry["pin_validation_data_pad_character"],
    )
    assert (
        pin_verification.generate_ibm3624_natural_pin(*args, len(entry["pin"]))
        == (entry["natural_pin"])
    )
    assert (
        pin_verification.generate_ibm3624_pin_from_offset(*args, entry["pin_offset"])
        == (entry["pin"])
    )
    assert pin_verification.generate_ibm3624_offset(*args, entry["pin"]) == entry["pin_offset"]
    assert pin_verification.verify_ibm3624_pin(*args, entry["pin_offset"], entry["pin"])
    wrong = str((int(entry["pin"][0]) + 1) % 10) + entry["pin"][1:]
    assert not pin_verification.verify_ibm3624_pin(*args, entry["pin_offset"], wrong)


@load(lambda e: e["id"].startswith("pvv"))
def test_visa_pvv(entry: dict[str, Any]) -> None:
    pvk, pvki = h(entry["pvk"]), int(entry["pvki"])
    assert pin_verification.generate_visa_pvv(pvk, entry["pan"], pvki, entry["pin"]) == entry["pvv"]
    assert des.encrypt_tdes_ecb(pvk, h(entry["tsp"])) == h(entry["encrypted_tsp"])
    assert pin_verification.verify_visa_pvv(pvk, entry["pan"], pvki, entry["pin"], entry["pvv"])
    assert not pin_verification.verify_visa_pvv(pvk, entry["pan"], pvki, "9999", entry["pvv"])


def test_random_pin_and_offset() -> None:
    pvk = h("0123456789ABCDEFFEDCBA9876543210")
    pin, offset = pin_verification.generate_ibm3624_random_pin(
        pvk, "1234567890123456", "1122334455667788", "F", 6, rng=fixed(b"\x07\x03")
    )
    assert pin == "737373"
    assert pin_verification.verify_ibm3624_pin(
        pvk, "1234567890123456", "1122334455667788", "F", offset, pin
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: pin_block.encode_pin_block("123", "ISO_FORMAT_0", pan="4012345678909"), "4..12"),
        (lambda: pin_block.encode_pin_block("1234", "ISO_FORMAT_0"), "primary account"),
        (lambda: pin_block.encode_pin_block("1234", "ISO_FORMAT_9"), "unknown"),
        (
            lambda: pin_block.decode_pin_block(
                h("141274EDCBA9876F"), "ISO_FORMAT_0", pan="4012345678909"
            ),
            "decode",
        ),
        (lambda: pin_block.decode_pin_block(h("2F1234FFFFFFFFFF"), "ISO_FORMAT_1"), "decode"),
        (lambda: pin_block.encrypt_pin_block(bytes(16), "1234", "ISO_FORMAT_4", pan="1234"), "AES"),
        (
            lambda: pin_block.encrypt_pin_block(
                bytes(16), "1234", "ISO_FORMAT_0", pan="1234", aes=True
            ),
            "TDES",
        ),
        (lambda: pin_verification.generate_visa_pvv(bytes(16), "12345", 1, "1234"), "account"),
        (
            lambda: pin_verification.generate_ibm3624_offset(bytes(16), "123", "1234", "F", "1234"),
            "decimalization",
        ),
        (
            lambda: pin_verification.generate_ibm3624_offset(
                bytes(16), "1" * 16, "1234", "G", "1234"
            ),
            "pad",
        ),
    ],
)
def test_refusals(call: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()


def test_decode_error_does_not_echo_the_pin() -> None:
    with pytest.raises(pin_block.PinBlockError) as info:
        pin_block.decode_pin_block(
            h("1C98765ZZ"[:2] + "98765FFFFFFFFF"), "ISO_FORMAT_3", pan="4012345678909"
        )
    assert "98765" not in str(info.value)


# --- properties (bounded) -----------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PINS = st.text("0123456789", min_size=4, max_size=12)
PANS = st.text("0123456789", min_size=12, max_size=19)


@settings(max_examples=60, deadline=None)
@given(
    pin=PINS,
    pan=PANS,
    fmt=st.sampled_from(["ISO_FORMAT_0", "ISO_FORMAT_1", "ISO_FORMAT_3", "AS2805_FORMAT_0"]),
)
def test_tdes_formats_round_trip(pin: str, pan: str, fmt: str) -> None:
    key = h("0123456789ABCDEFFEDCBA9876543210")
    block = pin_block.encrypt_pin_block(key, pin, fmt, pan=pan)
    assert pin_block.decrypt_pin_block(key, block, fmt, pan=pan) == pin


@settings(max_examples=30, deadline=None)
@given(pin=PINS, pan=PANS, random=st.binary(min_size=8, max_size=8))
def test_format4_round_trip(pin: str, pan: str, random: bytes) -> None:
    key = h("00112233445566778899AABBCCDDEEFF")
    block = pin_block.encipher_iso4_pin_block(key, pin, pan, random=random)
    assert pin_block.decipher_iso4_pin_block(key, block, pan) == pin


def test_iso0_with_a_12_digit_pan() -> None:
    # APC's PrimaryAccountNumber may have 12 digits: 11 digits before the check digit.
    block = pin_block.encode_pin_block("1234", "ISO_FORMAT_0", pan="401234567890")
    assert block == bytes(
        a ^ b for a, b in zip(h("041234FFFFFFFFFF"), h("0000040123456789"), strict=True)
    )
    assert pin_block.decode_pin_block(block, "ISO_FORMAT_0", pan="401234567890") == "1234"
