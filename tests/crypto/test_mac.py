"""MACs against the published vectors, byte for byte (tests/vectors/dataplane/mac.json), plus
the DUKPT MACs of X9.24-1 A.4 (dukpt_tdes.json) and the EMV MAC against pyemv's pieces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pyemv import kd
from pyemv import mac as pyemv_mac

from apckx.crypto import mac
from apckx.errors import InputError

DATAPLANE = Path(__file__).resolve().parents[1] / "vectors" / "dataplane"


def _load(name: str) -> list[dict[str, Any]]:
    with (DATAPLANE / name).open(encoding="utf-8") as handle:
        entries: list[dict[str, Any]] = json.load(handle)
    return entries


def _cases(name: str, field: str) -> Any:
    entries = [e for e in _load(name) if field in e]
    return pytest.mark.parametrize("entry", entries, ids=[e["id"] for e in entries])


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def _key_algorithm(entry: dict[str, Any]) -> str:
    if "key_algorithm" in entry:
        return str(entry["key_algorithm"])
    if entry["algorithm"].startswith("HMAC"):
        return str(entry["algorithm"])
    return "TDES_2KEY" if len(h(entry["key"])) == 16 else "TDES_3KEY"


@_cases("mac.json", "mac")
def test_mac_vector(entry: dict[str, Any]) -> None:
    key = h(entry["key"])
    message = h(entry.get("message_padded", entry["message"]))
    algorithm, key_algorithm = entry["algorithm"], _key_algorithm(entry)
    full = mac.MAC_ALGORITHMS[algorithm](key, message, key_algorithm)
    expected = h(entry["mac"])
    assert full[: entry["mac_length"]] == expected
    assert mac.verify_mac(full, expected)
    if entry["mac_length"] in mac.MAC_LENGTH_RANGE:
        got = mac.generate_mac(
            algorithm, key, message, key_algorithm=key_algorithm, length=entry["mac_length"]
        )
        assert got == expected


@_cases("mac.json", "message_padded")
def test_iso9797_padding_method_applied_locally(entry: dict[str, Any]) -> None:
    """The unpadded message with the entry's padding method gives the same MAC."""
    method = 2 if "method 2" in entry["padding"] else 1
    key, message = h(entry["key"]), h(entry["message"])
    if entry["algorithm"] == "ISO9797_ALGORITHM1":
        full = mac.generate_iso9797_1_mac(key, message, padding=method)
    else:
        full = mac.generate_iso9797_3_mac(key, message, padding=method)
    assert full[: entry["mac_length"]] == h(entry["mac"])


@_cases("mac.json", "message_padded")
def test_unaligned_message_is_refused_as_apc_does(entry: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="APC does not pad"):
        mac.generate_mac(
            entry["algorithm"],
            h(entry["key"]),
            h(entry["message_padded"]) + b"\x01",
            key_algorithm="TDES_2KEY",
        )


@_cases("dukpt_tdes.json", "mac_request")
def test_dukpt_iso9797_3_mac_x9241(entry: dict[str, Any]) -> None:
    for variant, field in (("REQUEST", "mac_request"), ("RESPONSE", "mac_response")):
        full = mac.generate_dukpt_mac(
            h(entry["bdk"]),
            h(entry["ksn"]),
            h(entry["mac_message_padded"]),
            bdk_algorithm="TDES_2KEY",
            algorithm="ISO9797_ALGORITHM3",
            variant=variant,
        )
        assert mac.truncate_mac(full, 4) == h(entry[field]), field


@_cases("dukpt_tdes.json", "cmac_request")
def test_dukpt_cmac_openemv(entry: dict[str, Any]) -> None:
    for variant, field in (("REQUEST", "cmac_request"), ("RESPONSE", "cmac_response")):
        full = mac.generate_dukpt_mac(
            h(entry["bdk"]),
            h(entry["ksn"]),
            h(entry["mac_message"]),
            bdk_algorithm="TDES_2KEY",
            algorithm="CMAC",
            variant=variant,
        )
        assert full == h(entry[field]), field


