"""AS2805 node to node between two emulator accounts over real HTTP, following the steps of AWS's
AS2805 guide (as2805.kekexchange, .kekvalidation, .workingkeys, .pintranslation, .mac):

1. KEK exchange: node 1 creates its sending KEK and hands it to node 2 (here as a TR-31 block,
   one of the methods the guide allows), where it is node 2's receiving KEK.
2. KEK validation both ways: KRs from one node, KRr from the other, compared.
3. Working keys: a ZPK and a ZAK exported by node 1 as AS2805 key cryptograms, imported by
   node 2 (KCVs equal).
4. PIN translation: terminal PEK -> ZPK (AS2805 format 0) on node 1, ZPK -> node 2's PEK.
5. MAC: AS2805.4.1 generated on node 1, verified on node 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from psec import des

from apckx.crypto import as2805, pin_block, tr31
from apckx.emulator.pytest_plugin import make_emulator_client
from apckx.emulator.server import EmulatorConfig, start_emulator

K0 = "TR31_K0_KEY_ENCRYPTION_KEY"
P0 = "TR31_P0_PIN_ENCRYPTION_KEY"
WRAP_MODES = {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}
TERMINAL_PEK = bytes.fromhex("1C1C2C2C3D3D4E4E5F5F6E6E7D7D8C8C")
NODE2_PEK = bytes.fromhex("A1A2A3A4A5A6A7A8B1B2B3B4B5B6B7B8")
PAN = "9999179999900013"


@pytest.fixture(scope="module")
def nodes(data_plane: Any) -> Iterator[tuple[Any, Any]]:
    """Node 1 is the module's emulator; node 2 another emulator with its own account."""
    emulator = start_emulator(EmulatorConfig(account_id="444455556666"))
    node2 = type(data_plane)(
        emulator=emulator,
        control=make_emulator_client(emulator.url, max_attempts=1),
        data=make_emulator_client(
            emulator.url, service="payment-cryptography-data", max_attempts=1
        ),
    )
    try:
        yield data_plane, node2
    finally:
        node2.control.close()
        node2.data.close()
        emulator.stop()


@pytest.fixture(scope="module")
def exchanged(nodes: tuple[Any, Any]) -> dict[str, str]:
    """Step 1: node 1's KEKs, delivered to node 2 as its KEKr."""
    node1, node2 = nodes
    kek_s = node1.control.create_key(
        KeyAttributes={
            "KeyUsage": K0,
            "KeyClass": "SYMMETRIC_KEY",
            "KeyAlgorithm": "TDES_2KEY",
            "KeyModesOfUse": WRAP_MODES,
        },
        KeyCheckValueAlgorithm="ANSI_X9_24",
        Exportable=True,
    )["Key"]
    block = node1.control.export_key(
        ExportKeyIdentifier=kek_s["KeyArn"],
        KeyMaterial={"Tr31KeyBlock": {"WrappingKeyIdentifier": node1.ensure_kek()}},
    )["WrappedKey"]["KeyMaterial"]
    _, clear = tr31.unwrap_key_block(node1.kek, block)
    kek_r = node2.import_key(
        clear, K0, "TDES_2KEY", WRAP_MODES, KeyCheckValueAlgorithm="ANSI_X9_24"
    )
    assert (
        node2.control.get_key(KeyIdentifier=kek_r)["Key"]["KeyCheckValue"]
        == (kek_s["KeyCheckValue"])
    )
    return {"kek_s": kek_s["KeyArn"], "kek_r": kek_r, "kek_hex": clear.hex()}


