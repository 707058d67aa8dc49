"""Roll back: delete a ceremony's aliases and schedule its keys for deletion.

Two sources of truth:

* a ceremony (``--ceremony <id>``): what its journal and its key log (a migration's) list,
  *and* every key APC holds with the tag ``apckx:ceremony = <id>``, so keys whose journal
  entry never landed (``kill -9`` between APC's answer and the write) are found too. A key is
  deleted only when its tag names this ceremony: a journal can say anything, the tag is what
  the ceremony set at creation. Reused keys (another ceremony's tag) are left alone.
* alias names (``--alias NAME ...``: for resources made without a journal, such as the AWS
  sample's three aliases and their keys). A name that does not exist is refused.

Aliases go first and keys after, and a last ListAliases catches an alias that appeared
meanwhile, so no alias is ever left naming a key cleanup scheduled for deletion; re-running
repairs an interrupted run (an alias on a DELETE_PENDING key of the ceremony is removed). An
alias the ceremony moved with ``--replace`` is pointed back at the key it named before, when
that key is still usable. Keys are never destroyed at once: DeleteKey schedules deletion in
``delete_in_days`` (APC: 3 to 180, default 7) and ``RestoreKey`` can still bring them back.

The plan is built with read-only calls (ListKeys, ListTagsForResource, ListAliases, GetAlias);
``dry_run`` prints it, skips included, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from apckx.ceremonies.journal import (
    COMPLETE,
    ROLLED_BACK,
    Journal,
    LocalWriteError,
    list_created_resources,
)
from apckx.errors import InputError, ServiceError
from apckx.service.apc import CEREMONY_TAG, ApcService

MIN_DELETE_DAYS = 3
MAX_DELETE_DAYS = 180
DEFAULT_DELETE_DAYS = 7

LIVE_STATES = ("CREATE_IN_PROGRESS", "CREATE_COMPLETE")
PENDING_STATES = ("DELETE_PENDING", "DELETE_COMPLETE")

_GONE = "already gone"


@dataclass
class CleanupAction:
    """One planned call. ``skip`` says why it will not be made (then it never is);
    ``outcome`` is filled in when it runs."""

    operation: str  # "DeleteAlias" | "UpdateAlias" | "DeleteKey"
    target: str  # alias name or key ARN
    role: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    outcome: str | None = None
    ok: bool = True
    skip: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "target": self.target,
            "role": self.role,
            "parameters": self.parameters,
            "outcome": self.outcome,
            "ok": self.ok,
            "skip": self.skip,
        }

    def skipped(self, reason: str) -> CleanupAction:
        self.skip = self.outcome = reason
        return self


def check_delete_days(days: int) -> int:
    if not MIN_DELETE_DAYS <= days <= MAX_DELETE_DAYS:
        raise InputError(
            f"--delete-in-days must be between {MIN_DELETE_DAYS} and {MAX_DELETE_DAYS} (got {days})"
        )
    return days


def _delete_key_action(arn: str, role: str, days: int) -> CleanupAction:
    return CleanupAction(
        "DeleteKey", arn, role, {"KeyIdentifier": arn, "DeleteKeyInDays": days}
    )


# -- what a ceremony made (read-only) ------------------------------------------------------
@dataclass
class _Account:
    """What APC holds: key states, aliases, and the tags read so far."""

    states: dict[str, str]
    aliases: dict[str, str | None]
    tags: dict[str, dict[str, str]] = field(default_factory=dict)


def _read_tags(apc: ApcService, arns: Iterable[str], account: _Account) -> None:
    wanted = [arn for arn in dict.fromkeys(arns) if arn not in account.tags]

    def read(arn: str) -> tuple[str, dict[str, str]]:
        try:
            return arn, apc.list_tags_for_resource(arn)
        except ServiceError as exc:
            if exc.code == "ResourceNotFoundException":
                return arn, {}
            raise

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="apckx-cleanup") as pool:
        account.tags.update(pool.map(read, wanted))


def decide_tag_scan(journal: Journal) -> bool:
    """Whether local state may miss a key: the ceremony did not finish (``kill -9`` leaves it
    ``running``; an interrupted or failed run may have lost an answer). A finished one
    recorded every key with its final status, so its own keys are all that need reading."""
    return journal.status not in (COMPLETE, ROLLED_BACK)


def plan_ceremony_cleanup(
    apc: ApcService, journal: Journal, *, delete_in_days: int, scan: bool | None = None
) -> list[CleanupAction]:
    """Everything rolling back ``journal``'s ceremony means, from read-only calls.

    Keys: those APC tags ``apckx:ceremony = <id>`` (live ones are scheduled for deletion;
    a key the journal or key log lists with another tag, or none, is skipped and said so).
    Aliases: every alias naming one of those keys (pending deletion too), and the aliases the
    journal says it created that still name one. ``scan``: read the tags of every live key
    in the account (one ListTagsForResource each), not only the ones local state lists;
    default :func:`decide_tag_scan`.
    """
    check_delete_days(delete_in_days)
    if scan is None:
        scan = decide_tag_scan(journal)
    cid = journal.ceremony_id
    local_keys, local_aliases = list_created_resources(journal)
    roles = {r.arn: r.role for r in journal.resources if r.kind == "key" and r.arn}
    previous = {
        r.alias: r.previous for r in journal.resources if r.kind == "alias" and r.alias
    }
    account = _Account(
        states={str(k["KeyArn"]): str(k.get("KeyState", "")) for k in apc.list_keys()},
        aliases={str(a["AliasName"]): a.get("KeyArn") for a in apc.list_aliases()},
    )
    aliased = {arn for arn in account.aliases.values() if arn}
    # Tags of every live key (a key whose journal entry never landed is found only so), and
    # of pending keys an alias still names (an interrupted cleanup's leftovers).
    _read_tags(
        apc,
        [
            arn
            for arn, state in account.states.items()
            if (scan or arn in local_keys)
            and (state in LIVE_STATES or (state == "DELETE_PENDING" and arn in aliased))
        ],
        account,
    )
    ours = {arn for arn, tags in account.tags.items() if tags.get(CEREMONY_TAG) == cid}

    actions: list[CleanupAction] = []
    for alias in sorted(set(local_aliases) | {a for a, k in account.aliases.items() if k in ours}):
        target = account.aliases.get(alias, "missing")
        action = CleanupAction("DeleteAlias", alias, "alias", {"AliasName": alias})
        if target == "missing":
            actions.append(action.skipped(_GONE))
        elif target not in ours:
            actions.append(
                action.skipped(f"skipped: now points to {target or 'no key'}, not this ceremony's")
            )
        elif (before := previous.get(alias)) and account.states.get(before) == "CREATE_COMPLETE":
            actions.append(
                CleanupAction(
                    "UpdateAlias",
                    alias,
                    "alias",
                    {"AliasName": alias, "KeyArn": before},
                )
            )
        else:
            actions.append(action)
    for arn in sorted(ours | local_keys, key=lambda a: (a not in roles, a)):
        action = _delete_key_action(arn, roles.get(arn, "tagged"), delete_in_days)
        state = account.states.get(arn)
        if state is None:
            actions.append(action.skipped(_GONE))
        elif state in PENDING_STATES:
            actions.append(action.skipped(f"already {state}"))
        elif arn not in ours:
            tag = account.tags.get(arn, {}).get(CEREMONY_TAG)
            actions.append(
                action.skipped(
                    f"skipped: tagged {CEREMONY_TAG}={tag}, not {cid}"
                    if tag
                    else f"skipped: no {CEREMONY_TAG} tag: not created by {cid}"
                )
            )
        else:
            actions.append(action)
    return actions


def plan_alias_cleanup(
    apc: ApcService, aliases: Sequence[str], *, delete_in_days: int
) -> list[CleanupAction]:
    """For each alias: delete it and schedule deletion of the key it names (once per key).

    A name that does not exist is an InputError (nothing is deleted). A key another alias
    (not on the list) still names is not deleted, and the plan says which alias."""
    from apckx.ceremonies.import_kek import check_alias_name

    check_delete_days(delete_in_days)
    if not aliases:
        raise InputError("--alias needs at least one alias name")
    names = list(dict.fromkeys(aliases))
    for alias in names:
        check_alias_name(alias, flag="--alias")
    everything = {str(a["AliasName"]): a.get("KeyArn") for a in apc.list_aliases()}
    missing = [name for name in names if name not in everything]
    if missing:
        raise InputError(
            f"no such alias: {', '.join(missing)} (nothing was deleted; check the name with "
            "aws payment-cryptography list-aliases)"
        )
    actions = [CleanupAction("DeleteAlias", n, "alias", {"AliasName": n}) for n in names]
    seen: set[str] = set()
    for name in names:
        arn = everything[name]
        if not arn or arn in seen:
            continue
        seen.add(arn)
        action = _delete_key_action(arn, name, delete_in_days)
        others = sorted(a for a, k in everything.items() if k == arn and a not in names)
        if others:
            action.skipped(f"skipped: {', '.join(others)} also names it (add it to --alias)")
        else:
            state = _key_state(apc, arn)
            if state is None:
                action.skipped(_GONE)
            elif state in PENDING_STATES:
                action.skipped(f"already {state}")
        actions.append(action)
    return actions


def _key_state(apc: ApcService, arn: str) -> str | None:
    key = apc.find_key(arn)
    return None if key is None else str(key.get("KeyState", ""))


# -- running a plan --------------------------------------------------------------------------
def run_cleanup(apc: ApcService, actions: list[CleanupAction]) -> list[CleanupAction]:
    """Make the plan's calls: aliases first, then keys, then a last look for an alias that
    names a key just scheduled for deletion (one that appeared meanwhile)."""
    alias_actions = [a for a in actions if a.operation != "DeleteKey" and a.skip is None]
    key_actions = [a for a in actions if a.operation == "DeleteKey" and a.skip is None]
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="apckx-cleanup") as pool:
        list(pool.map(lambda a: _run_alias_action(apc, a), alias_actions))
        list(pool.map(lambda a: _delete_key(apc, a), key_actions))
        scheduled = {a.target for a in key_actions if a.ok}
        late: list[CleanupAction] = []
        if scheduled:
            names = [str(a["AliasName"]) for a in apc.list_aliases()
                     if a.get("KeyArn") in scheduled]  # fmt: skip
            late = [CleanupAction("DeleteAlias", n, "alias", {"AliasName": n}) for n in names]
        list(pool.map(lambda a: _run_alias_action(apc, a), late))
    return actions + late


def run_ceremony_cleanup(
    apc: ApcService,
    journal: Journal,
    *,
    delete_in_days: int,
    planned: list[CleanupAction] | None = None,
) -> list[CleanupAction]:
    """Roll back a ceremony (``planned``, or a plan made now); the journal records every
    action and is finished ``rolled_back`` when all of them succeeded."""
    if planned is None:
        planned = plan_ceremony_cleanup(apc, journal, delete_in_days=delete_in_days)
    actions = run_cleanup(apc, planned)
    try:
        journal.step("cleanup", actions=[a.to_record() for a in actions])
        if all(a.ok for a in actions):
            journal.finish(ROLLED_BACK)
    except OSError as exc:
        done = [a for a in actions if a.skip is None and a.ok]
        raise LocalWriteError(
            f"APC made {len(done)} cleanup call(s) for ceremony {journal.ceremony_id}, but "
            f"writing its journal {journal.path} failed ({exc.strerror}); running the same "
            "cleanup again is safe (it finds what is left by tag)"
        ) from None
    return actions


def run_alias_cleanup(
    apc: ApcService, aliases: Sequence[str], *, delete_in_days: int
) -> list[CleanupAction]:
    """Delete aliases and schedule their keys for deletion (one key once, however many
    aliases point at it)."""
    return run_cleanup(apc, plan_alias_cleanup(apc, aliases, delete_in_days=delete_in_days))


def _run_alias_action(apc: ApcService, action: CleanupAction) -> None:
    try:
        if action.operation == "UpdateAlias":
            apc.update_alias(action.target, str(action.parameters["KeyArn"]))
            action.outcome = f"pointed back at {action.parameters['KeyArn']}"
        else:
            apc.delete_alias(action.target)
            action.outcome = "deleted"
    except ServiceError as exc:
        if exc.code == "ResourceNotFoundException":
            action.outcome = _GONE
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
            action.outcome = _GONE
            return
        failure = exc
    # DeleteKey refuses keys that are not CREATE_COMPLETE: fine if already pending deletion.
    try:
        state = apc.get_key(action.target).get("KeyState")
    except ServiceError:
        state = None
    if state in PENDING_STATES:
        action.outcome = f"already {state}"
    else:
        action.ok, action.outcome = False, f"{failure.code}: {failure}"


def _iso(value: Any) -> str:
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat(timespec="seconds")) if callable(isoformat) else str(value)
