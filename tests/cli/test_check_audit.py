"""``apckx check`` on usages the audit found unexercised: an M0 (ISO 16609 / AS2805) MAC key."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from apckx._cli import main
from apckx.service.apc import ApcService
from apckx.service.data import ApcDataService

KEK = bytes.fromhex("00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA9876543210")
EmulatorWithKek = Callable[..., tuple[Any, ApcService]]
pytestmark = pytest.mark.usefixtures("quiet_apckx_loggers")


def test_m0_mac_key(aws_env: dict[str, str], tmp_path: Path,
                    emulator_with_kek: EmulatorWithKek, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    """An M0 key is checked with AS2805_4_1 (the user guide's crypto-ops-mac page: "AS2805.4.1
    MAC: denoted by KeyUsage of TR31_M0_ISO_16609_MAC_KEY"), and APC's MAC matches the local
    AS2805.4.1 MAC of the cleartext."""
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
    sent: list[str] = []
    generate_mac = ApcDataService.generate_mac

    def record_generate_mac(self: ApcDataService, key_identifier: str, message_data: str,
                            attributes: Any, **kwargs: Any) -> str:
        sent.append(attributes["Algorithm"])
        return generate_mac(self, key_identifier, message_data, attributes, **kwargs)

    monkeypatch.setattr(ApcDataService, "generate_mac", record_generate_mac)
    rc = main(["check", "alias/m0", "--key-file", str(key_file), "--output", "json", *aws])
    out, err = capsys.readouterr()
    record = json.loads(out) if out.strip() else {}
    assert rc == 0, (err, record)
    assert sent == ["AS2805_4_1"]
    assert record["status"] == "ok"
    assert record["compared_with"] == "cleartext"
    assert [(step["check"], step["outcome"]) for step in record["steps"]] == [
        ("KCV", "ok"), ("generate MAC", "ok"), ("verify MAC", "ok"),
        ("verify altered MAC", "ok")]