@pytest.mark.parametrize("mask", ["VARIANT_MASK_82", "VARIANT_MASK_82C0"])
def test_kek_validation_both_ways(
    nodes: tuple[Any, Any], exchanged: dict[str, str], mask: str
) -> None:
    node1, node2 = nodes
    request = node1.data.generate_as2805_kek_validation(
        KeyIdentifier=exchanged["kek_s"],
        RandomKeySendVariantMask=mask,
        KekValidationType={"KekValidationRequest": {"DeriveKeyAlgorithm": "TDES_2KEY"}},
    )
    assert request["KeyArn"] == exchanged["kek_s"]
    assert len(request["RandomKeySend"]) == 32
    response = node2.data.generate_as2805_kek_validation(
        KeyIdentifier=exchanged["kek_r"],
        RandomKeySendVariantMask=mask,
        KekValidationType={"KekValidationResponse": {"RandomKeySend": request["RandomKeySend"]}},
    )
    assert response["RandomKeySend"] == request["RandomKeySend"]
    assert response["RandomKeyReceive"] == request["RandomKeyReceive"]
    # The other direction: node 2 asks, node 1 answers (the guide's "second key").
    back = node2.data.generate_as2805_kek_validation(
        KeyIdentifier=exchanged["kek_r"],
        RandomKeySendVariantMask=mask,
        KekValidationType={"KekValidationRequest": {"DeriveKeyAlgorithm": "TDES_2KEY"}},
    )
    answer = node1.data.generate_as2805_kek_validation(
        KeyIdentifier=exchanged["kek_s"],
        RandomKeySendVariantMask=mask,
        KekValidationType={"KekValidationResponse": {"RandomKeySend": back["RandomKeySend"]}},
    )
    assert answer["RandomKeyReceive"] == back["RandomKeyReceive"]
    # And what a node outside APC computes from the cleartext KEK agrees.
    local = as2805.generate_kek_validation_response(
        bytes.fromhex(exchanged["kek_hex"]), bytes.fromhex(request["RandomKeySend"]), mask
    )
    assert local.hex().upper() == request["RandomKeyReceive"]


def test_kek_validation_fails_with_another_kek(
    nodes: tuple[Any, Any], exchanged: dict[str, str]
) -> None:
    node1, node2 = nodes
    other = node2.control.create_key(
        KeyAttributes={
            "KeyUsage": K0,
            "KeyClass": "SYMMETRIC_KEY",
            "KeyAlgorithm": "TDES_2KEY",
            "KeyModesOfUse": WRAP_MODES,
        },
        Exportable=True,
    )["Key"]["KeyArn"]
    request = node1.data.generate_as2805_kek_validation(
        KeyIdentifier=exchanged["kek_s"],
        RandomKeySendVariantMask="VARIANT_MASK_82",
        KekValidationType={"KekValidationRequest": {"DeriveKeyAlgorithm": "TDES_2KEY"}},
    )
    response = node2.data.generate_as2805_kek_validation(
        KeyIdentifier=other,
        RandomKeySendVariantMask="VARIANT_MASK_82",
        KekValidationType={"KekValidationResponse": {"RandomKeySend": request["RandomKeySend"]}},
    )
    assert response["RandomKeyReceive"] != request["RandomKeyReceive"]


def test_kek_validation_refusals(nodes: tuple[Any, Any], exchanged: dict[str, str]) -> None:
    node1, _ = nodes
    pek = node1.import_key(TERMINAL_PEK, P0, "TDES_2KEY", WRAP_MODES)
    with pytest.raises(ClientError) as info:
        node1.data.generate_as2805_kek_validation(
            KeyIdentifier=pek,
            RandomKeySendVariantMask="VARIANT_MASK_82",
            KekValidationType={"KekValidationRequest": {"DeriveKeyAlgorithm": "TDES_2KEY"}},
        )
    assert "KeyUsage" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        node1.data.generate_as2805_kek_validation(
            KeyIdentifier=exchanged["kek_s"],
            RandomKeySendVariantMask="VARIANT_MASK_82",
            KekValidationType={"KekValidationRequest": {"DeriveKeyAlgorithm": "AES_128"}},
        )
    assert info.value.response["Error"]["Code"] == "ValidationException"


def send_working_key(
    nodes: tuple[Any, Any],
    exchanged: dict[str, str],
    usage: str,
    variant: str,
    modes: dict[str, bool],
) -> tuple[str, str]:
    node1, node2 = nodes
    key = node1.control.create_key(
        KeyAttributes={
            "KeyUsage": usage,
            "KeyClass": "SYMMETRIC_KEY",
            "KeyAlgorithm": "TDES_2KEY",
            "KeyModesOfUse": modes,
        },
        KeyCheckValueAlgorithm="ANSI_X9_24",
        Exportable=True,
    )["Key"]
    wrapped = node1.control.export_key(
        ExportKeyIdentifier=key["KeyArn"],
        KeyMaterial={
            "As2805KeyCryptogram": {
                "WrappingKeyIdentifier": exchanged["kek_s"],
                "As2805KeyVariant": variant,
            }
        },
    )["WrappedKey"]
    received = node2.control.import_key(
        KeyMaterial={
            "As2805KeyCryptogram": {
                "As2805KeyVariant": variant,
                "KeyModesOfUse": modes,
                "KeyAlgorithm": "TDES_2KEY",
                "Exportable": True,
                "WrappingKeyIdentifier": exchanged["kek_r"],
                "WrappedKeyCryptogram": wrapped["KeyMaterial"],
            }
        },
        KeyCheckValueAlgorithm="ANSI_X9_24",
    )["Key"]
    assert received["KeyCheckValue"] == key["KeyCheckValue"]
    return key["KeyArn"], received["KeyArn"]


