"""The APC emulator's state and behaviour: keys, aliases, tags and the account CA.

One :class:`PaymentCryptographyBackend` per (account, region), all sharing the registry's
re-entrant lock, so concurrent clients never lose writes. Every mutation is written through
to the :class:`~apckx.emulator.state.StateStore` before the call returns. The cryptography
is real and goes through :mod:`apckx.crypto`: keys are generated, unwrapped, derived, wrapped
and checked; nothing answers with canned success.

Section numbers refer to ``apc-control-plane.md`` (the APC behaviour spec). Inferred choices
are listed in ``docs/EMULATOR.md``. Messages never carry key material.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import hashlib
import json
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apckx import errors
from apckx.crypto import attributes, certs, ecdh, kcv, keys, tr31
from apckx.emulator.exceptions import (
    ConflictException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
    ValidationException,
)
from apckx.emulator.state import MemoryStore, Record, StateStore

ARN_PREFIX = "arn:aws:payment-cryptography"
KEY_ID_ALPHABET = string.ascii_lowercase + string.digits
KEY_ID_LENGTH = 16
DAY_SECONDS = 86400.0
DEFAULT_PAGE_SIZE = 50
MAX_TAGS_PER_KEY = 200

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

ECC_CURVES: dict[str, ec.EllipticCurve] = {
    "ECC_NIST_P256": ec.SECP256R1(),
    "ECC_NIST_P384": ec.SECP384R1(),
    "ECC_NIST_P521": ec.SECP521R1(),
}
# Security strength of public keys in bits (NIST SP 800-57 Part 1, Table 2).
_EC_STRENGTH = {256: 128, 384: 192, 521: 256}
_RSA_ALGORITHMS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
_TR31_WRAPPING_ALGORITHMS = ("TDES_2KEY", "TDES_3KEY", "AES_128", "AES_192", "AES_256")
_EXPORTABILITY_CODES = {"EXPORTABLE": "E", "SENSITIVE": "S", "NON_EXPORTABLE": "N"}
# TR-31 exportability, most permissive first: E may go anywhere, S only under a KEK, N nowhere.
_EXPORTABILITY_RANK = {"E": 2, "S": 1, "N": 0}
# Optional blocks dropped on import: KP (KCV of the wrapping key, UG keys-import) and the
# padding block, which the wrapper recomputes.
_DROPPED_OPTIONAL_BLOCKS = ("KP", "PB")

_ACCOUNT_CA_DAYS = 5 * 365
_ACCOUNT_CA_RENEW_DAYS = 90
_LEAF_DAYS = 90  # spec 5.5: "valid for 90 days", cached while >= 30 days remain
_LEAF_MIN_REMAINING_DAYS = 30
_BACKDATE_SECONDS = 60.0

P = ParamSpec("P")
T = TypeVar("T")


def key_arn(region: str, account_id: str, key_id: str) -> str:
    """``arn:aws:payment-cryptography:<region>:<account>:key/<id>``."""
    return f"{ARN_PREFIX}:{region}:{account_id}:key/{key_id}"


def all_modes(modes: Mapping[str, Any]) -> dict[str, bool]:
    """All nine KeyModesOfUse flags, false where unset."""
    return {flag: bool(modes.get(flag, False)) for flag in MODE_FLAGS}


def _true_modes(modes: Mapping[str, bool]) -> set[str]:
    return {flag for flag in MODE_FLAGS if modes.get(flag)}


def _is_symmetric(algorithm: str) -> bool:
    return algorithm in keys.KEY_ALGORITHMS


def _public_key_kcv(public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> str:
    """KCV of a public key: SHA-1 over the DER SubjectPublicKeyInfo, first 4 bytes (spec 6)."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha1(der, usedforsecurity=False).digest()[:4].hex().upper()


def _public_key_strength(public_key: object) -> tuple[str, int]:
    """(family, bits of security) of a certificate's public key."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ECC", _EC_STRENGTH.get(public_key.curve.key_size, 0)
    if isinstance(public_key, rsa.RSAPublicKey):
        # NIST SP 800-57: 2048 -> 112, 3072 -> 128; 4096 is rated between 128 and 192.
        size = public_key.key_size
        return "RSA", 112 if size < 3072 else 128 if size < 4096 else 152
    return "OTHER", 0


def _key_algorithm_of(public_key: object) -> str | None:
    """APC's KeyAlgorithm for a certificate's public key, or None if APC has no name."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        for name, curve in ECC_CURVES.items():
            if curve.name == public_key.curve.name:
                return name
        return None
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA_{public_key.key_size}" if public_key.key_size in (2048, 3072, 4096) else None
    return None


def _to_datetime(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)


def _kcv_hash(key_algorithm: str) -> str | None:
    return "SHA_" + key_algorithm.removeprefix("HMAC_SHA") if keys.is_hmac(key_algorithm) else None


@contextmanager
def refusals(context: str) -> Iterator[None]:
    """Turn apckx's own errors (bad input, strength, integrity, certificates) into
    ``ValidationException``; their messages never carry key material."""
    try:
        yield
    except errors.IntegrityError:
        raise ValidationException(
            f"{context}: the key block failed its integrity check (wrong wrapping key, "
            "derivation inputs that differ from the sender's, or a tampered block)"
        ) from None
    except errors.ApckxError as exc:
        raise ValidationException(f"{context}: {exc}") from None


# --- records ------------------------------------------------------------------------------


class _StoredRecord:
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
class KeyRecord(_StoredRecord):
    """One key as the emulator holds it; ``to_record``/``from_record`` for the store."""

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
    #: Symmetric key material (hex) and a key pair's private key (PKCS#8 PEM). Never printed.
    secret_hex: str | None = field(default=None, repr=False)
    private_key_pem: str | None = field(default=None, repr=False)

    @property
    def arn(self) -> str:
        return key_arn(self.region, self.account_id, self.key_id)

    def secret(self) -> bytes:
        if self.secret_hex is None:
            raise ValidationException(f"Key {self.arn} holds no symmetric key material")
        return bytes.fromhex(self.secret_hex)

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        if self.private_key_pem is None:
            raise ValidationException(f"Key {self.arn} holds no private key")
        key = serialization.load_pem_private_key(self.private_key_pem.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValidationException(f"Key {self.arn} is not an ECC key pair")
        return key


@dataclass
class AccountCa(_StoredRecord):
    """The account's ECC P-521 root for one region (spec 5.5)."""

    certificate_pem: str
    serial: int
    not_after: float
    private_key_pem: str = field(repr=False)


    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_pem.encode())

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.private_key_pem.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)  # noqa: S101 (we wrote it)
        return key


