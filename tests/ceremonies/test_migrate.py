"""The migrate engine against the emulator: mixed rows, failures, throttling, resume."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from apckx.ceremonies.import_kek import plan_kek_import, run_kek_import
from apckx.ceremonies.import_key import (
    WorkingKeySpec,
    build_working_key_block,
    compute_key_kcv,
    resolve_key_usage,
)
from apckx.ceremonies.journal import Journal
from apckx.ceremonies.manifest import Manifest, ManifestError, parse_manifest_text
from apckx.ceremonies.migrate import (
    ALIAS_TAG,
    ALIASED,
    CEREMONY_TAG,
    FAILED_KEY,
    IMPORTED,
    SKIPPED,
    KeyLog,
    MigrationOptions,
    block_digest,
    key_log_path,
    run_migration,
)
from apckx.crypto.keys import generate_key
from apckx.emulator.pytest_plugin import make_emulator_client, start_test_emulator
from apckx.emulator.server import EmulatorConfig, parse_fault_spec
from apckx.errors import KcvMismatchError
from apckx.service.apc import ApcService

KEK = bytes.fromhex("00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA9876543210")
FAST = {"rate": 500.0, "backoff_base": 0.01}


@dataclass
class Env:
    apc: ApcService
    kek_arn: str
    journal_dir: Path
    emulator: Any


def _start(tmp_path: Path, *faults: str) -> Env:
    """An emulator holding a KEK whose cleartext we know; faults apply after the KEK setup.

    The KEK ceremony runs on a fault-free emulator over a state file, then the emulator is
    restarted on the same state with the faults (so the ceremony's calls don't take them).
    """
    state = tmp_path / "state.db"
    setup = start_test_emulator(EmulatorConfig(state_path=state))
    try:
        apc = ApcService(make_emulator_client(setup.url))
        plan = plan_kek_import(
            key_algorithm="AES_256", certs_dir=tmp_path / "certs", kek_alias="alias/kek"
        )
        result, _ = run_kek_import(apc, KEK, plan, journal_dir=tmp_path / "kek-journal")
    finally:
        setup.stop()
    emulator = start_test_emulator(
        EmulatorConfig(state_path=state, faults=tuple(parse_fault_spec(f) for f in faults))
    )
    apc = ApcService(make_emulator_client(emulator.url, max_attempts=1))
    return Env(apc, result.key_arn, tmp_path / "journal", emulator)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    started = _start(tmp_path)
    yield started
    started.emulator.stop()


def _block(key: bytes, usage: str = "D0", algorithm: str = "AES_128") -> str:
    spec = WorkingKeySpec(resolve_key_usage(usage), algorithm)
    return build_working_key_block(KEK, "AES_256", key, spec)


def _manifest(rows: list[dict[str, str]]) -> Manifest:
    columns = ["alias", "key_block", "key_hex", "key_usage", "key_algorithm", "tags", "kcv"]
    lines = [",".join(columns)] + [",".join(r.get(c, "") for c in columns) for r in rows]
    return parse_manifest_text("\n".join(lines) + "\n", "manifest.csv")


def _keys_rows(count: int, prefix: str = "k") -> tuple[list[dict[str, str]], dict[str, str]]:
    rows, expected = [], {}
    for i in range(count):
        key = generate_key("AES_128")
        rows.append({"alias": f"alias/{prefix}{i}", "key_block": _block(key)})
        expected[f"alias/{prefix}{i}"] = compute_key_kcv(key, "AES_128")
    return rows, expected


def _options(env: Env, **extra: Any) -> MigrationOptions:
    return MigrationOptions(kek_id="alias/kek", journal_dir=env.journal_dir, **{**FAST, **extra})


def _working_keys(apc: ApcService) -> list[dict[str, Any]]:
    return [
        k
        for k in apc.list_keys()
        if k["KeyAttributes"]["KeyUsage"] == "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY"
        or k["KeyAttributes"]["KeyUsage"] == "TR31_M7_HMAC_KEY"
        or k["KeyAttributes"]["KeyUsage"] == "TR31_P0_PIN_ENCRYPTION_KEY"
    ]


def test_mixed_rows_all_imported_with_kcvs(env: Env) -> None:
    block_key, tdes_key, hmac_key = (
        generate_key("AES_128"),
        generate_key("TDES_2KEY"),
        generate_key("HMAC_SHA256"),
    )
    manifest = _manifest(
        [
            {
                "alias": "alias/blk",
                "key_block": _block(block_key),
                "tags": "team=pay;env=t",
                "kcv": compute_key_kcv(block_key, "AES_128"),
            },
            {
                "alias": "alias/pin",
                "key_hex": tdes_key.hex(),
                "key_usage": "P0",
                "key_algorithm": "TDES_2KEY",
            },
            {
                "alias": "alias/mac",
                "key_hex": hmac_key.hex(),
                "key_usage": "TR31_M7_HMAC_KEY",
                "key_algorithm": "HMAC_SHA256",
            },
        ]
    )
    result = run_migration(env.apc, manifest, _options(env, kek=KEK))
    assert result.ok and [o.status for o in result.outcomes] == [IMPORTED] * 3
    for alias, key, algorithm in [
        ("alias/blk", block_key, "AES_128"),
        ("alias/pin", tdes_key, "TDES_2KEY"),
        ("alias/mac", hmac_key, "HMAC_SHA256"),
    ]:
        described = env.apc.get_key(alias)
        assert described["KeyCheckValue"].upper() == compute_key_kcv(key, algorithm)
        assert described["KeyAttributes"]["KeyAlgorithm"] == algorithm
    tags = env.apc.list_tags_for_resource(env.apc.get_key("alias/blk")["KeyArn"])
    assert tags["team"] == "pay" and tags[CEREMONY_TAG] == result.ceremony_id
    journal_text = result.journal_path.read_text() + key_log_path(result.journal_path).read_text()
    for secret in (KEK, block_key, tdes_key, hmac_key):
        assert secret.hex().upper() not in journal_text.upper()
    assert Journal.load(env.journal_dir, result.ceremony_id).status == "complete"


def test_one_failing_key_does_not_stop_the_others(env: Env) -> None:
    rows, expected = _keys_rows(5)
    bad = rows[2]["key_block"]
    rows[2]["key_block"] = bad[:-1] + ("0" if bad[-1] != "0" else "1")  # MAC no longer verifies
    result = run_migration(env.apc, _manifest(rows), _options(env))
    statuses = [o.status for o in result.outcomes]
    assert statuses == [IMPORTED, IMPORTED, FAILED_KEY, IMPORTED, IMPORTED]
    assert "ImportKey failed: ValidationException" in (result.outcomes[2].error or "")
    assert not result.ok and result.failed == 1
    assert len(_working_keys(env.apc)) == 4
    # A re-run retries the failed row and skips the rest (checked by KCV).
    again = run_migration(env.apc, _manifest(rows), _options(env))
    assert [o.status for o in again.outcomes] == [SKIPPED, SKIPPED, FAILED_KEY, SKIPPED, SKIPPED]
    assert len(_working_keys(env.apc)) == 4
    for alias, kcv in expected.items():
        if alias != "alias/k2":
            assert env.apc.get_key(alias)["KeyCheckValue"].upper() == kcv


def test_throttling_is_absorbed_without_duplicates(tmp_path: Path) -> None:
    env = _start(tmp_path, "ImportKey:throttle:3", "CreateAlias:throttle:2")
    try:
        rows, expected = _keys_rows(6)
        result = run_migration(env.apc, _manifest(rows), _options(env))
        assert result.ok
        assert result.stats.throttled == 5 and result.stats.retried == 5
        assert len(_working_keys(env.apc)) == 6
        for alias, kcv in expected.items():
            assert env.apc.get_key(alias)["KeyCheckValue"].upper() == kcv
    finally:
        env.emulator.stop()


def test_persistent_server_errors_fail_the_key_not_the_run(tmp_path: Path) -> None:
    env = _start(tmp_path, "ImportKey:error:always")
    try:
        rows, _ = _keys_rows(2)
        result = run_migration(env.apc, _manifest(rows), _options(env, max_attempts=2))
        assert [o.status for o in result.outcomes] == [FAILED_KEY, FAILED_KEY]
        assert "InternalServerException" in (result.outcomes[0].error or "")
    finally:
        env.emulator.stop()


def test_interrupted_run_resumes_each_key_exactly_once(env: Env) -> None:
    rows, expected = _keys_rows(12)
    manifest = _manifest(rows)

    def interrupt_after_five(progress: Any) -> None:
        if progress.done >= 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_migration(env.apc, manifest, _options(env, workers=2), on_progress=interrupt_after_five)
    first = list(env.journal_dir.glob("migrate-*.json"))
    assert len(first) == 1 and '"status": "failed"' in first[0].read_text()
    imported_before = len(_working_keys(env.apc))
    assert 5 <= imported_before < 12
    result = run_migration(env.apc, manifest, _options(env))
    assert result.ok
    # The re-run continues the same ceremony: one journal, one id, one tag for every key.
    assert result.ceremony_id == first[0].stem
    assert list(env.journal_dir.glob("migrate-*.json")) == first
    assert result.count(SKIPPED) + result.count(ALIASED) == imported_before
    assert result.count(IMPORTED) == 12 - imported_before
    keys = _working_keys(env.apc)
    assert len(keys) == 12  # every key exactly once
    aliases = {a["AliasName"]: a.get("KeyArn") for a in env.apc.list_aliases()}
    assert len({aliases[a] for a in expected}) == 12
    for alias, kcv in expected.items():
        assert env.apc.get_key(alias)["KeyCheckValue"].upper() == kcv


def test_key_imported_but_never_recorded_is_recovered(env: Env) -> None:
    """A crash between ImportKey's answer and the log write: found by its tags, aliased."""
    rows, expected = _keys_rows(2)
    manifest = _manifest(rows)
    crashed = Journal.create(
        env.journal_dir, "migrate", parameters={"kek_arn": env.kek_arn, "manifest": "manifest.csv"}
    )
    log = KeyLog(key_log_path(crashed.path))
    log.write(
        "importing", alias="alias/k0", line=2, block_sha256=block_digest(rows[0]["key_block"])
    )
    log.close()
    env.apc.import_key(
        key_material={
            "Tr31KeyBlock": {
                "WrappingKeyIdentifier": env.kek_arn,
                "WrappedKeyBlock": rows[0]["key_block"],
            }
        },
        tags={CEREMONY_TAG: crashed.ceremony_id, ALIAS_TAG: "alias/k0"},
    )
    result = run_migration(env.apc, manifest, _options(env))
    assert [o.status for o in result.outcomes] == [ALIASED, IMPORTED]
    assert len(_working_keys(env.apc)) == 2
    assert env.apc.get_key("alias/k0")["KeyCheckValue"].upper() == expected["alias/k0"]


