"""Forward secrecy and the debug log (issue 13 item 16), end to end against the emulator.

Each ceremony uses a fresh ECDH leaf signed by the sender CA (the only sender party in APC,
so no extra call); its private key is never written; import and export over ECDH both work
with it. ``--debug`` logs the calls and bodies but no wrapped key block.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from apckx._cli import main
from apckx.cli._output import reset_debug_logging
from apckx.emulator.server import EmulatorConfig, start_emulator

KEK_HEX = "5D2E8A7B19C4F6033E0B7A6C5D4E3F2A1B0C9D8E7F6A5B4C3D2E1F0A9B8C7D6E"
WORK_HEX = "2B4D6F8A1C3E5A7C9E1B3D5F7A9C2E4B"
HEADER_RE = re.compile(  # a TR-31 header: version, length, usage, algorithm, mode, ...
    r"[ABCD][0-9]{4}[0-9A-Z]{2}[A-Z][0-9A-Z]{3}[ENS][0-9]{2}[0-9A-Z]{2}"
)
TOKEN_RE = re.compile(r"[0-9A-Za-z]{48,}")  # a header and at least 32 hex of key and MAC


def wrapped_key_blocks(text: str) -> list[str]:
    """Every run of text that is a whole TR-31 key block: a header whose length field is the
    length of the rest of the run, ending in hex. A SHA-256 fingerprint or a KCV is hex too,
    and may look like a header, but its "length" field does not match its length."""
    found = []
    for token in TOKEN_RE.finditer(text):
        run = token.group()
        for start in range(len(run) - 47):
            tail = run[start:]
            if (HEADER_RE.match(tail) and int(tail[1:5]) == len(tail)
                    and re.fullmatch(r"[0-9A-F]{32}", tail[-32:])):  # fmt: skip
                found.append(tail)
    return found


def test_the_block_detector_tells_a_key_block_from_a_fingerprint() -> None:
    fingerprint = "C63646CF8E8E99FF" + "0123456789ABCDEF" * 3  # once matched as a "header"
    assert HEADER_RE.match(fingerprint)
    assert not wrapped_key_blocks(f"sender_ca_fingerprint: {fingerprint}")
    block = "D0112D0AB00E0000" + "A1" * 48  # header, then 96 hex of key and MAC
    assert wrapped_key_blocks(f"WrappedKeyMaterial={block}&x") == [block]
    assert not wrapped_key_blocks(block[:-2])  # one byte short: its length field says otherwise


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv)
    finally:
        reset_debug_logging()
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for var in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(var)
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                        "FS_KEK": KEK_HEX, "FS_WORK": WORK_HEX}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    emulator = start_emulator(EmulatorConfig())
    try:
        yield emulator.url
    finally:
        emulator.stop()


def test_a_fresh_leaf_per_ceremony_never_on_disk(url: str) -> None:
    aws = ["--region", "us-east-1", "--endpoint-url", url]
    results = []
    for alias in ("alias/kek-a", "alias/kek-b"):
        rc, out, err = run(["import-kek", *aws, "--kek-env", "FS_KEK", "--alias", alias,
                            "--output", "json"])  # fmt: skip
        assert rc == 0, err
        results.append(json.loads(out))
    first, second = results
    assert first["sender_ca_fingerprint"] == second["sender_ca_fingerprint"]
    assert first["sender_leaf_fingerprint"] != second["sender_leaf_fingerprint"]
    assert second["root_reused"]  # the CA in APC serves every leaf: no extra call
    names = {p.name for p in Path("certs").iterdir()}
    assert {"sender_ca_cert.pem", "sender_ca_key.pem"} <= names
    assert not names & {"sender_key.pem", "sender_cert.pem"}  # no leaf on disk
    assert not any(p.suffix == ".pem" for p in Path("certs").iterdir() if "ca" not in p.name)
    # Export over ECDH derives with yet another ephemeral leaf, and still verifies.
    rc, out, err = run(["import-key", *aws, "--kek-id", "alias/kek-a", "--kek-env", "FS_KEK",
                        "--key-env", "FS_WORK", "--key-usage", "D0", "--key-algorithm",
                        "AES_128", "--alias", "alias/work"])  # fmt: skip
    assert rc == 0, err
    rc, out, err = run(["export-key", *aws, "--key", "alias/work", "--via", "ecdh",
                        "--out", "work.tr31", "--output", "json"])  # fmt: skip
    assert rc == 0, err
    assert not Path("certs/sender_key.pem").exists()


def test_debug_log_holds_no_wrapped_key_block(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    aws = ["--region", "us-east-1", "--endpoint-url", url, "--debug"]
    rc, _, err = run(["import-kek", *aws, "--kek-env", "FS_KEK", "--alias", "alias/kek"])
    assert rc == 0, err
    rc, _, err2 = run(["import-key", *aws, "--kek-id", "alias/kek", "--kek-env", "FS_KEK",
                       "--key-env", "FS_WORK", "--key-usage", "D0", "--key-algorithm",
                       "AES_128", "--alias", "alias/work"])  # fmt: skip
    assert rc == 0, err2
    rc, _, err3 = run(["export-key", *aws, "--key", "alias/work", "--kek-id", "alias/kek",
                       "--kek-env", "FS_KEK", "--out", "work.tr31"])  # fmt: skip
    assert rc == 0, err3
    block = Path("work.tr31").read_text().strip()
    logged = err + err2 + err3 + caplog.text
    assert "DiffieHellmanTr31KeyBlock" in logged and "ExportKey" in logged  # bodies logged
    assert "<redacted" in logged
    assert block not in logged
    assert wrapped_key_blocks(block) == [block]  # the detector finds a real block ...
    assert wrapped_key_blocks(f'"KeyMaterial": "{block}"') == [block]
    assert not wrapped_key_blocks(logged), wrapped_key_blocks(logged)  # ... and none is logged
