"""DUKPT against the published vectors, byte for byte (tests/vectors/dataplane/dukpt_*.json).

TDES: ANSI X9.24-1:2009 A.4 (initial and rollover sequences) and the AWS sample BDK.
AES: ANSI X9.24-3-2017 supplement (AES-128 and AES-256 BDKs) and the AWS sample BDK.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from apckx.crypto import dukpt
from apckx.errors import InputError, KeyMaterialError

DATAPLANE = Path(__file__).resolve().parents[1] / "vectors" / "dataplane"


def _load(name: str) -> list[dict[str, Any]]:
    with (DATAPLANE / name).open(encoding="utf-8") as handle:
        entries: list[dict[str, Any]] = json.load(handle)
    return entries


def _cases(name: str, field: str | None = None) -> Any:
    entries = [e for e in _load(name) if field is None or any(k.startswith(field) for k in e)]
    return pytest.mark.parametrize("entry", entries, ids=[e["id"] for e in entries])


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def hx(data: bytes) -> str:
    return data.hex().upper()


# --- TDES ------------------------------------------------------------------------------------

_TDES_WORKING = (
    ("pin_key", "PIN", "BIDIRECTIONAL"),
    ("mac_request_key", "MAC", "REQUEST"),
    ("mac_response_key", "MAC", "RESPONSE"),
    ("data_request_key", "DATA", "REQUEST"),
    ("data_response_key", "DATA", "RESPONSE"),
)


@_cases("dukpt_tdes.json")
def test_tdes_ipek_and_transaction_key(entry: dict[str, Any]) -> None:
    bdk, ksn = h(entry["bdk"]), h(entry["ksn"])
    ipek = dukpt.derive_ipek(bdk, ksn)
    assert hx(ipek) == entry["ipek"]
    assert hx(dukpt.derive_initial_key(bdk, ksn, "TDES_2KEY")) == entry["ipek"]
    assert hx(dukpt.derive_tdes_transaction_key(ipek, ksn)) == entry["transaction_key"]
    assert hx(dukpt.derive_transaction_key(bdk, ksn, "TDES_2KEY")) == entry["transaction_key"]
    parsed = dukpt.parse_tdes_ksn(ksn)
    assert parsed.counter == entry["counter"]


@_cases("dukpt_tdes.json")
def test_tdes_working_keys(entry: dict[str, Any]) -> None:
    bdk, ksn = h(entry["bdk"]), h(entry["ksn"])
    checked = 0
    for field, usage, variant in _TDES_WORKING:
        if field in entry:
            key = dukpt.derive_working_key(bdk, ksn, "TDES_2KEY", usage, variant=variant)
            assert hx(key) == entry[field], field
            checked += 1
    assert checked >= 2


@_cases("dukpt_tdes.json", "encrypted_pin_block")
def test_tdes_vector_outputs(entry: dict[str, Any]) -> None:
    """The standard's encrypted PIN block and request data, under our derived keys."""
    bdk, ksn = h(entry["bdk"]), h(entry["ksn"])
    pin_key = dukpt.derive_working_key(bdk, ksn, "TDES_2KEY", "PIN")
    enc = Cipher(TripleDES(pin_key + pin_key[:8]), modes.ECB()).encryptor()  # noqa: S305
    assert hx(enc.update(h(entry["clear_pin_block"]))) == entry["encrypted_pin_block"]
    data_key = dukpt.derive_working_key(bdk, ksn, "TDES_2KEY", "DATA", variant="REQUEST")
    iv = h(entry["data_request_iv"])
    enc = Cipher(TripleDES(data_key + data_key[:8]), modes.CBC(iv)).encryptor()
    ciphertext = enc.update(h(entry["data_request_plaintext"])) + enc.finalize()
    assert hx(ciphertext) == entry["data_request_ciphertext"]


