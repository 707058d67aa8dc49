"""RSA wrap (KeyCryptogram, both OAEP hashes), RSA key pairs (D1/S0/K2, certificates under
the RSA account CA, CSRs) and the BYOCA TR-34 forms, over real HTTP through boto3.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from apckx.crypto import certs, kcv, rsa_wrap, tr34

Emulator = Any
Pki = Any
Party = Any
S0 = "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE"
MODES_B = {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}


# --- RSA wrap --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wrapping_algorithm", "algorithm", "spec"),
    [
        ("RSA_2048", "TDES_3KEY", "RSA_OAEP_SHA_256"),
        ("RSA_2048", "TDES_2KEY", "RSA_OAEP_SHA_512"),
        ("RSA_3072", "AES_128", "RSA_OAEP_SHA_512"),
        ("RSA_4096", "AES_128", "RSA_OAEP_SHA_256"),
    ],
)
def test_key_cryptogram_import(
    kit: Any, emu: Emulator, wrapping_algorithm: str, algorithm: str, spec: str
) -> None:
    params = emu.client.get_parameters_for_import(
        KeyMaterialType="KEY_CRYPTOGRAM",
        WrappingKeyAlgorithm=wrapping_algorithm,
        ReuseLastGeneratedToken=False,
    )
    public_key = certs.certificate_from_apc(params["WrappingKeyCertificate"]).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    cryptogram = rsa_wrap.wrap_key(kit.KEYS[algorithm], public_key, spec)
    key = emu.client.import_key(
        KeyMaterial={
            "KeyCryptogram": {
                "Exportable": False,
                "ImportToken": params["ImportToken"],
                "KeyAttributes": {
                    "KeyAlgorithm": algorithm,
                    "KeyClass": "SYMMETRIC_KEY",
                    "KeyModesOfUse": {"DeriveKey": True},
                    "KeyUsage": "TR31_B0_BASE_DERIVATION_KEY",
                },
                "WrappedKeyCryptogram": rsa_wrap.cryptogram_to_hex(cryptogram),
                "WrappingSpec": spec,
            }
        }
    )["Key"]
    assert key["Exportable"] is False
    assert key["KeyAttributes"]["KeyUsage"] == "TR31_B0_BASE_DERIVATION_KEY"
    assert kcv.kcv_matches(key["KeyCheckValue"], kit.kcv_of(kit.KEYS[algorithm], algorithm))


@pytest.mark.parametrize("spec", ["RSA_OAEP_SHA_256", "RSA_OAEP_SHA_512"])
@pytest.mark.parametrize(("bits", "algorithm"), [(2048, "TDES_3KEY"), (4096, "AES_128")])
def test_key_cryptogram_export(
    kit: Any, emu: Emulator, pki: Pki, bits: int, algorithm: str, spec: str
) -> None:
    key = kit.create_key(emu, algorithm)
    wrapped = emu.client.export_key(
        ExportKeyIdentifier=key["KeyArn"],
        KeyMaterial={
            "KeyCryptogram": {
                "CertificateAuthorityPublicKeyIdentifier": pki.ca_arn,
                "WrappingKeyCertificate": certs.certificate_to_apc(pki.receivers[bits].cert),
                "WrappingSpec": spec,
            }
        },
    )["WrappedKey"]
    assert wrapped["WrappedKeyMaterialFormat"] == "KEY_CRYPTOGRAM"
    assert len(wrapped["KeyMaterial"]) == bits // 4
    material = rsa_wrap.unwrap_key(
        rsa_wrap.cryptogram_from_hex(wrapped["KeyMaterial"]), pki.receivers[bits].key, spec
    )
    assert kcv.kcv_matches(kit.kcv_of(material, algorithm), key["KeyCheckValue"])


# --- RSA key pairs, CSRs and BYOCA -------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "algorithm", "modes"),
    [
        ("TR31_K2_TR34_ASYMMETRIC_KEY", "RSA_2048", {"Decrypt": True, "Unwrap": True}),
        ("TR31_D1_ASYMMETRIC_KEY_FOR_DATA_ENCRYPTION", "RSA_3072", MODES_B),
        (S0, "RSA_4096", {"Sign": True}),
    ],
)
def test_rsa_key_pairs(
    kit: Any, emu: Emulator, usage: str, algorithm: str, modes: dict[str, bool]
) -> None:
    key = emu.client.create_key(
        Exportable=False,
        KeyAttributes={
            "KeyAlgorithm": algorithm,
            "KeyClass": "ASYMMETRIC_KEY_PAIR",
            "KeyModesOfUse": modes,
            "KeyUsage": usage,
        },
    )["Key"]
    assert key["KeyCheckValueAlgorithm"] == "SHA_1" and len(key["KeyCheckValue"]) == 8
    answer = emu.client.get_public_key_certificate(KeyIdentifier=key["KeyArn"])
    leaf = certs.certificate_from_apc(answer["KeyCertificate"])
    root = certs.certificate_from_apc(answer["KeyCertificateChain"])
    assert leaf.public_key().key_size == int(algorithm[4:])  # type: ignore[union-attr]
    assert root.public_key().key_size == 4096  # type: ignore[union-attr]
    certs.verify_rsa_chain(leaf, root, require_self_signed_root=True)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= dt.timedelta(days=90, minutes=2)
    assert leaf.signature_hash_algorithm is not None
    assert leaf.signature_hash_algorithm.name == "sha512"
    csr = certs.csr_from_apc(
        emu.client.get_certificate_signing_request(
            KeyIdentifier=key["KeyArn"],
            SigningAlgorithm="SHA384",
            CertificateSubject={"CommonName": "terminal-kdh", "Country": "US"},
        )["CertificateSigningRequest"]
    )
    assert base64.b64decode(
        emu.client.get_certificate_signing_request(
            KeyIdentifier=key["KeyArn"],
            SigningAlgorithm="SHA256",
            CertificateSubject={"CommonName": "x"},
        )["CertificateSigningRequest"]
    ).startswith(b"-----BEGIN CERTIFICATE REQUEST-----")
    assert csr.public_key() == leaf.public_key()
    assert csr.subject.rfc4514_string() == "C=US,CN=terminal-kdh"
    assert csr.signature_hash_algorithm is not None
    assert csr.signature_hash_algorithm.name == "sha384"


def test_rsa_key_pair_refusals(kit: Any, emu: Emulator) -> None:
    kit.refused(
        lambda: emu.client.create_key(
            Exportable=False,
            KeyAttributes={
                "KeyAlgorithm": "RSA_2048",
                "KeyClass": "ASYMMETRIC_KEY_PAIR",
                "KeyModesOfUse": {"DeriveKey": True},
                "KeyUsage": "TR31_K2_TR34_ASYMMETRIC_KEY",
            },
        ),
        match="not valid for TR31_K2",
    )
    kek = kit.create_key(emu, "AES_128")
    kit.refused(
        lambda: emu.client.get_certificate_signing_request(
            KeyIdentifier=kek["KeyArn"],
            SigningAlgorithm="SHA256",
            CertificateSubject={"CommonName": "x"},
        ),
        match="RSA key pairs",
    )


def _issue_from_csr(pki: Pki, csr_apc: str) -> x509.Certificate:
    csr = certs.csr_from_apc(csr_apc)
    public_key = csr.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    return certs.issue_rsa_certificate(
        pki.ca.key, pki.ca.cert, public_key, csr.subject, purpose="signing_and_wrapping"
    )


def test_byoca_import_and_export(kit: Any, emu: Emulator, pki: Pki) -> None:
    """UG keyexchange-byoca: a K2 key pair receives, an kit.S0 key pair signs, certificates from
    the customer's own CA (issued from the emulator's CSRs)."""
    k2 = emu.client.create_key(
        Exportable=False,
        KeyAttributes={
            "KeyAlgorithm": "RSA_3072",
            "KeyClass": "ASYMMETRIC_KEY_PAIR",
            "KeyModesOfUse": {"Decrypt": True, "Unwrap": True},
            "KeyUsage": "TR31_K2_TR34_ASYMMETRIC_KEY",
        },
    )["Key"]
    k2_cert = _issue_from_csr(
        pki,
        emu.client.get_certificate_signing_request(
            KeyIdentifier=k2["KeyArn"],
            SigningAlgorithm="SHA256",
            CertificateSubject={"CommonName": "apc-krd"},
        )["CertificateSigningRequest"],
    )
    nonce = os.urandom(8)
    block = kit.build_block(pki, k2_cert, "AES_128", nonce=nonce)
    key = kit.tr34_import(
        emu,
        pki,
        {"ImportToken": None},
        block,
        nonce,
        WrappingKeyIdentifier=k2["KeyArn"],
        WrappingKeyCertificate=certs.certificate_to_apc(k2_cert),
    )
    assert kcv.kcv_matches(key["KeyCheckValue"], kit.kcv_of(kit.KEYS["AES_128"], "AES_128"))
    kit.refused(
        lambda: kit.tr34_import(
            emu,
            pki,
            {"ImportToken": None},
            block,
            nonce,
            WrappingKeyIdentifier=k2["KeyArn"],
            WrappingKeyCertificate=certs.certificate_to_apc(pki.receivers[3072].cert),
        ),
        match="does not hold the public key",
    )

    s0 = emu.client.create_key(
        Exportable=False,
        KeyAttributes={
            "KeyAlgorithm": "RSA_2048",
            "KeyClass": "ASYMMETRIC_KEY_PAIR",
            "KeyModesOfUse": {"Sign": True},
            "KeyUsage": kit.S0,
        },
    )["Key"]
    s0_cert = _issue_from_csr(
        pki,
        emu.client.get_certificate_signing_request(
            KeyIdentifier=s0["KeyArn"],
            SigningAlgorithm="SHA256",
            CertificateSubject={"CommonName": "apc-kdh"},
        )["CertificateSigningRequest"],
    )
    exported = kit.create_key(emu, "TDES_2KEY")
    wrapped = emu.client.export_key(
        ExportKeyIdentifier=exported["KeyArn"],
        KeyMaterial={
            "Tr34KeyBlock": {
                "CertificateAuthorityPublicKeyIdentifier": pki.ca_arn,
                "SigningKeyIdentifier": s0["KeyArn"],
                "SigningKeyCertificate": certs.certificate_to_apc(s0_cert),
                "KeyBlockFormat": "X9_TR34_2012",
                "RandomNonce": nonce.hex().upper(),
                "WrappingKeyCertificate": certs.certificate_to_apc(pki.receivers[2048].cert),
            }
        },
    )["WrappedKey"]
    opened = tr34.open_key_block(
        tr34.key_block_from_hex(wrapped["KeyMaterial"]),
        pki.receivers[2048].key,
        signing_certificate=s0_cert,
        nonce=nonce,
    )
    assert kcv.kcv_matches(kit.kcv_of(opened.key, "TDES_2KEY"), exported["KeyCheckValue"])
    kit.refused(
        lambda: emu.client.export_key(
            ExportKeyIdentifier=exported["KeyArn"],
            KeyMaterial={
                "Tr34KeyBlock": {
                    "CertificateAuthorityPublicKeyIdentifier": pki.ca_arn,
                    "SigningKeyIdentifier": s0["KeyArn"],
                    "SigningKeyCertificate": certs.certificate_to_apc(k2_cert),
                    "KeyBlockFormat": "X9_TR34_2012",
                    "WrappingKeyCertificate": certs.certificate_to_apc(pki.receivers[2048].cert),
                }
            },
        ),
        match="must match",
    )
