"""Import a KEK or a working key into APC over TR-34 (apckx as KDH) or RSA wrap.

TR-34 (``import-kek --via tr34``, ``import-key --via tr34``), apc-tr34.md 3.1-3.2:

1. apckx's RSA sender CA (``certs/``) is imported as an S0 root, or the root alias's key is
   reused when its ``apckx:ca-sha256`` tag is our CA's fingerprint;
2. GetParametersForImport(TR34_KEY_BLOCK, RSA_3072 by default): APC's KRD certificate,
   verified up APC's chain to its self-signed root (and ``--trust-apc-root`` if pinned);
3. the TR-34 block: 2-pass with a fresh 8-byte nonce (``RandomNonce``) by default, or 1-pass
   (signing time); signed with apckx's separate RSA signing leaf;
4. ImportKey(Tr34KeyBlock); APC's KCV must equal ours (constant time) before the alias
   points at the key.

RSA wrap (``import-key --via rsa``), apc-tr34.md 3.5: GetParametersForImport(KEY_CRYPTOGRAM),
the key RSAES-OAEP wrapped under APC's verified certificate, ImportKey(KeyCryptogram) with the
attributes given (a cryptogram carries none), the KCVs compared, the alias set.

Every choice is checked before any call (:func:`plan_rsa_import`): RSA_2048 carries TDES only,
AES_128 needs RSA_3072/4096, nothing stronger travels under RSA. Every resource is journaled as
APC confirms it; ``apckx cleanup --ceremony ID`` rolls the ceremony back. The key and private
keys stay in local variables; the journal and the result carry ARNs, KCVs and names only.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apckx.ceremonies.ecdh_session import ROLE_TAG
from apckx.ceremonies.journal import COMPLETE, FAILED, Journal, Resource
from apckx.ceremonies.tr34_session import (
    KEY_BLOCK_FORMAT,
    TR34_ROOT_ALIAS,
    RsaSession,
    describe_failure,
    load_or_create_rsa_credentials,
)
from apckx.errors import (
    ApckxError,
    CeremonyError,
    ConfigError,
    InputError,
    KcvMismatchError,
)
from apckx.service.apc import CEREMONY_TAG, ApcService

TR34_KEK_ALIAS = "alias/import-kek-tr34-result"
VIAS = ("tr34", "rsa")
NONCE_BYTES = 8


@dataclass(frozen=True)
class RsaImportPlan:
    """Everything but the key. Built (and checked) by :func:`plan_rsa_import`."""

    via: str  # "tr34" | "rsa"
    role: str  # "kek" | "working"
    key_usage: str  # APC name
    key_algorithm: str
    mode_of_use: str  # TR-31 code
    exportability: str  # E | N | S
    key_version: str
    wrapping_key_algorithm: str
    alias: str
    certs_dir: Path
    passes: int = 2
    wrapping_spec: str = "RSA_OAEP_SHA_256"
    root_alias: str = TR34_ROOT_ALIAS
    trust_apc_root: str | None = None
    replace: bool = False
    header: str | None = None  # the TR-34 header (TR-34 only)

    @property
    def kind(self) -> str:
        """The journal's kind (and ceremony id prefix): kek-tr34, key-tr34, key-rsa."""
        return f"{'kek' if self.role == 'kek' else 'key'}-{self.via}"

    @property
    def kcv_algorithm(self) -> str:
        from apckx.crypto.attributes import default_kcv_algorithm

        return default_kcv_algorithm(self.key_algorithm)

    def to_record(self) -> dict[str, Any]:
        record = {name: value for name, value in self.__dict__.items() if value is not None}
        record["certs_dir"] = str(self.certs_dir)
        if self.via == "rsa":
            record.pop("passes", None)
            record.pop("root_alias", None)
        else:
            record.pop("wrapping_spec", None)
        return record


@dataclass
class RsaImportResult:
    ceremony_id: str
    via: str
    key_arn: str
    alias: str
    kcv: str  # APC's, equal to local_kcv
    local_kcv: str
    kcv_algorithm: str
    key_usage: str
    key_algorithm: str
    exportable: bool
    wrapping_key_algorithm: str
    apc_root_fingerprint: str
    apc_wrapping_fingerprint: str
    header: str | None = None
    passes: int | None = None
    random_nonce: str | None = None
    wrapping_spec: str | None = None
    root_key_arn: str | None = None
    root_reused: bool | None = None
    sender_ca_fingerprint: str | None = None
    signing_fingerprint: str | None = None
    replaced_key_arn: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        record = {k: v for k, v in self.__dict__.items() if v is not None and k != "extra"}
        record.update(self.extra)
        return record


