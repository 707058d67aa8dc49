"""A repeat ceremony sends its second reads beside the alias lookups (party hints), and a
repeat that moves its alias (``--replace``) imports at once, its parties verified beside the
import (repeat_import): two calls in sequence, and a wrong guess withdrawn.

Counted from the emulator's request log: calls in sequence, not timings.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from apckx._cli import main
from apckx.ceremonies.import_kek import longest_call_chain
from apckx.ceremonies.party_hints import HINT_FILE
from apckx.emulator.pytest_plugin import make_emulator_client, start_test_emulator
from apckx.emulator.requestlog import read_request_log
from apckx.emulator.server import EmulatorConfig, RunningEmulator

KEK_HEX = "2B7E151628AED2A6ABF7158809CF4F3C762E7160F38B4DA56A784D9045190CFE"
KEK2_HEX = "603DEB1015CA71BE2B73AEF0857D77811F352C073B6108D72D9810A30914DFF4"


@pytest.fixture
def logged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                        "HINT_KEK": KEK_HEX, "HINT_KEK2": KEK2_HEX}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    emulator = start_test_emulator(EmulatorConfig(
        request_log_path=tmp_path / "requests.jsonl", latency_ms=150  # calls in flight overlap
    ))
    try:
        yield emulator
    finally:
        emulator.stop()


def in_sequence(entries: list[object]) -> int:
    """Calls one after another (each starting after the previous ended): round trips."""
    return longest_call_chain([(e.start, e.end) for e in entries])  # type: ignore[attr-defined]


class Runner:
    def __init__(self, emulator: RunningEmulator, log: Path) -> None:
        self.emulator, self.log, self.seen = emulator, log, 0

    def import_kek(self, *options: str, region: str = "us-east-1") -> tuple[dict[str, object],
                                                                              list[object]]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["import-kek", *options, "--endpoint-url", self.emulator.url,
                         "--region", region, "--output", "json"])  # fmt: skip
        assert code == 0, err.getvalue()
        self.stderr = err.getvalue()
        return json.loads(out.getvalue()), self.take()

    def take(self) -> list[object]:
        """The calls logged since the last take."""
        entries = read_request_log(self.log)
        new, self.seen = entries[self.seen :], len(entries)
        return list(new)


@pytest.fixture
def runner(logged: RunningEmulator, tmp_path: Path) -> Runner:
    return Runner(logged, tmp_path / "requests.jsonl")


def test_a_repeat_ceremony_reads_its_parties_in_one_round_trip(
    runner: Runner, tmp_path: Path
) -> None:
    first, fresh = runner.import_kek("--kek-env", "HINT_KEK", "--alias", "alias/kek-1")
    hint = tmp_path / "certs" / HINT_FILE
    assert stat.S_IMODE(hint.stat().st_mode) == 0o600
    recorded = json.loads(hint.read_text())
    assert recorded["receiver_arn"] == first["receiver_key_arn"]
    assert recorded["root_arn"] == first["root_key_arn"]
    assert in_sequence(fresh) >= 4  # a new receiver: nothing to prefetch

    second, repeat = runner.import_kek("--kek-env", "HINT_KEK2", "--alias", "alias/kek-2")
    assert second["receiver_reused"] and second["root_reused"]
    assert second["receiver_key_arn"] == first["receiver_key_arn"]
    assert second["kcv"] == second["local_kcv"]
    # GetKey of both aliases, APC's certificate and the root's tags: one round trip, then
    # ImportKey, then the KEK's alias (a new alias here: UpdateAlias, then CreateAlias).
    (kek_import,) = [e for e in repeat if e.operation == "ImportKey"]  # type: ignore[attr-defined]
    before = [e for e in repeat if e.end <= kek_import.start]  # type: ignore[attr-defined]
    assert in_sequence(before) == 1
    assert {e.operation for e in before} >= {"GetKey", "GetPublicKeyCertificate",  # type: ignore[attr-defined]
                                             "ListTagsForResource"}  # fmt: skip
    operations = [e.operation for e in repeat]  # type: ignore[attr-defined]
    assert operations.count("GetPublicKeyCertificate") == 1
    assert operations.count("ListTagsForResource") == 1


def test_a_planted_or_stale_hint_costs_a_read_never_a_wrong_key(
    runner: Runner, tmp_path: Path
) -> None:
    first, _ = runner.import_kek("--kek-env", "HINT_KEK", "--alias", "alias/kek-1")
    hint = tmp_path / "certs" / HINT_FILE
    planted = json.loads(hint.read_text())
    # Another key of the same account in the hint: a K3 pair that is not the receiver.
    other, _ = runner.import_kek("--kek-env", "HINT_KEK", "--alias", "alias/kek-x",
                                 "--certs-dir", str(tmp_path / "other-certs"),
                                 "--receiver-alias", "alias/other-receiver",
                                 "--root-alias", "alias/other-root")  # fmt: skip
    planted["receiver_arn"] = other["receiver_key_arn"]
    planted["root_arn"] = other["root_key_arn"]
    hint.write_text(json.dumps(planted))

    second, calls = runner.import_kek("--kek-env", "HINT_KEK2", "--alias", "alias/kek-2")
    assert second["receiver_key_arn"] == first["receiver_key_arn"]  # the alias's, not the hint's
    assert second["root_key_arn"] == first["root_key_arn"]
    assert second["kcv"] == second["local_kcv"]
    operations = [e.operation for e in calls]  # type: ignore[attr-defined]
    assert operations.count("GetPublicKeyCertificate") == 2  # the wasted read, then the right one
    # The hint now names the parties this run verified.
    assert json.loads(hint.read_text())["receiver_arn"] == first["receiver_key_arn"]


def test_a_hint_is_only_for_its_own_endpoint_region_and_sender(runner: Runner) -> None:
    runner.import_kek("--kek-env", "HINT_KEK", "--alias", "alias/kek-1")
    # Same certs dir, another region: the hint does not apply, nothing is prefetched.
    _, calls = runner.import_kek("--kek-env", "HINT_KEK", "--alias", "alias/kek-1",
                                 region="eu-west-1")  # fmt: skip
    operations = [e.operation for e in calls]  # type: ignore[attr-defined]
    assert "ListTagsForResource" not in operations  # no root in that region to read tags of
    assert operations.count("GetPublicKeyCertificate") == 1


# -- a repeat that moves its alias: ImportKey beside the reads ------------------------------
def _operations(calls: list[object]) -> list[str]:
    return [e.operation for e in calls]  # type: ignore[attr-defined]


def _journal(result: dict[str, object]) -> dict[str, object]:
    return json.loads(Path(str(result["journal"])).read_text())  # type: ignore[no-any-return]


def test_a_repeat_that_moves_its_alias_is_two_calls_in_sequence(runner: Runner) -> None:
    first, _ = runner.import_kek("--kek-env", "HINT_KEK")
    second, calls = runner.import_kek("--kek-env", "HINT_KEK2", "--replace")
    assert in_sequence(calls) == 2
    (kek_import,) = [e for e in calls if e.operation == "ImportKey"]  # type: ignore[attr-defined]
    reads = [e for e in calls if e.operation != "ImportKey" and e.operation != "UpdateAlias"]  # type: ignore[attr-defined]
    # Every confirming read is in flight with the import, none ends before it starts.
    assert sorted(_operations(reads)) == ["GetKey", "GetKey", "GetKey",
                                          "GetPublicKeyCertificate", "ListTagsForResource"]
    assert all(e.end > kek_import.start for e in reads)  # type: ignore[attr-defined]
    assert _operations(calls)[-1] == "UpdateAlias"
    assert second["kcv"] == second["local_kcv"] != first["kcv"]
    assert second["receiver_reused"] and second["root_reused"]
    assert second["receiver_key_arn"] == first["receiver_key_arn"]
    assert second["replaced_key_arn"] == first["key_arn"]
    assert second["sequential_calls"] == 2
    journal = _journal(second)
    steps = [s["step"] for s in journal["steps"]]  # type: ignore[index, union-attr]
    assert "speculative_import" in steps and "withdraw_speculative_import" not in steps
    roles = {(r["role"], r["created"]) for r in journal["resources"]}  # type: ignore[index, union-attr]
    assert roles >= {("kek", True), ("receiver", False), ("root", False)}
    apc = make_emulator_client(runner.emulator.url)
    alias = apc.get_alias(AliasName=str(second["alias"]))["Alias"]
    assert alias["KeyArn"] == second["key_arn"]


def test_the_same_kek_again_with_replace_imports_nothing(runner: Runner) -> None:
    first, _ = runner.import_kek("--kek-env", "HINT_KEK")
    again, calls = runner.import_kek("--kek-env", "HINT_KEK", "--replace")
    assert again["unchanged"] is True and again["key_arn"] == first["key_arn"]
    assert "ImportKey" not in _operations(calls) and "DeleteKey" not in _operations(calls)


def test_an_alias_someone_moved_to_this_kek_is_found_and_the_guess_withdrawn(
    runner: Runner, tmp_path: Path
) -> None:
    first, _ = runner.import_kek("--kek-env", "HINT_KEK")
    # Another custodian (another certs dir) puts KEK2 under the same alias.
    other, _ = runner.import_kek("--kek-env", "HINT_KEK2", "--replace",
                                 "--certs-dir", str(tmp_path / "other-certs"),
                                 "--receiver-alias", "alias/other-receiver",
                                 "--root-alias", "alias/other-root")  # fmt: skip
    # Our hint still says the alias names KEK1: a speculative import of KEK2, then the alias
    # check finds KEK2 already there.
    again, calls = runner.import_kek("--kek-env", "HINT_KEK2", "--replace")
    assert again["unchanged"] is True and again["key_arn"] == other["key_arn"]
    operations = _operations(calls)
    assert operations.count("ImportKey") == 1 and operations.count("DeleteKey") == 1
    assert "UpdateAlias" not in operations and "CreateAlias" not in operations
    apc = make_emulator_client(runner.emulator.url)
    journal = _journal(again)
    (speculative,) = [r for r in journal["resources"] if r["role"] == "kek" and r["kind"] == "key"]  # type: ignore[index, union-attr]
    assert apc.get_key(KeyIdentifier=speculative["arn"])["Key"]["KeyState"] == "DELETE_PENDING"
    (withdrawn,) = [s for s in journal["steps"] if s["step"] == "withdraw_speculative_import"]  # type: ignore[index, union-attr]
    assert withdrawn["status"] == "done" and withdrawn["arn"] == speculative["arn"]
    assert "withdrew the key imported ahead of the checks" in runner.stderr
    alias = apc.get_alias(AliasName=str(first["alias"]))["Alias"]
    assert alias["KeyArn"] == other["key_arn"]


def test_a_receiver_alias_moved_since_means_the_guess_is_withdrawn_and_the_run_looks_up(
    runner: Runner, tmp_path: Path
) -> None:
    first, _ = runner.import_kek("--kek-env", "HINT_KEK")
    other, _ = runner.import_kek("--kek-env", "HINT_KEK", "--alias", "alias/kek-x",
                                 "--certs-dir", str(tmp_path / "other-certs"),
                                 "--receiver-alias", "alias/other-receiver",
                                 "--root-alias", "alias/other-root")  # fmt: skip
    apc = make_emulator_client(runner.emulator.url)
    apc.update_alias(AliasName=str(first["receiver_alias"]), KeyArn=other["receiver_key_arn"])
    second, calls = runner.import_kek("--kek-env", "HINT_KEK2", "--replace")
    assert second["receiver_key_arn"] == other["receiver_key_arn"]  # the alias's, looked up
    assert second["kcv"] == second["local_kcv"] and second["replaced_key_arn"] == first["key_arn"]
    operations = _operations(calls)
    assert operations.count("ImportKey") == 2 and operations.count("DeleteKey") == 1
    journal = _journal(second)
    keks = [r["arn"] for r in journal["resources"] if r["role"] == "kek" and r["kind"] == "key"]  # type: ignore[index, union-attr]
    assert len(keks) == 2 and keks[1] == second["key_arn"]
    assert apc.get_key(KeyIdentifier=keks[0])["Key"]["KeyState"] == "DELETE_PENDING"
    assert "now names" in runner.stderr


def test_a_tampered_cached_certificate_is_never_used(runner: Runner, tmp_path: Path) -> None:
    runner.import_kek("--kek-env", "HINT_KEK")
    hint = tmp_path / "certs" / HINT_FILE
    record = json.loads(hint.read_text())
    _leaf, chain = record["receiver_certificate"]
    record["receiver_certificate"] = [chain, chain]  # APC's root in the leaf's place
    hint.write_text(json.dumps(record))
    _, calls = runner.import_kek("--kek-env", "HINT_KEK2", "--replace")
    (kek_import,) = [e for e in calls if e.operation == "ImportKey"]  # type: ignore[attr-defined]
    certificate = [e for e in calls if e.operation == "GetPublicKeyCertificate"]
    assert all(e.end <= kek_import.start for e in certificate)  # type: ignore[attr-defined]
    assert in_sequence(calls) == 3 and "DeleteKey" not in _operations(calls)
    assert "not using the cached certificate" in runner.stderr


@pytest.mark.parametrize("how", ["environment", "writable by others"])
def test_no_speculation_when_turned_off_or_the_hint_is_not_private(
    runner: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    runner.import_kek("--kek-env", "HINT_KEK")
    if how == "environment":
        monkeypatch.setenv("APCKX_NO_SPECULATION", "1")
    else:
        (tmp_path / "certs" / HINT_FILE).chmod(0o666)
    _, calls = runner.import_kek("--kek-env", "HINT_KEK2", "--replace")
    (kek_import,) = [e for e in calls if e.operation == "ImportKey"]  # type: ignore[attr-defined]
    assert all(e.end <= kek_import.start for e in calls if e.operation == "GetKey")  # type: ignore[attr-defined]
    # Turned off: the hinted reads still go out beside the lookups; an ignored hint: none.
    assert in_sequence(calls) == (3 if how == "environment" else 4)
