"""TranslatePinData, GeneratePinData and VerifyPinData over real HTTP through boto3.

Every PIN-block, IBM 3624, PVV and DUKPT PIN vector goes through the emulator: the vector's
keys are imported as TR-31 blocks under a KEK, the call is made, and the answer is compared
byte for byte with the vector (or, where the output format has random fill, decoded with
apckx.crypto and compared by PIN).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from psec import des

from apckx.crypto import certs, ecdh, pin_block

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "dataplane"
P0, V1, V2, B0 = (
    "TR31_P0_PIN_ENCRYPTION_KEY",
    "TR31_V1_IBM3624_PIN_VERIFICATION_KEY",
    "TR31_V2_VISA_PIN_VERIFICATION_KEY",
    "TR31_B0_BASE_DERIVATION_KEY",
)
PEK_MODES = {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}
PEK_A = bytes.fromhex("1C1C2C2C3D3D4E4E5F5F6E6E7D7D8C8C")
PEK_B = bytes.fromhex("A1A2A3A4A5A6A7A8B1B2B3B4B5B6B7B8")
TEST_PAN = "4012345678909"


def load(name: str, keep: Any) -> Any:
    with (VECTORS / name).open(encoding="utf-8") as handle:
        entries = [e for e in json.load(handle) if keep(e)]
    assert entries
    return pytest.mark.parametrize("entry", entries, ids=[e["id"] for e in entries])


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def iso0(key: bytes, pin: str, pan: str) -> str:
    return (
        des.encrypt_tdes_ecb(key, pin_block.encode_pin_block(pin, "ISO_FORMAT_0", pan=pan))
        .hex()
        .upper()
    )


class Keys:
    """The keys of one module's emulator, imported once."""

    def __init__(self, plane: Any) -> None:
        self.plane = plane
        self.cache: dict[tuple[str, str, str], str] = {}

    def get(self, key: bytes, usage: str, algorithm: str, modes: Any = "B") -> str:
        marker = (key.hex(), usage, str(modes))
        if marker not in self.cache:
            self.cache[marker] = self.plane.import_key(key, usage, algorithm, modes)
        return self.cache[marker]

    def pek(self, key: bytes = PEK_A, algorithm: str = "TDES_2KEY") -> str:
        return self.get(key, P0, algorithm, PEK_MODES)


@pytest.fixture(scope="module")
def keys(data_plane: Any) -> Keys:
    return Keys(data_plane)


def failed_reason(info: pytest.ExceptionInfo[ClientError]) -> str:
    error = info.value.response["Error"]
    assert error["Code"] == "VerificationFailedException"
    return str(info.value.response.get("Reason", error.get("Reason")))


# --- TranslatePinData ------------------------------------------------------------------------


@load("pin_blocks.json", lambda e: e.get("format") in {"ISO_FORMAT_0", "ISO_FORMAT_3"})
def test_translate_iso0_iso3_vectors(data_plane: Any, keys: Keys, entry: dict[str, Any]) -> None:
    name = "IsoFormat0" if entry["format"] == "ISO_FORMAT_0" else "IsoFormat3"
    pan = entry["pan"]
    epb = des.encrypt_tdes_ecb(PEK_A, h(entry["clear_pin_block"])).hex().upper()
    out = data_plane.data.translate_pin_data(
        IncomingKeyIdentifier=keys.pek(),
        OutgoingKeyIdentifier=keys.pek(PEK_B),
        IncomingTranslationAttributes={name: {"PrimaryAccountNumber": pan}},
        OutgoingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": pan}},
        EncryptedPinBlock=epb,
    )
    assert out["PinBlock"] == iso0(PEK_B, entry["pin"], pan)
    assert out["KeyArn"] == keys.pek(PEK_B)


