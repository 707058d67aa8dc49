"""PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy: one resource-based policy per
key, kept in the key record.

What APC documents (user guide, "Resource-based policies"): at most one policy per key, a
``Put`` replaces it; a policy that would grant public access fails with
``PublicPolicyException``; the ``Resource`` element is the key's ARN or ``"*"``; the policy
operations cannot be used across accounts. The emulator checks the document as IAM would
parse it and stores it verbatim; it does not evaluate policies on later calls (it has one
caller per account). The inferred choices are in docs/EMULATOR.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from apckx.emulator.control.account import AccountState, locked
from apckx.emulator.control.records import DELETE_COMPLETE, KeyRecord
from apckx.emulator.exceptions import (
    PublicPolicyException,
    ResourceNotFoundException,
    ValidationException,
)

#: Condition keys that, compared with fixed values, confine a wildcard principal to known
#: accounts or organisations: the keys AWS's public-access analysis accepts (inferred).
CONFINING_CONDITION_KEYS = frozenset({
    "aws:principalaccount", "aws:principalarn", "aws:principalorgid", "aws:principalorgpaths",
    "aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid", "aws:sourceorgpaths",
    "aws:userid", "aws:sourcevpc", "aws:sourcevpce",
})
#: Condition operators that compare with fixed values (a wildcard value confines nothing;
#: ``ForAllValues:`` is true of a request without the key, so it confines nothing either).
FIXED_VALUE_OPERATORS = frozenset({"stringequals", "stringequalsignorecase", "arnequals"})
EFFECTS = ("Allow", "Deny")
DOCUMENT_ELEMENTS = frozenset({"Version", "Id", "Statement"})
STATEMENT_ELEMENTS = frozenset({"Sid", "Effect", "Principal", "NotPrincipal", "Action",
                                "NotAction", "Resource", "NotResource", "Condition"})
ACTION_PREFIX = "payment-cryptography:"


@locked
def put_resource_policy(account: AccountState, resource_arn: str, policy: str) -> str:
    """PutResourcePolicy: check ``policy`` and attach it, replacing any earlier one."""
    key = account.key_by_arn(resource_arn)
    if key.key_state == DELETE_COMPLETE:
        raise ValidationException(f"Key {key.arn} is deleted")
    check_policy(policy, key)
    account.update_key(key, resource_policy=policy)
    return policy


@locked
def get_resource_policy(account: AccountState, resource_arn: str) -> str:
    """GetResourcePolicy: the policy as it was put (ResourceNotFoundException without one)."""
    return _attached(account.key_by_arn(resource_arn))


@locked
def delete_resource_policy(account: AccountState, resource_arn: str) -> None:
    """DeleteResourcePolicy (ResourceNotFoundException when the key has none)."""
    key = account.key_by_arn(resource_arn)
    _attached(key)
    account.update_key(key, resource_policy=None)


def _attached(key: KeyRecord) -> str:
    if key.resource_policy is None:
        raise ResourceNotFoundException(
            f"Key {key.arn} has no resource-based policy", key.arn)
    return key.resource_policy


def check_policy(policy: str, key: KeyRecord) -> None:
    """Refuse a document that is not an IAM policy for ``key`` (ValidationException) or that
    would grant access to anyone (PublicPolicyException)."""
    try:
        document = json.loads(policy)
    except ValueError:
        raise ValidationException("Policy is not a valid JSON document") from None
    if not isinstance(document, dict):
        raise ValidationException("Policy must be a JSON object")
    _refuse_unknown(document, DOCUMENT_ELEMENTS, "Policy")
    version = document.get("Version", "2008-10-17")
    if version not in ("2012-10-17", "2008-10-17"):
        raise ValidationException(f"Policy Version {version!r} is not supported; use "
                                  "'2012-10-17'")
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise ValidationException("Policy must have a Statement")
    for number, statement in enumerate(statements, 1):
        if not isinstance(statement, dict):
            raise ValidationException(f"Policy statement {number} must be a JSON object")
        _check_statement(statement, number, key)


def _check_statement(statement: Mapping[str, Any], number: int, key: KeyRecord) -> None:
    where = f"Policy statement {number}"
    _refuse_unknown(statement, STATEMENT_ELEMENTS, where)
    if statement.get("Effect") not in EFFECTS:
        raise ValidationException(f"{where} needs an Effect of Allow or Deny")
    _exactly_one(statement, "Principal", "NotPrincipal", where)  # who it applies to
    actions = _one_of(statement, "Action", "NotAction", where)
    for action in actions:
        if action != "*" and not action.lower().startswith(ACTION_PREFIX):
            raise ValidationException(
                f"{where} names action {action!r}: only '{ACTION_PREFIX}...' actions apply "
                "to a key")
    resources = _one_of(statement, "Resource", "NotResource", where)
    for resource in resources:
        if resource not in ("*", key.arn):
            raise ValidationException(
                f"{where} names resource {resource!r}: it must be '*' or the key's ARN "
                f"{key.arn}")
    everyone = _names_everyone(statement, where)
    confined = _confined(statement.get("Condition"), where)
    if statement["Effect"] == "Allow" and everyone and not confined:
        raise PublicPolicyException(
            f"{where} would grant public access to {key.arn}: name the principals, or "
            "confine '*' with a condition on aws:PrincipalAccount or aws:PrincipalOrgID")


def _exactly_one(statement: Mapping[str, Any], name: str, negated: str, where: str) -> str:
    """The one of ``name`` and ``negated`` the statement has (ValidationException if not one)."""
    if (name in statement) == (negated in statement):
        raise ValidationException(f"{where} needs exactly one of {name} and {negated}")
    return name if name in statement else negated


def _one_of(statement: Mapping[str, Any], name: str, negated: str, where: str) -> list[str]:
    element = _exactly_one(statement, name, negated, where)
    values = _strings(statement[element])
    if values is None:
        raise ValidationException(f"{where}: {element} must be a string or a list of strings")
    return values


def _strings(value: object) -> list[str] | None:
    """A policy value that is a string or a non-empty list of them, as a list; else None."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(
            isinstance(item, str) and item for item in values):
        return None
    return values


