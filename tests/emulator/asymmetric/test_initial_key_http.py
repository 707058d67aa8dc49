"""ExportKey with ExportAttributes.ExportDukptInitialKey over real HTTP: the IPEK (TDES,
ANSI X9.24-1) or initial key (AES, X9.24-3-2017) of a B0 BDK for a KSN, exported in a TR-31
block, a TR-34 block and an RSA cryptogram, checked against the published vectors in
``tests/vectors/dataplane/dukpt_*.json``. The BDK and the KEK go in by RSA wrap, so their
values are known."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from apckx.crypto import certs, kcv, rsa_wrap, tr31, tr34

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "dataplane"


def _first_vectors() -> list[tuple[str, str, str, str, str]]:
    """(id, BDK algorithm, BDK hex, KSN hex, initial key hex): one TDES and one AES."""
    tdes = json.loads((VECTORS / "dukpt_tdes.json").read_text())[0]
    aes = json.loads((VECTORS / "dukpt_aes.json").read_text())[0]
    return [
        (tdes["id"], "TDES_2KEY", tdes["bdk"], tdes["ksn"], tdes["ipek"]),
        (aes["id"], aes["bdk_algorithm"], aes["bdk"], aes["ksn"], aes["initial_key"]),
    ]


VECTOR_CASES = _first_vectors()


def import_known_key(
    emu: Any, key: bytes, algorithm: str, usage: str, modes: dict[str, bool], exportable: bool
) -> str:
    params = emu.client.get_parameters_for_import(
        KeyMaterialType="KEY_CRYPTOGRAM", WrappingKeyAlgorithm="RSA_3072"
    )
    public_key = certs.certificate_from_apc(params["WrappingKeyCertificate"]).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    arn: str = emu.client.import_key(
        KeyMaterial={
            "KeyCryptogram": {
                "Exportable": exportable,
                "ImportToken": params["ImportToken"],
                "KeyAttributes": {
                    "KeyAlgorithm": algorithm,
                    "KeyClass": "SYMMETRIC_KEY",
                    "KeyModesOfUse": modes,
                    "KeyUsage": usage,
                },
                "WrappedKeyCryptogram": rsa_wrap.cryptogram_to_hex(
                    rsa_wrap.wrap_key(key, public_key)
                ),
                "WrappingSpec": "RSA_OAEP_SHA_256",
            }
        }
    )["Key"]["KeyArn"]
    return arn


@pytest.mark.parametrize(
    ("vector_id", "bdk_algorithm", "bdk_hex", "ksn", "ipek_hex"),
    VECTOR_CASES,
    ids=[case[0] for case in VECTOR_CASES],
)
def test_initial_key_export(
    kit: Any,
    emu: Any,
    pki: Any,
    vector_id: str,
    bdk_algorithm: str,
    bdk_hex: str,
    ksn: str,
    ipek_hex: str,
) -> None:
    ipek = bytes.fromhex(ipek_hex)
    ipek_algorithm = "TDES_2KEY" if bdk_algorithm.startswith("TDES") else bdk_algorithm
    kcv_algorithm = "ANSI_X9_24" if ipek_algorithm.startswith("TDES") else "CMAC"
    # A non-exportable BDK still yields initial keys (UG keys-export).
    bdk_arn = import_known_key(
        emu,
        bytes.fromhex(bdk_hex),
        bdk_algorithm,
        "TR31_B0_BASE_DERIVATION_KEY",
        {"DeriveKey": True},
        False,
    )
    kek = os.urandom(16)
    kek_algorithm = "TDES_2KEY" if ipek_algorithm.startswith("TDES") else "AES_128"
    kek_arn = import_known_key(
        emu, kek, kek_algorithm, "TR31_K0_KEY_ENCRYPTION_KEY", kit.MODES_B, True
    )
    attributes = {
        "ExportDukptInitialKey": {"KeySerialNumber": ksn},
        "KeyCheckValueAlgorithm": kcv_algorithm,
    }

    tr31_answer = emu.client.export_key(
        ExportKeyIdentifier=bdk_arn,
        ExportAttributes=attributes,
        KeyMaterial={"Tr31KeyBlock": {"WrappingKeyIdentifier": kek_arn}},
    )["WrappedKey"]
    block = tr31_answer["KeyMaterial"]
    assert block[0] == ("B" if kek_algorithm.startswith("TDES") else "D")
    assert block[5:16] == ("B1" + ipek_algorithm[0] + "X00S0000")
    _, unwrapped = tr31.unwrap_key_block(kek, block, kbpk_algorithm=kek_algorithm)
    assert unwrapped == ipek, vector_id
    assert tr31_answer["KeyCheckValue"] == kcv.compute_kcv(ipek, kcv_algorithm)
    assert tr31_answer["WrappingKeyArn"] == kek_arn

    nonce = os.urandom(8)
    export_params = emu.client.get_parameters_for_export(
        KeyMaterialType="TR34_KEY_BLOCK", SigningKeyAlgorithm="RSA_2048"
    )
    tr34_answer = emu.client.export_key(
        ExportKeyIdentifier=bdk_arn,
        ExportAttributes=attributes,
        KeyMaterial={
            "Tr34KeyBlock": {
                "CertificateAuthorityPublicKeyIdentifier": pki.ca_arn,
                "ExportToken": export_params["ExportToken"],
                "KeyBlockFormat": "X9_TR34_2012",
                "RandomNonce": nonce.hex().upper(),
                "WrappingKeyCertificate": certs.certificate_to_apc(pki.receivers[3072].cert),
            }
        },
    )["WrappedKey"]
    opened = tr34.open_key_block(
        tr34.key_block_from_hex(tr34_answer["KeyMaterial"]),
        pki.receivers[3072].key,
        signing_certificate=certs.certificate_from_apc(export_params["SigningKeyCertificate"]),
        nonce=nonce,
    )
    assert opened.key == ipek
    assert opened.header == "D9999B1" + ipek_algorithm[0] + "X00S0000"
    assert opened.key_attributes is None

    cryptogram = emu.client.export_key(
        ExportKeyIdentifier=bdk_arn,
        ExportAttributes=attributes,
        KeyMaterial={
            "KeyCryptogram": {
                "CertificateAuthorityPublicKeyIdentifier": pki.ca_arn,
                "WrappingKeyCertificate": certs.certificate_to_apc(pki.receivers[4096].cert),
            }
        },
    )["WrappedKey"]
    assert (
        rsa_wrap.unwrap_key(
            rsa_wrap.cryptogram_from_hex(cryptogram["KeyMaterial"]), pki.receivers[4096].key
        )
        == ipek
    )


def test_initial_key_refusals(kit: Any, emu: Any) -> None:
    aes_bdk = import_known_key(
        emu, os.urandom(16), "AES_128", "TR31_B0_BASE_DERIVATION_KEY", {"DeriveKey": True}, True
    )
    kek = kit.create_key(emu, "AES_256")
    tdes_ksn = {"ExportDukptInitialKey": {"KeySerialNumber": "FFFF9876543210E00001"}}
    kit.refused(
        lambda: emu.client.export_key(
            ExportKeyIdentifier=aes_bdk,
            ExportAttributes=tdes_ksn,
            KeyMaterial={"Tr31KeyBlock": {"WrappingKeyIdentifier": kek["KeyArn"]}},
        ),
        match="24 hex characters",
    )
    kit.refused(
        lambda: emu.client.export_key(
            ExportKeyIdentifier=kek["KeyArn"],
            ExportAttributes=tdes_ksn,
            KeyMaterial={"Tr31KeyBlock": {"WrappingKeyIdentifier": kek["KeyArn"]}},
        ),
        match="TR31_B0_BASE_DERIVATION_KEY",
    )
