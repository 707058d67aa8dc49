"""The KEK import ceremony: ECDH + TR-31 into AWS Payment Cryptography, as a custodian runs it.

Recipe (apc-control-plane.md section 7; AWS sample ``import_raw_kek.py``):

1. APC holds an ECC key-agreement pair (K3, DeriveKey, DeriveKeyUsage K1): the *receiver*.
2. We hold a sender root CA and a separate ECDH leaf signed by it; the CA is imported into APC
   as an S0 ``RootCertificatePublicKey``: the *root*.
3. Both sides derive the same KBPK: ECDH(Z) + NIST SP 800-56A Concatenation KDF (or X9.63)
   over a fresh SharedInformation; we wrap the KEK in a TR-31 block under it and ImportKey
   ``DiffieHellmanTr31KeyBlock``; APC's KCV must equal ours before the alias points at the key.

Round trips: independent steps run at once (receiver lookup/CreateKey, local credentials and
the root lookup/import), aliases are set with one CreateAlias carrying the KeyArn (UpdateAlias
only on ConflictException), so a fresh ceremony is CreateKey -> GetPublicKeyCertificate ->
ImportKey -> CreateAlias: four calls one after another.

Reuse: the receiver alias's key is reused when it is an enabled K3 pair on the right curve with
DeriveKeyUsage K1; the root alias's key is reused when its ``apckx:ca-sha256`` tag (set at
import) equals our CA's fingerprint, a tag being cheaper than fetching and parsing a
certificate. On the first run from a certs dir (new sender credentials) nothing in APC can
match the new CA, and apckx pairs the new sender identity with a new receiver key without
looking anything up; later runs look up and reuse.

No secret leaves this module: the KEK, the derived KBPK and private keys stay in local
variables; the journal and the result carry ARNs, KCVs, fingerprints and names only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apckx.ceremonies import defaults
from apckx.ceremonies.ecdh_session import (
    ROLE_TAG,
    STRONGEST_DERIVE_KEY_ALGORITHM,
    EcdhSession,
    ReceiverKey,
    SenderRoot,
)
from apckx.ceremonies.journal import (
    COMPLETE,
    FAILED,
    ROLLED_BACK,
    Journal,
    LocalWriteError,
    Resource,
)
from apckx.ceremonies.party_hints import PartyHints
from apckx.errors import (
    ApckxError,
    CeremonyError,
    ConfigError,
    InputError,
    KcvMismatchError,
    ServiceError,
)
from apckx.service.apc import CEREMONY_TAG, ApcService, Key

_log = logging.getLogger("apckx.ceremony")

# Defined in the light ceremonies/defaults.py, so that --help can load them alone.
RECEIVER_ALIAS = defaults.RECEIVER_ALIAS
ROOT_ALIAS = defaults.ROOT_ALIAS
KEK_ALIAS = defaults.KEK_ALIAS
DEFAULT_HEADER = defaults.DEFAULT_HEADER

KEK_ALGORITHMS = defaults.KEK_ALGORITHMS
KEK_USAGES = defaults.KEK_USAGES
CURVE_CHOICES = defaults.CURVE_CHOICES
KDF_CHOICES = defaults.KDF_CHOICES
KDF_HASH_CHOICES = defaults.KDF_HASH_CHOICES
DERIVE_KEY_ALGORITHMS = defaults.DERIVE_KEY_ALGORITHMS

_ALIAS_RE_TEXT = r"alias/[a-zA-Z0-9/_-]+"
FRESH_SHARED = "fresh random"

# plan field (as the journal records it) -> the flag that sets it
RESUMED_SETTINGS = {
    "key_algorithm": "--key-algorithm",
    "header": "--header",
    "curve": "--curve",
    "kdf": "--kdf",
    "kdf_hash": "--kdf-hash",
    "derive_key_algorithm": "--derive-key-algorithm",
    "shared_info": "--shared-info",
    "receiver_alias": "--receiver-alias",
    "root_alias": "--root-alias",
    "kek_alias": "--alias",
    "certs_dir": "--certs-dir",
    "new_receiver_key": "--new-receiver-key",
    "trust_apc_root": "--trust-apc-root",
}
# plan_kek_import keyword -> the flag (the header's parts have no journal field of their own)
_HEADER_PARTS = {"key_usage": "--key-usage", "mode_of_use": "--mode-of-use",
                 "exportability": "--exportability"}  # fmt: skip


@dataclass(frozen=True)
class KekImportPlan:
    """Everything the ceremony needs except the KEK itself. Validated by :func:`plan_kek_import`."""

    key_algorithm: str
    header: str
    curve: str
    kdf: str
    kdf_hash: str
    derive_key_algorithm: str
    shared_info: bytes | None  # None: a fresh random value per ceremony
    receiver_alias: str
    root_alias: str
    kek_alias: str
    certs_dir: Path
    new_receiver_key: bool = False
    trust_apc_root: str | None = None  # SHA-256 fingerprint (upper hex, no colons)

    @property
    def kcv_algorithm(self) -> str:
        from apckx.crypto.attributes import default_kcv_algorithm

        return default_kcv_algorithm(self.key_algorithm)

    def to_record(self) -> dict[str, Any]:
        """Parameters for the journal and the audit record (no secrets here by construction)."""
        return {
            "key_algorithm": self.key_algorithm,
            "header": self.header,
            "curve": self.curve,
            "kdf": self.kdf,
            "kdf_hash": self.kdf_hash,
            "derive_key_algorithm": self.derive_key_algorithm,
            # SharedInformation is public (APC receives it in the clear): a fixed one is
            # kept, so --resume can restore it.
            "shared_info": (
                self.shared_info.hex().upper() if self.shared_info is not None else FRESH_SHARED
            ),
            "receiver_alias": self.receiver_alias,
            "root_alias": self.root_alias,
            "kek_alias": self.kek_alias,
            "certs_dir": str(self.certs_dir),
            "new_receiver_key": self.new_receiver_key,
            "trust_apc_root": self.trust_apc_root,
        }


@dataclass
class KekImportResult:
    ceremony_id: str
    key_arn: str
    key_alias: str
    key_check_value: str  # APC's
    local_key_check_value: str
    key_check_value_algorithm: str
    key_algorithm: str
    header: str
    receiver_key_arn: str
    receiver_alias: str
    receiver_reused: bool
    root_key_arn: str
    root_alias: str
    root_reused: bool
    sender_credentials_created: bool
    sender_ca_fingerprint: str
    sender_leaf_fingerprint: str
    apc_root_fingerprint: str
    apc_leaf_fingerprint: str
    shared_info_hex: str
    curve: str
    kdf: str
    kdf_hash: str
    derive_key_algorithm: str
    api_calls: int = 0
    sequential_calls: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)
    # the alias named another key before (--replace): that key and its KCV
    replaced_key_arn: str | None = None
    replaced_key_check_value: str | None = None
    # the alias already named a key with this KEK's KCV: nothing was imported
    unchanged: bool = False

    def to_record(self) -> dict[str, Any]:
        return dict(self.__dict__)


# -- validation (before any API call) -------------------------------------------------------
def check_alias_name(alias: str, *, flag: str) -> str:
    import re

    if not (7 <= len(alias) <= 256) or not re.fullmatch(_ALIAS_RE_TEXT, alias):
        raise InputError(
            f"{flag} must look like alias/NAME (letters, digits, / _ -; 7 to 256 characters)"
        )
    return alias


def normalize_fingerprint(text: str, *, flag: str = "--trust-apc-root") -> str:
    import re

    cleaned = re.sub(r"[\s:]", "", text).upper()
    if not re.fullmatch(r"[0-9A-F]{64}", cleaned):
        raise InputError(
            f"{flag} must be a SHA-256 fingerprint: 64 hex characters (colons allowed)"
        )
    return cleaned


def check_kdf_options(kdf: str, kdf_hash: str) -> str:
    """Check ``--kdf`` and ``--kdf-hash``; returns the hash as APC names it (``SHA_256``)."""
    if kdf not in KDF_CHOICES:
        raise InputError(f"--kdf must be one of {', '.join(KDF_CHOICES)}")
    kdf_hash = kdf_hash.upper().replace("-", "_")
    if kdf_hash not in KDF_HASH_CHOICES:
        raise InputError(f"--kdf-hash must be one of {', '.join(KDF_HASH_CHOICES)}")
    return kdf_hash


def check_derivation_options(
    *, curve: str, kdf: str, kdf_hash: str, derive_key_algorithm: str | None
) -> tuple[str, str, str]:
    """``(curve, kdf_hash, derive_key_algorithm)`` normalized, in that order of checks.

    The derived key defaults to the strongest the curve allows (never weaker than what it
    wraps; :func:`apckx.crypto.ecdh.check_ecdh_strength` checks that afterwards).
    """
    from apckx.crypto.ecdh import normalize_curve

    curve = normalize_curve(curve)
    kdf_hash = check_kdf_options(kdf, kdf_hash)
    if derive_key_algorithm is None:
        derive_key_algorithm = STRONGEST_DERIVE_KEY_ALGORITHM[curve]
    if derive_key_algorithm not in DERIVE_KEY_ALGORITHMS:
        raise InputError(
            f"--derive-key-algorithm must be one of {', '.join(DERIVE_KEY_ALGORITHMS)}"
        )
    return curve, kdf_hash, derive_key_algorithm


def plan_kek_import(
    *,
    key_algorithm: str = "AES_256",
    header: str | None = None,
    key_usage: str = "K0",
    mode_of_use: str = "B",
    exportability: str = "E",
    curve: str = "P521",
    kdf: str = "NIST_SP800",
    kdf_hash: str = "SHA_256",
    derive_key_algorithm: str | None = None,
    shared_info_hex: str | None = None,
    receiver_alias: str = RECEIVER_ALIAS,
    root_alias: str = ROOT_ALIAS,
    kek_alias: str = KEK_ALIAS,
    certs_dir: Path = Path("certs"),
    new_receiver_key: bool = False,
    trust_apc_root: str | None = None,
) -> KekImportPlan:
    """Check every choice against APC's rules and return the plan; InputError if any fails."""
    from apckx.crypto.attributes import check_wrapping_strength, normalize_key_usage
    from apckx.crypto.ecdh import check_ecdh_strength, parse_shared_info_hex
    from apckx.crypto.tr31 import build_header, parse_header

    if key_algorithm not in KEK_ALGORITHMS:
        raise InputError(f"--key-algorithm must be one of {', '.join(KEK_ALGORITHMS)}")
    curve, kdf_hash, derive_key_algorithm = check_derivation_options(
        curve=curve, kdf=kdf, kdf_hash=kdf_hash, derive_key_algorithm=derive_key_algorithm
    )
    check_ecdh_strength(curve, derive_key_algorithm, key_algorithm)
    check_wrapping_strength(derive_key_algorithm, key_algorithm)
    if header is not None:
        header_text = header.strip()
        parsed = parse_header(header_text)
        _check_header_fits(parsed, key_algorithm, derive_key_algorithm)
    else:
        usage = normalize_key_usage(key_usage)
        if usage not in ("TR31_K0_KEY_ENCRYPTION_KEY", "TR31_K1_KEY_BLOCK_PROTECTION_KEY"):
            raise InputError("--key-usage must be K0 or K1 for a KEK")
        if exportability not in ("E", "N", "S"):
            raise InputError("--exportability must be E, N or S")
        header_text = build_header(
            key_usage=usage,
            key_algorithm=key_algorithm,
            kbpk_algorithm=derive_key_algorithm,
            modes_of_use=mode_of_use,
            exportability=exportability,
        )
        _check_header_fits(parse_header(header_text), key_algorithm, derive_key_algorithm)
    shared_info = None if shared_info_hex is None else parse_shared_info_hex(shared_info_hex)
    aliases = [
        check_alias_name(receiver_alias, flag="--receiver-alias"),
        check_alias_name(root_alias, flag="--root-alias"),
        check_alias_name(kek_alias, flag="--alias"),
    ]
    if len(set(aliases)) != 3:
        raise InputError("--receiver-alias, --root-alias and --alias must be three different names")
    return KekImportPlan(
        key_algorithm=key_algorithm,
        header=header_text,
        curve=curve,
        kdf=kdf,
        kdf_hash=kdf_hash,
        derive_key_algorithm=derive_key_algorithm,
        shared_info=shared_info,
        receiver_alias=receiver_alias,
        root_alias=root_alias,
        kek_alias=kek_alias,
        certs_dir=Path(certs_dir),
        new_receiver_key=new_receiver_key,
        trust_apc_root=_pinned_root(trust_apc_root),
    )


