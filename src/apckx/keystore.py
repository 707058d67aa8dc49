"""Files on disk: PEM private keys (0600, written atomically) and certificates.

The I/O half of ``apckx.crypto.certs``. A private key file that others can read is refused,
as a key custodian expects.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from apckx.crypto.certs import (
    certificate_to_pem,
    load_certificate_pem,
    load_private_key_pem,
    new_ecdh_leaf,
    new_sender_ca,
    private_key_to_pem,
    verify_certificate,
)
from apckx.crypto.ecdh import curve_name, normalize_curve
from apckx.errors import CertificateError, ConfigError, InputError

PRIVATE_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644
DIRECTORY_MODE = 0o700

SENDER_CA_KEY = "sender_ca_key.pem"
SENDER_CA_CERT = "sender_ca_cert.pem"
SENDER_KEY = "sender_key.pem"  # earlier versions' ECDH leaf: no longer written or read
SENDER_CERT = "sender_cert.pem"

PathLike = str | os.PathLike[str]


def _ensure_directory(directory: Path) -> None:
    # Every directory we create is 0700, parents included; existing ones are left alone.
    missing: list[Path] = []
    current = directory
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    try:
        for created in reversed(missing):
            created.mkdir(mode=DIRECTORY_MODE)
            os.chmod(created, DIRECTORY_MODE)  # mkdir's mode is filtered by the umask
    except OSError as exc:
        raise ConfigError(f"cannot create directory {directory}: {exc.strerror}") from None


def _write_atomically(path: Path, data: bytes, mode: int, *, overwrite: bool) -> None:
    _ensure_directory(path.parent)
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} already exists: refusing to overwrite it")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # whatever the umask did
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None


def save_private_key(
    path: PathLike,
    key: ec.EllipticCurvePrivateKey,
    *,
    passphrase: bytes | None = None,
    overwrite: bool = False,
) -> None:
    """Write ``key`` as PKCS#8 PEM, mode 0600, atomically (temp file + rename)."""
    _write_atomically(
        Path(path), private_key_to_pem(key, passphrase), PRIVATE_FILE_MODE, overwrite=overwrite
    )


MAX_PEM_BYTES = 64 * 1024


def _check_not_foreign(info_uid: int, mode: int, path: Path, what: str) -> None:
    """Refuse a file or directory another user owns, or that group or others can write."""
    euid = os.geteuid() if hasattr(os, "geteuid") else None
    if euid is not None and info_uid not in (euid, 0):
        raise ConfigError(
            f"{what} {path} belongs to another user (uid {info_uid}): use your own copy"
        )
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(
            f"{what} {path} can be written by other users (mode {stat.S_IMODE(mode):04o}): "
            f"run chmod go-w {path}"
        )


def check_private_directory(directory: PathLike, *, what: str = "directory") -> None:
    """Refuse an existing directory that another user owns or that group or others can
    write (they could swap the keys and certificates in it); a missing one is fine."""
    path = Path(directory)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"cannot use {what} {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{what} {path} is not a directory")
    _check_not_foreign(info.st_uid, info.st_mode, path, what)


def load_private_key(
    path: PathLike, *, passphrase: bytes | None = None
) -> ec.EllipticCurvePrivateKey:
    """Load a PEM private key: opened once (``O_NOFOLLOW``), checked on the descriptor
    (regular file, owner, mode: none of group or others), read from that descriptor."""
    from apckx._hardening import read_regular_file

    file_path = Path(path)
    if not os.path.lexists(file_path):
        raise ConfigError(f"private key {file_path} does not exist")
    try:
        content = read_regular_file(
            file_path, limit=MAX_PEM_BYTES, what="private key", follow_symlinks=False
        )
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    mode = stat.S_IMODE(content.mode)
    if mode & 0o077:
        raise ConfigError(
            f"private key {file_path} is readable by others (mode {mode:04o}): "
            f"run chmod 600 {file_path}"
        )
    _check_not_foreign(content.uid, content.mode, file_path, "private key")
    try:
        return load_private_key_pem(content.data, passphrase)
    except InputError as exc:
        raise ConfigError(f"{file_path}: {exc}") from None


def save_certificate(path: PathLike, cert: x509.Certificate, *, overwrite: bool = True) -> None:
    """Write a certificate as PEM (mode 0644), atomically."""
    _write_atomically(Path(path), certificate_to_pem(cert), PUBLIC_FILE_MODE, overwrite=overwrite)


