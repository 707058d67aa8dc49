"""Import one working key into APC: under a KEK already in APC, as a ready-made TR-31 block,
or over ECDH (the import-kek machinery with any key type).

Under a KEK, the KEK's cleartext is checked against the KCV APC reports for it (GetKey)
before anything is wrapped, so a wrong KEK is caught before ImportKey. After ImportKey the
KCV APC computed is compared with the KCV of the key we sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apckx.errors import (
    CeremonyError,
    InputError,
    KcvMismatchError,
    KeyBlockError,
    ServiceError,
)

if TYPE_CHECKING:
    from apckx.ceremonies.import_kek import KekImportPlan
    from apckx.ceremonies.journal import Journal
    from apckx.crypto.tr31 import KeyBlockHeader
    from apckx.service.apc import ApcService

# The TR-31 key usages APC imports through a TR-31 key block that are also in the botocore
# KeyUsage enum [M]. Asked for but not in the enum (so APC can't take them): E3, M2, M4, M5.
SUPPORTED_USAGE_CODES = (
    "B0", "C0", "D0", "E0", "E1", "E2", "E4", "E5", "E6", "K0", "K1",
    "M0", "M1", "M3", "M6", "M7", "P0", "P1", "V1", "V2",
)  # fmt: skip
WRAPPING_USAGES = ("TR31_K0_KEY_ENCRYPTION_KEY", "TR31_K1_KEY_BLOCK_PROTECTION_KEY")
EXPORTABILITY = {"E": "EXPORTABLE", "N": "NON_EXPORTABLE", "S": "SENSITIVE"}
_USAGE_TEXT = re.compile(r"(?:TR31_)?([A-Z0-9]{2})(?:_[A-Z0-9_]+)?")
_KEY_VERSION = re.compile(r"[0-9A-Z]{2}")


def usage_code(key_usage: str) -> str:
    """``TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY`` or ``D0`` -> ``D0``."""
    match = _USAGE_TEXT.fullmatch(key_usage.strip().upper())
    if not match:
        raise InputError(
            "key usage must be a TR-31 code (D0) or APC's name (TR31_D0_SYMMETRIC_DATA_"
            "ENCRYPTION_KEY)"
        )
    return match.group(1)


def resolve_key_usage(text: str) -> str:
    """A TR-31 code or APC name -> APC's KeyUsage name, if APC imports it through TR-31."""
    from apckx.crypto.attributes import normalize_key_usage

    code = usage_code(text)
    if code not in SUPPORTED_USAGE_CODES:
        raise InputError(
            f"key usage {code} is not one APC accepts in a TR-31 import; "
            f"APC accepts {', '.join(SUPPORTED_USAGE_CODES)}"
        )
    name = normalize_key_usage(code)
    given = text.strip().upper()
    if len(given) > 2 and given != name:
        raise InputError(f"key usage is not an APC name: did you mean {name} ({code})?")
    return name


def default_mode_of_use(code: str) -> str:
    """The widest mode APC allows for a usage (UG keys-validattributes, spec section 4)."""
    if code in ("K0", "K1", "D0", "P0"):
        return "B"  # Encrypt, Decrypt, Wrap, Unwrap
    if code == "B0" or code.startswith("E"):
        return "X"  # DeriveKey
    return "C"  # Generate + Verify: C0, V1, V2, M*, P1


def normalize_mode_of_use(text: str) -> str:
    """A TR-31 mode-of-use code (``B``, ``C``, ``D``, ``E``, ``G``, ``N``, ``V``, ``X``)."""
    from apckx.crypto.attributes import MODES

    code = text.strip().upper()
    if code not in MODES:
        raise InputError(f"mode of use must be one of the TR-31 codes {', '.join(sorted(MODES))}")
    return code


def normalize_exportability(text: str) -> str:
    """``E``/``N``/``S`` or APC's EXPORTABLE/NON_EXPORTABLE/SENSITIVE -> the TR-31 letter."""
    value = text.strip().upper()
    for letter, name in EXPORTABILITY.items():
        if value in (letter, name):
            return letter
    raise InputError("exportability must be E (EXPORTABLE), N (NON_EXPORTABLE) or S (SENSITIVE)")


def check_key_version(text: str) -> str:
    if not _KEY_VERSION.fullmatch(text):
        raise InputError("key version must be two characters 0-9 or A-Z")
    return text


