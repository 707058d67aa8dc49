"""What every ImportKey/ExportKey member function takes and returns.

An import function is ``(account, member, request) -> KeyRecord``: ``member`` is the
``KeyMaterial`` union member's body (validated against the botocore model, ``None``
members pruned), ``request`` the top-level ImportKey parameters every member shares. An
export function is ``(account, member, request) -> WrappedKeyResult``. Both run under
:func:`~apckx.emulator.control.account.locked`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from apckx.emulator.control.account import AccountState
from apckx.emulator.control.records import KeyRecord
from apckx.emulator.exceptions import ValidationException

Params = Mapping[str, Any]


@dataclass(frozen=True)
class ImportRequest:
    """ImportKey's members outside ``KeyMaterial``."""

    enabled: bool = True
    tags: Sequence[tuple[str, str]] = ()
    key_check_value_algorithm: str | None = None


@dataclass(frozen=True)
class ExportRequest:
    """ExportKey's members outside ``KeyMaterial``: the key to export and
    ``ExportAttributes`` (``KeyCheckValueAlgorithm``, ``ExportDukptInitialKey``)."""

    export_key_identifier: str
    key_check_value_algorithm: str | None = None
    export_dukpt_initial_key: Params | None = None


@dataclass(frozen=True)
class WrappedKeyResult:
    """ExportKey's answer (the model's ``WrappedKey``): the wrapped key and its KCV."""

    wrapping_key_arn: str
    key_block: str
    key_check_value: str
    key_check_value_algorithm: str
    #: WrappedKeyMaterialFormat: TR31_KEY_BLOCK | TR34_KEY_BLOCK | KEY_CRYPTOGRAM.
    material_format: str = "TR31_KEY_BLOCK"


ImportFunction = Callable[[AccountState, Params, ImportRequest], KeyRecord]
ExportFunction = Callable[[AccountState, Params, ExportRequest], WrappedKeyResult]


def unsupported_member(union: str, member: str) -> ValidationException:
    """The refusal for a union member the emulator does not implement."""
    return ValidationException(f"{union}.{member} is not implemented by the apckx emulator")


def refuse_dukpt_initial_key(request: ExportRequest) -> None:
    """For an export member that cannot carry ``ExportDukptInitialKey``."""
    if request.export_dukpt_initial_key is not None:
        raise unsupported_member("ExportAttributes", "ExportDukptInitialKey")