def plan_resumed_import(
    parameters: dict[str, Any], given: dict[str, Any], *, ceremony_id: str
) -> KekImportPlan:
    """The plan of a ceremony being resumed: every setting from its journal's
    ``parameters``; ``given`` (plan_kek_import keywords the user typed, None for absent) may
    repeat a setting but never contradict it (InputError showing both values)."""
    kwargs: dict[str, Any] = {}
    for name in RESUMED_SETTINGS:
        if name not in parameters:
            continue
        value = parameters[name]
        if name == "shared_info":
            if value == "fixed":  # a journal from before fixed values were kept
                if given.get("shared_info_hex") is None:
                    raise InputError(
                        f"ceremony {ceremony_id} used a fixed SharedInformation its journal does "
                        "not hold: give the same --shared-info again"
                    )
                continue
            kwargs["shared_info_hex"] = None if value == FRESH_SHARED else value
        elif name == "certs_dir":
            kwargs[name] = Path(str(value))
        else:
            kwargs[name] = value
    try:
        journaled = plan_kek_import(**kwargs)
    except InputError as exc:
        raise InputError(f"the journal of ceremony {ceremony_id} does not plan: {exc}") from None
    typed = {k: v for k, v in given.items() if v is not None and v is not False}
    if not typed:
        return journaled
    merged_kwargs = {**kwargs, **typed}
    if any(part in typed for part in _HEADER_PARTS) and "header" not in typed:
        merged_kwargs.pop("header", None)  # rebuilt from the typed parts, then compared
    merged = plan_kek_import(**merged_kwargs)
    mine, theirs = journaled.to_record(), merged.to_record()
    for name, flag in RESUMED_SETTINGS.items():
        ours, typed_value = mine.get(name), theirs.get(name)
        if name == "certs_dir":
            same = Path(str(ours)).resolve() == Path(str(typed_value)).resolve()
        else:
            same = ours == typed_value
        if not same:
            if name == "header" and "header" not in typed:
                flag = "/".join(f for k, f in _HEADER_PARTS.items() if k in typed)
            raise InputError(
                f"{flag} gives {name.replace('_', ' ')} {typed_value}, but ceremony "
                f"{ceremony_id} ran with {ours}: --resume takes every setting from the "
                "journal; drop the flag (or start a new ceremony)"
            )
    return journaled


