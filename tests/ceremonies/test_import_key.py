"""import-key against the emulator: every usage family under a KEK, KCVs checked both ways."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apckx.ceremonies.import_kek import plan_kek_import, run_kek_import
from apckx.ceremonies.import_key import (
    SUPPORTED_USAGE_CODES,
    WorkingKeySpec,
    build_working_key_block,
    compute_key_kcv,
    import_key_block,
    import_under_kek,
    plan_ecdh_key_import,
    resolve_key_usage,
    verify_kek,
)
from apckx.ceremonies.journal import Journal
from apckx.crypto.attributes import MODES
from apckx.crypto.keys import generate_key
from apckx.errors import InputError, KcvMismatchError, StrengthError
from apckx.service.apc import ApcService

KEK = bytes.fromhex("00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA9876543210")

# (usage code, algorithm, mode): one per family, and every usage APC takes through TR-31.
CASES = [
    ("B0", "AES_128", "X"),
    ("C0", "TDES_2KEY", "C"),
    ("D0", "AES_256", "B"),
    ("E0", "TDES_2KEY", "X"),
    ("E1", "AES_128", "X"),
    ("E2", "TDES_3KEY", "X"),
    ("E4", "AES_192", "X"),
    ("E5", "TDES_2KEY", "N"),
    ("E6", "AES_256", "X"),
    ("K0", "AES_256", "B"),
    ("K1", "TDES_3KEY", "D"),
    ("M0", "TDES_2KEY", "C"),
    ("M1", "TDES_2KEY", "G"),
    ("M3", "TDES_3KEY", "V"),
    ("M6", "AES_128", "C"),
    ("M7", "HMAC_SHA256", "C"),
    ("P0", "AES_192", "E"),
    ("P1", "TDES_2KEY", "C"),
    ("V1", "TDES_2KEY", "C"),
    ("V2", "AES_128", "C"),
]


@pytest.fixture
def apc(apc_emulator: Any) -> ApcService:
    return ApcService(apc_emulator.client)


@pytest.fixture
def kek_arn(apc: ApcService, tmp_path: Path) -> str:
    """An AES_256 KEK imported over ECDH, so its cleartext is known here."""
    plan = plan_kek_import(
        key_algorithm="AES_256", certs_dir=tmp_path / "certs", kek_alias="alias/test-kek"
    )
    result, _journal = run_kek_import(apc, KEK, plan, journal_dir=tmp_path / "journal")
    return result.key_arn


@pytest.fixture(scope="module")
def shared_apc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApcService]:
    """One emulator and KEK for the usage table (the KEK ceremony costs ~0.25 s)."""
    from apckx.emulator.pytest_plugin import make_emulator_client, start_test_emulator

    emulator = start_test_emulator()
    try:
        apc = ApcService(make_emulator_client(emulator.url))
        base = tmp_path_factory.mktemp("usages")
        plan = plan_kek_import(
            key_algorithm="AES_256", certs_dir=base / "certs", kek_alias="alias/test-kek"
        )
        run_kek_import(apc, KEK, plan, journal_dir=base / "journal")
        yield apc
    finally:
        emulator.stop()


def test_case_table_covers_every_supported_usage() -> None:
    assert sorted(code for code, _, _ in CASES) == sorted(SUPPORTED_USAGE_CODES)


@pytest.mark.parametrize(("code", "algorithm", "mode"), CASES)
def test_import_each_usage_under_kek(
    shared_apc: ApcService, code: str, algorithm: str, mode: str
) -> None:
    apc = shared_apc
    key = generate_key(algorithm)
    spec = WorkingKeySpec(
        key_usage=resolve_key_usage(code),
        key_algorithm=algorithm,
        mode_of_use=mode,
        exportability="N" if code == "E5" else "E",
        key_version="07",
    )
    alias = f"alias/wk-{code.lower()}"
    result = import_under_kek(
        apc,
        kek_id="alias/test-kek",
        kek=KEK,
        key=key,
        spec=spec,
        alias=alias,
        tags={"team": "payments"},
    )
    assert result.kcv == compute_key_kcv(key, algorithm)
    described = apc.get_key(alias)
    assert described["KeyArn"] == result.key_arn
    assert described["KeyCheckValue"].upper() == result.kcv
    attributes = described["KeyAttributes"]
    assert attributes["KeyUsage"] == spec.key_usage
    assert attributes["KeyAlgorithm"] == algorithm
    assert {f for f, on in attributes["KeyModesOfUse"].items() if on} == set(MODES[mode])
    assert described["Exportable"] is (code != "E5")
    assert described["KeyOrigin"] == "EXTERNAL"
    assert apc.list_tags_for_resource(result.key_arn)["team"] == "payments"


@pytest.mark.parametrize("usage", ["M2", "E3", "M4", "TR31_M5", "K3", "S0"])
def test_usages_apc_does_not_import_are_refused(usage: str) -> None:
    with pytest.raises(InputError, match="APC accepts B0, C0, D0"):
        resolve_key_usage(usage)


def test_unknown_usage_name(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="did you mean TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY"):
        resolve_key_usage("TR31_D0_DATA_KEY")


def test_supported_usages_are_in_the_botocore_enum() -> None:
    import botocore.session

    from apckx.crypto.attributes import KEY_USAGES

    model = botocore.session.get_session().get_service_model("payment-cryptography")
    enum_codes = {KEY_USAGES[name] for name in model.shape_for("KeyUsage").enum}
    asked = {
        "B0",
        "C0",
        "D0",
        *(f"E{i}" for i in range(7)),
        "K0",
        "K1",
        *(f"M{i}" for i in range(8)),
        "P0",
        "P1",
        "V1",
        "V2",
    }
    assert set(SUPPORTED_USAGE_CODES) == asked & enum_codes


def test_wrong_kek_is_caught_before_import_key(apc: ApcService, kek_arn: str) -> None:
    wrong = bytes(reversed(KEK))
    before = len(apc.calls)
    with pytest.raises(KcvMismatchError, match="nothing was imported"):
        verify_kek(apc, "alias/test-kek", wrong)
    operations = [c.operation for c in apc.calls[before:]]
    assert operations == ["GetKey"]


def test_non_kek_refused(apc: ApcService, kek_arn: str) -> None:
    key = generate_key("AES_128")
    spec = WorkingKeySpec(resolve_key_usage("D0"), "AES_128")
    imported = import_under_kek(apc, kek_id=kek_arn, kek=KEK, key=key, spec=spec)
    with pytest.raises(InputError, match="not a KEK"):
        verify_kek(apc, imported.key_arn, key)


def test_strength_rule_before_any_call() -> None:
    spec = WorkingKeySpec(resolve_key_usage("D0"), "AES_256")
    with pytest.raises(StrengthError):
        build_working_key_block(KEK[:16], "AES_128", generate_key("AES_256"), spec)


def test_key_block_imported_as_is(apc: ApcService, kek_arn: str, tmp_path: Path) -> None:
    key = generate_key("TDES_3KEY")
    spec = WorkingKeySpec(resolve_key_usage("P0"), "TDES_3KEY", "D", exportability="S")
    block = build_working_key_block(KEK, "AES_256", key, spec)
    journal = Journal.create(tmp_path / "j", "key", parameters={})
    expected = compute_key_kcv(key, "TDES_3KEY")
    result = import_key_block(
        apc,
        kek_id="alias/test-kek",
        key_block=block,
        alias="alias/hsm-pin",
        expected_kcv=expected,
        journal=journal,
    )
    assert result.kcv == expected and result.kcv_algorithm == "ANSI_X9_24"
    assert apc.get_alias("alias/hsm-pin")["KeyArn"] == result.key_arn
    assert [r.kind for r in journal.resources] == ["key", "alias"]
    assert KEK.hex().upper() not in journal.path.read_text().upper()
    assert key.hex().upper() not in journal.path.read_text().upper()


def test_key_block_with_wrong_expected_kcv_gets_no_alias(apc: ApcService, kek_arn: str) -> None:
    spec = WorkingKeySpec(resolve_key_usage("D0"), "AES_128")
    block = build_working_key_block(KEK, "AES_256", generate_key("AES_128"), spec)
    with pytest.raises(KcvMismatchError, match="no alias was created"):
        import_key_block(
            apc, kek_id=kek_arn, key_block=block, alias="alias/nope", expected_kcv="000000"
        )
    assert apc.find_key("alias/nope") is None


def test_existing_alias_refused_before_import(apc: ApcService, kek_arn: str) -> None:
    spec = WorkingKeySpec(resolve_key_usage("D0"), "AES_128")
    import_under_kek(
        apc, kek_id=kek_arn, kek=KEK, key=generate_key("AES_128"), spec=spec, alias="alias/taken"
    )
    keys_before = len(apc.list_keys())
    with pytest.raises(InputError, match="already exists"):
        import_under_kek(
            apc,
            kek_id=kek_arn,
            kek=KEK,
            key=generate_key("AES_128"),
            spec=spec,
            alias="alias/taken",
        )
    assert len(apc.list_keys()) == keys_before


@pytest.mark.parametrize(
    ("code", "algorithm", "curve"),
    [("D0", "AES_256", "P521"), ("M7", "HMAC_SHA256", "P256"), ("B0", "TDES_2KEY", "P256")],
)
def test_import_working_key_over_ecdh(
    apc: ApcService, tmp_path: Path, code: str, algorithm: str, curve: str
) -> None:
    key = generate_key(algorithm)
    spec = WorkingKeySpec(resolve_key_usage(code), algorithm)
    plan = plan_ecdh_key_import(
        spec, alias=f"alias/ecdh-{code.lower()}", curve=curve, certs_dir=tmp_path / "certs"
    )
    result, _journal = run_kek_import(apc, key, plan, journal_dir=tmp_path / "journal")
    assert result.key_check_value.upper() == compute_key_kcv(key, algorithm)
    described = apc.get_key(f"alias/ecdh-{code.lower()}")
    assert described["KeyAttributes"]["KeyUsage"] == spec.key_usage
    assert described["KeyAttributes"]["KeyAlgorithm"] == algorithm


def test_working_key_over_ecdh_is_journaled_and_tagged_as_working(
    apc: ApcService, tmp_path: Path
) -> None:
    """kind/role: a working key over ECDH is a "key" ceremony and a "working" key, not a KEK."""
    key = generate_key("AES_128")
    spec = WorkingKeySpec(resolve_key_usage("D0"), "AES_128")
    plan = plan_ecdh_key_import(
        spec, alias="alias/ecdh-dek", curve="P256", certs_dir=tmp_path / "certs"
    )
    journal_dir = tmp_path / "journal"
    result, journal = run_kek_import(
        apc, key, plan, journal_dir=journal_dir, kind="key", role="working"
    )
    assert journal.kind == "key" and result.ceremony_id.startswith("key-")
    assert Journal.load(journal_dir, result.ceremony_id).kind == "key"
    roles = [(r.kind, r.role) for r in journal.resources]
    assert sorted(roles) == sorted(
        [
            ("key", "receiver"),
            ("key", "root"),
            ("alias", "receiver"),
            ("alias", "root"),
            ("key", "working"),
            ("alias", "working"),
        ]
    )
    assert "kek" not in {role for _kind, role in roles}
    alias = next(r for r in journal.resources if r.kind == "alias" and r.role == "working")
    assert alias.alias == "alias/ecdh-dek" and alias.arn == result.key_arn
    tags = apc.list_tags_for_resource(result.key_arn)
    assert tags["apckx:role"] == "working"
    assert tags["apckx:ceremony"] == result.ceremony_id
    # A "key" journal is not a KEK import: import-kek's --resume refuses it before any call.
    calls_before = len(apc.calls)
    kek_plan = plan_kek_import(key_algorithm="AES_128", curve="P256", certs_dir=tmp_path / "certs")
    with pytest.raises(InputError, match="is not a KEK import"):
        run_kek_import(
            apc, KEK[:16], kek_plan, journal_dir=journal_dir, resume_id=result.ceremony_id
        )
    assert len(apc.calls) == calls_before


def test_kek_import_keeps_kek_labels_by_default(apc: ApcService, tmp_path: Path) -> None:
    plan = plan_kek_import(key_algorithm="AES_256", certs_dir=tmp_path / "certs")
    result, journal = run_kek_import(apc, KEK, plan, journal_dir=tmp_path / "journal")
    assert journal.kind == "kek" and result.ceremony_id.startswith("kek-")
    assert {(r.kind, r.role) for r in journal.resources if r.arn == result.key_arn} == {
        ("key", "kek"),
        ("alias", "kek"),
    }
    assert apc.list_tags_for_resource(result.key_arn)["apckx:role"] == "kek"


@pytest.mark.parametrize(
    ("kind", "role", "resume_hint"), [("kek", "kek", True), ("key", "working", False)]
)
def test_failed_ecdh_import_hints_only_what_its_command_can_do(
    apc: ApcService,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    role: str,
    resume_hint: bool,
) -> None:
    """import-kek can --resume; import-key --via ecdh cannot: its failure names cleanup only."""
    from apckx.errors import CeremonyError, ServiceError

    def unavailable(_key_identifier: str) -> tuple[str, str]:
        raise ServiceError("GetPublicKeyCertificate", "InternalServerException", "down")

    monkeypatch.setattr(apc, "get_public_key_certificate", unavailable)
    plan = plan_kek_import(key_algorithm="AES_256", certs_dir=tmp_path / "certs")
    with pytest.raises(CeremonyError) as failure:
        run_kek_import(apc, KEK, plan, journal_dir=tmp_path / "journal", kind=kind, role=role)
    message = str(failure.value)
    assert message.startswith(f"ceremony {kind}-")
    assert "roll back with: apckx cleanup --ceremony " in message  # the receiver was created
    assert ("apckx import-kek --resume" in message) is resume_hint


def test_ecdh_plan_enforces_curve_cap(tmp_path: Path) -> None:
    spec = WorkingKeySpec(resolve_key_usage("D0"), "AES_256")
    with pytest.raises(StrengthError):
        plan_ecdh_key_import(spec, alias="alias/x", curve="P256", certs_dir=tmp_path)


@pytest.mark.parametrize(("code", "mode"), [("D0", "C"), ("B0", "B"), ("C0", "X"), ("K0", "G")])
def test_modes_apc_rejects_for_a_usage_are_refused_locally(code: str, mode: str) -> None:
    from apckx.errors import KeyBlockError

    spec = WorkingKeySpec(resolve_key_usage(code), "AES_128", mode)
    with pytest.raises(KeyBlockError, match="KeyModesOfUse"):
        build_working_key_block(KEK, "AES_256", generate_key("AES_128"), spec)