def test_pin_translation_through_the_zone_pin_key(
    nodes: tuple[Any, Any], exchanged: dict[str, str]
) -> None:
    node1, node2 = nodes
    zpk1, zpk2 = send_working_key(nodes, exchanged, P0, "PIN_ENCRYPTION_KEY_VARIANT_28", WRAP_MODES)
    terminal = node1.import_key(TERMINAL_PEK, P0, "TDES_2KEY", WRAP_MODES)
    issuer = node2.import_key(NODE2_PEK, P0, "TDES_2KEY", WRAP_MODES)
    clear = pin_block.encode_pin_block("7391", "ISO_FORMAT_0", pan=PAN)
    at_terminal = des.encrypt_tdes_ecb(TERMINAL_PEK, clear).hex().upper()
    on_the_wire = node1.data.translate_pin_data(
        IncomingKeyIdentifier=terminal,
        OutgoingKeyIdentifier=zpk1,
        IncomingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": PAN}},
        OutgoingTranslationAttributes={"As2805Format0": {"PrimaryAccountNumber": PAN}},
        EncryptedPinBlock=at_terminal,
    )
    assert on_the_wire["KeyArn"] == zpk1
    at_issuer = node2.data.translate_pin_data(
        IncomingKeyIdentifier=zpk2,
        OutgoingKeyIdentifier=issuer,
        IncomingTranslationAttributes={"As2805Format0": {"PrimaryAccountNumber": PAN}},
        OutgoingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": PAN}},
        EncryptedPinBlock=on_the_wire["PinBlock"],
    )
    assert at_issuer["PinBlock"] == des.encrypt_tdes_ecb(NODE2_PEK, clear).hex().upper()


