"""VerifyAuthRequestCryptogram, GenerateAuthRequestCryptogram and GenerateMacEmvPinChange over
real HTTP through boto3, with the emv.json vectors that fit APC's inputs byte for byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from psec import des

from apckx.crypto import emv, pin_block

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "dataplane" / "emv.json"
E0, E1, E2 = (
    "TR31_E0_EMV_MKEY_APP_CRYPTOGRAMS",
    "TR31_E1_EMV_MKEY_CONFIDENTIALITY",
    "TR31_E2_EMV_MKEY_INTEGRITY",
)
P0 = "TR31_P0_PIN_ENCRYPTION_KEY"
DERIVE = {"DeriveKey": True}
PEK = bytes.fromhex("1C1C2C2C3D3D4E4E5F5F6E6E7D7D8C8C")
PEK_MODES = {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}


def entries(keep: Any) -> list[dict[str, Any]]:
    with VECTORS.open(encoding="utf-8") as handle:
        return [e for e in json.load(handle) if keep(e)]


def load(keep: Any) -> Any:
    found = entries(keep)
    assert found
    return pytest.mark.parametrize("entry", found, ids=[e["id"] for e in found])


def h(text: str) -> bytes:
    return bytes.fromhex(text)


class Keys:
    def __init__(self, plane: Any) -> None:
        self.plane = plane
        self.cache: dict[tuple[str, str], str] = {}

    def get(self, key_hex: str, usage: str, modes: Any = DERIVE) -> str:
        if (key_hex, usage) not in self.cache:
            self.cache[(key_hex, usage)] = self.plane.import_key(
                h(key_hex), usage, "TDES_2KEY", modes
            )
        return self.cache[(key_hex, usage)]


@pytest.fixture(scope="module")
def keys(data_plane: Any) -> Keys:
    return Keys(data_plane)


def reason(info: pytest.ExceptionInfo[ClientError]) -> str:
    assert info.value.response["Error"]["Code"] == "VerificationFailedException"
    return str(info.value.response.get("Reason", info.value.response["Error"].get("Reason")))


def card(entry: dict[str, Any]) -> dict[str, str]:
    return {"PrimaryAccountNumber": entry["pan"], "PanSequenceNumber": entry["pan_sequence_number"]}


# --- ARQC ------------------------------------------------------------------------------------


@load(lambda e: e["id"] == "aws_doc_visa_cvn10" or e["id"].startswith("aws_sample"))
def test_arqc_vectors_with_the_icc_master_key(
    data_plane: Any, keys: Keys, entry: dict[str, Any]
) -> None:
    derivation = "Visa" if entry["id"] == "aws_doc_visa_cvn10" else "Amex"
    imk = keys.get(entry["imk"], E0)
    request = {
        "KeyIdentifier": imk,
        "TransactionData": entry["transaction_data"],
        "MajorKeyDerivationMode": entry["major_key_derivation_mode"],
        "SessionKeyDerivationAttributes": {derivation: card(entry)},
    }
    out = data_plane.data.verify_auth_request_cryptogram(
        **request, AuthRequestCryptogram=entry["arqc"]
    )
    assert out["KeyArn"] == imk
    assert "AuthResponseValue" not in out
    generated = data_plane.data.generate_auth_request_cryptogram(**request)
    assert generated["AuthRequestCryptogram"] == entry["arqc"]
    wrong = entry["arqc"][:-1] + ("0" if entry["arqc"][-1] != "0" else "1")
    with pytest.raises(ClientError) as info:
        data_plane.data.verify_auth_request_cryptogram(**request, AuthRequestCryptogram=wrong)
    assert reason(info) == "INVALID_AUTH_REQUEST_CRYPTOGRAM"


def test_arqc_emv_common_option_b_with_arpc_method2(data_plane: Any, keys: Keys) -> None:
    # pyemv_b_sha_decimalize: R = ATC 001C || 00*6, APC's EmvCommon form; Option B (18 digits).
    entry = entries(lambda e: e["id"] == "pyemv_b_sha_decimalize")[0]
    imk = keys.get(entry["imk"], E0)
    out = data_plane.data.verify_auth_request_cryptogram(
        KeyIdentifier=imk,
        TransactionData=entry["transaction_data_padded"],
        AuthRequestCryptogram=entry["arqc"],
        MajorKeyDerivationMode="EMV_OPTION_B",
        SessionKeyDerivationAttributes={
            "EmvCommon": {**card(entry), "ApplicationTransactionCounter": "001C"}
        },
        AuthResponseAttributes={
            "ArpcMethod2": {
                "CardStatusUpdate": entry["card_status_update"],
                "ProprietaryAuthenticationData": entry["proprietary_authentication_data"],
            }
        },
    )
    assert out["AuthResponseValue"] == entry["arpc"]
    with pytest.raises(ClientError) as info:
        data_plane.data.verify_auth_request_cryptogram(
            KeyIdentifier=imk,
            TransactionData=entry["transaction_data_padded"],
            AuthRequestCryptogram=entry["arqc"],
            MajorKeyDerivationMode="EMV_OPTION_A",
            SessionKeyDerivationAttributes={
                "EmvCommon": {**card(entry), "ApplicationTransactionCounter": "001C"}
            },
        )
    assert reason(info) == "INVALID_AUTH_REQUEST_CRYPTOGRAM"


def test_arqc_aws_doc_visa_cvn18_emv_common(data_plane: Any, keys: Keys) -> None:
    # AWS UG (use-cases-issuers.networkfunctions.visa, CVN18/22): the IMK with KCV 08D7B4,
    # EMV common session key on ATC 000B, 72 bytes of transaction data -> 61EDCC708B4C97B4.
    imk = keys.get("0123456789ABCDEFFEDCBA9876543210", E0)
    data = (
        "00000000170000000000000008400080008000084016051700000000093800000B1F220103000000"
        "0000000000000000000000000000000000000000000000008000000000000000"
    )
    session = {
        "EmvCommon": {
            "PrimaryAccountNumber": "9137631040001422",
            "PanSequenceNumber": "01",
            "ApplicationTransactionCounter": "000B",
        }
    }
    out = data_plane.data.verify_auth_request_cryptogram(
        KeyIdentifier=imk,
        TransactionData=data,
        AuthRequestCryptogram="61EDCC708B4C97B4",
        MajorKeyDerivationMode="EMV_OPTION_A",
        SessionKeyDerivationAttributes=session,
    )
    assert out["KeyCheckValue"] == "08D7B4"
    with pytest.raises(ClientError) as info:
        data_plane.data.verify_auth_request_cryptogram(
            KeyIdentifier=imk,
            TransactionData=data,
            AuthRequestCryptogram="61EDCC708B4C97B4",
            MajorKeyDerivationMode="EMV_OPTION_A",
            SessionKeyDerivationAttributes={
                "EmvCommon": {**session["EmvCommon"], "ApplicationTransactionCounter": "000C"}
            },
        )
    assert reason(info) == "INVALID_AUTH_REQUEST_CRYPTOGRAM"


@pytest.mark.parametrize(
    ("derivation", "extra"),
    [
        ("EmvCommon", {"ApplicationTransactionCounter": "0011"}),
        (
            "Mastercard",
            {"ApplicationTransactionCounter": "0011", "UnpredictableNumber": "12345678"},
        ),
        ("Emv2000", {"ApplicationTransactionCounter": "0011"}),
        ("UnionPay", {"ApplicationTransactionCounter": "0011"}),
        ("Visa", {}),
    ],
)
def test_each_derivation_round_trips_with_arpc_method1(
    data_plane: Any, keys: Keys, derivation: str, extra: dict[str, str]
) -> None:
    imk_hex = "0123456789ABCDEFFEDCBA9876543210"
    imk = keys.get(imk_hex, E0)
    pan, psn = "5413123456784808", "00"
    data = "0000000010000000000000000840000000000008402301010012345678" + "5C000011" + "000000"
    session = {derivation: {"PrimaryAccountNumber": pan, "PanSequenceNumber": psn, **extra}}
    arqc = data_plane.data.generate_auth_request_cryptogram(
        KeyIdentifier=imk,
        TransactionData=data,
        MajorKeyDerivationMode="EMV_OPTION_A",
        SessionKeyDerivationAttributes=session,
    )["AuthRequestCryptogram"]
    icc_mk = emv.derive_icc_master_key(h(imk_hex), pan, psn)
    key = emv.derive_session_key(
        icc_mk,
        derivation,
        atc=h(extra["ApplicationTransactionCounter"]) if extra else None,
        unpredictable_number=h(extra["UnpredictableNumber"])
        if "UnpredictableNumber" in extra
        else None,
    )
    assert arqc == emv.generate_arqc(key, h(data)).hex().upper()
    out = data_plane.data.verify_auth_request_cryptogram(
        KeyIdentifier=imk,
        TransactionData=data,
        AuthRequestCryptogram=arqc,
        MajorKeyDerivationMode="EMV_OPTION_A",
        SessionKeyDerivationAttributes=session,
        AuthResponseAttributes={"ArpcMethod1": {"AuthResponseCode": "3030"}},
    )
    assert (
        out["AuthResponseValue"] == emv.generate_arpc_method1(key, h(arqc), h("3030")).hex().upper()
    )


def test_arqc_key_refusals(data_plane: Any, keys: Keys) -> None:
    smi = keys.get("0123456789ABCDEFFEDCBA9876543210", E2)
    with pytest.raises(ClientError) as info:
        data_plane.data.verify_auth_request_cryptogram(
            KeyIdentifier=smi,
            TransactionData="00" * 8,
            AuthRequestCryptogram="00" * 8,
            MajorKeyDerivationMode="EMV_OPTION_A",
            SessionKeyDerivationAttributes={
                "Visa": {"PrimaryAccountNumber": "5413123456784808", "PanSequenceNumber": "00"}
            },
        )
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "KeyUsage" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        data_plane.data.generate_auth_request_cryptogram(
            KeyIdentifier=smi,
            TransactionData="00" * 8,
            MajorKeyDerivationMode="EMV_OPTION_A",
            SessionKeyDerivationAttributes={
                "Visa": {"PrimaryAccountNumber": "5413123456784808", "PanSequenceNumber": "00"}
            },
        )
    assert "KeyUsage" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        data_plane.data.generate_auth_request_cryptogram(
            KeyIdentifier=keys.get("0123456789ABCDEFFEDCBA9876543210", E0),
            TransactionData="000",
            MajorKeyDerivationMode="EMV_OPTION_A",
            SessionKeyDerivationAttributes={
                "EmvCommon": {
                    "PrimaryAccountNumber": "5413123456784808",
                    "PanSequenceNumber": "00",
                    "ApplicationTransactionCounter": "0001",
                }
            },
        )
    assert "whole bytes" in info.value.response["Error"]["Message"]


# --- GenerateMacEmvPinChange -----------------------------------------------------------------


MESSAGE = "8424000210000000"  # the vectors' command header, padded to APC's 8-byte minimum


def new_pin_block(entry: dict[str, Any], pin: str) -> str:
    clear = pin_block.encode_pin_block(pin, "ISO_FORMAT_0", pan=entry["pan"])
    return des.encrypt_tdes_ecb(PEK, clear).hex().upper()


def pin_change_attributes(entry: dict[str, Any], keys: Keys) -> dict[str, Any]:
    common = {"MajorKeyDerivationMode": "EMV_OPTION_A", **card(entry)}
    kind = entry["encryption_type"]
    if kind == "EMV":
        return {
            "EmvCommon": {
                **common,
                "ApplicationCryptogram": entry["session_key_r"],
                "Mode": "CBC",
                "PinBlockPaddingType": "ISO_IEC_7816_4",
                "PinBlockLengthPosition": "NONE",
            }
        }
    if kind == "MASTERCARD":
        return {"Mastercard": {**common, "ApplicationCryptogram": entry["session_key_r"]}}
    visa: dict[str, Any] = {
        **common,
        "ApplicationTransactionCounter": entry["session_key_r"],
        "AuthorizationRequestKeyIdentifier": keys.get(entry["imk_ac"], E0),
    }
    if entry["current_pin"]:
        visa["CurrentPinAttributes"] = {
            "CurrentPinPekIdentifier": keys.get(PEK.hex(), P0, PEK_MODES),
            "CurrentEncryptedPinBlock": new_pin_block(entry, entry["current_pin"]),
        }
    return {"Visa": visa}


@load(lambda e: "encryption_type" in e)
def test_pin_change_vectors(data_plane: Any, keys: Keys, entry: dict[str, Any]) -> None:
    out = data_plane.data.generate_mac_emv_pin_change(
        NewPinPekIdentifier=keys.get(PEK.hex(), P0, PEK_MODES),
        NewEncryptedPinBlock=new_pin_block(entry, entry["new_pin"]),
        PinBlockFormat="ISO_FORMAT_0",
        SecureMessagingIntegrityKeyIdentifier=keys.get(entry["imk_smi"], E2),
        SecureMessagingConfidentialityKeyIdentifier=keys.get(entry["imk_smc"], E1),
        MessageData=MESSAGE,
        DerivationMethodAttributes=pin_change_attributes(entry, keys),
    )
    assert out["EncryptedPinBlock"] == entry["encrypted_pin_block"]
    expected_mac = emv.generate_script_mac(
        h(entry["sk_smi"]), h(MESSAGE) + h(entry["encrypted_pin_block"])
    )
    assert out["Mac"] == expected_mac.hex().upper()
    assert out["SecureMessagingIntegrityKeyArn"] == keys.get(entry["imk_smi"], E2)
    if entry["encryption_type"] == "VISA":
        outputs = out["VisaAmexDerivationOutputs"]
        assert outputs["AuthorizationRequestKeyArn"] == keys.get(entry["imk_ac"], E0)
        assert ("CurrentPinPekArn" in outputs) == bool(entry["current_pin"])
    else:
        assert "VisaAmexDerivationOutputs" not in out


def test_pin_change_emv2000_and_amex(data_plane: Any, keys: Keys) -> None:
    entry = entries(lambda e: e["id"] == "pyemv_pinchange_vis")[0]
    common = {
        "MajorKeyDerivationMode": "EMV_OPTION_A",
        **card(entry),
        "ApplicationTransactionCounter": "0012",
    }
    for name, extra in (
        ("Emv2000", {}),
        ("Amex", {"AuthorizationRequestKeyIdentifier": keys.get(entry["imk_ac"], E0)}),
    ):
        out = data_plane.data.generate_mac_emv_pin_change(
            NewPinPekIdentifier=keys.get(PEK.hex(), P0, PEK_MODES),
            NewEncryptedPinBlock=new_pin_block(entry, "4321"),
            PinBlockFormat="ISO_FORMAT_0",
            SecureMessagingIntegrityKeyIdentifier=keys.get(entry["imk_smi"], E2),
            SecureMessagingConfidentialityKeyIdentifier=keys.get(entry["imk_smc"], E1),
            MessageData=MESSAGE,
            DerivationMethodAttributes={name: {**common, **extra}},
        )
        derivation = "EMV2000" if name == "Emv2000" else "AMEX"
        mk_smc = emv.derive_icc_master_key(h(entry["imk_smc"]), entry["pan"], "01")
        sk_smc = emv.derive_session_key(mk_smc, derivation, atc=h("0012"))
        mode = "CBC" if name == "Emv2000" else "ECB"
        clear = emv.decrypt_pin_block_from_card(sk_smc, h(out["EncryptedPinBlock"]), mode=mode)
        if name == "Emv2000":
            assert clear.startswith(emv.format_iso2_pin_block("4321"))
        else:
            mk_ac = emv.derive_icc_master_key(h(entry["imk_ac"]), entry["pan"], "01")
            assert clear[1:9] == emv.format_vis_pin_block(mk_ac, "4321")


def test_pin_change_refusals(data_plane: Any, keys: Keys) -> None:
    entry = entries(lambda e: e["id"] == "pyemv_pinchange_ccd_emv")[0]
    request = {
        "NewPinPekIdentifier": keys.get(PEK.hex(), P0, PEK_MODES),
        "NewEncryptedPinBlock": new_pin_block(entry, "9999"),
        "PinBlockFormat": "ISO_FORMAT_0",
        "SecureMessagingIntegrityKeyIdentifier": keys.get(entry["imk_smi"], E2),
        "SecureMessagingConfidentialityKeyIdentifier": keys.get(entry["imk_smc"], E1),
        "MessageData": MESSAGE,
        "DerivationMethodAttributes": pin_change_attributes(entry, keys),
    }
    swapped = {**request, "SecureMessagingIntegrityKeyIdentifier": keys.get(entry["imk_smc"], E1)}
    with pytest.raises(ClientError) as info:
        data_plane.data.generate_mac_emv_pin_change(**swapped)
    assert "KeyUsage" in info.value.response["Error"]["Message"]
    garbled = {**request, "NewEncryptedPinBlock": "00" * 8}
    with pytest.raises(ClientError) as info:
        data_plane.data.generate_mac_emv_pin_change(**garbled)
    assert "does not decode" in info.value.response["Error"]["Message"]
