"""apckx._startup: the regex cache serves genuine, identical patterns, or steps aside."""

from __future__ import annotations

import json
import marshal
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apckx import _startup

_sre: Any = __import__("_sre")
_compiler: Any = re._compiler  # type: ignore[attr-defined]
REAL_COMPILE = _compiler.compile


@pytest.fixture
def cache_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh window over a private cache file; ``re`` is as before afterwards."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(_startup, "_regex_cache", None)
    yield Path(_startup.regex_cache_path())
    _startup.stop_regex_cache()
    assert _compiler.compile is REAL_COMPILE


def window(source: str | bytes, flags: int = 0) -> re.Pattern[Any]:
    """Compile ``source`` in a start-up window (``re``'s own cache bypassed), then save."""
    _startup._regex_cache = None
    assert _startup.start_regex_cache()
    try:
        return _startup._compile_from_cache(source, flags)  # type: ignore[no-any-return]
    finally:
        _startup.stop_regex_cache()
        _startup.save_regex_cache()


def assert_identical(cached: re.Pattern[Any], source: str | bytes, flags: int = 0) -> None:
    fresh = REAL_COMPILE(source, flags)
    assert isinstance(cached, re.Pattern)
    assert cached == fresh  # the flags, the pattern text and the compiled code
    assert (cached.pattern, cached.flags, cached.groups, cached.groupindex) == (
        fresh.pattern, fresh.flags, fresh.groups, fresh.groupindex
    )  # fmt: skip


PATTERNS: list[tuple[str | bytes, int]] = [
    (r"a(?P<n>b)+c", 0),
    (r"(?P<host>[^:/]+)(?::(?P<port>\d+))?", re.IGNORECASE),
    (r"^\s*(?:Block data|Data):.*$", re.DOTALL | re.MULTILINE),
    (r"[\w.-]+", re.ASCII),
    (rb"^[A-Z0-9]{2}$", 0),
    (r"(?x) a  b # a comment", 0),
]


@pytest.mark.parametrize(("source", "flags"), PATTERNS)
def test_a_cached_pattern_is_the_pattern_re_compiles(
    cache_file: Path, source: str | bytes, flags: int
) -> None:
    first = window(source, flags)  # compiled as usual, learnt at the end
    assert cache_file.exists()
    assert oct(cache_file.stat().st_mode & 0o777) == "0o600"
    assert oct(cache_file.parent.stat().st_mode & 0o777) == "0o700"
    assert_identical(first, source, flags)
    second = window(source, flags)  # from the cache this time
    assert not _startup._regex_cache.misses  # type: ignore[union-attr]
    assert_identical(second, source, flags)
    assert bool(second.match(b"AB" if isinstance(source, bytes) else "abbc")) == bool(
        first.match(b"AB" if isinstance(source, bytes) else "abbc")
    )


def test_str_and_bytes_patterns_are_kept_apart(cache_file: Path) -> None:
    window(r"[0-9]+")
    assert isinstance(window(rb"[0-9]+").pattern, bytes)
    assert isinstance(window(r"[0-9]+").pattern, str)


def test_a_pattern_that_warns_is_never_cached(cache_file: Path) -> None:
    for _run in range(2):  # the second run warns too: it compiled it again
        with pytest.warns(FutureWarning, match="nested set"):
            window("[[a]")
    assert not cache_file.exists()