def check_certs_dir(certs_dir: Path) -> None:
    """Before any call: ``--certs-dir`` is a directory, or one that can be created (its
    nearest existing ancestor is a writable directory). A typo must not cost a key."""
    import os

    if os.path.lexists(certs_dir):
        if not certs_dir.is_dir():
            raise ConfigError(f"--certs-dir {certs_dir} is not a directory")
        names = ("sender_ca_key.pem", "sender_ca_cert.pem", "sender_key.pem", "sender_cert.pem")
        if not any((certs_dir / n).exists() for n in names) and not os.access(
            certs_dir, os.W_OK | os.X_OK
        ):
            raise ConfigError(f"--certs-dir {certs_dir}: no write permission to create the "
                              "sender credentials in it")  # fmt: skip
        return
    ancestor = certs_dir.parent
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"--certs-dir {certs_dir}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"--certs-dir {certs_dir}: cannot create it, no write permission "
                          f"in {ancestor}")  # fmt: skip


def _pinned_root(flag: str | None) -> str | None:
    """``--trust-apc-root``, else ``APCKX_TRUST_APC_ROOT`` (checked here, before any call)."""
    from apckx.ceremonies.ecdh_session import configured_trust_apc_root

    return configured_trust_apc_root() if flag is None else normalize_fingerprint(flag)


def _check_header_fits(parsed: Any, key_algorithm: str, derive_key_algorithm: str) -> None:
    from apckx.crypto.attributes import normalize_key_usage

    family = "T" if key_algorithm.startswith("TDES") else "A"
    if parsed.algorithm != family:
        raise InputError(
            f"--header algorithm {parsed.algorithm!r} does not match --key-algorithm "
            f"{key_algorithm} (expected {family!r})"
        )
    if normalize_key_usage(parsed.key_usage) not in (
        "TR31_K0_KEY_ENCRYPTION_KEY",
        "TR31_K1_KEY_BLOCK_PROTECTION_KEY",
    ):
        raise InputError(f"--header key usage {parsed.key_usage!r} is not a KEK usage (K0, K1)")
    aes_kbpk = derive_key_algorithm.startswith("AES")
    if aes_kbpk and parsed.version_id != "D":
        raise InputError(
            f"--header version {parsed.version_id!r} cannot be used under an AES wrapping key: "
            "use version D"
        )
    if not aes_kbpk and parsed.version_id not in ("A", "B", "C"):
        raise InputError(
            f"--header version {parsed.version_id!r} needs an AES wrapping key: use version B "
            "under a TDES --derive-key-algorithm"
        )