@dataclass(frozen=True)
class WrappedKeyResult:
    """ExportKey's answer: the block and the exported key's KCV."""

    wrapping_key_arn: str
    key_block: str
    key_check_value: str
    key_check_value_algorithm: str


@dataclass(frozen=True)
class EcdhParameters:
    """The DiffieHellmanTr31KeyBlock members shared by import and export (spec 7)."""

    private_key_identifier: str
    certificate_authority_identifier: str
    public_key_certificate: str
    derive_key_algorithm: str
    key_derivation_function: str
    key_derivation_hash_algorithm: str
    shared_information_hex: str


@dataclass(frozen=True)
class KeyBlockHeaderOverrides:
    """ExportKey's optional KeyBlockHeaders: each may only restrict the key further."""

    modes: Mapping[str, bool] | None = None
    exportability: str | None = None  # EXPORTABLE | SENSITIVE | NON_EXPORTABLE
    key_version: str | None = None
    optional_blocks: Mapping[str, str] | None = None


def _locked(method: Callable[Concatenate[PaymentCryptographyBackend, P], T]
            ) -> Callable[Concatenate[PaymentCryptographyBackend, P], T]:
    """Run a backend method under the registry lock, after advancing scheduled deletions."""

    def wrapper(self: PaymentCryptographyBackend, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with self._lock:
            self._complete_due_deletions()
            return method(self, *args, **kwargs)

    wrapper.__name__ = method.__name__
    wrapper.__qualname__ = method.__qualname__
    wrapper.__doc__ = method.__doc__
    return wrapper


# --- pagination -----------------------------------------------------------------------------


def _encode_token(kind: str, after: str) -> str:
    raw = json.dumps({"kind": kind, "after": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(kind: str, token: str) -> str:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        decoded = None
    if (not isinstance(decoded, dict) or decoded.get("kind") != kind
            or not isinstance(decoded.get("after"), str)):
        raise ValidationException("NextToken is not a token this operation issued")
    after: str = decoded["after"]
    return after


def paginate(kind: str, items: Sequence[tuple[str, T]], next_token: str | None,
             max_results: int | None) -> tuple[list[T], str | None]:
    """One page of ``items`` (sorted by ident) and an opaque token for the next, if any."""
    page_size = DEFAULT_PAGE_SIZE if max_results is None else max_results
    if page_size < 1:
        raise ValidationException("MaxResults must be at least 1")
    ordered = sorted(items, key=lambda item: item[0])
    if next_token is not None:
        after = _decode_token(kind, next_token)
        ordered = [item for item in ordered if item[0] > after]
    page = ordered[:page_size]
    token = _encode_token(kind, page[-1][0]) if len(ordered) > page_size else None
    return [value for _, value in page], token


# --- the backend ----------------------------------------------------------------------------


class PaymentCryptographyBackend:
    """APC control-plane behaviour for one account and region."""

    def __init__(self, account_id: str, region: str, *, store: StateStore,
                 lock: threading.RLock, clock: Callable[[], float], key_quota: int,
                 alias_quota: int) -> None:
        self.account_id = account_id
        self.region = region
        self._store = store
        self._lock = lock
        self._clock = clock
        self.key_quota = key_quota
        self.alias_quota = alias_quota
        self.keys: dict[str, KeyRecord] = {}
        self.aliases: dict[str, str | None] = {}
        self.account_ca: AccountCa | None = None

    # persistence ---------------------------------------------------------------------------

    def load_record(self, kind: str, ident: str, record: Record) -> None:
        """Restore one stored record (used by the registry at start-up)."""
        if kind == "key":
            key = KeyRecord.from_record(record)
            self.keys[key.key_id] = key
        elif kind == "alias":
            key_arn_value = record.get("KeyArn")
            self.aliases[ident] = key_arn_value if isinstance(key_arn_value, str) else None
        elif kind == "account_ca":
            self.account_ca = AccountCa.from_record(record)

    def _save_key(self, key: KeyRecord) -> None:
        self._store.put("key", self.account_id, self.region, key.key_id, key.to_record())

    def _save_alias(self, name: str) -> None:
        record: Record = {"AliasName": name, "KeyArn": self.aliases[name]}
        self._store.put("alias", self.account_id, self.region, name, record)

    # helpers -------------------------------------------------------------------------------

    def _now(self) -> float:
        return float(self._clock())

    def _complete_due_deletions(self) -> None:
        """DELETE_PENDING keys whose waiting period is over become DELETE_COMPLETE: the
        material is dropped and aliases pointing at them are unassigned (spec 3.3, 8)."""
        now = self._now()
        for key in self.keys.values():
            due = key.delete_pending_timestamp
            if key.key_state != DELETE_PENDING or due is None or now < due:
                continue
            key.key_state = DELETE_COMPLETE
            key.delete_timestamp = due
            key.delete_pending_timestamp = None
            key.secret_hex = None
            key.private_key_pem = None
            key.leaf_certificate_apc = None
            self._save_key(key)
            for name, target in self.aliases.items():
                if target == key.arn:
                    self.aliases[name] = None
                    self._save_alias(name)

    def _new_key_id(self) -> str:
        while True:
            key_id = "".join(secrets.choice(KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))
            if key_id not in self.keys:
                return key_id

    def _check_key_quota(self) -> None:
        live = sum(1 for key in self.keys.values() if key.key_state != DELETE_COMPLETE)
        if live >= self.key_quota:
            raise ServiceQuotaExceededException(
                f"The account already has {live} keys in {self.region}, the quota is "
                f"{self.key_quota}; delete keys you no longer need"
            )

    def _key_by_arn(self, arn: str) -> KeyRecord:
        prefix = f"{ARN_PREFIX}:{self.region}:{self.account_id}:key/"
        key = self.keys.get(arn[len(prefix):]) if arn.startswith(prefix) else None
        if key is None:
            raise ResourceNotFoundException(f"Key {arn} does not exist", arn)
        return key

    def resolve_key(self, identifier: str) -> KeyRecord:
        """A key by key ARN, alias ARN or ``alias/name`` (spec 2)."""
        if identifier.startswith("alias/"):
            alias_name = identifier
        elif identifier.startswith(f"{ARN_PREFIX}:{self.region}:{self.account_id}:alias/"):
            alias_name = identifier.split(":", 5)[5]
        elif ":alias/" in identifier:  # an alias ARN of another account or region
            raise ResourceNotFoundException(f"Alias {identifier} does not exist", identifier)
        else:
            return self._key_by_arn(identifier)
        if alias_name not in self.aliases:
            raise ResourceNotFoundException(f"Alias {alias_name} does not exist", identifier)
        target = self.aliases[alias_name]
        if target is None:
            raise ResourceNotFoundException(
                f"Alias {alias_name} is not associated with a key", identifier
            )
        return self._key_by_arn(target)

    def _kcv_algorithm(self, key_algorithm: str, requested: str | None) -> str:
        """The KCV algorithm for a key: the requested one if it fits (spec 6)."""
        if not _is_symmetric(key_algorithm):
            return "SHA_1"  # asymmetric keys: requested value tolerated and ignored (spec 5.3)
        if requested is None:
            return str(attributes.default_kcv_algorithm(key_algorithm))
        if requested == "ANSI_X9_24" and not keys.is_tdes(key_algorithm):
            raise ValidationException(
                f"KeyCheckValueAlgorithm ANSI_X9_24 is for TDES keys only, not {key_algorithm}"
            )
        if requested == "HMAC" and not keys.is_hmac(key_algorithm):
            raise ValidationException(
                f"KeyCheckValueAlgorithm HMAC is for HMAC keys only, not {key_algorithm}"
            )
        if requested == "CMAC" and keys.is_hmac(key_algorithm):
            raise ValidationException(
                f"KeyCheckValueAlgorithm CMAC does not apply to {key_algorithm}: use HMAC"
            )
        if requested == "SHA_1":
            raise ValidationException(
                f"KeyCheckValueAlgorithm SHA_1 is for asymmetric keys, not {key_algorithm}"
            )
        return requested

    def _symmetric_kcv(self, key: bytes, key_algorithm: str, kcv_algorithm: str) -> str:
        with refusals("cannot compute the key check value"):
            return kcv.compute_kcv(
                key, kcv_algorithm, hash_algorithm=_kcv_hash(key_algorithm),
                key_algorithm=key_algorithm,
            )

    def _check_tags(self, tags: Sequence[tuple[str, str]]) -> dict[str, str]:
        result: dict[str, str] = {}
        for tag_key, tag_value in tags:
            if tag_key.lower().startswith("aws:"):
                raise ValidationException(f"Tag keys starting with 'aws:' are reserved: {tag_key}")
            if tag_key in result:
                raise ValidationException(f"Tag key {tag_key} appears more than once")
            result[tag_key] = tag_value
        return result

    def _add_key(self, key: KeyRecord) -> KeyRecord:
        self.keys[key.key_id] = key
        self._save_key(key)
        return key

    @staticmethod
    def _require_usable(key: KeyRecord, role: str) -> None:
        """A key used in a cryptographic operation must exist, be complete and enabled."""
        if key.key_state != CREATE_COMPLETE:
            raise ValidationException(
                f"{role} {key.arn} is not in CREATE_COMPLETE state (it is {key.key_state})"
            )
        if not key.enabled:
            raise ValidationException(
                f"{role} {key.arn} is disabled; enable it with StartKeyUsage first"
            )

    # keys ----------------------------------------------------------------------------------

    @_locked
    def create_key(self, key_attributes: Mapping[str, Any], *, exportable: bool,
                   enabled: bool = True, key_check_value_algorithm: str | None = None,
                   derive_key_usage: str | None = None,
                   tags: Sequence[tuple[str, str]] = ()) -> KeyRecord:
        """CreateKey (spec 5.1): a random symmetric key or an ECC K3 key pair."""
        usage = key_attributes["KeyUsage"]
        key_class = key_attributes["KeyClass"]
        algorithm = key_attributes["KeyAlgorithm"]
        modes = all_modes(key_attributes["KeyModesOfUse"])
        tag_map = self._check_tags(tags)
        if derive_key_usage is not None and usage != K3:
            raise ValidationException(
                f"DeriveKeyUsage applies only to {K3} keys, not {usage}"
            )
        if key_class == "PUBLIC_KEY":
            raise ValidationException(
                "CreateKey cannot create a PUBLIC_KEY: import certificates with ImportKey"
            )
        if algorithm in _RSA_ALGORITHMS:
            raise ValidationException(
                f"{algorithm} key pairs are not supported by the apckx emulator "
                "(it creates ECC key pairs for ECDH only)"
            )
        if not _is_symmetric(algorithm) and usage != K3:
            raise ValidationException(
                f"The apckx emulator creates asymmetric keys only for {K3}, not {usage}"
            )
        with refusals("invalid KeyAttributes"):
            attributes.validate_key_attributes(
                {"KeyUsage": usage, "KeyClass": key_class, "KeyAlgorithm": algorithm,
                 "KeyModesOfUse": modes}
            )
        if usage == K3 and _true_modes(modes) != {"DeriveKey"}:
            raise ValidationException(f"{K3} keys allow only KeyModesOfUse {{DeriveKey: true}}")
        self._check_key_quota()
        now = self._now()
        kcv_algorithm = self._kcv_algorithm(algorithm, key_check_value_algorithm)
        secret_hex: str | None = None
        private_key_pem: str | None = None
        if _is_symmetric(algorithm):
            with refusals("cannot generate the key"):
                material = keys.generate_key(algorithm)
            kcv_value = self._symmetric_kcv(material, algorithm, kcv_algorithm)
            secret_hex = material.hex().upper()
        else:
            private_key = ec.generate_private_key(ECC_CURVES[algorithm])
            kcv_value = _public_key_kcv(private_key.public_key())
            private_key_pem = private_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
        key = KeyRecord(
            key_id=self._new_key_id(), account_id=self.account_id, region=self.region,
            key_usage=usage, key_class=key_class, key_algorithm=algorithm, modes=modes,
            key_check_value=kcv_value, key_check_value_algorithm=kcv_algorithm,
            enabled=enabled, exportable=exportable, key_origin="AWS_PAYMENT_CRYPTOGRAPHY",
            create_timestamp=now, usage_start_timestamp=now if enabled else None,
            derive_key_usage=derive_key_usage, exportability="E" if exportable else "N",
            tags=tag_map, secret_hex=secret_hex, private_key_pem=private_key_pem,
        )
        return self._add_key(key)

    @_locked
    def get_key(self, identifier: str) -> KeyRecord:
        return self.resolve_key(identifier)

    @_locked
    def list_keys(self, *, key_state: str | None = None, next_token: str | None = None,
                  max_results: int | None = None) -> tuple[list[KeyRecord], str | None]:
        """ListKeys: every key (or those in ``key_state``), a page at a time (spec 5.2)."""
        items = [(key.key_id, key) for key in self.keys.values()
                 if key_state is None or key.key_state == key_state]
        return paginate("keys", items, next_token, max_results)

    @_locked
    def delete_key(self, identifier: str, delete_key_in_days: int | None = None) -> KeyRecord:
        """DeleteKey: DELETE_PENDING, disabled, deleted after 3..180 days (spec 3.3)."""
        key = self.resolve_key(identifier)
        days = 7 if delete_key_in_days is None else delete_key_in_days
        if not 3 <= days <= 180:
            raise ValidationException("DeleteKeyInDays must be between 3 and 180")
        if key.key_state != CREATE_COMPLETE:
            raise ValidationException(f"Key {key.arn} is not in CREATE_COMPLETE state.")
        now = self._now()
        key.key_state = DELETE_PENDING
        key.enabled = False
        key.usage_stop_timestamp = now
        key.usage_start_timestamp = None
        key.delete_pending_timestamp = now + days * DAY_SECONDS
        self._save_key(key)
        return key

    @_locked
    def restore_key(self, identifier: str) -> KeyRecord:
        """RestoreKey: back to CREATE_COMPLETE, still disabled (spec 3.3)."""
        key = self.resolve_key(identifier)
        if key.key_state != DELETE_PENDING:
            raise ValidationException(
                f"Key {key.arn} is not in DELETE_PENDING state (it is {key.key_state})"
            )
        key.key_state = CREATE_COMPLETE
        key.delete_pending_timestamp = None
        self._save_key(key)
        return key

    def _set_usage(self, identifier: str, enabled: bool) -> KeyRecord:
        key = self.resolve_key(identifier)
        if key.key_state != CREATE_COMPLETE:
            raise ValidationException(
                f"Key {key.arn} is not in CREATE_COMPLETE state (it is {key.key_state})"
            )
        now = self._now()
        key.enabled = enabled
        if enabled:
            key.usage_start_timestamp, key.usage_stop_timestamp = now, None
        else:
            key.usage_start_timestamp, key.usage_stop_timestamp = None, now
        self._save_key(key)
        return key

    @_locked
    def start_key_usage(self, identifier: str) -> KeyRecord:
        return self._set_usage(identifier, True)

    @_locked
    def stop_key_usage(self, identifier: str) -> KeyRecord:
        return self._set_usage(identifier, False)

    # the account CA and GetPublicKeyCertificate -------------------------------------------

    def _current_account_ca(self) -> AccountCa:
        now = self._now()
        ca = self.account_ca
        if ca is not None and ca.not_after - now >= _ACCOUNT_CA_RENEW_DAYS * DAY_SECONDS:
            return ca
        ca_key = ec.generate_private_key(ec.SECP521R1())
        name = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "apckx emulator"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME,
                               "AWS Payment Cryptography (emulated)"),
            x509.NameAttribute(NameOID.COMMON_NAME, self.account_id),
        ])
        serial = x509.random_serial_number()
        not_after = now + _ACCOUNT_CA_DAYS * DAY_SECONDS
        public_key = ca_key.public_key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(public_key).serial_number(serial)
            .not_valid_before(_to_datetime(now - _BACKDATE_SECONDS))
            .not_valid_after(_to_datetime(not_after))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False)
            .sign(ca_key, hashes.SHA512())
        )
        ca = AccountCa(
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
            serial=serial, not_after=not_after,
            private_key_pem=ca_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()).decode(),
        )
        self.account_ca = ca
        self._store.put("account_ca", self.account_id, self.region, "ca", ca.to_record())
        return ca

    def _issue_leaf(self, key: KeyRecord, ca: AccountCa) -> None:
        now = self._now()
        public_key = key.private_key().public_key()
        ca_certificate = ca.certificate()
        not_after = now + _LEAF_DAYS * DAY_SECONDS
        subject = x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, self.account_id),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, str(secrets.randbelow(10**10)).zfill(10)),
        ])
        ca_ski = ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(ca_certificate.subject).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(_to_datetime(now - _BACKDATE_SECONDS))
            .not_valid_after(_to_datetime(not_after))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski.value),
                critical=False)
            .sign(ca.private_key(), hashes.SHA512())  # ecdsa-with-SHA512
        )
        key.leaf_certificate_apc = certs.certificate_to_apc(certificate)
        key.leaf_not_after = not_after
        key.leaf_ca_serial = ca.serial
        self._save_key(key)

    @_locked
    def get_public_key_certificate(self, identifier: str) -> tuple[str, str]:
        """(KeyCertificate, KeyCertificateChain), both base64 of PEM (spec 5.5)."""
        key = self.resolve_key(identifier)
        if key.key_state != CREATE_COMPLETE:
            raise ValidationException(
                f"Key {key.arn} is not in CREATE_COMPLETE state (it is {key.key_state})"
            )
        if key.key_class == "PUBLIC_KEY" and key.certificate_apc is not None:
            chain = key.certificate_apc
            if key.issuer_key_arn is not None:
                issuer = self.keys.get(key.issuer_key_arn.rsplit("/", 1)[-1])
                if issuer is not None and issuer.certificate_apc is not None:
                    chain = issuer.certificate_apc
            return key.certificate_apc, chain
        if key.key_class != "ASYMMETRIC_KEY_PAIR":
            raise ValidationException(
                f"Key {key.arn} is a {key.key_class}: only asymmetric keys have certificates"
            )
        ca = self._current_account_ca()
        now = self._now()
        if (key.leaf_certificate_apc is None or key.leaf_ca_serial != ca.serial
                or key.leaf_not_after is None
                or key.leaf_not_after - now < _LEAF_MIN_REMAINING_DAYS * DAY_SECONDS):
            self._issue_leaf(key, ca)
        assert key.leaf_certificate_apc is not None  # noqa: S101 (just issued)
        chain_apc = base64.b64encode(ca.certificate_pem.rstrip("\n").encode()).decode()
        return key.leaf_certificate_apc, chain_apc

    # imports of certificates ---------------------------------------------------------------

    def _load_certificate(self, certificate_apc: str, what: str) -> x509.Certificate:
        if certificate_apc.lstrip().startswith("-----BEGIN"):
            raise ValidationException(
                f"{what} must be the base64 encoding of the PEM text, not the PEM itself"
            )
        try:
            certificate: x509.Certificate = certs.certificate_from_apc(certificate_apc)
        except (errors.ApckxError, ValueError):
            raise ValidationException(
                f"{what} is not a base64-encoded PEM X.509 certificate"
            ) from None
        return certificate

    def _check_validity_window(self, certificate: x509.Certificate, what: str) -> None:
        now = _to_datetime(self._now())
        if now < certificate.not_valid_before_utc:
            raise ValidationException(f"{what} is not valid yet (notBefore is in the future)")
        if now > certificate.not_valid_after_utc:
            raise ValidationException(f"{what} has expired")

    def _check_public_key_attributes(self, key_attributes: Mapping[str, Any],
                                     certificate: x509.Certificate, what: str) -> dict[str, bool]:
        modes = all_modes(key_attributes["KeyModesOfUse"])
        if key_attributes["KeyClass"] != "PUBLIC_KEY":
            raise ValidationException(f"{what}: KeyClass must be PUBLIC_KEY")
        if key_attributes["KeyUsage"] != S0:
            raise ValidationException(f"{what}: KeyUsage must be {S0}")
        if _true_modes(modes) != {"Verify"}:
            raise ValidationException(f"{what}: KeyModesOfUse must be {{Verify: true}} only")
        actual = _key_algorithm_of(certificate.public_key())
        if actual is None:
            raise ValidationException(f"{what}: the certificate's public key is not RSA or "
                                      "ECC on a NIST P-256/P-384/P-521 curve")
        if key_attributes["KeyAlgorithm"] != actual:
            raise ValidationException(
                f"{what}: KeyAlgorithm {key_attributes['KeyAlgorithm']} does not match the "
                f"certificate's key ({actual})"
            )
        return modes

    def _verify_issued_by(self, certificate: x509.Certificate, issuer: x509.Certificate,
                          what: str) -> None:
        """Signature by ``issuer`` (and issuer name) plus the validity window, at the
        emulator's clock."""
        with refusals(what):
            certs.verify_certificate(certificate, issuer, now=_to_datetime(self._now()))

    @staticmethod
    def _check_ca_strength(ca_certificate: x509.Certificate, certificate: x509.Certificate,
                           what: str) -> None:
        ca_family, ca_bits = _public_key_strength(ca_certificate.public_key())
        family, bits = _public_key_strength(certificate.public_key())
        if ca_family != family:
            raise ValidationException(
                f"{what}: an {family} certificate must be issued by an {family} certificate "
                f"authority of equal or greater strength (the CA is {ca_family})"
            )
        if ca_bits < bits:
            raise ValidationException(
                f"{what}: the certificate authority ({ca_bits}-bit strength) is weaker than "
                f"the certificate it signs ({bits}-bit)"
            )

    def _certificate_authority(self, identifier: str, role: str) -> tuple[KeyRecord,
                                                                           x509.Certificate]:
        """The imported, enabled S0 root or trusted certificate named by ``identifier``."""
        ca = self.resolve_key(identifier)
        self._require_usable(ca, role)
        if (ca.key_class != "PUBLIC_KEY" or ca.key_usage != S0 or not ca.modes.get("Verify")
                or ca.public_key_role not in ("ROOT", "TRUSTED") or ca.certificate_apc is None):
            raise ValidationException(
                f"{role} {ca.arn} is not an imported root or trusted certificate "
                f"(PUBLIC_KEY, {S0}, Verify)"
            )
        return ca, self._load_certificate(ca.certificate_apc, role)

    def _new_public_key(self, certificate_apc: str, certificate: x509.Certificate,
                        key_attributes: Mapping[str, Any], modes: dict[str, bool], role: str,
                        issuer_arn: str | None, enabled: bool,
                        tags: Sequence[tuple[str, str]]) -> KeyRecord:
        tag_map = self._check_tags(tags)
        self._check_key_quota()
        now = self._now()
        key = KeyRecord(
            key_id=self._new_key_id(), account_id=self.account_id, region=self.region,
            key_usage=S0, key_class="PUBLIC_KEY", key_algorithm=key_attributes["KeyAlgorithm"],
            modes=modes, key_check_value=_public_key_kcv(certificate.public_key()),  # type: ignore[arg-type]
            key_check_value_algorithm="SHA_1", enabled=enabled, exportable=False,
            key_origin="EXTERNAL", create_timestamp=now,
            usage_start_timestamp=now if enabled else None, exportability="N",
            public_key_role=role, certificate_apc=certificate_apc, issuer_key_arn=issuer_arn,
            tags=tag_map,
        )
        return self._add_key(key)

    @_locked
    def import_root_certificate(self, key_attributes: Mapping[str, Any], certificate_apc: str,
                                *, enabled: bool = True,
                                tags: Sequence[tuple[str, str]] = ()) -> KeyRecord:
        """ImportKey RootCertificatePublicKey (spec 5.3): an S0/Verify public key."""
        what = "RootCertificatePublicKey"
        certificate = self._load_certificate(certificate_apc, f"{what}.PublicKeyCertificate")
        modes = self._check_public_key_attributes(key_attributes, certificate, what)
        self._check_validity_window(certificate, f"{what}.PublicKeyCertificate")
        if certificate.issuer == certificate.subject:
            self._verify_issued_by(certificate, certificate, f"{what}.PublicKeyCertificate")
        return self._new_public_key(certificate_apc, certificate, key_attributes, modes, "ROOT",
                                    None, enabled, tags)

    @_locked
    def import_trusted_certificate(self, key_attributes: Mapping[str, Any],
                                   certificate_apc: str, ca_identifier: str, *,
                                   enabled: bool = True,
                                   tags: Sequence[tuple[str, str]] = ()) -> KeyRecord:
        """ImportKey TrustedCertificatePublicKey: a certificate signed by an imported CA."""
        what = "TrustedCertificatePublicKey"
        ca, ca_certificate = self._certificate_authority(
            ca_identifier, "CertificateAuthorityPublicKeyIdentifier")
        certificate = self._load_certificate(certificate_apc, f"{what}.PublicKeyCertificate")
        modes = self._check_public_key_attributes(key_attributes, certificate, what)
        self._check_validity_window(certificate, f"{what}.PublicKeyCertificate")
        self._check_ca_strength(ca_certificate, certificate, what)
        self._verify_issued_by(certificate, ca_certificate, f"{what}.PublicKeyCertificate")
        return self._new_public_key(certificate_apc, certificate, key_attributes, modes,
                                    "TRUSTED", ca.arn, enabled, tags)

    # TR-31 --------------------------------------------------------------------------------

    def _wrapping_key(self, identifier: str, *, for_export: bool) -> KeyRecord:
        """A K0/K1 KBPK that may unwrap (import) or wrap (export) (spec 5.3, 5.4)."""
        role = "WrappingKeyIdentifier"
        kbpk = self.resolve_key(identifier)
        self._require_usable(kbpk, role)
        if kbpk.key_usage not in (K0, K1) or kbpk.key_algorithm not in _TR31_WRAPPING_ALGORITHMS:
            raise ValidationException(
                f"{role} {kbpk.arn} must be a {K0} or {K1} TDES or AES key "
                f"(it is {kbpk.key_usage} {kbpk.key_algorithm})"
            )
        needed = ("Wrap", "Encrypt") if for_export else ("Unwrap", "Decrypt")
        if not (kbpk.modes.get("NoRestrictions") or any(kbpk.modes.get(m) for m in needed)):
            raise ValidationException(
                f"{role} {kbpk.arn} does not allow {' or '.join(needed)} "
                f"(KeyModesOfUse), so it cannot {'export' if for_export else 'import'} keys"
            )
        return kbpk

    def _import_key_block(self, kbpk: bytes, kbpk_algorithm: str, key_block: str, *,
                          what: str, kcv_algorithm_requested: str | None, enabled: bool,
                          tags: Sequence[tuple[str, str]],
                          check_strength: Callable[[str], None]) -> KeyRecord:
        """Unwrap a TR-31 block (MAC verified) and store the key with the header's
        attributes (spec 5.3)."""
        with refusals(what):
            header, material = tr31.unwrap_key_block(kbpk, key_block,
                                                     kbpk_algorithm=kbpk_algorithm)
            key_attributes = dict(tr31.header_to_key_attributes(header, len(material)))
        algorithm = str(key_attributes["KeyAlgorithm"])
        header_modes = key_attributes["KeyModesOfUse"]
        modes = all_modes(header_modes if isinstance(header_modes, Mapping) else {})
        with refusals(f"{what}: the key block's header"):
            attributes.validate_key_attributes({**key_attributes, "KeyModesOfUse": modes})
            keys.check_key_material(material, algorithm, what="the wrapped key")
        check_strength(algorithm)
        tag_map = self._check_tags(tags)
        self._check_key_quota()
        kcv_algorithm = self._kcv_algorithm(algorithm, kcv_algorithm_requested)
        now = self._now()
        key = KeyRecord(
            key_id=self._new_key_id(), account_id=self.account_id, region=self.region,
            key_usage=str(key_attributes["KeyUsage"]),
            key_class=str(key_attributes["KeyClass"]), key_algorithm=algorithm, modes=modes,
            key_check_value=self._symmetric_kcv(material, algorithm, kcv_algorithm),
            key_check_value_algorithm=kcv_algorithm, enabled=enabled,
            exportable=bool(header.exportable), key_origin="EXTERNAL", create_timestamp=now,
            usage_start_timestamp=now if enabled else None,
            exportability=header.exportability, key_version=header.key_version,
            optional_blocks=[[block_id, value] for block_id, value
                             in tr31.retained_optional_blocks(header).items()
                             if block_id not in _DROPPED_OPTIONAL_BLOCKS],
            tags=tag_map, secret_hex=material.hex().upper(),
        )
        return self._add_key(key)

    @_locked
    def import_tr31_key_block(self, wrapping_key_identifier: str, key_block: str, *,
                              key_check_value_algorithm: str | None = None,
                              enabled: bool = True,
                              tags: Sequence[tuple[str, str]] = ()) -> KeyRecord:
        """ImportKey Tr31KeyBlock under a K0/K1 key (spec 5.3)."""
        kbpk = self._wrapping_key(wrapping_key_identifier, for_export=False)

        def check_strength(algorithm: str) -> None:
            with refusals("Tr31KeyBlock"):
                attributes.check_wrapping_strength(kbpk.key_algorithm, algorithm)

        return self._import_key_block(
            kbpk.secret(), kbpk.key_algorithm, key_block, what="Tr31KeyBlock",
            kcv_algorithm_requested=key_check_value_algorithm, enabled=enabled, tags=tags,
            check_strength=check_strength,
        )

    def _exportable_key(self, identifier: str) -> KeyRecord:
        key = self.resolve_key(identifier)
        self._require_usable(key, "ExportKeyIdentifier")
        if not key.exportable or key.exportability == "N":
            raise ValidationException(f"Key {key.arn} is not exportable")
        if not _is_symmetric(key.key_algorithm) or key.secret_hex is None:
            raise ValidationException(
                f"Key {key.arn} is a {key.key_class}: only symmetric keys can be exported "
                "in a TR-31 key block"
            )
        return key

    def _export_header(self, key: KeyRecord, kbpk_algorithm: str,
                       overrides: KeyBlockHeaderOverrides | None) -> str:
        """The TR-31 header for an export: the key's attributes, restricted by
        KeyBlockHeaders (spec 5.4: "more restrictive" only)."""
        modes = dict(key.modes)
        exportability = key.exportability
        key_version = key.key_version
        optional_blocks: list[tuple[str, str]] = []
        if overrides is not None:
            if overrides.modes is not None:
                requested = all_modes(overrides.modes)
                wanted = _true_modes(requested)
                if not wanted:
                    raise ValidationException("KeyBlockHeaders.KeyModesOfUse sets no mode")
                if not key.modes.get("NoRestrictions") and not wanted <= _true_modes(key.modes):
                    extra = ", ".join(sorted(wanted - _true_modes(key.modes)))
                    raise ValidationException(
                        "KeyBlockHeaders.KeyModesOfUse may only restrict the key's modes; "
                        f"the key does not allow {extra}"
                    )
                modes = requested
            if overrides.exportability is not None:
                code = _EXPORTABILITY_CODES[overrides.exportability]
                if _EXPORTABILITY_RANK[code] > _EXPORTABILITY_RANK[exportability]:
                    raise ValidationException(
                        f"KeyBlockHeaders.KeyExportability {overrides.exportability} is less "
                        "restrictive than the key's own exportability"
                    )
                exportability = code
            if overrides.key_version is not None:
                key_version = overrides.key_version
            if overrides.optional_blocks:
                optional_blocks = list(overrides.optional_blocks.items())
        with refusals("KeyBlockHeaders"):
            attributes.validate_key_attributes(
                {"KeyUsage": key.key_usage, "KeyClass": key.key_class,
                 "KeyAlgorithm": key.key_algorithm, "KeyModesOfUse": modes}
            )
            header: str = tr31.build_header(
                key_usage=key.key_usage, key_algorithm=key.key_algorithm,
                kbpk_algorithm=kbpk_algorithm, modes_of_use=modes,
                exportability=exportability, key_version=key_version,
                optional_blocks=optional_blocks or None,
            )
        return header

    def _wrap_for_export(self, key: KeyRecord, kbpk: bytes, kbpk_algorithm: str,
                         wrapping_key_arn: str, overrides: KeyBlockHeaderOverrides | None,
                         kcv_algorithm_requested: str | None) -> WrappedKeyResult:
        header = self._export_header(key, kbpk_algorithm, overrides)
        kcv_algorithm = (key.key_check_value_algorithm if kcv_algorithm_requested is None
                         else self._kcv_algorithm(key.key_algorithm, kcv_algorithm_requested))
        material = key.secret()
        with refusals("ExportKey"):
            key_block: str = tr31.wrap_key_block(kbpk, header, material,
                                                 kbpk_algorithm=kbpk_algorithm)
        return WrappedKeyResult(
            wrapping_key_arn=wrapping_key_arn, key_block=key_block,
            key_check_value=self._symmetric_kcv(material, key.key_algorithm, kcv_algorithm),
            key_check_value_algorithm=kcv_algorithm,
        )

    @_locked
    def export_tr31_key_block(self, export_key_identifier: str, wrapping_key_identifier: str,
                              *, key_block_headers: KeyBlockHeaderOverrides | None = None,
                              key_check_value_algorithm: str | None = None
                              ) -> WrappedKeyResult:
        """ExportKey Tr31KeyBlock under a K0/K1 key: version B (TDES) or D (AES)."""
        key = self._exportable_key(export_key_identifier)
        kbpk = self._wrapping_key(wrapping_key_identifier, for_export=True)
        with refusals("Tr31KeyBlock"):
            attributes.check_wrapping_strength(kbpk.key_algorithm, key.key_algorithm)
        return self._wrap_for_export(key, kbpk.secret(), kbpk.key_algorithm, kbpk.arn,
                                     key_block_headers, key_check_value_algorithm)

    # ECDH ---------------------------------------------------------------------------------

    def _derive_ecdh_kbpk(self, params: EcdhParameters) -> tuple[KeyRecord, bytes, str]:
        """Check the K3 key, the CA and the counterparty's certificate, then derive the
        one-time KBPK (spec 7.2-7.4). Returns (K3 key, KBPK, curve name "P256"...)."""
        k3 = self.resolve_key(params.private_key_identifier)
        self._require_usable(k3, "PrivateKeyIdentifier")
        if (k3.key_usage != K3 or k3.key_class != "ASYMMETRIC_KEY_PAIR"
                or k3.key_algorithm not in ECC_CURVES or not k3.modes.get("DeriveKey")):
            raise ValidationException(
                f"PrivateKeyIdentifier {k3.arn} must be a {K3} ECC key pair with DeriveKey"
            )
        if k3.derive_key_usage not in (None, K0, K1):
            raise ValidationException(
                f"PrivateKeyIdentifier {k3.arn} has DeriveKeyUsage {k3.derive_key_usage}: "
                f"TR-31 wrapping needs {K1} (or {K0})"
            )
        curve = str(ecdh.normalize_curve(k3.key_algorithm))
        _, ca_certificate = self._certificate_authority(
            params.certificate_authority_identifier, "CertificateAuthorityPublicKeyIdentifier")
        leaf = self._load_certificate(params.public_key_certificate, "PublicKeyCertificate")
        leaf_public_key = leaf.public_key()
        if not isinstance(leaf_public_key, ec.EllipticCurvePublicKey):
            raise ValidationException("PublicKeyCertificate must hold an ECC public key for ECDH")
        leaf_algorithm = _key_algorithm_of(leaf_public_key)
        if leaf_algorithm != k3.key_algorithm:
            raise ValidationException(
                f"PublicKeyCertificate is on {leaf_algorithm or 'an unsupported curve'}, but "
                f"the private key {k3.arn} is {k3.key_algorithm}: the curves must match"
            )
        self._check_ca_strength(ca_certificate, leaf, "PublicKeyCertificate")
        with refusals("PublicKeyCertificate"):
            certs.verify_certificate(
                leaf, ca_certificate, now=_to_datetime(self._now()), expected_curve=curve
            )
        if params.derive_key_algorithm not in _TR31_WRAPPING_ALGORITHMS:
            raise ValidationException(
                f"DeriveKeyAlgorithm {params.derive_key_algorithm} cannot protect a TR-31 key "
                f"block: use one of {', '.join(_TR31_WRAPPING_ALGORITHMS)}"
            )
        shared_info = bytes.fromhex(params.shared_information_hex)
        with refusals("cannot derive the wrapping key"):
            kbpk: bytes = ecdh.derive_kbpk(
                k3.private_key(), leaf_public_key, kdf=params.key_derivation_function,
                hash_algorithm=params.key_derivation_hash_algorithm,
                key_algorithm=params.derive_key_algorithm, shared_info=shared_info,
            )
        return k3, kbpk, curve

    @_locked
    def import_diffie_hellman_tr31_key_block(
            self, params: EcdhParameters, key_block: str, *,
            key_check_value_algorithm: str | None = None, enabled: bool = True,
            tags: Sequence[tuple[str, str]] = ()) -> KeyRecord:
        """ImportKey DiffieHellmanTr31KeyBlock (spec 7): derive, unwrap, check, store."""
        _, kbpk, curve = self._derive_ecdh_kbpk(params)

        def check_strength(algorithm: str) -> None:
            with refusals("DiffieHellmanTr31KeyBlock"):
                ecdh.check_ecdh_strength(curve, params.derive_key_algorithm, algorithm)

        return self._import_key_block(
            kbpk, params.derive_key_algorithm, key_block, what="DiffieHellmanTr31KeyBlock",
            kcv_algorithm_requested=key_check_value_algorithm, enabled=enabled, tags=tags,
            check_strength=check_strength,
        )

    @_locked
    def export_diffie_hellman_tr31_key_block(
            self, export_key_identifier: str, params: EcdhParameters, *,
            key_block_headers: KeyBlockHeaderOverrides | None = None,
            key_check_value_algorithm: str | None = None) -> WrappedKeyResult:
        """ExportKey DiffieHellmanTr31KeyBlock: version D under an AES-derived KBPK, B under
        TDES (spec 7.5); WrappingKeyArn is the K3 key's ARN."""
        key = self._exportable_key(export_key_identifier)
        k3, kbpk, curve = self._derive_ecdh_kbpk(params)
        with refusals("DiffieHellmanTr31KeyBlock"):
            ecdh.check_ecdh_strength(curve, params.derive_key_algorithm, key.key_algorithm)
        return self._wrap_for_export(key, kbpk, params.derive_key_algorithm, k3.arn,
                                     key_block_headers, key_check_value_algorithm)

    # aliases -------------------------------------------------------------------------------

    def _alias_target(self, key_arn_value: str | None) -> str | None:
        if key_arn_value is None:
            return None
        key = self._key_by_arn(key_arn_value)
        if key.key_state == DELETE_COMPLETE:
            raise ValidationException(f"Key {key.arn} is deleted")
        return key.arn

    def _require_alias(self, alias_name: str) -> None:
        if alias_name not in self.aliases:
            raise ResourceNotFoundException(f"Alias {alias_name} does not exist", alias_name)

    @_locked
    def create_alias(self, alias_name: str, key_arn_value: str | None = None
                     ) -> tuple[str, str | None]:
        """CreateAlias: the key is optional (spec 8); a duplicate is a ConflictException."""
        if alias_name in self.aliases:
            raise ConflictException(f"Alias {alias_name} already exists; use UpdateAlias")
        if len(self.aliases) >= self.alias_quota:
            raise ServiceQuotaExceededException(
                f"The account already has {len(self.aliases)} aliases in {self.region}, the "
                f"quota is {self.alias_quota}"
            )
        self.aliases[alias_name] = self._alias_target(key_arn_value)
        self._save_alias(alias_name)
        return alias_name, self.aliases[alias_name]

    @_locked
    def get_alias(self, alias_name: str) -> tuple[str, str | None]:
        self._require_alias(alias_name)
        return alias_name, self.aliases[alias_name]

    @_locked
    def update_alias(self, alias_name: str, key_arn_value: str | None = None
                     ) -> tuple[str, str | None]:
        """UpdateAlias: point the alias at a key, or detach it when KeyArn is absent."""
        self._require_alias(alias_name)
        self.aliases[alias_name] = self._alias_target(key_arn_value)
        self._save_alias(alias_name)
        return alias_name, self.aliases[alias_name]

    @_locked
    def delete_alias(self, alias_name: str) -> None:
        self._require_alias(alias_name)
        del self.aliases[alias_name]
        self._store.delete("alias", self.account_id, self.region, alias_name)

    @_locked
    def list_aliases(self, *, key_arn_value: str | None = None, next_token: str | None = None,
                     max_results: int | None = None
                     ) -> tuple[list[tuple[str, str | None]], str | None]:
        if key_arn_value is not None:
            self._key_by_arn(key_arn_value)
        items = [(name, (name, target)) for name, target in self.aliases.items()
                 if key_arn_value is None or target == key_arn_value]
        return paginate("aliases", items, next_token, max_results)

    # tags ----------------------------------------------------------------------------------

    @_locked
    def tag_resource(self, resource_arn: str, tags: Sequence[tuple[str, str]]) -> None:
        """TagResource: add tags or overwrite values; others stay (spec 5.6)."""
        key = self._key_by_arn(resource_arn)
        new_tags = self._check_tags(tags)
        merged = {**key.tags, **new_tags}
        if len(merged) > MAX_TAGS_PER_KEY:
            raise ServiceQuotaExceededException(
                f"Key {key.arn} would have {len(merged)} tags; at most {MAX_TAGS_PER_KEY}"
            )
        key.tags = merged
        self._save_key(key)

    @_locked
    def untag_resource(self, resource_arn: str, tag_keys: Sequence[str]) -> None:
        key = self._key_by_arn(resource_arn)
        removed = set(tag_keys)
        key.tags = {k: v for k, v in key.tags.items() if k not in removed}
        self._save_key(key)

    @_locked
    def list_tags_for_resource(self, resource_arn: str, *, next_token: str | None = None,
                               max_results: int | None = None
                               ) -> tuple[list[tuple[str, str]], str | None]:
        key = self._key_by_arn(resource_arn)
        items = [(tag_key, (tag_key, value)) for tag_key, value in key.tags.items()]
        return paginate("tags", items, next_token, max_results)


class BackendRegistry:
    """Every (account, region) backend, one lock for all, state loaded from the store."""

    def __init__(self, store: StateStore | None = None, *, key_quota: int = 2000,
                 alias_quota: int = 2000, clock: Callable[[], float] = time.time) -> None:
        self.store: StateStore = store if store is not None else MemoryStore()
        self.lock = threading.RLock()
        self.clock = clock
        self.key_quota = key_quota
        self.alias_quota = alias_quota
        self._backends: dict[tuple[str, str], PaymentCryptographyBackend] = {}
        with self.lock:
            for kind, account_id, region, ident, record in self.store.load():
                self.backend(account_id, region).load_record(kind, ident, record)

    def backend(self, account_id: str, region: str) -> PaymentCryptographyBackend:
        """The backend for one account and region, created on first use."""
        with self.lock:
            backend = self._backends.get((account_id, region))
            if backend is None:
                backend = PaymentCryptographyBackend(
                    account_id, region, store=self.store, lock=self.lock, clock=self.clock,
                    key_quota=self.key_quota, alias_quota=self.alias_quota,
                )
                self._backends[(account_id, region)] = backend
            return backend

    def backends(self) -> list[PaymentCryptographyBackend]:
        with self.lock:
            return list(self._backends.values())