def test_alias_taken_by_another_key_fails_that_row(env: Env) -> None:
    rows, _ = _keys_rows(1)
    other = env.apc.create_key(
        key_attributes={
            "KeyAlgorithm": "AES_128",
            "KeyClass": "SYMMETRIC_KEY",
            "KeyUsage": "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY",
            "KeyModesOfUse": {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True},
        },
        exportable=True,
    )
    env.apc.create_alias("alias/k0", other["KeyArn"])
    rows[0]["kcv"] = compute_key_kcv(generate_key("AES_128"), "AES_128")
    result = run_migration(env.apc, _manifest(rows), _options(env))
    assert result.outcomes[0].status == FAILED_KEY
    assert "already points at" in (result.outcomes[0].error or "")
    no_kcv = run_migration(env.apc, _manifest(_keys_rows(1)[0]), _options(env))
    assert "no KCV to check it against" in (no_kcv.outcomes[0].error or "")


def test_wrong_kek_stops_before_any_import(env: Env) -> None:
    manifest = _manifest(
        [
            {
                "alias": "alias/x",
                "key_hex": generate_key("AES_128").hex(),
                "key_usage": "D0",
                "key_algorithm": "AES_128",
            }
        ]
    )
    before = len(env.apc.calls)
    with pytest.raises(KcvMismatchError):
        run_migration(env.apc, manifest, _options(env, kek=bytes(reversed(KEK))))
    assert "ImportKey" not in [c.operation for c in env.apc.calls[before:]]