def test_translate_iso1_in_and_out(data_plane: Any, keys: Keys) -> None:
    entry = next(
        e
        for e in json.loads((VECTORS / "pin_blocks.json").read_text())
        if e["format"] == "ISO_FORMAT_1"
    )
    epb = des.encrypt_tdes_ecb(PEK_A, h(entry["clear_pin_block"])).hex().upper()
    out = data_plane.data.translate_pin_data(
        IncomingKeyIdentifier=keys.pek(),
        OutgoingKeyIdentifier=keys.pek(PEK_B),
        IncomingTranslationAttributes={"IsoFormat1": {}},
        OutgoingTranslationAttributes={"IsoFormat1": {}},
        EncryptedPinBlock=epb,
    )
    clear = des.decrypt_tdes_ecb(PEK_B, h(out["PinBlock"]))
    assert clear.hex().upper()[0] == "1"
    assert pin_block.decode_pin_block(clear, "ISO_FORMAT_1") == entry["pin"]


# APC's PrimaryAccountNumber has 12..19 digits: the 1-digit-PAN entry is tested in tests/crypto.
@load("pin_blocks.json", lambda e: "encrypted_pin_block" in e and len(e["pan"]) >= 12)
def test_translate_iso4_vectors(data_plane: Any, keys: Keys, entry: dict[str, Any]) -> None:
    aes_pek = keys.pek(h(entry["key"]), entry["key_algorithm"])
    pan = entry["pan"]
    out = data_plane.data.translate_pin_data(
        IncomingKeyIdentifier=aes_pek,
        OutgoingKeyIdentifier=keys.pek(),
        IncomingTranslationAttributes={"IsoFormat4": {"PrimaryAccountNumber": pan}},
        OutgoingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": pan}},
        EncryptedPinBlock=entry["encrypted_pin_block"],
    )
    assert out["PinBlock"] == iso0(PEK_A, entry["pin"], pan)
    back = data_plane.data.translate_pin_data(
        IncomingKeyIdentifier=keys.pek(),
        OutgoingKeyIdentifier=aes_pek,
        IncomingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": pan}},
        OutgoingTranslationAttributes={"IsoFormat4": {"PrimaryAccountNumber": pan}},
        EncryptedPinBlock=out["PinBlock"],
    )
    assert len(back["PinBlock"]) == 32
    assert (
        pin_block.decipher_iso4_pin_block(h(entry["key"]), h(back["PinBlock"]), pan)
        == (entry["pin"])
    )


@load("dukpt_tdes.json", lambda e: "encrypted_pin_block" in e)
def test_translate_tdes_dukpt_vectors(data_plane: Any, keys: Keys, entry: dict[str, Any]) -> None:
    bdk = keys.get(h(entry["bdk"]), B0, "TDES_2KEY", {"DeriveKey": True})
    dukpt = {"KeySerialNumber": entry["ksn"], "DukptKeyDerivationType": "TDES_2KEY"}
    pan = entry["pan"]
    out = data_plane.data.translate_pin_data(
        IncomingKeyIdentifier=bdk,
        OutgoingKeyIdentifier=keys.pek(),
        IncomingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": pan}},
        OutgoingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": pan}},
        EncryptedPinBlock=entry["encrypted_pin_block"],
        IncomingDukptAttributes=dukpt,
    )
    assert out["PinBlock"] == iso0(PEK_A, entry["pin"], pan)
    back = data_plane.data.translate_pin_data(
        IncomingKeyIdentifier=keys.pek(),
        OutgoingKeyIdentifier=bdk,
        IncomingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": pan}},
        OutgoingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": pan}},
        EncryptedPinBlock=out["PinBlock"],
        OutgoingDukptAttributes=dukpt,
    )
    assert back["PinBlock"] == entry["encrypted_pin_block"]
    assert back["KeyArn"] == bdk


