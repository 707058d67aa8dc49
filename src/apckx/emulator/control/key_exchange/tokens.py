"""GetParametersForImport and GetParametersForExport: import and export tokens.

An import token stands for a fresh RSA wrapping key pair (the TR-34 KRD, or the RSA-wrap
receiver) whose certificate chains to the account's RSA CA; an export token for a fresh RSA
signing key pair (the TR-34 KDH). Both are valid 30 days (the model's current text).

Inferred rules (docs/EMULATOR.md "TR-34"): a token serves one successful ImportKey/ExportKey
and is then spent; ``ReuseLastGeneratedToken`` returns the newest unspent token of the same
KeyMaterialType and algorithm if it has at least 7 days left, else a new one; an unknown,
spent, expired or other-account token, or one issued for another KeyMaterialType, is a
ValidationException. Tokens are ``import_token``/``export_token`` records in the store (the
SQLite store seals them, private key included).
"""

from __future__ import annotations

import dataclasses
import secrets
import string
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from apckx.crypto import certs
from apckx.emulator.control.account import AccountState, locked
from apckx.emulator.control.common import DAY_SECONDS, RSA_ALGORITHMS
from apckx.emulator.control.records import StoredRecord
from apckx.emulator.control.rsa_keys import (
    current_rsa_account_ca,
    issue_rsa_leaf,
    private_key_to_pem,
)
from apckx.emulator.exceptions import ValidationException

IMPORT_TOKEN_KIND = "import_token"  # noqa: S105 (a record kind, not a secret)
EXPORT_TOKEN_KIND = "export_token"  # noqa: S105 (a record kind, not a secret)
TOKEN_DAYS = 30
REUSE_MIN_DAYS = 7
_TOKEN_ALPHABET = string.ascii_lowercase + string.digits
_TOKEN_LENGTH = 16  # the documented examples: import-token-bwxli6ocftypneu5
_IMPORT_TYPES = ("TR34_KEY_BLOCK", "KEY_CRYPTOGRAM")
_NO_TOKEN_TYPES = ("TR31_KEY_BLOCK", "ROOT_PUBLIC_KEY_CERTIFICATE",
                   "TRUSTED_PUBLIC_KEY_CERTIFICATE")


@dataclass
class TokenRecord(StoredRecord):
    """An import or export token and the RSA key pair it stands for."""

    token: str
    kind: str  # IMPORT_TOKEN_KIND | EXPORT_TOKEN_KIND
    key_material_type: str
    algorithm: str
    certificate_apc: str
    chain_apc: str
    created: float
    not_after: float
    used: bool = False
    private_key_pem: str = field(default="", repr=False)

    def private_key(self) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(self.private_key_pem.encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)  # noqa: S101 (we wrote it)
        return key

    def certificate(self) -> x509.Certificate:
        return certs.certificate_from_apc(self.certificate_apc)


def _new_token(account: AccountState, kind: str, prefix: str, key_material_type: str,
               algorithm: str, *, key_encipherment: bool) -> TokenRecord:
    ca = current_rsa_account_ca(account)
    private_key = certs.generate_rsa_key(algorithm)
    now = account.now()
    certificate = issue_rsa_leaf(account, ca, private_key.public_key(), days=TOKEN_DAYS,
                                 key_encipherment=key_encipherment)
    taken = account.records.get(kind, {})
    while True:
        token = prefix + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(_TOKEN_LENGTH))
        if token not in taken:
            break
    record = TokenRecord(
        token=token, kind=kind, key_material_type=key_material_type, algorithm=algorithm,
        certificate_apc=certs.certificate_to_apc(certificate), chain_apc=ca.chain_apc(),
        created=now, not_after=min(now + TOKEN_DAYS * DAY_SECONDS, ca.not_after),
        private_key_pem=private_key_to_pem(private_key),
    )
    account.save_record(kind, token, record.to_record())
    return record


def _reusable(account: AccountState, kind: str, key_material_type: str,
              algorithm: str) -> TokenRecord | None:
    now = account.now()
    candidates = [TokenRecord.from_record(r) for r in account.records.get(kind, {}).values()]
    fitting = [t for t in candidates
               if t.key_material_type == key_material_type and t.algorithm == algorithm]
    if not fitting:
        return None
    newest = max(fitting, key=lambda t: t.created)
    if newest.used or newest.not_after - now < REUSE_MIN_DAYS * DAY_SECONDS:
        return None
    return newest