def plan_rsa_import(
    *,
    via: str,
    role: str,
    key_usage: str,
    key_algorithm: str,
    alias: str,
    mode_of_use: str | None = None,
    exportability: str = "E",
    key_version: str = "00",
    wrapping_key_algorithm: str | None = None,
    one_pass: bool = False,
    wrapping_spec: str | None = None,
    root_alias: str | None = None,
    certs_dir: Path = Path("certs"),
    trust_apc_root: str | None = None,
    replace: bool = False,
) -> RsaImportPlan:
    """Check every choice against APC's rules (InputError, StrengthError) before any call."""
    from apckx.ceremonies.import_kek import check_alias_name, normalize_fingerprint
    from apckx.ceremonies.import_key import (
        check_key_version,
        default_mode_of_use,
        normalize_exportability,
        normalize_mode_of_use,
        resolve_key_usage,
        usage_code,
    )
    from apckx.crypto.rsa_wrap import WRAPPING_SPECS, check_rsa_transport_strength
    from apckx.crypto.tr34 import build_tr34_header

    if via not in VIAS:
        raise InputError(f"--via must be one of {', '.join(VIAS)}")
    usage = resolve_key_usage(key_usage)
    code = usage_code(usage)
    if role == "kek" and code not in ("K0", "K1"):
        raise InputError("--key-usage must be K0 or K1 for a KEK")
    algorithm = key_algorithm.strip().upper()
    wrapping = (wrapping_key_algorithm or "RSA_3072").strip().upper()
    check_rsa_transport_strength(wrapping, algorithm)
    mode = normalize_mode_of_use(mode_of_use) if mode_of_use else default_mode_of_use(code)
    export_letter = normalize_exportability(exportability)
    version = check_key_version(key_version)
    header = None
    if via == "tr34":
        if wrapping_spec is not None:
            raise InputError("--wrapping-spec is for --via rsa (TR-34 uses RSA-OAEP SHA-256)")
        header = build_tr34_header(
            key_usage=code,
            key_algorithm=algorithm,
            mode_of_use=mode,
            exportability=export_letter,
            key_version=version,
        )
    else:
        if one_pass:
            raise InputError("--one-pass is for --via tr34 (RSA wrap has no passes)")
        if wrapping_spec is not None and wrapping_spec not in WRAPPING_SPECS:
            raise InputError(f"--wrapping-spec must be one of {', '.join(WRAPPING_SPECS)}")
        from apckx.crypto.attributes import modes_from_code

        modes_from_code(mode)
    names = [check_alias_name(alias, flag="--alias")]
    if via == "tr34":
        names.append(check_alias_name(root_alias or TR34_ROOT_ALIAS, flag="--root-alias"))
        if len(set(names)) != len(names):
            raise InputError("--root-alias and --alias must be different names")
    return RsaImportPlan(
        via=via,
        role=role,
        key_usage=usage,
        key_algorithm=algorithm,
        mode_of_use=mode,
        exportability=export_letter,
        key_version=version,
        wrapping_key_algorithm=wrapping,
        alias=alias,
        certs_dir=Path(certs_dir),
        passes=1 if one_pass else 2,
        wrapping_spec=wrapping_spec or "RSA_OAEP_SHA_256",
        root_alias=root_alias or TR34_ROOT_ALIAS,
        trust_apc_root=None if trust_apc_root is None else normalize_fingerprint(trust_apc_root),
        replace=replace,
        header=header,
    )


