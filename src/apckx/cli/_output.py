"""Shared printing helpers for the sub-commands: JSON, aligned text, debug logging, records.

stdout carries the result (text or JSON) and nothing else; progress, warnings and debug logs
go to stderr. None of these helpers is ever handed key material.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

_DEBUG_FORMAT = "%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"


def print_json(data: Any, *, stream: TextIO | None = None) -> None:
    print(json.dumps(data, indent=2, default=str), file=stream or sys.stdout)


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