# -- the ceremony ---------------------------------------------------------------------------
class _AliasAlreadyThereError(Exception):
    """Internal: the KEK alias already names a key with this KEK's KCV."""

    def __init__(self, key: Key, kcv: str) -> None:
        super().__init__("the alias already names this KEK")
        self.key = key
        self.kcv = kcv


class KekImportCeremony:
    """One run. ``run()`` returns the result or raises; the journal is complete either way."""

    def __init__(
        self,
        apc: ApcService,
        plan: KekImportPlan,
        journal: Journal,
        *,
        resume_from: Journal | None = None,
        progress: Callable[[str], None] | None = None,
        credentials: tuple[Any, bool] | None = None,
        role: str = "kek",
        replace: bool | None = None,
    ) -> None:
        """``credentials``: already loaded sender credentials; None to create them.
        ``role``: the imported key's role in the journal and its ``apckx:role`` tag (``kek``;
        ``working`` for a working key imported over ECDH). ``replace``: False refuses to move
        an alias that names another key, True moves it (and says from what); None (the
        default for other roles than ``kek``) does not look."""
        self.credentials = credentials
        self.replace = bool(replace)
        self.check_alias = replace is not None or role == "kek"
        self.role = role
        self.apc = apc
        self.plan = plan
        self.journal = journal
        self.resume_from = resume_from
        self.progress = progress or (lambda _msg: None)
        self.timings: dict[str, float] = {}
        self._tags = {CEREMONY_TAG: journal.ceremony_id}
        self.session = EcdhSession(
            apc,
            journal,
            curve=plan.curve,
            receiver_alias=plan.receiver_alias,
            root_alias=plan.root_alias,
            new_receiver_key=plan.new_receiver_key,
            trust_apc_root=plan.trust_apc_root,
            resume_from=resume_from,
            progress=self.progress,
            hints=self._party_hints(),
        )

    def _party_hints(self) -> PartyHints:
        """What the last ceremony from this certs dir learned of its parties (its second reads
        go out in parallel; a repeat ceremony imports at once)."""
        plan, meta = self.plan, self.apc.client.meta
        scope = [str(meta.endpoint_url), str(meta.region_name), plan.receiver_alias,
                 plan.root_alias, plan.curve]  # fmt: skip
        ca = None
        if self.credentials:  # loaded, so cryptography.x509 is already imported
            from apckx.crypto.certs import fingerprint_sha256

            ca = fingerprint_sha256(self.credentials[0].ca_cert)
        return PartyHints(plan.certs_dir, scope, ca)

    # timing helper
    def _timed(self, name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            self.timings[name] = round((time.perf_counter() - t0) * 1000.0, 1)

    def run(self, kek: bytes) -> KekImportResult:
        first_call = len(self.apc.calls)
        started = time.perf_counter()
        try:
            from apckx.ceremonies.repeat_import import try_repeat_import

            result, kek_alias = try_repeat_import(self, kek) or self._run(kek)
        except _AliasAlreadyThereError as there:
            return self._finish_unchanged(there.key, there.kcv)
        except OSError as exc:
            raise self._local_write_error(exc) from None
        except ApckxError as exc:
            try:
                self.journal.finish(FAILED, error=str(exc))
            except OSError as write_failure:
                raise self._local_write_error(write_failure) from None
            error_type: type[ApckxError] = CeremonyError
            if isinstance(exc, KcvMismatchError | ConfigError | InputError):
                error_type = type(exc)  # keep the exit code (2 for configuration)
            failure = error_type(self._failure_message(exc))
            failure.ceremony_id = self.journal.ceremony_id  # type: ignore[attr-defined]
            raise failure from None
        except Exception as exc:
            try:
                self.journal.finish(FAILED, error=type(exc).__name__)
            except OSError as write_failure:
                raise self._local_write_error(write_failure) from None
            raise CeremonyError(self._failure_message(exc)) from None
        try:
            self.timings["total"] = round((time.perf_counter() - started) * 1000.0, 1)
            calls = self.apc.calls_since(first_call)
            result.api_calls = len(calls)
            result.sequential_calls = longest_call_chain(
                [(c.started, c.started + c.duration_ms / 1000.0) for c in calls]
            )
            result.timings_ms = dict(self.timings)
        except BaseException:
            self.journal.record_resource(kek_alias)
            raise
        # One save: the alias APC just confirmed, the outputs and the final status.
        try:
            self.journal.finish(COMPLETE, outputs=result.to_record(), resources=[kek_alias])
        except OSError as exc:
            raise self._local_write_error(exc, result=result) from None
        self._remember_kek_alias(result)
        return result

    def _remember_kek_alias(self, result: KekImportResult) -> None:
        """Save the party hints, with where the KEK alias points now (the next run's guess)."""
        hints = self.session.hints
        if hints is None:
            return
        if self.check_alias:
            hints.remember_alias(
                self.plan.kek_alias,
                key_arn=result.key_arn,
                kcv=result.key_check_value,
                key_algorithm=result.key_algorithm,
            )
        hints.save()

    def _local_write_error(
        self, exc: OSError, *, result: KekImportResult | None = None
    ) -> LocalWriteError:
        """APC changed, the journal could not follow: one line naming what APC now holds."""
        reason = exc.strerror or type(exc).__name__
        if result is not None:
            what = (
                f"APC imported the KEK {result.key_arn} (KCV {result.key_check_value}) and "
                f"pointed {result.key_alias} at it (receiver {result.receiver_key_arn}, root "
                f"{result.root_key_arn})"
            )
        else:
            arns = [r.alias or r.arn for r in self.journal.resources if r.created]
            what = "APC " + (
                f"created {', '.join(str(a) for a in arns)}" if arns else "changed nothing yet"
            )
        error = LocalWriteError(
            f"{what}, but writing the journal {self.journal.path} failed ({reason}); it may "
            f"still say running: keep this line. Tagged {CEREMONY_TAG}="
            f"{self.journal.ceremony_id}, so apckx cleanup --ceremony "
            f"{self.journal.ceremony_id} still finds it"
        )
        error.ceremony_id = self.journal.ceremony_id  # type: ignore[attr-defined]
        return error

    def _finish_unchanged(self, key: Key, kcv: str) -> KekImportResult:
        """The alias already names a key with this KEK's KCV: nothing imported."""
        plan = self.plan
        arn = str(key["KeyArn"])
        result = KekImportResult(
            ceremony_id=self.journal.ceremony_id,
            key_arn=arn,
            key_alias=plan.kek_alias,
            key_check_value=str(key.get("KeyCheckValue", "")),
            local_key_check_value=kcv,
            key_check_value_algorithm=str(key.get("KeyCheckValueAlgorithm", "")),
            key_algorithm=str(key.get("KeyAttributes", {}).get("KeyAlgorithm", "")),
            header=plan.header,
            receiver_key_arn="",
            receiver_alias=plan.receiver_alias,
            receiver_reused=True,
            root_key_arn="",
            root_alias=plan.root_alias,
            root_reused=True,
            sender_credentials_created=False,
            sender_ca_fingerprint="",
            sender_leaf_fingerprint="",
            apc_root_fingerprint="",
            apc_leaf_fingerprint="",
            shared_info_hex="",
            curve=plan.curve,
            kdf=plan.kdf,
            kdf_hash=plan.kdf_hash,
            derive_key_algorithm=plan.derive_key_algorithm,
            unchanged=True,
        )
        try:
            self.journal.finish(COMPLETE, outputs=result.to_record())
        except OSError as exc:
            raise self._local_write_error(exc) from None
        self._remember_kek_alias(result)
        return result

    def look_at_kek_alias(self, kek: bytes) -> tuple[str, str] | None:
        """Where the KEK alias points now: None when it names no key; ``(arn, kcv)`` of the
        key it names when ``--replace`` allows moving it. Raises :class:`_AliasAlreadyThere`
        when that key has this KEK's KCV, InputError when it is another key and moving it
        was not asked for."""
        from apckx.crypto.kcv import compute_kcv, kcv_matches

        if not self.check_alias:
            return None
        key = self.apc.find_key(self.plan.kek_alias)
        if key is None:
            return None
        arn = str(key["KeyArn"])
        apc_kcv = str(key.get("KeyCheckValue", ""))
        algorithm = str(key.get("KeyAttributes", {}).get("KeyAlgorithm", ""))
        kcv_algorithm = str(key.get("KeyCheckValueAlgorithm", "")) or self.plan.kcv_algorithm
        if algorithm == self.plan.key_algorithm and key.get("KeyState") == "CREATE_COMPLETE":
            local = compute_kcv(kek, kcv_algorithm, key_algorithm=algorithm)
            if apc_kcv and kcv_matches(apc_kcv, local):
                raise _AliasAlreadyThereError(key, local)
        if not self.replace:
            state = str(key.get("KeyState", ""))
            shown = "" if state == "CREATE_COMPLETE" else f", {state}"
            raise InputError(
                f"{self.plan.kek_alias} already points at {arn} (KCV {apc_kcv or 'none'}"
                f"{shown}), another key: pass --replace to move it to the new KEK, or choose "
                "another --alias"
            )
        return arn, apc_kcv

    def _failure_message(self, exc: BaseException) -> str:
        cid = self.journal.ceremony_id
        detail = str(exc) if isinstance(exc, ApckxError) else type(exc).__name__
        created = [r for r in self.journal.resources if r.created]
        hints = []
        if self.journal.kind == "kek":  # only import-kek resumes
            hints.append(f"resume with: apckx import-kek --resume {cid} (and the same key input)")
        if created:
            hints.append(f"roll back with: apckx cleanup --ceremony {cid}")
        hint = "; or ".join(hints)
        return f"ceremony {cid} failed: {detail}; journal {self.journal.path}" + (
            f"; {hint}" if hint else ""
        )

    def _run(self, kek: bytes) -> tuple[KekImportResult, Resource]:
        """The ceremony up to the KEK alias; returns the result and that alias's resource,
        not yet journaled.

        On a first run cryptography.x509 (tens of ms to import) is imported by the thread
        that creates the sender credentials, after the first call has gone out."""
        plan = self.plan
        session = self.session
        fresh = self.credentials is None
        with ThreadPoolExecutor(max_workers=5, thread_name_prefix="apckx") as pool:
            # Where the KEK alias points decides whether the KEK is imported: a read in
            # flight with the others, awaited before ImportKey. (A first run's receiver and
            # root belong to the new sender identity, reused by the next run whatever this
            # one decides, so they are not held back for it; a forced new receiver is.)
            def check_alias() -> tuple[str, str] | None:
                return self.look_at_kek_alias(kek)

            alias_future: Future[tuple[str, str] | None]
            if plan.new_receiver_key and not fresh and self.resume_from is None:
                alias_future = pool.submit(self._timed, "kek_alias_check", check_alias)

                def receiver_step() -> ReceiverKey:
                    alias_future.result()
                    return session.find_or_create_receiver(fresh, record=False)

                receiver_future = pool.submit(self._timed, "receiver", receiver_step)
            else:
                # The first call goes out first: local work started before it would hold
                # the GIL while its request is being built.
                receiver_future = pool.submit(
                    self._timed,
                    "receiver",
                    lambda: session.find_or_create_receiver(fresh, record=False),
                )
                alias_future = pool.submit(self._timed, "kek_alias_check", check_alias)
            creds_future: Future[Any]
            if self.credentials is not None:
                creds_future = Future()
                creds_future.set_result(self.credentials)
            else:  # new sender credentials, generated while APC creates the receiver key

                def create_credentials() -> Any:
                    from apckx.keystore import load_or_create_sender_credentials

                    return load_or_create_sender_credentials(plan.certs_dir, plan.curve)

                creds_future = pool.submit(self._timed, "local_credentials", create_credentials)
            root_future = pool.submit(
                self._timed, "root", lambda: session.find_or_import_root(creds_future.result, fresh)
            )
            # What the import needs that does not depend on APC's answers (the KDF and KCV
            # code, the local KCV, our leaf in APC's encoding) is ready before the
            # certificate comes back, so ImportKey follows it at once.
            prepared = pool.submit(self.prepare_import, kek, creds_future)
            alias_futures: list[Future[Any]] = []
            receiver_saved: Future[None] | None = None
            try:
                receiver = receiver_future.result()
                # The receiver is journaled while APC's certificate is fetched (a read);
                # its alias and the KEK import wait for that save to be on disk.
                receiver_saved = pool.submit(
                    self.journal.record_resource, session.receiver_resource(receiver)
                )
                if not receiver.reused:
                    saved = receiver_saved

                    def set_receiver_alias() -> Resource:
                        saved.result()  # the key is on disk before an alias names it
                        return session.set_alias(plan.receiver_alias, receiver.arn, "receiver")

                    alias_futures.append(pool.submit(set_receiver_alias))
                apc_leaf, apc_root = self._timed(
                    "receiver_certificate", lambda: session.fetch_receiver_certificate(receiver.arn)
                )
                receiver_saved.result()
                creds, creds_created = creds_future.result()
                root = root_future.result()
                if not root.reused:
                    alias_futures.append(
                        pool.submit(session.set_alias, plan.root_alias, root.arn, "root")
                    )
                replaced = alias_future.result()
                ready = prepared.result()

                def import_kek() -> tuple[Key, str]:
                    key, shared = self.send_import(kek, creds, apc_leaf, receiver, root, ready)
                    self.journal.record_resource(self.kek_resource(key))
                    self.verify_kcv(key, ready.local_kcv)
                    return key, shared

                key, shared_info_hex = self._timed("import_kek", import_kek)
                local_kcv = ready.local_kcv
            finally:
                # Let every started step finish (and journal itself) before reporting.
                pending = [alias_future, creds_future, receiver_future, root_future, prepared,
                           *alias_futures]  # fmt: skip
                for future in [*pending, *([receiver_saved] if receiver_saved else [])]:
                    future.exception()
            for future in alias_futures:
                future.result()
        result = self.build_result(
            key, local_kcv=local_kcv, shared_info_hex=shared_info_hex, receiver=receiver,
            root=root, credentials=(creds, creds_created), apc_leaf=apc_leaf, apc_root=apc_root,
            replaced=replaced,
        )  # fmt: skip
        # After a first ceremony the KEK alias usually exists: UpdateAlias first then.
        return result, self.set_kek_alias(str(key["KeyArn"]), replaced)

    def build_result(
        self,
        key: Key,
        *,
        local_kcv: str,
        shared_info_hex: str,
        receiver: ReceiverKey,
        root: SenderRoot,
        credentials: tuple[Any, bool],
        apc_leaf: Any,
        apc_root: Any,
        replaced: tuple[str, str] | None,
    ) -> KekImportResult:
        """The result of an import APC confirmed (its key, KCV checked) with these parties."""
        from apckx.crypto.certs import fingerprint_sha256  # imported by now (the import)

        plan = self.plan
        creds, creds_created = credentials
        key_arn = str(key["KeyArn"])
        return KekImportResult(
            ceremony_id=self.journal.ceremony_id,
            key_arn=key_arn,
            key_alias=plan.kek_alias,
            key_check_value=str(key.get("KeyCheckValue", "")),
            local_key_check_value=local_kcv,
            key_check_value_algorithm=str(key.get("KeyCheckValueAlgorithm", plan.kcv_algorithm)),
            key_algorithm=plan.key_algorithm,
            header=plan.header,
            receiver_key_arn=receiver.arn,
            receiver_alias=plan.receiver_alias,
            receiver_reused=receiver.reused,
            root_key_arn=root.arn,
            root_alias=plan.root_alias,
            root_reused=root.reused,
            sender_credentials_created=creds_created,
            sender_ca_fingerprint=fingerprint_sha256(creds.ca_cert),
            sender_leaf_fingerprint=fingerprint_sha256(creds.leaf_cert),
            apc_root_fingerprint=fingerprint_sha256(apc_root),
            apc_leaf_fingerprint=fingerprint_sha256(apc_leaf),
            shared_info_hex=shared_info_hex,
            curve=plan.curve,
            kdf=plan.kdf,
            kdf_hash=plan.kdf_hash,
            derive_key_algorithm=plan.derive_key_algorithm,
            replaced_key_arn=replaced[0] if replaced else None,
            replaced_key_check_value=replaced[1] if replaced else None,
        )

    def set_kek_alias(self, key_arn: str, replaced: tuple[str, str] | None) -> Resource:
        """Point the KEK alias at the imported key; the alias resource, not yet journaled
        (:meth:`run` saves it with the final status). Nothing runs between this call and
        that save."""
        plan = self.plan
        fresh = self.credentials is None
        kek_alias: Resource = self._timed(
            "kek_alias",
            lambda: self.session.set_alias(
                plan.kek_alias,
                key_arn,
                self.role,
                # the alias check knows; without it, a later run's alias usually exists
                probably_exists=replaced is not None or (not self.check_alias and not fresh),
                record=False,
            ),
        )
        if replaced is not None:
            kek_alias.previous = replaced[0]  # cleanup points it back there
        return kek_alias

    # -- the import ----------------------------------------------------------------------
    def prepare_import(self, kek: bytes, creds_future: Future[Any]) -> _PreparedImport:
        """The import's local work that needs nothing from APC, done while calls are in
        flight: SharedInformation, the local KCV, our ECDH leaf as APC takes it (and the
        KDF code imported)."""
        import psec  # noqa: F401 (imported here, off the critical path: wrap_key_block's)

        import apckx.crypto.kdf  # noqa: F401 (likewise derive_kbpk's)
        from apckx.crypto.attributes import default_kcv_algorithm
        from apckx.crypto.certs import certificate_to_apc
        from apckx.crypto.ecdh import new_shared_info
        from apckx.crypto.kcv import compute_kcv

        plan = self.plan
        shared_info = plan.shared_info if plan.shared_info is not None else new_shared_info()
        kcv_algorithm = default_kcv_algorithm(plan.key_algorithm)
        local_kcv = compute_kcv(kek, kcv_algorithm, key_algorithm=plan.key_algorithm)
        creds, _created = creds_future.result()
        return _PreparedImport(
            shared_info=shared_info,
            kcv_algorithm=kcv_algorithm,
            local_kcv=local_kcv,
            leaf_certificate=certificate_to_apc(creds.leaf_cert),
        )

    def send_import(
        self,
        kek: bytes,
        creds: Any,
        apc_leaf: Any,
        receiver: ReceiverKey,
        root: SenderRoot,
        ready: _PreparedImport,
    ) -> tuple[Key, str]:
        """Derive the KBPK with APC's leaf, wrap the KEK and ImportKey it: (APC's key,
        SharedInformation hex). The caller journals the key (:meth:`kek_resource`) and checks
        its KCV (:meth:`verify_kcv`)."""
        from apckx.crypto.ecdh import derive_kbpk
        from apckx.crypto.tr31 import wrap_key_block

        plan = self.plan
        shared_info = ready.shared_info
        shared_info_hex = shared_info.hex().upper()
        kbpk = derive_kbpk(
            creds.leaf_key,
            apc_leaf.public_key(),
            kdf=plan.kdf,
            hash_algorithm=plan.kdf_hash,
            key_algorithm=plan.derive_key_algorithm,
            shared_info=shared_info,
        )
        key_block = wrap_key_block(kbpk, plan.header, kek)
        del kbpk
        self.journal.note_step(
            "wrap_kek", shared_info_hex=shared_info_hex, local_kcv=ready.local_kcv
        )
        key = self.apc.import_key(
            key_material={
                "DiffieHellmanTr31KeyBlock": {
                    "PrivateKeyIdentifier": receiver.arn,
                    "CertificateAuthorityPublicKeyIdentifier": root.arn,
                    "PublicKeyCertificate": ready.leaf_certificate,
                    "DeriveKeyAlgorithm": plan.derive_key_algorithm,
                    "KeyDerivationFunction": plan.kdf,
                    "KeyDerivationHashAlgorithm": plan.kdf_hash,
                    "DerivationData": {"SharedInformation": shared_info_hex},
                    "WrappedKeyBlock": key_block,
                }
            },
            key_check_value_algorithm=ready.kcv_algorithm,
            tags={**self._tags, ROLE_TAG: self.role},
        )
        return key, shared_info_hex

    def kek_resource(self, key: Key) -> Resource:
        """The journal's entry for the imported key."""
        return Resource(kind="key", role=self.role, arn=str(key["KeyArn"]))

    def verify_kcv(self, key: Key, local_kcv: str) -> None:
        """APC's KCV for the imported key must be ours (KcvMismatchError), journaled."""
        from apckx.crypto.kcv import kcv_matches

        arn = str(key["KeyArn"])
        apc_kcv = str(key.get("KeyCheckValue", ""))
        if not kcv_matches(apc_kcv, local_kcv):
            self.journal.note_step(
                "verify_kcv", status="failed", apc_kcv=apc_kcv, local_kcv=local_kcv
            )
            raise KcvMismatchError(
                f"APC's KCV {apc_kcv or '(none)'} for {arn} does not match the local KCV "
                f"{local_kcv}; the alias {self.plan.kek_alias} was not pointed at it"
            )
        self.journal.note_step("verify_kcv", apc_kcv=apc_kcv, local_kcv=local_kcv)


@dataclass(frozen=True)
class _PreparedImport:
    shared_info: bytes
    kcv_algorithm: str
    local_kcv: str
    leaf_certificate: str  # our ECDH leaf, base64 PEM as APC takes it


def longest_call_chain(intervals: list[tuple[float, float]]) -> int:
    """The most calls made one after another (each starting after the previous ended).

    This is the ceremony's round-trip count: calls in flight together count once.

    >>> longest_call_chain([(0, 1), (0.5, 1.5), (2, 3), (1.2, 1.4)])
    3
    """
    ordered = sorted(intervals)
    chain: list[int] = []
    for i, (start, _end) in enumerate(ordered):
        before = [chain[j] for j in range(i) if ordered[j][1] <= start]
        chain.append(1 + max(before, default=0))
    return max(chain, default=0)


def run_kek_import(
    apc: ApcService,
    kek: bytes,
    plan: KekImportPlan,
    *,
    journal_dir: Path,
    resume_id: str | None = None,
    progress: Callable[[str], None] | None = None,
    kind: str = "kek",
    role: str = "kek",
    replace: bool | None = None,
) -> tuple[KekImportResult, Journal]:
    """Open a journal (or continue a failed one, same id) and run the ceremony.

    ``kind`` names the journal (and the ceremony id's prefix), ``role`` the imported key in the
    journal and in its ``apckx:role`` tag: ``kek``/``kek`` for import-kek, ``key``/``working``
    for a working key over ECDH (``import-key --via ecdh``), as its other imports are named.
    ``replace``: see :class:`KekImportCeremony` (a KEK's alias is never moved silently).
    On resume, ``plan`` must be the journal's (:func:`plan_resumed_import`).
    """
    from apckx.crypto.keys import check_key_material

    check_key_material(kek, plan.key_algorithm, what="the KEK" if role == "kek" else "the key")
    check_certs_dir(plan.certs_dir)
    credentials = load_existing_sender_credentials(plan)
    resume_from: Journal | None = None
    if resume_id:
        journal = Journal.load(journal_dir, resume_id)
        if journal.kind != kind:
            what = "a KEK import" if kind == "kek" else f"a {kind!r} ceremony"
            raise InputError(f"ceremony {resume_id} is not {what}")
        if journal.status == COMPLETE:
            raise InputError(f"ceremony {resume_id} already completed; nothing to resume")
        if journal.status == ROLLED_BACK:
            raise InputError(f"ceremony {resume_id} was rolled back; start a new one")
        _check_same_settings(plan, journal)
        resume_from = snapshot_trusted_parties(apc, journal)  # as it was before this run
        try:
            journal.restart(parameters=plan.to_record())
        except OSError as exc:
            raise ConfigError(f"cannot write the journal {journal.path}: {exc.strerror}") from None
    else:
        journal = Journal.create(journal_dir, kind, parameters=plan.to_record())
    ceremony = KekImportCeremony(
        apc,
        plan,
        journal,
        resume_from=resume_from,
        progress=progress,
        credentials=credentials,
        role=role,
        replace=replace,
    )
    return ceremony.run(kek), journal


def snapshot_trusted_parties(apc: ApcService, journal: Journal) -> Journal:
    """A copy of ``journal`` for resuming, keeping a receiver or root key only when APC's tags
    agree with it: ``apckx:role`` is its role and ``apckx:ceremony`` is this ceremony (a key it
    created) or, for a key it reused, a ceremony id apckx set. Others are dropped, so the
    session looks them up by alias as a new run would. (One ListTagsForResource each.)"""
    from apckx.ceremonies.journal import CEREMONY_ID_RE

    data = journal.to_record()
    parties = [r for r in data.get("resources", [])
               if r.get("kind") == "key" and r.get("role") in ("receiver", "root")
               and r.get("arn")]  # fmt: skip

    def tags_of(arn: str) -> dict[str, str]:
        try:
            return apc.list_tags_for_resource(arn)
        except ServiceError as exc:
            if exc.code in ("ResourceNotFoundException", "AccessDeniedException"):
                return {}
            raise

    arns = [str(r["arn"]) for r in parties]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="apckx") as pool:
        tags = dict(zip(arns, pool.map(tags_of, arns), strict=True))
    dropped: set[str] = set()
    for resource in parties:
        arn = str(resource["arn"])
        ceremony = tags[arn].get(CEREMONY_TAG, "")
        mine = ceremony == journal.ceremony_id
        if tags[arn].get(ROLE_TAG) != resource["role"] or not (
            mine if resource.get("created", True) else CEREMONY_ID_RE.match(ceremony)
        ):
            dropped.add(arn)
    data["resources"] = [r for r in data.get("resources", []) if r.get("arn") not in dropped
                         or r.get("kind") != "key"]  # fmt: skip
    return Journal(journal.path, data)


