"""Bring a key out of APC, verified: ExportKey under a KEK or over ECDH, unwrapped locally.

Under a KEK (``Tr31KeyBlock``) the block is unwrapped with the KEK's cleartext (checked against
APC's KCV first). Over ECDH (``DiffieHellmanTr31KeyBlock``) APC is party U: it derives the
wrapping key from its K3 key and our leaf certificate; we derive the same key from our leaf's
private key and APC's certificate (the import-kek receiver and sender root are reused). Either
way the unwrapped key's KCV must equal the one APC reports, and the key can then be written
as XOR components, one 0600 file each, for custodians to load into an HSM.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apckx.ceremonies.import_key import (
    EXPORTABILITY,
    check_key_version,
    normalize_exportability,
    normalize_mode_of_use,
    verify_kek,
)
from apckx.errors import ConfigError, InputError, KcvMismatchError

if TYPE_CHECKING:
    from apckx.ceremonies.ecdh_session import EcdhSession
    from apckx.ceremonies.journal import Journal
    from apckx.crypto.tr31 import KeyBlockHeader
    from apckx.service.apc import ApcService


@dataclass(frozen=True)
class ExportHeaders:
    """Optional KeyBlockHeaders: only more restrictive than the key's own attributes."""

    mode_of_use: str | None = None
    exportability: str | None = None
    key_version: str | None = None
    optional_blocks: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_options(
        cls,
        *,
        mode_of_use: str | None = None,
        exportability: str | None = None,
        key_version: str | None = None,
        optional_blocks: Mapping[str, str] | None = None,
    ) -> ExportHeaders:
        return cls(
            mode_of_use=normalize_mode_of_use(mode_of_use) if mode_of_use else None,
            exportability=normalize_exportability(exportability) if exportability else None,
            key_version=check_key_version(key_version) if key_version else None,
            optional_blocks=tuple((optional_blocks or {}).items()),
        )

    def to_apc(self) -> dict[str, Any] | None:
        """APC's ``KeyBlockHeaders``, or None when nothing is overridden."""
        from apckx.crypto.attributes import modes_from_code

        headers: dict[str, Any] = {}
        if self.mode_of_use:
            headers["KeyModesOfUse"] = modes_from_code(self.mode_of_use)
        if self.exportability:
            headers["KeyExportability"] = EXPORTABILITY[self.exportability]
        if self.key_version:
            headers["KeyVersion"] = self.key_version
        if self.optional_blocks:
            headers["OptionalBlocks"] = dict(self.optional_blocks)
        return headers or None


@dataclass(frozen=True)
class ExportedKey:
    """An exported, unwrapped and verified key. ``key`` is cleartext: never printed."""

    key_arn: str
    key_block: str
    header: KeyBlockHeader
    key_algorithm: str
    kcv: str  # APC's, equal to the local one
    kcv_algorithm: str
    wrapping_key_arn: str
    via: str
    key: bytes = field(repr=False)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return {
            "key_arn": self.key_arn,
            "via": self.via,
            "wrapping_key_arn": self.wrapping_key_arn,
            "key_algorithm": self.key_algorithm,
            "kcv": self.kcv,
            "kcv_algorithm": self.kcv_algorithm,
            "header": self.header.raw,
            **self.extra,
        }


def _verified(
    wrapped: Mapping[str, Any],
    header: KeyBlockHeader,
    key: bytes,
    *,
    key_arn: str,
    key_algorithm: str,
    wrapping_key_arn: str,
    via: str,
    extra: dict[str, Any] | None = None,
) -> ExportedKey:
    """Compare the unwrapped key's KCV with APC's; the key is dropped on a mismatch."""
    from apckx.crypto.attributes import default_kcv_algorithm
    from apckx.crypto.kcv import compute_kcv, kcv_matches
    from apckx.crypto.tr31 import header_to_key_attributes

    attributes = header_to_key_attributes(header, len(key))
    if attributes["KeyAlgorithm"] != key_algorithm:
        raise KcvMismatchError(
            f"the exported block holds a {attributes['KeyAlgorithm']} key, but {key_arn} is "
            f"{key_algorithm}"
        )
    kcv_algorithm = str(
        wrapped.get("KeyCheckValueAlgorithm") or default_kcv_algorithm(key_algorithm)
    )
    apc_kcv = str(wrapped.get("KeyCheckValue") or "")
    local_kcv = compute_kcv(key, kcv_algorithm, key_algorithm=key_algorithm)
    if not kcv_matches(local_kcv, apc_kcv):
        raise KcvMismatchError(
            f"the unwrapped key's KCV {local_kcv} does not match APC's {apc_kcv or '(none)'} "
            f"for {key_arn}; nothing was written"
        )
    return ExportedKey(
        key_arn=key_arn,
        key_block=str(wrapped["KeyMaterial"]),
        header=header,
        key_algorithm=key_algorithm,
        kcv=local_kcv,
        kcv_algorithm=kcv_algorithm,
        wrapping_key_arn=wrapping_key_arn,
        via=via,
        key=key,
        extra=extra or {},
    )


