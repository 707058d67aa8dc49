"""Every PIN, EMV and AS2805 operation's answer satisfies its output shape in the data model
(required members, patterns, lengths), checked with the server's own validator."""

from __future__ import annotations

from typing import Any

from psec import des

from apckx.crypto import pin_block
from apckx.emulator.validation import check_value, data_service_model

P0 = "TR31_P0_PIN_ENCRYPTION_KEY"
PEK = bytes.fromhex("1C1C2C2C3D3D4E4E5F5F6E6E7D7D8C8C")
IMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
MODES = {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}
PAN = "4012345678909"
IBM = {
    "DecimalizationTable": "0123456789012345",
    "PinValidationData": "1234567890",
    "PinValidationDataPadCharacter": "F",
}


def test_answers_satisfy_the_output_shapes(data_plane: Any) -> None:
    data = data_plane.data
    pek = data_plane.import_key(PEK, P0, "TDES_2KEY", MODES)
    pvk = data_plane.import_key(
        IMK, "TR31_V1_IBM3624_PIN_VERIFICATION_KEY", "TDES_2KEY", {"Generate": True, "Verify": True}
    )
    e0, e1, e2 = (
        data_plane.import_key(IMK, usage, "TDES_2KEY", {"DeriveKey": True})
        for usage in (
            "TR31_E0_EMV_MKEY_APP_CRYPTOGRAMS",
            "TR31_E1_EMV_MKEY_CONFIDENTIALITY",
            "TR31_E2_EMV_MKEY_INTEGRITY",
        )
    )
    kek = data_plane.import_key(IMK, "TR31_K0_KEY_ENCRYPTION_KEY", "TDES_2KEY", MODES)
    epb = (
        des.encrypt_tdes_ecb(PEK, pin_block.encode_pin_block("1234", "ISO_FORMAT_0", pan=PAN))
        .hex()
        .upper()
    )
    iso0 = {"IsoFormat0": {"PrimaryAccountNumber": PAN}}
    session = {"Visa": {"PrimaryAccountNumber": PAN, "PanSequenceNumber": "00"}}
    arqc = data.generate_auth_request_cryptogram(
        KeyIdentifier=e0,
        TransactionData="00" * 16,
        MajorKeyDerivationMode="EMV_OPTION_A",
        SessionKeyDerivationAttributes=session,
    )["AuthRequestCryptogram"]
    offset = data.generate_pin_data(
        GenerationKeyIdentifier=pvk,
        EncryptionKeyIdentifier=pek,
        PinBlockFormat="ISO_FORMAT_0",
        PrimaryAccountNumber=PAN,
        GenerationAttributes={"Ibm3624PinOffset": {**IBM, "EncryptedPinBlock": epb}},
    )["PinData"]["PinOffset"]
    calls: dict[str, Any] = {
        "TranslatePinData": lambda: data.translate_pin_data(
            IncomingKeyIdentifier=pek,
            OutgoingKeyIdentifier=pek,
            EncryptedPinBlock=epb,
            IncomingTranslationAttributes=iso0,
            OutgoingTranslationAttributes=iso0,
        ),
        "GeneratePinData": lambda: data.generate_pin_data(
            GenerationKeyIdentifier=pvk,
            EncryptionKeyIdentifier=pek,
            PinBlockFormat="ISO_FORMAT_0",
            PrimaryAccountNumber=PAN,
            GenerationAttributes={"Ibm3624RandomPin": IBM},
        ),
        "VerifyPinData": lambda: data.verify_pin_data(
            VerificationKeyIdentifier=pvk,
            EncryptionKeyIdentifier=pek,
            EncryptedPinBlock=epb,
            PinBlockFormat="ISO_FORMAT_0",
            PrimaryAccountNumber=PAN,
            VerificationAttributes={"Ibm3624Pin": {**IBM, "PinOffset": offset}},
        ),
        "GenerateAuthRequestCryptogram": lambda: data.generate_auth_request_cryptogram(
            KeyIdentifier=e0,
            TransactionData="00" * 16,
            MajorKeyDerivationMode="EMV_OPTION_A",
            SessionKeyDerivationAttributes=session,
        ),
        "VerifyAuthRequestCryptogram": lambda: data.verify_auth_request_cryptogram(
            KeyIdentifier=e0,
            TransactionData="00" * 16,
            AuthRequestCryptogram=arqc,
            MajorKeyDerivationMode="EMV_OPTION_A",
            SessionKeyDerivationAttributes=session,
            AuthResponseAttributes={"ArpcMethod2": {"CardStatusUpdate": "00000000"}},
        ),
        "GenerateMacEmvPinChange": lambda: data.generate_mac_emv_pin_change(
            NewPinPekIdentifier=pek,
            NewEncryptedPinBlock=epb,
            PinBlockFormat="ISO_FORMAT_0",
            SecureMessagingIntegrityKeyIdentifier=e2,
            SecureMessagingConfidentialityKeyIdentifier=e1,
            MessageData="8424000210000000",
            DerivationMethodAttributes={
                "Visa": {
                    "MajorKeyDerivationMode": "EMV_OPTION_A",
                    "PrimaryAccountNumber": PAN,
                    "PanSequenceNumber": "00",
                    "ApplicationTransactionCounter": "0001",
                    "AuthorizationRequestKeyIdentifier": e0,
                    "CurrentPinAttributes": {
                        "CurrentPinPekIdentifier": pek,
                        "CurrentEncryptedPinBlock": epb,
                    },
                }
            },
        ),
        "GenerateAs2805KekValidation": lambda: data.generate_as2805_kek_validation(
            KeyIdentifier=kek,
            RandomKeySendVariantMask="VARIANT_MASK_82C0",
            KekValidationType={"KekValidationRequest": {"DeriveKeyAlgorithm": "TDES_3KEY"}},
        ),
    }
    model = data_service_model()
    for operation, call in calls.items():
        answer = call()
        answer.pop("ResponseMetadata")
        shape = model.operation_model(operation).output_shape
        assert check_value(shape, answer, "") == [], operation