@load("dukpt_aes.json", lambda e: "encrypted_pin_block" in e)
def test_translate_aes_dukpt_vectors(data_plane: Any, keys: Keys, entry: dict[str, Any]) -> None:
    bdk = keys.get(h(entry["bdk"]), B0, entry["bdk_algorithm"], {"DeriveKey": True})
    dukpt = {"KeySerialNumber": entry["ksn"], "DukptKeyDerivationType": "AES_128"}
    pan = entry["pan"]
    out = data_plane.data.translate_pin_data(
        IncomingKeyIdentifier=bdk,
        OutgoingKeyIdentifier=keys.pek(),
        IncomingTranslationAttributes={"IsoFormat4": {"PrimaryAccountNumber": pan}},
        OutgoingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": pan}},
        EncryptedPinBlock=entry["encrypted_pin_block"],
        IncomingDukptAttributes=dukpt,
    )
    assert out["PinBlock"] == iso0(PEK_A, entry["pin"], pan)
    back = data_plane.data.translate_pin_data(
        IncomingKeyIdentifier=keys.pek(),
        OutgoingKeyIdentifier=bdk,
        IncomingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": pan}},
        OutgoingTranslationAttributes={"IsoFormat4": {"PrimaryAccountNumber": pan}},
        EncryptedPinBlock=out["PinBlock"],
        OutgoingDukptAttributes=dukpt,
    )
    pin = pin_block.decipher_iso4_pin_block(h(entry["pin_key_aes128"]), h(back["PinBlock"]), pan)
    assert pin == entry["pin"]


def test_translate_with_a_tr31_wrapped_incoming_key(data_plane: Any, keys: Keys) -> None:
    kek = data_plane.ensure_kek()
    block = data_plane.wrap(PEK_B, P0, "TDES_2KEY", PEK_MODES)
    out = data_plane.data.translate_pin_data(
        IncomingKeyIdentifier=kek,
        OutgoingKeyIdentifier=keys.pek(),
        IncomingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": TEST_PAN}},
        OutgoingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": TEST_PAN}},
        EncryptedPinBlock=iso0(PEK_B, "86420", TEST_PAN),
        IncomingWrappedKey={"WrappedKeyMaterial": {"Tr31KeyBlock": block}},
    )
    assert out["PinBlock"] == iso0(PEK_A, "86420", TEST_PAN)


def ecdh_pin_key(
    data_plane: Any, algorithm: str, hash_algorithm: str, curve: str = "P256"
) -> tuple[str, bytes, dict[str, Any]]:
    """A K3 key pair with DeriveKeyUsage P0 in the emulator, and the PEK the counterparty
    derives with it: (K3 ARN, derived PEK, the WrappedKey naming the derivation)."""
    control = data_plane.control
    ca_key, ca_cert = certs.new_sender_ca(curve)
    apc_curve = {"P256": "ECC_NIST_P256", "P384": "ECC_NIST_P384", "P521": "ECC_NIST_P521"}[curve]
    root = control.import_key(
        KeyMaterial={
            "RootCertificatePublicKey": {
                "KeyAttributes": {
                    "KeyUsage": "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE",
                    "KeyClass": "PUBLIC_KEY",
                    "KeyAlgorithm": apc_curve,
                    "KeyModesOfUse": {"Verify": True},
                },
                "PublicKeyCertificate": certs.certificate_to_apc(ca_cert),
            }
        }
    )["Key"]["KeyArn"]
    k3 = control.create_key(
        KeyAttributes={
            "KeyUsage": "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT",
            "KeyClass": "ASYMMETRIC_KEY_PAIR",
            "KeyAlgorithm": apc_curve,
            "KeyModesOfUse": {"DeriveKey": True},
        },
        Exportable=True,
        DeriveKeyUsage=P0,
    )["Key"]["KeyArn"]
    leaf_key, leaf_cert = certs.new_ecdh_leaf(ca_key, ca_cert, curve)
    apc_cert = certs.certificate_from_apc(
        control.get_public_key_certificate(KeyIdentifier=k3)["KeyCertificate"]
    )
    shared = ecdh.new_shared_info(32)
    derived = ecdh.derive_kbpk(
        leaf_key,
        apc_cert.public_key(),
        shared_info=shared,
        key_algorithm=algorithm,
        hash_algorithm=hash_algorithm,
    )
    wrapped = {
        "WrappedKeyMaterial": {
            "DiffieHellmanSymmetricKey": {
                "CertificateAuthorityPublicKeyIdentifier": root,
                "PublicKeyCertificate": certs.certificate_to_apc(leaf_cert),
                "KeyAlgorithm": algorithm,
                "KeyDerivationFunction": "NIST_SP800",
                "KeyDerivationHashAlgorithm": hash_algorithm,
                "SharedInformation": shared.hex(),
            }
        }
    }
    return k3, derived, wrapped


