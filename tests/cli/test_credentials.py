"""A command without AWS credentials stops before it starts a journal or makes a call."""

from __future__ import annotations

from pathlib import Path

import pytest

from apckx._cli import main

KEK_HEX = "7E3A1C5B9D2F4E6A8C0B1D3F5A7C9E2B4D6F8A0C2E4B6D8F1A3C5E7B9D0F2A4C"


@pytest.mark.parametrize(
    "argv",
    [
        ["import-kek", "--kek-env", "APCKX_TEST_KEK"],
        ["cleanup", "--alias", "alias/import-kek-ecdh-result"],
    ],
    ids=["import-kek", "cleanup"],
)
def test_missing_credentials_stop_before_anything(
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("APCKX_TEST_KEK", KEK_HEX)
    monkeypatch.chdir(tmp_path)

    code = main([*argv, "--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9"])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [
        "apckx: error: no AWS credentials for profile 'default': run aws configure (or aws sso "
        "login) for it, pass --profile, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    ]
    assert not (tmp_path / ".apckx").exists()
    assert not (tmp_path / "certs").exists()
