"""Fixtures for the emulator's in-process tests: a registry on a recording store and a fake
clock, and ``call``, which runs an operation through ``dispatch`` and checks every answer
against the botocore model's output shape."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest

from apckx.emulator.control.account import BackendRegistry
from apckx.emulator.exceptions import ApcServiceException
from apckx.emulator.responses import dispatch
from apckx.emulator.state import Record
from apckx.emulator.validation import service_model

ACCOUNT = "111122223333"
REGION = "us-east-1"

Call = Callable[..., dict[str, Any]]

MODES_WRAP = {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingStore:
    """An in-memory StateStore that keeps every record and logs every put and delete."""

    def __init__(self, records: Iterable[tuple[str, str, str, str, Record]] = ()) -> None:
        self.records: dict[tuple[str, str, str, str], Record] = {
            (kind, account, region, ident): record
            for kind, account, region, ident, record in records
        }
        self.puts: list[tuple[str, str, str, str]] = []
        self.deletes: list[tuple[str, str, str, str]] = []

    def load(self) -> list[tuple[str, str, str, str, Record]]:
        return [(*ids, record) for ids, record in self.records.items()]

    def put(self, kind: str, account_id: str, region: str, ident: str, record: Record) -> None:
        self.records[(kind, account_id, region, ident)] = record
        self.puts.append((kind, account_id, region, ident))

    def delete(self, kind: str, account_id: str, region: str, ident: str) -> None:
        self.records.pop((kind, account_id, region, ident), None)
        self.deletes.append((kind, account_id, region, ident))

    def close(self) -> None:
        return None


def output_problems(shape: Any, value: Any, path: str = "") -> list[str]:
    """Where ``value`` breaks the model's output ``shape``: required members missing,
    members the model does not have, wrong JSON types, enum values outside the set."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, Mapping):
            return [f"{path or 'output'}: expected an object"]
        problems = [f"{path}.{name}: required member missing"
                    for name in shape.required_members if name not in value]
        for name, item in value.items():
            if name not in shape.members:
                problems.append(f"{path}.{name}: not a member of {shape.name}")
            else:
                problems.extend(output_problems(shape.members[name], item, f"{path}.{name}"))
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [p for i, item in enumerate(value)
                for p in output_problems(shape.member, item, f"{path}[{i}]")]
    if kind == "map":
        if not isinstance(value, Mapping):
            return [f"{path}: expected a map"]
        return [p for k, item in value.items()
                for p in output_problems(shape.value, item, f"{path}[{k}]")]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string"]
        if shape.enum and value not in shape.enum:
            return [f"{path}: {value!r} is not in the enum"]
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean"]
    if kind in ("integer", "long"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected an integer"]
    if kind == "timestamp":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected epoch seconds"]
    return [f"{path}: unexpected shape type {kind}"]


def check_output(operation: str, output: Mapping[str, Any]) -> None:
    shape = service_model().operation_model(operation).output_shape
    problems = output_problems(shape, output) if shape is not None else (
        [] if output == {} else ["expected an empty output"])
    assert not problems, f"{operation} output breaks the model: {problems}"


def held_secrets(registry: BackendRegistry) -> list[str]:
    """Every secret the emulator holds, as text that could leak: symmetric keys in hex (both
    cases) and a slice of each private key's PEM body."""
    found: list[str] = []
    for backend in registry.backends():
        for key in backend.keys.values():
            if key.secret_hex:
                found += [key.secret_hex.upper(), key.secret_hex.lower()]
            if key.private_key_pem:
                found.append(key.private_key_pem.splitlines()[2])
        if backend.account_ca is not None:
            found.append(backend.account_ca.private_key_pem.splitlines()[2])
        for records in backend.records.values():  # tokens and the RSA account CA
            for record in records.values():
                pem = record.get("private_key_pem")
                if isinstance(pem, str) and pem:
                    found.append(pem.splitlines()[2])
    return found


def assert_no_secrets(registry: BackendRegistry, text: str) -> None:
    for secret in held_secrets(registry):
        assert secret not in text, "a secret reached a response or an error message"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> RecordingStore:
    return RecordingStore()


@pytest.fixture
def registry(store: RecordingStore, clock: FakeClock) -> BackendRegistry:
    return BackendRegistry(store, clock=clock)


@pytest.fixture
def call(registry: BackendRegistry) -> Call:
    """``call("GetKey", KeyIdentifier=...)``: dispatch in-process, output checked."""

    def run(operation: str, body: Mapping[str, Any] | None = None, /,
            **members: Any) -> dict[str, Any]:
        request = dict(body or {}, **members)
        try:
            output = dispatch(registry, operation, request, account_id=ACCOUNT, region=REGION)
        except ApcServiceException as error:
            assert_no_secrets(registry, json.dumps(error.to_body()))
            raise
        check_output(operation, output)
        assert_no_secrets(registry, json.dumps(output))
        return output

    return run


@pytest.fixture
def create_key(call: Call) -> Callable[..., dict[str, Any]]:
    """Create a key and return its ``Key`` structure."""

    def create(usage: str = "TR31_K1_KEY_BLOCK_PROTECTION_KEY", algorithm: str = "AES_256",
               modes: Mapping[str, bool] | None = None, *, exportable: bool = True,
               key_class: str = "SYMMETRIC_KEY", **extra: Any) -> dict[str, Any]:
        attributes = {"KeyUsage": usage, "KeyClass": key_class, "KeyAlgorithm": algorithm,
                      "KeyModesOfUse": dict(modes if modes is not None else MODES_WRAP)}
        key: dict[str, Any] = call("CreateKey", KeyAttributes=attributes,
                                   Exportable=exportable, **extra)["Key"]
        return key

    return create
