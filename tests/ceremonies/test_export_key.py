"""export-key against the emulator: under a KEK and over ECDH, re-imported, components."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apckx.ceremonies.export_key import (
    EcdhOptions,
    ExportHeaders,
    export_over_ecdh,
    export_under_kek,
    read_component_file,
    write_components,
    write_key_block,
)
from apckx.ceremonies.import_kek import plan_kek_import, run_kek_import
from apckx.ceremonies.import_key import (
    WorkingKeySpec,
    compute_key_kcv,
    import_key_block,
    import_under_kek,
    plan_ecdh_key_import,
    resolve_key_usage,
)
from apckx.ceremonies.journal import Journal
from apckx.crypto.components import combine_components
from apckx.crypto.keys import generate_key
from apckx.errors import ConfigError, InputError, KcvMismatchError
from apckx.service.apc import ApcService

KEK = bytes.fromhex("00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA9876543210")


@pytest.fixture
def apc(apc_emulator: Any, tmp_path: Path) -> Iterator[ApcService]:
    service = ApcService(apc_emulator.client)
    plan = plan_kek_import(
        key_algorithm="AES_256", certs_dir=tmp_path / "certs", kek_alias="alias/kek"
    )
    run_kek_import(service, KEK, plan, journal_dir=tmp_path / "journal")
    yield service


def _working_key(
    apc: ApcService,
    algorithm: str = "TDES_2KEY",
    usage: str = "P0",
    alias: str = "alias/wk",
    exportability: str = "E",
) -> bytes:
    key = generate_key(algorithm)
    spec = WorkingKeySpec(resolve_key_usage(usage), algorithm, exportability=exportability)
    import_under_kek(apc, kek_id="alias/kek", kek=KEK, key=key, spec=spec, alias=alias)
    return key


def test_export_under_kek_then_reimport(apc: ApcService) -> None:
    key = _working_key(apc)
    exported = export_under_kek(apc, key_id="alias/wk", kek_id="alias/kek", kek=KEK)
    assert exported.key == key
    assert exported.kcv == compute_key_kcv(key, "TDES_2KEY")
    assert exported.header.version_id == "D" and exported.header.key_usage == "P0"
    assert key.hex().upper() not in repr(exported) and "key" not in exported.to_record()
    again = import_key_block(
        apc,
        kek_id="alias/kek",
        key_block=exported.key_block,
        alias="alias/wk-again",
        expected_kcv=exported.kcv,
    )
    assert again.kcv == exported.kcv
    assert again.key_arn != exported.key_arn


def test_export_with_more_restrictive_headers(apc: ApcService) -> None:
    _working_key(apc, "AES_128", "D0")
    headers = ExportHeaders.from_options(
        mode_of_use="E", exportability="NON_EXPORTABLE", key_version="05"
    )
    exported = export_under_kek(
        apc, key_id="alias/wk", kek_id="alias/kek", kek=KEK, headers=headers
    )
    header = exported.header
    assert (header.mode_of_use, header.exportability, header.key_version) == ("E", "N", "05")


def test_export_over_ecdh_then_reimport(apc: ApcService, tmp_path: Path) -> None:
    key = _working_key(apc, "AES_128", "D0")
    journal = Journal.create(tmp_path / "journal", "export", parameters={})
    exported = export_over_ecdh(
        apc,
        key_id="alias/wk",
        journal=journal,
        options=EcdhOptions(curve="P521", certs_dir=tmp_path / "certs"),
    )
    assert exported.key == key and exported.via == "ecdh"
    assert exported.kcv == compute_key_kcv(key, "AES_128")
    assert exported.header.version_id == "D"
    # Back in over ECDH (the same receiver and root are reused): same KCV.
    spec = WorkingKeySpec(resolve_key_usage("D0"), "AES_128")
    plan = plan_ecdh_key_import(
        spec, alias="alias/back", curve="P521", certs_dir=tmp_path / "certs"
    )
    result, _ = run_kek_import(apc, exported.key, plan, journal_dir=tmp_path / "journal")
    assert result.key_check_value.upper() == exported.kcv
    assert result.receiver_reused and result.root_reused
    assert key.hex().upper() not in journal.path.read_text().upper()


def test_components_are_0600_and_recombine(apc: ApcService, tmp_path: Path) -> None:
    key = _working_key(apc, "TDES_3KEY", "K0")
    exported = export_under_kek(apc, key_id="alias/wk", kek_id="alias/kek", kek=KEK)
    files = write_components(exported, 3, tmp_path / "out")
    assert [f.path.name for f in files] == [f"component-{i}-of-3.txt" for i in (1, 2, 3)]
    for entry in files:
        assert stat.S_IMODE(entry.path.stat().st_mode) == 0o600
        text = entry.path.read_text()
        assert f"component kcv: {entry.kcv} (ANSI_X9_24)" in text
        assert f"combined key kcv: {exported.kcv}" in text
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o700
    parts = [read_component_file(f.path) for f in files]
    assert combine_components(parts) == key
    assert len(set(parts)) == 3 and key not in parts
    with pytest.raises(ConfigError, match="already exists"):
        write_components(exported, 3, tmp_path / "out")


def test_block_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "block.txt"
    write_key_block(path, "D0112...")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ConfigError):
        write_key_block(path, "D0112...")


def test_wrong_kek_stops_before_export(apc: ApcService) -> None:
    _working_key(apc)
    before = len(apc.calls)
    with pytest.raises(KcvMismatchError):
        export_under_kek(apc, key_id="alias/wk", kek_id="alias/kek", kek=bytes(reversed(KEK)))
    assert "ExportKey" not in [c.operation for c in apc.calls[before:]]


def test_non_exportable_key_refused(apc: ApcService) -> None:
    _working_key(apc, exportability="N")
    with pytest.raises(InputError, match="not exportable"):
        export_under_kek(apc, key_id="alias/wk", kek_id="alias/kek", kek=KEK)
