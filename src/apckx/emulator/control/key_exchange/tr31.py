"""ImportKey/ExportKey ``Tr31KeyBlock`` under a K0/K1 key (spec 5.3, 5.4), and the TR-31
steps other members reuse: unwrapping a block into a new key (:func:`import_key_block`),
the export header with ``KeyBlockHeaders`` (:func:`export_header`) and wrapping
(:func:`wrap_for_export`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from apckx.crypto import attributes, tr31
from apckx.crypto import keys as crypto_keys
from apckx.emulator.control.account import AccountState, locked
from apckx.emulator.control.common import refusals
from apckx.emulator.control.key_exchange.common import (
    ExportRequest,
    ImportRequest,
    Params,
    WrappedKeyResult,
)
from apckx.emulator.control.keys import (
    check_key_quota,
    compute_symmetric_kcv,
    kcv_algorithm_for,
)
from apckx.emulator.control.records import (
    K0,
    K1,
    KeyRecord,
    all_modes,
    is_symmetric,
    true_modes,
)
from apckx.emulator.control.tags import check_tags
from apckx.emulator.exceptions import ValidationException

TR31_WRAPPING_ALGORITHMS = ("TDES_2KEY", "TDES_3KEY", "AES_128", "AES_192", "AES_256")
_EXPORTABILITY_CODES = {"EXPORTABLE": "E", "SENSITIVE": "S", "NON_EXPORTABLE": "N"}
# TR-31 exportability, most permissive first: E may go anywhere, S only under a KEK, N nowhere.
_EXPORTABILITY_RANK = {"E": 2, "S": 1, "N": 0}
# Optional blocks dropped on import: KP (KCV of the wrapping key, UG keys-import) and the
# padding block, which the wrapper recomputes.
_DROPPED_OPTIONAL_BLOCKS = ("KP", "PB")
# The model's KeyBlockHeaders.OptionalBlocks: "Optional block character limit is 112
# characters. For each optional block, 2 characters are reserved for optional block ID and 2
# characters reserved for optional block length."
MAX_OPTIONAL_BLOCKS_CHARACTERS = 112
_OPTIONAL_BLOCK_OVERHEAD = 4


@dataclass(frozen=True)
class KeyBlockHeaderOverrides:
    """ExportKey's optional KeyBlockHeaders: each may only restrict the key further."""

    modes: Mapping[str, bool] | None = None
    exportability: str | None = None  # EXPORTABLE | SENSITIVE | NON_EXPORTABLE
    key_version: str | None = None
    optional_blocks: Mapping[str, str] | None = None


def header_overrides(member: Params) -> KeyBlockHeaderOverrides | None:
    """A member's ``KeyBlockHeaders``, or None when it has none."""
    headers = member.get("KeyBlockHeaders")
    if headers is None:
        return None
    return KeyBlockHeaderOverrides(
        modes=headers.get("KeyModesOfUse"),
        exportability=headers.get("KeyExportability"),
        key_version=headers.get("KeyVersion"),
        optional_blocks=headers.get("OptionalBlocks"),
    )


# --- import -------------------------------------------------------------------------------


def wrapping_key(account: AccountState, identifier: str, *, for_export: bool) -> KeyRecord:
    """A K0/K1 KBPK that may unwrap (import) or wrap (export) (spec 5.3, 5.4)."""
    role = "WrappingKeyIdentifier"
    kbpk = account.resolve_usable_key(identifier, role)
    if kbpk.key_usage not in (K0, K1) or kbpk.key_algorithm not in TR31_WRAPPING_ALGORITHMS:
        raise ValidationException(
            f"{role} {kbpk.arn} must be a {K0} or {K1} TDES or AES key "
            f"(it is {kbpk.key_usage} {kbpk.key_algorithm})"
        )
    needed = ("Wrap", "Encrypt") if for_export else ("Unwrap", "Decrypt")
    if not (kbpk.modes.get("NoRestrictions") or any(kbpk.modes.get(m) for m in needed)):
        raise ValidationException(
            f"{role} {kbpk.arn} does not allow {' or '.join(needed)} "
            f"(KeyModesOfUse), so it cannot {'export' if for_export else 'import'} keys"
        )
    return kbpk


