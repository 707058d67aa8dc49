"""Roll back: delete a ceremony's aliases and schedule its keys for deletion.

Two sources of truth: a ceremony journal (``--ceremony <id>``: only what that ceremony
*created*; reused keys are left alone) or alias names (``--alias NAME ...``: for resources made
without a journal, such as the AWS sample's three aliases and their keys). Keys are never
destroyed at once: DeleteKey schedules deletion in ``delete_in_days`` (APC: 3 to 180, default 7)
and ``RestoreKey`` can still bring them back. A plan is built first; ``dry_run`` prints it
and calls nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from apckx.ceremonies.journal import ROLLED_BACK, Journal
from apckx.errors import InputError, ServiceError
from apckx.service.apc import ApcService

MIN_DELETE_DAYS = 3
MAX_DELETE_DAYS = 180
DEFAULT_DELETE_DAYS = 7


@dataclass
class CleanupAction:
    """One planned call. ``outcome`` is filled in when it runs."""

    operation: str  # "DeleteAlias" | "DeleteKey"
    target: str  # alias name or key ARN (or "<key of alias/x>" while unresolved)
    role: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    outcome: str | None = None
    ok: bool = True

    def to_record(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "target": self.target,
            "role": self.role,
            "parameters": self.parameters,
            "outcome": self.outcome,
            "ok": self.ok,
        }


def check_delete_days(days: int) -> int:
    if not MIN_DELETE_DAYS <= days <= MAX_DELETE_DAYS:
        raise InputError(
            f"--delete-in-days must be between {MIN_DELETE_DAYS} and {MAX_DELETE_DAYS} (got {days})"
        )
    return days


def plan_ceremony_cleanup(journal: Journal, *, delete_in_days: int) -> list[CleanupAction]:
    """What rolling back ``journal`` means: its aliases, then the keys it created."""
    check_delete_days(delete_in_days)
    actions: list[CleanupAction] = []
    seen: set[str] = set()
    for resource in journal.resources:
        if resource.kind == "alias" and resource.alias and resource.alias not in seen:
            seen.add(resource.alias)
            actions.append(
                CleanupAction(
                    "DeleteAlias",
                    resource.alias,
                    resource.role,
                    {"AliasName": resource.alias, "only_if_points_to": resource.arn},
                )
            )
    for resource in journal.resources:
        if (
            resource.kind == "key"
            and resource.created
            and resource.arn
            and resource.arn not in seen
        ):
            seen.add(resource.arn)
            actions.append(
                CleanupAction(
                    "DeleteKey",
                    resource.arn,
                    resource.role,
                    {"KeyIdentifier": resource.arn, "DeleteKeyInDays": delete_in_days},
                )
            )
    return actions


def plan_alias_cleanup(aliases: Sequence[str], *, delete_in_days: int) -> list[CleanupAction]:
    """For each alias: delete it and schedule deletion of the key it points to."""
    from apckx.ceremonies.import_kek import check_alias_name

    check_delete_days(delete_in_days)
    if not aliases:
        raise InputError("--alias needs at least one alias name")
    actions: list[CleanupAction] = []
    for alias in dict.fromkeys(aliases):
        check_alias_name(alias, flag="--alias")
        actions.append(CleanupAction("DeleteAlias", alias, "alias", {"AliasName": alias}))
        actions.append(
            CleanupAction(
                "DeleteKey",
                f"<key of {alias}>",
                "alias",
                {"KeyIdentifier": f"<key of {alias}>", "DeleteKeyInDays": delete_in_days},
            )
        )
    return actions


def run_ceremony_cleanup(
    apc: ApcService, journal: Journal, *, delete_in_days: int
) -> list[CleanupAction]:
    """Roll back a ceremony. Aliases are deleted only while they still point at this
    ceremony's key (another ceremony may have taken the alias over since)."""
    actions = plan_ceremony_cleanup(journal, delete_in_days=delete_in_days)
    alias_actions = [a for a in actions if a.operation == "DeleteAlias"]
    key_actions = [a for a in actions if a.operation == "DeleteKey"]
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="apckx-cleanup") as pool:
        list(pool.map(lambda a: _delete_journal_alias(apc, a), alias_actions))
        list(pool.map(lambda a: _delete_key(apc, a), key_actions))
    journal.step("cleanup", actions=[a.to_record() for a in actions])
    if all(a.ok for a in actions):
        journal.finish(ROLLED_BACK)
    return actions


