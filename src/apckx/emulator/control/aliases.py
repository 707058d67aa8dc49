"""CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases (spec 8)."""

from __future__ import annotations

from apckx.emulator.control.account import AccountState, locked
from apckx.emulator.control.common import paginate
from apckx.emulator.control.records import DELETE_COMPLETE
from apckx.emulator.exceptions import (
    ConflictException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
    ValidationException,
)


def _alias_target(account: AccountState, key_arn_value: str | None) -> str | None:
    if key_arn_value is None:
        return None
    key = account.key_by_arn(key_arn_value)
    if key.key_state == DELETE_COMPLETE:
        raise ValidationException(f"Key {key.arn} is deleted")
    return key.arn


def _require_alias(account: AccountState, alias_name: str) -> None:
    if alias_name not in account.aliases:
        raise ResourceNotFoundException(f"Alias {alias_name} does not exist", alias_name)


@locked
def create_alias(account: AccountState, alias_name: str, key_arn_value: str | None = None
                 ) -> tuple[str, str | None]:
    """CreateAlias: the key is optional (spec 8); a duplicate is a ConflictException."""
    if alias_name in account.aliases:
        raise ConflictException(f"Alias {alias_name} already exists; use UpdateAlias")
    if len(account.aliases) >= account.alias_quota:
        raise ServiceQuotaExceededException(
            f"The account already has {len(account.aliases)} aliases in {account.region}, the "
            f"quota is {account.alias_quota}"
        )
    account.set_alias(alias_name, _alias_target(account, key_arn_value))
    return alias_name, account.aliases[alias_name]


@locked
def get_alias(account: AccountState, alias_name: str) -> tuple[str, str | None]:
    _require_alias(account, alias_name)
    return alias_name, account.aliases[alias_name]


@locked
def update_alias(account: AccountState, alias_name: str, key_arn_value: str | None = None
                 ) -> tuple[str, str | None]:
    """UpdateAlias: point the alias at a key, or detach it when KeyArn is absent."""
    _require_alias(account, alias_name)
    account.set_alias(alias_name, _alias_target(account, key_arn_value))
    return alias_name, account.aliases[alias_name]


@locked
def delete_alias(account: AccountState, alias_name: str) -> None:
    _require_alias(account, alias_name)
    account.remove_alias(alias_name)


@locked
def list_aliases(account: AccountState, *, key_arn_value: str | None = None,
                 next_token: str | None = None, max_results: int | None = None
                 ) -> tuple[list[tuple[str, str | None]], str | None]:
    if key_arn_value is not None:
        account.key_by_arn(key_arn_value)
    items = [(name, (name, target)) for name, target in account.aliases.items()
             if key_arn_value is None or target == key_arn_value]
    return paginate("aliases", items, next_token, max_results)
