"""Where the emulator keeps its state.

The control modules talk to persistence only through :class:`StateStore`. A record is a JSON-able
dict; ``kind`` is one of ``"key"``, ``"alias"``, ``"account_ca"``, ``"tags"``. Every mutation
is written through before the API call answers, so nothing acknowledged is lost.
"""

from __future__ import annotations

import hmac
import json
import os
import sqlite3
import stat
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from apckx.emulator.files import restrict_file_mode
from apckx.errors import ConfigError, IntegrityError

Record = dict[str, Any]


class StateStore(Protocol):
    def load(self) -> Iterable[tuple[str, str, str, str, Record]]:
        """Every stored record as (kind, account_id, region, ident, record)."""
        ...

    def put(self, kind: str, account_id: str, region: str, ident: str, record: Record) -> None:
        """Insert or replace one record."""
        ...

    def delete(self, kind: str, account_id: str, region: str, ident: str) -> None:
        """Remove one record; a missing record is not an error."""
        ...

    def close(self) -> None: ...


class MemoryStore:
    """The default: state lives only in the account states' dictionaries."""

    def load(self) -> Iterable[tuple[str, str, str, str, Record]]:
        return ()

    def put(self, kind: str, account_id: str, region: str, ident: str, record: Record) -> None:
        return None

    def delete(self, kind: str, account_id: str, region: str, ident: str) -> None:
        return None

    def close(self) -> None:
        return None


# --- SQLite persistence ---------------------------------------------------------------------

MASTER_KEY_BYTES = 32
_NONCE_BYTES = 12
_SCHEMA_VERSION = "1"
# A fixed plaintext sealed under the master key at creation: opening the file with another
# master key fails here, with a clear message, rather than on the first record.
_CANARY_ID = "meta\x00canary"
_CANARY = b"apckx emulator state v1"


def master_key_path(state_path: Path) -> Path:
    """Where the master key of a state file lives: ``<state>.key`` beside it."""
    return state_path.with_name(state_path.name + ".key")


def load_or_create_master_key(path: Path) -> bytes:
    """Read the 32-byte master key at ``path``, or create it (mode 0600) if it is absent.

    Refuses a key file whose mode grants anything to group or others, and one of the
    wrong length, with a :class:`ConfigError` that says how to fix it.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_master_key(path)
    except OSError as exc:
        raise ConfigError(f"cannot create master key file {path}: {exc.strerror}") from None
    try:
        os.write(fd, os.urandom(MASTER_KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    return _read_master_key(path)


def _read_master_key(path: Path) -> bytes:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"master key file {path} has mode {mode:04o}; it must be 0600 "
                f"(run: chmod 600 {path})"
            )
        master_key = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read master key file {path}: {exc.strerror}") from None
    if len(master_key) != MASTER_KEY_BYTES:
        raise ConfigError(
            f"master key file {path} must hold {MASTER_KEY_BYTES} bytes "
            f"(got {len(master_key)}); restore the right file or start a new state"
        )
    return master_key


def _record_id(kind: str, account_id: str, region: str, ident: str) -> bytes:
    """The associated data binding a ciphertext to its row (NUL cannot occur in the parts)."""
    return "\x00".join((kind, account_id, region, ident)).encode()


class SqliteStore:
    """State kept in SQLite across restarts, every record sealed with AES-256-GCM.

    Each row's value is ``nonce || AES-GCM(master key, JSON record, AAD = record id)``
    (NIST SP 800-38D, 96-bit random nonces), so neither key material nor the record's
    contents appear in the file in clear, and a row moved to another id fails to open.
    The master key lives in ``<state>.key`` (0600), created on first start. The database
    runs in WAL mode with ``synchronous=FULL``; one connection is shared under a lock and
    each put commits before returning, so an acknowledged write survives ``kill -9``.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._master_key_path = master_key_path(self.path)
        self._aead = AESGCM(load_or_create_master_key(self._master_key_path))
        self._lock = threading.Lock()
        # Records are sealed, but nobody else needs to read even their ids: 0600, also for a
        # file that already existed with a wider mode (SQLite gives its -wal and -shm files
        # the database file's mode; existing ones are narrowed too).
        restrict_file_mode(self.path, what="emulator state")
        for suffix in ("-wal", "-shm"):
            companion = self.path.with_name(self.path.name + suffix)
            if companion.exists():
                restrict_file_mode(companion, what="emulator state", create=False)
        try:
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=30.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS records ("
                " kind TEXT NOT NULL, account_id TEXT NOT NULL, region TEXT NOT NULL,"
                " ident TEXT NOT NULL, sealed BLOB NOT NULL,"
                " PRIMARY KEY (kind, account_id, region, ident))"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)"
            )
            self._check_canary()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"cannot open emulator state {self.path}: {exc}") from None

    def _seal(self, record_id: bytes, plaintext: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, record_id)

    def _open(self, record_id: bytes, sealed: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], record_id)
        except InvalidTag:
            raise IntegrityError(
                f"emulator state {self.path} failed its integrity check: "
                f"wrong master key ({self._master_key_path}) or a tampered file"
            ) from None

    def _check_canary(self) -> None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE name = 'canary'").fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO meta (name, value) VALUES ('canary', ?), ('schema', ?)",
                    (self._seal(_CANARY_ID.encode(), _CANARY), _SCHEMA_VERSION.encode()),
                )
                return
        if not hmac.compare_digest(self._open(_CANARY_ID.encode(), bytes(row[0])), _CANARY):
            raise IntegrityError(f"emulator state {self.path} failed its integrity check")

    def load(self) -> Iterable[tuple[str, str, str, str, Record]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, account_id, region, ident, sealed FROM records ORDER BY rowid"
            ).fetchall()
        loaded: list[tuple[str, str, str, str, Record]] = []
        for kind, account_id, region, ident, sealed in rows:
            plaintext = self._open(_record_id(kind, account_id, region, ident), bytes(sealed))
            record = json.loads(plaintext)
            if not isinstance(record, dict):
                raise IntegrityError(f"emulator state {self.path} holds a malformed record")
            loaded.append((kind, account_id, region, ident, record))
        return loaded

    def put(self, kind: str, account_id: str, region: str, ident: str, record: Record) -> None:
        plaintext = json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
        sealed = self._seal(_record_id(kind, account_id, region, ident), plaintext)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO records (kind, account_id, region, ident, sealed)"
                " VALUES (?, ?, ?, ?, ?)",
                (kind, account_id, region, ident, sealed),
            )

    def delete(self, kind: str, account_id: str, region: str, ident: str) -> None:
        with self._lock:
            self._db.execute(
                "DELETE FROM records WHERE kind = ? AND account_id = ? AND region = ?"
                " AND ident = ?",
                (kind, account_id, region, ident),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
