"""Batch migration: import every key of a manifest under a KEK already in APC.

Each key costs ImportKey + CreateAlias. A shared :class:`TokenBucket` paces the *calls* (every
retry included) at ``rate``; a small worker pool keeps the bucket busy despite latency;
ThrottlingException and transient 5xx answers are retried with backoff through the bucket.
One failing key never stops the others.

Resumable: the run's journal records every key the moment APC confirms it (ARN and KCV) and
every alias. A re-run of the manifest skips a key whose alias already points at a key with
the expected KCV (the row's ``kcv`` column, the KCV of a rehearsal row's key, or the KCV APC
returned at import as recorded by an earlier run), finishes keys imported but not yet aliased,
and retries the rest.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apckx.ceremonies.import_key import (
    KekInfo,
    WorkingKeySpec,
    build_working_key_block,
    compute_key_kcv,
    describe_key_block,
    header_kcv_algorithm,
    kcv_algorithm_for,
    verify_kek,
)
from apckx.ceremonies.journal import (
    COMPLETE,
    DEFAULT_JOURNAL_DIR,
    FAILED,
    ROLLED_BACK,
    Journal,
    LocalWriteError,
    Resource,
    check_private_owner,
    ensure_private_dir,
    key_log_path,
    list_journals,
    read_key_log,
    read_private_text,
)
from apckx.ceremonies.manifest import Manifest, ManifestError, ManifestRow
from apckx.errors import ApckxError, ConfigError, InputError, KcvMismatchError, ServiceError
from apckx.service.pacing import (
    CONNECTION_CODES,
    DEFAULT_RATE,
    TRANSIENT_CODES,
    RetryStats,
    TokenBucket,
    call_with_backoff,
)

if TYPE_CHECKING:
    from apckx.service.apc import ApcService

JOURNAL_KIND = "migrate"
CEREMONY_TAG = "apckx:ceremony"
ALIAS_TAG = "apckx:alias"  # lets a resumed run find a key whose ImportKey answer was lost

IMPORTED = "imported"  # ImportKey + CreateAlias in this run
ALIASED = "aliased"  # imported by an earlier run, alias created now
SKIPPED = "skipped"  # already in APC with the expected KCV
FAILED_KEY = "failed"


@dataclass(frozen=True)
class MigrationOptions:
    kek_id: str
    kek: bytes | None = field(default=None, repr=False)  # only for rehearsal (key_hex) rows
    rate: float = DEFAULT_RATE
    burst: float = 1.0
    workers: int = 4
    max_attempts: int = 8
    backoff_base: float = 0.25
    journal_dir: Path = DEFAULT_JOURNAL_DIR
    enabled: bool = True
    resume_id: str | None = None  # continue this ceremony (default: the unfinished one, if any)
    # ``migrate --check``: called after each key is in place with (row, outcome, pace); returns
    # the check's one-line outcome (apckx.ceremonies.check.make_migration_check).
    check_key: Callable[[ManifestRow, KeyOutcome, Callable[[], Any]], str] | None = field(
        default=None, repr=False, compare=False
    )

    def check(self) -> None:
        if not self.rate > 0:
            raise InputError(
                f"--rate must be a positive number of calls per second (got {self.rate})"
            )
        if not 1 <= self.workers <= 64:
            raise InputError(f"--workers must be between 1 and 64 (got {self.workers})")
        if not 1 <= self.max_attempts <= 20:
            raise InputError(f"--max-attempts must be between 1 and 20 (got {self.max_attempts})")


@dataclass(frozen=True)
class KeyOutcome:
    """One manifest row's result: nothing secret."""

    line: int
    alias: str
    status: str
    key_arn: str | None = None
    kcv: str | None = None
    error: str | None = None
    check: str | None = None  # migrate --check: "ok", "mismatch: ...", "failed: ...", ...

    @property
    def check_failed(self) -> bool:
        return self.check is not None and self.check.startswith(("mismatch", "failed"))

    def to_record(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    failed: int
    elapsed: float

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def eta(self) -> float | None:
        """Seconds left at the throughput seen so far (None until something finished)."""
        if self.finished == 0 or self.elapsed <= 0:
            return None
        return (self.total - self.finished) * self.elapsed / self.finished


@dataclass
class MigrationResult:
    ceremony_id: str
    journal_path: Path
    kek_arn: str
    outcomes: list[KeyOutcome]
    elapsed: float
    stats: RetryStats

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> int:
        return self.count(FAILED_KEY)

    @property
    def check_failed(self) -> int:
        return sum(1 for o in self.outcomes if o.check_failed)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.check_failed == 0

    def to_record(self) -> dict[str, Any]:
        return {
            "ceremony_id": self.ceremony_id,
            "journal": str(self.journal_path),
            "kek_arn": self.kek_arn,
            "total": len(self.outcomes),
            "imported": self.count(IMPORTED) + self.count(ALIASED),
            "skipped": self.count(SKIPPED),
            "failed": self.failed,
            **({"check_failed": self.check_failed} if any(o.check for o in self.outcomes) else {}),
            "elapsed_s": round(self.elapsed, 3),
            "calls": self.stats.calls,
            "throttled": self.stats.throttled,
            "retried": self.stats.retried,
            "keys": [o.to_record() for o in self.outcomes],
        }


@dataclass(frozen=True)
class _Earlier:
    """What earlier runs' journals say about an alias."""

    key_arn: str
    kcv: str
    aliased: bool
    block_sha256: str | None = None  # the key block it came from (a wrapped block: no secret)
    ceremony_id: str = ""  # the ceremony whose key log says so (its tag must agree)


def block_digest(key_block: str) -> str:
    return hashlib.sha256(key_block.strip().encode()).hexdigest()


def manifest_digest(manifest: Manifest) -> str:
    """A digest of the manifest's rows (aliases, blocks, attributes, not the cleartext)."""
    digest = hashlib.sha256()
    for row in manifest.rows:
        digest.update(f"{row.alias}|{row.key_block}|{row.key_usage}|{row.key_algorithm}\n".encode())
    return digest.hexdigest()[:16]


def _lock_exclusively(fd: int, path: Path) -> None:
    """One process per ceremony: a second run of the same migration (a re-run while the
    first still runs) is refused instead of interleaving its keys. The lock goes with the
    process, ``kill -9`` included."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConfigError(
            f"{path} is in use: this migration is running in another process; wait for it "
            "(or stop it) before running it again"
        ) from None


class KeyLog:
    """The run's per-key record: append-only JSON lines, each fsync'd before we go on.

    ``<journal_dir>/<ceremony id>.keys.jsonl`` next to the ceremony journal. Appending keeps a
    large migration O(1) per event (rewriting the journal per key would be quadratic). Events:
    ``importing`` (before ImportKey), ``key_imported`` (ARN + KCV), ``alias_created``,
    ``key_failed``. A torn last line (a crash mid-write) is ignored on reading. A resumed
    ceremony appends to its own log.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        ensure_private_dir(path.parent, what="journal directory")
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        self._fd = os.open(path, flags, 0o600)
        try:
            check_private_owner(path, os.fstat(self._fd), what="key log")
            _lock_exclusively(self._fd, path)
        except BaseException:
            os.close(self._fd)
            raise

    def write(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, "at": round(time.time(), 3), **fields}) + "\n"
        with self._lock:
            os.write(self._fd, line.encode())
            os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        return read_key_log(path)


