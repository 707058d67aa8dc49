"""--state: everything survives a restart, sealed at rest; material still works afterwards."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from apckx.crypto import certs, ecdh, keys, tr31
from apckx.emulator.pytest_plugin import make_emulator_client
from apckx.emulator.server import EmulatorConfig, start_emulator
from apckx.emulator.state import master_key_path
from apckx.errors import ConfigError

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


def import_kek_over_ecdh(client: Any, kek: bytes) -> dict[str, str]:
    """The KEK ceremony in miniature: root CA, APC K3 key, ECDH-derived KBPK, TR-31 import."""
    ca_key, ca_cert = certs.new_sender_ca("P521")
    root_arn = client.import_key(
        Enabled=True,
        KeyMaterial={
            "RootCertificatePublicKey": {
                "KeyAttributes": ROOT_ATTRIBUTES,
                "PublicKeyCertificate": certs.certificate_to_apc(ca_cert),
            }
        },
    )["Key"]["KeyArn"]
    leaf_key, leaf_cert = certs.new_ecdh_leaf(ca_key, ca_cert, "P521")
    k3_arn = client.create_key(
        KeyAttributes=K3_ATTRIBUTES,
        Exportable=True,
        DeriveKeyUsage="TR31_K1_KEY_BLOCK_PROTECTION_KEY",
    )["Key"]["KeyArn"]
    apc_cert = certs.certificate_from_apc(
        client.get_public_key_certificate(KeyIdentifier=k3_arn)["KeyCertificate"]
    )
    shared_info = ecdh.new_shared_info()
    kbpk = ecdh.derive_kbpk(
        leaf_key, apc_cert.public_key(), shared_info=shared_info, key_algorithm="AES_256"
    )
    header = tr31.build_header(
        key_usage="TR31_K0_KEY_ENCRYPTION_KEY", key_algorithm="AES_256", kbpk_algorithm="AES_256"
    )
    kek_arn = client.import_key(
        KeyMaterial={
            "DiffieHellmanTr31KeyBlock": {
                "PrivateKeyIdentifier": k3_arn,
                "CertificateAuthorityPublicKeyIdentifier": root_arn,
                "PublicKeyCertificate": certs.certificate_to_apc(leaf_cert),
                "DeriveKeyAlgorithm": "AES_256",
                "KeyDerivationFunction": "NIST_SP800",
                "KeyDerivationHashAlgorithm": "SHA_256",
                "DerivationData": {"SharedInformation": shared_info.hex()},
                "WrappedKeyBlock": tr31.wrap_key_block(kbpk, header, kek),
            }
        }
    )["Key"]["KeyArn"]
    return {"root": root_arn, "k3": k3_arn, "kek": kek_arn}


def import_working_key(client: Any, kek_arn: str, kek: bytes, working_key: bytes) -> str:
    header = tr31.build_header(
        key_usage="TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY",
        key_algorithm="AES_128",
        kbpk_algorithm="AES_256",
    )
    arn: str = client.import_key(
        KeyMaterial={
            "Tr31KeyBlock": {
                "WrappingKeyIdentifier": kek_arn,
                "WrappedKeyBlock": tr31.wrap_key_block(kek, header, working_key),
            }
        },
        Tags=[{"Key": "purpose", "Value": "pin-data"}],
    )["Key"]["KeyArn"]
    return arn


def state_bytes(state_path: Path) -> bytes:
    """The database and its WAL/SHM files, as raw bytes (the master key file excluded)."""
    files = list(state_path.parent.glob(state_path.name + "*"))
    return b"".join(p.read_bytes() for p in files if p != master_key_path(state_path))


def assert_sealed(raw: bytes, *secrets: bytes) -> None:
    """No key in clear (bytes, lower or upper hex) in what SQLite wrote; tags sealed too."""
    assert len(raw) > 4096
    for secret in secrets:
        assert secret not in raw
        assert secret.hex().encode() not in raw
        assert secret.hex().upper().encode() not in raw
    assert b"pin-data" not in raw  # records are sealed whole, tags included


def test_state_survives_restart_and_material_still_works(tmp_path: Path) -> None:
    state_path = tmp_path / "emulator.db"
    kek = keys.generate_key("AES_256")
    working_key = keys.generate_key("AES_128")
    config = EmulatorConfig(state_path=state_path)

    with start_emulator(config) as first:
        client = make_emulator_client(first.url)
        arns = import_kek_over_ecdh(client, kek)
        working_arn = import_working_key(client, arns["kek"], kek, working_key)
        client.create_alias(AliasName="alias/working", KeyArn=working_arn)
        client.create_alias(AliasName="alias/kek", KeyArn=arns["kek"])
        client.create_alias(AliasName="alias/unattached")
        before = {key["KeyArn"]: key for key in client.list_keys()["Keys"]}
        k3_certificate = client.get_public_key_certificate(KeyIdentifier=arns["k3"])
        working_kcv = client.get_key(KeyIdentifier=working_arn)["Key"]["KeyCheckValue"]
        assert_sealed(state_bytes(state_path), kek, working_key)  # the WAL, while running

    assert_sealed(state_bytes(state_path), kek, working_key)  # checkpointed at close
    assert stat.S_IMODE(master_key_path(state_path).stat().st_mode) == 0o600

    with start_emulator(config) as second:
        client = make_emulator_client(second.url)
        after = {key["KeyArn"]: key for key in client.list_keys()["Keys"]}
        assert after == before
        assert len(after) == 4  # root, K3, KEK, working key
        assert client.get_alias(AliasName="alias/working")["Alias"]["KeyArn"] == working_arn
        assert "KeyArn" not in client.get_alias(AliasName="alias/unattached")["Alias"]
        assert client.list_tags_for_resource(ResourceArn=working_arn)["Tags"] == [
            {"Key": "purpose", "Value": "pin-data"}
        ]
        assert client.get_key(KeyIdentifier="alias/working")["Key"]["KeyCheckValue"] == (
            working_kcv
        )
        # The K3 private key and the account CA came back too.
        again = client.get_public_key_certificate(KeyIdentifier=arns["k3"])
        assert again["KeyCertificate"] == k3_certificate["KeyCertificate"]
        assert again["KeyCertificateChain"] == k3_certificate["KeyCertificateChain"]
        # Material imported before the restart still works: export it under the KEK.
        exported = client.export_key(
            ExportKeyIdentifier="alias/working",
            KeyMaterial={"Tr31KeyBlock": {"WrappingKeyIdentifier": "alias/kek"}},
        )["WrappedKey"]
        header, unwrapped = tr31.unwrap_key_block(kek, exported["KeyMaterial"])
        assert unwrapped == working_key
        assert header.key_usage == "D0"
        # And new writes land in the same file.
        client.delete_alias(AliasName="alias/unattached")

    with start_emulator(config) as third:
        client = make_emulator_client(third.url)
        names = {alias["AliasName"] for alias in client.list_aliases()["Aliases"]}
        assert names == {"alias/working", "alias/kek"}


def test_refuses_to_start_when_the_master_key_file_is_too_open(tmp_path: Path) -> None:
    state_path = tmp_path / "emulator.db"
    start_emulator(EmulatorConfig(state_path=state_path)).stop()
    master_key_path(state_path).chmod(0o640)
    with pytest.raises(ConfigError, match="must be 0600"):
        start_emulator(EmulatorConfig(state_path=state_path))


def test_in_memory_by_default_forgets_on_restart() -> None:
    with start_emulator(EmulatorConfig()) as first:
        client = make_emulator_client(first.url)
        client.create_alias(AliasName="alias/ephemeral")
    with start_emulator(EmulatorConfig()) as second:
        assert make_emulator_client(second.url).list_aliases()["Aliases"] == []
