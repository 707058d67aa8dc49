"""What APC told the last ceremony about its parties, so the next one asks in parallel.

A repeat ceremony from the same certs dir looks up the receiver alias (GetKey), then fetches
APC's certificate for the key it names (GetPublicKeyCertificate); it looks up the root alias,
then reads that key's tags (ListTagsForResource). Each pair is two round trips one after the
other, only because the second call needs the ARN the first returns. The ARNs rarely change,
so the last ceremony's are kept as a *hint* (``apc-parties.json`` in the certs dir, 0600) and
the second call of each pair is sent at once, beside the first, for the hinted ARN.

The hint also keeps APC's certificate for the receiver (public: APC hands it to anyone allowed
to ask) and where each KEK alias pointed when the last ceremony ended (key ARN and KCV), so a
repeat ceremony can wrap and send its KEK at once while every party is verified beside it
(:mod:`apckx.ceremonies.repeat_import`).

Nothing is trusted from the file: a prefetched answer is used only when the alias lookup of
this run returns the same ARN, and it is then checked exactly as a fetched one (APC's chain,
validity, curve, pinned root; the CA fingerprint tag). A wrong, stale or planted hint costs
a wasted read, never a wrong key. The hint is keyed by everything that makes it meaningful
(endpoint, region, the two aliases, the curve and the sender CA's fingerprint), so another
account, region, endpoint or sender identity never sees it; a file another user owns, that
others can write or that is a symbolic link is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

HINT_FILE = "apc-parties.json"
MAX_BYTES = 1024 * 1024
MAX_ALIASES = 64  # KEK aliases remembered per hint
_ALIAS_FIELDS = ("arn", "kcv", "key_algorithm")


def hint_key(scope: list[str], ca_sha256: str) -> str:
    """The hint's key: a SHA-256 over what makes the ARNs meaningful."""
    return hashlib.sha256(json.dumps([*scope, ca_sha256]).encode()).hexdigest()


