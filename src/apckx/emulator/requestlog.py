"""The emulator's request log: one JSON line per request, and helpers to read it.

Each line holds ``request_id``, ``operation``, ``start`` and ``end`` (epoch seconds, floats;
``end`` is when the answer was ready, and the line is written before the answer is sent),
``status`` (the HTTP status, or 0 when the connection was reset without an answer) and
``error`` (the AWS error code, or null) and ``path`` (the request's path, as sent, also for
garbled requests and unknown paths; null when there was no request line). Bodies are never
logged, so no key material can reach the file. Lines are flushed one by one, so a benchmark
can read the file while the emulator runs and count how many calls a ceremony makes, and how
many of them in sequence.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from apckx.emulator.files import restrict_file_mode
from apckx.errors import ConfigError, InputError


@dataclass(frozen=True)
class RequestLogEntry:
    request_id: str
    operation: str
    start: float
    end: float
    status: int
    error: str | None = None
    path: str | None = None


class RequestLog:
    """Appends entries to a JSON-lines file; safe to share between handler threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # 0600 (created so, or narrowed if it existed wider): the log names every call made.
        restrict_file_mode(self.path, what="request log")
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
            self._file: IO[str] = os.fdopen(descriptor, "a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot open request log {self.path}: {exc.strerror}") from None

    def write(self, entry: RequestLogEntry) -> None:
        line = json.dumps(asdict(entry), separators=(",", ":"))
        with self._lock:
            if self._file.closed:
                return
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_request_log(path: Path | str) -> list[RequestLogEntry]:
    """Parse a request log file; raises :class:`InputError` naming the bad line."""
    entries: list[RequestLogEntry] = []
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                fields = json.loads(line)
                entries.append(
                    RequestLogEntry(
                        request_id=str(fields["request_id"]),
                        operation=str(fields["operation"]),
                        start=float(fields["start"]),
                        end=float(fields["end"]),
                        status=int(fields["status"]),
                        error=None if fields.get("error") is None else str(fields["error"]),
                        path=None if fields.get("path") is None else str(fields["path"]),
                    )
                )
            except (ValueError, KeyError, TypeError):
                raise InputError(f"{path}: line {number} is not a request log entry") from None
    return entries


def _overlap_groups(entries: Iterable[RequestLogEntry]) -> list[list[RequestLogEntry]]:
    """Groups of calls whose [start, end] intervals overlap (transitively), in time order."""
    groups: list[list[RequestLogEntry]] = []
    group_end = float("-inf")
    for entry in sorted(entries, key=lambda e: (e.start, e.end)):
        if groups and entry.start < group_end:
            groups[-1].append(entry)
            group_end = max(group_end, entry.end)
        else:
            groups.append([entry])
            group_end = entry.end
    return groups


def sequential_stages(entries: Sequence[RequestLogEntry]) -> int:
    """How many stages the calls ran in: the number of groups of overlapping calls.

    Calls made one after another give one stage each; calls made in parallel share one.

    >>> e = lambda s, t: RequestLogEntry("r", "GetKey", s, t, 200)
    >>> sequential_stages([e(0.0, 1.0), e(0.5, 1.5), e(2.0, 3.0)])
    2
    """
    return len(_overlap_groups(entries))


def max_concurrency(entries: Sequence[RequestLogEntry]) -> int:
    """The largest number of calls in flight at the same instant.

    >>> e = lambda s, t: RequestLogEntry("r", "GetKey", s, t, 200)
    >>> max_concurrency([e(0.0, 1.0), e(0.5, 1.5), e(0.6, 0.7), e(2.0, 3.0)])
    3
    """
    # Sweep over interval edges; an end at the same instant as a start closes first.
    edges = sorted(
        [(entry.start, 1) for entry in entries] + [(entry.end, -1) for entry in entries],
        key=lambda edge: (edge[0], edge[1]),
    )
    in_flight = peak = 0
    for _, delta in edges:
        in_flight += delta
        peak = max(peak, in_flight)
    return peak