@dataclass(frozen=True)
class WorkingKeySpec:
    """The attributes of a working key we wrap ourselves (they become its TR-31 header)."""

    key_usage: str  # APC name
    key_algorithm: str
    mode_of_use: str | None = None  # TR-31 code; None = the usage's widest mode
    exportability: str = "E"
    key_version: str = "00"

    @property
    def mode(self) -> str:
        return self.mode_of_use or default_mode_of_use(usage_code(self.key_usage))


@dataclass(frozen=True)
class KekInfo:
    """The KEK as APC describes it; its cleartext was checked against ``kcv``."""

    key_arn: str
    key_algorithm: str
    kcv: str
    kcv_algorithm: str


@dataclass(frozen=True)
class ImportedKey:
    """What an import produced. Nothing secret: ARN, alias, attributes, KCV."""

    key_arn: str
    kcv: str
    kcv_algorithm: str
    key_usage: str
    key_algorithm: str
    exportable: bool
    alias: str | None = None
    header: str | None = None  # the TR-31 header text, for display
    kcv_checked: bool = True  # False: nothing local to compare APC's KCV with
    extra: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "key_arn": self.key_arn,
            "alias": self.alias,
            "kcv": self.kcv,
            "kcv_algorithm": self.kcv_algorithm,
            "key_usage": self.key_usage,
            "key_algorithm": self.key_algorithm,
            "exportable": self.exportable,
            "kcv_checked": self.kcv_checked,
        }
        if self.header:
            record["header"] = self.header
        record.update(self.extra)
        return record


def kcv_algorithm_for(key_algorithm: str) -> str:
    from apckx.crypto.attributes import default_kcv_algorithm

    return default_kcv_algorithm(key_algorithm)


def compute_key_kcv(key: bytes, key_algorithm: str, kcv_algorithm: str | None = None) -> str:
    """The KCV APC would report for ``key`` (CMAC, ANSI_X9_24 or HMAC; 6 hex)."""
    from apckx.crypto.kcv import compute_kcv

    return compute_kcv(
        key, kcv_algorithm or kcv_algorithm_for(key_algorithm), key_algorithm=key_algorithm
    )


def verify_kek(service: ApcService, kek_id: str, kek: bytes) -> KekInfo:
    """GetKey the KEK and check our cleartext against its KCV; raises KcvMismatchError."""
    from apckx.crypto.kcv import kcv_matches
    from apckx.crypto.keys import check_key_material

    key = service.get_key(kek_id)
    attributes = key["KeyAttributes"]
    usage = attributes["KeyUsage"]
    if usage not in WRAPPING_USAGES:
        raise InputError(f"{kek_id} is a {usage} key, not a KEK (K0 or K1)")
    if key.get("KeyState") != "CREATE_COMPLETE" or not key.get("Enabled", True):
        raise CeremonyError(
            f"KEK {kek_id} is not usable (state {key.get('KeyState')}, "
            f"enabled {key.get('Enabled')})"
        )
    algorithm = str(attributes["KeyAlgorithm"])
    check_key_material(kek, algorithm, what="KEK")
    kcv_algorithm = str(key.get("KeyCheckValueAlgorithm") or kcv_algorithm_for(algorithm))
    apc_kcv = str(key.get("KeyCheckValue", ""))
    local_kcv = compute_key_kcv(kek, algorithm, kcv_algorithm)
    if not kcv_matches(local_kcv, apc_kcv):
        raise KcvMismatchError(
            f"the KEK given does not match {kek_id}: its KCV is {local_kcv}, APC reports "
            f"{apc_kcv} ({kcv_algorithm}); nothing was imported"
        )
    return KekInfo(str(key["KeyArn"]), algorithm, apc_kcv.upper(), kcv_algorithm)


def build_working_key_block(
    kek: bytes,
    kek_algorithm: str,
    key: bytes,
    spec: WorkingKeySpec,
    *,
    padding: bytes | None = None,
) -> str:
    """Wrap ``key`` in TR-31 under the KEK: version D for an AES KEK, B for TDES."""
    from apckx.crypto.keys import check_key_material

    check_key_material(key, spec.key_algorithm, what="key")
    return wrap_under_kek(
        kek,
        kek_algorithm,
        key,
        key_usage=spec.key_usage,
        key_algorithm=spec.key_algorithm,
        mode_of_use=spec.mode,
        exportability=spec.exportability,
        key_version=spec.key_version,
        padding=padding,
    )