class PartyHints:
    """The hinted ARNs of one certs dir, their prefetched reads, and what this run learned.

    ``scope``: endpoint, region, receiver alias, root alias, curve; ``ca_sha256``: the sender
    CA's fingerprint when the certs dir already holds one (else nothing is hinted, and the
    fingerprint comes with the root this run imports).
    """

    def __init__(self, certs_dir: Path, scope: list[str], ca_sha256: str | None) -> None:
        self.path = certs_dir / HINT_FILE
        self.scope = list(scope)
        self.ca_sha256 = ca_sha256
        self.receiver_arn: str | None = None
        self.root_arn: str | None = None
        self.receiver_certificate: tuple[str, str] | None = None  # for receiver_arn
        self._aliases: dict[str, dict[str, str]] = {}
        self._learned: dict[str, str] = {}
        self._learned_certificate: tuple[str, str] | None = None
        self._loaded: dict[str, Any] = {}
        self._loaded_key: str | None = None
        self._lock = threading.Lock()
        self._started = False
        self._results: dict[str, tuple[threading.Event, list[Any]]] = {}
        if ca_sha256 is not None:
            self._loaded_key = hint_key(self.scope, ca_sha256)
            self._load(self._loaded_key)

    # -- the file ------------------------------------------------------------------------
    def _load(self, key: str) -> None:
        from apckx.ceremonies.journal import read_private_text
        from apckx.errors import ConfigError

        try:
            data = json.loads(read_private_text(self.path, what="party hints", limit=MAX_BYTES))
        except (OSError, ValueError, ConfigError):
            return
        if not isinstance(data, dict) or data.get("key") != key:
            return
        receiver, root = data.get("receiver_arn"), data.get("root_arn")
        self.receiver_arn = receiver if isinstance(receiver, str) and receiver else None
        self.root_arn = root if isinstance(root, str) and root else None
        certificate = data.get("receiver_certificate")
        if (self.receiver_arn and isinstance(certificate, list) and len(certificate) == 2
                and all(isinstance(part, str) and part for part in certificate)):  # fmt: skip
            self.receiver_certificate = (certificate[0], certificate[1])
        aliases = data.get("kek_aliases")
        if isinstance(aliases, dict):
            self._aliases = {
                name: {k: str(v) for k, v in state.items() if k in _ALIAS_FIELDS}
                for name, state in aliases.items()
                if isinstance(name, str) and isinstance(state, dict)
                and isinstance(state.get("arn"), str) and isinstance(state.get("kcv"), str)
            }  # fmt: skip
        self._loaded = self._record()

    def _record(self) -> dict[str, Any]:
        """What the file holds (or would hold), but its key."""
        record: dict[str, Any] = {}
        receiver = self._learned.get("receiver_arn", self.receiver_arn)
        root = self._learned.get("root_arn", self.root_arn)
        if receiver:
            record["receiver_arn"] = receiver
        if root:
            record["root_arn"] = root
        certificate = self._learned_certificate
        if certificate is None and receiver == self.receiver_arn:
            certificate = self.receiver_certificate
        if certificate is not None:
            record["receiver_certificate"] = list(certificate)
        if self._aliases:
            record["kek_aliases"] = dict(self._aliases)
        return record

    def save(self) -> None:
        """Write what this run learned, if the parties are known and anything changed. Best
        effort (a hint): written atomically, 0600; a failure only loses the hint."""
        with self._lock:
            record = self._record()
            ca = self.ca_sha256
            if ca is None or "receiver_arn" not in record or "root_arn" not in record:
                return
            if record == self._loaded and self._loaded_key == hint_key(self.scope, ca):
                return
            record = {"key": hint_key(self.scope, ca), **record}
        tmp = self.path.with_name(f".{HINT_FILE}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(record, handle)
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()

    # -- prefetching ---------------------------------------------------------------------
    def start(self, apc: Any) -> None:
        """Send the hinted reads now (once), each in a thread of its own."""
        with self._lock:
            if self._started:
                return
            self._started = True
            jobs: list[tuple[str, Callable[[], Any]]] = []
            if self.receiver_arn:
                arn = self.receiver_arn
                jobs.append((f"cert:{arn}", lambda: apc.get_public_key_certificate(arn)))
            if self.root_arn:
                root = self.root_arn
                jobs.append((f"tags:{root}", lambda: apc.list_tags_for_resource(root)))
            for name, job in jobs:
                done: tuple[threading.Event, list[Any]] = (threading.Event(), [])
                self._results[name] = done
                threading.Thread(
                    target=self._run, args=(job, done), name=f"apckx-hint-{name[:4]}", daemon=True
                ).start()

    @staticmethod
    def _run(job: Callable[[], Any], done: tuple[threading.Event, list[Any]]) -> None:
        try:
            done[1].append(job())
        except Exception:  # noqa: S110 (a stale hint, a dropped connection: the normal path asks)
            pass
        finally:
            done[0].set()

    def _result(self, name: str) -> Any | None:
        with self._lock:
            entry = self._results.get(name)
        if entry is None:
            return None
        entry[0].wait()
        return entry[1][0] if entry[1] else None

    def certificate_for(self, receiver_arn: str) -> tuple[str, str] | None:
        """APC's (KeyCertificate, KeyCertificateChain) for ``receiver_arn`` if prefetched."""
        result = self._result(f"cert:{receiver_arn}")
        return None if result is None else (str(result[0]), str(result[1]))

    def tags_for(self, root_arn: str) -> dict[str, str] | None:
        """The root key's tags if prefetched for ``root_arn``."""
        result = self._result(f"tags:{root_arn}")
        return None if result is None else dict(result)

    # -- learning ------------------------------------------------------------------------
    def remember(
        self,
        *,
        receiver_arn: str | None = None,
        root_arn: str | None = None,
        ca_sha256: str | None = None,
        certificate: tuple[str, str] | None = None,
    ) -> None:
        """Record a verified party of this run: the receiver (with APC's certificate for it,
        as returned), the root with the fingerprint of the CA it holds. :meth:`save` writes
        them."""
        with self._lock:
            if receiver_arn:
                self._learned["receiver_arn"] = receiver_arn
                self._learned_certificate = certificate
            if root_arn:
                self._learned["root_arn"] = root_arn
            if ca_sha256:
                self.ca_sha256 = ca_sha256

    def remember_alias(self, alias: str, *, key_arn: str, kcv: str, key_algorithm: str) -> None:
        """Where ``alias`` points as this run ends (APC's answer)."""
        with self._lock:
            self._aliases.pop(alias, None)
            self._aliases[alias] = {"arn": key_arn, "kcv": kcv, "key_algorithm": key_algorithm}
            while len(self._aliases) > MAX_ALIASES:  # the oldest first
                del self._aliases[next(iter(self._aliases))]

    # -- a repeat ceremony ---------------------------------------------------------------
    def alias_state(self, alias: str) -> dict[str, str] | None:
        """Where ``alias`` pointed when the last ceremony from this certs dir ended: ``arn``,
        ``kcv``, ``key_algorithm``; None when unknown."""
        with self._lock:
            state = self._aliases.get(alias)
            return dict(state) if state is not None else None