def test_debug_and_locale_patterns_are_never_cached(
    cache_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    window(r"x+", re.DEBUG)
    window(rb"\w+", re.LOCALE)
    assert not cache_file.exists()
    capsys.readouterr()


def test_errors_are_re_s_own(cache_file: Path) -> None:
    with pytest.raises(re.error, match="missing \\)"):
        window("(a")
    assert not cache_file.exists()


def stored(path: Path) -> dict[Any, Any]:
    return dict(marshal.loads(path.read_bytes())["patterns"])  # noqa: S302 (the test's file)


def write_cache(path: Path, patterns: dict[Any, Any], *, tag: str | None = None) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = {"interpreter": tag or _startup.interpreter_tag(), "patterns": patterns}
    path.write_bytes(marshal.dumps(data))
    path.chmod(0o600)


def test_an_entry_the_engine_refuses_falls_back(cache_file: Path) -> None:
    write_cache(cache_file, {("ab", 0): (32, [1, 2, 3], 0, {}, (None,))})
    assert_identical(window("ab"), "ab")  # compiled as usual, and learnt again
    assert stored(cache_file)[("ab", 0)] == _startup._compile_parts("ab", 0)


@pytest.mark.parametrize("problem", ["corrupt", "foreign", "other build", "not a dict"])
def test_a_cache_it_cannot_trust_is_not_used(cache_file: Path, problem: str) -> None:
    # A well-formed entry for "ab" that would compile to another pattern ("xy"): used, it
    # would show; refused, "ab" compiles as usual.
    parts = _startup._compile_parts("xy", 0)
    write_cache(cache_file, {("ab", 0): parts}, tag="CPython 2.7" if problem == "other build"
                else None)  # fmt: skip
    if problem == "corrupt":
        cache_file.write_bytes(cache_file.read_bytes()[:20])
    elif problem == "foreign":
        cache_file.chmod(0o666)
    elif problem == "not a dict":
        cache_file.write_bytes(marshal.dumps([1, 2]))
    _startup._regex_cache = None
    assert _startup.start_regex_cache()
    try:
        assert_identical(_startup._compile_from_cache("ab", 0), "ab")
    finally:
        _startup.stop_regex_cache()


def test_only_the_window_is_served(cache_file: Path) -> None:
    _startup.start_regex_cache()
    _startup.stop_regex_cache()
    assert _compiler.compile is REAL_COMPILE
    re.compile(r"after[ -]the[ -]window\d")  # compiled as usual, not learnt
    _startup.save_regex_cache()
    assert not cache_file.exists()


START_UP = """
import json, sys
from apckx import _startup
_startup.begin_startup()
import apckx._cli, apckx.cli.import_kek, apckx.ceremonies.import_kek
import botocore.session, botocore.config
botocore.session.Session()
cache = _startup._regex_cache
_startup.end_startup()
print(json.dumps({"misses": len(cache.misses), "cached": len(cache.load())}))
_startup.save_caches()
"""


def test_the_sdk_start_up_patterns_are_identical_from_the_cache(tmp_path: Path) -> None:
    """The real window: the SDK's, the standard library's and apckx's start-up patterns, each
    served from the cache equal to a fresh compile (and the second run compiles none)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["XDG_CACHE_HOME"] = str(tmp_path)

    def run() -> dict[str, int]:
        done = subprocess.run([sys.executable, "-c", START_UP], env=env, capture_output=True,
                              text=True, check=True)  # fmt: skip
        return dict(json.loads(done.stdout))

    first = run()
    assert first["misses"] > 50
    second = run()
    assert second["misses"] == 0 and second["cached"] >= first["misses"]
    (path,) = (tmp_path / "apckx" / "re").iterdir()
    stored = marshal.loads(path.read_bytes())  # noqa: S302 (the test's own file)
    assert stored["interpreter"] == _startup.interpreter_tag()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for (source, flags), parts in stored["patterns"].items():
            assert_identical(_sre.compile(source, *parts), source, flags)


def test_a_ceremony_s_caches_hold_no_key(tmp_path: Path, apc_emulator: Any) -> None:
    """The console script, twice (learning, then served): the KEK appears in no cache file."""
    kek = bytes.fromhex("4F1E2D3C5B6A79880716253443526170F1E2D3C4B5A69788796A5B4C3D2E1F0A")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k != "PYTHONDONTWRITEBYTECODE"}  # fmt: skip
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), AWS_ACCESS_KEY_ID="test",
               AWS_SECRET_ACCESS_KEY="test", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true",
               TEST_KEK=kek.hex())  # fmt: skip
    for run in ("first", "second"):
        work = tmp_path / run
        done = subprocess.run(
            [sys.executable, "-m", "apckx", "import-kek", "--region", "us-east-1",
             "--endpoint-url", apc_emulator.url, "--kek-env", "TEST_KEK", "--alias",
             f"alias/startup-{run}", "--certs-dir", str(work / "certs"), "--journal-dir",
             str(work / "journal"), "--records-dir", str(work / "records")],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    files = [p for p in (tmp_path / "cache" / "apckx").rglob("*") if p.is_file()]
    assert {p.parent.name for p in files} >= {"re", "botocore-events"}
    needles = [kek, kek.hex().encode(), kek.hex().upper().encode()]
    for path in files:
        data = path.read_bytes()
        assert not any(needle in data for needle in needles), path
