"""ImportKey / ExportKey ``As2805KeyCryptogram`` over real HTTP through boto3: a working key
exported by one emulator account under the AS2805 KEK both hold is imported by the other with
the same KCV; refusals for the wrong key type, KEK or variant."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from apckx.ceremonies.import_kek import plan_kek_import, run_kek_import
from apckx.crypto import as2805, kcv, tr31
from apckx.emulator.pytest_plugin import make_emulator_client, start_test_emulator
from apckx.emulator.server import EmulatorConfig
from apckx.service.apc import ApcService

K0 = "TR31_K0_KEY_ENCRYPTION_KEY"
P0 = "TR31_P0_PIN_ENCRYPTION_KEY"
AS2805_KEK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
MODES = {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}


class Node:
    """One emulator account with a known AES-256 KEK and the shared AS2805 KEK."""

    def __init__(self, account_id: str, tmp: Path) -> None:
        self.emulator = start_test_emulator(EmulatorConfig(account_id=account_id))
        self.client = make_emulator_client(self.emulator.url, max_attempts=1)
        self.aes_kek = os.urandom(32)
        plan = plan_kek_import(
            key_algorithm="AES_256", certs_dir=tmp / account_id, kek_alias="alias/kek"
        )
        run_kek_import(
            ApcService(self.client), self.aes_kek, plan, journal_dir=tmp / account_id / "journal"
        )
        self.aes_kek_arn = self.client.get_alias(AliasName="alias/kek")["Alias"]["KeyArn"]
        self.as2805_kek = self.import_key(AS2805_KEK, K0, "TDES_2KEY", MODES)

    def import_key(self, key: bytes, usage: str, algorithm: str, modes: Any) -> str:
        header = tr31.build_header(
            key_usage=usage, key_algorithm=algorithm, kbpk_algorithm="AES_256", modes_of_use=modes
        )
        block = tr31.wrap_key_block(self.aes_kek, header, key)
        arn: str = self.client.import_key(
            KeyMaterial={
                "Tr31KeyBlock": {
                    "WrappingKeyIdentifier": self.aes_kek_arn,
                    "WrappedKeyBlock": block,
                }
            }
        )["Key"]["KeyArn"]
        return arn

    def close(self) -> None:
        self.client.close()
        self.emulator.stop()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    tmp = tmp_path_factory.mktemp("as2805")
    pair = (Node("111122223333", tmp), Node("444455556666", tmp))
    try:
        yield pair
    finally:
        for node in pair:
            node.close()


@pytest.mark.parametrize(
    ("variant", "usage", "modes"),
    [
        ("PIN_ENCRYPTION_KEY_VARIANT_28", P0, MODES),
        (
            "MESSAGE_AUTHENTICATION_KEY_VARIANT_24",
            "TR31_M0_ISO_16609_MAC_KEY",
            {"Generate": True, "Verify": True},
        ),
        ("DATA_ENCRYPTION_KEY_VARIANT_22", "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY", MODES),
    ],
)
def test_working_key_exchange(
    nodes: tuple[Node, Node], variant: str, usage: str, modes: dict[str, bool]
) -> None:
    node1, node2 = nodes
    created = node1.client.create_key(
        KeyAttributes={
            "KeyUsage": usage,
            "KeyClass": "SYMMETRIC_KEY",
            "KeyAlgorithm": "TDES_2KEY",
            "KeyModesOfUse": modes,
        },
        KeyCheckValueAlgorithm="ANSI_X9_24",
        Exportable=True,
    )["Key"]
    wrapped = node1.client.export_key(
        ExportKeyIdentifier=created["KeyArn"],
        KeyMaterial={
            "As2805KeyCryptogram": {
                "WrappingKeyIdentifier": node1.as2805_kek,
                "As2805KeyVariant": variant,
            }
        },
    )["WrappedKey"]
    assert wrapped["WrappedKeyMaterialFormat"] == "KEY_CRYPTOGRAM"
    assert wrapped["WrappingKeyArn"] == node1.as2805_kek
    assert wrapped["KeyCheckValue"] == created["KeyCheckValue"]
    clear = as2805.unwrap_key_cryptogram(AS2805_KEK, bytes.fromhex(wrapped["KeyMaterial"]), variant)
    assert kcv.compute_kcv(clear, "ANSI_X9_24") == created["KeyCheckValue"]
    imported = node2.client.import_key(
        KeyMaterial={
            "As2805KeyCryptogram": {
                "As2805KeyVariant": variant,
                "KeyModesOfUse": modes,
                "KeyAlgorithm": "TDES_2KEY",
                "Exportable": True,
                "WrappingKeyIdentifier": node2.as2805_kek,
                "WrappedKeyCryptogram": wrapped["KeyMaterial"],
            }
        },
        KeyCheckValueAlgorithm="ANSI_X9_24",
    )["Key"]
    assert imported["KeyCheckValue"] == created["KeyCheckValue"]
    assert imported["KeyAttributes"]["KeyUsage"] == usage
    assert imported["KeyOrigin"] == "EXTERNAL"


def test_kek_itself_as_variant_00(nodes: tuple[Node, Node]) -> None:
    _, node2 = nodes
    new_kek = os.urandom(16)
    cryptogram = (
        as2805.wrap_key_cryptogram(AS2805_KEK, new_kek, "TERMINAL_MAJOR_KEY_VARIANT_00")
        .hex()
        .upper()
    )
    key = node2.client.import_key(
        KeyMaterial={
            "As2805KeyCryptogram": {
                "As2805KeyVariant": "TERMINAL_MAJOR_KEY_VARIANT_00",
                "KeyModesOfUse": MODES,
                "KeyAlgorithm": "TDES_2KEY",
                "Exportable": False,
                "WrappingKeyIdentifier": node2.as2805_kek,
                "WrappedKeyCryptogram": cryptogram,
            }
        },
        KeyCheckValueAlgorithm="ANSI_X9_24",
    )["Key"]
    assert key["KeyAttributes"]["KeyUsage"] == K0
    assert key["KeyCheckValue"] == kcv.compute_kcv(new_kek, "ANSI_X9_24")
    assert key["Exportable"] is False


def test_refusals(nodes: tuple[Node, Node]) -> None:
    node1, _ = nodes
    pek = node1.client.create_key(
        KeyAttributes={
            "KeyUsage": P0,
            "KeyClass": "SYMMETRIC_KEY",
            "KeyAlgorithm": "TDES_2KEY",
            "KeyModesOfUse": MODES,
        },
        Exportable=True,
    )["Key"]["KeyArn"]
    cases = [
        (
            {
                "ExportKeyIdentifier": pek,
                "KeyMaterial": {
                    "As2805KeyCryptogram": {
                        "WrappingKeyIdentifier": node1.as2805_kek,
                        "As2805KeyVariant": "MESSAGE_AUTHENTICATION_KEY_VARIANT_24",
                    }
                },
            },
            "exports a",
        ),
        (
            {
                "ExportKeyIdentifier": pek,
                "KeyMaterial": {
                    "As2805KeyCryptogram": {
                        "WrappingKeyIdentifier": node1.aes_kek_arn,
                        "As2805KeyVariant": "PIN_ENCRYPTION_KEY_VARIANT_28",
                    }
                },
            },
            "TDES_2KEY or TDES_3KEY",
        ),
    ]
    for request, message in cases:
        with pytest.raises(ClientError) as info:
            node1.client.export_key(**request)
        assert info.value.response["Error"]["Code"] == "ValidationException"
        assert message in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        node1.client.import_key(
            KeyMaterial={
                "As2805KeyCryptogram": {
                    "As2805KeyVariant": "PIN_ENCRYPTION_KEY_VARIANT_28",
                    "KeyModesOfUse": MODES,
                    "KeyAlgorithm": "TDES_2KEY",
                    "Exportable": True,
                    "WrappingKeyIdentifier": node1.as2805_kek,
                    "WrappedKeyCryptogram": "00" * 24,
                }
            }
        )
    assert "32 hex characters" in info.value.response["Error"]["Message"]


def test_import_refuses_modes_the_key_type_does_not_have(nodes: tuple[Node, Node]) -> None:
    _, node2 = nodes
    cryptogram = (
        as2805.wrap_key_cryptogram(
            AS2805_KEK, os.urandom(16), "MESSAGE_AUTHENTICATION_KEY_VARIANT_24"
        )
        .hex()
        .upper()
    )
    with pytest.raises(ClientError) as info:
        node2.client.import_key(
            KeyMaterial={
                "As2805KeyCryptogram": {
                    "As2805KeyVariant": "MESSAGE_AUTHENTICATION_KEY_VARIANT_24",
                    "KeyModesOfUse": MODES,
                    "KeyAlgorithm": "TDES_2KEY",
                    "Exportable": True,
                    "WrappingKeyIdentifier": node2.as2805_kek,
                    "WrappedKeyCryptogram": cryptogram,
                }
            }
        )
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "KeyModesOfUse" in info.value.response["Error"]["Message"]
