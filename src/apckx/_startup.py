"""The console script's start-up: the work before its first API call, made cheaper.

Two things are paused or cached between :func:`begin_startup` (``apckx._cli.console_main``,
first thing) and :func:`end_startup` (once the SDK client is built,
:func:`apckx.service.client.make_client`, or a long-running command begins: the emulator).
In-process callers (tests) never begin one, so nothing here changes for them.

**The cyclic garbage collector.** Importing botocore and cryptography and building a client
allocate some 100,000 objects that live as long as the process; the collector walks them over
and over while they are created (about 35 ms of CPU here, before the first call goes out) and
frees nothing. It is paused, and at the end what was allocated so far is moved to the
permanent generation (``gc.freeze``) so later collections skip it; collection then runs as
usual for the rest of the run.

**Regular expressions.** The SDK's import (urllib3, botocore, http.client, email...) and
apckx's own modules compile some 140 patterns before the first call, ~20 ms of CPU spent in
the pure-Python ``re._parser`` and ``re._compiler``, the same every run. While start-up lasts,
``re._compiler.compile`` is served from a cache of what that compilation produced (the flags,
the code list, the group names), handed to ``_sre.compile`` exactly as ``re._compiler``
hands it over: so every pattern is a genuine ``re.Pattern`` (``isinstance``, ``.pattern``,
``.flags``, ``.groupindex`` as ever), equal (``==`` compares the compiled code) to a fresh
compile. What a run compiled anew is learnt at the end of the run (:func:`save_regex_cache`):
each is compiled again from its text and stored only if the result equals the pattern ``re``
itself returned and compiling it raised no warning (a cached pattern would skip the warning).
Patterns with ``re.DEBUG`` or ``re.LOCALE`` are never cached. The cache is one ``marshal``
file per interpreter build (named after ``_sre.MAGIC``, holding ``sys.version`` and used only
by that exact build), private to the user as the SDK data cache is
(:func:`read_private_cache`); anything wrong with it (absent, foreign, corrupt, another build,
refused by ``_sre``) means compiling as usual. Only the start-up window is
served and learnt: patterns compiled later in a run (from data) are never stored, and the
patterns of the window are the modules' own constants and the SDK's public model data.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

_paused = False
_console = False


def begin_startup() -> None:
    """The console script starts: pause the collector, serve ``re`` from its cache."""
    global _console
    _console = True
    pause_gc()
    start_regex_cache()


def in_console_script() -> bool:
    """True in the ``apckx`` process (:func:`begin_startup` ran), False for in-process callers:
    only the console script saves what its caches learnt (:func:`save_caches`)."""
    return _console


def end_startup() -> None:
    """Start-up is over (the client is built): collect as usual, compile as usual."""
    resume_gc()
    stop_regex_cache()


def pause_gc() -> None:
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_gc() -> None:
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


# -- what is saved at exit ---------------------------------------------------------------------

_savers: list[Callable[[], None]] = []


def save_at_exit(saver: Callable[[], None]) -> None:
    """Have :func:`save_caches` call ``saver`` (a cache that learnt something this run)."""
    if saver not in _savers:
        _savers.append(saver)


def save_caches() -> None:
    """The console script, once the command is done: write what the caches learnt (patterns,
    the SDK's event aliases). Best effort: a cache that cannot be written, or fails
    in any way, is skipped; the command's outcome is already decided."""
    for saver in [save_regex_cache, *_savers]:
        try:
            saver()
        except Exception:  # noqa: S112 (a cache is an optimisation, never a failure)
            continue


# -- private cache files (the caches here; the SDK's data and event aliases: service/client.py)


def cache_dir(name: str) -> str:
    """``$XDG_CACHE_HOME/apckx/NAME`` (default ``~/.cache/apckx/NAME``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "apckx", name)


def private_to_me(path: str) -> bool:
    """``path`` (not followed if a link) belongs to this user and nobody else may write it."""
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def read_private_cache(directory: str, path: str) -> bytes | None:
    """The bytes of a cache file, or None unless it and its directory are private to me."""
    if not (private_to_me(directory) and private_to_me(path)):
        return None
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def usable_cache_dir(directory: str) -> bool:
    """``directory`` exists (created 0700 if need be) and is private to me: worth learning
    something for (learning costs; a cache that cannot be written would pay it every run)."""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError:
        return False
    return private_to_me(directory)


def write_private_cache(directory: str, path: str, data: bytes) -> None:
    """Best effort: 0700 directory, 0600 file, written atomically; any failure is ignored."""
    import contextlib

    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not private_to_me(directory):
            return
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


# -- the regex cache ---------------------------------------------------------------------------

REGEX_CACHE_MAX = 2048  # entries; an import-kek start-up compiles ~140
_Key = tuple[str | bytes, int]
_Parts = tuple[int, list[int], int, dict[str, int], tuple[str | None, ...]]


class _RegexCache:
    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: dict[_Key, _Parts] | None = None  # loaded at the first compile
        self.misses: dict[_Key, Any] = {}  # key -> the pattern re compiled

    def load(self) -> dict[_Key, _Parts]:
        if self.entries is None:
            import marshal

            self.entries = {}
            data = read_private_cache(os.path.dirname(self.path), self.path)
            if data is not None:
                try:
                    loaded = marshal.loads(data)  # noqa: S302 (our own file, checked above)
                except (ValueError, EOFError, TypeError):
                    loaded = None
                if (
                    isinstance(loaded, dict)
                    and loaded.get("interpreter") == interpreter_tag()
                    and isinstance(loaded.get("patterns"), dict)
                ):
                    self.entries = loaded["patterns"]
        return self.entries


_regex_cache: _RegexCache | None = None
_original_compile: Any = None


def regex_cache_path() -> str:
    """The cache file of this interpreter build (which :func:`interpreter_tag` names in full)."""
    sre = _sre_module()
    name = f"patterns-{sys.implementation.cache_tag}-{sre.MAGIC}-{sre.CODESIZE}.marshal"
    return os.path.join(cache_dir("re"), name)


def interpreter_tag() -> str:
    """The build the cached parts are valid for: ``_sre``'s code format is internal to it."""
    sre = _sre_module()
    return f"{sys.version}|{sys.implementation.cache_tag}|{sre.MAGIC}|{sre.CODESIZE}"


def _sre_module() -> Any:
    """``_sre``, the C engine under ``re`` (untyped: private)."""
    import importlib

    return importlib.import_module("_sre")


def _re_internals() -> tuple[Any, Any]:
    """``re._compiler`` and ``re._parser`` (Python 3.11+), untyped: they are private."""
    import re

    internals: Any = re
    return getattr(internals, "_compiler", None), getattr(internals, "_parser", None)


def start_regex_cache(path: str | None = None) -> bool:
    """Serve ``re._compiler.compile`` from the cache until :func:`stop_regex_cache`; False
    (and nothing changed) if this ``re`` does not look like the one the cache was made for."""
    global _regex_cache, _original_compile
    compiler, parser = _re_internals()
    if _regex_cache is not None or not (
        callable(getattr(compiler, "compile", None))
        and callable(getattr(compiler, "_code", None))
        and callable(getattr(parser, "parse", None))
    ):
        return False
    _regex_cache = _RegexCache(path or regex_cache_path())
    _original_compile = compiler.compile
    compiler.compile = _compile_from_cache
    return True


def stop_regex_cache() -> None:
    """Compile as usual again (what was learnt stays for :func:`save_regex_cache`)."""
    compiler, _parser = _re_internals()
    if _original_compile is not None and compiler.compile is _compile_from_cache:
        compiler.compile = _original_compile


def _compile_from_cache(p: Any, flags: int = 0) -> Any:
    import re

    cache = _regex_cache
    if (
        cache is None
        or type(p) not in (str, bytes)
        or flags & (re.DEBUG | re.LOCALE)
        or _re_internals()[0].compile is not _compile_from_cache  # stopped meanwhile
    ):
        return _original_compile(p, flags)
    key = (p, int(flags))  # a plain int (re passes RegexFlag values on): marshal takes no enum
    parts = cache.load().get(key)
    if parts is not None:
        try:
            return _sre_module().compile(p, *parts)
        except Exception:  # not what this _sre takes: compile it as usual, and learn it again
            cache.load().pop(key, None)
    pattern = _original_compile(p, flags)
    if len(cache.misses) < REGEX_CACHE_MAX:
        cache.misses[key] = pattern
    return pattern


def _compile_parts(p: str | bytes, flags: int) -> _Parts:
    """What ``re._compiler.compile`` hands to ``_sre.compile`` after the pattern itself (the
    opcodes as plain ints: ``marshal`` takes no int subclass)."""
    compiler, parser = _re_internals()
    parsed = parser.parse(p, flags)
    code = [int(op) for op in compiler._code(parsed, flags)]
    groupindex = dict(parsed.state.groupdict)
    indexgroup: list[str | None] = [None] * parsed.state.groups
    for name, index in groupindex.items():
        indexgroup[index] = name
    return flags | parsed.state.flags, code, parsed.state.groups - 1, groupindex, tuple(indexgroup)


def _learn(key: _Key, pattern: Any) -> _Parts | None:
    """The parts of ``key``'s pattern, if they rebuild exactly ``pattern`` without a warning."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parts = _compile_parts(*key)
            rebuilt = _sre_module().compile(key[0], *parts)
        except Exception:
            return None
    same = (
        rebuilt == pattern  # flags, code and pattern text
        and rebuilt.groups == pattern.groups
        and rebuilt.groupindex == pattern.groupindex
    )
    return parts if same and not caught else None


def save_regex_cache() -> None:
    """Learn what the start-up window compiled anew and write the cache (best effort); the
    console script calls this when the command is done, off the critical path."""
    cache = _regex_cache
    if cache is None or not cache.misses or not usable_cache_dir(os.path.dirname(cache.path)):
        return
    import marshal

    entries = dict(cache.load())
    learnt = 0
    for key, pattern in cache.misses.items():
        if len(entries) >= REGEX_CACHE_MAX:
            break
        parts = _learn(key, pattern)
        if parts is not None:
            entries[key] = parts
            learnt += 1
    cache.misses.clear()
    if not learnt:
        return
    try:
        data = marshal.dumps({"interpreter": interpreter_tag(), "patterns": entries})
    except ValueError:
        return
    write_private_cache(os.path.dirname(cache.path), cache.path, data)
    cache.entries = entries
