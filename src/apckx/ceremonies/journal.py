"""The ceremony journal: ``<journal_dir>/<id>.json``, so nothing created is ever lost.

Every resource is recorded the moment APC confirms it, and the file is rewritten atomically
(temp file, fsync, ``os.replace``, directory fsync), so a crash leaves either the previous or
the next complete journal. What is written at once: the journal's creation, every resource,
outputs, a restart, the final status and any step a caller records with :meth:`Journal.step`.
Steps that create nothing and only log progress (a certificate verified, a key block wrapped,
a KCV matched) can be recorded with :meth:`Journal.note_step`: kept in memory and written with
the next save, so a ceremony pays two fsyncs per resource, not per line of history. A crash
can lose such a note, never a resource, an output or a status.

Saves from concurrent steps share writes (group commit): a save returns once the file holds
every change made before it, and a write already in progress is not waited on twice: when
two steps' resources are confirmed while a write is on its way to the disk, the next write
carries both. So every resource is on disk before its caller goes on (to the call that
depends on it, or to reporting success), and each write is still one temp file, fsync,
``os.replace`` and directory fsync.

The journal holds ARNs, aliases, names, KCVs and step states: never key material.
``apckx cleanup --ceremony <id>`` and ``--resume <id>`` read it.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import stat
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apckx.ceremonies import defaults
from apckx.errors import ApckxError, ConfigError, InputError

DEFAULT_JOURNAL_DIR = defaults.DEFAULT_JOURNAL_DIR  # in ceremonies/defaults.py, for --help
DEFAULT_RECORDS_DIR = defaults.DEFAULT_RECORDS_DIR

CEREMONY_ID_RE = re.compile(r"^[a-z][a-z0-9-]{2,24}-\d{8}T\d{6}Z-[0-9a-f]{8}$")

# statuses
RUNNING = "running"
FAILED = "failed"
COMPLETE = "complete"
ROLLED_BACK = "rolled_back"


def new_ceremony_id(kind: str, *, now: datetime | None = None) -> str:
    """``<kind>-YYYYMMDDTHHMMSSZ-<8 hex>``: sortable, unique, valid as an APC tag value."""
    moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{kind}-{moment}-{secrets.token_hex(4)}"


def check_ceremony_id(ceremony_id: str) -> str:
    if not CEREMONY_ID_RE.match(ceremony_id):
        raise InputError(
            f"not a ceremony id: {ceremony_id[:80]!r} (expected e.g. kek-20260101T120000Z-1a2b3c4d)"
        )
    return ceremony_id


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- private local state: who may have written what we trust -------------------------------
def ensure_private_dir(path: Path, *, what: str = "directory", trusted: bool = True) -> Path:
    """Create ``path`` (and each missing parent) mode 0700 whatever the umask; an existing
    one must be a directory this user owns that group and others cannot write.

    ConfigError (exit 2) otherwise: journals and records decide what resume and cleanup
    trust, so another user must not be able to plant or swap them.
    """
    path = Path(path)
    missing: list[Path] = []
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
            os.chmod(directory, 0o700)  # the umask may have taken bits off, or added none
        except FileExistsError:
            pass
        except OSError as exc:
            raise ConfigError(f"cannot create the {what} {path}: {exc.strerror}") from None
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"cannot use the {what} {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"the {what} {path} is not a directory")
    if trusted:  # read back and believed (journals); records are only written
        check_private_owner(path, info, what=what)
    return path


def check_private_owner(path: Path, info: os.stat_result, *, what: str) -> None:
    """Refuse a file or directory another user owns or that group/others can write."""
    if info.st_uid != os.geteuid():
        raise ConfigError(
            f"refusing the {what} {path}: it is owned by uid {info.st_uid}, not by you "
            f"(uid {os.geteuid()}); another user could have planted it"
        )
    if info.st_mode & 0o022:
        raise ConfigError(
            f"refusing the {what} {path}: group or others can write it "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); run chmod go-w {path} if you trust it"
        )


def read_private_text(path: Path, *, what: str, limit: int = 64 * 1024 * 1024) -> str:
    """Read ``path`` through one descriptor (no symlink followed), refusing it when another
    user owns it or group/others can write it. FileNotFoundError passes through."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"refusing the {what} {path}: it is a symbolic link") from None
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"refusing the {what} {path}: not a regular file")
        check_private_owner(path, info, what=what)
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ConfigError(f"refusing the {what} {path}: larger than {limit} bytes")
    return data.decode("utf-8", errors="replace")


