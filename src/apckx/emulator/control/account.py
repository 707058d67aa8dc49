"""The one state object every control-plane (and data-plane) module shares.

:class:`AccountState` holds one (account, region): its keys, aliases and account CA, the
registry's re-entrant lock, the store every mutation is written to, the clock and the quotas.
:class:`BackendRegistry` creates one per (account, region) on first use and loads them from
the store at start-up.

Operations live in the concern modules (``keys``, ``aliases``, ``tags``, ``certificates``,
``key_exchange.*``) as functions whose first argument is the :class:`AccountState`, wrapped in
:func:`locked`. The public contract for other modules (the data plane included):

- :meth:`AccountState.resolve_key`: a key by key ARN, alias ARN or ``alias/name``
  (``ResourceNotFoundException`` otherwise);
- :meth:`AccountState.require_usable`: refuse a key that is not ``CREATE_COMPLETE`` and
  enabled (``ValidationException`` naming the role, e.g. ``KeyIdentifier``);
- :meth:`AccountState.resolve_usable_key`: both in one call;
- :meth:`AccountState.add_key`, :meth:`AccountState.update_key`, :meth:`~AccountState.set_alias`,
  :meth:`~AccountState.remove_alias`: every write, to the store first, then to memory (a
  failed store write leaves memory untouched); never assign to a ``KeyRecord`` in place;
- :func:`locked` (or ``with account.lock:``): every read and write runs under the lock.

Read the material with ``key.secret()`` (symmetric) or ``key.private_key()`` (key pair),
the KCV from ``key.key_check_value``; never print either.
"""

from __future__ import annotations

import dataclasses
import secrets
import string
import threading
import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from apckx.emulator.control.records import (
    ARN_PREFIX,
    CREATE_COMPLETE,
    DELETE_COMPLETE,
    DELETE_PENDING,
    AccountCa,
    KeyRecord,
)
from apckx.emulator.exceptions import ResourceNotFoundException, ValidationException
from apckx.emulator.state import MemoryStore, Record, StateStore

KEY_ID_ALPHABET = string.ascii_lowercase + string.digits
KEY_ID_LENGTH = 16

P = ParamSpec("P")
T = TypeVar("T")


