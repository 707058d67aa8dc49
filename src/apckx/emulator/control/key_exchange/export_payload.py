"""The key an RSA-based export (Tr34KeyBlock, KeyCryptogram) carries: the
ExportKeyIdentifier's own key, with the header fields TR-34 puts around it.

``KeyBlockHeaders`` restrict the key as for TR-31 (they go through
:func:`apckx.emulator.control.key_exchange.tr31.export_header`, so the "more restrictive
only" rules are the same code); TR-34's 16-character header has no room for OptionalBlocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apckx.emulator.control.account import AccountState
from apckx.emulator.control.key_exchange.common import ExportRequest
from apckx.emulator.control.key_exchange.tr31 import (
    KeyBlockHeaderOverrides,
    export_header,
    exportable_key,
)
from apckx.emulator.control.keys import compute_symmetric_kcv, kcv_algorithm_for
from apckx.emulator.exceptions import ValidationException


@dataclass(frozen=True)
class ExportPayload:
    """Key material to export, its algorithm, TR-31 header fields and KCV. Never printed."""

    material: bytes = field(repr=False)
    key_algorithm: str
    usage_code: str
    mode_code: str
    exportability: str
    key_version: str
    key_check_value: str
    key_check_value_algorithm: str


def stored_key_payload(account: AccountState, request: ExportRequest,
                       overrides: KeyBlockHeaderOverrides | None = None) -> ExportPayload:
    """The ExportKeyIdentifier's key (usable, exportable, symmetric) as a payload."""
    key = exportable_key(account, request.export_key_identifier)
    if overrides is not None and overrides.optional_blocks:
        raise ValidationException(
            "KeyBlockHeaders.OptionalBlocks cannot be carried in a TR-34 key block by the "
            "apckx emulator (its header is TR-31's 16-character fixed header)"
        )
    # The restriction rules of KeyBlockHeaders; the KBPK argument only picks TR-31's
    # version letter, which TR-34 does not use.
    header = export_header(key, "AES_256", overrides)
    kcv_algorithm = (key.key_check_value_algorithm if request.key_check_value_algorithm is None
                     else kcv_algorithm_for(key.key_algorithm, request.key_check_value_algorithm))
    material = key.secret()
    return ExportPayload(
        material=material, key_algorithm=key.key_algorithm, usage_code=header[5:7],
        mode_code=header[8], exportability=header[11], key_version=header[9:11],
        key_check_value=compute_symmetric_kcv(material, key.key_algorithm, kcv_algorithm),
        key_check_value_algorithm=kcv_algorithm,
    )


def payload_for(account: AccountState, request: ExportRequest,
                overrides: KeyBlockHeaderOverrides | None = None) -> ExportPayload:
    """What an RSA-based export carries: the stored key, or (ExportDukptInitialKey) the
    DUKPT initial key derived from it."""
    if request.export_dukpt_initial_key is not None:
        return initial_key_payload(account, request, overrides)
    return stored_key_payload(account, request, overrides)


def initial_key_payload(account: AccountState, request: ExportRequest,
                        overrides: KeyBlockHeaderOverrides | None = None) -> ExportPayload:
    """Placeholder replaced when crypto/dukpt.py lands (refuses cleanly meanwhile)."""
    raise ValidationException(
        "ExportAttributes.ExportDukptInitialKey is not implemented by the apckx emulator"
    )
