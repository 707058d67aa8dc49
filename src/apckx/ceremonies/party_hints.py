"""What APC told the last ceremony about its parties, so the next one asks in parallel.

A repeat ceremony from the same certs dir looks up the receiver alias (GetKey), then fetches
APC's certificate for the key it names (GetPublicKeyCertificate); it looks up the root alias,
then reads that key's tags (ListTagsForResource). Each pair is two round trips one after the
other, only because the second call needs the ARN the first returns. The ARNs rarely change,
so the last ceremony's are kept as a *hint* (``apc-parties.json`` in the certs dir, 0600) and
the second call of each pair is sent at once, beside the first, for the hinted ARN.

Nothing is trusted from the file: a prefetched answer is used only when the alias lookup of
this run returns the same ARN, and it is then checked exactly as a fetched one (APC's chain,
validity, curve, pinned root; the CA fingerprint tag). A wrong, stale or planted hint costs
a wasted read, never a wrong key. The hint is keyed by everything that makes it meaningful
(endpoint, region, the two aliases, the curve and the sender CA's fingerprint), so another
account, region, endpoint or sender identity never sees it.
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
        self._learned: dict[str, str] = {}
        self._lock = threading.Lock()
        self._started = False
        self._results: dict[str, tuple[threading.Event, list[Any]]] = {}
        if ca_sha256 is not None:
            self._load(hint_key(self.scope, ca_sha256))

    # -- the file ------------------------------------------------------------------------
    def _load(self, key: str) -> None:
        try:
            with self.path.open(encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return
        if not isinstance(data, dict) or data.get("key") != key:
            return
        receiver, root = data.get("receiver_arn"), data.get("root_arn")
        self.receiver_arn = receiver if isinstance(receiver, str) and receiver else None
        self.root_arn = root if isinstance(root, str) and root else None

    def _save(self, ca_sha256: str) -> None:
        """Best effort (a hint): written atomically, 0600; a failure only loses the hint."""
        record = {"key": hint_key(self.scope, ca_sha256), **self._learned}
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
    ) -> None:
        """Record a verified party of this run (the root with the fingerprint of the CA it
        holds); the file is written once both are known, if they differ from the hint."""
        with self._lock:
            if receiver_arn:
                self._learned["receiver_arn"] = receiver_arn
            if root_arn:
                self._learned["root_arn"] = root_arn
            if ca_sha256:
                self.ca_sha256 = ca_sha256
            complete = len(self._learned) == 2 and self.ca_sha256 is not None
            unchanged = (
                self._learned.get("receiver_arn") == self.receiver_arn
                and self._learned.get("root_arn") == self.root_arn
            )
            ca = self.ca_sha256
        if complete and not unchanged and ca is not None:
            self._save(ca)
