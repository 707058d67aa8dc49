"""Typed wrappers over the APC data plane (``payment-cryptography-data``).

The same error contract as :mod:`apckx.service.apc` (it reuses that module's call plumbing):
every botocore error becomes :class:`apckx.errors.ServiceError`, parameter errors
:class:`InputError`, connection and credential problems :class:`ConfigError`, and every call
is timed in :attr:`ApcDataService.calls` without its parameters. The Verify* wrappers return
``False`` for APC's ``VerificationFailedException`` (a clear "no"), and raise for anything
else. Nothing here logs parameters or answers: PIN blocks, MACs and CVVs stay out of logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apckx.errors import ServiceError
from apckx.service.apc import ApcService, ApiCall

VERIFICATION_FAILED = "VerificationFailedException"

Attributes = Mapping[str, Any]


class ApcDataService:
    """The APC data-plane operations apckx uses, one method each, named after botocore's."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._service = ApcService(client)  # its _call: one error and timing contract

    @property
    def calls(self) -> list[ApiCall]:
        return self._service.calls

    def _call(self, operation: str, method: str, **params: Any) -> dict[str, Any]:
        return self._service._call(operation, method, **params)

    def _verify(self, operation: str, method: str, **params: Any) -> bool:
        try:
            self._call(operation, method, **params)
        except ServiceError as exc:
            if exc.code == VERIFICATION_FAILED:
                return False
            raise
        return True

    # -- encryption ----------------------------------------------------------------------
    def encrypt_data(self, key_identifier: str, plain_text: str, attributes: Attributes) -> str:
        response = self._call(
            "EncryptData", "encrypt_data", KeyIdentifier=key_identifier, PlainText=plain_text,
            EncryptionAttributes=dict(attributes),
        )  # fmt: skip
        return str(response["CipherText"])

    def decrypt_data(self, key_identifier: str, cipher_text: str, attributes: Attributes) -> str:
        response = self._call(
            "DecryptData", "decrypt_data", KeyIdentifier=key_identifier, CipherText=cipher_text,
            DecryptionAttributes=dict(attributes),
        )  # fmt: skip
        return str(response["PlainText"])

    # -- MACs --------------------------------------------------------------------------------
    def generate_mac(
        self,
        key_identifier: str,
        message_data: str,
        attributes: Attributes,
        *,
        mac_length: int | None = None,
    ) -> str:
        params: dict[str, Any] = {
            "KeyIdentifier": key_identifier,
            "MessageData": message_data,
            "GenerationAttributes": dict(attributes),
        }
        if mac_length is not None:
            params["MacLength"] = mac_length
        return str(self._call("GenerateMac", "generate_mac", **params)["Mac"])

    def verify_mac(
        self,
        key_identifier: str,
        message_data: str,
        mac: str,
        attributes: Attributes,
        *,
        mac_length: int | None = None,
    ) -> bool:
        params: dict[str, Any] = {
            "KeyIdentifier": key_identifier,
            "MessageData": message_data,
            "Mac": mac,
            "VerificationAttributes": dict(attributes),
        }
        if mac_length is not None:
            params["MacLength"] = mac_length
        return self._verify("VerifyMac", "verify_mac", **params)

    # -- card validation ---------------------------------------------------------------------
    def generate_card_validation_data(
        self,
        key_identifier: str,
        pan: str,
        attributes: Attributes,
        *,
        validation_data_length: int | None = None,
    ) -> str:
        params: dict[str, Any] = {
            "KeyIdentifier": key_identifier,
            "PrimaryAccountNumber": pan,
            "GenerationAttributes": dict(attributes),
        }
        if validation_data_length is not None:
            params["ValidationDataLength"] = validation_data_length
        response = self._call(
            "GenerateCardValidationData", "generate_card_validation_data", **params
        )
        return str(response["ValidationData"])

    def verify_card_validation_data(
        self, key_identifier: str, pan: str, validation_data: str, attributes: Attributes
    ) -> bool:
        return self._verify(
            "VerifyCardValidationData", "verify_card_validation_data",
            KeyIdentifier=key_identifier, PrimaryAccountNumber=pan,
            ValidationData=validation_data, VerificationAttributes=dict(attributes),
        )  # fmt: skip

    # -- PINs ----------------------------------------------------------------------------
    def translate_pin_data(
        self,
        *,
        incoming_key_identifier: str,
        outgoing_key_identifier: str,
        incoming_attributes: Attributes,
        outgoing_attributes: Attributes,
        encrypted_pin_block: str,
        incoming_dukpt: Attributes | None = None,
        outgoing_dukpt: Attributes | None = None,
    ) -> str:
        params: dict[str, Any] = {
            "IncomingKeyIdentifier": incoming_key_identifier,
            "OutgoingKeyIdentifier": outgoing_key_identifier,
            "IncomingTranslationAttributes": dict(incoming_attributes),
            "OutgoingTranslationAttributes": dict(outgoing_attributes),
            "EncryptedPinBlock": encrypted_pin_block,
        }
        if incoming_dukpt is not None:
            params["IncomingDukptAttributes"] = dict(incoming_dukpt)
        if outgoing_dukpt is not None:
            params["OutgoingDukptAttributes"] = dict(outgoing_dukpt)
        return str(self._call("TranslatePinData", "translate_pin_data", **params)["PinBlock"])

    def generate_pin_data(
        self,
        *,
        generation_key_identifier: str,
        encryption_key_identifier: str,
        attributes: Attributes,
        pin_block_format: str,
        pan: str,
    ) -> dict[str, Any]:
        """GeneratePinData's answer: ``EncryptedPinBlock`` and ``PinData``."""
        return self._call(
            "GeneratePinData", "generate_pin_data",
            GenerationKeyIdentifier=generation_key_identifier,
            EncryptionKeyIdentifier=encryption_key_identifier,
            GenerationAttributes=dict(attributes), PinBlockFormat=pin_block_format,
            PrimaryAccountNumber=pan,
        )  # fmt: skip

    def verify_pin_data(
        self,
        *,
        verification_key_identifier: str,
        encryption_key_identifier: str,
        attributes: Attributes,
        encrypted_pin_block: str,
        pin_block_format: str,
        pan: str,
    ) -> bool:
        return self._verify(
            "VerifyPinData", "verify_pin_data",
            VerificationKeyIdentifier=verification_key_identifier,
            EncryptionKeyIdentifier=encryption_key_identifier,
            VerificationAttributes=dict(attributes), EncryptedPinBlock=encrypted_pin_block,
            PinBlockFormat=pin_block_format, PrimaryAccountNumber=pan,
        )  # fmt: skip

    # -- EMV -----------------------------------------------------------------------------
    def verify_auth_request_cryptogram(
        self,
        key_identifier: str,
        *,
        transaction_data: str,
        cryptogram: str,
        major_key_derivation_mode: str,
        session_key_derivation: Attributes,
    ) -> bool:
        return self._verify(
            "VerifyAuthRequestCryptogram", "verify_auth_request_cryptogram",
            KeyIdentifier=key_identifier, TransactionData=transaction_data,
            AuthRequestCryptogram=cryptogram, MajorKeyDerivationMode=major_key_derivation_mode,
            SessionKeyDerivationAttributes=dict(session_key_derivation),
        )  # fmt: skip


def make_data_service(control: ApcService) -> ApcDataService:
    """The data-plane service from the same client factory and session as ``control``."""
    from apckx.service.client import make_data_client

    return ApcDataService(make_data_client(control.client))
