"""The journal: atomic, complete after every step, 0600, loadable, ids validated."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from apckx.ceremonies.journal import (
    COMPLETE,
    Journal,
    Resource,
    check_ceremony_id,
    list_journals,
    new_ceremony_id,
)
from apckx.emulator.pytest_plugin import EmulatorFixture
from apckx.errors import InputError


def test_every_update_is_on_disk(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "kek", parameters={"curve": "P521"})
    on_disk = json.loads(journal.path.read_text())
    assert on_disk["status"] == "running"
    assert on_disk["parameters"] == {"curve": "P521"}
    journal.record_resource(Resource(kind="key", role="receiver", arn="arn:1"))
    assert json.loads(journal.path.read_text())["resources"][0]["arn"] == "arn:1"
    journal.step("create_key", duration_ms=3.0)
    journal.set_output(key_arn="arn:2")
    journal.finish(COMPLETE)
    data = json.loads(journal.path.read_text())
    assert data["steps"][0]["step"] == "create_key"
    assert data["outputs"]["key_arn"] == "arn:2"
    assert data["status"] == COMPLETE
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [journal.path.name]  # no temp files left


def test_load_round_trip(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "kek", parameters={})
    journal.record_resource(Resource(kind="alias", role="kek", alias="alias/x", arn="arn:k"))
    again = Journal.load(tmp_path, journal.ceremony_id)
    assert again.find(kind="alias", role="kek") == journal.resources[0]
    assert again.find(kind="key", role="kek") is None
    assert list_journals(tmp_path) == [journal.path]


def test_ids_are_checked(tmp_path: Path) -> None:
    cid = new_ceremony_id("kek")
    assert check_ceremony_id(cid) == cid
    for bad in ("../etc/passwd", "kek", "", "kek-2026-xyz"):
        with pytest.raises(InputError):
            check_ceremony_id(bad)
    with pytest.raises(InputError, match="no journal"):
        Journal.load(tmp_path, cid)


def test_corrupt_journal_is_input_error(tmp_path: Path) -> None:
    cid = new_ceremony_id("kek")
    (tmp_path / f"{cid}.json").write_text("{not json")
    with pytest.raises(InputError):
        Journal.load(tmp_path, cid)


def _on_disk(journal: Journal) -> dict[str, Any]:
    return json.loads(journal.path.read_text())  # type: ignore[no-any-return]


def test_noted_steps_wait_for_the_next_save(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "kek", parameters={})
    journal.note_step("verify_apc_certificate", apc_root_fingerprint="AB" * 32)
    assert _on_disk(journal)["steps"] == []  # in memory only
    assert journal.steps[0]["step"] == "verify_apc_certificate"
    journal.record_resource(Resource(kind="key", role="receiver", arn="arn:1"))
    data = _on_disk(journal)  # the resource save carries the note with it
    assert [s["step"] for s in data["steps"]] == ["verify_apc_certificate"]
    assert data["resources"][0]["arn"] == "arn:1"
    journal.note_step("verify_kcv", apc_kcv="ABCDEF", local_kcv="ABCDEF")
    journal.finish(COMPLETE, outputs={"key_arn": "arn:2"})
    data = _on_disk(journal)
    assert [s["step"] for s in data["steps"]] == ["verify_apc_certificate", "verify_kcv"]
    assert data["outputs"] == {"key_arn": "arn:2"}
    assert data["status"] == COMPLETE


def test_failed_note_and_plain_steps_are_written_at_once(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "kek", parameters={})
    journal.note_step("verify_kcv", status="failed", apc_kcv="000000", local_kcv="ABCDEF")
    assert _on_disk(journal)["steps"][0]["status"] == "failed"
    journal.step("cleanup", actions=[])
    assert [s["step"] for s in _on_disk(journal)["steps"]] == ["verify_kcv", "cleanup"]


def test_saves_fsync_resources_and_status_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two fsyncs (file, directory) per save; notes cost none."""
    real_fsync = os.fsync
    fsyncs: list[int] = []

    def counting_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    journal = Journal.create(tmp_path, "kek", parameters={})
    assert len(fsyncs) == 2
    for name in ("verify_apc_certificate", "wrap_kek", "verify_kcv"):
        journal.note_step(name)
    assert len(fsyncs) == 2
    journal.record_resource(Resource(kind="key", role="kek", arn="arn:k"))
    alias = Resource(kind="alias", role="kek", alias="alias/k", arn="arn:k")
    journal.finish(COMPLETE, outputs={"key_arn": "arn:k"}, resources=[alias])
    assert len(fsyncs) == 6
    data = _on_disk(journal)
    assert [r["kind"] for r in data["resources"]] == ["key", "alias"]
    assert data["status"] == COMPLETE


