"""ImportKey/ExportKey ``As2805KeyCryptogram``: a TDES working key enciphered under an AS2805
KEK (a K0 key) xor the variant of its key type (AWS UG as2805.workingkeys.*; the cryptography is
:mod:`apckx.crypto.as2805`, the inferred choices are in docs/EMULATOR.md, "AS2805")."""

from __future__ import annotations

from apckx.crypto import as2805, attributes
from apckx.crypto import keys as crypto_keys
from apckx.emulator.control.account import AccountState, locked
from apckx.emulator.control.common import refusals
from apckx.emulator.control.key_exchange.common import (
    ExportRequest,
    ImportRequest,
    Params,
    WrappedKeyResult,
    refuse_dukpt_initial_key,
)
from apckx.emulator.control.key_exchange.tr31 import exportable_key
from apckx.emulator.control.keys import check_key_quota, compute_symmetric_kcv, kcv_algorithm_for
from apckx.emulator.control.records import K0, KeyRecord, all_modes
from apckx.emulator.control.tags import check_tags
from apckx.emulator.exceptions import ValidationException

#: AS2805 keys are TDES (AS2805.6); KEKs too (AWS: always TR31_K0_KEY_ENCRYPTION_KEY).
AS2805_ALGORITHMS = ("TDES_2KEY", "TDES_3KEY")


def as2805_kek(account: AccountState, identifier: str, *, for_export: bool) -> KeyRecord:
    """The KEK of an AS2805 cryptogram: a usable K0 TDES key that may wrap or unwrap."""
    role = "WrappingKeyIdentifier"
    kek = account.resolve_usable_key(identifier, role)
    if kek.key_usage != K0 or kek.key_algorithm not in AS2805_ALGORITHMS:
        raise ValidationException(
            f"{role} {kek.arn} must be a {K0} TDES_2KEY or TDES_3KEY key for AS2805 "
            f"(it is {kek.key_usage} {kek.key_algorithm})"
        )
    needed = ("Wrap", "Encrypt") if for_export else ("Unwrap", "Decrypt")
    if not (kek.modes.get("NoRestrictions") or any(kek.modes.get(m) for m in needed)):
        raise ValidationException(
            f"{role} {kek.arn} does not allow {' or '.join(needed)} (KeyModesOfUse)"
        )
    return kek


@locked
def import_as2805_key_cryptogram(
    account: AccountState, member: Params, request: ImportRequest
) -> KeyRecord:
    """ImportKey As2805KeyCryptogram: decipher under KEK xor variant, store with the variant's
    key usage and the caller's algorithm, modes and exportability."""
    variant = str(member["As2805KeyVariant"])
    algorithm = str(member["KeyAlgorithm"])
    if algorithm not in AS2805_ALGORITHMS:
        raise ValidationException(
            f"As2805KeyCryptogram.KeyAlgorithm must be TDES_2KEY or TDES_3KEY (got {algorithm})"
        )
    kek = as2805_kek(account, member["WrappingKeyIdentifier"], for_export=False)
    cryptogram_hex = str(member["WrappedKeyCryptogram"])
    expected = crypto_keys.KEY_ALGORITHMS[algorithm] * 2
    if len(cryptogram_hex) != expected:
        raise ValidationException(
            f"As2805KeyCryptogram.WrappedKeyCryptogram must be {expected} hex characters "
            f"for {algorithm} (got {len(cryptogram_hex)})"
        )
    with refusals("As2805KeyCryptogram"):
        material = as2805.unwrap_key_cryptogram(
            kek.secret(), bytes.fromhex(cryptogram_hex), variant
        )
        crypto_keys.check_key_material(material, algorithm, what="the wrapped key")
    modes = all_modes(member["KeyModesOfUse"])
    usage = as2805.KEY_VARIANT_USAGES[variant]
    with refusals("As2805KeyCryptogram"):
        attributes.validate_key_attributes(
            {
                "KeyUsage": usage,
                "KeyClass": "SYMMETRIC_KEY",
                "KeyAlgorithm": algorithm,
                "KeyModesOfUse": modes,
            }
        )
    tag_map = check_tags(request.tags)
    check_key_quota(account)
    kcv_algorithm = kcv_algorithm_for(algorithm, request.key_check_value_algorithm)
    now = account.now()
    key = KeyRecord(
        key_id=account.new_key_id(),
        account_id=account.account_id,
        region=account.region,
        key_usage=usage,
        key_class="SYMMETRIC_KEY",
        key_algorithm=algorithm,
        modes=modes,
        key_check_value=compute_symmetric_kcv(material, algorithm, kcv_algorithm),
        key_check_value_algorithm=kcv_algorithm,
        enabled=request.enabled,
        exportable=bool(member["Exportable"]),
        key_origin="EXTERNAL",
        create_timestamp=now,
        usage_start_timestamp=now if request.enabled else None,
        exportability="E" if member["Exportable"] else "N",
        tags=tag_map,
        secret_hex=material.hex().upper(),
    )
    return account.add_key(key)


@locked
def export_as2805_key_cryptogram(
    account: AccountState, member: Params, request: ExportRequest
) -> WrappedKeyResult:
    """ExportKey As2805KeyCryptogram: the key enciphered under KEK xor its variant
    (``WrappedKeyMaterialFormat`` KEY_CRYPTOGRAM)."""
    refuse_dukpt_initial_key(request)
    variant = str(member["As2805KeyVariant"])
    key = exportable_key(account, request.export_key_identifier)
    usage = as2805.KEY_VARIANT_USAGES[variant]
    if key.key_usage != usage or key.key_algorithm not in AS2805_ALGORITHMS:
        raise ValidationException(
            f"As2805KeyVariant {variant} exports a {usage} TDES key; key {key.arn} is "
            f"{key.key_usage} {key.key_algorithm}"
        )
    kek = as2805_kek(account, member["WrappingKeyIdentifier"], for_export=True)
    if (
        crypto_keys.KEY_ALGORITHMS[key.key_algorithm]
        > crypto_keys.KEY_ALGORITHMS[kek.key_algorithm]
    ):
        raise ValidationException(
            f"WrappingKeyIdentifier {kek.arn} ({kek.key_algorithm}) is weaker than the key "
            f"under export ({key.key_algorithm})"
        )
    material = key.secret()
    with refusals("As2805KeyCryptogram"):
        cryptogram = as2805.wrap_key_cryptogram(kek.secret(), material, variant)
    kcv_algorithm = (
        key.key_check_value_algorithm
        if request.key_check_value_algorithm is None
        else kcv_algorithm_for(key.key_algorithm, request.key_check_value_algorithm)
    )
    return WrappedKeyResult(
        wrapping_key_arn=kek.arn,
        key_block=cryptogram.hex().upper(),
        key_check_value=compute_symmetric_kcv(material, key.key_algorithm, kcv_algorithm),
        key_check_value_algorithm=kcv_algorithm,
        material_format="KEY_CRYPTOGRAM",
    )