def run_rsa_import(
    apc: ApcService,
    key: bytes,
    plan: RsaImportPlan,
    *,
    journal_dir: Path,
    progress: Callable[[str], None] | None = None,
    tags: dict[str, str] | None = None,
) -> tuple[RsaImportResult, Journal]:
    """Open a journal and run the ceremony; the journal is complete either way."""
    from apckx.ceremonies.import_kek import check_certs_dir
    from apckx.crypto.keys import check_key_material

    check_key_material(key, plan.key_algorithm, what="the KEK" if plan.role == "kek" else "key")
    if plan.via == "tr34":
        check_certs_dir(plan.certs_dir)
    journal = Journal.create(journal_dir, plan.kind, parameters=plan.to_record())
    ceremony = _RsaImport(apc, plan, journal, progress=progress, tags=tags or {})
    try:
        result = ceremony.run(key)
    except ApckxError as exc:
        journal.finish(FAILED, error=str(exc))
        error_type: type[ApckxError] = CeremonyError
        if isinstance(exc, KcvMismatchError | ConfigError | InputError):
            error_type = type(exc)
        failure = error_type(describe_failure(journal, exc))
        failure.ceremony_id = journal.ceremony_id  # type: ignore[attr-defined]
        raise failure from None
    except Exception as exc:
        journal.finish(FAILED, error=type(exc).__name__)
        raise CeremonyError(describe_failure(journal, exc)) from None
    journal.finish(COMPLETE, outputs=result.to_record())
    return result, journal


