"""Every command that calls APC, run once against the emulator with a request log.

Two contracts are checked on the same runs (issue 12):

* the README's IAM table lists, for every command, exactly the operations the emulator's
  request log shows it used (plus ``TagResource``, which IAM requires for tags set at
  creation), and has a row for every command apckx has;
* every command's ``--output json`` speaks the one vocabulary of ``apckx.cli._output``:
  ``alias``, ``key_arn``, ``kcv``, ``status`` from :data:`STATUSES`, ISO 8601 dates.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from apckx._cli import COMMANDS, main
from apckx.cli._output import FIELD_NAMES, STATUSES, to_json_vocabulary
from apckx.emulator.pytest_plugin import make_emulator_client, start_test_emulator
from apckx.emulator.requestlog import read_request_log
from apckx.emulator.server import EmulatorConfig

README = Path(__file__).resolve().parents[2] / "README.md"
KEK_HEX = "2B7E151628AED2A6ABF7158809CF4F3C762E7160F38B4DA56A784D9045190CFE"
KEK2_HEX = "603DEB1015CA71BE2B73AEF0857D77811F352C073B6108D72D9810A30914DFF4"
WORK_HEX = "00112233445566778899AABBCCDDEEFF"
IMPLIED_BY_TAGS = {"CreateKey", "ImportKey"}  # apckx tags every key it creates


@dataclass
class Run:
    argv: list[str]
    code: int
    operations: set[str]
    json: Any = None
    err: str = ""


@dataclass
class Session:
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def operations(self, row: str) -> set[str]:
        return set().union(*(run.operations for run in self.runs[row]))


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """Each README row's command(s), run in turn; the request log is cut per command."""
    work = tmp_path_factory.mktemp("every-command")
    log_path = work / "requests.jsonl"
    emulator = start_test_emulator(EmulatorConfig(request_log_path=log_path))
    monkeypatch = pytest.MonkeyPatch()
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_PAYMENT_CRYPTOGRAPHY"):
        monkeypatch.delenv(var, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_CONFIG_FILE": str(work / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(work / "none"),
        "AWS_EC2_METADATA_DISABLED": "true", "EVERY_KEK": KEK_HEX, "EVERY_WORK": WORK_HEX,
        "EVERY_KEK2": KEK2_HEX,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(work)
    aws = ["--endpoint-url", emulator.url, "--region", "us-east-1"]
    result = Session()
    seen = 0

    def run(row: str, *argv: str, json_output: bool = True, local: bool = False) -> Run:
        nonlocal seen
        out, err = io.StringIO(), io.StringIO()
        full = [*argv, *([] if local else aws), *(["--output", "json"] if json_output else [])]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(full)
        entries = read_request_log(log_path) if log_path.exists() else []
        ops = {e.operation for e in entries[seen:]}
        seen = len(entries)
        data = json.loads(out.getvalue()) if json_output and code == 0 else None
        record = Run(full, code, ops, data, err.getvalue())
        result.runs.setdefault(row, []).append(record)
        assert code == 0, f"{' '.join(full)}: {err.getvalue()}"
        return record

    try:
        # A fresh ceremony and a repeat one (receiver and root reused).
        kek = run("import-kek", "import-kek", "--kek-env", "EVERY_KEK", "--alias", "alias/kek")
        run("import-kek", "import-kek", "--kek-env", "EVERY_KEK", "--alias", "alias/kek2")
        # Another KEK onto that alias: moved only with --replace (UpdateAlias).
        run("import-kek", "import-kek", "--kek-env", "EVERY_KEK2", "--alias", "alias/kek2",
            "--replace")  # fmt: skip
        # Someone points alias/kek2 at the first KEK; moving it there again with --replace is
        # guessed (the hint says KEK2), imported ahead of the checks, withdrawn (DeleteKey).
        make_emulator_client(emulator.url).update_alias(AliasName="alias/kek2",
                                                        KeyArn=kek.json["key_arn"])  # fmt: skip
        withdrawn = run("import-kek", "import-kek", "--kek-env", "EVERY_KEK", "--alias",
                        "alias/kek2", "--replace")  # fmt: skip
        assert withdrawn.json["unchanged"] and "DeleteKey" in withdrawn.operations
        run("import-key", "import-key", "--kek-id", "alias/kek", "--kek-env", "EVERY_KEK",
            "--key-env", "EVERY_WORK", "--key-usage", "D0", "--key-algorithm", "AES_128",
            "--alias", "alias/work")  # fmt: skip
        # Over ECDH: once from a new certs dir (a new receiver and root), once reusing them.
        for certs, alias in (("certs-import", "alias/work-ecdh-new"), ("certs", "alias/work-ecdh")):
            run("import-key --via ecdh", "import-key", "--via", "ecdh", "--key-env", "EVERY_WORK",
                "--key-usage", "D0", "--key-algorithm", "AES_128", "--alias", alias,
                "--certs-dir", str(work / certs))  # fmt: skip
        run("export-key", "export-key", "--key", "alias/work", "--kek-id", "alias/kek",
            "--kek-env", "EVERY_KEK", "--out", str(work / "work.tr31"))  # fmt: skip
        for certs in ("certs-export", "certs"):
            run("export-key --via ecdh", "export-key", "--key", "alias/work", "--via", "ecdh",
                "--certs-dir", str(work / certs), "--out", str(work / f"{certs}.tr31"))  # fmt: skip
        run_tr34_and_rsa(run, work)
        run("check", "check", "alias/work", "--key-env", "EVERY_WORK")  # D0: a round trip
        manifest = work / "keys.csv"
        manifest.write_text(
            "alias,key_hex,key_usage,key_algorithm\nalias/m1,"
            f"{WORK_HEX},D0,AES_128\nalias/m2,{'A5' * 16},M6,AES_128\n"
        )
        for _ in range(2):  # the second run finds both keys there and skips them
            run("migrate", "migrate", str(manifest), "--kek-id", "alias/kek", "--kek-env",
                "EVERY_KEK", "--no-progress")  # fmt: skip
        ceremony = kek.json["ceremony_id"]
        run("cleanup --ceremony", "cleanup", "--ceremony", ceremony, "--dry-run")
        run("cleanup --ceremony", "cleanup", "--ceremony", ceremony)
        run("cleanup --ceremony", "cleanup", "--ceremony", ceremony)  # twice: harmless
        run("cleanup --alias", "cleanup", "--alias", "alias/work-ecdh", "--dry-run")
        run("cleanup --alias", "cleanup", "--alias", "alias/work-ecdh")
        for row, runs in result.runs.items():  # what the README's table must say
            print(row, sorted(set().union(*(r.operations for r in runs))))
        run("ceremonies", "ceremonies", local=True)
        run("ceremonies", "ceremonies", "show", ceremony, local=True)
        yield result
    finally:
        monkeypatch.undo()
        emulator.stop()


def run_tr34_and_rsa(run: Any, work: Path) -> None:
    """The --via tr34|rsa rows: a fresh TR-34 KEK ceremony and a repeat (the RSA sender root
    reused), working keys over TR-34 and RSA wrap, exports to apckx's own RSA key and relayed
    to a partner's certificate."""
    from apckx.crypto import certs

    for alias in ("alias/kek-tr34", "alias/kek-tr34-2"):
        run("import-kek --via tr34", "import-kek", "--via", "tr34", "--kek-env", "EVERY_WORK",
            "--alias", alias)  # fmt: skip
    run("import-key --via tr34", "import-key", "--via", "tr34", "--key-env", "EVERY_WORK",
        "--key-usage", "D0", "--key-algorithm", "AES_128", "--alias",
        "alias/work-tr34")  # fmt: skip
    run("import-key --via rsa", "import-key", "--via", "rsa", "--key-env", "EVERY_WORK",
        "--key-usage", "D0", "--key-algorithm", "AES_128", "--alias", "alias/work-rsa")  # fmt: skip
    for via in ("tr34", "rsa"):
        ca_key, ca = certs.new_rsa_sender_ca("RSA_3072", common_name=f"partner {via}")
        _, krd = certs.new_rsa_wrapping_leaf(ca_key, ca, "RSA_3072")
        (work / f"{via}-ca.pem").write_bytes(certs.certificate_to_pem(ca))
        (work / f"{via}-krd.pem").write_bytes(certs.certificate_to_pem(krd))
        run(f"export-key --via {via}", "export-key", "--key", "alias/work-tr34", "--via", via,
            "--components", "2", "--out-dir", str(work / f"parts-{via}"))  # fmt: skip
        run(f"export-key --via {via}", "export-key", "--key", "alias/work-tr34", "--via", via,
            "--krd-certificate", str(work / f"{via}-krd.pem"), "--krd-ca",
            str(work / f"{via}-ca.pem"), "--out", str(work / f"relayed.{via}"))  # fmt: skip


def readme_iam_rows() -> dict[str, set[str]]:
    """The README's "### IAM actions" table: row name -> the actions it lists."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### IAM actions", 1)[1].split("\n#", 1)[0]
    rows: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        actions = set(re.findall(r"`([A-Z][A-Za-z]+)`", cells[1]))
        for name in re.findall(r"`([a-z0-9][^`]*)`", cells[0]):
            rows[name] = actions
    return rows


MEASURED_ROWS = [
    "import-kek", "import-key", "import-key --via ecdh", "export-key", "export-key --via ecdh",
    "migrate", "cleanup --ceremony", "cleanup --alias", "check", "ceremonies",
    "import-kek --via tr34", "import-key --via tr34", "import-key --via rsa",
    "export-key --via tr34", "export-key --via rsa",
]  # fmt: skip


@pytest.mark.parametrize("row", MEASURED_ROWS)
def test_readme_iam_row_lists_exactly_the_operations_used(session: Session, row: str) -> None:
    measured = session.operations(row)
    if measured & IMPLIED_BY_TAGS:
        measured |= {"TagResource"}
    rows = readme_iam_rows()
    assert row in rows, f"README's IAM table has no row for `{row}`"
    assert rows[row] == measured, (
        f"`{row}`: README lists {sorted(rows[row])}, the request log shows {sorted(measured)}"
    )


def test_readme_iam_table_has_a_row_for_every_command() -> None:
    rows = readme_iam_rows()
    named = {name.split()[0] for name in rows}
    assert set(COMMANDS) <= named, f"no IAM row for {sorted(set(COMMANDS) - named)}"
    for name, command in COMMANDS.items():  # local only: no AWS call at all
        if command.uses_aws:
            continue
        assert rows.get(name) == set() or rows.get(f"{name} inspect") == set(), name


def walk(data: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) for every member of every object, outside API ``parameters``."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield path, key, value
            if key != "parameters":
                yield from walk(value, f"{path}.{key}")
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from walk(item, f"{path}[{index}]")


def all_json(session: Session) -> list[tuple[str, Any]]:
    return [(" ".join(r.argv[:2]), r.json) for runs in session.runs.values() for r in runs]


def test_every_json_output_speaks_one_vocabulary(session: Session) -> None:
    outputs = all_json(session)
    assert len(outputs) == sum(len(runs) for runs in session.runs.values()) >= 12
    statuses: set[str] = set()
    for command, data in outputs:
        assert data is not None, command
        for path, key, value in walk(data):
            assert key not in FIELD_NAMES, f"{command}: {path}.{key} should be {FIELD_NAMES[key]}"
            if key == "status":
                assert value in STATUSES, f"{command}: {path}.status = {value!r}"
                statuses.add(value)
            if key.endswith(("_at", "_date")) or key in ("started", "finished"):
                datetime.fromisoformat(value)  # ISO 8601, or this raises
    assert {"complete", "planned", "deleted", "deletion_scheduled", "imported", "skipped"} <= (
        statuses
    )


def test_every_key_arn_and_kcv_is_named_alike(session: Session) -> None:
    kek = session.runs["import-kek"][0].json
    assert kek["alias"] == "alias/kek"
    assert re.fullmatch(r"[0-9A-F]{6}", kek["kcv"]) and kek["kcv"] == kek["local_kcv"]
    assert kek["key_arn"].startswith("arn:aws:payment-cryptography:us-east-1:")
    work = session.runs["import-key"][0].json
    assert work["alias"] == "alias/work" and work["key_arn"] and work["kcv"]
    exported = session.runs["export-key"][0].json
    assert exported["kcv"] == work["kcv"] and exported["key_arn"] == work["key_arn"]
    migrated = session.runs["migrate"][0].json
    assert {k["alias"] for k in migrated["keys"]} == {"alias/m1", "alias/m2"}
    assert all(k["status"] == "imported" and k["key_arn"] and k["kcv"] for k in migrated["keys"])


def test_vocabulary_on_a_record() -> None:
    got = to_json_vocabulary({
        "key_alias": "alias/a", "arn": "arn:1", "key_check_value": "ABCDEF",
        "started": 1764364000.5, "deleted": 3, "created": True,
        "actions": [{"ok": True, "outcome": "deletion scheduled (2026-12-08T23:25:03+00:00)",
                     "parameters": {"KeyArn": "arn:1"}},
                    {"ok": False, "outcome": "AccessDeniedException"}],
        "ceremony_id": "kek-1",
    })  # fmt: skip
    assert got == {
        "alias": "alias/a", "key_arn": "arn:1", "kcv": "ABCDEF",
        "started": "2025-11-28T21:06:40.500+00:00", "deleted": 3, "created": True,
        "actions": [{"ok": True, "outcome": "deletion scheduled (2026-12-08T23:25:03+00:00)",
                     "parameters": {"KeyArn": "arn:1"}, "status": "deletion_scheduled",
                     "deletion_date": "2026-12-08T23:25:03+00:00"},
                    {"ok": False, "outcome": "AccessDeniedException", "status": "failed"}],
        "ceremony_id": "kek-1", "status": "complete",
    }  # fmt: skip


def test_vocabulary_on_a_check_record() -> None:
    got = to_json_vocabulary({
        "KeyArn": "arn:1", "KeyUsage": "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY",
        "KeyAlgorithm": "AES_128", "KeyCheckValue": "ABCDEF", "ComparedWith": "cleartext",
        "Outcome": "mismatch",
        "Steps": [{"check": "decrypt", "operations": ["DecryptData"], "outcome": "mismatch",
                   "detail": "plaintext differs"}],
    })  # fmt: skip
    assert got == {
        "key_arn": "arn:1", "key_usage": "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY",
        "key_algorithm": "AES_128", "kcv": "ABCDEF", "compared_with": "cleartext",
        "status": "mismatch",
        "steps": [{"check": "decrypt", "operations": ["DecryptData"], "outcome": "mismatch",
                   "detail": "plaintext differs", "status": "mismatch"}],
    }  # fmt: skip
    assert got["status"] in STATUSES