class AccountState:
    """Everything the emulator holds for one account and region."""

    def __init__(self, account_id: str, region: str, *, store: StateStore,
                 lock: threading.RLock, clock: Callable[[], float], key_quota: int,
                 alias_quota: int) -> None:
        self.account_id = account_id
        self.region = region
        self.store = store
        self.lock = lock
        self.clock = clock
        self.key_quota = key_quota
        self.alias_quota = alias_quota
        self.keys: dict[str, KeyRecord] = {}
        self.aliases: dict[str, str | None] = {}
        self.account_ca: AccountCa | None = None
        #: Records of other kinds (import/export tokens, the RSA account CA...), by kind
        #: then ident; a module that adds a kind reads here and writes with save_record.
        self.records: dict[str, dict[str, Record]] = {}

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
        else:
            self.records.setdefault(kind, {})[ident] = record

    # Every write goes to the store first and reaches memory only once the store took it:
    # a store that fails (disk full, I/O error) leaves memory as it was, so nothing is
    # acknowledged, or visible to the next call, that a restart would not bring back.

    def save_record(self, kind: str, ident: str, record: Record) -> None:
        """Store a record of another kind (see ``records``), then keep it."""
        self.store.put(kind, self.account_id, self.region, ident, record)
        self.records.setdefault(kind, {})[ident] = record

    def add_key(self, key: KeyRecord) -> KeyRecord:
        """Store a new key, then keep it; returns it."""
        self.store.put("key", self.account_id, self.region, key.key_id, key.to_record())
        self.keys[key.key_id] = key
        return key

    def update_key(self, key: KeyRecord, **changes: Any) -> KeyRecord:
        """Store ``key`` with ``changes`` applied, then replace it in memory; returns the new
        record (the old object is left untouched, so use the returned one)."""
        updated = dataclasses.replace(key, **changes)
        self.store.put("key", self.account_id, self.region, updated.key_id,
                       updated.to_record())
        self.keys[updated.key_id] = updated
        return updated

    def set_alias(self, name: str, key_arn_value: str | None) -> None:
        """Store an alias (new or changed), then keep it."""
        record: Record = {"AliasName": name, "KeyArn": key_arn_value}
        self.store.put("alias", self.account_id, self.region, name, record)
        self.aliases[name] = key_arn_value

    def remove_alias(self, name: str) -> None:
        """Delete an alias from the store, then from memory."""
        self.store.delete("alias", self.account_id, self.region, name)
        del self.aliases[name]

    def save_account_ca(self, ca: AccountCa) -> None:
        """Store ``ca`` as the account CA, then keep it."""
        self.store.put("account_ca", self.account_id, self.region, "ca", ca.to_record())
        self.account_ca = ca

    # time and ids --------------------------------------------------------------------------

    def now(self) -> float:
        """The emulator clock, epoch seconds."""
        return float(self.clock())

    def new_key_id(self) -> str:
        """A fresh 16-character key id, unused in this account and region."""
        while True:
            key_id = "".join(secrets.choice(KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))
            if key_id not in self.keys:
                return key_id

    def complete_due_deletions(self) -> None:
        """DELETE_PENDING keys whose waiting period is over become DELETE_COMPLETE: the
        material and the resource-based policy are dropped and aliases pointing at them are
        unassigned (spec 3.3, 8)."""
        now = self.now()
        for key in list(self.keys.values()):
            due = key.delete_pending_timestamp
            if key.key_state != DELETE_PENDING or due is None or now < due:
                continue
            self.update_key(
                key, key_state=DELETE_COMPLETE, delete_timestamp=due,
                delete_pending_timestamp=None, secret_hex=None, private_key_pem=None,
                leaf_certificate_apc=None, resource_policy=None,
            )
            for name, target in list(self.aliases.items()):
                if target == key.arn:
                    self.set_alias(name, None)

    # key resolution ------------------------------------------------------------------------

    def key_by_arn(self, arn: str) -> KeyRecord:
        """A key of this account and region by key ARN (ResourceNotFoundException)."""
        prefix = f"{ARN_PREFIX}:{self.region}:{self.account_id}:key/"
        key = self.keys.get(arn[len(prefix):]) if arn.startswith(prefix) else None
        if key is None:
            raise ResourceNotFoundException(f"Key {arn} does not exist", arn)
        return key

    def resolve_key(self, identifier: str) -> KeyRecord:
        """A key by key ARN, alias ARN or ``alias/name`` (spec 2).

        ``ResourceNotFoundException`` (with ``ResourceId``) for an unknown key or alias, an
        alias without a key, or an ARN of another account or region.
        """
        if identifier.startswith("alias/"):
            alias_name = identifier
        elif identifier.startswith(f"{ARN_PREFIX}:{self.region}:{self.account_id}:alias/"):
            alias_name = identifier.split(":", 5)[5]
        elif ":alias/" in identifier:  # an alias ARN of another account or region
            raise ResourceNotFoundException(f"Alias {identifier} does not exist", identifier)
        else:
            return self.key_by_arn(identifier)
        if alias_name not in self.aliases:
            raise ResourceNotFoundException(f"Alias {alias_name} does not exist", identifier)
        target = self.aliases[alias_name]
        if target is None:
            raise ResourceNotFoundException(
                f"Alias {alias_name} is not associated with a key", identifier
            )
        return self.key_by_arn(target)

    @staticmethod
    def require_usable(key: KeyRecord, role: str) -> None:
        """A key used in a cryptographic operation must be CREATE_COMPLETE and enabled.

        ``role`` is the request member that named the key (``WrappingKeyIdentifier``,
        ``KeyIdentifier``...); it starts the ValidationException's message.
        """
        if key.key_state != CREATE_COMPLETE:
            raise ValidationException(
                f"{role} {key.arn} is not in CREATE_COMPLETE state (it is {key.key_state})"
            )
        if not key.enabled:
            raise ValidationException(
                f"{role} {key.arn} is disabled; enable it with StartKeyUsage first"
            )

    def resolve_usable_key(self, identifier: str, role: str) -> KeyRecord:
        """:meth:`resolve_key` then :meth:`require_usable`: the key a cryptographic
        operation may use. Checking its usage and modes is the caller's job."""
        key = self.resolve_key(identifier)
        self.require_usable(key, role)
        return key


def locked(operation: Callable[Concatenate[AccountState, P], T]
           ) -> Callable[Concatenate[AccountState, P], T]:
    """Run an operation on an :class:`AccountState` under the registry lock, after advancing
    scheduled deletions. Every public operation of the control modules is wrapped in it."""

    def wrapper(account: AccountState, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with account.lock:
            account.complete_due_deletions()
            return operation(account, *args, **kwargs)

    wrapper.__name__ = operation.__name__
    wrapper.__qualname__ = operation.__qualname__
    wrapper.__doc__ = operation.__doc__
    wrapper.__module__ = operation.__module__
    return wrapper


class BackendRegistry:
    """Every (account, region) state, one lock for all, loaded from the store."""

    def __init__(self, store: StateStore | None = None, *, key_quota: int = 2000,
                 alias_quota: int = 2000, clock: Callable[[], float] = time.time) -> None:
        self.store: StateStore = store if store is not None else MemoryStore()
        self.lock = threading.RLock()
        self.clock = clock
        self.key_quota = key_quota
        self.alias_quota = alias_quota
        self._backends: dict[tuple[str, str], AccountState] = {}
        with self.lock:
            for kind, account_id, region, ident, record in self.store.load():
                self.backend(account_id, region).load_record(kind, ident, record)

    def backend(self, account_id: str, region: str) -> AccountState:
        """The state of one account and region, created on first use."""
        with self.lock:
            backend = self._backends.get((account_id, region))
            if backend is None:
                backend = AccountState(
                    account_id, region, store=self.store, lock=self.lock, clock=self.clock,
                    key_quota=self.key_quota, alias_quota=self.alias_quota,
                )
                self._backends[(account_id, region)] = backend
            return backend

    def backends(self) -> list[AccountState]:
        with self.lock:
            return list(self._backends.values())
