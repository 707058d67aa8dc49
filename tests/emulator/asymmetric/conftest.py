"""Shared fixtures for the TR-34 / RSA-wrap / RSA key pair tests over real HTTP (issue 9).

One emulator serves the whole package (its RSA-4096 account CA is made once) and one
counterparty PKI (an RSA-4096 CA imported as a root, a KDH signing leaf, KRD leaves of each
size) is made once: RSA-4096 key generation is the slow part. Helpers reach the tests as the
``kit`` fixture (test modules cannot import each other under ``--import-mode=importlib``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from apckx.crypto import certs, kcv, tr34
from apckx.emulator.pytest_plugin import make_emulator_client, start_test_emulator
from apckx.emulator.server import RunningEmulator

S0 = "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE"
MODES_B = {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}
DAY = 86400.0


@dataclass(frozen=True)
class Party:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate


@dataclass(frozen=True)
class Pki:
    """A counterparty: its CA (imported into the emulator as a root) and its leaves."""

    ca: Party
    ca_arn: str
    signer: Party  # KDH signing leaf
    receivers: dict[int, Party]  # KRD / RSA-wrap leaves by size
    other_signer: Party  # a second signing key, same CA


@dataclass
class Emulator:
    running: RunningEmulator
    client: Any

    def account(self) -> Any:
        return self.running.registry.backend(self.running.config.account_id, "us-east-1")


@pytest.fixture(scope="package")
def emu() -> Iterator[Emulator]:
    running = start_test_emulator()
    client = make_emulator_client(running.url)
    try:
        yield Emulator(running, client)
    finally:
        client.close()
        running.stop()


def import_root(client: Any, cert: x509.Certificate) -> str:
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    arn: str = client.import_key(
        KeyMaterial={
            "RootCertificatePublicKey": {
                "KeyAttributes": {
                    "KeyAlgorithm": f"RSA_{key.key_size}",
                    "KeyClass": "PUBLIC_KEY",
                    "KeyModesOfUse": {"Verify": True},
                    "KeyUsage": S0,
                },
                "PublicKeyCertificate": certs.certificate_to_apc(cert),
            }
        }
    )["Key"]["KeyArn"]
    return arn


@pytest.fixture(scope="package")
def pki(emu: Emulator) -> Pki:
    ca_key, ca_cert = certs.new_rsa_sender_ca("RSA_4096")
    signer = Party(*certs.new_rsa_signing_leaf(ca_key, ca_cert, "RSA_2048"))
    other = Party(*certs.new_rsa_signing_leaf(ca_key, ca_cert, "RSA_2048"))
    receivers = {
        bits: Party(*certs.new_rsa_wrapping_leaf(ca_key, ca_cert, bits))
        for bits in (2048, 3072, 4096)
    }
    return Pki(Party(ca_key, ca_cert), import_root(emu.client, ca_cert), signer, receivers, other)


def refused(call: Any, error: str = "ValidationException", match: str = "") -> str:
    """Run ``call`` and check botocore parsed the refusal to ``error``; return the message."""
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == error
    assert type(caught.value).__name__ == error  # botocore's modeled exception class
    message = str(caught.value.response["Error"]["Message"])
    assert match in message, message
    return message


KEYS = {
    "TDES_2KEY": bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"),
    "TDES_3KEY": bytes.fromhex("0123456789ABCDEFFEDCBA987654321089ABCDEF01234567"),
    "AES_128": bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C"),
}


def kcv_of(key: bytes, algorithm: str) -> str:
    return kcv.compute_kcv(key, "CMAC" if algorithm.startswith("AES") else "ANSI_X9_24")


def import_parameters(emu: Emulator, material_type: str, algorithm: str) -> dict[str, Any]:
    params: dict[str, Any] = emu.client.get_parameters_for_import(
        KeyMaterialType=material_type, WrappingKeyAlgorithm=algorithm
    )
    return params


def build_block(
    pki: Pki,
    krd_cert: x509.Certificate,
    algorithm: str,
    *,
    nonce: bytes | None,
    signer: Party | None = None,
    usage: str = "K0",
    mode: str = "B",
) -> bytes:
    header = tr34.build_tr34_header(key_usage=usage, key_algorithm=algorithm, mode_of_use=mode)
    party = signer or pki.signer
    return tr34.build_key_block(
        KEYS[algorithm],
        header,
        signing_key=party.key,
        signing_certificate=pki.signer.cert,
        wrapping_certificate=krd_cert,
        nonce=nonce,
        signing_time=None if nonce else dt.datetime.now(dt.UTC),
    )


def tr34_import(
    emu: Emulator,
    pki: Pki,
    params: dict[str, Any],
    block: bytes,
    nonce: bytes | None,
    **changes: Any,
) -> dict[str, Any]:
    member: dict[str, Any] = {
        "CertificateAuthorityPublicKeyIdentifier": pki.ca_arn,
        "ImportToken": params["ImportToken"],
        "KeyBlockFormat": "X9_TR34_2012",
        "SigningKeyCertificate": certs.certificate_to_apc(pki.signer.cert),
        "WrappedKeyBlock": tr34.key_block_to_hex(block),
    }
    if nonce is not None:
        member["RandomNonce"] = nonce.hex().upper()
    member.update(changes)
    member = {name: value for name, value in member.items() if value is not None}
    key: dict[str, Any] = emu.client.import_key(KeyMaterial={"Tr34KeyBlock": member})["Key"]
    return key


def create_key(
    emu: Emulator,
    algorithm: str,
    usage: str = "TR31_K0_KEY_ENCRYPTION_KEY",
    modes: dict[str, bool] | None = None,
    exportable: bool = True,
) -> dict[str, Any]:
    key: dict[str, Any] = emu.client.create_key(
        Exportable=exportable,
        KeyAttributes={
            "KeyAlgorithm": algorithm,
            "KeyClass": "SYMMETRIC_KEY",
            "KeyModesOfUse": modes or MODES_B,
            "KeyUsage": usage,
        },
    )["Key"]
    return key


def export_tr34(
    emu: Emulator, pki: Pki, key_arn: str, krd: Party, nonce: bytes | None, **changes: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    params = emu.client.get_parameters_for_export(
        KeyMaterialType="TR34_KEY_BLOCK", SigningKeyAlgorithm="RSA_2048"
    )
    member: dict[str, Any] = {
        "CertificateAuthorityPublicKeyIdentifier": pki.ca_arn,
        "ExportToken": params["ExportToken"],
        "KeyBlockFormat": "X9_TR34_2012",
        "WrappingKeyCertificate": certs.certificate_to_apc(krd.cert),
    }
    if nonce is not None:
        member["RandomNonce"] = nonce.hex().upper()
    member.update(changes)
    wrapped = emu.client.export_key(
        ExportKeyIdentifier=key_arn, KeyMaterial={"Tr34KeyBlock": member}
    )["WrappedKey"]
    return params, wrapped


@pytest.fixture(scope="package")
def kit() -> SimpleNamespace:
    """The helpers above, for the test modules."""
    return SimpleNamespace(
        S0=S0,
        MODES_B=MODES_B,
        DAY=DAY,
        KEYS=KEYS,
        Party=Party,
        import_root=import_root,
        refused=refused,
        kcv_of=kcv_of,
        import_parameters=import_parameters,
        build_block=build_block,
        tr34_import=tr34_import,
        create_key=create_key,
        export_tr34=export_tr34,
    )
