"""The key an export carries: the ExportKeyIdentifier's own key, or (ExportAttributes
``ExportDukptInitialKey``) the DUKPT initial key derived from that BDK, with the TR-31 header
fields and the KCV. Tr34KeyBlock and KeyCryptogram use :func:`payload_for`; Tr31KeyBlock
hands initial keys to :func:`export_initial_key_tr31`.

``KeyBlockHeaders`` restrict the key as for TR-31 (they go through
:func:`apckx.emulator.control.key_exchange.tr31.export_header`, so the "more restrictive
only" rules are the same code); TR-34's 16-character header has no room for OptionalBlocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apckx.crypto import attributes, dukpt, tr31
from apckx.crypto import keys as crypto_keys
from apckx.emulator.control.account import AccountState
from apckx.emulator.control.common import refusals
from apckx.emulator.control.key_exchange.common import ExportRequest, Params, WrappedKeyResult
from apckx.emulator.control.key_exchange.tr31 import (
    KeyBlockHeaderOverrides,
    export_header,
    exportable_key,
    header_overrides,
    wrapping_key,
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
    """ExportDukptInitialKey: the IPEK (TDES, ANSI X9.24-1) or initial key (AES, X9.24-3) of
    the ExportKeyIdentifier's B0 BDK for ``KeySerialNumber`` (``apckx.crypto.dukpt``).

    The derived key is not kept (UG keys-export: "IPEK keys are not persisted"). Its TR-31
    fields are those of AWS's documented export, ``B1 T|A X 00 S``: usage B1, mode X,
    exportability S. The KCV uses ``ExportAttributes.KeyCheckValueAlgorithm`` or the
    initial key's default. The BDK's own Exportable flag does not stop it: deriving and
    exporting initial keys is what a BDK is for (UG keys-export note) [inferred].
    """
    assert request.export_dukpt_initial_key is not None  # noqa: S101 (payload_for checks)
    bdk = account.resolve_usable_key(request.export_key_identifier, "ExportKeyIdentifier")
    if (bdk.key_usage != "TR31_B0_BASE_DERIVATION_KEY" or bdk.secret_hex is None
            or not (bdk.modes.get("DeriveKey") or bdk.modes.get("NoRestrictions"))):
        raise ValidationException(
            f"ExportDukptInitialKey needs a TR31_B0_BASE_DERIVATION_KEY with DeriveKey: "
            f"{bdk.arn} is {bdk.key_usage}"
        )
    if overrides is not None:
        raise ValidationException(
            "KeyBlockHeaders with ExportDukptInitialKey are not implemented by the apckx "
            "emulator (the initial key is exported as B1, mode X, exportability S)"
        )
    ksn_hex = str(request.export_dukpt_initial_key["KeySerialNumber"])
    with refusals("ExportDukptInitialKey"):
        ksn = dukpt.parse_ksn_hex(ksn_hex, bdk.key_algorithm)
        material = dukpt.derive_initial_key(bdk.secret(), ksn, bdk.key_algorithm)
        algorithm = crypto_keys.algorithm_for_length(
            "T" if crypto_keys.is_tdes(bdk.key_algorithm) else "A", len(material))
    kcv_algorithm = kcv_algorithm_for(algorithm, request.key_check_value_algorithm)
    return ExportPayload(
        material=material, key_algorithm=algorithm, usage_code="B1", mode_code="X",
        exportability="S", key_version="00",
        key_check_value=compute_symmetric_kcv(material, algorithm, kcv_algorithm),
        key_check_value_algorithm=kcv_algorithm,
    )


def export_initial_key_tr31(account: AccountState, member: Params,
                            request: ExportRequest) -> WrappedKeyResult:
    """ExportKey Tr31KeyBlock with ExportDukptInitialKey: the initial key in a TR-31 block
    (version B under a TDES KBPK, D under AES; ``B0096B1TX00S0000...`` in UG keys-export)."""
    payload = initial_key_payload(account, request, header_overrides(member))
    kbpk = wrapping_key(account, member["WrappingKeyIdentifier"], for_export=True)
    version = "B" if crypto_keys.is_tdes(kbpk.key_algorithm) else "D"
    algorithm_code = "T" if crypto_keys.is_tdes(payload.key_algorithm) else "A"
    header = f"{version}0000B1{algorithm_code}X00S0000"
    with refusals("Tr31KeyBlock"):
        attributes.check_wrapping_strength(kbpk.key_algorithm, payload.key_algorithm)
        block = tr31.wrap_key_block(kbpk.secret(), header, payload.material,
                                    kbpk_algorithm=kbpk.key_algorithm)
    return WrappedKeyResult(
        wrapping_key_arn=kbpk.arn, key_block=block, key_check_value=payload.key_check_value,
        key_check_value_algorithm=payload.key_check_value_algorithm,
    )