def test_translate_with_an_ecdh_derived_outgoing_key(data_plane: Any, keys: Keys) -> None:
    # PIN reveal: the PIN leaves under a PEK only the counterparty can derive.
    k3, derived, wrapped = ecdh_pin_key(data_plane, "AES_128", "SHA_256")
    out = data_plane.data.translate_pin_data(
        IncomingKeyIdentifier=keys.pek(),
        OutgoingKeyIdentifier=k3,
        IncomingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": TEST_PAN}},
        OutgoingTranslationAttributes={"IsoFormat4": {"PrimaryAccountNumber": TEST_PAN}},
        EncryptedPinBlock=iso0(PEK_A, "2468", TEST_PAN),
        OutgoingWrappedKey=wrapped,
    )
    assert out["KeyArn"] == k3
    assert pin_block.decipher_iso4_pin_block(derived, h(out["PinBlock"]), TEST_PAN) == "2468"


def test_pin_select_over_ecdh_as_aws_sample_does(data_plane: Any, keys: Keys) -> None:
    # AWS's PIN-select sample: the cardholder's PIN arrives as ISO-0 under a TDES_2KEY PEK
    # derived with ConcatKDF/SHA-512, is translated to the storage PEK, and gets its PVV.
    k3, derived, wrapped = ecdh_pin_key(data_plane, "TDES_2KEY", "SHA_512")
    pan = "4111111111111111"
    stored = data_plane.data.translate_pin_data(
        IncomingKeyIdentifier=k3,
        OutgoingKeyIdentifier=keys.pek(),
        IncomingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": pan}},
        OutgoingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": pan}},
        EncryptedPinBlock=iso0(derived, "5917", pan),
        IncomingWrappedKey=wrapped,
    )["PinBlock"]
    assert stored == iso0(PEK_A, "5917", pan)
    pvk_key = h("0123456789ABCDEFFEDCBA9876543210")
    pvk = keys.get(pvk_key, V2, "TDES_2KEY", {"Generate": True, "Verify": True})
    pvv = data_plane.data.generate_pin_data(
        GenerationKeyIdentifier=pvk,
        EncryptionKeyIdentifier=keys.pek(),
        PinBlockFormat="ISO_FORMAT_0",
        PrimaryAccountNumber=pan,
        GenerationAttributes={
            "VisaPinVerificationValue": {"EncryptedPinBlock": stored, "PinVerificationKeyIndex": 1}
        },
    )["PinData"]["VerificationValue"]
    from apckx.crypto import pin_verification

    assert pvv == pin_verification.generate_visa_pvv(pvk_key, pan, 1, "5917")
    # A K3 key pair made for key blocks (DeriveKeyUsage K1) cannot derive a PEK.
    k1_pair = data_plane.control.create_key(
        KeyAttributes={
            "KeyUsage": "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT",
            "KeyClass": "ASYMMETRIC_KEY_PAIR",
            "KeyAlgorithm": "ECC_NIST_P256",
            "KeyModesOfUse": {"DeriveKey": True},
        },
        Exportable=True,
        DeriveKeyUsage="TR31_K1_KEY_BLOCK_PROTECTION_KEY",
    )["Key"]["KeyArn"]
    with pytest.raises(ClientError) as info:
        data_plane.data.translate_pin_data(
            IncomingKeyIdentifier=k1_pair,
            OutgoingKeyIdentifier=keys.pek(),
            IncomingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": pan}},
            OutgoingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": pan}},
            EncryptedPinBlock=iso0(derived, "5917", pan),
            IncomingWrappedKey=wrapped,
        )
    assert "DeriveKeyUsage" in info.value.response["Error"]["Message"]


