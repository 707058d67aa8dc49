"""Driving ``apckx check`` end to end in-process, for the ``tests/cli/test_check*`` modules.

``aws`` is the ``tests/cli/conftest.py`` fixture: an emulator with a KEK under ``alias/kek``
(``aws["kek_file"]``), its request log (``aws["log"]``), a scratch dir (``aws["tmp"]``) and the
endpoint options (``aws["aws"]``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apckx._cli import main


def logged_ops(log: Path) -> list[str]:
    """The operations the emulator's request log holds, in order (none before the first)."""
    if not log.exists():
        return []
    return [json.loads(line).get("operation", "") for line in log.read_text().splitlines()]


def import_key(aws: dict[str, Any], key: bytes, usage: str, algorithm: str, mode: str,
               alias: str) -> None:
    """Import ``key`` under alias/kek with ``apckx import-key`` (it must succeed)."""
    path = aws["tmp"] / f"{alias.split('/')[-1]}.hex"
    path.write_text(key.hex())
    path.chmod(0o600)
    rc = main([
        "import-key", "--kek-id", "alias/kek", "--kek-file", str(aws["kek_file"]),
        "--key-file", str(path), "--key-usage", usage, "--key-algorithm", algorithm,
        "--mode-of-use", mode, "--alias", alias, "--output", "json", *aws["aws"],
    ])  # fmt: skip
    assert rc == 0


def run_check(aws: dict[str, Any], capsys: pytest.CaptureFixture[str], alias: str,
              *extra: str) -> tuple[int, dict[str, Any], str]:
    """``apckx check ALIAS ... --output json``: (exit code, the JSON record or {}, stderr)."""
    capsys.readouterr()
    rc = main(["check", alias, *extra, "--output", "json", *aws["aws"]])
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if out.strip() else {}), err


def outcomes(record: dict[str, Any]) -> dict[str, str]:
    """Each step of a check record -> its status."""
    return {s["check"]: s["status"] for s in record["steps"]}


def key_file(aws: dict[str, Any], key: bytes, name: str = "clear.hex") -> str:
    """``key`` as a 0600 hex file in the scratch dir; returns its path."""
    path = aws["tmp"] / name
    path.write_text(key.hex())
    path.chmod(0o600)
    return str(path)
