"""GenerateMac and VerifyMac over HTTP through boto3: every mac.json vector APC can hold a
key for, byte for byte (the key imported as a TR-31 block under a KEK), the TDES DUKPT MACs
of X9.24-1, EMV MACs against a local computation, and the refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from apckx.crypto import kcv, mac

from .conftest import DataPlane

VECTORS_DIR = Path(__file__).resolve().parents[2] / "vectors" / "dataplane"
USAGES = {
    "ISO9797_ALGORITHM1": "TR31_M1_ISO_9797_1_MAC_KEY",
    "ISO9797_ALGORITHM3": "TR31_M3_ISO_9797_3_MAC_KEY",
    "CMAC": "TR31_M6_ISO_9797_5_CMAC_KEY",
}
HMAC_BLOCK = {"HMAC_SHA224": 64, "HMAC_SHA256": 64, "HMAC_SHA384": 128, "HMAC_SHA512": 128}
B0 = "TR31_B0_BASE_DERIVATION_KEY"


def load(name: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads((VECTORS_DIR / name).read_text())
    return entries


def key_algorithm(entry: dict[str, Any]) -> str:
    if entry["algorithm"].startswith("HMAC"):
        return str(entry["algorithm"])
    if entry.get("key_algorithm"):
        return str(entry["key_algorithm"])
    return "TDES_2KEY" if len(entry["key"]) == 32 else "TDES_3KEY"


def holdable(entry: dict[str, Any]) -> bool:
    """APC needs a message (MessageData has at least one byte) and a key it can import
    (HMAC keys of 16 bytes up to the hash's block size)."""
    if not entry["message"]:
        return False
    block = HMAC_BLOCK.get(entry["algorithm"])
    return block is None or 16 <= len(entry["key"]) // 2 <= block


MAC_VECTORS = [e for e in load("mac.json") if holdable(e)]
TDES_DUKPT = [e for e in load("dukpt_tdes.json") if "mac_request" in e]


@pytest.mark.parametrize("entry", MAC_VECTORS, ids=[e["id"] for e in MAC_VECTORS])
def test_mac_vectors_through_the_emulator(data_plane: DataPlane, entry: dict[str, Any]) -> None:
    algorithm = entry["algorithm"]
    usage = USAGES.get(algorithm, "TR31_M7_HMAC_KEY")
    arn = data_plane.import_key(bytes.fromhex(entry["key"]), usage, key_algorithm(entry), "C")
    message = entry.get("message_padded") or entry["message"]
    length = int(entry["mac_length"])
    answer = data_plane.data.generate_mac(
        KeyIdentifier=arn, MessageData=message, GenerationAttributes={"Algorithm": algorithm},
        **({"MacLength": length} if length <= 16 else {}))
    assert answer["Mac"] == entry["mac"][: 2 * length]
    data_plane.data.verify_mac(KeyIdentifier=arn, MessageData=message, Mac=answer["Mac"],
                               VerificationAttributes={"Algorithm": algorithm})
    wrong = ("0" if answer["Mac"][0] != "0" else "1") + answer["Mac"][1:]
    with pytest.raises(data_plane.data.exceptions.VerificationFailedException) as caught:
        data_plane.data.verify_mac(KeyIdentifier=arn, MessageData=message, Mac=wrong,
                                   VerificationAttributes={"Algorithm": algorithm})
    assert caught.value.response["Reason"] == "INVALID_MAC"


@pytest.mark.parametrize("entry", TDES_DUKPT, ids=[e["id"] for e in TDES_DUKPT])
def test_x9_24_1_dukpt_macs(data_plane: DataPlane, entry: dict[str, Any]) -> None:
    bdk = data_plane.import_key(bytes.fromhex(entry["bdk"]), B0, "TDES_2KEY", "X")
    message = entry["mac_message_padded"]
    for variant, expected in (("REQUEST", entry["mac_request"]),
                              ("RESPONSE", entry["mac_response"])):
        attributes = {"DukptIso9797Algorithm3": {"KeySerialNumber": entry["ksn"],
                                                 "DukptKeyVariant": variant}}
        answer = data_plane.data.generate_mac(KeyIdentifier=bdk, MessageData=message,
                                              GenerationAttributes=attributes, MacLength=4)
        assert answer["Mac"] == expected
        assert answer["KeyCheckValue"] == kcv.compute_kcv(bytes.fromhex(entry["bdk"]),
                                                          "ANSI_X9_24")
        data_plane.data.verify_mac(KeyIdentifier=bdk, MessageData=message, Mac=expected,
                                   VerificationAttributes=attributes)
    for variant, expected in (("REQUEST", entry.get("cmac_request")),
                              ("RESPONSE", entry.get("cmac_response"))):
        if expected is None:
            continue
        attributes = {"DukptCmac": {"KeySerialNumber": entry["ksn"], "DukptKeyVariant": variant}}
        answer = data_plane.data.generate_mac(  # CMAC pads itself: the unpadded message
            KeyIdentifier=bdk, MessageData=entry["mac_message"], GenerationAttributes=attributes)
        assert answer["Mac"] == expected


AES_DUKPT = [(e, algorithm) for e in load("dukpt_aes.json") for algorithm in ("AES_128", "AES_256")
             if e.get(f"mac_generation_key_{algorithm.lower().replace('_', '')}")]


@pytest.mark.parametrize(("entry", "algorithm"), AES_DUKPT,
                         ids=[f"{e['id']}-{a}" for e, a in AES_DUKPT])
def test_aes_dukpt_cmac_uses_the_x9_24_3_mac_key(data_plane: DataPlane, entry: dict[str, Any],
                                                 algorithm: str) -> None:
    bdk = data_plane.import_key(bytes.fromhex(entry["bdk"]), B0, entry["bdk_algorithm"], "X")
    message = os.urandom(24)
    answer = data_plane.data.generate_mac(
        KeyIdentifier=bdk, MessageData=message.hex(),
        GenerationAttributes={"DukptCmac": {"KeySerialNumber": entry["ksn"],
                                            "DukptKeyVariant": "REQUEST",
                                            "DukptDerivationType": algorithm}})
    working = bytes.fromhex(entry[f"mac_generation_key_{algorithm.lower().replace('_', '')}"])
    expected = mac.generate_cmac(working, message, key_algorithm=algorithm)
    assert answer["Mac"] == expected.hex().upper()


def test_emv_mac_matches_a_local_computation(data_plane: DataPlane) -> None:
    imk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    arn = data_plane.import_key(imk, "TR31_E2_EMV_MKEY_INTEGRITY", "TDES_2KEY", "X")
    message = os.urandom(13)
    attributes = {"EmvMac": {"MajorKeyDerivationMode": "EMV_OPTION_A",
                             "PrimaryAccountNumber": "9137631040001422",
                             "PanSequenceNumber": "01",
                             "SessionKeyDerivationMode": "EMV_COMMON_SESSION_KEY",
                             "SessionKeyDerivationValue": {
                                 "ApplicationTransactionCounter": "000B"}}}
    answer = data_plane.data.generate_mac(KeyIdentifier=arn, MessageData=message.hex(),
                                          GenerationAttributes=attributes)
    expected = mac.generate_emv_mac(
        imk, message, pan="9137631040001422", pan_sequence_number="01",
        major_key_derivation_mode="EMV_OPTION_A",
        session_key_derivation_mode="EMV_COMMON_SESSION_KEY", atc=bytes.fromhex("000B"))
    assert answer["Mac"] == expected.hex().upper()
    assert answer["KeyCheckValue"] == "08D7B4"


def test_refusals(data_plane: DataPlane) -> None:
    errors = data_plane.data.exceptions
    key = os.urandom(16)
    generate_only = data_plane.import_key(key, USAGES["CMAC"], "AES_128", "G")
    cmac = {"Algorithm": "CMAC"}
    value = data_plane.data.generate_mac(KeyIdentifier=generate_only, MessageData="00" * 5,
                                         GenerationAttributes=cmac)["Mac"]
    assert value == mac.generate_cmac(key, bytes(5), key_algorithm="AES_128").hex().upper()
    with pytest.raises(errors.ValidationException, match="must include Verify"):
        data_plane.data.verify_mac(KeyIdentifier=generate_only, MessageData="00" * 5,
                                   Mac=value, VerificationAttributes=cmac)
    alg1 = data_plane.import_key(os.urandom(16), USAGES["ISO9797_ALGORITHM1"], "TDES_2KEY", "C")
    iso1 = {"Algorithm": "ISO9797_ALGORITHM1"}
    with pytest.raises(errors.ValidationException, match="block"):
        data_plane.data.generate_mac(KeyIdentifier=alg1, MessageData="00" * 5,
                                     GenerationAttributes=iso1)
    four = data_plane.data.generate_mac(KeyIdentifier=alg1, MessageData="00" * 8,
                                        GenerationAttributes=iso1)["Mac"]
    assert len(four) == 8  # ISO 9797 MACs are 4 bytes by default
    with pytest.raises(errors.ValidationException, match="8 or 16 hex"):
        data_plane.data.verify_mac(KeyIdentifier=alg1, MessageData="00" * 8, Mac=four[:6],
                                   VerificationAttributes=iso1)
    with pytest.raises(errors.ValidationException, match="KeyUsage"):
        data_plane.data.generate_mac(KeyIdentifier=alg1, MessageData="00" * 8,
                                     GenerationAttributes=cmac)
    bdk = data_plane.import_key(os.urandom(16), B0, "TDES_2KEY", "X")
    with pytest.raises(errors.ValidationException, match="at least 8 bytes"):
        data_plane.data.generate_mac(
            KeyIdentifier=bdk, MessageData="00" * 4,
            GenerationAttributes={"DukptCmac": {"KeySerialNumber": "FFFF9876543210E00001",
                                                "DukptKeyVariant": "REQUEST"}})


def test_emv_mac_union_pay_is_the_common_session_key(data_plane: DataPlane) -> None:
    imk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    arn = data_plane.import_key(imk, "TR31_E2_EMV_MKEY_INTEGRITY", "TDES_2KEY", "X")
    message = os.urandom(16)
    attributes = {"EmvMac": {"MajorKeyDerivationMode": "EMV_OPTION_A",
                             "PrimaryAccountNumber": "6212345678901234",
                             "PanSequenceNumber": "00", "SessionKeyDerivationMode": "UNION_PAY",
                             "SessionKeyDerivationValue": {
                                 "ApplicationTransactionCounter": "0001"}}}
    answer = data_plane.data.generate_mac(KeyIdentifier=arn, MessageData=message.hex(),
                                          GenerationAttributes=attributes)
    expected = mac.generate_emv_mac(
        imk, message, pan="6212345678901234", pan_sequence_number="00",
        major_key_derivation_mode="EMV_OPTION_A",
        session_key_derivation_mode="EMV_COMMON_SESSION_KEY", atc=bytes.fromhex("0001"))
    assert answer["Mac"] == expected.hex().upper()


def test_mac_lengths_up_to_the_models_32_bytes(data_plane: DataPlane) -> None:
    key = os.urandom(32)
    arn = data_plane.import_key(key, "TR31_M7_HMAC_KEY", "HMAC_SHA256", "C")
    full = mac.generate_hmac(key, b"\x01" * 10, algorithm="HMAC_SHA256")
    hmac_attributes = {"Algorithm": "HMAC_SHA256"}
    for length in (4, 20, 32):
        answer = data_plane.data.generate_mac(KeyIdentifier=arn, MessageData="01" * 10,
                                              GenerationAttributes=hmac_attributes,
                                              MacLength=length)
        assert answer["Mac"] == full[:length].hex().upper()
    cmac_key = data_plane.import_key(os.urandom(16), USAGES["CMAC"], "AES_128", "C")
    with pytest.raises(data_plane.data.exceptions.ValidationException,
                       match="longer than this algorithm's MAC"):
        data_plane.data.generate_mac(KeyIdentifier=cmac_key, MessageData="01" * 10,
                                     GenerationAttributes={"Algorithm": "CMAC"}, MacLength=20)
