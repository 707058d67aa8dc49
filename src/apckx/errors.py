"""The package's error hierarchy.

Every error apckx raises on purpose derives from :class:`ApckxError`, so the CLI can
catch one type, print a one-line diagnosis and exit non-zero. Messages never carry key
material: they say what was wrong and what to do.
"""

from __future__ import annotations


class ApckxError(Exception):
    """Root of every error apckx raises on purpose."""

    exit_code = 1


class InputError(ApckxError, ValueError):
    """A caller's input is malformed: bad hex, wrong length, unknown name, bad file."""

    exit_code = 2


class KeyMaterialError(InputError):
    """Key material that is malformed or degenerate (wrong length, all zero, K1 == K2)."""


class KeyBlockError(InputError):
    """A TR-31 key block or header that is malformed or not allowed."""


class IntegrityError(ApckxError):
    """A key block failed its integrity check (wrong KBPK or tampered block).

    Deliberately says nothing more, like pyca/cryptography's ``InvalidTag``.
    """

    def __init__(self, message: str = "key block integrity check failed") -> None:
        super().__init__(message)


class CertificateError(ApckxError):
    """A certificate or chain that does not verify, is expired, or is on the wrong curve."""


class StrengthError(InputError):
    """A key would be protected by something weaker than itself (APC's strength rules)."""


class ConfigError(ApckxError):
    """Configuration is missing or inconsistent (credentials, region, endpoint, files)."""

    exit_code = 2


class ServiceError(ApckxError):
    """An APC call failed. Carries the AWS error code and the operation name."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation} failed: {code}: {message}")
        self.operation = operation
        self.code = code


class CeremonyError(ApckxError):
    """A ceremony stopped part way; the message says how to resume or clean up."""


class KcvMismatchError(CeremonyError):
    """A key check value did not match the expected one."""