def wrap_under_kek(
    kek: bytes,
    kek_algorithm: str,
    key: bytes,
    *,
    key_usage: str,
    key_algorithm: str,
    mode_of_use: str,
    exportability: str,
    key_version: str,
    padding: bytes | None = None,
) -> str:
    """A TR-31 block of ``key`` with these attributes under the KEK (version D for an AES
    KEK, B for TDES), once the KEK is strong enough for the key."""
    from apckx.crypto.attributes import check_wrapping_strength
    from apckx.crypto.tr31 import build_header, wrap_key_block

    check_wrapping_strength(kek_algorithm, key_algorithm)
    header = build_header(
        key_usage=key_usage,
        key_algorithm=key_algorithm,
        kbpk_algorithm=kek_algorithm,
        modes_of_use=mode_of_use,
        exportability=exportability,
        key_version=key_version,
    )
    return wrap_key_block(kek, header, key, padding=padding)


def describe_key_block(key_block: str) -> KeyBlockHeader:
    """Decode a block's header (no key needed) and check APC can import its usage."""
    from apckx.crypto.tr31 import inspect_key_block

    header = inspect_key_block(key_block.strip())
    resolve_key_usage(header.key_usage)
    if header.algorithm == "H" and header.block("HM") is None:
        raise KeyBlockError(
            "an HMAC ('H') key block without an HM optional block names no hash: APC does not "
            "import it (tr31 inspect and unwrap read it; re-export it with HM)"
        )
    return header


def header_kcv_algorithm(header: KeyBlockHeader) -> str:
    """KCV algorithm from a header's algorithm letter: T -> ANSI_X9_24, A -> CMAC, H -> HMAC."""
    by_letter = {"T": "ANSI_X9_24", "A": "CMAC", "H": "HMAC"}
    if header.algorithm not in by_letter:
        raise KeyBlockError(
            f"key block algorithm {header.algorithm!r} is not one APC imports (T, A or H)"
        )
    return by_letter[header.algorithm]


def ensure_alias_free(service: ApcService, alias: str) -> None:
    """Fail before ImportKey if the alias already exists (APC's CreateAlias is no upsert)."""
    try:
        existing = service.get_alias(alias)
    except ServiceError as exc:
        if exc.code == "ResourceNotFoundException":
            return
        raise
    target = existing.get("KeyArn") or "no key"
    raise InputError(f"alias {alias} already exists (points at {target}); choose another alias")


def import_tr31_block(
    service: ApcService,
    *,
    kek_arn: str,
    key_block: str,
    kcv_algorithm: str,
    expected_kcv: str | None = None,
    alias: str | None = None,
    tags: Mapping[str, str] | None = None,
    enabled: bool = True,
    journal: Journal | None = None,
) -> ImportedKey:
    """ImportKey(Tr31KeyBlock), check the KCV APC reports, then CreateAlias.

    On a KCV mismatch the key is left without an alias and the error names its ARN.
    """
    from apckx.ceremonies.journal import Resource
    from apckx.crypto.kcv import kcv_matches

    key = service.import_key(
        key_material={
            "Tr31KeyBlock": {"WrappingKeyIdentifier": kek_arn, "WrappedKeyBlock": key_block}
        },
        key_check_value_algorithm=kcv_algorithm,
        enabled=enabled,
        tags=tags,
    )
    key_arn = str(key["KeyArn"])
    apc_kcv = str(key.get("KeyCheckValue", "")).upper()
    if journal is not None:
        journal.record_resource(Resource(kind="key", role="working", arn=key_arn))
    if expected_kcv is not None and not kcv_matches(expected_kcv, apc_kcv):
        if journal is not None:
            journal.step("verify_kcv", status="failed", apc_kcv=apc_kcv, local_kcv=expected_kcv)
        raise KcvMismatchError(
            f"APC imported {key_arn} with KCV {apc_kcv}, expected {expected_kcv.upper()}; "
            "no alias was created: delete the key (apckx cleanup) and check the key's source"
        )
    if journal is not None:
        journal.step("verify_kcv", apc_kcv=apc_kcv, local_kcv=expected_kcv)
    if alias:
        service.create_alias(alias, key_arn)
        if journal is not None:
            journal.record_resource(
                Resource(kind="alias", role="working", arn=key_arn, alias=alias)
            )
    attributes = key["KeyAttributes"]
    return ImportedKey(
        key_arn=key_arn,
        kcv=apc_kcv,
        kcv_algorithm=str(key.get("KeyCheckValueAlgorithm", kcv_algorithm)),
        key_usage=str(attributes["KeyUsage"]),
        key_algorithm=str(attributes["KeyAlgorithm"]),
        exportable=bool(key.get("Exportable")),
        alias=alias,
        header=key_block[:16],
        kcv_checked=expected_kcv is not None,
    )