def describe_exportable_key(service: ApcService, key_id: str) -> tuple[str, str]:
    """(ARN, algorithm) of the key to export; refuses a key APC won't export."""
    key = service.get_key(key_id)
    if not key.get("Exportable", False):
        raise InputError(f"{key_id} is not exportable (Exportable=false)")
    if key.get("KeyAttributes", {}).get("KeyClass") != "SYMMETRIC_KEY":
        raise InputError(f"{key_id} is not a symmetric key: apckx exports symmetric keys only")
    return str(key["KeyArn"]), str(key["KeyAttributes"]["KeyAlgorithm"])


def export_under_kek(
    service: ApcService,
    *,
    key_id: str,
    kek_id: str,
    kek: bytes,
    headers: ExportHeaders | None = None,
    journal: Journal | None = None,
) -> ExportedKey:
    """ExportKey(Tr31KeyBlock) under the KEK, unwrap with its cleartext, check the KCV."""
    from apckx.crypto.tr31 import unwrap_key_block

    kek_info = verify_kek(service, kek_id, kek)  # a wrong KEK stops here, before ExportKey
    key_arn, key_algorithm = describe_exportable_key(service, key_id)
    material: dict[str, Any] = {"WrappingKeyIdentifier": kek_info.key_arn}
    block_headers = (headers or ExportHeaders()).to_apc()
    if block_headers:
        material["KeyBlockHeaders"] = block_headers
    wrapped = service.export_key(
        export_key_identifier=key_arn, key_material={"Tr31KeyBlock": material}
    )
    header, key = unwrap_key_block(
        kek, str(wrapped["KeyMaterial"]), kbpk_algorithm=kek_info.key_algorithm
    )
    result = _verified(
        wrapped, header, key, key_arn=key_arn, key_algorithm=key_algorithm,
        wrapping_key_arn=kek_info.key_arn, via="kek",
    )  # fmt: skip
    if journal is not None:
        journal.step("export", key_arn=key_arn, via="kek", kek_arn=kek_info.key_arn,
                     kcv=result.kcv, header=header.raw)  # fmt: skip
    return result


@dataclass(frozen=True)
class EcdhOptions:
    curve: str = "P521"
    kdf: str = "NIST_SP800"
    kdf_hash: str = "SHA_256"
    derive_key_algorithm: str | None = None
    shared_info_hex: str | None = None
    receiver_alias: str | None = None
    root_alias: str | None = None
    certs_dir: Path = Path("certs")
    trust_apc_root: str | None = None


