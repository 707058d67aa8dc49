"""Bounded fuzzing of the PIN, EMV and AS2805 handlers over HTTP: model-valid but arbitrary
PIN blocks, PANs, offsets, cryptograms and random keys never make the emulator fail with a 500;
every answer is a success or one of the model's client errors."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

IMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
MODES = {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}
CLIENT_ERRORS = {"ValidationException", "VerificationFailedException"}
HEX = "0123456789ABCDEF"


def hex_text(nbytes: int) -> Any:
    return st.text(HEX, min_size=nbytes * 2, max_size=nbytes * 2)


PANS = st.text("0123456789", min_size=12, max_size=19)
FORMATS = st.sampled_from(["IsoFormat0", "IsoFormat1", "IsoFormat3", "IsoFormat4", "As2805Format0"])


@pytest.fixture(scope="module")
def fuzz_keys(data_plane: Any) -> dict[str, str]:
    imp = data_plane.import_key
    return {
        "pek": imp(IMK, "TR31_P0_PIN_ENCRYPTION_KEY", "TDES_2KEY", MODES),
        "aes_pek": imp(IMK, "TR31_P0_PIN_ENCRYPTION_KEY", "AES_128", MODES),
        "pvk": imp(
            IMK,
            "TR31_V1_IBM3624_PIN_VERIFICATION_KEY",
            "TDES_2KEY",
            {"Generate": True, "Verify": True},
        ),
        "bdk": imp(IMK, "TR31_B0_BASE_DERIVATION_KEY", "TDES_2KEY", {"DeriveKey": True}),
        "e0": imp(IMK, "TR31_E0_EMV_MKEY_APP_CRYPTOGRAMS", "TDES_2KEY", {"DeriveKey": True}),
        "kek": imp(IMK, "TR31_K0_KEY_ENCRYPTION_KEY", "TDES_2KEY", MODES),
    }


def call(fn: Any, **kwargs: Any) -> None:
    try:
        fn(**kwargs)
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        assert code in CLIENT_ERRORS, (code, exc.response["Error"].get("Message"))


FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(
    block=st.one_of(hex_text(8), hex_text(16)),
    pan=PANS,
    fmt_in=FORMATS,
    fmt_out=FORMATS,
    aes_in=st.booleans(),
    dukpt=st.booleans(),
    ksn=hex_text(10),
)
def test_translate_pin_data_never_fails_inside(
    data_plane: Any,
    fuzz_keys: dict[str, str],
    block: str,
    pan: str,
    fmt_in: str,
    fmt_out: str,
    aes_in: bool,
    dukpt: bool,
    ksn: str,
) -> None:
    extra: dict[str, Any] = {}
    incoming = fuzz_keys["aes_pek" if aes_in else "pek"]
    if dukpt:
        incoming = fuzz_keys["bdk"]
        extra["IncomingDukptAttributes"] = {"KeySerialNumber": ksn}
    attrs_in = {} if fmt_in == "IsoFormat1" else {"PrimaryAccountNumber": pan}
    attrs_out = {} if fmt_out == "IsoFormat1" else {"PrimaryAccountNumber": pan}
    call(
        data_plane.data.translate_pin_data,
        IncomingKeyIdentifier=incoming,
        OutgoingKeyIdentifier=fuzz_keys["pek"],
        EncryptedPinBlock=block,
        IncomingTranslationAttributes={fmt_in: attrs_in},
        OutgoingTranslationAttributes={fmt_out: attrs_out},
        **extra,
    )


@FUZZ
@given(
    block=hex_text(8),
    pan=PANS,
    table=st.text("0123456789", min_size=16, max_size=16),
    data=st.text("0123456789", min_size=4, max_size=16),
    pad=st.sampled_from(list(HEX)),
    offset=st.text("0123456789", min_size=4, max_size=12),
    length=st.integers(min_value=4, max_value=12),
)
def test_pin_generation_and_verification_never_fail_inside(
    data_plane: Any,
    fuzz_keys: dict[str, str],
    block: str,
    pan: str,
    table: str,
    data: str,
    pad: str,
    offset: str,
    length: int,
) -> None:
    ibm = {
        "DecimalizationTable": table,
        "PinValidationData": data,
        "PinValidationDataPadCharacter": pad,
    }
    common = {
        "EncryptionKeyIdentifier": fuzz_keys["pek"],
        "PinBlockFormat": "ISO_FORMAT_3",
        "PrimaryAccountNumber": pan,
    }
    call(
        data_plane.data.generate_pin_data,
        GenerationKeyIdentifier=fuzz_keys["pvk"],
        PinDataLength=length,
        GenerationAttributes={"Ibm3624PinFromOffset": {**ibm, "PinOffset": offset}},
        **common,
    )
    call(
        data_plane.data.generate_pin_data,
        GenerationKeyIdentifier=fuzz_keys["pvk"],
        GenerationAttributes={"Ibm3624PinOffset": {**ibm, "EncryptedPinBlock": block}},
        **common,
    )
    call(
        data_plane.data.verify_pin_data,
        VerificationKeyIdentifier=fuzz_keys["pvk"],
        EncryptedPinBlock=block,
        PinDataLength=length,
        VerificationAttributes={"Ibm3624Pin": {**ibm, "PinOffset": offset}},
        **common,
    )


@FUZZ
@given(
    data=st.text(HEX, min_size=2, max_size=64),
    arqc=hex_text(8),
    pan=PANS,
    atc=hex_text(2),
    derivation=st.sampled_from(["EmvCommon", "Mastercard", "Emv2000", "Amex", "Visa", "UnionPay"]),
    mode=st.sampled_from(["EMV_OPTION_A", "EMV_OPTION_B"]),
    pad=st.text(HEX, max_size=16),
)
def test_arqc_verification_never_fails_inside(
    data_plane: Any,
    fuzz_keys: dict[str, str],
    data: str,
    arqc: str,
    pan: str,
    atc: str,
    derivation: str,
    mode: str,
    pad: str,
) -> None:
    attrs: dict[str, str] = {"PrimaryAccountNumber": pan, "PanSequenceNumber": "00"}
    if derivation not in ("Amex", "Visa"):
        attrs["ApplicationTransactionCounter"] = atc
    if derivation == "Mastercard":
        attrs["UnpredictableNumber"] = arqc[:8]
    method2: dict[str, str] = {"CardStatusUpdate": arqc[:8]}
    if pad:
        method2["ProprietaryAuthenticationData"] = pad
    call(
        data_plane.data.verify_auth_request_cryptogram,
        KeyIdentifier=fuzz_keys["e0"],
        TransactionData=data,
        AuthRequestCryptogram=arqc,
        MajorKeyDerivationMode=mode,
        SessionKeyDerivationAttributes={derivation: attrs},
        AuthResponseAttributes={"ArpcMethod2": method2},
    )


@FUZZ
@given(
    kr_send=st.one_of(hex_text(8), hex_text(16), hex_text(24)),
    mask=st.sampled_from(["VARIANT_MASK_82", "VARIANT_MASK_82C0"]),
)
def test_kek_validation_never_fails_inside(
    data_plane: Any, fuzz_keys: dict[str, str], kr_send: str, mask: str
) -> None:
    call(
        data_plane.data.generate_as2805_kek_validation,
        KeyIdentifier=fuzz_keys["kek"],
        RandomKeySendVariantMask=mask,
        KekValidationType={"KekValidationResponse": {"RandomKeySend": kr_send}},
    )


@FUZZ
@given(
    block=hex_text(8),
    message=st.text(HEX, min_size=16, max_size=64).filter(lambda t: len(t) % 2 == 0),
    ac=hex_text(8),
    atc=hex_text(2),
    derivation=st.sampled_from(["EmvCommon", "Mastercard", "Emv2000", "Visa", "Amex"]),
    emv_mode=st.sampled_from(["ECB", "CBC"]),
    padding=st.sampled_from(["NO_PADDING", "ISO_IEC_7816_4"]),
    position=st.sampled_from(["NONE", "FRONT_OF_PIN_BLOCK"]),
)
def test_pin_change_never_fails_inside(
    data_plane: Any,
    fuzz_keys: dict[str, str],
    block: str,
    message: str,
    ac: str,
    atc: str,
    derivation: str,
    emv_mode: str,
    padding: str,
    position: str,
) -> None:
    if "e1" not in fuzz_keys:
        for name, usage in (
            ("e1", "TR31_E1_EMV_MKEY_CONFIDENTIALITY"),
            ("e2", "TR31_E2_EMV_MKEY_INTEGRITY"),
        ):
            fuzz_keys[name] = data_plane.import_key(IMK, usage, "TDES_2KEY", {"DeriveKey": True})
    attrs: dict[str, Any] = {
        "MajorKeyDerivationMode": "EMV_OPTION_A",
        "PrimaryAccountNumber": "5413123456784808",
        "PanSequenceNumber": "00",
    }
    if derivation in ("EmvCommon", "Mastercard"):
        attrs["ApplicationCryptogram"] = ac
    else:
        attrs["ApplicationTransactionCounter"] = atc
    if derivation in ("Visa", "Amex"):
        attrs["AuthorizationRequestKeyIdentifier"] = fuzz_keys["e0"]
    if derivation == "EmvCommon":
        attrs.update(Mode=emv_mode, PinBlockPaddingType=padding, PinBlockLengthPosition=position)
    call(
        data_plane.data.generate_mac_emv_pin_change,
        NewPinPekIdentifier=fuzz_keys["pek"],
        NewEncryptedPinBlock=block,
        PinBlockFormat="ISO_FORMAT_1",
        SecureMessagingIntegrityKeyIdentifier=fuzz_keys["e2"],
        SecureMessagingConfidentialityKeyIdentifier=fuzz_keys["e1"],
        MessageData=message,
        DerivationMethodAttributes={derivation: attrs},
    )
