"""The ceremony's checks before any call, and the round-trip counter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from apckx.ceremonies.cleanup import plan_alias_cleanup, plan_ceremony_cleanup
from apckx.ceremonies.import_kek import (
    DEFAULT_HEADER,
    longest_call_chain,
    normalize_fingerprint,
    plan_kek_import,
)
from apckx.ceremonies.journal import Journal, Resource
from apckx.errors import InputError, StrengthError


def test_sample_defaults() -> None:
    plan = plan_kek_import()
    assert plan.curve == "P521"
    assert plan.kdf == "NIST_SP800" and plan.kdf_hash == "SHA_256"
    assert plan.derive_key_algorithm == "AES_256"
    assert plan.header[0] == DEFAULT_HEADER[0] and plan.header[5:] == DEFAULT_HEADER[5:]
    assert plan.shared_info is None  # fresh per ceremony
    assert plan.kcv_algorithm == "CMAC"
    assert "shared_info" in plan.to_record()


def test_sample_shared_info_is_five_bytes() -> None:
    assert plan_kek_import(shared_info_hex="0123456789").shared_info == bytes.fromhex("0123456789")


@pytest.mark.parametrize(
    ("curve", "derive", "kek", "ok"),
    [
        ("P256", None, "AES_128", True),
        ("P256", "AES_256", "TDES_3KEY", True),  # the UG's own pairing
        ("P256", None, "AES_192", False),
        ("P384", None, "AES_192", True),
        ("P384", None, "AES_256", False),
        ("P521", "TDES_2KEY", "TDES_3KEY", False),
        ("P521", "TDES_3KEY", "TDES_3KEY", True),
    ],
)
def test_strength_rules(curve: str, derive: str | None, kek: str, ok: bool) -> None:
    if ok:
        plan_kek_import(curve=curve, derive_key_algorithm=derive, key_algorithm=kek)
    else:
        with pytest.raises((StrengthError, InputError)):
            plan_kek_import(curve=curve, derive_key_algorithm=derive, key_algorithm=kek)


def test_tdes_derived_key_means_version_b() -> None:
    plan = plan_kek_import(
        curve="P384", derive_key_algorithm="TDES_3KEY", key_algorithm="TDES_3KEY"
    )
    assert plan.header[0] == "B"


def test_fingerprint_normalized() -> None:
    assert normalize_fingerprint(":".join(["ab"] * 32)) == "AB" * 32
    with pytest.raises(InputError):
        normalize_fingerprint("AB" * 31)


def test_longest_call_chain() -> None:
    assert longest_call_chain([]) == 0
    assert longest_call_chain([(0, 1), (0.5, 1.5)]) == 1
    assert longest_call_chain([(0, 1), (1, 2), (2, 3), (0, 3)]) == 3
    assert longest_call_chain([(0, 1), (0.5, 1.5), (2, 3), (1.2, 1.4)]) == 3


class _Account:
    """What plan_*_cleanup reads from APC (read-only calls), as plain data."""

    def __init__(self, keys: dict[str, tuple[str, dict[str, str]]], aliases: dict[str, str]):
        self.keys, self.aliases = keys, aliases

    def list_keys(self) -> list[dict[str, Any]]:
        return [{"KeyArn": arn, "KeyState": state} for arn, (state, _) in self.keys.items()]

    def list_aliases(self) -> list[dict[str, Any]]:
        return [{"AliasName": name, "KeyArn": arn} for name, arn in self.aliases.items()]

    def list_tags_for_resource(self, arn: str) -> dict[str, str]:
        return dict(self.keys[arn][1])

    def find_key(self, arn: str) -> dict[str, Any] | None:
        return {"KeyArn": arn, "KeyState": self.keys[arn][0]} if arn in self.keys else None


def test_cleanup_plans(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "kek", parameters={})
    cid = journal.ceremony_id
    journal.record_resource(Resource(kind="key", role="receiver", arn="arn:r", created=False))
    journal.record_resource(Resource(kind="key", role="root", arn="arn:root"))
    journal.record_resource(Resource(kind="key", role="kek", arn="arn:planted"))
    journal.record_resource(Resource(kind="alias", role="root", alias="alias/r", arn="arn:root"))
    ours = {"apckx:ceremony": cid}
    apc: Any = _Account(
        {
            "arn:r": ("CREATE_COMPLETE", {"apckx:ceremony": "kek-other"}),
            "arn:root": ("CREATE_COMPLETE", ours),
            "arn:lost": ("CREATE_COMPLETE", ours),  # its journal entry never landed
            "arn:planted": ("CREATE_COMPLETE", {}),  # listed by the journal, not tagged
            "arn:other": ("CREATE_COMPLETE", {"apckx:ceremony": "kek-other"}),
        },
        {"alias/r": "arn:root", "alias/lost": "arn:lost", "alias/receiver": "arn:r"},
    )
    plan = plan_ceremony_cleanup(apc, journal, delete_in_days=7)
    assert [(a.operation, a.target, a.skip) for a in plan] == [
        ("DeleteAlias", "alias/lost", None),
        ("DeleteAlias", "alias/r", None),
        ("DeleteKey", "arn:planted", f"skipped: no apckx:ceremony tag: not created by {cid}"),
        ("DeleteKey", "arn:root", None),
        ("DeleteKey", "arn:lost", None),
    ]
    with pytest.raises(InputError):
        plan_ceremony_cleanup(apc, journal, delete_in_days=2)
    plan = plan_alias_cleanup(apc, ["alias/r", "alias/r"], delete_in_days=3)
    assert [(a.operation, a.target) for a in plan] == [
        ("DeleteAlias", "alias/r"),
        ("DeleteKey", "arn:root"),
    ]
    with pytest.raises(InputError, match="no such alias: alias/typo"):
        plan_alias_cleanup(apc, ["alias/r", "alias/typo"], delete_in_days=3)
