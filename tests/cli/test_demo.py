"""``apckx demo``: the whole ceremony against the embedded emulator, KCVs shown, cleaned up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apckx._cli import main


def test_demo_text(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rc = main(["demo"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "KCVs match: APC " in out
    line = next(x for x in out.splitlines() if x.startswith("KCVs match"))
    apc_kcv, local_kcv = line.split()[3], line.split()[6]
    assert apc_kcv == local_kcv and len(apc_kcv) == 6
    assert "3 keys DELETE_PENDING, 0 aliases left" in out
    assert list(tmp_path.iterdir()) == []  # nothing left in the working directory


def test_demo_json_p256(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["demo", "--curve", "P256", "--output", "json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    data = json.loads(out)
    assert data["kcv"] == data["local_kcv"]
    assert data["key_algorithm"] == "AES_128" and data["curve"] == "P256"
    assert set(data["key_states_after_cleanup"].values()) == {"DELETE_PENDING"}
    assert data["aliases_left"] == []
    # CreateKey, 2 ImportKey, GetPublicKeyCertificate, 3 aliases, and GetKey of the KEK alias
    assert data["api_calls"] == 8