def test_tdes_bidirectional_is_the_request_variant() -> None:
    entry = _load("dukpt_tdes.json")[0]
    bdk, ksn = h(entry["bdk"]), h(entry["ksn"])
    for usage, field in (("MAC", "mac_request_key"), ("DATA", "data_request_key")):
        assert hx(dukpt.derive_working_key(bdk, ksn, "TDES_2KEY", usage)) == entry[field]


def test_tdes_short_ksn_is_ffff_padded() -> None:
    entry = _load("dukpt_tdes.json")[0]
    assert entry["ksn"].startswith("FFFF")
    short = dukpt.parse_ksn_hex(entry["ksn"][4:], "TDES_2KEY")
    assert hx(short) == entry["ksn"]
    key = dukpt.derive_transaction_key(h(entry["bdk"]), short, "TDES_2KEY")
    assert hx(key) == entry["transaction_key"]


def test_tdes_rollover_sequence_follows_next_counter() -> None:
    rollover = [e for e in _load("dukpt_tdes.json") if e["id"].startswith("x9241_roll")]
    ksns = [h(e["ksn"]) for e in rollover]
    assert hx(dukpt.next_ksn(h("FFFF9876543210EFFC00"), "TDES_2KEY")) == "FFFF9876543210F00000"
    assert dukpt.next_counter(0x0FFC00, "TDES") == 0x100000
    assert dukpt.next_counter(1, "TDES") == 2
    assert ksns[-1] == h("FFFF9876543210F00000")


def test_tdes_counter_with_eleven_one_bits_is_refused() -> None:
    with pytest.raises(InputError, match="11 one-bits"):
        dukpt.parse_ksn_hex("FFFF9876543210E007FF", "TDES_2KEY")
    assert not dukpt.is_valid_counter(0x7FF, "TDES")
    assert dukpt.is_valid_counter(0x3FF, "TDES")


