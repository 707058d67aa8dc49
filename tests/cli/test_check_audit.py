"""``apckx check`` on usages the audit found unexercised: an M0 (ISO 16609 / AS2805) MAC key."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from apckx._cli import main
from apckx.service.apc import ApcService

KEK = bytes.fromhex("00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA9876543210")
EmulatorWithKek = Callable[..., tuple[Any, ApcService]]
pytestmark = pytest.mark.usefixtures("quiet_apckx_loggers")


@pytest.mark.xfail(strict=True, reason=(
    "ceremonies/check.py _MAC_ALGORITHM sends ISO9797_ALGORITHM1 for M0 keys; the emulator "
    "(data/mac.py _ALGORITHM_KEYS) serves M0 only with AS2805_4_1 and refuses the call"))
def test_m0_mac_key(aws_env: dict[str, str], tmp_path: Path,
                    emulator_with_kek: EmulatorWithKek,
                    capsys: pytest.CaptureFixture[str]) -> None:
    emulator, _ = emulator_with_kek(KEK, certs_dir=tmp_path / "certs",
                                    journal_dir=tmp_path / ".apckx" / "ceremonies")
    aws = ["--endpoint-url", emulator.url, "--region", "us-east-1"]
    kek_file, key_file = tmp_path / "kek.hex", tmp_path / "m0.hex"
    kek_file.write_text(KEK.hex())
    key_file.write_text("7CA110454A1A6E570131D9619DC1376E")
    for path in (kek_file, key_file):
        path.chmod(0o600)
    rc = main(["import-key", "--kek-id", "alias/kek", "--kek-file", str(kek_file),
               "--key-file", str(key_file), "--key-usage", "M0", "--key-algorithm", "TDES_2KEY",
               "--mode-of-use", "C", "--alias", "alias/m0", "--output", "json", *aws])
    assert rc == 0
    capsys.readouterr()
    rc = main(["check", "alias/m0", "--key-file", str(key_file), "--output", "json", *aws])
    out, err = capsys.readouterr()
    record = json.loads(out) if out.strip() else {}
    assert rc == 0, (err, record)
