"""What the emulator stores: the key record, the account CA, and the names they use.

A record is a dataclass kept in the :class:`~apckx.emulator.state.StateStore` as a JSON-able
dict (``to_record``/``from_record``). Nothing here touches the store or the lock: that is
:mod:`apckx.emulator.control.account`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from apckx.crypto import keys as crypto_keys
from apckx.emulator.exceptions import ValidationException
from apckx.emulator.state import Record

ARN_PREFIX = "arn:aws:payment-cryptography"

#: The nine KeyModesOfUse flags, in the model's order; responses always carry all nine.
MODE_FLAGS = (
    "Encrypt", "Decrypt", "Wrap", "Unwrap", "Generate", "Sign", "Verify", "DeriveKey",
    "NoRestrictions",
)

K0 = "TR31_K0_KEY_ENCRYPTION_KEY"
K1 = "TR31_K1_KEY_BLOCK_PROTECTION_KEY"
K3 = "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT"
S0 = "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE"

CREATE_COMPLETE = "CREATE_COMPLETE"
DELETE_PENDING = "DELETE_PENDING"
DELETE_COMPLETE = "DELETE_COMPLETE"


def key_arn(region: str, account_id: str, key_id: str) -> str:
    """``arn:aws:payment-cryptography:<region>:<account>:key/<id>``."""
    return f"{ARN_PREFIX}:{region}:{account_id}:key/{key_id}"


def all_modes(modes: Mapping[str, Any]) -> dict[str, bool]:
    """All nine KeyModesOfUse flags, false where unset."""
    return {flag: bool(modes.get(flag, False)) for flag in MODE_FLAGS}


def true_modes(modes: Mapping[str, bool]) -> set[str]:
    """The KeyModesOfUse flags that are set."""
    return {flag for flag in MODE_FLAGS if modes.get(flag)}


def is_symmetric(algorithm: str) -> bool:
    """True for a symmetric KeyAlgorithm (TDES, AES, HMAC)."""
    return algorithm in crypto_keys.KEY_ALGORITHMS


class StoredRecord:
    """A dataclass kept in the state store as a JSON-able dict.

    ``from_record`` ignores fields it does not know, so a state file written by a newer
    emulator still opens.
    """

    def to_record(self) -> Record:
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{name: value for name, value in record.items() if name in names})


@dataclass
class KeyRecord(StoredRecord):
    """One key as the emulator holds it; ``to_record``/``from_record`` for the store.

    A module that adds a kind of key adds its fields here with a default (old state files
    keep opening) and never prints ``secret_hex`` or ``private_key_pem``.
    """

    key_id: str
    account_id: str
    region: str
    key_usage: str
    key_class: str
    key_algorithm: str
    modes: dict[str, bool]
    key_check_value: str
    key_check_value_algorithm: str
    enabled: bool
    exportable: bool
    key_origin: str
    create_timestamp: float
    key_state: str = CREATE_COMPLETE
    usage_start_timestamp: float | None = None
    usage_stop_timestamp: float | None = None
    delete_pending_timestamp: float | None = None
    delete_timestamp: float | None = None
    derive_key_usage: str | None = None
    #: TR-31 exportability code used when exporting: "E", "S" (imported as S) or "N".
    exportability: str = "E"
    key_version: str = "00"
    optional_blocks: list[list[str]] = field(default_factory=list)
    #: "ROOT" or "TRUSTED" for imported certificates.
    public_key_role: str | None = None
    #: Imported certificate (base64 of PEM), and its issuer's ARN for trusted certificates.
    certificate_apc: str | None = None
    issuer_key_arn: str | None = None
    #: GetPublicKeyCertificate's cached leaf for a key pair, its expiry and the CA serial.
    leaf_certificate_apc: str | None = None
    leaf_not_after: float | None = None
    leaf_ca_serial: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    #: The resource-based policy, verbatim as PutResourcePolicy took it.
    resource_policy: str | None = None
    #: Symmetric key material (hex) and a key pair's private key (PKCS#8 PEM). Never printed.
    secret_hex: str | None = field(default=None, repr=False)
    private_key_pem: str | None = field(default=None, repr=False)

    @property
    def arn(self) -> str:
        return key_arn(self.region, self.account_id, self.key_id)

    def secret(self) -> bytes:
        """The symmetric key material (ValidationException for a key without any)."""
        if self.secret_hex is None:
            raise ValidationException(f"Key {self.arn} holds no symmetric key material")
        return bytes.fromhex(self.secret_hex)

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        """The ECC private key of a key pair (ValidationException otherwise)."""
        if self.private_key_pem is None:
            raise ValidationException(f"Key {self.arn} holds no private key")
        key = serialization.load_pem_private_key(self.private_key_pem.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValidationException(f"Key {self.arn} is not an ECC key pair")
        return key


@dataclass
class StoredCa(StoredRecord):
    """An account root the emulator made for one region: its certificate and private key."""

    certificate_pem: str
    serial: int
    not_after: float
    private_key_pem: str = field(repr=False)

    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_pem.encode())

    def _load_private_key(self) -> PrivateKeyTypes:
        return serialization.load_pem_private_key(self.private_key_pem.encode(), password=None)


@dataclass
class AccountCa(StoredCa):
    """The account's ECC P-521 root for one region (spec 5.5)."""

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        key = self._load_private_key()
        assert isinstance(key, ec.EllipticCurvePrivateKey)  # noqa: S101 (we wrote it)
        return key
