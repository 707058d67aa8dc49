"""Shared printing helpers for the sub-commands: JSON, aligned text, debug logging, records.

stdout carries the result (text or JSON) and nothing else; progress, warnings and debug logs
go to stderr. None of these helpers is ever handed key material.

**One JSON vocabulary.** Every command's ``--output json`` goes through :func:`print_json`,
which applies :func:`to_json_vocabulary`: the same field has the same name in every command
(:data:`FIELD_NAMES`: ``alias``, ``key_arn``, ``kcv``, ``kcv_algorithm``, ...), ``status``
is one of :data:`STATUSES`, and every date is ISO 8601 in UTC
(``2026-12-01T23:25:03.120+00:00``). API parameters (a ``parameters`` member) are APC's own
names and are left as they are. The README's "JSON output" section documents it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, TextIO

_DEBUG_FORMAT = "%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"

FIELD_NAMES: dict[str, str] = {
    "key_alias": "alias",
    "alias_name": "alias",
    "AliasName": "alias",
    "arn": "key_arn",
    "KeyArn": "key_arn",
    "key_check_value": "kcv",
    "KeyCheckValue": "kcv",
    "local_key_check_value": "local_kcv",
    "key_check_value_algorithm": "kcv_algorithm",
    "replaced_key_check_value": "replaced_kcv",
    "KeyCheckValueAlgorithm": "kcv_algorithm",
    "KeyState": "key_state",
    # apckx check's record (APC-style names at first)
    "KeyUsage": "key_usage",
    "KeyAlgorithm": "key_algorithm",
    "ComparedWith": "compared_with",
    "Outcome": "status",
    "Steps": "steps",
}
"""Names commands used for the same field, and the one name they all print now."""

STATUSES = (
    "complete", "failed", "running", "rolled_back",  # a ceremony (its journal's status)
    "imported", "aliased", "skipped",  # a key of a migration
    "deleted", "deletion_scheduled", "already_gone", "already_pending", "planned",  # cleanup
    "ok", "mismatch",  # apckx check and its steps (or failed, skipped)
    "done",  # a journal's step (apckx ceremonies show), or failed
    "restored",  # cleanup: an alias --replace had moved, pointed back at its earlier key
)  # fmt: skip
"""Every value ``status`` takes, in every command's JSON."""

_DATE_FIELDS = re.compile(r"^(started|finished|created|updated|deleted|.*_at|.*_date)$")
_CLEANUP_STATUS = (
    ("deletion scheduled", "deletion_scheduled"),
    ("deleted", "deleted"),
    ("already gone", "already_gone"),
    ("already DELETE_PENDING", "already_pending"),
    ("already", "already_pending"),
    ("skipped", "skipped"),
    ("pointed back", "restored"),
)
_ISO_IN_TEXT = re.compile(r"\((\d{4}-\d\d-\d\dT[^)]+)\)")


def iso8601(value: datetime | date | float) -> str:
    """A date as ISO 8601: datetimes in UTC (naive ones are taken as UTC), epoch seconds too."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds")
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    return value.isoformat()


def to_json_vocabulary(data: Any) -> Any:
    """``data`` with the one vocabulary applied (see the module docstring); a new object."""
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for key, value in data.items():
            name = FIELD_NAMES.get(str(key), str(key))
            if name in out and name != key:
                name = str(key)  # both spellings present: keep the original, lose nothing
            if key == "parameters":
                out[name] = _dates_only(value)
            elif _DATE_FIELDS.match(name) and _is_date(value):
                out[name] = iso8601(value)
            else:
                out[name] = to_json_vocabulary(value)
        return _with_status(out)
    if isinstance(data, list | tuple):
        return [to_json_vocabulary(item) for item in data]
    if isinstance(data, datetime | date):
        return iso8601(data)
    return data


def _is_date(value: object) -> bool:
    """A datetime, or epoch seconds (a count or a flag in a date-named field is not one)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value > 1_000_000_000  # after 2001-09-09: no count apckx prints gets there
    return isinstance(value, datetime | date)