def test_rows_checked_against_the_kek_before_any_import(env: Env) -> None:
    tdes_kbpk = bytes.fromhex("0123456789ABCDEFFEDCBA98765432101122334455667788")
    spec = WorkingKeySpec(resolve_key_usage("D0"), "TDES_2KEY")
    version_b = build_working_key_block(tdes_kbpk, "TDES_3KEY", generate_key("TDES_2KEY"), spec)
    manifest = _manifest(
        [
            {"alias": "alias/ok", "key_block": _block(generate_key("AES_128"))},
            {"alias": "alias/vb", "key_block": version_b},
            {
                "alias": "alias/nokek",
                "key_hex": generate_key("AES_128").hex(),
                "key_usage": "D0",
                "key_algorithm": "AES_128",
            },
        ]
    )
    before = len(env.apc.calls)
    with pytest.raises(ManifestError) as info:
        run_migration(env.apc, manifest, _options(env))
    assert info.value.errors[0].startswith("manifest.csv:3: a version B block")
    assert info.value.errors[1].startswith("manifest.csv:4: a key_hex row needs")
    assert [c.operation for c in env.apc.calls[before:]] == ["GetKey"]


def test_cleanup_rolls_a_migration_back(env: Env) -> None:
    from apckx.ceremonies.cleanup import run_ceremony_cleanup

    rows, _ = _keys_rows(3)
    result = run_migration(env.apc, _manifest(rows), _options(env))
    journal = Journal.load(env.journal_dir, result.ceremony_id)
    assert sorted(r.kind for r in journal.resources) == ["alias"] * 3 + ["key"] * 3
    actions = run_ceremony_cleanup(env.apc, journal, delete_in_days=7)
    assert all(a.ok for a in actions)
    remaining = {a["AliasName"] for a in env.apc.list_aliases()}
    assert not remaining & {"alias/k0", "alias/k1", "alias/k2"}
    states = {k["KeyState"] for k in _working_keys(env.apc)}
    assert states == {"DELETE_PENDING"}