def test_translate_refusals(data_plane: Any, keys: Keys) -> None:
    base = {
        "IncomingKeyIdentifier": keys.pek(),
        "OutgoingKeyIdentifier": keys.pek(PEK_B),
        "IncomingTranslationAttributes": {"IsoFormat0": {"PrimaryAccountNumber": TEST_PAN}},
        "OutgoingTranslationAttributes": {"IsoFormat0": {"PrimaryAccountNumber": TEST_PAN}},
        "EncryptedPinBlock": iso0(PEK_A, "1234", TEST_PAN),
    }
    cases = [
        ({"EncryptedPinBlock": iso0(PEK_B, "1234", TEST_PAN)}, "does not decode"),
        (
            {"OutgoingTranslationAttributes": {"IsoFormat4": {"PrimaryAccountNumber": TEST_PAN}}},
            "ISO_FORMAT_4 needs an AES key",
        ),
        (
            {
                "IncomingAs2805Attributes": {
                    "SystemTraceAuditNumber": "000348",
                    "TransactionAmount": "000000000328",
                }
            },
            "does not decode",  # the block is under the PEK, not the transaction's KPE
        ),
        (
            {"IncomingKeyIdentifier": keys.get(PEK_B, V2, "TDES_2KEY", {"Generate": True})},
            "KeyUsage",
        ),
        (
            {
                "IncomingKeyIdentifier": keys.get(
                    h("0123456789ABCDEFFEDCBA9876543210"), B0, "TDES_2KEY", {"DeriveKey": True}
                ),
                "IncomingDukptAttributes": {"KeySerialNumber": "FFFF9876543210E0000000000001"[:24]},
            },
            "KSN",
        ),
    ]
    for change, message in cases:
        with pytest.raises(ClientError) as info:
            data_plane.data.translate_pin_data(**{**base, **change})
        assert info.value.response["Error"]["Code"] == "ValidationException"
        assert message in info.value.response["Error"]["Message"]


# --- GeneratePinData / VerifyPinData: IBM 3624 -----------------------------------------------


def ibm(entry: dict[str, Any]) -> dict[str, str]:
    return {
        "DecimalizationTable": entry["decimalization_table"],
        "PinValidationData": entry["pin_validation_data"],
        "PinValidationDataPadCharacter": entry["pin_validation_data_pad_character"],
    }


def decrypt_iso0(block: str, pan: str = TEST_PAN) -> str:
    return pin_block.decrypt_pin_block(PEK_A, h(block), "ISO_FORMAT_0", pan=pan)


@load("pin_blocks.json", lambda e: e["id"].startswith("ibm3624"))
def test_ibm3624_vectors(data_plane: Any, keys: Keys, entry: dict[str, Any]) -> None:
    pvk = keys.get(h(entry["pvk"]), V1, "TDES_2KEY", {"Generate": True, "Verify": True})
    common = {
        "GenerationKeyIdentifier": pvk,
        "EncryptionKeyIdentifier": keys.pek(),
        "PinBlockFormat": "ISO_FORMAT_0",
        "PrimaryAccountNumber": TEST_PAN,
    }
    from_offset = data_plane.data.generate_pin_data(
        **common,
        GenerationAttributes={
            "Ibm3624PinFromOffset": {**ibm(entry), "PinOffset": entry["pin_offset"]}
        },
    )
    assert decrypt_iso0(from_offset["EncryptedPinBlock"]) == entry["pin"]
    assert from_offset["GenerationKeyArn"] == pvk
    offset = data_plane.data.generate_pin_data(
        **common,
        GenerationAttributes={
            "Ibm3624PinOffset": {
                **ibm(entry),
                "EncryptedPinBlock": iso0(PEK_A, entry["pin"], TEST_PAN),
            }
        },
    )
    assert offset["PinData"]["PinOffset"] == entry["pin_offset"]
    natural = data_plane.data.generate_pin_data(
        **common,
        PinDataLength=len(entry["natural_pin"]),
        GenerationAttributes={"Ibm3624NaturalPin": ibm(entry)},
    )
    assert decrypt_iso0(natural["EncryptedPinBlock"]) == entry["natural_pin"]
    verify = {
        "VerificationKeyIdentifier": pvk,
        "EncryptionKeyIdentifier": keys.pek(),
        "PinBlockFormat": "ISO_FORMAT_0",
        "PrimaryAccountNumber": TEST_PAN,
        "VerificationAttributes": {"Ibm3624Pin": {**ibm(entry), "PinOffset": entry["pin_offset"]}},
    }
    ok = data_plane.data.verify_pin_data(
        **verify, EncryptedPinBlock=iso0(PEK_A, entry["pin"], TEST_PAN)
    )
    assert ok["VerificationKeyArn"] == pvk
    wrong = str((int(entry["pin"][0]) + 1) % 10) + entry["pin"][1:]
    with pytest.raises(ClientError) as info:
        data_plane.data.verify_pin_data(**verify, EncryptedPinBlock=iso0(PEK_A, wrong, TEST_PAN))
    assert failed_reason(info) == "INVALID_PIN"


