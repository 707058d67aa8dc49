"""The emulator's wire errors, named and numbered as AWS Payment Cryptography's.

Each class carries the AWS ``__type`` (``error_type``) and the HTTP status. Statuses are the
Smithy model's ``httpError`` codes (spec section 1.1), not the API reference's flat 400/500:
botocore picks the exception from ``__type`` either way, and retries on 5xx and on
``ThrottlingException``. Messages never carry key material.
"""

from __future__ import annotations


class ApcServiceException(Exception):  # noqa: N818 (AWS wire names)
    """An error the emulator answers with: ``{"__type": ..., "message": ...}`` + status."""

    error_type: str = "InternalServerException"
    status: int = 500

    def __init__(self, message: str, **extra: str) -> None:
        super().__init__(message)
        self.message = message
        self.extra = dict(extra)

    def to_body(self) -> dict[str, str]:
        """The JSON error body botocore's JSON parser reads (``__type``, ``message``, extras)."""
        return {"__type": self.error_type, "message": self.message, **self.extra}


class ValidationException(ApcServiceException):
    """Bad input, a refused attribute combination, or a key in the wrong state."""

    error_type = "ValidationException"
    status = 400


class AccessDeniedException(ApcServiceException):
    error_type = "AccessDeniedException"
    status = 403


class ResourceNotFoundException(ApcServiceException):
    """An unknown key, alias or ARN; the body carries the model's ``ResourceId`` member."""

    error_type = "ResourceNotFoundException"
    status = 404

    def __init__(self, message: str, resource_id: str) -> None:
        super().__init__(message, ResourceId=resource_id)
        self.resource_id = resource_id


class ConflictException(ApcServiceException):
    error_type = "ConflictException"
    status = 409


class PublicPolicyException(ApcServiceException):
    """PutResourcePolicy with a policy that would grant public access."""

    error_type = "PublicPolicyException"
    status = 400


class ServiceQuotaExceededException(ApcServiceException):
    error_type = "ServiceQuotaExceededException"
    status = 402


class ThrottlingException(ApcServiceException):
    error_type = "ThrottlingException"
    status = 429


class InternalServerException(ApcServiceException):
    error_type = "InternalServerException"
    status = 500


class ServiceUnavailableException(ApcServiceException):
    error_type = "ServiceUnavailableException"
    status = 503


class UnknownOperationException(ApcServiceException):
    """An unknown ``X-Amz-Target``, or a model operation the emulator does not implement."""

    error_type = "UnknownOperationException"
    status = 400


class SerializationException(ApcServiceException):
    """The request body is not JSON, or not a JSON object."""

    error_type = "SerializationException"
    status = 400


# Authentication errors, as AWS JSON services send them (used by the server's SigV4 check).


class UnrecognizedClientException(ApcServiceException):
    """The access key id is not known."""

    error_type = "UnrecognizedClientException"
    status = 403


class InvalidSignatureException(ApcServiceException):
    """The SigV4 signature does not match the request."""

    error_type = "InvalidSignatureException"
    status = 403


class IncompleteSignatureException(ApcServiceException):
    """The Authorization header is malformed or lacks a component."""

    error_type = "IncompleteSignatureException"
    status = 400


class MissingAuthenticationTokenException(ApcServiceException):
    """The request is not signed at all."""

    error_type = "MissingAuthenticationTokenException"
    status = 403
