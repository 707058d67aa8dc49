"""DUKPT EncryptData/DecryptData/ReEncryptData over HTTP: X9.24-1 TDES and X9.24-3 AES
vectors byte for byte (the BDK imported as a TR-31 block under a KEK), variants, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from apckx.crypto import cipher

from .conftest import DataPlane

VECTORS_DIR = Path(__file__).resolve().parents[2] / "vectors" / "dataplane"
B0 = "TR31_B0_BASE_DERIVATION_KEY"
D0 = "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY"
TDES = [e for e in json.loads((VECTORS_DIR / "dukpt_tdes.json").read_text())
        if "data_request_key" in e]
AES = [(e, algorithm) for e in json.loads((VECTORS_DIR / "dukpt_aes.json").read_text())
       for algorithm in ("AES_128", "AES_256")
       if f"data_encryption_key_{algorithm.lower().replace('_', '')}" in e]


def dukpt_attributes(ksn: str, **extra: str) -> dict[str, Any]:
    return {"Dukpt": {"KeySerialNumber": ksn, **extra}}


@pytest.mark.parametrize("entry", TDES, ids=[e["id"] for e in TDES])
def test_tdes_dukpt_data_keys(data_plane: DataPlane, entry: dict[str, Any]) -> None:
    bdk = data_plane.import_key(bytes.fromhex(entry["bdk"]), B0, "TDES_2KEY", "X")
    data = bytes.fromhex(entry.get("data_request_plaintext") or os.urandom(24).hex())
    for variant, key_name in (("REQUEST", "data_request_key"),
                              ("RESPONSE", "data_response_key")):
        if key_name not in entry:
            continue
        attributes = dukpt_attributes(entry["ksn"], DukptKeyVariant=variant, Mode="CBC")
        answer = data_plane.data.encrypt_data(KeyIdentifier=bdk, PlainText=data.hex(),
                                              EncryptionAttributes=attributes)
        expected = cipher.encrypt_symmetric(bytes.fromhex(entry[key_name]), "TDES", "CBC", data)
        assert answer["CipherText"] == expected.hex().upper()
        if variant == "REQUEST" and "data_request_ciphertext" in entry:
            assert answer["CipherText"] == entry["data_request_ciphertext"]
        back = data_plane.data.decrypt_data(KeyIdentifier=bdk, CipherText=answer["CipherText"],
                                            DecryptionAttributes=attributes)
        assert back["PlainText"] == data.hex().upper()


@pytest.mark.parametrize(("entry", "algorithm"), AES, ids=[f"{e['id']}-{a}" for e, a in AES])
def test_aes_dukpt_data_keys(data_plane: DataPlane, entry: dict[str, Any],
                             algorithm: str) -> None:
    bdk = data_plane.import_key(bytes.fromhex(entry["bdk"]), B0, entry["bdk_algorithm"], "X")
    data, iv = os.urandom(32), os.urandom(16)
    attributes = dukpt_attributes(entry["ksn"], DukptKeyVariant="REQUEST",
                                  DukptKeyDerivationType=algorithm, Mode="CBC",
                                  InitializationVector=iv.hex())
    answer = data_plane.data.encrypt_data(KeyIdentifier=bdk, PlainText=data.hex(),
                                          EncryptionAttributes=attributes)
    working = entry[f"data_encryption_key_{algorithm.lower().replace('_', '')}"]
    expected = cipher.encrypt_symmetric(bytes.fromhex(working), "AES", "CBC", data, iv)
    assert answer["CipherText"] == expected.hex().upper()


def test_re_encrypt_from_dukpt_to_a_d0_key(data_plane: DataPlane) -> None:
    entry = TDES[0]
    bdk = data_plane.import_key(bytes.fromhex(entry["bdk"]), B0, "TDES_2KEY", "X")
    d0_key = os.urandom(16)
    d0 = data_plane.import_key(d0_key, D0, "AES_128", "B")
    data = os.urandom(32)
    incoming = cipher.encrypt_symmetric(bytes.fromhex(entry["data_request_key"]), "TDES", "CBC",
                                        data)
    answer = data_plane.data.re_encrypt_data(
        IncomingKeyIdentifier=bdk, OutgoingKeyIdentifier=d0, CipherText=incoming.hex(),
        IncomingEncryptionAttributes=dukpt_attributes(entry["ksn"], DukptKeyVariant="REQUEST"),
        OutgoingEncryptionAttributes={"Symmetric": {"Mode": "ECB"}})
    assert bytes.fromhex(answer["CipherText"]) == cipher.encrypt_symmetric(d0_key, "AES", "ECB",
                                                                          data)


def test_refusals(data_plane: DataPlane) -> None:
    errors = data_plane.data.exceptions
    bdk = data_plane.import_key(os.urandom(16), B0, "TDES_2KEY", "X")
    with pytest.raises(errors.ValidationException, match="multiple of 8 bytes"):
        data_plane.data.encrypt_data(KeyIdentifier=bdk, PlainText="00" * 12,
                                     EncryptionAttributes=dukpt_attributes(
                                         "FFFF9876543210E00001"))
    with pytest.raises(errors.ValidationException):
        data_plane.data.encrypt_data(KeyIdentifier=bdk, PlainText="00" * 16,
                                     EncryptionAttributes=dukpt_attributes(
                                         "FFFF9876543210E00001",
                                         DukptKeyDerivationType="AES_256"))
    d0 = data_plane.import_key(os.urandom(16), D0, "AES_128", "B")
    with pytest.raises(errors.ValidationException, match="KeyUsage"):
        data_plane.data.encrypt_data(KeyIdentifier=d0, PlainText="00" * 16,
                                     EncryptionAttributes=dukpt_attributes(
                                         "FFFF9876543210E00001"))
