"""Recovery (issues 12 and 13): resume means resume, alias moves are explicit, cleanup finds
everything a ceremony made (after ``kill -9`` too) and nothing else, local state is private
and checked before any call, and a local write that fails after APC changed says so."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apckx._cli import main
from apckx.ceremonies import journal as journal_module
from apckx.ceremonies.import_key import WorkingKeySpec, build_working_key_block, resolve_key_usage
from apckx.ceremonies.journal import Journal, key_log_path, new_ceremony_id
from apckx.ceremonies.migrate import KeyLog, block_digest
from apckx.crypto.attributes import default_kcv_algorithm
from apckx.crypto.kcv import compute_kcv
from apckx.crypto.keys import generate_key
from apckx.emulator.pytest_plugin import make_emulator_client
from apckx.emulator.requestlog import read_request_log
from apckx.emulator.server import EmulatorConfig, RunningEmulator, parse_fault_spec, start_emulator

KEK_HEX = "7B2A64E1C1D0A7F5396D1E2A0B8C4F3E5D6A7B8C9D0E1F2A3B4C5D6E7F809112"
OTHER_KEK_HEX = "1F2E3D4C5B6A79880F1E2D3C4B5A69788796A5B4C3D2E1F00112233445566778"
AES128_HEX = "2B7E151628AED2A6ABF7158809CF4F3C"
READ_ONLY = {"GetKey", "GetAlias", "ListKeys", "ListAliases", "ListTagsForResource"}


def error_lines(err: str) -> list[str]:
    """The error lines (warnings and progress lines on stderr aside); never a traceback."""
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("apckx: error:")]


def kcv(key_hex: str, algorithm: str) -> str:
    key = bytes.fromhex(key_hex)
    return compute_kcv(key, default_kcv_algorithm(algorithm), key_algorithm=algorithm)


class Emu:
    def __init__(self, tmp_path: Path, *faults: str, latency_ms: float = 0.0) -> None:
        self.log_path = tmp_path / "requests.jsonl"
        self.running: RunningEmulator = start_emulator(
            EmulatorConfig(
                request_log_path=self.log_path,
                faults=tuple(parse_fault_spec(f) for f in faults),
                latency_ms=latency_ms,
            )
        )
        self.client = make_emulator_client(self.running.url)

    @property
    def aws(self) -> list[str]:
        return ["--region", "us-east-1", "--endpoint-url", self.running.url]

    def operations(self) -> list[str]:
        if not self.log_path.exists():
            return []
        return [e.operation for e in read_request_log(self.log_path)]

    def clear_log(self) -> None:
        self.log_path.write_text("")

    def stop(self) -> None:
        self.client.close()
        self.running.stop()

    def keys(self) -> dict[str, str]:
        return {k["KeyArn"]: k["KeyState"] for k in self.client.list_keys()["Keys"]}

    def aliases(self) -> dict[str, str | None]:
        return {a["AliasName"]: a.get("KeyArn") for a in self.client.list_aliases()["Aliases"]}

    def tags(self, arn: str) -> dict[str, str]:
        tags = self.client.list_tags_for_resource(ResourceArn=arn)["Tags"]
        return {t["Key"]: t["Value"] for t in tags}


@pytest.fixture
def emu(aws_env: dict[str, str]) -> Iterator[Emu]:
    emulator = Emu(Path.cwd())
    try:
        yield emulator
    finally:
        emulator.stop()


def kek_json(emu: Emu, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    rc = main(["import-kek", *emu.aws, "--output", "json", *args])
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if rc == 0 else None), err


def only_journal() -> dict[str, Any]:
    (path,) = Path(".apckx/ceremonies").glob("*.json")
    return dict(json.loads(path.read_text()))


# -- 1. resume means resume ------------------------------------------------------------------
@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.retries.standard

    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda _self, _ctx: 0.01
    )


@pytest.mark.usefixtures("quick_backoff")
def test_resume_with_only_the_id_and_the_key_restores_every_setting(
    aws_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A P-256 / AES-128 ceremony with its own aliases, certs dir, KDF hash and
    SharedInformation fails; ``--resume ID --kek ...`` alone finishes it as it was begun."""
    emu = Emu(Path.cwd(), "GetPublicKeyCertificate:error:2")
    try:
        settings = [
            "--curve", "P256", "--key-algorithm", "AES_128", "--kdf-hash", "SHA_512",
            "--shared-info", "0A0B0C0D", "--certs-dir", "p256-certs", "--alias", "alias/p256-kek",
            "--receiver-alias", "alias/p256-receiver", "--root-alias", "alias/p256-root",
            "--mode-of-use", "D",
        ]  # fmt: skip
        rc, _, err = kek_json(emu, capsys, "--kek", AES128_HEX, "--max-attempts", "2", *settings)
        assert rc == 1 and "GetPublicKeyCertificate" in err
        cid = only_journal()["ceremony_id"]
        # A flag that contradicts the journal is refused with both values, before any call.
        emu.clear_log()
        for flag, value, journaled in [
            ("--curve", "P384", "P256"),
            ("--alias", "alias/elsewhere", "alias/p256-kek"),
            ("--key-algorithm", "AES_256", "AES_128"),
            ("--mode-of-use", "B", "K0AD"),
        ]:
            rc, _, err = kek_json(emu, capsys, "--kek", AES128_HEX, "--resume", cid, flag, value)
            assert rc == 2, err
            line = err.strip()
            assert "\n" not in line and value in line and journaled in line, line
        assert emu.operations() == []
        # Only the id and the key (repeating a journaled value is fine).
        rc, data, err = kek_json(
            emu, capsys, "--kek", AES128_HEX, "--resume", cid, "--curve", "P-256"
        )
        assert rc == 0, err
        assert data["ceremony_id"] == cid  # the same ceremony, continued
        assert (data["curve"], data["key_algorithm"], data["kdf_hash"]) == (
            "P256", "AES_128", "SHA_512",
        )  # fmt: skip
        assert data["shared_info_hex"] == "0A0B0C0D"
        assert data["alias"] == "alias/p256-kek" and data["header"][5:8] == "K0A"
        assert data["header"][8] == "D"
        assert data["receiver_reused"] and data["root_reused"]  # the journal's, same certs dir
        assert "CreateKey" not in emu.operations()
        aliases = emu.aliases()
        assert aliases["alias/p256-kek"] == data["key_arn"]
        assert "alias/import-kek-ecdh-result" not in aliases  # not the default alias
        assert data["kcv"] == kcv(AES128_HEX, "AES_128")
    finally:
        emu.stop()