def export_over_ecdh(
    service: ApcService,
    *,
    key_id: str,
    options: EcdhOptions,
    journal: Journal,
    headers: ExportHeaders | None = None,
) -> ExportedKey:
    """ExportKey(DiffieHellmanTr31KeyBlock): APC's K3 key and our leaf derive the KBPK.

    The receiver K3 key, the sender root in APC and the local sender credentials are the
    import-kek ceremony's, found (or created) by the same code: :class:`EcdhSession`.
    """
    from apckx.ceremonies.ecdh_session import STRONGEST_DERIVE_KEY_ALGORITHM
    from apckx.crypto.certs import certificate_to_apc
    from apckx.crypto.ecdh import (
        check_ecdh_strength,
        derive_kbpk,
        new_shared_info,
        normalize_curve,
        parse_shared_info_hex,
    )
    from apckx.crypto.tr31 import unwrap_key_block
    from apckx.keystore import load_or_create_sender_credentials

    key_arn, key_algorithm = describe_exportable_key(service, key_id)
    curve = normalize_curve(options.curve)
    derive_key_algorithm = options.derive_key_algorithm or STRONGEST_DERIVE_KEY_ALGORITHM[curve]
    check_ecdh_strength(curve, derive_key_algorithm, key_algorithm)
    shared_info = (
        parse_shared_info_hex(options.shared_info_hex)
        if options.shared_info_hex
        else new_shared_info()
    )
    session, kdf_hash = _ecdh_session(service, journal, options, curve)
    certs_dir = Path(options.certs_dir)
    fresh = not (certs_dir / "sender_ca_cert.pem").exists()
    credentials = load_or_create_sender_credentials(certs_dir, curve)
    receiver = session.find_or_create_receiver(fresh)
    apc_leaf, _apc_root = session.fetch_receiver_certificate(receiver.arn)
    root = session.find_or_import_root(lambda: credentials, fresh)
    creds = credentials[0]
    for alias, arn, reused, role in (
        (session.receiver_alias, receiver.arn, receiver.reused, "receiver"),
        (session.root_alias, root.arn, root.reused, "root"),
    ):
        if not reused:
            session.set_alias(alias, arn, role)
    material: dict[str, Any] = {
        "PrivateKeyIdentifier": receiver.arn,
        "CertificateAuthorityPublicKeyIdentifier": root.arn,
        "PublicKeyCertificate": certificate_to_apc(creds.leaf_cert),
        "DeriveKeyAlgorithm": derive_key_algorithm,
        "KeyDerivationFunction": options.kdf,
        "KeyDerivationHashAlgorithm": kdf_hash,
        "DerivationData": {"SharedInformation": shared_info.hex().upper()},
    }
    block_headers = (headers or ExportHeaders()).to_apc()
    if block_headers:
        material["KeyBlockHeaders"] = block_headers
    wrapped = service.export_key(
        export_key_identifier=key_arn, key_material={"DiffieHellmanTr31KeyBlock": material}
    )
    kbpk = derive_kbpk(
        creds.leaf_key,
        apc_leaf.public_key(),
        kdf=options.kdf,
        hash_algorithm=kdf_hash,
        key_algorithm=derive_key_algorithm,
        shared_info=shared_info,
    )
    try:
        header, key = unwrap_key_block(
            kbpk, str(wrapped["KeyMaterial"]), kbpk_algorithm=derive_key_algorithm
        )
    finally:
        del kbpk
    result = _verified(
        wrapped, header, key, key_arn=key_arn, key_algorithm=key_algorithm,
        wrapping_key_arn=str(wrapped.get("WrappingKeyArn") or receiver.arn), via="ecdh",
        extra={
            "receiver_key_arn": receiver.arn,
            "root_key_arn": root.arn,
            "shared_info_hex": shared_info.hex().upper(),
            "derivation": f"ECDH {curve} {options.kdf} {kdf_hash} -> {derive_key_algorithm}",
        },
    )  # fmt: skip
    journal.step("export", key_arn=key_arn, via="ecdh", kcv=result.kcv, header=header.raw,
                 shared_info_hex=shared_info.hex().upper())  # fmt: skip
    return result


def _ecdh_session(
    service: ApcService, journal: Journal, options: EcdhOptions, curve: str
) -> tuple[EcdhSession, str]:
    """import-kek's parties (same default aliases), the options checked; and the KDF hash."""
    from apckx.ceremonies import import_kek
    from apckx.ceremonies.ecdh_session import EcdhSession

    receiver_alias = import_kek.check_alias_name(
        options.receiver_alias or import_kek.RECEIVER_ALIAS, flag="--receiver-alias"
    )
    root_alias = import_kek.check_alias_name(
        options.root_alias or import_kek.ROOT_ALIAS, flag="--root-alias"
    )
    kdf_hash = import_kek.check_kdf_options(options.kdf, options.kdf_hash)
    session = EcdhSession(
        service,
        journal,
        curve=curve,
        receiver_alias=receiver_alias,
        root_alias=root_alias,
        trust_apc_root=(
            None
            if options.trust_apc_root is None
            else import_kek.normalize_fingerprint(options.trust_apc_root)
        ),
    )
    return session, kdf_hash


# -- writing it out ---------------------------------------------------------------------------


