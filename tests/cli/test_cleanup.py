"""``apckx cleanup``: by ceremony journal, by alias (the AWS sample's leftovers), dry run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apckx._cli import main
from apckx.emulator.pytest_plugin import make_emulator_client
from apckx.emulator.requestlog import read_request_log
from apckx.emulator.server import EmulatorConfig, RunningEmulator, start_emulator

KEK_HEX = "7B2A64E1C1D0A7F5396D1E2A0B8C4F3E5D6A7B8C9D0E1F2A3B4C5D6E7F809112"
SAMPLE_ALIASES = [
    "alias/import-kek-ecdh-receiver",
    "alias/import-kek-ecdh-sender-root",
    "alias/import-kek-ecdh-result",
]


@pytest.fixture
def emu(aws_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[RunningEmulator, Any]]:
    running = start_emulator(EmulatorConfig(request_log_path=tmp_path / "requests.jsonl"))
    client = make_emulator_client(running.url)
    try:
        yield running, client
    finally:
        client.close()
        running.stop()


def aws(running: RunningEmulator) -> list[str]:
    return ["--region", "us-east-1", "--endpoint-url", running.url]


def operations() -> list[str]:
    path = Path("requests.jsonl")
    return [e.operation for e in read_request_log(path)] if path.exists() else []


def ceremony(
    running: RunningEmulator,
    capsys: pytest.CaptureFixture[str],
    *,
    kek: str = KEK_HEX,
    replace: bool = False,
) -> dict[str, Any]:
    more = ["--replace"] if replace else []
    rc = main(["import-kek", *aws(running), "--kek", kek, "--output", "json", *more])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return dict(json.loads(out))


def test_cleanup_ceremony_after_success(
    emu: tuple[RunningEmulator, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    running, client = emu
    data = ceremony(running, capsys)
    rc = main(
        ["cleanup", "--ceremony", data["ceremony_id"], *aws(running), "--delete-in-days", "3"]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.count("deletion scheduled") == 3
    assert client.list_aliases()["Aliases"] == []
    keys = client.list_keys()["Keys"]
    assert len(keys) == 3 and {k["KeyState"] for k in keys} == {"DELETE_PENDING"}
    # Idempotent: a second run finds everything gone or pending.
    rc = main(["cleanup", "--ceremony", data["ceremony_id"], *aws(running)])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert "already gone" in out and "already DELETE_PENDING" in out


def test_cleanup_leaves_reused_keys_alone(
    emu: tuple[RunningEmulator, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    running, client = emu
    first = ceremony(running, capsys)
    again = ceremony(running, capsys)  # the same KEK: nothing imported
    assert again["unchanged"] and again["key_arn"] == first["key_arn"]
    second = ceremony(running, capsys, kek=KEK_HEX[::-1], replace=True)
    assert second["receiver_reused"] and second["replaced_key_arn"] == first["key_arn"]
    rc = main(["cleanup", "--ceremony", second["ceremony_id"], *aws(running), "--output", "json"])
    out, _ = capsys.readouterr()
    assert rc == 0
    actions = json.loads(out)["actions"]
    deleted = {a["target"] for a in actions if a["operation"] == "DeleteKey" and not a["skip"]}
    assert deleted == {second["key_arn"]}
    receiver = client.get_key(KeyIdentifier=first["receiver_key_arn"])["Key"]
    assert receiver["KeyState"] == "CREATE_COMPLETE"
    # The receiver and root aliases still belong to the first ceremony, and the KEK alias
    # the second one moved (--replace) points back at the first KEK.
    aliases = {a["AliasName"]: a.get("KeyArn") for a in client.list_aliases()["Aliases"]}
    assert set(aliases) == set(SAMPLE_ALIASES)
    assert aliases["alias/import-kek-ecdh-result"] == first["key_arn"]


READ_ONLY = {"ListKeys", "ListAliases", "ListTagsForResource", "GetAlias", "GetKey"}


def test_dry_run_reads_only_and_shows_what_the_real_run_does(
    emu: tuple[RunningEmulator, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    running, client = emu
    data = ceremony(running, capsys)
    Path("requests.jsonl").write_text("")
    rc = main(["cleanup", "--ceremony", data["ceremony_id"], *aws(running), "--dry-run"])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert "plan (read-only calls only; nothing was changed)" in out
    assert "DeleteKeyInDays=7" in out and data["key_arn"] in out
    assert set(operations()) <= READ_ONLY
    rc = main(["cleanup", "--alias", *SAMPLE_ALIASES, *aws(running), "--dry-run"])
    out, _ = capsys.readouterr()
    assert rc == 0 and data["key_arn"] in out  # the key the result alias names, resolved
    assert set(operations()) <= READ_ONLY
    assert all(k["KeyState"] == "CREATE_COMPLETE" for k in client.list_keys()["Keys"])
    # The dry run's JSON plan is the real run's, call for call (skips included).
    main(["cleanup", "--ceremony", data["ceremony_id"], *aws(running), "--dry-run",
          "--output", "json"])  # fmt: skip
    plan = json.loads(capsys.readouterr()[0])["actions"]
    main(["cleanup", "--ceremony", data["ceremony_id"], *aws(running), "--output", "json"])
    done = json.loads(capsys.readouterr()[0])["actions"]
    assert [(a["operation"], a["target"], a["skip"]) for a in plan] == [
        (a["operation"], a["target"], a["skip"]) for a in done
    ]
    # A second dry run: everything is gone or pending, so every action is a skip.
    main(["cleanup", "--ceremony", data["ceremony_id"], *aws(running), "--dry-run",
          "--output", "json"])  # fmt: skip
    again = json.loads(capsys.readouterr()[0])["actions"]
    assert again and all(a["skip"] for a in again)


def test_cleanup_aliases_of_the_aws_sample(
    emu: tuple[RunningEmulator, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    running, client = emu
    # What the sample leaves behind: aliases created without a key, then updated.
    key = client.create_key(
        Exportable=True,
        KeyAttributes={
            "KeyAlgorithm": "ECC_NIST_P521",
            "KeyClass": "ASYMMETRIC_KEY_PAIR",
            "KeyModesOfUse": {"DeriveKey": True},
            "KeyUsage": "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT",
        },
        DeriveKeyUsage="TR31_K1_KEY_BLOCK_PROTECTION_KEY",
    )["Key"]
    for alias in SAMPLE_ALIASES:
        client.create_alias(AliasName=alias)
    client.update_alias(AliasName=SAMPLE_ALIASES[0], KeyArn=key["KeyArn"])
    client.update_alias(AliasName=SAMPLE_ALIASES[2], KeyArn=key["KeyArn"])  # shared key
    Path("requests.jsonl").write_text("")
    rc = main(["cleanup", "--alias", *SAMPLE_ALIASES, "alias/never-existed", *aws(running)])
    _, err = capsys.readouterr()
    assert rc == 2 and "no such alias: alias/never-existed" in err
    assert set(operations()) <= READ_ONLY  # a typo deletes nothing
    rc = main(["cleanup", "--alias", *SAMPLE_ALIASES, *aws(running)])
    _, err = capsys.readouterr()
    assert rc == 0, err
    assert client.list_aliases()["Aliases"] == []
    assert client.get_key(KeyIdentifier=key["KeyArn"])["Key"]["KeyState"] == "DELETE_PENDING"
    assert operations().count("DeleteKey") == 1  # one key, however many aliases


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--ceremony", "kek-20260101T120000Z-1a2b3c4d"], "no journal"),
        (["--ceremony", "../x"], "ceremony id"),
        (["--alias", "bad"], "--alias"),
        (["--alias", "alias/x", "--delete-in-days", "1"], "between 3 and 180"),
        (["--alias", "alias/x", "--delete-in-days", "181"], "between 3 and 180"),
        (["--alias", "alias/x", "--endpoint-url", "gopher://x"], "http"),
    ],
)
def test_cleanup_bad_input(
    emu: tuple[RunningEmulator, Any],
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected: str,
) -> None:
    running, _ = emu
    endpoint = [] if "--endpoint-url" in args else ["--endpoint-url", running.url]
    rc = main(["cleanup", "--region", "us-east-1", *endpoint, *args])
    _, err = capsys.readouterr()
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and expected in err
    assert operations() == []