class _RsaImport:
    def __init__(
        self,
        apc: ApcService,
        plan: RsaImportPlan,
        journal: Journal,
        *,
        progress: Callable[[str], None] | None,
        tags: dict[str, str],
    ) -> None:
        self.apc = apc
        self.plan = plan
        self.journal = journal
        self.progress = progress or (lambda _msg: None)
        self.tags = {**tags, CEREMONY_TAG: journal.ceremony_id, ROLE_TAG: plan.role}
        self.session = RsaSession(
            apc,
            journal,
            root_alias=plan.root_alias,
            trust_apc_root=plan.trust_apc_root,
            progress=self.progress,
        )

    def _alias_target(self) -> str | None:
        """The key the alias names now (None: free); refused unless ``replace``."""
        existing = self.apc.find_key(self.plan.alias)
        if existing is None:
            return None
        arn = str(existing["KeyArn"])
        if not self.plan.replace:
            raise InputError(
                f"{self.plan.alias} already points at {arn}: pass --replace to move it to the "
                "new key, or choose another --alias"
            )
        return arn

    def run(self, key: bytes) -> RsaImportResult:
        from apckx.crypto.kcv import compute_kcv

        plan = self.plan
        previous = self._alias_target()
        local_kcv = compute_kcv(key, plan.kcv_algorithm, key_algorithm=plan.key_algorithm)
        if plan.via == "tr34":
            result = self._import_tr34(key, local_kcv)
        else:
            result = self._import_rsa(key, local_kcv)
        self._check_kcv(result)
        self.session.set_alias(plan.alias, result.key_arn, plan.role, previous=previous)
        result.replaced_key_arn = previous
        self.progress(f"{plan.alias} -> {result.key_arn}")
        return result

    def _check_kcv(self, result: RsaImportResult) -> None:
        from apckx.crypto.kcv import kcv_matches

        if not kcv_matches(result.kcv, result.local_kcv):
            self.journal.note_step(
                "verify_kcv", status="failed", apc_kcv=result.kcv, local_kcv=result.local_kcv
            )
            raise KcvMismatchError(
                f"APC's KCV {result.kcv or '(none)'} for {result.key_arn} does not match the "
                f"local KCV {result.local_kcv}; the alias {self.plan.alias} was not pointed at it"
            )
        self.journal.note_step("verify_kcv", apc_kcv=result.kcv, local_kcv=result.local_kcv)

    def _record_key(self, key: dict[str, Any]) -> str:
        arn = str(key["KeyArn"])
        self.journal.record_resource(Resource(kind="key", role=self.plan.role, arn=arn))
        self.progress(f"imported {arn}")
        return arn

    def _import_tr34(self, key: bytes, local_kcv: str) -> RsaImportResult:
        from apckx.crypto.certs import certificate_to_apc, fingerprint_sha256
        from apckx.crypto.tr34 import build_key_block, key_block_to_hex

        plan = self.plan
        if plan.header is None:
            raise InputError("a TR-34 plan needs its header")
        creds = load_or_create_rsa_credentials(plan.certs_dir, "signing")
        root_arn, root_reused = self.session.find_or_import_root(creds.ca.cert, fresh=creds.created)
        token, krd = self.session.get_import_parameters(
            "TR34_KEY_BLOCK", plan.wrapping_key_algorithm
        )
        nonce = os.urandom(NONCE_BYTES) if plan.passes == 2 else None
        block = build_key_block(
            key,
            plan.header,
            signing_key=creds.leaf.key,
            signing_certificate=creds.leaf.cert,
            wrapping_certificate=krd.leaf,
            nonce=nonce,
            signing_time=None if nonce else dt.datetime.now(dt.UTC),
        )
        nonce_hex = nonce.hex().upper() if nonce is not None else None
        self.journal.note_step("build_tr34_block", passes=plan.passes, random_nonce=nonce_hex,
                               header=plan.header, local_kcv=local_kcv)  # fmt: skip
        member: dict[str, Any] = {
            "CertificateAuthorityPublicKeyIdentifier": root_arn,
            "SigningKeyCertificate": certificate_to_apc(creds.leaf.cert),
            "ImportToken": token,
            "WrappedKeyBlock": key_block_to_hex(block),
            "KeyBlockFormat": KEY_BLOCK_FORMAT,
        }
        if nonce_hex is not None:
            member["RandomNonce"] = nonce_hex
        imported = self.apc.import_key(
            key_material={"Tr34KeyBlock": member},
            key_check_value_algorithm=plan.kcv_algorithm,
            tags=self.tags,
        )
        arn = self._record_key(imported)
        return self._result(
            imported,
            arn,
            local_kcv,
            krd,
            header=plan.header,
            passes=plan.passes,
            random_nonce=nonce_hex,
            root_key_arn=root_arn,
            root_reused=root_reused,
            sender_ca_fingerprint=fingerprint_sha256(creds.ca.cert),
            signing_fingerprint=fingerprint_sha256(creds.leaf.cert),
        )

    def _import_rsa(self, key: bytes, local_kcv: str) -> RsaImportResult:
        from apckx.crypto.attributes import modes_from_code
        from apckx.crypto.rsa_wrap import cryptogram_to_hex, wrap_key

        plan = self.plan
        token, krd = self.session.get_import_parameters(
            "KEY_CRYPTOGRAM", plan.wrapping_key_algorithm
        )
        from cryptography.hazmat.primitives.asymmetric import rsa

        public_key = krd.leaf.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise InputError("APC's wrapping certificate holds no RSA key")
        cryptogram = wrap_key(key, public_key, plan.wrapping_spec, key_algorithm=plan.key_algorithm)
        self.journal.note_step("wrap_key", wrapping_spec=plan.wrapping_spec, local_kcv=local_kcv)
        imported = self.apc.import_key(
            key_material={
                "KeyCryptogram": {
                    "KeyAttributes": {
                        "KeyAlgorithm": plan.key_algorithm,
                        "KeyClass": "SYMMETRIC_KEY",
                        "KeyModesOfUse": modes_from_code(plan.mode_of_use),
                        "KeyUsage": plan.key_usage,
                    },
                    "Exportable": plan.exportability != "N",
                    "WrappedKeyCryptogram": cryptogram_to_hex(cryptogram),
                    "ImportToken": token,
                    "WrappingSpec": plan.wrapping_spec,
                }
            },
            key_check_value_algorithm=plan.kcv_algorithm,
            tags=self.tags,
        )
        arn = self._record_key(imported)
        return self._result(imported, arn, local_kcv, krd, wrapping_spec=plan.wrapping_spec)

    def _result(
        self, imported: dict[str, Any], arn: str, local_kcv: str, krd: Any, **details: Any
    ) -> RsaImportResult:
        plan = self.plan
        attributes = imported.get("KeyAttributes", {})
        return RsaImportResult(
            ceremony_id=self.journal.ceremony_id,
            via=plan.via,
            key_arn=arn,
            alias=plan.alias,
            kcv=str(imported.get("KeyCheckValue", "")).upper(),
            local_kcv=local_kcv,
            kcv_algorithm=str(imported.get("KeyCheckValueAlgorithm") or plan.kcv_algorithm),
            key_usage=str(attributes.get("KeyUsage", plan.key_usage)),
            key_algorithm=str(attributes.get("KeyAlgorithm", plan.key_algorithm)),
            exportable=bool(imported.get("Exportable")),
            wrapping_key_algorithm=plan.wrapping_key_algorithm,
            apc_root_fingerprint=krd.root_fingerprint,
            apc_wrapping_fingerprint=krd.leaf_fingerprint,
            **details,
        )