def import_key_block(account: AccountState, kbpk: bytes, kbpk_algorithm: str, key_block: str,
                     *, what: str, request: ImportRequest,
                     check_strength: Callable[[str], None]) -> KeyRecord:
    """Unwrap a TR-31 block (MAC verified) and store the key with the header's
    attributes (spec 5.3)."""
    with refusals(what):
        header, material = tr31.unwrap_key_block(kbpk, key_block,
                                                 kbpk_algorithm=kbpk_algorithm)
        key_attributes = dict(tr31.header_to_key_attributes(header, len(material)))
    algorithm = str(key_attributes["KeyAlgorithm"])
    header_modes = key_attributes["KeyModesOfUse"]
    modes = all_modes(header_modes if isinstance(header_modes, Mapping) else {})
    with refusals(f"{what}: the key block's header"):
        attributes.validate_key_attributes({**key_attributes, "KeyModesOfUse": modes})
        crypto_keys.check_key_material(material, algorithm, what="the wrapped key")
    check_strength(algorithm)
    tag_map = check_tags(request.tags)
    check_key_quota(account)
    kcv_algorithm = kcv_algorithm_for(algorithm, request.key_check_value_algorithm)
    now = account.now()
    key = KeyRecord(
        key_id=account.new_key_id(), account_id=account.account_id, region=account.region,
        key_usage=str(key_attributes["KeyUsage"]),
        key_class=str(key_attributes["KeyClass"]), key_algorithm=algorithm, modes=modes,
        key_check_value=compute_symmetric_kcv(material, algorithm, kcv_algorithm),
        key_check_value_algorithm=kcv_algorithm, enabled=request.enabled,
        exportable=bool(header.exportable), key_origin="EXTERNAL", create_timestamp=now,
        usage_start_timestamp=now if request.enabled else None,
        exportability=header.exportability, key_version=header.key_version,
        optional_blocks=[[block_id, value] for block_id, value
                         in tr31.retained_optional_blocks(header).items()
                         if block_id not in _DROPPED_OPTIONAL_BLOCKS],
        tags=tag_map, secret_hex=material.hex().upper(),
    )
    return account.add_key(key)


@locked
def import_tr31_key_block(account: AccountState, member: Params,
                          request: ImportRequest) -> KeyRecord:
    """ImportKey Tr31KeyBlock under a K0/K1 key (spec 5.3)."""
    kbpk = wrapping_key(account, member["WrappingKeyIdentifier"], for_export=False)

    def check_strength(algorithm: str) -> None:
        with refusals("Tr31KeyBlock"):
            attributes.check_wrapping_strength(kbpk.key_algorithm, algorithm)

    return import_key_block(
        account, kbpk.secret(), kbpk.key_algorithm, member["WrappedKeyBlock"],
        what="Tr31KeyBlock", request=request, check_strength=check_strength,
    )


# --- export -------------------------------------------------------------------------------


def exportable_key(account: AccountState, identifier: str) -> KeyRecord:
    """The ExportKeyIdentifier's key: usable, exportable, symmetric."""
    key = account.resolve_usable_key(identifier, "ExportKeyIdentifier")
    if not key.exportable or key.exportability == "N":
        raise ValidationException(f"Key {key.arn} is not exportable")
    if not is_symmetric(key.key_algorithm) or key.secret_hex is None:
        raise ValidationException(
            f"Key {key.arn} is a {key.key_class}: only symmetric keys can be exported "
            "in a TR-31 key block"
        )
    return key


