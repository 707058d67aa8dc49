"""The journal: atomic, complete after every step, 0600, loadable, ids validated."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from apckx.ceremonies.journal import (
    COMPLETE,
    Journal,
    Resource,
    check_ceremony_id,
    list_journals,
    new_ceremony_id,
)
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