def _check_rsa_algorithm(algorithm: str, member: str) -> None:
    if algorithm not in RSA_ALGORITHMS:
        raise ValidationException(
            f"{member} {algorithm} is not valid: use RSA_2048, RSA_3072 or RSA_4096"
        )


def _reuse_or_new_token(account: AccountState, kind: str, prefix: str, key_material_type: str,
                        algorithm: str, *, reuse: bool, key_encipherment: bool) -> TokenRecord:
    """With ``reuse``, the last usable token of this kind, type and algorithm if any; else
    a new key pair and its token."""
    if reuse:
        reused = _reusable(account, kind, key_material_type, algorithm)
        if reused is not None:
            return reused
    return _new_token(account, kind, prefix, key_material_type, algorithm,
                      key_encipherment=key_encipherment)


@locked
def get_parameters_for_import(account: AccountState, key_material_type: str,
                              wrapping_key_algorithm: str,
                              reuse_last_generated_token: bool = False) -> TokenRecord:
    """A wrapping key pair for TR34_KEY_BLOCK or KEY_CRYPTOGRAM imports, and its token."""
    if key_material_type in _NO_TOKEN_TYPES:
        raise ValidationException(
            f"KeyMaterialType {key_material_type} needs no import parameters: call ImportKey "
            "directly (import tokens are for TR34_KEY_BLOCK and KEY_CRYPTOGRAM)"
        )
    if key_material_type not in _IMPORT_TYPES:
        raise ValidationException(
            f"KeyMaterialType {key_material_type} is not valid for GetParametersForImport"
        )
    _check_rsa_algorithm(wrapping_key_algorithm, "WrappingKeyAlgorithm")
    return _reuse_or_new_token(account, IMPORT_TOKEN_KIND, "import-token-", key_material_type,
                               wrapping_key_algorithm, reuse=reuse_last_generated_token,
                               key_encipherment=True)


@locked
def get_parameters_for_export(account: AccountState, key_material_type: str,
                              signing_key_algorithm: str,
                              reuse_last_generated_token: bool = False) -> TokenRecord:
    """A KDH signing key pair for TR34_KEY_BLOCK exports, and its token."""
    if key_material_type != "TR34_KEY_BLOCK":
        raise ValidationException(
            f"KeyMaterialType {key_material_type} is not valid for GetParametersForExport: "
            "export tokens are for TR34_KEY_BLOCK (KEY_CRYPTOGRAM and TR-31 exports need none)"
        )
    _check_rsa_algorithm(signing_key_algorithm, "SigningKeyAlgorithm")
    return _reuse_or_new_token(account, EXPORT_TOKEN_KIND, "export-token-", key_material_type,
                               signing_key_algorithm, reuse=reuse_last_generated_token,
                               key_encipherment=False)


def redeem_token(account: AccountState, token: str, *, kind: str, key_material_type: str,
                 role: str) -> TokenRecord:
    """The live token ``token`` of this account and region, issued for
    ``key_material_type``; ValidationException if unknown, spent, expired or for another
    type. Call :func:`spend_token` once the operation has succeeded."""
    stored = account.records.get(kind, {}).get(token)
    if stored is None:
        raise ValidationException(
            f"{role} {token} is not a token of this account and region: call "
            f"GetParameters{'ForImport' if kind == IMPORT_TOKEN_KIND else 'ForExport'} first"
        )
    record = TokenRecord.from_record(stored)
    if record.key_material_type != key_material_type:
        raise ValidationException(
            f"{role} {token} was issued for {record.key_material_type}, not "
            f"{key_material_type}"
        )
    if record.used:
        raise ValidationException(
            f"{role} {token} has already been used: get a new one with GetParameters"
            f"{'ForImport' if kind == IMPORT_TOKEN_KIND else 'ForExport'}"
        )
    if account.now() > record.not_after:
        raise ValidationException(
            f"{role} {token} has expired (tokens are valid {TOKEN_DAYS} days): get a new one"
        )
    return record


def spend_token(account: AccountState, record: TokenRecord) -> None:
    """Mark a token used (it served one successful import or export)."""
    spent = dataclasses.replace(record, used=True)  # the store first, then memory
    account.save_record(spent.kind, spent.token, spent.to_record())