def test_dropped_connections(tmp_path: Path) -> None:
    """Reads are retried after a reset; an ImportKey that may have happened is not repeated
    in the run, and the re-run looks for it by its tags before importing it."""
    env = _start(tmp_path, "ListAliases:reset:1", "ImportKey:reset:1")
    try:
        rows, expected = _keys_rows(3)
        result = run_migration(env.apc, _manifest(rows), _options(env, workers=1))
        statuses = [o.status for o in result.outcomes]
        assert statuses.count(FAILED_KEY) == 1 and statuses.count(IMPORTED) == 2
        failed = next(o for o in result.outcomes if o.status == FAILED_KEY)
        assert "ConnectionError" in (failed.error or "")
        log_text = key_log_path(result.journal_path).read_text()
        assert '"ambiguous": true' in log_text
        before = len(env.apc.calls)
        again = run_migration(env.apc, _manifest(rows), _options(env))
        assert again.ok
        operations = [c.operation for c in env.apc.calls[before:]]
        # No unaliased candidates to search by tag; the two keys the first run logged are each
        # trusted only after one tag check (issue 13 item 2: local state alone decides nothing).
        assert operations.count("ListTagsForResource") == 2
        assert operations.count("ImportKey") == 1
        assert len(_working_keys(env.apc)) == 3
        for alias, kcv in expected.items():
            assert env.apc.get_key(alias)["KeyCheckValue"].upper() == kcv
    finally:
        env.emulator.stop()


def test_an_earlier_kcv_counts_only_for_the_same_block(env: Env) -> None:
    """Same alias, another key's block and no kcv column: not 'already there'."""
    rows, _ = _keys_rows(1)
    assert run_migration(env.apc, _manifest(rows), _options(env)).ok
    other_rows, _ = _keys_rows(1)  # alias/k0 again, a different key
    result = run_migration(env.apc, _manifest(other_rows), _options(env))
    assert result.outcomes[0].status == FAILED_KEY
    assert "no KCV to check it against" in (result.outcomes[0].error or "")
    assert run_migration(env.apc, _manifest(rows), _options(env)).outcomes[0].status == SKIPPED