@pytest.mark.parametrize(
    ("ksn_hex", "algorithm", "message"),
    [
        ("FFFF9876543210E0000", "TDES_2KEY", "16 or 20 hex"),
        ("FFFF9876543210E000000001", "TDES_2KEY", "16 or 20 hex"),
        ("FFFF9876543210E00001", "AES_128", "24 hex"),
        ("FFFF9876543210E0000G", "TDES_2KEY", "must be hex"),
        ("FFFF9876543210E00001", "TDES_3KEY", "DUKPT BDK must be one of"),
        ("1234567890123456FFFFFFFF", "AES_128", "32 one-bits"),
    ],
)
def test_bad_ksn_is_refused(ksn_hex: str, algorithm: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        dukpt.parse_ksn_hex(ksn_hex, algorithm)


def test_tdes_bad_key_lengths() -> None:
    with pytest.raises(KeyMaterialError, match="16-byte"):
        dukpt.derive_ipek(bytes(24), bytes(10))
    with pytest.raises(InputError, match="TDES_2KEY working keys only"):
        dukpt.derive_working_key(bytes(16), bytes(10), "TDES_2KEY", "PIN", key_algorithm="AES_128")
    with pytest.raises(InputError, match="unknown TDES DUKPT variant"):
        dukpt.derive_tdes_variant_key(bytes(16), "KEK")


# --- AES -------------------------------------------------------------------------------------

_AES_WORKING = {
    "pin_key_": ("PIN", "BIDIRECTIONAL"),
    "mac_generation_key_": ("MAC", "REQUEST"),
    "data_encryption_key_": ("DATA", "REQUEST"),
}
_ALGORITHM = {"aes128": "AES_128", "aes256": "AES_256"}


@_cases("dukpt_aes.json")
def test_aes_initial_and_transaction_key(entry: dict[str, Any]) -> None:
    bdk, ksn, algorithm = h(entry["bdk"]), h(entry["ksn"]), entry["bdk_algorithm"]
    parsed = dukpt.parse_aes_ksn(ksn)
    assert hx(parsed.initial_key_id) == entry["initial_key_id"]
    assert parsed.counter == entry["counter"]
    initial = dukpt.derive_initial_key_aes(bdk, parsed.initial_key_id, algorithm)
    assert hx(initial) == entry["initial_key"]
    assert hx(dukpt.derive_initial_key(bdk, ksn, algorithm)) == entry["initial_key"]
    tk = dukpt.derive_aes_transaction_key(initial, parsed.initial_key_id, parsed.counter, algorithm)
    assert hx(tk) == entry["transaction_key"]
    assert hx(dukpt.derive_transaction_key(bdk, ksn, algorithm)) == entry["transaction_key"]


@_cases("dukpt_aes.json", "pin_key_")
def test_aes_working_keys(entry: dict[str, Any]) -> None:
    bdk, ksn, algorithm = h(entry["bdk"]), h(entry["ksn"]), entry["bdk_algorithm"]
    fields = [k for k in entry if any(k.startswith(p) for p in _AES_WORKING)]
    for field in fields:
        prefix = next(p for p in _AES_WORKING if field.startswith(p))
        usage, variant = _AES_WORKING[prefix]
        key_algorithm = _ALGORITHM[field.removeprefix(prefix)]
        key = dukpt.derive_working_key(
            bdk, ksn, algorithm, usage, variant=variant, key_algorithm=key_algorithm
        )
        assert hx(key) == entry[field], field


@_cases("dukpt_aes.json", "encrypted_pin_block")
def test_aes_format4_pin_block_under_the_pin_key(entry: dict[str, Any]) -> None:
    key = dukpt.derive_working_key(
        h(entry["bdk"]), h(entry["ksn"]), entry["bdk_algorithm"], "PIN", key_algorithm="AES_128"
    )
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305
    inner = enc.update(h(entry["plain_text_pin_field"]))
    block = bytes(a ^ b for a, b in zip(inner, h(entry["pan_field"]), strict=True))
    assert hx(enc.update(block)) == entry["encrypted_pin_block"]


def test_aes_other_usages_differ_and_have_the_right_length() -> None:
    entry = _load("dukpt_aes.json")[0]
    bdk, ksn = h(entry["bdk"]), h(entry["ksn"])
    keys = {
        (usage, variant): dukpt.derive_working_key(bdk, ksn, "AES_128", usage, variant=variant)
        for usage in ("MAC", "DATA")
        for variant in dukpt.KEY_VARIANTS
    }
    assert len(set(keys.values())) == len(keys)
    tdes3 = dukpt.derive_working_key(bdk, ksn, "AES_128", "DATA", key_algorithm="TDES_3KEY")
    assert len(tdes3) == 24
    tdes2 = dukpt.derive_working_key(bdk, ksn, "AES_128", "MAC", key_algorithm="TDES_2KEY")
    assert len(tdes2) == 16


def test_aes_working_key_stronger_than_bdk_is_refused() -> None:
    entry = _load("dukpt_aes.json")[0]
    with pytest.raises(InputError, match="must not be stronger"):
        dukpt.derive_working_key(
            h(entry["bdk"]), h(entry["ksn"]), "AES_128", "PIN", key_algorithm="AES_256"
        )


def test_aes_counter_limits() -> None:
    assert not dukpt.is_valid_counter(0x1FFFF, "AES")
    assert dukpt.next_counter(0x1FFFE, "AES") == 0x20000
    with pytest.raises(InputError, match="exhausted"):
        dukpt.next_counter(0xFFFF0000, "AES")
    with pytest.raises(InputError, match="17 one-bits"):
        dukpt.parse_aes_ksn(h("1234567890123456") + (0x1FFFF).to_bytes(4, "big"))
    with pytest.raises(KeyMaterialError, match="AES_128 DUKPT BDK must be 16 bytes"):
        dukpt.derive_initial_key_aes(bytes(32), bytes(8), "AES_128")
    with pytest.raises(InputError, match="initial key ID must be 8 bytes"):
        dukpt.derive_initial_key_aes(bytes(16), bytes(7), "AES_128")
