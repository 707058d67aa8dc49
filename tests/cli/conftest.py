"""Fixtures the CLI tests share: quiet loggers, an AWS environment that knows only the
emulator, and an emulator holding a KEK of known cleartext (imported by the real ceremony)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from apckx.ceremonies.import_kek import plan_kek_import, run_kek_import
from apckx.emulator.pytest_plugin import make_emulator_client, start_test_emulator
from apckx.emulator.server import EmulatorConfig, RunningEmulator
from apckx.service.apc import ApcService

EmulatorWithKek = Callable[..., tuple[RunningEmulator, ApcService]]

#: The cleartext of the KEK the ``aws`` fixture imports under ``alias/kek``.
KNOWN_KEK = bytes.fromhex("00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA9876543210")


@pytest.fixture
def quiet_apckx_loggers() -> Iterator[None]:
    """Another test's --debug leaves DEBUG handlers on apckx's loggers; stderr is asserted."""
    saved = []
    for name in ("apckx", "apckx.service"):
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, list(logger.handlers)))
        logger.setLevel(logging.WARNING)
        logger.handlers = [h for h in logger.handlers if not getattr(h, "_apckx", False)]
    yield
    for logger, level, handlers in saved:
        logger.setLevel(level)
        logger.handlers = handlers


@pytest.fixture
def aws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A clean cwd (``tmp_path``) and AWS variables that know only the emulator's test
    credentials; returns them (for subprocesses)."""
    for var in list(os.environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var)
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return env


@pytest.fixture
def emulator_with_kek() -> Iterator[EmulatorWithKek]:
    """``start(kek, *, certs_dir, journal_dir, max_attempts=3, **config)``: an emulator
    (``EmulatorConfig`` options) in which import-kek put ``kek`` under ``alias/kek``, and an
    ``ApcService`` on it (botocore retries: ``max_attempts``); stopped after the test."""
    started: list[RunningEmulator] = []

    def start(
        kek: bytes, *, certs_dir: Path, journal_dir: Path, max_attempts: int = 3, **config: Any
    ) -> tuple[RunningEmulator, ApcService]:
        emulator = start_test_emulator(EmulatorConfig(**config))
        started.append(emulator)
        apc = ApcService(make_emulator_client(emulator.url, max_attempts=max_attempts))
        plan = plan_kek_import(key_algorithm="AES_256", certs_dir=certs_dir, kek_alias="alias/kek")
        run_kek_import(apc, kek, plan, journal_dir=journal_dir)
        return emulator, apc

    try:
        yield start
    finally:
        for emulator in reversed(started):
            emulator.stop()


@pytest.fixture
def aws(
    aws_env: dict[str, str], tmp_path: Path, emulator_with_kek: EmulatorWithKek
) -> dict[str, Any]:
    """Emulator + a KEK with known cleartext (``KNOWN_KEK``, under ``alias/kek``; its hex in
    ``kek_file``, 0600) + an AWS environment that knows only the emulator: ``apc``,
    ``kek_file``, ``tmp``, ``log`` (the emulator's request log) and ``aws`` (the CLI's
    endpoint and region flags). A test module may define its own ``aws``."""
    emulator, apc = emulator_with_kek(
        KNOWN_KEK,
        certs_dir=tmp_path / "certs",
        journal_dir=tmp_path / ".apckx" / "ceremonies",
        request_log_path=tmp_path / "requests.jsonl",
    )
    kek_file = tmp_path / "kek.hex"
    kek_file.write_text(KNOWN_KEK.hex())
    kek_file.chmod(0o600)
    return {
        "apc": apc,
        "kek_file": kek_file,
        "tmp": tmp_path,
        "log": tmp_path / "requests.jsonl",
        "aws": ["--endpoint-url", emulator.url, "--region", "us-east-1"],
    }