def test_kek_ceremony_saves_once_per_resource(
    apc_emulator: EmulatorFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh import-kek: the creation, then one save per resource as APC confirms it, the
    last (the KEK's alias) together with the final status. Each save adds exactly one
    resource; the noted steps all reach the file."""
    from apckx.ceremonies import journal as journal_module
    from apckx.ceremonies.import_kek import plan_kek_import, run_kek_import
    from apckx.service.apc import ApcService

    snapshots: list[dict[str, Any]] = []
    real_write = journal_module.write_json_atomic

    def recording_write(path: Path, data: Any, *, mode: int = 0o600) -> None:
        real_write(path, data, mode=mode)
        snapshots.append(json.loads(path.read_text()))

    monkeypatch.setattr(journal_module, "write_json_atomic", recording_write)
    plan = plan_kek_import(certs_dir=tmp_path / "certs")
    apc = ApcService(apc_emulator.client)
    result, journal = run_kek_import(apc, bytes(range(32)), plan, journal_dir=tmp_path / "j")
    created = [c.operation for c in apc.calls if c.operation in ("CreateKey", "ImportKey")]
    aliases = [c.operation for c in apc.calls if c.operation in ("CreateAlias", "UpdateAlias")]
    assert len(created) + len(aliases) == 6  # receiver, root, KEK and their three aliases
    # At most one save per resource: concurrent confirmations may share one (group commit).
    counts = [len(s["resources"]) for s in snapshots]
    assert counts[0] == 0 and counts[-1] == 6 and len(snapshots) <= 1 + 6
    assert counts == sorted(set(counts))  # each save adds at least one resource
    assert [s["status"] for s in snapshots] == ["running"] * (len(snapshots) - 1) + [COMPLETE]
    last = snapshots[-1]["resources"][-1]
    assert (last["kind"], last["role"], last["arn"]) == ("alias", "kek", result.key_arn)
    final = _on_disk(journal)
    assert final == snapshots[-1]
    assert [s["step"] for s in final["steps"]] == [
        "verify_apc_certificate",
        "wrap_kek",
        "verify_kcv",
    ]
    assert final["outputs"]["key_arn"] == result.key_arn
    assert final["outputs"]["key_check_value"] == result.local_key_check_value


def test_concurrent_saves_share_a_write_and_each_returns_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit: two resources confirmed while a write is on its way to the disk go out
    in one write, and neither caller returns before the file holds its resource."""
    import threading

    from apckx.ceremonies import journal as journal_module

    journal = Journal.create(tmp_path / "j", "kek", parameters={})
    real_write = journal_module.write_json_atomic
    writes: list[int] = []
    first_started, release = threading.Event(), threading.Event()

    def slow_write(path: Path, data: Any, *, mode: int = 0o600) -> None:
        writes.append(len(data["resources"]))
        if len(writes) == 1:
            first_started.set()
            assert release.wait(10)
        real_write(path, data, mode=mode)

    monkeypatch.setattr(journal_module, "write_json_atomic", slow_write)
    seen: dict[str, bool] = {}
    errors: list[BaseException] = []

    def record(arn: str) -> None:
        try:
            journal.record_resource(Resource(kind="key", role="receiver", arn=arn))
            seen[arn] = arn in {r.get("arn") for r in _on_disk(journal)["resources"]}
        except BaseException as exc:  # pragma: no cover (reported below)
            errors.append(exc)

    first = threading.Thread(target=record, args=("arn:1",))
    first.start()
    assert first_started.wait(10)
    others = [threading.Thread(target=record, args=(f"arn:{n}",)) for n in (2, 3)]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + 10
    while len(journal.resources) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)  # both changes made, both callers waiting on the first write
    release.set()
    for thread in [first, *others]:
        thread.join(10)
    assert not errors
    assert writes == [1, 3]  # the second write carries both waiting resources
    assert seen == {"arn:1": True, "arn:2": True, "arn:3": True}
    assert len(_on_disk(journal)["resources"]) == 3
