"""The ceremony journal: ``<journal_dir>/<id>.json``, so nothing created is ever lost.

Every resource is recorded the moment APC confirms it, and the file is rewritten atomically
(temp file, fsync, ``os.replace``, directory fsync), so a crash leaves either the previous or
the next complete journal. What is written at once: the journal's creation, every resource,
outputs, a restart, the final status and any step a caller records with :meth:`Journal.step`.
Steps that create nothing and only log progress (a certificate verified, a key block wrapped,
a KCV matched) can be recorded with :meth:`Journal.note_step`: kept in memory and written with
the next save, so a ceremony pays two fsyncs per resource, not per line of history. A crash
can lose such a note, never a resource, an output or a status.

The journal holds ARNs, aliases, names, KCVs and step states: never key material.
``apckx cleanup --ceremony <id>`` and ``--resume <id>`` read it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apckx.errors import ConfigError, InputError

DEFAULT_JOURNAL_DIR = Path(".apckx") / "ceremonies"
DEFAULT_RECORDS_DIR = Path(".apckx") / "records"

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


def write_json_atomic(path: Path, data: Any, *, mode: int = 0o600) -> None:
    """Write JSON to ``path`` atomically: temp file in the same dir, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
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
        )


class Journal:
    """One ceremony's journal. Thread-safe: ceremony steps run concurrently."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self._data = data
        self._lock = threading.RLock()

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
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"no journal for ceremony {ceremony_id} in {journal_dir}") from None
        except (OSError, ValueError) as exc:
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
        with self._lock:
            self._data["updated_at"] = _now_iso()
            write_json_atomic(self.path, self._data)

    def record_resource(self, resource: Resource) -> None:
        with self._lock:
            self._data["resources"].append(resource.to_record())
            self.save()

    def record_resources(self, resources: Iterable[Resource]) -> None:
        """Record many resources with one save (a migration's keys, batched)."""
        with self._lock:
            self._data["resources"].extend(r.to_record() for r in resources)
            self.save()

    def step(self, name: str, status: str = "done", **details: Any) -> None:
        """Record a step's outcome (``done``, ``failed``, ``skipped``...), written at once."""
        with self._lock:
            self.note_step(name, status, **details)
            self.save()

    def note_step(self, name: str, status: str = "done", **details: Any) -> None:
        """Record a step that created nothing in memory only: it is written with the next
        save (a resource, outputs, the finish). A ``failed`` step is written at once."""
        entry = {"step": name, "status": status, "at": _now_iso(), **details}
        with self._lock:
            self._data["steps"].append(entry)
            if status == "failed":
                self.save()

    def set_output(self, **values: Any) -> None:
        with self._lock:
            self._data["outputs"].update(values)
            self.save()

    def restart(self, *, parameters: dict[str, Any]) -> None:
        """Mark a failed ceremony as running again (``--resume``); history is kept."""
        with self._lock:
            self._data["status"] = RUNNING
            self._data["error"] = None
            self._data.setdefault("runs", []).append(
                {"resumed_at": _now_iso(), "parameters": parameters}
            )
            self._data["steps"].append({"step": "resume", "status": "done", "at": _now_iso()})
            self.save()

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
            self.save()


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
        write_json_atomic(path, record)
    except OSError as exc:
        raise ConfigError(f"cannot write the record in {records_dir}: {exc.strerror}") from None
    return path