def _write_new_file(path: Path, text: str) -> None:
    """Create ``path`` 0600 (never overwriting), write, fsync."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} already exists: refusing to overwrite it") from None
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _check_can_create_in(path: Path, directory: Path) -> None:
    """``path`` can be created under ``directory``: the nearest existing ancestor is a
    writable directory (a check before any API call; the write itself stays O_EXCL)."""
    ancestor = directory
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"cannot create {path}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot create {path}: no write permission in {ancestor}")


def check_block_destination(path: Path) -> list[str]:
    """Refuse ``--out FILE`` before anything is exported: it must not exist (never
    overwritten) and its directory must exist and be writable. Returns warnings: a directory
    other users can write (they could remove or replace the block after it is written)."""
    import stat

    if os.path.lexists(path):
        raise ConfigError(f"{path} already exists: refusing to overwrite it")
    directory = path.parent
    if not os.path.lexists(directory):
        raise ConfigError(f"cannot create {path}: directory {directory} does not exist")
    _check_can_create_in(path, directory)
    info = os.stat(directory)
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or info.st_uid not in (os.geteuid(), 0):
        return [
            f"{directory} can be written by other users: they could replace {path.name} "
            "after it is written; prefer a directory of your own"
        ]
    return []


def check_components_destination(out_dir: Path) -> None:
    """Refuse ``--out-dir DIR`` before anything is exported: DIR must be an empty writable
    directory, or one that can be created."""
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise ConfigError(f"{out_dir} is not a directory: --out-dir needs a new or empty one")
    if out_dir.is_dir():
        from apckx.keystore import check_private_directory

        # Components are cleartext key parts: nobody else may write where they land.
        check_private_directory(out_dir, what="--out-dir")
        if any(out_dir.iterdir()):
            raise ConfigError(f"{out_dir} already exists and is not empty: choose an empty "
                              "--out-dir")  # fmt: skip
        if not os.access(out_dir, os.W_OK | os.X_OK):
            raise ConfigError(f"cannot write in {out_dir}: no write permission")
        return
    _check_can_create_in(out_dir, out_dir.parent)


def write_key_block(path: Path, key_block: str) -> None:
    """The TR-31 block (wrapped, yet kept 0600: it is still key material in transit)."""
    _write_new_file(path, key_block + "\n")


@dataclass(frozen=True)
class ComponentFile:
    index: int
    path: Path
    kcv: str


def write_components(
    exported: ExportedKey, count: int, out_dir: Path, *, rng: Any = None
) -> list[ComponentFile]:
    """Split the key into ``count`` XOR components, one 0600 file each with its KCV.

    ``out_dir`` is created 0700 if missing, and must be empty; nothing is ever overwritten.
    All or nothing: every file is written and fsync'd in a private temporary directory beside
    ``out_dir``, which is then renamed to it; on any failure (a full disk) all are removed.
    """
    import shutil
    import tempfile

    from apckx.crypto.components import split_key
    from apckx.crypto.kcv import compute_kcv
    from apckx.crypto.keys import check_key_material

    if not 2 <= count <= 9:
        raise InputError(f"--components must be between 2 and 9 (got {count})")
    check_components_destination(out_dir)
    parts = (
        split_key(exported.key, count) if rng is None else split_key(exported.key, count, rng=rng)
    )
    names = [f"component-{i}-of-{count}.txt" for i in range(1, count + 1)]
    texts: list[tuple[str, str, str]] = []
    for index, (name, part) in enumerate(zip(names, parts, strict=True), start=1):
        try:
            check_key_material(part, exported.key_algorithm, what=f"component {index}")
        except InputError:
            raise ConfigError("a component came out degenerate; run the export again") from None
        kcv = compute_kcv(part, exported.kcv_algorithm, key_algorithm=exported.key_algorithm)
        value = part.hex().upper()
        grouped = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        texts.append((name, kcv, f"component: {index} of {count}\n"
                      f"key: {exported.key_arn}\n"
                      f"algorithm: {exported.key_algorithm}\n"
                      f"component kcv: {kcv} ({exported.kcv_algorithm})\n"
                      f"combined key kcv: {exported.kcv} ({exported.kcv_algorithm})\n"
                      f"value: {grouped}\n"))  # fmt: skip
    staging: Path | None = None
    try:
        out_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp",
                                        dir=out_dir.parent))  # fmt: skip  (0700)
        for name, _kcv, text in texts:
            _write_new_file(staging / name, text)
        _fsync_directory(staging)
        os.rename(staging, out_dir)  # atomic; replaces out_dir only if it is empty
        staging = None
        _fsync_directory(out_dir.parent)
    except (OSError, ConfigError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ConfigError(
            f"cannot write the components in {out_dir} ({reason}): none was kept; APC "
            "changed nothing: run the export again"
        ) from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return [
        ComponentFile(index, out_dir / name, kcv)
        for index, (name, kcv, _text) in enumerate(texts, start=1)
    ]


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_component_file(path: Path) -> bytes:
    """The ``value:`` of a component file (for custodians' tooling and the tests)."""
    from apckx._hardening import read_regular_file

    content = read_regular_file(path, limit=4096, what="component file")
    for line in content.data.decode("ascii", "replace").splitlines():
        if line.startswith("value:"):
            return bytes.fromhex("".join(line.removeprefix("value:").split()))
    raise InputError(f"{path} has no value: line")