def test_dukpt_mac_rules() -> None:
    entry = _load("dukpt_tdes.json")[0]
    bdk, ksn = h(entry["bdk"]), h(entry["ksn"])
    with pytest.raises(InputError, match="at least 8 bytes"):
        mac.generate_dukpt_mac(
            bdk, ksn, b"1234567", bdk_algorithm="TDES_2KEY", algorithm="CMAC", variant="REQUEST"
        )
    with pytest.raises(InputError, match="a DUKPT MAC is one of"):
        mac.generate_dukpt_mac(
            bdk, ksn, bytes(8), bdk_algorithm="TDES_2KEY", algorithm="HMAC", variant="REQUEST"
        )
    aes = _load("dukpt_aes.json")[0]
    full = mac.generate_dukpt_mac(
        h(aes["bdk"]),
        h(aes["ksn"]),
        bytes(16),
        bdk_algorithm="AES_128",
        algorithm="ISO9797_ALGORITHM1",
        variant="REQUEST",
    )
    assert full == mac.generate_iso9797_1_mac(
        h(aes["mac_generation_key_aes128"]), bytes(16), key_algorithm="AES_128"
    )


def test_emv_mac_is_retail_mac_padding_2_under_the_session_key() -> None:
    imk = h("0123456789ABCDEFFEDCBA9876543210")
    pan, psn, atc = "5413123456784808", "00", h("0001")
    message = h("8424000008")
    got = mac.generate_emv_mac(
        imk,
        message,
        pan=pan,
        pan_sequence_number=psn,
        major_key_derivation_mode="EMV_OPTION_A",
        session_key_derivation_mode="EMV_COMMON_SESSION_KEY",
        atc=atc,
    )
    icc_mk = kd.derive_icc_mk_a(imk, pan, psn)
    sk = kd.derive_common_sk(icc_mk, atc + bytes(6))
    assert got == pyemv_mac.mac_iso9797_3(sk[:8], sk[8:], message, 2)
    other = mac.generate_emv_mac(
        imk,
        message,
        pan=pan,
        pan_sequence_number=psn,
        major_key_derivation_mode="EMV_OPTION_A",
        session_key_derivation_mode="EMV_COMMON_SESSION_KEY",
        atc=h("0002"),
    )
    assert other != got
    with pytest.raises(InputError, match="exactly one"):
        mac.generate_emv_mac(
            imk,
            message,
            pan=pan,
            pan_sequence_number=psn,
            major_key_derivation_mode="EMV_OPTION_A",
            session_key_derivation_mode="EMV_COMMON_SESSION_KEY",
        )


def test_default_lengths_and_truncation() -> None:
    key = h("0123456789ABCDEFFEDCBA9876543210")
    assert (
        len(mac.generate_mac("ISO9797_ALGORITHM1", key, bytes(8), key_algorithm="TDES_2KEY")) == 4
    )
    assert len(mac.generate_mac("CMAC", key, b"x", key_algorithm="AES_128")) == 16
    assert len(mac.generate_mac("HMAC_SHA512", key, b"x", key_algorithm="HMAC_SHA512")) == 64
    assert len(mac.generate_mac("HMAC", bytes(range(32)), b"x", key_algorithm="HMAC_SHA256")) == 32
    assert len(mac.generate_mac("AS2805_4_1", key, bytes(8), key_algorithm="TDES_2KEY")) == 4
    with pytest.raises(InputError, match=r"4\.\.16"):
        mac.truncate_mac(bytes(32), 3)
    with pytest.raises(InputError, match="longer than this MAC"):
        mac.truncate_mac(bytes(8), 12)
    with pytest.raises(InputError, match="unknown MAC algorithm"):
        mac.generate_mac("MD5", key, b"", key_algorithm="TDES_2KEY")
    with pytest.raises(InputError, match="needs an HMAC key"):
        mac.generate_mac("HMAC", key, b"", key_algorithm="AES_128")
    with pytest.raises(InputError, match="ISO 9797-1 algorithm 3 needs a TDES_2KEY or TDES_3KEY"):
        mac.generate_mac("ISO9797_ALGORITHM3", key, bytes(8), key_algorithm="AES_128")


def test_verify_mac_constant_time_and_strict() -> None:
    full = h("0102030405060708")
    assert mac.verify_mac(full, full)
    assert mac.verify_mac(full, full[:4])
    assert not mac.verify_mac(full, full[:3])
    assert not mac.verify_mac(full, h("0102030405060709"))
    assert not mac.verify_mac(full, full + b"\x00")
    assert not mac.verify_mac(full, b"")