def _refuse_unknown(element: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(element) - known)
    if unknown:
        raise ValidationException(f"{where} has unknown element {unknown[0]!r}")


def _names_everyone(statement: Mapping[str, Any], where: str) -> bool:
    """Whether the statement's principal is everyone: ``"*"``, a ``"*"`` among its names
    (``{"AWS": "*"}``), or a NotPrincipal (everyone but those named)."""
    if "NotPrincipal" in statement:
        _principal_names(statement["NotPrincipal"], where)
        return True
    return "*" in _principal_names(statement["Principal"], where)


def _principal_names(principal: object, where: str) -> list[str]:
    if principal == "*":
        return ["*"]
    if not isinstance(principal, dict) or not principal:
        raise ValidationException(f"{where}: a principal is '*' or an object such as "
                                  '{"AWS": "arn:aws:iam::111122223333:root"}')
    names: list[str] = []
    for kind, value in principal.items():
        values = _strings(value)
        if values is None:
            raise ValidationException(f"{where}: principal {kind} must be a string or a "
                                      "list of strings")
        names.extend(values)
    return names


def _confined(condition: object, where: str) -> bool:
    """True when a condition compares a confining key with fixed (wildcard-free) values."""
    if condition is None:
        return False
    if not isinstance(condition, dict) or not all(
            isinstance(tests, dict) for tests in condition.values()):
        raise ValidationException(f"{where}: Condition must map operators to key tests")
    for operator, tests in condition.items():
        if operator.lower().removeprefix("foranyvalue:") not in FIXED_VALUE_OPERATORS:
            continue
        for condition_key, value in tests.items():
            values = _strings(value)
            if (condition_key.lower() in CONFINING_CONDITION_KEYS and values is not None
                    and not any("*" in v or "?" in v for v in values)):
                return True
    return False
