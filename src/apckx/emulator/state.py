"""Where the emulator keeps its state.

The models talk to persistence only through :class:`StateStore`. A record is a JSON-able
dict; ``kind`` is one of ``"key"``, ``"alias"``, ``"account_ca"``, ``"tags"``. Every mutation
is written through before the API call answers, so nothing acknowledged is lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

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
    """The default: state lives only in the models' own dictionaries."""

    def load(self) -> Iterable[tuple[str, str, str, str, Record]]:
        return ()

    def put(self, kind: str, account_id: str, region: str, ident: str, record: Record) -> None:
        return None

    def delete(self, kind: str, account_id: str, region: str, ident: str) -> None:
        return None

    def close(self) -> None:
        return None