def export_header(key: KeyRecord, kbpk_algorithm: str,
                  overrides: KeyBlockHeaderOverrides | None) -> str:
    """The TR-31 header for an export: the key's attributes, restricted by
    KeyBlockHeaders (spec 5.4: "more restrictive" only)."""
    modes = dict(key.modes)
    exportability = key.exportability
    key_version = key.key_version
    optional_blocks: list[tuple[str, str]] = []
    if overrides is not None:
        if overrides.modes is not None:
            requested = all_modes(overrides.modes)
            wanted = true_modes(requested)
            if not wanted:
                raise ValidationException("KeyBlockHeaders.KeyModesOfUse sets no mode")
            if not key.modes.get("NoRestrictions") and not wanted <= true_modes(key.modes):
                extra = ", ".join(sorted(wanted - true_modes(key.modes)))
                raise ValidationException(
                    "KeyBlockHeaders.KeyModesOfUse may only restrict the key's modes; "
                    f"the key does not allow {extra}"
                )
            modes = requested
        if overrides.exportability is not None:
            code = _EXPORTABILITY_CODES[overrides.exportability]
            if _EXPORTABILITY_RANK[code] > _EXPORTABILITY_RANK[exportability]:
                raise ValidationException(
                    f"KeyBlockHeaders.KeyExportability {overrides.exportability} is less "
                    "restrictive than the key's own exportability"
                )
            exportability = code
        if overrides.key_version is not None:
            key_version = overrides.key_version
        if overrides.optional_blocks:
            optional_blocks = list(overrides.optional_blocks.items())
            size = sum(_OPTIONAL_BLOCK_OVERHEAD + len(value) for _, value in optional_blocks)
            if size > MAX_OPTIONAL_BLOCKS_CHARACTERS:
                raise ValidationException(
                    f"KeyBlockHeaders.OptionalBlocks take {size} characters (4 per block for "
                    f"its id and length, plus its value); at most "
                    f"{MAX_OPTIONAL_BLOCKS_CHARACTERS} are allowed"
                )
    with refusals("KeyBlockHeaders"):
        attributes.validate_key_attributes(
            {"KeyUsage": key.key_usage, "KeyClass": key.key_class,
             "KeyAlgorithm": key.key_algorithm, "KeyModesOfUse": modes}
        )
        header: str = tr31.build_header(
            key_usage=key.key_usage, key_algorithm=key.key_algorithm,
            kbpk_algorithm=kbpk_algorithm, modes_of_use=modes,
            exportability=exportability, key_version=key_version,
            optional_blocks=optional_blocks or None,
        )
    return header


def wrap_for_export(key: KeyRecord, kbpk: bytes, kbpk_algorithm: str, wrapping_key_arn: str,
                    overrides: KeyBlockHeaderOverrides | None,
                    kcv_algorithm_requested: str | None) -> WrappedKeyResult:
    """``key`` in a TR-31 block under ``kbpk``, with its KCV."""
    header = export_header(key, kbpk_algorithm, overrides)
    kcv_algorithm = (key.key_check_value_algorithm if kcv_algorithm_requested is None
                     else kcv_algorithm_for(key.key_algorithm, kcv_algorithm_requested))
    material = key.secret()
    with refusals("ExportKey"):
        key_block: str = tr31.wrap_key_block(kbpk, header, material,
                                             kbpk_algorithm=kbpk_algorithm)
    return WrappedKeyResult(
        wrapping_key_arn=wrapping_key_arn, key_block=key_block,
        key_check_value=compute_symmetric_kcv(material, key.key_algorithm, kcv_algorithm),
        key_check_value_algorithm=kcv_algorithm,
    )


@locked
def export_tr31_key_block(account: AccountState, member: Params,
                          request: ExportRequest) -> WrappedKeyResult:
    """ExportKey Tr31KeyBlock under a K0/K1 key: version B (TDES) or D (AES)."""
    if request.export_dukpt_initial_key is not None:  # the IPEK of a BDK (tr34's module)
        from apckx.emulator.control.key_exchange import export_payload  # it imports us

        return export_payload.export_initial_key_tr31(account, member, request)
    key = exportable_key(account, request.export_key_identifier)
    kbpk = wrapping_key(account, member["WrappingKeyIdentifier"], for_export=True)
    with refusals("Tr31KeyBlock"):
        attributes.check_wrapping_strength(kbpk.key_algorithm, key.key_algorithm)
    return wrap_for_export(key, kbpk.secret(), kbpk.key_algorithm, kbpk.arn,
                           header_overrides(member), request.key_check_value_algorithm)
