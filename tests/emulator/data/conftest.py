"""Fixtures for the data-plane tests: an emulator with a control-plane and a data-plane boto3
client on one URL, and ``import_key``, which brings a vector's cleartext key in the way a
customer would: a KEK over ECDH (root CA, K3 key, TR-31 under the derived KBPK), then the key
as a TR-31 block under that KEK.

    def test_cvv(data_plane):
        cvk = data_plane.import_key(bytes.fromhex("0123..."), "TR31_C0_CARD_VERIFICATION_KEY",
                                    "TDES_2KEY", {"Generate": True, "Verify": True})
        data_plane.data.generate_card_validation_data(KeyIdentifier=cvk, ...)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from apckx.crypto import certs, ecdh, tr31
from apckx.emulator.pytest_plugin import make_emulator_client
from apckx.emulator.server import EmulatorConfig, RunningEmulator, start_emulator

ROOT_ATTRIBUTES = {
    "KeyUsage": "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE",
    "KeyClass": "PUBLIC_KEY",
    "KeyAlgorithm": "ECC_NIST_P521",
    "KeyModesOfUse": {"Verify": True},
}
K3_ATTRIBUTES = {
    "KeyUsage": "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT",
    "KeyClass": "ASYMMETRIC_KEY_PAIR",
    "KeyAlgorithm": "ECC_NIST_P521",
    "KeyModesOfUse": {"DeriveKey": True},
}
KEK_ALGORITHM = "AES_256"


@dataclass
class DataPlane:
    """One emulator: ``control`` and ``data`` boto3 clients, ``import_key``, ``kek``."""

    emulator: RunningEmulator
    control: Any
    data: Any
    kek_arn: str = ""
    kek: bytes = field(default=b"", repr=False)
    ecdh: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        return self.emulator.url

    def ensure_ecdh(self) -> dict[str, Any]:
        """The ECDH parties (made once): an imported root CA, an APC K3 key pair (DeriveKeyUsage
        K1), and a leaf certificate and key on the test's side."""
        if self.ecdh:
            return self.ecdh
        client = self.control
        ca_key, ca_cert = certs.new_sender_ca("P521")
        root_arn = client.import_key(KeyMaterial={"RootCertificatePublicKey": {
            "KeyAttributes": ROOT_ATTRIBUTES,
            "PublicKeyCertificate": certs.certificate_to_apc(ca_cert)}})["Key"]["KeyArn"]
        leaf_key, leaf_cert = certs.new_ecdh_leaf(ca_key, ca_cert, "P521")
        k3_arn = client.create_key(
            KeyAttributes=K3_ATTRIBUTES, Exportable=True,
            DeriveKeyUsage="TR31_K1_KEY_BLOCK_PROTECTION_KEY")["Key"]["KeyArn"]
        apc_cert = certs.certificate_from_apc(
            client.get_public_key_certificate(KeyIdentifier=k3_arn)["KeyCertificate"])
        self.ecdh = {"root": root_arn, "k3": k3_arn, "leaf_key": leaf_key,
                     "leaf_cert": leaf_cert, "apc_public_key": apc_cert.public_key()}
        return self.ecdh

    def ecdh_block(self, key: bytes, usage: str, algorithm: str,
                   modes: Mapping[str, bool] | str = "B", *,
                   derive_key_algorithm: str = KEK_ALGORITHM,
                   exportability: str = "E") -> dict[str, Any]:
        """A ``DiffieHellmanTr31KeyBlock`` member carrying ``key`` (ImportKey's and
        TranslateKeyMaterial's incoming form)."""
        party = self.ensure_ecdh()
        shared_info = ecdh.new_shared_info()
        kbpk = ecdh.derive_kbpk(party["leaf_key"], party["apc_public_key"],
                                shared_info=shared_info, key_algorithm=derive_key_algorithm)
        header = tr31.build_header(key_usage=usage, key_algorithm=algorithm,
                                   kbpk_algorithm=derive_key_algorithm, modes_of_use=modes,
                                   exportability=exportability)
        return {
            "PrivateKeyIdentifier": party["k3"],
            "CertificateAuthorityPublicKeyIdentifier": party["root"],
            "PublicKeyCertificate": certs.certificate_to_apc(party["leaf_cert"]),
            "DeriveKeyAlgorithm": derive_key_algorithm,
            "KeyDerivationFunction": "NIST_SP800",
            "KeyDerivationHashAlgorithm": "SHA_256",
            "DerivationData": {"SharedInformation": shared_info.hex()},
            "WrappedKeyBlock": tr31.wrap_key_block(kbpk, header, key),
        }

    def ensure_kek(self) -> str:
        """A K0 AES-256 KEK whose cleartext the test knows (imported over ECDH once)."""
        if self.kek_arn:
            return self.kek_arn
        self.kek = os.urandom(32)
        member = self.ecdh_block(self.kek, "TR31_K0_KEY_ENCRYPTION_KEY", KEK_ALGORITHM)
        self.kek_arn = self.control.import_key(
            KeyMaterial={"DiffieHellmanTr31KeyBlock": member})["Key"]["KeyArn"]
        return self.kek_arn

    def wrap(self, key: bytes, usage: str, algorithm: str,
             modes: Mapping[str, bool] | str = "B") -> str:
        """``key`` as a TR-31 block under the test KEK (also a dynamic WrappedKey)."""
        self.ensure_kek()
        header = tr31.build_header(key_usage=usage, key_algorithm=algorithm,
                                   kbpk_algorithm=KEK_ALGORITHM, modes_of_use=modes)
        block: str = tr31.wrap_key_block(self.kek, header, key)
        return block

    def import_key(self, key: bytes, usage: str, algorithm: str,
                   modes: Mapping[str, bool] | str = "B", **extra: Any) -> str:
        """Import a cleartext key (TR-31 under the test KEK); returns its ARN."""
        block = self.wrap(key, usage, algorithm, modes)
        arn: str = self.control.import_key(KeyMaterial={"Tr31KeyBlock": {
            "WrappingKeyIdentifier": self.kek_arn, "WrappedKeyBlock": block}},
            **extra)["Key"]["KeyArn"]
        return arn


def start_data_plane(config: EmulatorConfig | None = None) -> DataPlane:
    emulator = start_emulator(config or EmulatorConfig())
    return DataPlane(
        emulator=emulator,
        control=make_emulator_client(emulator.url, max_attempts=1),
        data=make_emulator_client(emulator.url, service="payment-cryptography-data",
                                  max_attempts=1),
    )


@pytest.fixture(scope="module")
def data_plane() -> Iterator[DataPlane]:
    """One emulator per test module (keys accumulate; tests create their own)."""
    plane = start_data_plane()
    try:
        yield plane
    finally:
        plane.control.close()
        plane.data.close()
        plane.emulator.stop()