def test_ibm3624_random_pin(data_plane: Any, keys: Keys) -> None:
    entry = next(
        e
        for e in json.loads((VECTORS / "pin_blocks.json").read_text())
        if e["id"] == "ibm3624_psec_doc"
    )
    pvk = keys.get(h(entry["pvk"]), V1, "TDES_2KEY", {"Generate": True, "Verify": True})
    out = data_plane.data.generate_pin_data(
        GenerationKeyIdentifier=pvk,
        EncryptionKeyIdentifier=keys.pek(),
        PinBlockFormat="ISO_FORMAT_3",
        PrimaryAccountNumber=TEST_PAN,
        PinDataLength=6,
        GenerationAttributes={"Ibm3624RandomPin": ibm(entry)},
    )
    pin = pin_block.decrypt_pin_block(
        PEK_A, h(out["EncryptedPinBlock"]), "ISO_FORMAT_3", pan=TEST_PAN
    )
    assert len(pin) == 6 and len(out["PinData"]["PinOffset"]) == 6
    data_plane.data.verify_pin_data(
        VerificationKeyIdentifier=pvk,
        EncryptionKeyIdentifier=keys.pek(),
        PinBlockFormat="ISO_FORMAT_3",
        PrimaryAccountNumber=TEST_PAN,
        EncryptedPinBlock=out["EncryptedPinBlock"],
        VerificationAttributes={
            "Ibm3624Pin": {**ibm(entry), "PinOffset": out["PinData"]["PinOffset"]}
        },
    )


# --- Visa PVV --------------------------------------------------------------------------------


@load("pin_blocks.json", lambda e: e["id"].startswith("pvv"))
def test_visa_pvv_vectors(data_plane: Any, keys: Keys, entry: dict[str, Any]) -> None:
    pvk = keys.get(h(entry["pvk"]), V2, "TDES_2KEY", {"Generate": True, "Verify": True})
    pan, pvki = entry["pan"], int(entry["pvki"])
    epb = iso0(PEK_A, entry["pin"], pan)
    out = data_plane.data.generate_pin_data(
        GenerationKeyIdentifier=pvk,
        EncryptionKeyIdentifier=keys.pek(),
        PinBlockFormat="ISO_FORMAT_0",
        PrimaryAccountNumber=pan,
        GenerationAttributes={
            "VisaPinVerificationValue": {"EncryptedPinBlock": epb, "PinVerificationKeyIndex": pvki}
        },
    )
    assert out["PinData"]["VerificationValue"] == entry["pvv"]
    verify = {
        "VerificationKeyIdentifier": pvk,
        "EncryptionKeyIdentifier": keys.pek(),
        "PinBlockFormat": "ISO_FORMAT_0",
        "PrimaryAccountNumber": pan,
        "VerificationAttributes": {
            "VisaPin": {"PinVerificationKeyIndex": pvki, "VerificationValue": entry["pvv"]}
        },
    }
    data_plane.data.verify_pin_data(**verify, EncryptedPinBlock=epb)
    with pytest.raises(ClientError) as info:
        data_plane.data.verify_pin_data(**verify, EncryptedPinBlock=iso0(PEK_A, "0000", pan))
    assert failed_reason(info) == "INVALID_PIN"


