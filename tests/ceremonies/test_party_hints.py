"""A repeat ceremony sends its second reads beside the alias lookups (party hints).

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
from apckx.emulator.pytest_plugin import start_test_emulator
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
        entries = read_request_log(self.log)
        new, self.seen = entries[self.seen :], len(entries)
        return json.loads(out.getvalue()), list(new)


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