def load_certificate(path: PathLike) -> x509.Certificate:
    """Load a PEM certificate (a regular file that only its owner can write)."""
    from apckx._hardening import read_regular_file

    file_path = Path(path)
    if not os.path.lexists(file_path):
        raise ConfigError(f"certificate {file_path} does not exist")
    try:
        content = read_regular_file(file_path, limit=MAX_PEM_BYTES, what="certificate")
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    _check_not_foreign(content.uid, content.mode, file_path, "certificate")
    try:
        return load_certificate_pem(content.data)
    except CertificateError as exc:
        raise ConfigError(f"{file_path}: {exc}") from None


@dataclass(frozen=True)
class SenderCredentials:
    """The sender's root CA and ECDH leaf, with their private keys."""

    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    leaf_cert: x509.Certificate

    @property
    def curve(self) -> str:
        """ "P256", "P384" or "P521"."""
        return curve_name(self.leaf_key)


def _same_public_key(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> bool:
    return cert.public_key() == key.public_key()


def load_or_create_sender_credentials(
    certs_dir: PathLike,
    curve: str,
    *,
    passphrase: bytes | None = None,
    now: dt.datetime | None = None,
) -> tuple[SenderCredentials, bool]:
    """Load the sender CA from ``certs_dir`` (or create it), and issue a fresh ECDH leaf.

    Returns the credentials and whether a new CA was created (it must then be imported into
    APC as a root certificate). Only the CA is kept on disk: every call issues a new ECDH key
    pair and leaf certificate under the CA, held in memory only, so each ceremony has its own
    ephemeral ECDH key (forward secrecy: a stolen certs dir does not open past key blocks).
    APC trusts the CA, not the leaf, so a new leaf costs no API call. ``sender_key.pem`` and
    ``sender_cert.pem`` of earlier versions are no longer read (delete them).
    """
    directory = Path(certs_dir)
    name = normalize_curve(curve)
    check_private_directory(directory, what="certs directory")
    paths = {n: directory / n for n in (SENDER_CA_KEY, SENDER_CA_CERT)}
    present = [n for n, p in paths.items() if os.path.lexists(p)]
    legacy = [n for n in (SENDER_KEY, SENDER_CERT) if os.path.lexists(directory / n)]
    if not present and legacy:  # e.g. the AWS sample's files: not ours to replace silently
        raise ConfigError(
            f"{directory} holds only part of the sender credentials: {', '.join(legacy)} but "
            f"no sender CA (missing {SENDER_CA_KEY}, {SENDER_CA_CERT}): use an empty directory"
        )
    if not present:
        ca_key, ca_cert = new_sender_ca(name, now=now)
        _ensure_directory(directory)
        save_private_key(paths[SENDER_CA_KEY], ca_key, passphrase=passphrase)
        save_certificate(paths[SENDER_CA_CERT], ca_cert)
        leaf_key, leaf_cert = new_ecdh_leaf(ca_key, ca_cert, name, now=now)
        return SenderCredentials(ca_key, ca_cert, leaf_key, leaf_cert), True
    if len(present) != len(paths):
        missing = ", ".join(n for n in paths if n not in present)
        raise ConfigError(
            f"{directory} holds only part of the sender credentials (missing {missing}): "
            "restore the missing files or use an empty directory"
        )
    ca_key = load_private_key(paths[SENDER_CA_KEY], passphrase=passphrase)
    ca_cert = load_certificate(paths[SENDER_CA_CERT])
    if curve_name(ca_key) != name:
        raise ConfigError(
            f"the sender credentials in {directory} are on {curve_name(ca_key)}, not {name}: "
            "use another certs directory for this curve"
        )
    if not _same_public_key(ca_key, ca_cert):
        raise ConfigError(f"a key in {directory} does not match its certificate")
    try:
        verify_certificate(ca_cert, ca_cert, now=now, expected_curve=name)
    except CertificateError as exc:
        raise ConfigError(f"sender CA in {directory}: {exc}") from None
    leaf_key, leaf_cert = new_ecdh_leaf(ca_key, ca_cert, name, now=now)
    try:
        verify_certificate(leaf_cert, ca_cert, now=now, expected_curve=name)
    except CertificateError as exc:
        raise ConfigError(f"sender certificate in {directory}: {exc}") from None
    return SenderCredentials(ca_key, ca_cert, leaf_key, leaf_cert), False