def _dates_only(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {k: _dates_only(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_dates_only(v) for v in data]
    return iso8601(data) if isinstance(data, datetime | date) else data


def _with_status(record: dict[str, Any]) -> dict[str, Any]:
    """``status`` as one of :data:`STATUSES`: a cleanup action's from its outcome, a finished
    ceremony's (it has a ``ceremony_id``) ``complete``, or ``failed`` if any part failed."""
    status = record.get("status")
    if isinstance(status, str):
        record["status"] = status.strip().lower().replace(" ", "_").replace("-", "_")
        return record
    outcome = record.get("outcome")
    if "ok" not in record and outcome in ("ok", "mismatch", "failed", "skipped"):
        record["status"] = outcome  # a step of apckx check: its outcome is the enum
        return record
    if record.get("dry_run") is True and isinstance(record.get("actions"), list):
        for action in record["actions"]:  # nothing was called: every action is a plan
            if isinstance(action, dict) and action.get("status") != "failed":
                action["status"] = "skipped" if action.get("skip") else "planned"
    if "ok" in record and (outcome is None or isinstance(outcome, str)):
        record["status"] = _cleanup_status(record["ok"], outcome or "", record)
    elif "ceremony_id" in record and "status" not in record:
        failed = record.get("failed")
        record["status"] = "failed" if isinstance(failed, int) and failed > 0 else "complete"
    return record


def _cleanup_status(ok: object, outcome: str, record: dict[str, Any]) -> str:
    found = _ISO_IN_TEXT.search(outcome)
    if found and "deletion_date" not in record:
        record["deletion_date"] = found.group(1)
    if not ok:
        return "failed"
    if record.get("dry_run") or outcome.startswith(("would", "dry run", "planned")):
        return "planned"
    for prefix, status in _CLEANUP_STATUS:
        if outcome.startswith(prefix):
            return status
    return "planned" if outcome == "" else "failed"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return iso8601(value)
    return str(value)


def print_json(data: Any, *, stream: TextIO | None = None) -> None:
    """A command's result as JSON, in the one vocabulary (:func:`to_json_vocabulary`)."""
    text = json.dumps(to_json_vocabulary(data), indent=2, default=_json_default)
    print(text, file=stream or sys.stdout)


def format_rows(rows: Iterable[tuple[str, Any]], *, indent: str = "  ") -> str:
    """``label  value`` lines with the values aligned; None values are left out."""
    pairs = [(label, value) for label, value in rows if value is not None]
    width = max((len(label) for label, _ in pairs), default=0)
    return "\n".join(f"{indent}{label.ljust(width)}  {value}" for label, value in pairs)


def print_rows(
    title: str, rows: Iterable[tuple[str, Any]], *, stream: TextIO | None = None
) -> None:
    out = stream or sys.stdout
    print(title, file=out)
    print(format_rows(rows), file=out)


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, stream: TextIO | None = None
) -> None:
    out = stream or sys.stdout
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def progress_printer(enabled: bool, *, stream: TextIO | None = None) -> Any:
    """A ``progress(msg)`` callable writing ``apckx: msg`` to stderr, or a no-op."""

    def progress(message: str) -> None:
        if enabled:
            print(f"apckx: {message}", file=stream or sys.stderr, flush=True)

    return progress


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


_HANDLER = _StderrHandler()
_HANDLER.setFormatter(logging.Formatter(_DEBUG_FORMAT))


def setup_debug_logging(debug: bool) -> None:
    """``--debug``: apckx's own log (API calls, timings; never keys) and botocore's debug log
    (as ``aws --debug``; request bodies hold wrapped key blocks only) to stderr."""
    if not debug:
        return
    for name in ("apckx", "botocore"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        if _HANDLER not in logger.handlers:
            logger.addHandler(_HANDLER)


def reset_debug_logging() -> None:
    """Undo :func:`setup_debug_logging` (for embedders and tests running many commands)."""
    for name in ("apckx", "botocore"):
        logger = logging.getLogger(name)
        logger.removeHandler(_HANDLER)
        logger.setLevel(logging.NOTSET)


def mapping_rows(data: Mapping[str, Any], keys: Sequence[str]) -> list[tuple[str, Any]]:
    return [(key, data.get(key)) for key in keys]
