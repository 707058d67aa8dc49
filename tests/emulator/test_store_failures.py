"""A store that fails (disk full, I/O error) leaves memory as it was: the failed call has no
effect, no phantom key or alias appears, and memory stays equal to what a restart would
load (issue 13, item 10)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from apckx.emulator.control.account import BackendRegistry
from apckx.emulator.responses import dispatch
from apckx.emulator.state import Record

from .conftest import ACCOUNT, REGION, FakeClock, RecordingStore

MODES = {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}
ATTRIBUTES = {"KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY", "KeyClass": "SYMMETRIC_KEY",
              "KeyAlgorithm": "AES_256", "KeyModesOfUse": MODES}
DAY = 86400.0


class FailingStore(RecordingStore):
    """A recording store whose writes raise ``OSError`` while ``failing`` is set."""

    def __init__(self, records: Iterable[tuple[str, str, str, str, Record]] = ()) -> None:
        super().__init__(records)
        self.failing = False

    def put(self, kind: str, account_id: str, region: str, ident: str, record: Record) -> None:
        if self.failing:
            raise OSError(28, "No space left on device")
        super().put(kind, account_id, region, ident, record)

    def delete(self, kind: str, account_id: str, region: str, ident: str) -> None:
        if self.failing:
            raise OSError(5, "Input/output error")
        super().delete(kind, account_id, region, ident)


def memory(registry: BackendRegistry) -> dict[str, Any]:
    backend = registry.backend(ACCOUNT, REGION)
    return {"keys": {key_id: key.to_record() for key_id, key in backend.keys.items()},
            "aliases": dict(backend.aliases),
            "ca": backend.account_ca.to_record() if backend.account_ca else None}


@pytest.fixture
def failing_store() -> FailingStore:
    return FailingStore()


@pytest.fixture
def env(failing_store: FailingStore) -> tuple[BackendRegistry, Callable[..., dict[str, Any]]]:
    registry = BackendRegistry(failing_store, clock=FakeClock())

    def run(operation: str, **members: Any) -> dict[str, Any]:
        return dispatch(registry, operation, members, account_id=ACCOUNT, region=REGION)

    return registry, run


def restarted(store: FailingStore) -> dict[str, Any]:
    return memory(BackendRegistry(RecordingStore(store.load()), clock=FakeClock()))


@pytest.mark.parametrize("operation", [
    "CreateKey", "ImportKey", "CreateAlias", "UpdateAlias", "DeleteAlias", "TagResource",
    "UntagResource", "DeleteKey", "StopKeyUsage", "GetPublicKeyCertificate",
])
def test_a_failed_write_changes_nothing(
        env: tuple[BackendRegistry, Callable[..., dict[str, Any]]],
        failing_store: FailingStore, operation: str) -> None:
    registry, run = env
    kek = run("CreateKey", KeyAttributes=ATTRIBUTES, Exportable=True)["Key"]["KeyArn"]
    k3 = run("CreateKey", Exportable=False, KeyAttributes={
        "KeyUsage": "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT",
        "KeyClass": "ASYMMETRIC_KEY_PAIR", "KeyAlgorithm": "ECC_NIST_P256",
        "KeyModesOfUse": {"DeriveKey": True}})["Key"]["KeyArn"]
    run("CreateAlias", AliasName="alias/kek", KeyArn=kek)
    run("TagResource", ResourceArn=kek, Tags=[{"Key": "t", "Value": "1"}])
    block = run("ExportKey", ExportKeyIdentifier=kek, KeyMaterial={
        "Tr31KeyBlock": {"WrappingKeyIdentifier": kek}})["WrappedKey"]["KeyMaterial"]
    members: dict[str, Any] = {
        "CreateKey": {"KeyAttributes": ATTRIBUTES, "Exportable": True},
        "ImportKey": {"KeyMaterial": {"Tr31KeyBlock": {
            "WrappingKeyIdentifier": kek, "WrappedKeyBlock": block}}},
        "CreateAlias": {"AliasName": "alias/new", "KeyArn": kek},
        "UpdateAlias": {"AliasName": "alias/kek"},
        "DeleteAlias": {"AliasName": "alias/kek"},
        "TagResource": {"ResourceArn": kek, "Tags": [{"Key": "t", "Value": "2"}]},
        "UntagResource": {"ResourceArn": kek, "TagKeys": ["t"]},
        "DeleteKey": {"KeyIdentifier": kek},
        "StopKeyUsage": {"KeyIdentifier": kek},
        "GetPublicKeyCertificate": {"KeyIdentifier": k3},
    }[operation]
    before = memory(registry)
    assert before == restarted(failing_store)
    failing_store.failing = True
    with pytest.raises(OSError, match=r"No space left|Input/output"):
        run(operation, **members)
    assert memory(registry) == before, f"a failed {operation} changed memory"
    failing_store.failing = False
    assert memory(registry) == restarted(failing_store)
    # and the emulator goes on working: the same call succeeds once the store does
    run(operation, **members)
    assert memory(registry) == restarted(failing_store)


def test_no_phantom_key_for_an_alias_to_point_at(
        env: tuple[BackendRegistry, Callable[..., dict[str, Any]]],
        failing_store: FailingStore) -> None:
    """The issue's case: CreateKey failed in the store, then an alias was pointed at the key
    that memory still held; after a restart the alias pointed at nothing."""
    registry, run = env
    failing_store.failing = True
    with pytest.raises(OSError):
        run("CreateKey", KeyAttributes=ATTRIBUTES, Exportable=True)
    failing_store.failing = False
    assert registry.backend(ACCOUNT, REGION).keys == {}
    assert run("ListKeys")["Keys"] == []


def test_a_failed_scheduled_deletion_is_retried(
        failing_store: FailingStore) -> None:
    clock = FakeClock()
    registry = BackendRegistry(failing_store, clock=clock)

    def run(operation: str, **members: Any) -> dict[str, Any]:
        return dispatch(registry, operation, members, account_id=ACCOUNT, region=REGION)

    kek = run("CreateKey", KeyAttributes=ATTRIBUTES, Exportable=True)["Key"]["KeyArn"]
    run("CreateAlias", AliasName="alias/kek", KeyArn=kek)
    run("DeleteKey", KeyIdentifier=kek, DeleteKeyInDays=3)
    clock.advance(4 * DAY)
    failing_store.failing = True
    with pytest.raises(OSError):
        run("GetKey", KeyIdentifier=kek)
    assert registry.backend(ACCOUNT, REGION).keys[kek.rsplit("/", 1)[1]].secret_hex
    failing_store.failing = False
    assert run("GetKey", KeyIdentifier=kek)["Key"]["KeyState"] == "DELETE_COMPLETE"
    assert run("GetAlias", AliasName="alias/kek")["Alias"] == {"AliasName": "alias/kek"}
    assert memory(registry) == restarted(failing_store)
