"""Bounded reads (issue 13 item 8): ``@/dev/zero``, FIFOs and huge manifests are refused with a
clear message, never read without limit. Each command runs in a child process under a 1 GiB
address-space cap with a timeout: an unbounded read dies of MemoryError (a traceback), a FIFO
with no writer blocks until the timeout. Both fail these tests; a bounded read passes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from apckx.ceremonies import manifest
from apckx.errors import InputError

TIMEOUT = 30
MEMORY_CAP = 1 << 30
AWS = ["--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9"]


def run_capped(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_CAP}, {MEMORY_CAP}))
        from apckx._cli import main
        sys.exit(main({argv!r}))
        """
    )
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
        timeout=TIMEOUT, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


CASES = {
    "tr31 inspect @FILE": ["tr31", "inspect", "@{path}"],
    "import-key --key-block @FILE": ["import-key", "--kek-id", "alias/k", "--key-block",
                                     "@{path}", *AWS],
    "kcv --key-file": ["kcv", "--key-file", "{path}"],
    "import-kek --kek-file": ["import-kek", "--kek-file", "{path}", *AWS],
    "migrate MANIFEST": ["migrate", "{path}", "--kek-id", "alias/k", *AWS],
}  # fmt: skip


@pytest.mark.parametrize("source", ["/dev/zero", "fifo"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_device_or_fifo_is_refused_in_one_line(
    case: str, source: str, fifo: Path, tmp_path: Path
) -> None:
    path = str(fifo) if source == "fifo" else source
    argv = [arg.format(path=path) for arg in CASES[case]]
    done = run_capped(argv, tmp_path)
    assert done.returncode == 2, done.stderr[-600:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("apckx: error")]
    assert len(errors) == 1 and "not a regular file" in errors[0], done.stderr


def test_a_large_file_is_refused_after_limit_plus_one_bytes(tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    with big.open("wb") as handle:  # sparse: st_size says 2 GiB, nothing on disk
        handle.truncate(2 << 30)
    done = run_capped(["migrate", str(big), "--kek-id", "alias/k", *AWS], tmp_path)
    assert done.returncode == 2 and "too large" in done.stderr, done.stderr[-600:]


def test_manifest_rows_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifest, "MAX_MANIFEST_ROWS", 3)
    rows = "".join(
        f"alias/k{i},,{'2B7E151628AED2A6ABF7158809CF4F3C'},D0,AES_128\n" for i in range(5)
    )
    with pytest.raises(manifest.ManifestError, match="more than 3 rows: split the manifest"):
        manifest.parse_manifest_text("alias,key_block,key_hex,key_usage,key_algorithm\n" + rows,
                                     "m.csv")  # fmt: skip


def test_manifest_size_is_capped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(manifest, "MAX_MANIFEST_BYTES", 100)
    path = tmp_path / "m.csv"
    path.write_text("alias,key_block\n" + "alias/a,\n" * 20)
    with pytest.raises(InputError, match="too large"):
        manifest.load_manifest(path)
