"""Vectors of ``tests/vectors/dataplane/`` that no other test sent through the emulator, though
APC's inputs can carry them: AWS's sample AES-128 DUKPT PIN keys (``dukpt_aes.json``,
``aws_sample_*``: a PIN block under the vector's PIN key must come out under a PEK, and back)
and pyemv's secure-messaging command MAC (``emv.json``, ``pyemv_sm_command_mac``), byte for
byte over HTTP. (X9.24-3's AES-256 BDK entries are here too: their AES-128 PIN keys.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apckx.crypto import pin_block

from .conftest import DataPlane

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "dataplane"
PEK = bytes.fromhex("1C1C2C2C3D3D4E4E5F5F6E6E7D7D8C8C")
PEK_MODES = {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}
PAN = "4111111111111111"
PIN = "1234"


def entries(name: str, keep: Any) -> list[dict[str, Any]]:
    found = [e for e in json.loads((VECTORS / name).read_text()) if keep(e)]
    assert found
    return found


#: PIN keys with no encrypted PIN block beside them (test_pin.py takes those that have one):
#: AWS's sample BDK and X9.24-3's AES-256 BDK.
DUKPT_PIN_KEYS = entries("dukpt_aes.json",
                         lambda e: "pin_key_aes128" in e and "encrypted_pin_block" not in e)


@pytest.fixture(scope="module")
def keys(data_plane: DataPlane) -> dict[str, str]:
    found = {"pek": data_plane.import_key(PEK, "TR31_P0_PIN_ENCRYPTION_KEY", "TDES_2KEY",
                                          PEK_MODES)}
    for entry in DUKPT_PIN_KEYS:
        name = entry["bdk"] + entry["bdk_algorithm"]
        if name not in found:
            found[name] = data_plane.import_key(
                bytes.fromhex(entry["bdk"]), "TR31_B0_BASE_DERIVATION_KEY",
                entry["bdk_algorithm"], {"DeriveKey": True})
    return found


@pytest.mark.parametrize("entry", DUKPT_PIN_KEYS, ids=[e["id"] for e in DUKPT_PIN_KEYS])
def test_aes_dukpt_pin_keys(data_plane: DataPlane, keys: dict[str, str],
                            entry: dict[str, Any]) -> None:
    keys = dict(keys, bdk=keys[entry["bdk"] + entry["bdk_algorithm"]])
    pin_key = bytes.fromhex(entry["pin_key_aes128"])
    dukpt = {"KeySerialNumber": entry["ksn"], "DukptKeyDerivationType": "AES_128"}
    incoming = pin_block.encipher_iso4_pin_block(pin_key, PIN, PAN).hex().upper()
    out = data_plane.data.translate_pin_data(
        IncomingKeyIdentifier=keys["bdk"], OutgoingKeyIdentifier=keys["pek"],
        IncomingTranslationAttributes={"IsoFormat4": {"PrimaryAccountNumber": PAN}},
        OutgoingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": PAN}},
        EncryptedPinBlock=incoming, IncomingDukptAttributes=dukpt)
    assert out["PinBlock"] == pin_block.encrypt_pin_block(
        PEK, PIN, "ISO_FORMAT_0", pan=PAN).hex().upper()
    back = data_plane.data.translate_pin_data(
        IncomingKeyIdentifier=keys["pek"], OutgoingKeyIdentifier=keys["bdk"],
        IncomingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": PAN}},
        OutgoingTranslationAttributes={"IsoFormat4": {"PrimaryAccountNumber": PAN}},
        EncryptedPinBlock=out["PinBlock"], OutgoingDukptAttributes=dukpt)
    assert pin_block.decipher_iso4_pin_block(pin_key, bytes.fromhex(back["PinBlock"]),
                                             PAN) == PIN


def test_pyemv_secure_messaging_command_mac(data_plane: DataPlane) -> None:
    entry = entries("emv.json", lambda e: e["id"] == "pyemv_sm_command_mac")[0]
    smi = data_plane.import_key(bytes.fromhex(entry["imk_smi"]), "TR31_E2_EMV_MKEY_INTEGRITY",
                                "TDES_2KEY", {"DeriveKey": True})
    attributes = {"EmvMac": {
        "MajorKeyDerivationMode": entry["major_key_derivation_mode"],
        "PrimaryAccountNumber": entry["pan"], "PanSequenceNumber": entry["pan_sequence_number"],
        "SessionKeyDerivationMode": "EMV_COMMON_SESSION_KEY",
        "SessionKeyDerivationValue": {"ApplicationCryptogram": entry["session_key_r"]}}}
    answer = data_plane.data.generate_mac(
        KeyIdentifier=smi, MessageData=entry["message_data"], GenerationAttributes=attributes,
        MacLength=len(entry["mac"]) // 2)
    assert answer["Mac"] == entry["mac"]
    data_plane.data.verify_mac(KeyIdentifier=smi, MessageData=entry["message_data"],
                               Mac=entry["mac"], VerificationAttributes=attributes)