@dataclass
class EarlierRuns:
    """What earlier runs under the same KEK say: alias -> key, and unconfirmed imports."""

    keys: dict[str, _Earlier] = field(default_factory=dict)
    # alias -> ceremony id, for ImportKey calls whose answer was never recorded (a crash)
    unconfirmed: dict[str, str] = field(default_factory=dict)
    # alias -> digest of the block an unconfirmed ImportKey sent
    pending_blocks: dict[str, str] = field(default_factory=dict)
    # the migrate ceremonies (under this KEK) the journals hold: a key is trusted only when
    # its apckx:ceremony tag names one of them
    ceremonies: set[str] = field(default_factory=set)


def check_journal_dir(journal_dir: Path) -> None:
    """Before any call: every journal and key log in ``journal_dir`` is this user's and not
    writable by group or others (ConfigError names the first that is not). A missing
    directory is created 0700."""
    ensure_private_dir(journal_dir, what="journal directory")
    for path in sorted(Path(journal_dir).iterdir()):
        if path.name.startswith(".") or not path.name.endswith((".json", ".keys.jsonl")):
            continue
        what = "key log" if path.name.endswith(".keys.jsonl") else "journal"
        check_private_owner(path, os.lstat(path), what=what)


def _read_journal_data(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(read_private_text(path, what="journal"))
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_earlier_runs(journal_dir: Path, kek_arn: str) -> EarlierRuns:
    """Read every earlier migrate journal (and its key log) under the same KEK, oldest first.

    A journal or key log another user owns or can write is refused (ConfigError): it could
    name any key as "already imported".
    """
    earlier = EarlierRuns()
    for path in list_journals(journal_dir):
        data = _read_journal_data(path)
        if data is None or data.get("kind") != JOURNAL_KIND:
            continue
        if (data.get("parameters") or {}).get("kek_arn") != kek_arn:
            continue
        ceremony_id = str(data.get("ceremony_id"))
        earlier.ceremonies.add(ceremony_id)
        for event in read_key_log(key_log_path(path)):
            alias, arn, kcv = event.get("alias"), event.get("key_arn"), event.get("kcv")
            kind = event.get("event")
            if not isinstance(alias, str):
                continue
            digest = event.get("block_sha256")
            digest = digest if isinstance(digest, str) else None
            if kind == "importing":
                earlier.unconfirmed[alias] = ceremony_id
                if digest:
                    earlier.pending_blocks[alias] = digest
            elif kind == "key_imported" and isinstance(arn, str) and isinstance(kcv, str):
                earlier.unconfirmed.pop(alias, None)
                earlier.keys[alias] = _Earlier(
                    arn, kcv, aliased=False, block_sha256=digest, ceremony_id=ceremony_id
                )
            elif kind == "key_failed" and not event.get("ambiguous"):
                earlier.unconfirmed.pop(alias, None)
            elif kind == "alias_created" and alias in earlier.keys:
                previous = earlier.keys[alias]
                if previous.key_arn == arn:
                    earlier.keys[alias] = _Earlier(
                        arn, previous.kcv, aliased=True, block_sha256=previous.block_sha256,
                        ceremony_id=previous.ceremony_id,
                    )  # fmt: skip
    return earlier


def find_resumable(journal_dir: Path, kek_arn: str, digest: str) -> str | None:
    """The latest unfinished migration of the same manifest under the same KEK: a re-run
    continues that ceremony (same id, same key log) instead of starting another."""
    for path in reversed(list_journals(journal_dir)):
        data = _read_journal_data(path)
        if data is None or data.get("kind") != JOURNAL_KIND:
            continue
        parameters = data.get("parameters") or {}
        if parameters.get("kek_arn") != kek_arn or parameters.get("manifest_digest") != digest:
            continue
        if data.get("status") in (COMPLETE, ROLLED_BACK):
            return None  # the latest such run finished: a re-run is a new ceremony
        return str(data.get("ceremony_id"))
    return None


def _check_rows_against_kek(manifest: Manifest, kek: KekInfo, has_kek_cleartext: bool) -> None:
    """Per-line checks that need the KEK (strength, block version); all before any import."""
    from apckx.crypto.attributes import check_wrapping_strength
    from apckx.crypto.keys import is_aes

    errors: list[str] = []
    aes_kek = is_aes(kek.key_algorithm)
    for row in manifest.rows:
        try:
            if row.is_rehearsal:
                if not has_kek_cleartext:
                    raise InputError("a key_hex row needs the KEK's cleartext (--kek-file)")
                check_wrapping_strength(kek.key_algorithm, str(row.key_algorithm))
            else:
                header = describe_key_block(str(row.key_block))
                if aes_kek and header.version_id != "D":
                    raise InputError(
                        f"a version {header.version_id} block can't be under the "
                        f"{kek.key_algorithm} KEK (an AES KEK takes version D)"
                    )
                if not aes_kek and header.version_id == "D":
                    raise InputError(
                        f"a version D block needs an AES KEK; the KEK is {kek.key_algorithm}"
                    )
        except ApckxError as exc:
            errors.append(f"{manifest.path}:{row.line}: {exc}")
    if errors:
        raise ManifestError(errors)


class _Runner:
    def __init__(
        self,
        service: ApcService,
        manifest: Manifest,
        options: MigrationOptions,
        ceremony_id: str,
        log: KeyLog,
        kek: KekInfo,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self.service = service
        self.manifest = manifest
        self.options = options
        self.ceremony_id = ceremony_id
        self.log = log
        self.kek = kek
        self.on_progress = on_progress
        self.bucket = TokenBucket(options.rate, options.burst)
        self.stats = RetryStats()
        self.lock = threading.Lock()
        self.done = 0
        self.failed = 0
        self.started = time.monotonic()
        self.key_index: dict[str, dict[str, Any]] = {}

    def call(self, fn: Callable[[], Any], *, idempotent: bool = False) -> Any:
        return call_with_backoff(
            fn,
            self.bucket,
            max_attempts=self.options.max_attempts,
            base=self.options.backoff_base,
            stats=self.stats,
            idempotent=idempotent,
        )

    def read(self, fn: Callable[[], Any]) -> Any:
        """A read: also retried after a dropped connection."""
        return self.call(fn, idempotent=True)

    def list_aliases(self) -> dict[str, str | None]:
        aliases = self.read(self.service.list_aliases)
        return {str(a["AliasName"]): a.get("KeyArn") for a in aliases}

    def index_keys(self) -> None:
        """ListKeys once (100 a page): KCV checks then cost no GetKey per key."""
        summaries = self.read(self.service.list_keys)
        self.key_index = {str(k["KeyArn"]): k for k in summaries}

    def recover_unconfirmed(self, earlier: EarlierRuns, aliases: Mapping[str, str | None]) -> None:
        """Find keys an interrupted run imported but never recorded, by their tags.

        Only unaliased CREATE_COMPLETE keys are candidates, so this costs one
        ListTagsForResource per such key, and only after a crash.
        """
        wanted = {
            a: c
            for a, c in earlier.unconfirmed.items()
            if a not in earlier.keys and not aliases.get(a)
        }
        if not wanted:
            return
        referenced = {arn for arn in aliases.values() if arn}
        for arn, summary in self.key_index.items():
            if arn in referenced or summary.get("KeyState") != "CREATE_COMPLETE":
                continue
            tags = self.read(functools.partial(self.service.list_tags_for_resource, arn))
            alias = tags.get(ALIAS_TAG)
            if alias in wanted and tags.get(CEREMONY_TAG) == wanted[alias]:
                kcv = str(summary.get("KeyCheckValue", "")).upper()
                digest = earlier.pending_blocks.get(alias)
                earlier.keys[alias] = _Earlier(
                    arn, kcv, aliased=False, block_sha256=digest, ceremony_id=wanted[alias]
                )
                self.log.write(
                    "key_imported", alias=alias, key_arn=arn, kcv=kcv, recovered=True,
                    block_sha256=digest,
                )  # fmt: skip

    # -- one key --------------------------------------------------------------------------
    def expected_kcv(self, row: ManifestRow, earlier: _Earlier | None) -> str | None:
        """The KCV the row's key must have, if anything says so."""
        if row.kcv:
            return row.kcv
        if row.key is not None:
            return compute_key_kcv(row.key, str(row.key_algorithm))
        return earlier.kcv if earlier else None

    @staticmethod
    def earlier_for(row: ManifestRow, earlier: _Earlier | None) -> _Earlier | None:
        """An earlier run's key counts for this row only if it came from the same block, or
        the row itself says which KCV to expect (then the KCV decides)."""
        if earlier is None or row.kcv or row.key is not None:
            return earlier
        same_block = row.key_block is not None and earlier.block_sha256 == block_digest(
            row.key_block
        )
        return earlier if same_block else None

    def trusted(self, earlier: _Earlier, alias: str) -> bool:
        """An earlier run's key counts only when APC's tags on it say the same thing as the
        key log: ``apckx:alias`` is the row's alias and ``apckx:ceremony`` the ceremony whose
        log listed it. A planted log can name any key; it cannot tag another user's key."""
        try:
            tags = self.read(functools.partial(self.service.list_tags_for_resource,
                                               earlier.key_arn))  # fmt: skip
        except ServiceError as exc:
            if exc.code in ("ResourceNotFoundException", "AccessDeniedException"):
                return False
            raise
        return bool(
            tags.get(ALIAS_TAG) == alias and tags.get(CEREMONY_TAG) == earlier.ceremony_id
        )

    def key_matches(self, key_arn: str, expected_kcv: str) -> tuple[bool, str]:
        from apckx.crypto.kcv import kcv_matches

        key = self.key_index.get(key_arn)
        if key is None:
            key = self.read(lambda: self.service.get_key(key_arn))
        apc_kcv = str(key.get("KeyCheckValue", "")).upper()
        usable = key.get("KeyState") == "CREATE_COMPLETE"
        return usable and kcv_matches(apc_kcv, expected_kcv), apc_kcv

    def key_block_for(self, row: ManifestRow) -> tuple[str, str]:
        """(key block, KCV algorithm) for a row; rehearsal rows are wrapped here."""
        if row.key is None or row.key_usage is None or row.key_algorithm is None:
            block = str(row.key_block)
            return block, header_kcv_algorithm(describe_key_block(block))
        if self.options.kek is None:
            raise InputError("a key_hex row needs the KEK's cleartext (--kek-file)")
        spec = WorkingKeySpec(
            key_usage=row.key_usage,
            key_algorithm=row.key_algorithm,
            mode_of_use=row.mode_of_use,
            exportability=row.exportability or "E",
        )
        block = build_working_key_block(self.options.kek, self.kek.key_algorithm, row.key, spec)
        return block, kcv_algorithm_for(row.key_algorithm)

    def import_row(self, row: ManifestRow, expected_kcv: str | None) -> tuple[str, str]:
        """ImportKey one row and log it; returns (key ARN, KCV)."""
        from apckx.crypto.kcv import kcv_matches

        key_block, kcv_algorithm = self.key_block_for(row)
        tags = {**dict(row.tags), CEREMONY_TAG: self.ceremony_id, ALIAS_TAG: row.alias}
        digest = block_digest(key_block)
        self.log.write("importing", alias=row.alias, line=row.line, block_sha256=digest)
        key = self.call(
            lambda: self.service.import_key(
                key_material={
                    "Tr31KeyBlock": {
                        "WrappingKeyIdentifier": self.kek.key_arn,
                        "WrappedKeyBlock": key_block,
                    }
                },
                key_check_value_algorithm=kcv_algorithm,
                enabled=self.options.enabled,
                tags=tags,
            )
        )
        key_arn = str(key["KeyArn"])
        kcv = str(key.get("KeyCheckValue", "")).upper()
        self.log.write(
            "key_imported", alias=row.alias, key_arn=key_arn, kcv=kcv, line=row.line,
            block_sha256=digest,
        )  # fmt: skip
        if expected_kcv is not None and not kcv_matches(kcv, expected_kcv):
            raise KcvMismatchError(
                f"APC imported {key_arn} with KCV {kcv}, expected {expected_kcv}; no alias created"
            )
        return key_arn, kcv

    def point_alias(self, row: ManifestRow, key_arn: str, *, exists: bool) -> None:
        if exists:
            self.call(lambda: self.service.update_alias(row.alias, key_arn))
        else:
            self.call(lambda: self.service.create_alias(row.alias, key_arn))
        self.log.write("alias_created", alias=row.alias, key_arn=key_arn, created=not exists)

    def migrate_row(
        self,
        row: ManifestRow,
        aliases: Mapping[str, str | None],
        earlier: _Earlier | None,
    ) -> KeyOutcome:
        earlier = self.earlier_for(row, earlier)
        if earlier is not None and not self.trusted(earlier, row.alias):
            earlier = None  # local state alone never decides which key an alias names
        expected = self.expected_kcv(row, earlier)
        alias_exists = row.alias in aliases
        target = aliases.get(row.alias)
        if target:
            if expected is None:
                return KeyOutcome(
                    row.line,
                    row.alias,
                    FAILED_KEY,
                    target,
                    error=f"{row.alias} already exists and there is no KCV to check it "
                    "against: add a kcv column, or pick another alias",
                )
            matches, apc_kcv = self.key_matches(target, expected)
            if matches:
                return KeyOutcome(row.line, row.alias, SKIPPED, target, apc_kcv)
            return KeyOutcome(
                row.line,
                row.alias,
                FAILED_KEY,
                target,
                apc_kcv,
                error=f"{row.alias} already points at {target} with KCV {apc_kcv}, "
                f"expected {expected}",
            )
        if earlier is not None and not earlier.aliased:
            # Imported by an earlier run that stopped before CreateAlias: finish it.
            try:
                matches, apc_kcv = self.key_matches(earlier.key_arn, expected or earlier.kcv)
            except ServiceError as exc:
                if exc.code != "ResourceNotFoundException":
                    raise
                matches, apc_kcv = False, ""
            if matches:
                self.point_alias(row, earlier.key_arn, exists=alias_exists)
                return KeyOutcome(row.line, row.alias, ALIASED, earlier.key_arn, apc_kcv)
        key_arn, kcv = self.import_row(row, expected)
        self.point_alias(row, key_arn, exists=alias_exists)
        return KeyOutcome(row.line, row.alias, IMPORTED, key_arn, kcv)

    def run_row(
        self, row: ManifestRow, aliases: Mapping[str, str | None], earlier: _Earlier | None
    ) -> KeyOutcome:
        try:
            outcome = self.migrate_row(row, aliases, earlier)
            if self.options.check_key is not None and outcome.status != FAILED_KEY:
                # Paced by the same bucket as every other call.
                outcome = replace(
                    outcome, check=self.options.check_key(row, outcome, self.bucket.acquire)
                )
        except ApckxError as exc:
            outcome = KeyOutcome(row.line, row.alias, FAILED_KEY, error=str(exc))
            # A dropped connection or a 5xx leaves it open whether ImportKey happened: a
            # re-run then looks for the key by its tags instead of importing it again.
            ambiguous = isinstance(exc, ServiceError) and (
                exc.code in CONNECTION_CODES or exc.code in TRANSIENT_CODES
            )
            self.log.write(
                "key_failed", alias=row.alias, line=row.line, error=str(exc), ambiguous=ambiguous
            )
        with self.lock:
            if outcome.status == FAILED_KEY:
                self.failed += 1
            else:
                self.done += 1
            snapshot = Progress(
                len(self.manifest.rows), self.done, self.failed, time.monotonic() - self.started
            )
        if self.on_progress is not None:
            self.on_progress(snapshot)
        return outcome

    def run(self, earlier: EarlierRuns) -> list[KeyOutcome]:
        aliases = self.list_aliases()
        if (
            any(aliases.get(row.alias) for row in self.manifest.rows)
            or earlier.keys
            or (earlier.unconfirmed)
        ):
            self.index_keys()
        self.recover_unconfirmed(earlier, aliases)
        rows = self.manifest.rows
        outcomes: dict[int, KeyOutcome] = {}
        pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.options.workers, thread_name_prefix="apckx-migrate"
        )
        try:
            futures = {
                pool.submit(self.run_row, row, aliases, earlier.keys.get(row.alias)): index
                for index, row in enumerate(rows)
            }
            for future in concurrent.futures.as_completed(futures):
                outcomes[futures[future]] = future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return [outcomes[i] for i in range(len(rows))]


def _journal_resources(journal: Journal, log_path: Path) -> None:
    """Copy this run's keys and aliases into the journal in one save, for ``apckx cleanup``.

    (After a crash they are in the key log only; a re-run completes the migration.)
    """
    resources: list[Resource] = []
    known = {(r.kind, r.arn, r.alias) for r in journal.resources}
    for event in KeyLog.read(log_path):
        kind, alias, arn = event.get("event"), event.get("alias"), event.get("key_arn")
        if not isinstance(arn, str):
            continue
        if kind == "key_imported":
            resources.append(Resource(kind="key", role="working", arn=arn, note=str(alias)))
        elif kind == "alias_created" and isinstance(alias, str):
            resources.append(Resource(kind="alias", role="working", arn=arn, alias=alias))
    fresh: list[Resource] = []
    for resource in resources:
        identity = (resource.kind, resource.arn, resource.alias)
        if identity not in known:
            known.add(identity)
            fresh.append(resource)
    resources = fresh
    if resources:
        journal.record_resources(resources)


def _write_failure(journal: Journal, runner: _Runner, exc: OSError) -> LocalWriteError:
    """APC imported keys, the local state could not follow: one line saying so."""
    cid = journal.ceremony_id
    return LocalWriteError(
        f"APC has {runner.done} key(s) of ceremony {cid} in place, but writing the journal or "
        f"key log in {journal.path.parent} failed ({exc.strerror or type(exc).__name__}); "
        f"they are tagged {CEREMONY_TAG}={cid}: free the disk and re-run the same command "
        f"(it resumes), or roll back with apckx cleanup --ceremony {cid}"
    )


def open_for_resume(journal_dir: Path, ceremony_id: str, kek_arn: str, digest: str) -> Journal:
    """The migration ``ceremony_id`` to continue: same KEK, same manifest, not finished."""
    journal = Journal.load(journal_dir, ceremony_id)
    parameters = journal.parameters
    if journal.kind != JOURNAL_KIND:
        raise InputError(f"ceremony {ceremony_id} is not a migration (it is {journal.kind!r})")
    if journal.status in (COMPLETE, ROLLED_BACK):
        raise InputError(f"ceremony {ceremony_id} is {journal.status}: nothing to resume; "
                         "re-run without --resume for a new one")  # fmt: skip
    if parameters.get("kek_arn") != kek_arn:
        raise InputError(f"ceremony {ceremony_id} ran under the KEK {parameters.get('kek_arn')}, "
                         f"not {kek_arn}")  # fmt: skip
    if parameters.get("manifest_digest") not in (None, digest):
        raise InputError(
            f"ceremony {ceremony_id} migrated another manifest "
            f"({parameters.get('manifest')}): resume it with the same rows"
        )
    return journal


def lookup_kek(service: ApcService, options: MigrationOptions) -> KekInfo:
    """The KEK as APC has it; with its cleartext given, checked against APC's KCV."""
    if options.kek is not None:
        return verify_kek(service, options.kek_id, options.kek)
    key = service.get_key(options.kek_id)
    attributes = key["KeyAttributes"]
    return KekInfo(
        str(key["KeyArn"]),
        str(attributes["KeyAlgorithm"]),
        str(key.get("KeyCheckValue", "")),
        str(key.get("KeyCheckValueAlgorithm", "")),
    )


def run_migration(
    service: ApcService,
    manifest: Manifest,
    options: MigrationOptions,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    on_start: Callable[[Journal, KekInfo], None] | None = None,
) -> MigrationResult:
    """Migrate every row of ``manifest``; one key's failure is an outcome, not an exception.

    Raises before any ImportKey when the KEK or a row is unusable (ManifestError lists lines).
    """
    options.check()
    started = time.monotonic()
    # The KEK lookup is paced and retried like every other call (the client has no retries).
    kek = call_with_backoff(
        lambda: lookup_kek(service, options),
        TokenBucket(options.rate, options.burst),
        max_attempts=options.max_attempts,
        base=options.backoff_base,
        idempotent=True,
    )
    _check_rows_against_kek(manifest, kek, options.kek is not None)
    earlier = read_earlier_runs(options.journal_dir, kek.key_arn)
    digest = manifest_digest(manifest)
    parameters = {
        "manifest": manifest.path,
        "manifest_digest": digest,
        "keys": len(manifest.rows),
        "kek_id": options.kek_id,
        "kek_arn": kek.key_arn,
        "kek_kcv": kek.kcv,
        "rate": options.rate,
        "workers": options.workers,
    }
    resume_id = options.resume_id or find_resumable(options.journal_dir, kek.key_arn, digest)
    if resume_id is not None:
        journal = open_for_resume(options.journal_dir, resume_id, kek.key_arn, digest)
        log = KeyLog(key_log_path(journal.path))  # refused while another process runs it
        try:
            journal.restart(parameters=parameters)
        except BaseException:
            log.close()
            raise
    else:
        journal = Journal.create(options.journal_dir, JOURNAL_KIND, parameters=parameters)
        log = KeyLog(key_log_path(journal.path))
    journal.set_output(key_log=str(log.path))
    if on_start is not None:
        on_start(journal, kek)
    runner = _Runner(service, manifest, options, journal.ceremony_id, log, kek, on_progress)
    try:
        outcomes = runner.run(earlier)
    except OSError as exc:  # the key log could not be written: APC went on regardless
        log.close()
        raise _write_failure(journal, runner, exc) from None
    except BaseException as exc:
        log.close()
        try:
            _journal_resources(journal, log.path)
            journal.finish(FAILED, error=f"interrupted: {type(exc).__name__}")
        except OSError as write_failure:
            raise _write_failure(journal, runner, write_failure) from None
        raise
    log.close()
    result = MigrationResult(
        ceremony_id=journal.ceremony_id,
        journal_path=journal.path,
        kek_arn=kek.key_arn,
        outcomes=outcomes,
        elapsed=time.monotonic() - started,
        stats=runner.stats,
    )
    try:
        _journal_resources(journal, log.path)
        journal.set_output(
            imported=result.count(IMPORTED) + result.count(ALIASED),
            skipped=result.count(SKIPPED),
            failed=result.failed,
            calls=runner.stats.calls,
            throttled=runner.stats.throttled,
            keys=[o.to_record() for o in outcomes],
        )
        journal.finish(
            COMPLETE if result.ok else FAILED,
            error=None if result.ok else f"{result.failed} key(s) failed",
        )
    except OSError as exc:
        raise _write_failure(journal, runner, exc) from None
    return result