def test_as2805_mac_between_the_nodes(nodes: tuple[Any, Any], exchanged: dict[str, str]) -> None:
    node1, node2 = nodes
    modes = {"Generate": True, "Verify": True}
    zak1, zak2 = send_working_key(
        nodes,
        exchanged,
        "TR31_M0_ISO_16609_MAC_KEY",
        "MESSAGE_AUTHENTICATION_KEY_VARIANT_24",
        modes,
    )
    message = "73D8BA54D3852951DAEA41"
    mac = node1.data.generate_mac(
        KeyIdentifier=zak1, MessageData=message, GenerationAttributes={"Algorithm": "AS2805_4_1"}
    )["Mac"]
    # The same MAC as AS2805.4.1 computed outside APC with the ZAK (read back via its cryptogram).
    cryptogram = node1.control.export_key(
        ExportKeyIdentifier=zak1,
        KeyMaterial={
            "As2805KeyCryptogram": {
                "WrappingKeyIdentifier": exchanged["kek_s"],
                "As2805KeyVariant": "MESSAGE_AUTHENTICATION_KEY_VARIANT_24",
            }
        },
    )["WrappedKey"]["KeyMaterial"]
    zak = as2805.unwrap_key_cryptogram(
        bytes.fromhex(exchanged["kek_hex"]),
        bytes.fromhex(cryptogram),
        "MESSAGE_AUTHENTICATION_KEY_VARIANT_24",
    )
    local = as2805.generate_as2805_mac(zak, bytes.fromhex(message), len(mac) // 2)
    assert mac == local.hex().upper()
    node2.data.verify_mac(
        KeyIdentifier=zak2,
        MessageData=message,
        Mac=mac,
        VerificationAttributes={"Algorithm": "AS2805_4_1"},
    )
    with pytest.raises(ClientError) as info:
        node2.data.verify_mac(
            KeyIdentifier=zak2,
            MessageData="74" + message[2:],
            Mac=mac,
            VerificationAttributes={"Algorithm": "AS2805_4_1"},
        )
    assert info.value.response["Error"]["Code"] == "VerificationFailedException"


# --- PIN translation with IncomingAs2805Attributes (the per-transaction KPE) ----------------

KPP = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
STAN, AMOUNT = "000438", "000000000328"


def _kpe_outside_apc(kpp: bytes, stan: str, amount: str) -> bytes:
    """AS2805.6.6.3 as AWS's sample 3_1 computes it, with psec's TDES-CBC: D = STAN
    zero-filled right || amount zero-filled left (8 bytes each); M = the last block of
    TDES-CBC(KPP, D); KPE = TDES-CBC(KPP, D, IV M) xor D."""
    data = bytes.fromhex(stan + "0" * 10 + "0" * 4 + amount)
    chain = des.encrypt_tdes_cbc(kpp, bytes(8), data)[-8:]
    return bytes(a ^ b for a, b in zip(des.encrypt_tdes_cbc(kpp, chain, data), data,
                                       strict=True))


def _translate_as2805(node: Any, kpp_arn: str, out_arn: str, block: str,
                      stan: str = STAN, amount: str = AMOUNT, **extra: Any) -> Any:
    return node.data.translate_pin_data(
        IncomingKeyIdentifier=kpp_arn,
        OutgoingKeyIdentifier=out_arn,
        IncomingTranslationAttributes={"As2805Format0": {"PrimaryAccountNumber": PAN}},
        OutgoingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": PAN}},
        EncryptedPinBlock=block,
        IncomingAs2805Attributes={"SystemTraceAuditNumber": stan, "TransactionAmount": amount},
        **extra,
    )


def test_pin_translation_from_the_transaction_kpe(nodes: tuple[Any, Any]) -> None:
    node1, _ = nodes
    kpp = node1.import_key(KPP, P0, "TDES_2KEY", WRAP_MODES)
    issuer = node1.import_key(NODE2_PEK, P0, "TDES_2KEY", WRAP_MODES)
    clear = pin_block.encode_pin_block("7391", "AS2805_FORMAT_0", pan=PAN)
    kpe = _kpe_outside_apc(KPP, STAN, AMOUNT)
    answer = _translate_as2805(node1, kpp, issuer, des.encrypt_tdes_ecb(kpe, clear).hex().upper())
    assert answer["KeyArn"] == issuer
    assert answer["PinBlock"] == des.encrypt_tdes_ecb(
        NODE2_PEK, pin_block.encode_pin_block("7391", "ISO_FORMAT_0", pan=PAN)).hex().upper()
    # The same block under the KPP itself, or under another transaction's KPE, does not decode.
    for block, stan, amount in (
        (des.encrypt_tdes_ecb(KPP, clear), STAN, AMOUNT),
        (des.encrypt_tdes_ecb(kpe, clear), "000439", AMOUNT),
        (des.encrypt_tdes_ecb(kpe, clear), STAN, "000000000329"),
    ):
        with pytest.raises(ClientError) as info:
            _translate_as2805(node1, kpp, issuer, block.hex().upper(), stan, amount)
        assert info.value.response["Error"]["Code"] == "ValidationException"
        assert "does not decode" in info.value.response["Error"]["Message"]


def test_pin_translation_kpe_refusals(nodes: tuple[Any, Any]) -> None:
    node1, _ = nodes
    issuer = node1.import_key(NODE2_PEK, P0, "TDES_2KEY", WRAP_MODES)
    kpp3 = node1.import_key(KPP + bytes.fromhex("1122334455667788"), P0, "TDES_3KEY", WRAP_MODES)
    cases: list[tuple[str, dict[str, Any], str]] = [
        (kpp3, {}, "TDES_2KEY"),
        (issuer, {"IncomingDukptAttributes": {"KeySerialNumber": "FFFF9876543210E00001"}},
         "IncomingDukptAttributes"),
    ]
    for arn, extra, needle in cases:
        with pytest.raises(ClientError) as info:
            _translate_as2805(node1, arn, issuer, "0" * 16, **extra)
        assert info.value.response["Error"]["Code"] == "ValidationException"
        assert needle in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:  # the model's patterns: 6 and 12 digits
        _translate_as2805(node1, issuer, issuer, "0" * 16, stan="00043A")
    assert info.value.response["Error"]["Code"] == "ValidationException"