def import_under_kek(
    service: ApcService,
    *,
    kek_id: str,
    kek: bytes,
    key: bytes,
    spec: WorkingKeySpec,
    alias: str | None = None,
    tags: Mapping[str, str] | None = None,
    kek_info: KekInfo | None = None,
    journal: Journal | None = None,
) -> ImportedKey:
    """Check the KEK's KCV, wrap ``key`` under it, import, compare KCVs, alias it."""
    info = kek_info or verify_kek(service, kek_id, kek)
    if alias and kek_info is None:
        ensure_alias_free(service, alias)
    key_block = build_working_key_block(kek, info.key_algorithm, key, spec)
    kcv_algorithm = kcv_algorithm_for(spec.key_algorithm)
    expected_kcv = compute_key_kcv(key, spec.key_algorithm, kcv_algorithm)
    return import_tr31_block(
        service,
        kek_arn=info.key_arn,
        key_block=key_block,
        kcv_algorithm=kcv_algorithm,
        expected_kcv=expected_kcv,
        alias=alias,
        tags=tags,
        journal=journal,
    )


def import_key_block(
    service: ApcService,
    *,
    kek_id: str,
    key_block: str,
    alias: str | None = None,
    tags: Mapping[str, str] | None = None,
    expected_kcv: str | None = None,
    journal: Journal | None = None,
) -> ImportedKey:
    """Import a block made elsewhere (an HSM export) as is, under the KEK already in APC."""
    header = describe_key_block(key_block)
    if alias:
        ensure_alias_free(service, alias)
    return import_tr31_block(
        service,
        kek_arn=kek_id,
        key_block=key_block.strip(),
        kcv_algorithm=header_kcv_algorithm(header),
        expected_kcv=expected_kcv,
        alias=alias,
        tags=tags,
        journal=journal,
    )


def plan_ecdh_key_import(
    spec: WorkingKeySpec,
    *,
    alias: str,
    curve: str = "P521",
    kdf: str = "NIST_SP800",
    kdf_hash: str = "SHA_256",
    derive_key_algorithm: str | None = None,
    shared_info_hex: str | None = None,
    receiver_alias: str | None = None,
    root_alias: str | None = None,
    certs_dir: Path = Path("certs"),
    new_receiver_key: bool = False,
    trust_apc_root: str | None = None,
) -> KekImportPlan:
    """The import-kek ceremony's plan for any working key (``import-key --via ecdh``).

    Same receiver key, sender root, certificates and derivation as import-kek; only the
    TR-31 header differs: built from ``spec`` under the derived wrapping key.
    """
    from apckx.ceremonies import import_kek
    from apckx.crypto.ecdh import check_ecdh_strength, parse_shared_info_hex
    from apckx.crypto.tr31 import build_header

    curve, kdf_hash, derive_key_algorithm = import_kek.check_derivation_options(
        curve=curve, kdf=kdf, kdf_hash=kdf_hash, derive_key_algorithm=derive_key_algorithm
    )
    check_ecdh_strength(curve, derive_key_algorithm, spec.key_algorithm)
    header = build_header(
        key_usage=spec.key_usage,
        key_algorithm=spec.key_algorithm,
        kbpk_algorithm=derive_key_algorithm,
        modes_of_use=spec.mode,
        exportability=spec.exportability,
        key_version=spec.key_version,
    )
    names = [
        import_kek.check_alias_name(
            receiver_alias or import_kek.RECEIVER_ALIAS, flag="--receiver-alias"
        ),
        import_kek.check_alias_name(root_alias or import_kek.ROOT_ALIAS, flag="--root-alias"),
        import_kek.check_alias_name(alias, flag="--alias"),
    ]
    if len(set(names)) != 3:
        raise InputError("--receiver-alias, --root-alias and --alias must be three different names")
    return import_kek.KekImportPlan(
        key_algorithm=spec.key_algorithm,
        header=header,
        curve=curve,
        kdf=kdf,
        kdf_hash=kdf_hash,
        derive_key_algorithm=derive_key_algorithm,
        shared_info=None if shared_info_hex is None else parse_shared_info_hex(shared_info_hex),
        receiver_alias=names[0],
        root_alias=names[1],
        kek_alias=names[2],
        certs_dir=Path(certs_dir),
        new_receiver_key=new_receiver_key,
        trust_apc_root=import_kek._pinned_root(trust_apc_root),
    )