def test_visa_pin_generation_round_trip(data_plane: Any, keys: Keys) -> None:
    pvk = keys.get(
        h("0123456789ABCDEFFEDCBA9876543210"), V2, "TDES_2KEY", {"Generate": True, "Verify": True}
    )
    out = data_plane.data.generate_pin_data(
        GenerationKeyIdentifier=pvk,
        EncryptionKeyIdentifier=keys.pek(),
        PinBlockFormat="ISO_FORMAT_0",
        PrimaryAccountNumber="171234567890123",
        GenerationAttributes={"VisaPin": {"PinVerificationKeyIndex": 1}},
    )
    assert len(out["PinData"]["VerificationValue"]) == 4
    data_plane.data.verify_pin_data(
        VerificationKeyIdentifier=pvk,
        EncryptionKeyIdentifier=keys.pek(),
        PinBlockFormat="ISO_FORMAT_0",
        PrimaryAccountNumber="171234567890123",
        EncryptedPinBlock=out["EncryptedPinBlock"],
        VerificationAttributes={
            "VisaPin": {
                "PinVerificationKeyIndex": 1,
                "VerificationValue": out["PinData"]["VerificationValue"],
            }
        },
    )


def test_verify_pin_under_dukpt(data_plane: Any, keys: Keys) -> None:
    entry = next(
        e
        for e in json.loads((VECTORS / "dukpt_tdes.json").read_text())
        if e["id"] == "x9241_init_E00001"
    )
    pvk_key = h("0123456789ABCDEFFEDCBA9876543210")
    pvk = keys.get(pvk_key, V2, "TDES_2KEY", {"Generate": True, "Verify": True})
    bdk = keys.get(h(entry["bdk"]), B0, "TDES_2KEY", {"DeriveKey": True})
    from apckx.crypto import pin_verification

    pvv = pin_verification.generate_visa_pvv(pvk_key, entry["pan"], 1, entry["pin"])
    request = {
        "VerificationKeyIdentifier": pvk,
        "EncryptionKeyIdentifier": bdk,
        "PinBlockFormat": "ISO_FORMAT_0",
        "PrimaryAccountNumber": entry["pan"],
        "EncryptedPinBlock": entry["encrypted_pin_block"],
        "DukptAttributes": {"KeySerialNumber": entry["ksn"], "DukptDerivationType": "TDES_2KEY"},
    }
    out = data_plane.data.verify_pin_data(
        **request,
        VerificationAttributes={
            "VisaPin": {"PinVerificationKeyIndex": 1, "VerificationValue": pvv}
        },
    )
    assert out["EncryptionKeyArn"] == bdk
    with pytest.raises(ClientError) as info:
        data_plane.data.verify_pin_data(
            **request,
            VerificationAttributes={
                "VisaPin": {"PinVerificationKeyIndex": 2, "VerificationValue": pvv}
            },
        )
    assert failed_reason(info) == "INVALID_PIN"


def test_generate_refusals(data_plane: Any, keys: Keys) -> None:
    ibm_pvk = keys.get(
        h("0123456789ABCDEFFEDCBA9876543210"), V1, "TDES_2KEY", {"Generate": True, "Verify": True}
    )
    verify_only = keys.get(h("0123456789ABCDEFFEDCBA9876543210"), V2, "TDES_2KEY", {"Verify": True})
    cases = [
        (verify_only, {"VisaPin": {"PinVerificationKeyIndex": 1}}, "KeyModesOfUse"),
        (ibm_pvk, {"VisaPin": {"PinVerificationKeyIndex": 1}}, "KeyUsage"),
    ]
    for pvk, attributes, message in cases:
        with pytest.raises(ClientError) as info:
            data_plane.data.generate_pin_data(
                GenerationKeyIdentifier=pvk,
                EncryptionKeyIdentifier=keys.pek(),
                PinBlockFormat="ISO_FORMAT_0",
                PrimaryAccountNumber=TEST_PAN,
                GenerationAttributes=attributes,
            )
        assert info.value.response["Error"]["Code"] == "ValidationException"
        assert message in info.value.response["Error"]["Message"]