# -- 4. alias moves are explicit ----------------------------------------------------------------
def test_alias_moves_are_explicit(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    rc, first, err = kek_json(emu, capsys, "--kek", KEK_HEX)
    assert rc == 0, err
    # The same KEK again: the alias already names a key with its KCV, nothing is imported.
    emu.clear_log()
    rc = main(["import-kek", *emu.aws, "--kek", KEK_HEX])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "nothing imported" in out and first["key_arn"] in out
    assert "ImportKey" not in emu.operations() and "CreateKey" not in emu.operations()
    # Another KEK onto the same alias: refused without --replace; nothing imported or moved.
    emu.clear_log()
    rc = main(["import-kek", *emu.aws, "--kek", OTHER_KEK_HEX])
    _, err = capsys.readouterr()
    assert rc == 2
    assert "already points at " + first["key_arn"] in err and "--replace" in err
    assert "ImportKey" not in emu.operations()
    assert emu.aliases()["alias/import-kek-ecdh-result"] == first["key_arn"]
    # With --replace: moved, and said so with both KCVs.
    rc = main(["import-kek", *emu.aws, "--kek", OTHER_KEK_HEX, "--replace"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    now = emu.aliases()["alias/import-kek-ecdh-result"]
    assert now != first["key_arn"]
    assert (
        f"alias/import-kek-ecdh-result: was {first['key_arn']} (KCV {kcv(KEK_HEX, 'AES_256')}), "
        f"now {now} (KCV {kcv(OTHER_KEK_HEX, 'AES_256')})"
    ) in out


# -- 5. nothing billable before local checks ---------------------------------------------------
@pytest.mark.parametrize(
    ("command", "flag", "expected"),
    [
        ("import-kek", "--certs-dir", "--certs-dir"),
        ("import-kek", "--records-dir", "records directory"),
        ("import-kek", "--journal-dir", "journal directory"),
        ("migrate", "--journal-dir", "journal directory"),
        ("cleanup", "--journal-dir", "no journal"),
    ],
)
def test_bad_paths_stop_before_the_first_call(
    emu: Emu, capsys: pytest.CaptureFixture[str], command: str, flag: str, expected: str
) -> None:
    Path("a-file").write_text("not a directory\n")
    Path("m.csv").write_text(f"alias,key_block\nalias/x,{_block(KEK_HEX)}\n")
    argv = {
        "import-kek": ["import-kek", "--kek", KEK_HEX],
        "migrate": ["migrate", "m.csv", "--kek-id", "alias/kek"],
        "cleanup": ["cleanup", "--ceremony", new_ceremony_id("kek")],
    }[command]
    rc = main([*argv, *emu.aws, flag, "a-file/typo"])
    _, err = capsys.readouterr()
    assert rc == 2, err
    (line,) = error_lines(err)
    assert expected in line
    assert emu.operations() == []


# -- 7. private local state ---------------------------------------------------------------------
def test_state_directories_are_0700_under_umask_000(
    emu: Emu, capsys: pytest.CaptureFixture[str]
) -> None:
    old = os.umask(0)
    try:
        rc, _, err = kek_json(emu, capsys, "--kek", KEK_HEX)
    finally:
        os.umask(old)
    assert rc == 0, err
    for directory in (".apckx", ".apckx/ceremonies", ".apckx/records", "certs"):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700, directory
    for path in [*Path(".apckx").rglob("*.json")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_cleanup_refuses_a_journal_others_can_write(
    emu: Emu, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, first, _ = kek_json(emu, capsys, "--kek", KEK_HEX)
    assert rc == 0
    path = Path(".apckx/ceremonies") / f"{first['ceremony_id']}.json"
    emu.clear_log()
    path.chmod(0o666)
    rc = main(["cleanup", "--ceremony", first["ceremony_id"], *emu.aws])
    _, err = capsys.readouterr()
    assert rc == 2 and "group or others can write it" in err
    path.chmod(0o600)
    Path(".apckx/ceremonies").chmod(0o777)
    rc = main(["cleanup", "--ceremony", first["ceremony_id"], *emu.aws])
    _, err = capsys.readouterr()
    assert rc == 2 and "journal directory" in err
    Path(".apckx/ceremonies").chmod(0o700)
    # Swapped for a symlink (to a journal elsewhere): not followed.
    elsewhere = Path("elsewhere.json")
    path.rename(elsewhere)
    path.symlink_to(elsewhere.resolve())
    rc = main(["cleanup", "--ceremony", first["ceremony_id"], *emu.aws])
    _, err = capsys.readouterr()
    assert rc == 2 and "it is a symbolic link" in err
    path.unlink()
    elsewhere.rename(path)
    if os.geteuid() == 0:  # another user's journal (only root can make one here)
        os.chown(path, 65534, 65534)
        rc = main(["cleanup", "--ceremony", first["ceremony_id"], *emu.aws])
        _, err = capsys.readouterr()
        assert rc == 2 and "owned by uid 65534" in err
        os.chown(path, 0, 0)
    assert emu.operations() == []
    assert set(emu.keys().values()) == {"CREATE_COMPLETE"}


def test_cleanup_deletes_only_keys_tagged_with_the_ceremony(
    emu: Emu, capsys: pytest.CaptureFixture[str]
) -> None:
    """A journal that lists someone else's key as "created" does not get it deleted."""
    rc, first, _ = kek_json(emu, capsys, "--kek", KEK_HEX)
    assert rc == 0
    victim = emu.client.create_key(
        Exportable=True,
        KeyAttributes={
            "KeyAlgorithm": "AES_128", "KeyClass": "SYMMETRIC_KEY",
            "KeyUsage": "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY",
            "KeyModesOfUse": {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True},
        },
    )["Key"]["KeyArn"]  # fmt: skip
    emu.client.create_alias(AliasName="alias/production", KeyArn=victim)
    journal = Journal.load(Path(".apckx/ceremonies"), first["ceremony_id"])
    journal.record_resource(journal_module.Resource(kind="key", role="kek", arn=victim))
    journal.record_resource(
        journal_module.Resource(kind="alias", role="kek", alias="alias/production", arn=victim)
    )
    emu.clear_log()
    rc = main(["cleanup", "--ceremony", first["ceremony_id"], *emu.aws, "--output", "json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    # A finished ceremony listed all it made: only the keys it lists have their tags read
    # (an unfinished one reads every live key's: see the kill -9 test).
    assert emu.operations().count("ListTagsForResource") == 4
    skipped = {a["target"]: a["skip"] for a in json.loads(out)["actions"] if a["skip"]}
    assert "not created by" in skipped[victim]
    assert "not this ceremony's" in skipped["alias/production"]
    keys = emu.keys()
    assert keys.pop(victim) == "CREATE_COMPLETE"
    assert set(keys.values()) == {"DELETE_PENDING"} and len(keys) == 3
    assert emu.aliases() == {"alias/production": victim}


# -- 6. resume trusts a key only by its APC tags --------------------------------------------------
def _block(kek_hex: str) -> str:
    spec = WorkingKeySpec(resolve_key_usage("D0"), "AES_128")
    return build_working_key_block(
        bytes.fromhex(kek_hex), "AES_256", generate_key("AES_128"), spec
    )


def _plant(
    kek_arn: str, alias: str, key_arn: str, key_kcv: str, block: str, mode: int, owner: int | None
) -> None:
    """An "earlier run" that says ``alias``'s key is ``key_arn``, imported but not aliased."""
    journal_dir = Path(".apckx/ceremonies")
    planted = Journal.create(
        journal_dir, "migrate", parameters={"kek_arn": kek_arn, "manifest": "m.csv"}
    )
    log = KeyLog(key_log_path(planted.path))
    log.write("importing", alias=alias, line=2, block_sha256=block_digest(block))
    log.write("key_imported", alias=alias, key_arn=key_arn, kcv=key_kcv, line=2,
              block_sha256=block_digest(block))  # fmt: skip
    log.close()
    planted.finish("failed", error="interrupted: KeyboardInterrupt")
    for path in (planted.path, key_log_path(planted.path)):
        path.chmod(mode)
        if owner is not None:
            os.chown(path, owner, owner)


@pytest.mark.parametrize(("mode", "owner"), [(0o600, None), (0o666, None), (0o600, 65534)])
def test_a_planted_earlier_run_cannot_point_a_production_alias_elsewhere(
    aws_env: dict[str, str], capsys: pytest.CaptureFixture[str], mode: int, owner: int | None
) -> None:
    if owner is not None and os.geteuid() != 0:
        pytest.skip("only root can plant another user's file here")
    emu = Emu(Path.cwd())
    try:
        rc, kek, err = kek_json(emu, capsys, "--kek", KEK_HEX, "--alias", "alias/kek")
        assert rc == 0, err
        real_block = _block(KEK_HEX)
        Path("m.csv").write_text(f"alias,key_block\nalias/prod,{real_block}\n")
        # The attacker's key, under the same KEK, tagged as if migrated (all but the ceremony).
        other = emu.client.import_key(
            KeyMaterial={"Tr31KeyBlock": {"WrappingKeyIdentifier": kek["key_arn"],
                                          "WrappedKeyBlock": _block(KEK_HEX)}},
            Tags=[{"Key": "apckx:alias", "Value": "alias/prod"}],
        )["Key"]  # fmt: skip
        _plant(kek["key_arn"], "alias/prod", other["KeyArn"], other["KeyCheckValue"],
               real_block, mode, owner)  # fmt: skip
        emu.clear_log()
        rc = main(["migrate", "m.csv", "--kek-id", "alias/kek", *emu.aws, "--output", "json"])
        out, err = capsys.readouterr()
        operations = emu.operations()
        aliases = emu.aliases()
        assert aliases.get("alias/prod") != other["KeyArn"]
        if mode == 0o666 or owner is not None:  # refused before any call
            reason = "group or others can write it" if owner is None else "owned by uid 65534"
            assert rc == 2 and reason in err
            assert operations == [], err
            assert "alias/prod" not in aliases
        else:  # the log is not believed: the real block is imported
            assert rc == 0, err
            (outcome,) = json.loads(out)["keys"]
            assert outcome["status"] == "imported" and outcome["key_arn"] == aliases["alias/prod"]
            assert "ImportKey" in operations
    finally:
        emu.stop()


# -- 8. local writes that fail after APC changed ---------------------------------------------------
def _fail_writes(monkeypatch: pytest.MonkeyPatch, when: Any) -> None:
    real = journal_module.write_json_atomic

    def write(path: Path, data: Any, *, mode: int = 0o600) -> None:
        if when(path, data):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data, mode=mode)

    monkeypatch.setattr(journal_module, "write_json_atomic", write)


def test_full_journal_disk_after_the_import_is_one_line_with_arns_and_kcv(
    emu: Emu, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_writes(monkeypatch, lambda path, data: data.get("status") == "complete")
    rc = main(["import-kek", *emu.aws, "--kek", KEK_HEX])
    out, err = capsys.readouterr()
    assert rc == 1
    (line,) = error_lines(err)
    arn = emu.aliases()["alias/import-kek-ecdh-result"]
    assert f"APC imported the KEK {arn} (KCV {kcv(KEK_HEX, 'AES_256')})" in line
    assert "writing the journal" in line and "No space left on device" in line
    assert KEK_HEX not in out + err


def test_full_disk_mid_ceremony_names_what_apc_created(
    emu: Emu, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def after_kek_import(path: Path, data: Any) -> bool:
        return any(r.get("role") == "kek" for r in data.get("resources", []))

    _fail_writes(monkeypatch, after_kek_import)
    rc = main(["import-kek", *emu.aws, "--kek", KEK_HEX])
    _, err = capsys.readouterr()
    assert rc == 1
    (line,) = error_lines(err)
    imported = [a for a in emu.keys() if emu.tags(a).get("apckx:role") == "kek"]
    assert len(imported) == 1 and imported[0] in line and "writing the journal" in line


def test_unwritable_records_dir_after_the_import_says_what_apc_holds(
    emu: Emu, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_writes(monkeypatch, lambda path, data: "records" in str(path))
    rc = main(["import-kek", *emu.aws, "--kek", KEK_HEX])
    _, err = capsys.readouterr()
    assert rc == 1
    (line,) = error_lines(err)
    arn = emu.aliases()["alias/import-kek-ecdh-result"]
    assert f"APC holds the KEK {arn} (KCV {kcv(KEK_HEX, 'AES_256')})" in line


def test_components_are_written_all_or_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apckx.ceremonies import export_key
    from apckx.ceremonies.export_key import ExportedKey, write_components
    from apckx.crypto.tr31 import parse_header
    from apckx.errors import ConfigError

    key = bytes.fromhex(KEK_HEX)
    exported = ExportedKey(
        key_arn="arn:aws:payment-cryptography:us-east-1:111122223333:key/abc",
        key_block="-", header=parse_header("D0000K0AB00E0000"), key_algorithm="AES_256",
        kcv=compute_kcv(key, "CMAC", key_algorithm="AES_256"), kcv_algorithm="CMAC",
        wrapping_key_arn="-", via="test", key=key,
    )  # fmt: skip
    real = export_key._write_new_file
    calls: list[Path] = []

    def write(path: Path, text: str) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, text)

    monkeypatch.setattr(export_key, "_write_new_file", write)
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="none was kept"):
        write_components(exported, 3, out)
    assert list(tmp_path.iterdir()) == []  # neither a partial out dir nor a temp dir
    monkeypatch.setattr(export_key, "_write_new_file", real)
    out.mkdir()  # an empty directory is fine too
    files = write_components(exported, 3, out)
    assert sorted(p.name for p in out.iterdir()) == [f.path.name for f in files]
    assert all(stat.S_IMODE(f.path.stat().st_mode) == 0o600 for f in files)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


# -- 3. apckx ceremonies ---------------------------------------------------------------------------
def test_ceremonies_lists_and_shows(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    rc, first, _ = kek_json(emu, capsys, "--kek", KEK_HEX)
    assert rc == 0
    rc = main(["cleanup", "--ceremony", first["ceremony_id"], *emu.aws])
    capsys.readouterr()
    rc, second, _ = kek_json(emu, capsys, "--kek", OTHER_KEK_HEX)
    assert rc == 0
    rc = main(["ceremonies", "--output", "json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    rows = {r["ceremony_id"]: r for r in json.loads(out)["ceremonies"]}
    assert rows[first["ceremony_id"]]["status"] == "rolled_back"
    assert rows[first["ceremony_id"]]["resources_live"] == 0
    assert rows[second["ceremony_id"]]["status"] == "complete"
    # the rolled-back receiver and root are pending deletion: all three keys and aliases anew
    assert rows[second["ceremony_id"]]["resources_live"] == 6
    rc = main(["ceremonies"])
    out, _ = capsys.readouterr()
    assert rc == 0 and first["ceremony_id"] in out and "rolled_back" in out
    rc = main(["ceremonies", "show", second["ceremony_id"]])
    out, _ = capsys.readouterr()
    assert rc == 0 and second["key_arn"] in out and "complete" in out
    rc = main(["ceremonies", "show", new_ceremony_id("kek")])
    _, err = capsys.readouterr()
    assert rc == 2 and "no journal" in err


# -- 2. cleanup after kill -9 at several points of a migration ------------------------------------
def _apckx() -> list[str]:
    script = Path(sys.executable).parent / "apckx"
    return [str(script)] if script.exists() else [sys.executable, "-m", "apckx"]


def _wait_for_imports(log_path: Path, count: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if log_path.exists():
            done = [e for e in read_request_log(log_path)
                    if e.operation == "ImportKey" and e.status == 200]  # fmt: skip
            if len(done) >= count:
                return
        time.sleep(0.002)


def test_cleanup_after_kill_9_leaves_no_live_key_or_alias(
    aws_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    emu = Emu(Path.cwd(), latency_ms=15)
    try:
        rc, kek, err = kek_json(emu, capsys, "--kek", KEK_HEX, "--alias", "alias/kek")
        assert rc == 0, err
        # Another ceremony's key and alias, which no cleanup below may touch.
        bystander = emu.client.import_key(
            KeyMaterial={"Tr31KeyBlock": {"WrappingKeyIdentifier": kek["key_arn"],
                                          "WrappedKeyBlock": _block(KEK_HEX)}},
            Tags=[{"Key": "apckx:ceremony", "Value": new_ceremony_id("migrate")}],
        )["Key"]["KeyArn"]  # fmt: skip
        emu.client.create_alias(AliasName="alias/bystander", KeyArn=bystander)
        before = set(emu.keys())
        env = dict(os.environ)
        ceremonies: list[str] = []
        for point in (1, 4, 7):  # after the 1st, 4th and 7th ImportKey APC answered
            rows = [f"alias/kill{point}-{i},{_block(KEK_HEX)}" for i in range(10)]
            Path(f"m{point}.csv").write_text("alias,key_block\n" + "\n".join(rows) + "\n")
            known = set(Path(".apckx/ceremonies").glob("migrate-*.json"))
            emu.clear_log()
            proc = subprocess.Popen(
                [*_apckx(), "migrate", f"m{point}.csv", "--kek-id", "alias/kek", *emu.aws,
                 "--workers", "3", "--rate", "500", "--no-progress"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                _wait_for_imports(emu.log_path, point, proc)
                proc.kill()
            finally:
                proc.wait(timeout=30)
            (journal_path,) = set(Path(".apckx/ceremonies").glob("migrate-*.json")) - known
            assert json.loads(journal_path.read_text())["status"] == "running"  # killed mid-way
            ceremonies.append(journal_path.stem)
        made = {cid: {a for a in set(emu.keys()) - before if emu.tags(a).get("apckx:ceremony")
                      == cid} for cid in ceremonies}  # fmt: skip
        assert all(made.values()), made  # each run was killed after APC made something
        main(["ceremonies", "--output", "json"])
        listed = {r["ceremony_id"]: r for r in json.loads(capsys.readouterr()[0])["ceremonies"]}
        for cid in ceremonies:  # what local state knows: logged keys, and unanswered imports
            assert listed[cid]["status"] == "running", listed[cid]
            assert listed[cid]["keys_live"] + listed[cid]["unconfirmed"] >= 1, listed[cid]
        for index, cid in enumerate(ceremonies):
            rc = main(["cleanup", "--ceremony", cid, *emu.aws, "--delete-in-days", "3"])
            _, err = capsys.readouterr()
            assert rc == 0, err
            keys, aliases = emu.keys(), emu.aliases()
            assert {keys[a] for a in made[cid]} == {"DELETE_PENDING"}
            assert not any(target in made[cid] for target in aliases.values())
            for later in ceremonies[index + 1 :]:  # the other ceremonies' keys: untouched
                assert {keys[a] for a in made[later]} == {"CREATE_COMPLETE"}
        main(["ceremonies", "--output", "json"])
        listed = {r["ceremony_id"]: r for r in json.loads(capsys.readouterr()[0])["ceremonies"]}
        for cid in ceremonies:
            assert listed[cid]["status"] == "rolled_back", listed[cid]
            assert listed[cid]["resources_live"] == listed[cid]["unconfirmed"] == 0, listed[cid]
        keys, aliases = emu.keys(), emu.aliases()
        assert keys[bystander] == "CREATE_COMPLETE" and keys[kek["key_arn"]] == "CREATE_COMPLETE"
        assert aliases["alias/bystander"] == bystander and aliases["alias/kek"] == kek["key_arn"]
        assert {a for a in aliases if a.startswith("alias/kill")} == set()
        assert all(keys[t] == "CREATE_COMPLETE" for t in aliases.values() if t)
    finally:
        emu.stop()
        shutil.rmtree(".apckx", ignore_errors=True)


@pytest.mark.parametrize("after", ["ImportKey sent", "ImportKey answered"])
def test_cleanup_after_kill_9_of_a_speculative_repeat_leaves_no_live_key(
    aws_env: dict[str, str], capsys: pytest.CaptureFixture[str], after: str
) -> None:
    """A repeat that moves its alias imports ahead of its checks (repeat_import): killed then,
    the key is still found by its tag, and cleanup leaves nothing of it live."""
    emu = Emu(Path.cwd(), latency_ms=150)
    try:
        rc, first, err = kek_json(emu, capsys, "--kek", KEK_HEX)
        assert rc == 0, err
        before = set(emu.keys())
        known = set(Path(".apckx/ceremonies").glob("kek-*.json"))
        emu.clear_log()
        env = {**os.environ, "OTHER_KEK": OTHER_KEK_HEX}
        proc = subprocess.Popen(
            [*_apckx(), "import-kek", "--kek-env", "OTHER_KEK", "--replace", *emu.aws],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                entries = read_request_log(emu.log_path) if emu.log_path.exists() else []
                if after == "ImportKey answered":
                    if any(e.operation == "ImportKey" and e.status == 200 for e in entries):
                        break
                elif set(emu.keys()) - before:  # APC holds the key, its answer not yet sent
                    break
                time.sleep(0.002)
            proc.kill()
        finally:
            proc.wait(timeout=30)
        made = set(emu.keys()) - before
        assert len(made) == 1, made  # the speculative import, and nothing else
        time.sleep(0.3)  # the emulator logs a request once it has answered it
        entries = read_request_log(emu.log_path)
        (sent,) = [e for e in entries if e.operation == "ImportKey"]
        assert any(e.operation == "GetKey" and e.end > sent.start for e in entries)  # beside
        (journal_path,) = set(Path(".apckx/ceremonies").glob("kek-*.json")) - known
        cid = journal_path.stem
        (arn,) = made
        assert emu.tags(arn).get("apckx:ceremony") == cid
        rc = main(["cleanup", "--ceremony", cid, *emu.aws, "--delete-in-days", "3"])
        _, err = capsys.readouterr()
        assert rc == 0, err
        keys, aliases = emu.keys(), emu.aliases()
        assert keys[arn] == "DELETE_PENDING"
        assert arn not in aliases.values()
        assert keys[first["key_arn"]] == "CREATE_COMPLETE"
        assert all(keys[t] == "CREATE_COMPLETE" for t in aliases.values() if t)
    finally:
        emu.stop()
        shutil.rmtree(".apckx", ignore_errors=True)


def test_an_interrupted_cleanup_never_leaves_an_alias_on_a_pending_key(
    emu: Emu, capsys: pytest.CaptureFixture[str]
) -> None:
    """The double Ctrl-C case: keys scheduled for deletion while their aliases survived.
    The next cleanup finds the aliases by their keys' tags and removes them."""
    rc, first, _ = kek_json(emu, capsys, "--kek", KEK_HEX)
    assert rc == 0
    for arn in (first["key_arn"], first["receiver_key_arn"]):  # what a cut-short run did
        emu.client.delete_key(KeyIdentifier=arn, DeleteKeyInDays=3)
    assert len(emu.aliases()) == 3
    rc = main(["cleanup", "--ceremony", first["ceremony_id"], *emu.aws])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert emu.aliases() == {}
    assert set(emu.keys().values()) == {"DELETE_PENDING"}
    assert out.count("already DELETE_PENDING") == 2


def test_full_disk_mid_migration_is_one_line_and_a_rerun_resumes(
    emu: Emu, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rc, _, err = kek_json(emu, capsys, "--kek", KEK_HEX, "--alias", "alias/kek")
    assert rc == 0, err
    rows = [f"alias/full-{i},{_block(KEK_HEX)}" for i in range(4)]
    Path("m.csv").write_text("alias,key_block\n" + "\n".join(rows) + "\n")
    real = KeyLog.write
    seen: list[str] = []

    def write(self: KeyLog, event: str, **fields: Any) -> None:
        seen.append(event)
        if seen.count("key_imported") == 2 and event == "key_imported":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, event, **fields)

    monkeypatch.setattr(KeyLog, "write", write)
    argv = ["migrate", "m.csv", "--kek-id", "alias/kek", *emu.aws, "--workers", "1"]
    rc = main(argv)
    _, err = capsys.readouterr()
    assert rc == 1
    (line,) = error_lines(err)
    (journal_path,) = Path(".apckx/ceremonies").glob("migrate-*.json")
    cid = journal_path.stem
    assert "writing the journal or key log" in line and f"apckx:ceremony={cid}" in line
    monkeypatch.setattr(KeyLog, "write", real)
    rc = main([*argv, "--output", "json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert json.loads(out)["ceremony_id"] == cid  # the same ceremony, continued
    aliases = emu.aliases()
    assert all(f"alias/full-{i}" in aliases for i in range(4))
    # the key whose log line was lost was found by its tags, not imported twice
    tagged = [a for a in emu.keys() if emu.tags(a).get("apckx:ceremony") == cid]
    assert len(tagged) == 4


@pytest.mark.usefixtures("quick_backoff")
def test_resume_does_not_trust_a_receiver_the_journal_names_without_its_tags(
    aws_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    emu = Emu(Path.cwd(), "GetPublicKeyCertificate:error:2")
    try:
        rc, _, _ = kek_json(emu, capsys, "--kek", KEK_HEX, "--max-attempts", "2")
        assert rc == 1
        cid = only_journal()["ceremony_id"]
        # Someone's K3 pair, untagged, written into the journal as the receiver.
        foreign = emu.client.create_key(
            Exportable=True,
            KeyAttributes={"KeyAlgorithm": "ECC_NIST_P521", "KeyClass": "ASYMMETRIC_KEY_PAIR",
                           "KeyModesOfUse": {"DeriveKey": True},
                           "KeyUsage": "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT"},
            DeriveKeyUsage="TR31_K1_KEY_BLOCK_PROTECTION_KEY",
        )["Key"]["KeyArn"]  # fmt: skip
        journal = Journal.load(Path(".apckx/ceremonies"), cid)
        data = journal.to_record()
        for resource in data["resources"]:
            if resource["role"] == "receiver":
                resource["arn"] = foreign
        Journal(journal.path, data).save()
        rc, result, err = kek_json(emu, capsys, "--kek", KEK_HEX, "--resume", cid)
        assert rc == 0, err
        assert result["receiver_key_arn"] != foreign
    finally:
        emu.stop()


def test_migrate_reads_the_kek_file_before_the_first_call(
    emu: Emu, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("m.csv").write_text(
        "alias,key_hex,key_usage,key_algorithm\n"
        f"alias/rehearsal,{AES128_HEX},D0,AES_128\n"
    )
    rc = main(["migrate", "m.csv", "--kek-id", "alias/kek", "--kek-file", "typo.hex", *emu.aws])
    _, err = capsys.readouterr()
    assert rc == 2
    (line,) = error_lines(err)
    assert "typo.hex" in line
    assert emu.operations() == []


def test_a_migration_running_elsewhere_is_not_continued_twice(
    emu: Emu, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rc, _, err = kek_json(emu, capsys, "--kek", KEK_HEX, "--alias", "alias/kek")
    assert rc == 0, err
    Path("m.csv").write_text(f"alias,key_block\nalias/busy-0,{_block(KEK_HEX)}\n")
    argv = ["migrate", "m.csv", "--kek-id", "alias/kek", *emu.aws, "--output", "json"]
    def full_disk(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(KeyLog, "write", full_disk)
        assert main(argv) == 1  # stopped part way: the ceremony is unfinished
    capsys.readouterr()
    (journal_path,) = Path(".apckx/ceremonies").glob("migrate-*.json")
    holder = KeyLog(key_log_path(journal_path))  # as another process running it would
    try:
        rc = main(argv)
        _, err = capsys.readouterr()
        assert rc == 2, err
        (line,) = error_lines(err)
        assert "running in another process" in line
    finally:
        holder.close()
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert json.loads(out)["ceremony_id"] == journal_path.stem