def run_alias_cleanup(
    apc: ApcService, aliases: Sequence[str], *, delete_in_days: int
) -> list[CleanupAction]:
    """Delete aliases and schedule their keys for deletion (one key once, however many
    aliases point at it)."""
    planned = plan_alias_cleanup(aliases, delete_in_days=delete_in_days)
    names = [a.target for a in planned if a.operation == "DeleteAlias"]

    def resolve(name: str) -> tuple[str, str | None, str | None]:
        try:
            return name, apc.get_alias(name).get("KeyArn"), None
        except ServiceError as exc:
            if exc.code == "ResourceNotFoundException":
                return name, None, "alias not found"
            raise

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="apckx-cleanup") as pool:
        resolved = list(pool.map(resolve, names))
        actions: list[CleanupAction] = []
        key_actions: dict[str, CleanupAction] = {}
        for name, key_arn, problem in resolved:
            alias_action = CleanupAction("DeleteAlias", name, "alias", {"AliasName": name})
            if problem:
                alias_action.outcome = problem
            actions.append(alias_action)
            if key_arn and key_arn not in key_actions:
                key_actions[key_arn] = CleanupAction(
                    "DeleteKey",
                    key_arn,
                    name,
                    {"KeyIdentifier": key_arn, "DeleteKeyInDays": delete_in_days},
                )
        pending = [a for a in actions if a.outcome is None]
        list(pool.map(lambda a: _delete_alias(apc, a), pending))
        list(pool.map(lambda a: _delete_key(apc, a), key_actions.values()))
    return actions + list(key_actions.values())


def _delete_journal_alias(apc: ApcService, action: CleanupAction) -> None:
    expected = action.parameters.get("only_if_points_to")
    try:
        current = apc.get_alias(action.target).get("KeyArn")
    except ServiceError as exc:
        if exc.code == "ResourceNotFoundException":
            action.outcome = "already gone"
            return
        action.ok, action.outcome = False, f"{exc.code}"
        return
    if expected and current and current != expected:
        action.outcome = f"skipped: now points to {current}"
        return
    _delete_alias(apc, action)


def _delete_alias(apc: ApcService, action: CleanupAction) -> None:
    try:
        apc.delete_alias(action.target)
        action.outcome = "deleted"
    except ServiceError as exc:
        if exc.code == "ResourceNotFoundException":
            action.outcome = "already gone"
        else:
            action.ok, action.outcome = False, f"{exc.code}"


def _delete_key(apc: ApcService, action: CleanupAction) -> None:
    days = int(action.parameters["DeleteKeyInDays"])
    try:
        key = apc.delete_key(action.target, delete_key_in_days=days)
        when = key.get("DeletePendingTimestamp")
        action.outcome = "deletion scheduled" + (f" ({_iso(when)})" if when else "")
        return
    except ServiceError as exc:
        if exc.code == "ResourceNotFoundException":
            action.outcome = "already gone"
            return
        failure = exc
    # DeleteKey refuses keys that are not CREATE_COMPLETE: fine if already pending deletion.
    try:
        state = apc.get_key(action.target).get("KeyState")
    except ServiceError:
        state = None
    if state in ("DELETE_PENDING", "DELETE_COMPLETE"):
        action.outcome = f"already {state}"
    else:
        action.ok, action.outcome = False, f"{failure.code}: {failure}"


def _iso(value: Any) -> str:
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat(timespec="seconds")) if callable(isoformat) else str(value)
