"""The event-alias cache: a seeded session registers exactly what botocore's own does, and a
cache from another botocore, or one it cannot trust, is not used."""

from __future__ import annotations

import marshal
from pathlib import Path
from typing import Any

import botocore.hooks
import botocore.session
import pytest

from apckx import _startup
from apckx.emulator.pytest_plugin import EmulatorFixture
from apckx.service import client as client_module
from apckx.service.apc import ApcService
from apckx.service.client import EventAliasCache


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EventAliasCache:
    """The process's cache, pointed at an empty private directory for this test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fresh = EventAliasCache()
    monkeypatch.setattr(client_module, "_EVENT_ALIASES", fresh)
    return fresh


def handlers(session: Any) -> Any:
    """The registered handlers as comparable data: the prefix trie, node by node."""

    def flat(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: flat(value) for key, value in node.items()}
        if isinstance(node, botocore.hooks.NodeList):
            return (list(node.first), list(node.middle), list(node.last))
        return node

    return flat(session._events._emitter._handlers._root)


def botocore_alias(name: str) -> str:
    aliaser = botocore.hooks.EventAliaser(botocore.hooks.HierarchicalEmitter())
    return str(aliaser._alias_event_name(name))


def learn_once(cache: EventAliasCache, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a console-script run does: seed (nothing yet), learn, save at exit."""
    monkeypatch.setattr(_startup, "_console", True)
    client_module.new_session()
    cache.save()
    monkeypatch.setattr(_startup, "_console", False)


def test_a_seeded_session_registers_what_botocore_registers(
    cache: EventAliasCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    learn_once(cache, monkeypatch)
    assert Path(cache.path).stat().st_mode & 0o777 == 0o600
    fresh = EventAliasCache(cache.path)
    monkeypatch.setattr(client_module, "_EVENT_ALIASES", fresh)
    seeded = client_module.new_session()
    assert len(fresh.load()) > 50
    assert handlers(seeded) == handlers(botocore.session.Session())
    assert isinstance(seeded, botocore.session.Session)
    for name, aliased in fresh.load().items():  # every answer is botocore's own
        assert aliased == botocore_alias(name)
        assert seeded._events._alias_name_cache[name] == aliased


def test_only_the_console_script_learns(
    cache: EventAliasCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_module.new_session()  # in-process: seeded, but nothing to save
    cache.save()
    assert not Path(cache.path).exists()
    learn_once(cache, monkeypatch)
    assert Path(cache.path).exists()
    mtime = Path(cache.path).stat().st_mtime_ns
    learn_once(cache, monkeypatch)  # nothing new: not rewritten
    assert Path(cache.path).stat().st_mtime_ns == mtime


def write(path: str, data: Any) -> None:
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    Path(path).write_bytes(marshal.dumps(data))
    Path(path).chmod(0o600)


@pytest.mark.parametrize("problem", ["another botocore", "foreign", "corrupt", "not names"])
def test_a_cache_it_cannot_trust_seeds_nothing(cache: EventAliasCache, problem: str) -> None:
    # A wrong answer for a real event: used, it would show in the session's aliaser.
    name = "before-call.payment-cryptography.CreateKey"
    tag = "1.0.0|1|1|x" if problem == "another botocore" else EventAliasCache.botocore_tag()
    aliases: Any = {name: "wrong"} if problem != "not names" else {name: 1}
    write(cache.path, {"botocore": tag, "aliases": aliases})
    if problem == "foreign":
        Path(cache.path).chmod(0o666)
    elif problem == "corrupt":
        Path(cache.path).write_bytes(Path(cache.path).read_bytes()[:9])
    session = client_module.new_session()
    assert cache.load() == {}
    assert session._events._alias_name_cache.get(name) != "wrong"


def test_the_client_s_aliaser_is_seeded_and_calls_work(
    cache: EventAliasCache, monkeypatch: pytest.MonkeyPatch, apc_emulator: EmulatorFixture
) -> None:
    name = "before-call.payment-cryptography.ListAliases"
    write(cache.path, {"botocore": EventAliasCache.botocore_tag(),
                       "aliases": {name: botocore_alias(name)}})  # fmt: skip
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    apc = ApcService(client_module.make_client(region="us-east-1", endpoint_url=apc_emulator.url))
    assert apc.client.meta.events._alias_name_cache[name] == botocore_alias(name)
    assert apc.list_aliases() == []