def check_writable_dir(
    path: Path, *, what: str, create: bool = True, trusted: bool = True
) -> Path:
    """Before the first API call: ``path`` exists (created 0700 if not), is private and
    takes a file (a probe file is created and removed: root ignores mode bits).

    ``create=False``: a missing directory is not created, only its nearest existing
    ancestor checked (a directory one can write in)."""
    if not create and not os.path.lexists(path):
        ancestor = Path(path).parent
        while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise ConfigError(f"cannot create the {what} {path}: {ancestor} is not a directory")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise ConfigError(f"cannot create the {what} {path}: no write permission in "
                              f"{ancestor}")  # fmt: skip
        return path
    ensure_private_dir(path, what=what, trusted=trusted)
    try:
        fd, probe = tempfile.mkstemp(prefix=".apckx-probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"cannot write in the {what} {path}: {exc.strerror}") from None
    return path


def write_json_atomic(path: Path, data: Any, *, mode: int = 0o600) -> None:
    """Write JSON to ``path`` atomically: temp file in the same dir, fsync, rename."""
    if not path.parent.is_dir():
        ensure_private_dir(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename durable too
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


@dataclass
class Resource:
    """A resource the ceremony created or touched."""

    kind: str  # "key" | "alias"
    role: str  # "receiver" | "root" | "kek" | "working" ... (what it is for)
    arn: str | None = None  # the key ARN (for an alias: the key it points to)
    alias: str | None = None  # for an alias resource: its name
    created: bool = True  # False: reused (cleanup leaves it alone)
    at: str = field(default_factory=_now_iso)
    note: str | None = None
    previous: str | None = None  # for an alias moved with --replace: the key it named before

    def to_record(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Resource:
        return cls(
            kind=str(data["kind"]),
            role=str(data.get("role", "")),
            arn=data.get("arn"),
            alias=data.get("alias"),
            created=bool(data.get("created", True)),
            at=str(data.get("at", "")),
            note=data.get("note"),
            previous=data.get("previous"),
        )


class LocalWriteError(ApckxError):
    """APC changed (a key imported, an alias moved) but a local write failed after it: the
    message names what APC now holds, so nothing is lost even though the file is not."""

    exit_code = 1


class Journal:
    """One ceremony's journal. Thread-safe: ceremony steps run concurrently."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self._data = data
        self._lock = threading.RLock()  # guards _data; never held while waiting on a write
        self._write_lock = threading.Lock()  # one write to the file at a time
        self._changes = 0  # changes to _data that must reach the file, numbered
        self._written = 0  # the file holds changes 1.._written

    def _mark_changed(self) -> int:
        """Number a change just made to ``_data`` (call with ``_lock`` held, in the same
        critical section as the change)."""
        self._changes += 1
        return self._changes

    def _write_through(self, wanted: int) -> None:
        """Return once the file holds change ``wanted`` (and every one before it): write the
        journal as it is now, unless a write that began after that change already did. A
        failed write raises here and leaves the changes for the next writer."""
        with self._write_lock:
            if self._written >= wanted:
                return
            with self._lock:
                self._data["updated_at"] = _now_iso()
                holds = self._changes
                snapshot = json.loads(json.dumps(self._data))
            write_json_atomic(self.path, snapshot)
            self._written = holds

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        journal_dir: Path,
        kind: str,
        *,
        parameters: dict[str, Any],
        ceremony_id: str | None = None,
        resumed_from: str | None = None,
    ) -> Journal:
        cid = ceremony_id or new_ceremony_id(kind)
        ensure_private_dir(journal_dir, what="journal directory")
        path = Path(journal_dir) / f"{cid}.json"
        data: dict[str, Any] = {
            "ceremony_id": cid,
            "kind": kind,
            "status": RUNNING,
            "created_at": _now_iso(),
            "updated_at": _now_iso(),
            "resumed_from": resumed_from,
            "parameters": parameters,
            "steps": [],
            "resources": [],
            "outputs": {},
            "error": None,
        }
        journal = cls(path, data)
        try:
            journal.save()
        except OSError as exc:
            raise ConfigError(
                f"cannot write the journal in {journal_dir}: {exc.strerror}"
            ) from None
        return journal

    @classmethod
    def load(cls, journal_dir: Path, ceremony_id: str) -> Journal:
        check_ceremony_id(ceremony_id)
        path = Path(journal_dir) / f"{ceremony_id}.json"
        try:
            check_private_owner(
                Path(journal_dir), os.stat(journal_dir), what="journal directory"
            )
        except FileNotFoundError:
            raise InputError(f"no journal for ceremony {ceremony_id} in {journal_dir}") from None
        except OSError as exc:
            raise InputError(
                f"no journal for ceremony {ceremony_id}: cannot use {journal_dir} "
                f"({exc.strerror})"
            ) from None
        try:
            data = json.loads(read_private_text(path, what="journal"))
        except FileNotFoundError:
            raise InputError(f"no journal for ceremony {ceremony_id} in {journal_dir}") from None
        except ValueError as exc:
            raise InputError(f"cannot read the journal {path}: {exc}") from None
        if not isinstance(data, dict) or data.get("ceremony_id") != ceremony_id:
            raise InputError(f"{path} is not a journal for ceremony {ceremony_id}")
        return cls(path, data)

    # -- accessors --------------------------------------------------------------------------
    @property
    def ceremony_id(self) -> str:
        return str(self._data["ceremony_id"])

    @property
    def kind(self) -> str:
        return str(self._data["kind"])

    @property
    def status(self) -> str:
        return str(self._data["status"])

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self._data.get("parameters") or {})

    @property
    def outputs(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._data.get("outputs") or {})

    @property
    def resources(self) -> list[Resource]:
        with self._lock:
            return [Resource.from_record(r) for r in self._data.get("resources", [])]

    @property
    def steps(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(s) for s in self._data.get("steps", [])]

    def to_record(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._data))  # type: ignore[no-any-return]

    def find(self, *, kind: str, role: str) -> Resource | None:
        """The latest resource of that kind and role, if any."""
        for resource in reversed(self.resources):
            if resource.kind == kind and resource.role == role:
                return resource
        return None

    # -- updates (each saved at once, but note_step) --------------------------------------
    def save(self) -> None:
        """Write the journal durably (shared with concurrent saves, see the module). Do not
        call it holding ``_lock``."""
        with self._lock:
            wanted = self._mark_changed()
        self._write_through(wanted)

    def record_resource(self, resource: Resource) -> None:
        with self._lock:
            self._data["resources"].append(resource.to_record())
            wanted = self._mark_changed()
        self._write_through(wanted)

    def record_resources(self, resources: Iterable[Resource]) -> None:
        """Record many resources with one save (a migration's keys, batched)."""
        with self._lock:
            self._data["resources"].extend(r.to_record() for r in resources)
            wanted = self._mark_changed()
        self._write_through(wanted)

    def step(self, name: str, status: str = "done", **details: Any) -> None:
        """Record a step's outcome (``done``, ``failed``, ``skipped``...), written at once."""
        entry = {"step": name, "status": status, "at": _now_iso(), **details}
        with self._lock:
            self._data["steps"].append(entry)
            wanted = self._mark_changed()
        self._write_through(wanted)

    def note_step(self, name: str, status: str = "done", **details: Any) -> None:
        """Record a step that created nothing in memory only: it is written with the next
        save (a resource, outputs, the finish). A ``failed`` step is written at once."""
        entry = {"step": name, "status": status, "at": _now_iso(), **details}
        with self._lock:
            self._data["steps"].append(entry)
            wanted = self._mark_changed() if status == "failed" else 0
        if wanted:
            self._write_through(wanted)

    def set_output(self, **values: Any) -> None:
        with self._lock:
            self._data["outputs"].update(values)
            wanted = self._mark_changed()
        self._write_through(wanted)

    def restart(self, *, parameters: dict[str, Any]) -> None:
        """Mark a failed ceremony as running again (``--resume``); history is kept."""
        with self._lock:
            self._data["status"] = RUNNING
            self._data["error"] = None
            self._data.setdefault("runs", []).append(
                {"resumed_at": _now_iso(), "parameters": parameters}
            )
            self._data["steps"].append({"step": "resume", "status": "done", "at": _now_iso()})
            wanted = self._mark_changed()
        self._write_through(wanted)

    def finish(
        self,
        status: str,
        *,
        error: str | None = None,
        outputs: dict[str, Any] | None = None,
        resources: Iterable[Resource] = (),
    ) -> None:
        """Write the final status, with ``outputs`` and the last ``resources`` (a resource APC
        has just confirmed) in the same save."""
        with self._lock:
            self._data["resources"].extend(r.to_record() for r in resources)
            if outputs:
                self._data["outputs"].update(outputs)
            self._data["status"] = status
            self._data["error"] = error
            self._data["finished_at"] = _now_iso()
            wanted = self._mark_changed()
        self._write_through(wanted)


def list_journals(journal_dir: Path) -> list[Path]:
    """Journal files, oldest first (ids sort by time)."""
    try:
        return sorted(p for p in Path(journal_dir).glob("*.json") if not p.name.startswith("."))
    except OSError:
        return []


def monotonic_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 1)


def write_ceremony_record(
    records_dir: Path,
    journal: Journal,
    *,
    api_calls: list[dict[str, Any]],
    details: dict[str, Any] | None = None,
) -> Path:
    """The audit record ``<records_dir>/<id>.json``: who, when, where, parameters, ARNs,
    KCVs, fingerprints and every API call with its timing. Never key material."""
    import getpass
    import socket

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    data = journal.to_record()
    record = {
        "ceremony_id": journal.ceremony_id,
        "kind": journal.kind,
        "status": data.get("status"),
        "who": who,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "recorded_at": _now_iso(),
        "started_at": data.get("created_at"),
        "finished_at": data.get("finished_at"),
        "parameters": data.get("parameters"),
        "details": details or {},
        "resources": data.get("resources"),
        "steps": data.get("steps"),
        "outputs": data.get("outputs"),
        "error": data.get("error"),
        "api_calls": api_calls,
    }
    path = Path(records_dir) / f"{journal.ceremony_id}.json"
    try:
        ensure_private_dir(records_dir, what="records directory", trusted=False)
        write_json_atomic(path, record)
    except OSError as exc:
        raise ConfigError(f"cannot write the record in {records_dir}: {exc.strerror}") from None
    return path


def key_log_path(journal_path: Path) -> Path:
    """A migration's per-key log, ``<id>.keys.jsonl`` beside its journal."""
    return journal_path.with_name(journal_path.name.removesuffix(".json") + ".keys.jsonl")


def read_key_log(path: Path) -> list[dict[str, Any]]:
    """A key log's events (a torn last line is skipped); [] when there is none. A log
    another user owns or can write is refused (ConfigError)."""
    try:
        text = read_private_text(path, what="key log")
    except FileNotFoundError:
        return []
    events: list[dict[str, Any]] = []
    for raw in text.splitlines():
        try:
            event = json.loads(raw)
        except ValueError:
            continue  # torn write
        if isinstance(event, dict):
            events.append(event)
    return events


_GONE_OUTCOMES = (
    "deleted",
    "deletion scheduled",
    "already gone",
    "already DELETE_",
    "pointed back",
    "skipped: now points",
)


def list_created_resources(journal: Journal) -> tuple[set[str], set[str]]:
    """(key ARNs, alias names) this ceremony created, from its journal and its key log."""
    keys = {r.arn for r in journal.resources if r.kind == "key" and r.created and r.arn}
    aliases = {r.alias for r in journal.resources if r.kind == "alias" and r.created and r.alias}
    for event in read_key_log(key_log_path(journal.path)):
        arn, alias = event.get("key_arn"), event.get("alias")
        if event.get("event") == "key_imported" and isinstance(arn, str):
            keys.add(arn)
        elif event.get("event") == "alias_created" and isinstance(alias, str):
            aliases.add(alias)
    return keys, aliases


def summarize_journal(journal: Journal) -> dict[str, Any]:
    """One line of ``apckx ceremonies``: id, kind, started, status and the resources still
    live as far as local state knows (created, minus what a cleanup removed)."""
    keys, aliases = list_created_resources(journal)
    removed: set[str] = set()
    for step in journal.steps:
        if step.get("step") != "cleanup":
            continue
        for action in step.get("actions") or []:
            outcome = str(action.get("outcome") or "") if isinstance(action, dict) else ""
            if outcome.startswith(_GONE_OUTCOMES):
                removed.add(str(action.get("target")))
    pending: set[str] = set()  # ImportKey sent, answer never logged (a crash): maybe live
    for event in read_key_log(key_log_path(journal.path)):
        alias, kind = event.get("alias"), event.get("event")
        if not isinstance(alias, str):
            continue
        if kind == "importing":
            pending.add(alias)
        elif kind == "key_imported" or (kind == "key_failed" and not event.get("ambiguous")):
            pending.discard(alias)
    data = journal.to_record()
    finished = any(s.get("step") == "cleanup" for s in journal.steps)
    return {
        "ceremony_id": journal.ceremony_id,
        "kind": journal.kind,
        "started": data.get("created_at"),
        "finished": data.get("finished_at"),
        "status": journal.status,
        "resumed": len(data.get("runs") or []),
        "keys_live": len(keys - removed),
        "aliases_live": len(aliases - removed),
        "resources_live": len(keys - removed) + len(aliases - removed),
        # imports whose answer was never logged: cleanup finds them by tag
        "unconfirmed": 0 if finished else len(pending),
    }
