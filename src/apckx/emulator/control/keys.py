"""Key lifecycle (CreateKey, GetKey, ListKeys, DeleteKey, RestoreKey, Start/StopKeyUsage),
key check values and the key quota (spec 3, 5.1, 5.2, 6).

A module that creates keys (an import, a new key type) uses :func:`check_key_quota`,
:func:`kcv_algorithm_for` and :func:`compute_symmetric_kcv`, then
:meth:`AccountState.add_key <apckx.emulator.control.account.AccountState.add_key>`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from apckx.crypto import attributes, kcv
from apckx.crypto import keys as crypto_keys
from apckx.emulator.control.account import AccountState, locked
from apckx.emulator.control.common import (
    DAY_SECONDS,
    ECC_CURVES,
    RSA_ALGORITHMS,
    paginate,
    public_key_kcv,
    refusals,
)
from apckx.emulator.control.records import (
    CREATE_COMPLETE,
    DELETE_COMPLETE,
    DELETE_PENDING,
    K3,
    KeyRecord,
    all_modes,
    is_symmetric,
    true_modes,
)
from apckx.emulator.control.tags import check_tags
from apckx.emulator.exceptions import ServiceQuotaExceededException, ValidationException

# --- quotas and KCVs ----------------------------------------------------------------------


def check_key_quota(account: AccountState) -> None:
    """ServiceQuotaExceededException when the account has no room for another key."""
    live = sum(1 for key in account.keys.values() if key.key_state != DELETE_COMPLETE)
    if live >= account.key_quota:
        raise ServiceQuotaExceededException(
            f"The account already has {live} keys in {account.region}, the quota is "
            f"{account.key_quota}; delete keys you no longer need"
        )


def _kcv_hash(key_algorithm: str) -> str | None:
    return ("SHA_" + key_algorithm.removeprefix("HMAC_SHA")
            if crypto_keys.is_hmac(key_algorithm) else None)


def kcv_algorithm_for(key_algorithm: str, requested: str | None) -> str:
    """The KCV algorithm for a key: the requested one if it fits (spec 6)."""
    if not is_symmetric(key_algorithm):
        return "SHA_1"  # asymmetric keys: requested value tolerated and ignored (spec 5.3)
    if requested is None:
        return str(attributes.default_kcv_algorithm(key_algorithm))
    if requested == "ANSI_X9_24" and not crypto_keys.is_tdes(key_algorithm):
        raise ValidationException(
            f"KeyCheckValueAlgorithm ANSI_X9_24 is for TDES keys only, not {key_algorithm}"
        )
    if requested == "HMAC" and not crypto_keys.is_hmac(key_algorithm):
        raise ValidationException(
            f"KeyCheckValueAlgorithm HMAC is for HMAC keys only, not {key_algorithm}"
        )
    if requested == "CMAC" and crypto_keys.is_hmac(key_algorithm):
        raise ValidationException(
            f"KeyCheckValueAlgorithm CMAC does not apply to {key_algorithm}: use HMAC"
        )
    if requested == "SHA_1":
        raise ValidationException(
            f"KeyCheckValueAlgorithm SHA_1 is for asymmetric keys, not {key_algorithm}"
        )
    return requested


def compute_symmetric_kcv(key: bytes, key_algorithm: str, kcv_algorithm: str) -> str:
    """The KCV of symmetric key material with ``kcv_algorithm`` (upper-case hex)."""
    with refusals("cannot compute the key check value"):
        return kcv.compute_kcv(
            key, kcv_algorithm, hash_algorithm=_kcv_hash(key_algorithm),
            key_algorithm=key_algorithm,
        )


# --- lifecycle ----------------------------------------------------------------------------


@locked
def create_key(account: AccountState, key_attributes: Mapping[str, Any], *, exportable: bool,
               enabled: bool = True, key_check_value_algorithm: str | None = None,
               derive_key_usage: str | None = None,
               tags: Sequence[tuple[str, str]] = ()) -> KeyRecord:
    """CreateKey (spec 5.1): a random symmetric key or an ECC K3 key pair."""
    usage = key_attributes["KeyUsage"]
    key_class = key_attributes["KeyClass"]
    algorithm = key_attributes["KeyAlgorithm"]
    modes = all_modes(key_attributes["KeyModesOfUse"])
    tag_map = check_tags(tags)
    if derive_key_usage is not None and usage != K3:
        raise ValidationException(
            f"DeriveKeyUsage applies only to {K3} keys, not {usage}"
        )
    if key_class == "PUBLIC_KEY":
        raise ValidationException(
            "CreateKey cannot create a PUBLIC_KEY: import certificates with ImportKey"
        )
    if algorithm in RSA_ALGORITHMS:
        from apckx.emulator.control import rsa_keys  # it imports this module

        return rsa_keys.create_rsa_key_pair(
            account, usage=usage, key_class=key_class, algorithm=algorithm, modes=modes,
            exportable=exportable, enabled=enabled, tags=tags,
        )
    if not is_symmetric(algorithm) and usage != K3:
        raise ValidationException(
            f"The apckx emulator creates asymmetric keys only for {K3}, not {usage}"
        )
    with refusals("invalid KeyAttributes"):
        attributes.validate_key_attributes(
            {"KeyUsage": usage, "KeyClass": key_class, "KeyAlgorithm": algorithm,
             "KeyModesOfUse": modes}
        )
    if usage == K3 and true_modes(modes) != {"DeriveKey"}:
        raise ValidationException(f"{K3} keys allow only KeyModesOfUse {{DeriveKey: true}}")
    check_key_quota(account)
    now = account.now()
    kcv_algorithm = kcv_algorithm_for(algorithm, key_check_value_algorithm)
    secret_hex: str | None = None
    private_key_pem: str | None = None
    if is_symmetric(algorithm):
        with refusals("cannot generate the key"):
            material = crypto_keys.generate_key(algorithm)
        kcv_value = compute_symmetric_kcv(material, algorithm, kcv_algorithm)
        secret_hex = material.hex().upper()
    else:
        private_key = ec.generate_private_key(ECC_CURVES[algorithm])
        kcv_value = public_key_kcv(private_key.public_key())
        private_key_pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    key = KeyRecord(
        key_id=account.new_key_id(), account_id=account.account_id, region=account.region,
        key_usage=usage, key_class=key_class, key_algorithm=algorithm, modes=modes,
        key_check_value=kcv_value, key_check_value_algorithm=kcv_algorithm,
        enabled=enabled, exportable=exportable, key_origin="AWS_PAYMENT_CRYPTOGRAPHY",
        create_timestamp=now, usage_start_timestamp=now if enabled else None,
        derive_key_usage=derive_key_usage, exportability="E" if exportable else "N",
        tags=tag_map, secret_hex=secret_hex, private_key_pem=private_key_pem,
    )
    return account.add_key(key)


@locked
def get_key(account: AccountState, identifier: str) -> KeyRecord:
    return account.resolve_key(identifier)


@locked
def list_keys(account: AccountState, *, key_state: str | None = None,
              next_token: str | None = None, max_results: int | None = None
              ) -> tuple[list[KeyRecord], str | None]:
    """ListKeys: every key (or those in ``key_state``), a page at a time (spec 5.2)."""
    items = [(key.key_id, key) for key in account.keys.values()
             if key_state is None or key.key_state == key_state]
    return paginate("keys", items, next_token, max_results)


@locked
def delete_key(account: AccountState, identifier: str,
               delete_key_in_days: int | None = None) -> KeyRecord:
    """DeleteKey: DELETE_PENDING, disabled, deleted after 3..180 days (spec 3.3)."""
    key = account.resolve_key(identifier)
    days = 7 if delete_key_in_days is None else delete_key_in_days
    if not 3 <= days <= 180:
        raise ValidationException("DeleteKeyInDays must be between 3 and 180")
    if key.key_state != CREATE_COMPLETE:
        raise ValidationException(f"Key {key.arn} is not in CREATE_COMPLETE state.")
    now = account.now()
    return account.update_key(
        key, key_state=DELETE_PENDING, enabled=False, usage_stop_timestamp=now,
        usage_start_timestamp=None, delete_pending_timestamp=now + days * DAY_SECONDS,
    )


@locked
def restore_key(account: AccountState, identifier: str) -> KeyRecord:
    """RestoreKey: back to CREATE_COMPLETE, still disabled (spec 3.3)."""
    key = account.resolve_key(identifier)
    if key.key_state != DELETE_PENDING:
        raise ValidationException(
            f"Key {key.arn} is not in DELETE_PENDING state (it is {key.key_state})"
        )
    return account.update_key(key, key_state=CREATE_COMPLETE, delete_pending_timestamp=None)


def _set_usage(account: AccountState, identifier: str, enabled: bool) -> KeyRecord:
    key = account.resolve_key(identifier)
    if key.key_state != CREATE_COMPLETE:
        raise ValidationException(
            f"Key {key.arn} is not in CREATE_COMPLETE state (it is {key.key_state})"
        )
    now = account.now()
    return account.update_key(
        key, enabled=enabled, usage_start_timestamp=now if enabled else None,
        usage_stop_timestamp=None if enabled else now,
    )


@locked
def start_key_usage(account: AccountState, identifier: str) -> KeyRecord:
    return _set_usage(account, identifier, True)


@locked
def stop_key_usage(account: AccountState, identifier: str) -> KeyRecord:
    return _set_usage(account, identifier, False)
