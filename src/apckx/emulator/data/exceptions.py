"""The data plane's own wire error (``payment-cryptography-data``); the shared ones
(ValidationException, ResourceNotFoundException, ...) are :mod:`apckx.emulator.exceptions`."""

from __future__ import annotations

from apckx.emulator.exceptions import ApcServiceException

#: The model's VerificationFailedReason values.
INVALID_MAC = "INVALID_MAC"
INVALID_PIN = "INVALID_PIN"
INVALID_VALIDATION_DATA = "INVALID_VALIDATION_DATA"
INVALID_AUTH_REQUEST_CRYPTOGRAM = "INVALID_AUTH_REQUEST_CRYPTOGRAM"


class VerificationFailedException(ApcServiceException):
    """A Verify* operation's check failed; ``Reason`` says which (one of the four above).
    400, as the model's ``httpError``; botocore parses ``Reason`` and ``Message``."""

    error_type = "VerificationFailedException"
    status = 400

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message, Reason=reason)
        self.reason = reason