def _check_same_settings(plan: KekImportPlan, journal: Journal) -> None:
    """A resumed ceremony runs with its journal's settings, never others."""
    recorded, now = journal.parameters, plan.to_record()
    for name, flag in RESUMED_SETTINGS.items():
        if name not in recorded or (name == "shared_info" and recorded[name] == "fixed"):
            continue
        ours, theirs = recorded[name], now.get(name)
        same = (
            Path(str(ours)).resolve() == Path(str(theirs)).resolve()
            if name == "certs_dir"
            else ours == theirs
        )
        if not same:
            raise InputError(
                f"{flag} gives {name.replace('_', ' ')} {theirs}, but ceremony "
                f"{journal.ceremony_id} ran with {ours}: --resume takes every setting from "
                "the journal"
            )


def load_existing_sender_credentials(plan: KekImportPlan) -> tuple[Any, bool] | None:
    """Load and check the sender credentials before any API call, if the certs dir has any.

    None when the directory holds none: they are then created during the ceremony, in
    parallel with CreateKey. A partial directory (e.g. the AWS sample's two files) or one on
    another curve is a ConfigError here, before anything is created in APC.
    """
    names = ("sender_ca_key.pem", "sender_ca_cert.pem", "sender_key.pem", "sender_cert.pem")
    if not any((plan.certs_dir / name).exists() for name in names):
        return None  # keystore (cryptography.x509) is imported off the critical path then
    from apckx.keystore import load_or_create_sender_credentials

    return load_or_create_sender_credentials(plan.certs_dir, plan.curve)
