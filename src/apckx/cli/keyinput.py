"""Where a cleartext key comes from: file, stdin, environment, masked prompt, components, hex.

Reusable by every command that takes key material. :func:`add_key_arguments` adds the flags
under a configurable name (``--kek``, ``--kek-file``, ``--kek-env`` for import-kek; import-key
passes ``name="key"``), :func:`read_key` reads the key as the flags say. Prompts go through
injectable functions (:class:`KeyInputIO`) so tests can drive them. Nothing here ever prints
key material: only key check values (KCVs) are shown, on stderr.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import stat
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from apckx.errors import InputError, KeyMaterialError

MAX_KEY_FILE_BYTES = 4096
MIN_COMPONENTS = 2
MAX_COMPONENTS = 9
_KCV_RE = re.compile(r"^[0-9A-Fa-f]{4,16}$")

HEX_WARNING = (
    "apckx: warning: --{flag} puts the key on the command line, where other users (ps) and "
    "your shell history can see it; prefer --{flag}-file, --{flag}-env, --prompt or --components"
)


def _default_getpass(prompt: str) -> str:
    """A masked prompt on the terminal; no terminal is an InputError, not an echoing fallback."""
    with warnings.catch_warnings():
        # getpass falls back to an echoing read of stdin (with a GetPassWarning) when it finds
        # no terminal: that is a pipe or a script, where a masked prompt cannot work.
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            return getpass.getpass(prompt, stream=sys.stderr)
        except getpass.GetPassWarning:
            raise NoTerminalError() from None


class NoTerminalError(InputError):
    """A masked prompt was asked for, but there is no terminal to prompt on."""

    def __init__(self) -> None:
        super().__init__(
            "a masked prompt needs a terminal, and there is none: read the key from a file "
            "or a pipe instead (--kek-file -, --key-file -, or an --*-env variable)"
        )


def _ask(io: KeyInputIO, prompt: str, *, what: str) -> str:
    """One masked prompt; end of input (Ctrl-D) is a one-line InputError."""
    try:
        return io.getpass(prompt)
    except EOFError:
        raise InputError(
            f"no {what} entered (end of input at the prompt); nothing was sent"
        ) from None


class KeyInputIO:
    """The edges key input touches; tests replace them.

    A plain class, not a dataclass: ``--help`` imports this module, and ``dataclasses`` (with
    ``inspect``) is a tenth of a command's start-up.
    """

    def __init__(
        self,
        getpass: Callable[[str], str] = _default_getpass,
        stdin: TextIO | None = None,  # None: sys.stdin at call time
        environ: Mapping[str, str] | None = None,  # None: os.environ
        err: TextIO | None = None,  # None: sys.stderr at call time
    ) -> None:
        self.getpass = getpass
        self.stdin = stdin
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.err = err

    def stderr(self) -> TextIO:
        return self.err if self.err is not None else sys.stderr

    def stdin_stream(self) -> TextIO:
        return self.stdin if self.stdin is not None else sys.stdin


DEFAULT_IO: KeyInputIO | None = None
"""Tests (and embedders) set this to drive prompts when they cannot pass ``io``."""


def add_key_arguments(
    parser: argparse.ArgumentParser,
    *,
    name: str = "kek",
    label: str = "KEK",
    required: bool = False,
    prompt_flag: str = "--prompt",
    components_flag: str = "--components",
    expect_kcv_flag: str = "--expect-kcv",
) -> None:
    """Add ``--NAME``, ``--NAME-file``, ``--NAME-env``, ``--prompt``, ``--components``,
    ``--expect-kcv`` (one source at a time). A command reading two keys renames the last
    three for one of them (e.g. ``prompt_flag="--kek-prompt"``); the dests do not change."""
    group = parser.add_argument_group(f"{label} input (one of)")
    sources = group.add_mutually_exclusive_group(required=required)
    dest = name.replace("-", "_")
    sources.add_argument(
        f"--{name}",
        dest=f"{dest}_hex",
        metavar="HEX",
        help=f"the {label} as hex (compatibility only: visible in ps and shell history)",
    )
    sources.add_argument(
        f"--{name}-file",
        dest=f"{dest}_file",
        metavar="PATH",
        help=f"read the {label} (hex) from a file, or '-' for stdin",
    )
    sources.add_argument(
        f"--{name}-env",
        dest=f"{dest}_env",
        metavar="VAR",
        help=f"read the {label} (hex) from an environment variable",
    )
    sources.add_argument(
        prompt_flag,
        dest=f"{dest}_prompt",
        action="store_true",
        help=f"enter the {label} at a masked prompt",
    )
    sources.add_argument(
        components_flag,
        dest=f"{dest}_components",
        metavar="N",
        type=int,
        help=f"N custodians (2 to 9) each enter a component of the {label} at a masked prompt; "
        "each component's KCV and the combined KCV are shown",
    )
    group.add_argument(
        expect_kcv_flag,
        dest=f"{dest}_expect_kcv",
        metavar="KCV",
        help=f"stop before any API call unless the {label}'s check value is KCV",
    )


def key_source_given(args: argparse.Namespace, *, name: str = "kek") -> bool:
    dest = name.replace("-", "_")
    return any(
        getattr(args, f"{dest}_{suffix}", None) not in (None, False)
        for suffix in ("hex", "file", "env", "prompt", "components")
    )


def read_key(
    args: argparse.Namespace,
    algorithm: str,
    *,
    name: str = "kek",
    label: str = "KEK",
    io: KeyInputIO | None = None,
) -> bytes:
    """Read the key the flags point at, check it for ``algorithm`` and ``--expect-kcv``."""
    io = io or DEFAULT_IO or KeyInputIO()
    dest = name.replace("-", "_")
    expect_kcv = getattr(args, f"{dest}_expect_kcv", None)
    if expect_kcv is not None:
        check_kcv_text(expect_kcv, flag="--expect-kcv")
    components = getattr(args, f"{dest}_components", None)
    text_source = _preloaded(args, dest) or _read_text_source(args, name=name, io=io)
    if text_source is not None:
        text, what = text_source
        key = key_from_hex(text, algorithm, what=what)
    elif getattr(args, f"{dest}_prompt", False):
        key = key_from_prompt(algorithm, label=label, io=io)
    elif components is not None:
        key = key_from_components(components, algorithm, label=label, io=io)
    else:
        raise InputError(
            f"no {label} given: use --{name}-file, --{name}-env, --prompt or --components "
            f"(or --{name} HEX)"
        )
    if expect_kcv is not None:
        check_expected_kcv(key, algorithm, expect_kcv, label=label)
    return key


def _read_text_source(
    args: argparse.Namespace, *, name: str, io: KeyInputIO
) -> tuple[str, str] | None:
    """(hex text, flag) from --NAME, --NAME-file or --NAME-env; None for prompts."""
    dest = name.replace("-", "_")
    hex_text = getattr(args, f"{dest}_hex", None)
    file_name = getattr(args, f"{dest}_file", None)
    env_name = getattr(args, f"{dest}_env", None)
    if hex_text is not None:
        print(HEX_WARNING.format(flag=name), file=io.stderr())
        return hex_text, f"--{name}"
    if file_name is not None:
        what = f"--{name}-file"
        return _text_from_file(file_name, what=what, io=io), what
    if env_name is not None:
        what = f"--{name}-env"
        return _text_from_env(env_name, what=what, io=io), what
    return None


def _preloaded(args: argparse.Namespace, dest: str) -> tuple[str, str] | None:
    value = getattr(args, f"_{dest}_preloaded", None)
    return value if isinstance(value, tuple) else None


def preload_key(
    args: argparse.Namespace,
    *,
    name: str = "kek",
    algorithms: Sequence[str],
    io: KeyInputIO | None = None,
) -> None:
    """Read a file, stdin, environment or hex key source now, before any API call, and check
    it is hex of a length one of ``algorithms`` takes (the algorithm itself may only be known
    from APC later); :func:`read_key` then uses what was read. Prompts are left for later."""
    from apckx.crypto.keys import KEY_ALGORITHMS, allowed_lengths

    io = io or DEFAULT_IO or KeyInputIO()
    dest = name.replace("-", "_")
    source = _read_text_source(args, name=name, io=io)
    if source is None:
        return
    text, what = source
    compact = "".join(text.split())
    if not re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", compact):
        raise KeyMaterialError(f"{what}: the key must be hex digits (an even number of them)")
    lengths = sorted({n for a in algorithms if a in KEY_ALGORITHMS for n in allowed_lengths(a)})
    if lengths and len(compact) // 2 not in lengths:
        shown = ", ".join(str(2 * n) for n in lengths)
        raise KeyMaterialError(
            f"{what}: the key is {len(compact)} hex characters; expected one of {shown}"
        )
    setattr(args, f"_{dest}_preloaded", (text, what))


def key_from_hex(text: str, algorithm: str, *, what: str) -> bytes:
    from apckx.crypto.keys import parse_key_hex

    return parse_key_hex(text, algorithm, what=what)


def key_from_file(path_text: str, algorithm: str, *, what: str, io: KeyInputIO) -> bytes:
    """Hex from a file (first non-empty content, whitespace ignored) or '-' for stdin."""
    return key_from_hex(_text_from_file(path_text, what=what, io=io), algorithm, what=what)


def _text_from_file(path_text: str, *, what: str, io: KeyInputIO) -> str:
    """The hex text of a key file or '-' (stdin), whitespace removed; at most
    MAX_KEY_FILE_BYTES + 1 bytes are ever read."""
    if path_text == "-":
        data = io.stdin_stream().read(MAX_KEY_FILE_BYTES + 1)
        source = "stdin"
    else:
        from apckx._hardening import read_regular_file

        content = read_regular_file(path_text, limit=MAX_KEY_FILE_BYTES, what=what)
        if content.mode & (stat.S_IRWXG | stat.S_IRWXO):
            print(
                f"apckx: warning: {path_text} is readable by other users; chmod 600 it",
                file=io.stderr(),
            )
        try:
            data = content.data.decode("ascii")
        except UnicodeDecodeError:
            raise KeyMaterialError(f"{what}: {path_text} does not hold hex text") from None
        source = path_text
    if len(data) > MAX_KEY_FILE_BYTES:
        raise InputError(f"{what}: {source} is too large to hold a key")
    if not data.strip():
        raise KeyMaterialError(f"{what}: {source} is empty")
    return "".join(data.split())


def key_from_env(var: str, algorithm: str, *, what: str, io: KeyInputIO) -> bytes:
    return key_from_hex(_text_from_env(var, what=what, io=io), algorithm, what=what)


def _text_from_env(var: str, *, what: str, io: KeyInputIO) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
        raise InputError(f"{what}: {var[:40]!r} is not an environment variable name")
    value = io.environ.get(var)
    if value is None:
        raise InputError(f"{what}: environment variable {var} is not set")
    if not value.strip():
        raise KeyMaterialError(f"{what}: environment variable {var} is empty")
    return value


def key_from_prompt(algorithm: str, *, label: str, io: KeyInputIO) -> bytes:
    text = _ask(io, f"{label} ({algorithm}, hex): ", what=label)
    key = key_from_hex(text, algorithm, what=label)
    print(f"{label} KCV: {kcv_of(key, algorithm)}", file=io.stderr())
    return key


def key_from_components(count: int, algorithm: str, *, label: str, io: KeyInputIO) -> bytes:
    """Each custodian enters a component at a masked prompt; the components are XORed."""
    from apckx.crypto.components import combine_components
    from apckx.crypto.keys import check_key_material

    if not MIN_COMPONENTS <= count <= MAX_COMPONENTS:
        raise InputError(
            f"--components must be between {MIN_COMPONENTS} and {MAX_COMPONENTS} (got {count})"
        )
    err = io.stderr()
    parts: list[bytes] = []
    for index in range(1, count + 1):
        what = f"component {index} of {count}"
        text = _ask(io, f"{label} {what} ({algorithm}, hex): ", what=f"{label} {what}")
        component = key_from_hex(text, algorithm, what=what)
        if component in parts:
            raise KeyMaterialError(f"{what} repeats an earlier component")
        parts.append(component)
        print(f"{label} {what} KCV: {kcv_of(component, algorithm)}", file=err)
    key = combine_components(parts)
    check_key_material(key, algorithm, what=f"the combined {label}")
    print(f"{label} (combined) KCV: {kcv_of(key, algorithm)}", file=err)
    return key


def kcv_of(key: bytes, algorithm: str) -> str:
    """The KCV APC shows for a key of ``algorithm`` (ANSI_X9_24 for TDES, CMAC for AES...)."""
    from apckx.crypto.attributes import default_kcv_algorithm
    from apckx.crypto.kcv import compute_kcv

    return compute_kcv(key, default_kcv_algorithm(algorithm), key_algorithm=algorithm)


def check_kcv_text(text: str, *, flag: str) -> str:
    if not _KCV_RE.match(text.strip()):
        raise InputError(f"{flag} must be 4 to 16 hex characters (a key check value)")
    return text.strip().upper()


def check_expected_kcv(key: bytes, algorithm: str, expected: str, *, label: str = "key") -> None:
    """Raise KeyMaterialError unless ``key``'s KCV is ``expected`` (constant time)."""
    from apckx.crypto.kcv import kcv_matches

    expected_hex = check_kcv_text(expected, flag="--expect-kcv")
    actual_hex = kcv_of(key, algorithm)
    if not kcv_matches(actual_hex[: len(expected_hex)], expected_hex):
        raise KeyMaterialError(
            f"the {label}'s KCV is {actual_hex}, not {expected_hex} (--expect-kcv): "
            "wrong key or wrong components; nothing was sent to APC"
        )


def describe_key_source(args: Any, *, name: str = "kek") -> str:
    """A words-only description of where the key came from (for the audit record)."""
    dest = name.replace("-", "_")
    if getattr(args, f"{dest}_hex", None) is not None:
        return "command line (hex)"
    if getattr(args, f"{dest}_file", None) is not None:
        return "stdin" if args.__dict__[f"{dest}_file"] == "-" else "file"
    if getattr(args, f"{dest}_env", None) is not None:
        return "environment variable"
    if getattr(args, f"{dest}_prompt", False):
        return "masked prompt"
    if getattr(args, f"{dest}_components", None) is not None:
        return f"{getattr(args, f'{dest}_components')} components"
    return "generated"
