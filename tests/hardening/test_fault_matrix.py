"""Fault matrix: every API call of import-kek, import-key, export-key and migrate (and the
TR-34 / RSA-wrap calls of import-key --via tr34 and export-key --via rsa), failed three
ways by the emulator (``OP:throttle:2``, ``OP:error:always``, ``OP:reset:always``).

Expected: throttling is absorbed (exit 0, the two 429s in the request log). Otherwise: a
non-zero exit, one message line on stderr and no traceback; every resource APC holds that the
run created is in a journal of that run, marked failed; and after ``apckx cleanup --ceremony``
on each of those journals (emulator restarted on the same state, without the fault), nothing
of the run is left but keys in DELETE_PENDING.

Each case starts from a copy of one prepared state (a KEK ``alias/kek`` imported over ECDH,
a working key ``alias/work`` under it), so the cases are independent and fast. botocore's
backoff is shortened for speed (the retries still happen; only the sleeps shrink).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from apckx._cli import main
from apckx.ceremonies.import_key import WorkingKeySpec, build_working_key_block, resolve_key_usage
from apckx.crypto.keys import generate_key
from apckx.emulator.pytest_plugin import make_emulator_client
from apckx.emulator.requestlog import read_request_log
from apckx.emulator.server import EmulatorConfig, parse_fault_spec, start_emulator

KEK_HEX = "6A0E5C3D9B1F27486C5D4E3F2A1B0C9D8E7F60514233241506F7E8D9CABBAC9D"
WORK_HEX = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"
NEW_KEY_HEX = "8899AABBCCDDEEFF0011223344556677"
REGION = "us-east-1"


@dataclass(frozen=True)
class Template:
    state_dir: Path
    keys: frozenset[str]
    aliases: frozenset[str]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def aws(url: str) -> list[str]:
    return ["--region", REGION, "--endpoint-url", url]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(
        AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
        AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        FAULT_KEK=KEK_HEX, FAULT_WORK=WORK_HEX, FAULT_NEW_KEY=NEW_KEY_HEX,
        FAULT_KEK2=KEK_HEX[::-1],
    )  # fmt: skip
    root = tmp_path_factory.mktemp("fault-template")
    os.chdir(root)
    state_dir = root / "state"
    state_dir.mkdir()
    emulator = start_emulator(EmulatorConfig(state_path=state_dir / "apc.db"))
    try:
        rc, _, err = run_cli(["import-kek", *aws(emulator.url), "--kek-env", "FAULT_KEK",
                              "--alias", "alias/kek", "--certs-dir", "certs"])  # fmt: skip
        assert rc == 0, err
        rc, _, err = run_cli(["import-key", *aws(emulator.url), "--kek-id", "alias/kek",
                              "--kek-env", "FAULT_KEK", "--key-env", "FAULT_WORK",
                              "--key-usage", "D0", "--key-algorithm", "AES_128",
                              "--alias", "alias/work"])  # fmt: skip
        assert rc == 0, err
        # TR-34 and RSA wrap: the RSA sender CA, signing and wrapping leaves (certs/), the CA
        # imported as a root, and a working key, made once (RSA key generation is slow).
        rc, _, err = run_cli(["import-key", *aws(emulator.url), "--via", "tr34", "--key-env",
                              "FAULT_WORK", "--key-usage", "D0", "--key-algorithm", "AES_128",
                              "--alias", "alias/tr34-work", "--certs-dir", "certs"])  # fmt: skip
        assert rc == 0, err
        rc, _, err = run_cli(["export-key", *aws(emulator.url), "--key", "alias/tr34-work",
                              "--via", "rsa", "--certs-dir", "certs", "--components", "2",
                              "--out-dir", "template-parts"])  # fmt: skip
        assert rc == 0, err
        client = make_emulator_client(emulator.url)
        keys = frozenset(k["KeyArn"] for k in client.list_keys()["Keys"])
        aliases = frozenset(a["AliasName"] for a in client.list_aliases()["Aliases"])
        client.close()
    finally:
        emulator.stop()
    try:
        yield Template(state_dir, keys, aliases)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard-mode backoff (up to seconds per retry) shortened to 10 ms."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0.01)


def manifest_rows(count: int) -> str:
    spec = WorkingKeySpec(resolve_key_usage("D0"), "AES_128")
    rows = ["alias,key_block"]
    for index in range(count):
        key = generate_key("AES_128")
        block = build_working_key_block(bytes.fromhex(KEK_HEX), "AES_256", key, spec)
        rows.append(f"alias/fm-mig-{index},{block}")
    return "\n".join(rows) + "\n"


@dataclass(frozen=True)
class Command:
    operations: tuple[str, ...]
    argv: Callable[[str, Path], list[str]]
    prepare: Callable[[Path], None] = lambda work: None


COMMANDS: dict[str, Command] = {
    # A first ceremony from a new certs dir: nothing is looked up.
    "import-kek": Command(
        ("CreateKey", "ImportKey", "GetPublicKeyCertificate", "CreateAlias"),
        lambda url, work: [
            "import-kek", *aws(url), "--kek-env", "FAULT_KEK", "--max-attempts", "3",
            "--certs-dir", str(work / "certs"), "--receiver-alias", "alias/fm-receiver",
            "--root-alias", "alias/fm-root", "--alias", "alias/fm-kek",
            "--journal-dir", str(work / "journal"), "--records-dir", str(work / "records"),
        ],
    ),
    # A later ceremony from the prepared certs dir: receiver and root are looked up, reused;
    # another KEK replaces alias/kek's (--replace: the move is explicit).
    "import-kek (repeat)": Command(
        ("GetKey", "ListTagsForResource", "UpdateAlias"),
        lambda url, work: [
            "import-kek", *aws(url), "--kek-env", "FAULT_KEK2", "--max-attempts", "3",
            "--certs-dir", str(work / "certs"), "--alias", "alias/kek", "--replace",
            "--journal-dir", str(work / "journal"), "--records-dir", str(work / "records"),
        ],
        prepare=lambda work: shutil.copytree(Path("certs"), work / "certs"),
    ),
    "import-key": Command(
        ("GetKey", "GetAlias", "ImportKey", "CreateAlias"),
        lambda url, work: [
            "import-key", *aws(url), "--kek-id", "alias/kek", "--kek-env", "FAULT_KEK",
            "--key-env", "FAULT_NEW_KEY", "--key-usage", "D0", "--key-algorithm", "AES_128",
            "--alias", "alias/fm-new", "--max-attempts", "3",
            "--journal-dir", str(work / "journal"),
        ],
    ),
    "export-key": Command(
        ("GetKey", "ExportKey"),
        lambda url, work: [
            "export-key", *aws(url), "--key", "alias/work", "--kek-id", "alias/kek",
            "--kek-env", "FAULT_KEK", "--out", str(work / "work.tr31"), "--max-attempts", "3",
            "--journal-dir", str(work / "journal"),
        ],
    ),
    # Over ECDH: the prepared receiver key and sender root (certs dir) are reused.
    "export-key (ecdh)": Command(
        ("GetKey", "ListTagsForResource", "GetPublicKeyCertificate", "ExportKey"),
        lambda url, work: [
            "export-key", *aws(url), "--key", "alias/work", "--via", "ecdh",
            "--certs-dir", str(work / "certs"), "--out", str(work / "work.tr31"),
            "--max-attempts", "3", "--journal-dir", str(work / "journal"),
        ],
        prepare=lambda work: shutil.copytree(Path("certs"), work / "certs"),
    ),
    # TR-34 from the prepared certs dir: the RSA sender root is reused (tag lookup).
    "import-key (tr34)": Command(
        ("GetParametersForImport", "ImportKey", "CreateAlias"),
        lambda url, work: [
            "import-key", *aws(url), "--via", "tr34", "--key-env", "FAULT_NEW_KEY",
            "--key-usage", "D0", "--key-algorithm", "AES_128", "--alias", "alias/fm-tr34",
            "--certs-dir", str(work / "certs"), "--max-attempts", "3",
            "--journal-dir", str(work / "journal"),
        ],
        prepare=lambda work: shutil.copytree(Path("certs"), work / "certs"),
    ),
    # RSA wrap to apckx's own (prepared) RSA key, written as components.
    "export-key (rsa)": Command(
        ("GetKey", "ExportKey"),
        lambda url, work: [
            "export-key", *aws(url), "--key", "alias/tr34-work", "--via", "rsa",
            "--certs-dir", str(work / "certs"), "--components", "2", "--out-dir",
            str(work / "parts"), "--max-attempts", "3", "--journal-dir", str(work / "journal"),
        ],
        prepare=lambda work: shutil.copytree(Path("certs"), work / "certs"),
    ),
    "migrate": Command(
        ("GetKey", "ListAliases", "ImportKey", "CreateAlias"),
        lambda url, work: [
            "migrate", str(work / "m.csv"), *aws(url), "--kek-id", "alias/kek",
            "--rate", "200", "--max-attempts", "3", "--journal-dir", str(work / "journal"),
        ],
        prepare=lambda work: (work / "m.csv").write_text(manifest_rows(3)),
    ),
}
KINDS = ("throttle:2", "error:always", "reset:always")
CASES = [
    pytest.param(command, operation, kind, id=f"{command}-{operation}-{kind.split(':')[0]}")
    for command, spec in COMMANDS.items()
    for operation in spec.operations
    for kind in KINDS
]


def copy_state(template: Template, work: Path) -> Path:
    state_dir = work / "state"
    shutil.copytree(template.state_dir, state_dir)
    return state_dir / "apc.db"


def journals(work: Path) -> list[dict[str, Any]]:
    directory = work / "journal"
    if not directory.exists():
        return []
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]


def journaled(records: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    keys = {r["arn"] for j in records for r in j["resources"] if r["kind"] == "key"
            and r.get("created")}  # fmt: skip
    aliases = {r["alias"] for j in records for r in j["resources"] if r["kind"] == "alias"}
    return keys, aliases


def apc_state(url: str) -> tuple[dict[str, str], set[str]]:
    client = make_emulator_client(url)
    try:
        keys = {k["KeyArn"]: k["KeyState"] for k in client.list_keys()["Keys"]}
        aliases = {a["AliasName"] for a in client.list_aliases()["Aliases"]}
    finally:
        client.close()
    return keys, aliases


@pytest.mark.parametrize(("command", "operation", "kind"), CASES)
def test_fault(template: Template, tmp_path: Path, command: str, operation: str, kind: str) -> None:
    spec = COMMANDS[command]
    spec.prepare(tmp_path)
    state = copy_state(template, tmp_path)
    log_path = tmp_path / "requests.jsonl"
    emulator = start_emulator(
        EmulatorConfig(
            state_path=state,
            request_log_path=log_path,
            faults=(parse_fault_spec(f"{operation}:{kind}"),),
        )
    )
    try:
        # JSON on stdout, except migrate: its one-line verdict is printed in text mode only.
        output = "text" if command == "migrate" else "json"
        rc, out, err = run_cli([*spec.argv(emulator.url, tmp_path), "--output", output])
    finally:
        emulator.stop()
    log = read_request_log(log_path)
    hit = [e for e in log if e.operation == operation]
    assert hit, f"{command} never called {operation}: {[e.operation for e in log]}"
    assert "Traceback" not in err
    if kind.startswith("throttle"):
        assert rc == 0, err
        assert sum(e.error == "ThrottlingException" for e in hit) == 2
        if output == "json":
            json.loads(out)  # the result came out whole
        else:
            assert "0 failed" in out, out
        assert all(j["status"] == "complete" for j in journals(tmp_path))
        return
    # A hard failure: non-zero exit, one message line, nothing unaccounted for.
    assert rc in (1, 2), (rc, out, err)
    # stderr: progress lines ("apckx: created ..."), then the one-line diagnosis, last.
    lines = err.strip().splitlines()
    assert lines, "no message"
    message = lines[-1]
    assert sum(line.startswith("apckx: error:") for line in lines) <= 1, err
    assert message.startswith("apckx: error:") or "key(s) failed" in message, err
    assert operation in message or "key(s) failed" in message, message
    records = journals(tmp_path)
    assert all(j["status"] == "failed" for j in records), [j["status"] for j in records]
    journal_keys, journal_aliases = journaled(records)
    # Restart on the same state without the fault; roll every journal of the run back.
    emulator = start_emulator(EmulatorConfig(state_path=state))
    try:
        keys, aliases = apc_state(emulator.url)
        new_keys = set(keys) - template.keys
        new_aliases = aliases - template.aliases
        assert new_keys <= journal_keys, "a key APC holds is missing from the journal"
        assert new_aliases <= journal_aliases, "an alias APC holds is missing from the journal"
        for record in records:
            rc, _, cleanup_err = run_cli(
                ["cleanup", "--ceremony", record["ceremony_id"], *aws(emulator.url),
                 "--journal-dir", str(tmp_path / "journal")]
            )  # fmt: skip
            assert rc == 0, cleanup_err
        keys, aliases = apc_state(emulator.url)
    finally:
        emulator.stop()
    assert aliases == set(template.aliases)
    assert {keys[arn] for arn in new_keys} <= {"DELETE_PENDING"}
    assert {keys[arn] for arn in template.keys} == {"CREATE_COMPLETE"}
    for record in records:
        if record["resources"]:
            assert json.loads(
                (tmp_path / "journal" / f"{record['ceremony_id']}.json").read_text()
            )["status"] == "rolled_back"
