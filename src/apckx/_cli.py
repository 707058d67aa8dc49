"""Command-line entry point: parse, call the library, print. Nothing else lives here.

Sub-commands are loaded lazily: ``apckx --help`` imports no boto3 and no crypto, and
``apckx import-kek`` imports only what the ceremony needs. Each sub-command lives in
``apckx.cli.<module>`` and exposes ``add_arguments(parser)`` and ``run(args) -> int``.

:func:`main` never raises and never prints a traceback: ApckxError is its one line and exit
code; a closed stdout (``apckx ... | head``) ends quietly, as pip does; a botocore error that
escaped the service layer, an OSError, or any other unexpected exception is one line too (the
last-resort guard), exit 1. The line for a bug names the exception type and where it was
raised, never its message (which could hold anything, key material included).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NamedTuple, Protocol, cast

from apckx import __version__
from apckx._hardening import disable_core_dumps
from apckx.errors import ApckxError


class _Command(NamedTuple):
    module: str
    help: str
    uses_aws: bool


COMMANDS: dict[str, _Command] = {
    "import-kek": _Command(
        "apckx.cli.import_kek", "import a KEK into APC over ECDH + TR-31 (the key ceremony)", True
    ),
    "import-key": _Command(
        "apckx.cli.import_key", "import a working key under a KEK, as a key block, or over ECDH",
        True,
    ),
    "export-key": _Command(
        "apckx.cli.export_key", "export a key from APC over ECDH or under a KEK", True
    ),
    "migrate": _Command(
        "apckx.cli.migrate", "import many keys from a manifest, paced at APC's quota", True
    ),
    "check": _Command(
        "apckx.cli.check", "prove a key in APC works: run the data-plane operation its usage fits",
        True,
    ),
    "cleanup": _Command(
        "apckx.cli.cleanup", "roll back a ceremony or remove resources by alias", True
    ),
    "ceremonies": _Command(
        "apckx.cli.ceremonies", "list the ceremonies the journals hold; show one", False
    ),
    "tr31": _Command("apckx.cli.tr31", "TR-31 key block tools (inspect)", False),
    "tr34": _Command("apckx.cli.tr34", "TR-34 key block tools (inspect: no key needed)", False),
    "kcv": _Command("apckx.cli.kcv", "compute a key's check value (KCV)", False),
    "demo": _Command(
        "apckx.cli.demo", "rehearse the KEK ceremony against the embedded emulator", False
    ),
    "emulator": _Command("apckx.cli.emulator", "run the local APC emulator", False),
}


class _CommandModule(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    """aws-cli style options shared by every command that talks to APC."""
    group = parser.add_argument_group("AWS options")
    group.add_argument("--region", help="AWS region (default: from the profile or environment)")
    group.add_argument("--profile", help="named AWS profile")
    group.add_argument(
        "--endpoint-url",
        help="APC control-plane endpoint, e.g. the emulator's http://127.0.0.1:PORT "
        "(default: AWS_ENDPOINT_URL_PAYMENT_CRYPTOGRAPHY or the AWS endpoint)",
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output options")
    group.add_argument("--output", choices=("text", "json"), default="text", help="output format")
    group.add_argument(
        "--debug", action="store_true", help="log API calls and timings (never key material)"
    )


class _VersionAction(argparse.Action):
    """``--version``: apckx and the versions that decide its behaviour, looked up only when
    asked (``--help`` pays nothing for it)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the versions and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kw: object) -> None:
        print(version_text())
        parser.exit()


def version_text() -> str:
    """``apckx 0.1.0 (botocore 1.44.8, boto3 1.44.8, cryptography 44.0.0, Python 3.11.7)``."""
    import platform
    from importlib import metadata

    def installed(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    parts = [f"{name} {installed(name)}" for name in ("botocore", "boto3", "cryptography")]
    parts.append(f"Python {platform.python_version()}")
    return f"apckx {__version__} ({', '.join(parts)})"


def _chosen_command(argv: Sequence[str]) -> str | None:
    for token in argv:
        if not token.startswith("-"):
            return token if token in COMMANDS else None
    return None


def _load(name: str) -> _CommandModule:
    return cast(_CommandModule, importlib.import_module(COMMANDS[name].module))


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apckx",
        description="Key exchange with AWS Payment Cryptography (APC): ECDH + TR-31 key "
        "ceremonies, working-key import and export, migration, and a local APC emulator.",
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # A known command gets only its own sub-parser (a dozen empty ones cost ~3 ms); without
    # one (``apckx --help``, a mistyped name) every command is listed, its options unloaded.
    chosen = _chosen_command(argv)
    for name, command in COMMANDS.items():
        if chosen is not None and name != chosen:
            continue
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        if name != chosen:
            continue
        _load(name).add_arguments(sub)
        if command.uses_aws:
            add_aws_options(sub)
        add_output_options(sub)
    return parser


def _dash_dash_value(args_list: Sequence[str]) -> str | None:
    """An option given ``--`` as its value (``--kek=--``, ``-t--``), or None.

    Python 3.11's argparse drops such a ``--`` and hands the command an empty list instead of
    a string; refuse it up front as a usage error.
    """
    for arg in args_list:
        if arg == "--":
            return None
        if arg.startswith("--") and arg.endswith("=--"):
            return arg[: -len("=--")]
        if len(arg) == 4 and arg[0] == "-" and arg[1].isalpha() and arg[2:] == "--":
            return arg[:2]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run apckx. Returns the process exit code; never raises, never prints a traceback."""
    disable_core_dumps()  # before any key is read: no core file holds a typed component
    try:
        code = _run(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:
        _silence_stdout()
        return 1
    except KeyboardInterrupt:
        print("apckx: interrupted", file=sys.stderr)
        return 130
    return code


def _run(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    option = _dash_dash_value(args_list)
    if option is not None:
        print(f"apckx: error: {option} needs a value ('--' is not one)", file=sys.stderr)
        return 2
    try:
        parser = build_parser(args_list)
        args = parser.parse_args(args_list)
        if args.command == "emulator":  # runs until interrupted: collect as usual
            from apckx._startup import end_startup

            end_startup()
        return _load(args.command).run(args)
    except SystemExit as exc:  # argparse: --help (0) or misuse (2)
        return exc.code if isinstance(exc.code, int) else 2
    except ApckxError as exc:
        print(f"apckx: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (BrokenPipeError, KeyboardInterrupt):
        raise
    except Exception as exc:  # the last-resort guard: one line, never a traceback
        print(f"apckx: error: {describe_unexpected_error(exc)}", file=sys.stderr)
        return 1


def describe_unexpected_error(exc: BaseException) -> str:
    """One line for an exception no layer turned into an ApckxError."""
    module = type(exc).__module__
    if module.startswith(("botocore", "urllib3")):  # an SDK error the service layer missed
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = f": {lines[0]}" if lines else ""
        return f"AWS SDK error {type(exc).__name__}{detail} (run with --debug for the calls)"
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename is not None else ""
        return f"{exc.strerror}{where}"
    return (
        f"internal error {type(exc).__name__} at {_raised_at(exc)}: a bug in apckx; please report "
        "it with this line and the command (leave out any key)"
    )


def _raised_at(exc: BaseException) -> str:
    """``apckx/ceremonies/import_kek.py:123``: the innermost apckx frame, else the innermost."""
    tb = exc.__traceback__
    innermost = apckx_frame = None
    while tb is not None:
        path = tb.tb_frame.f_code.co_filename
        marker = path.rfind(f"{os.sep}apckx{os.sep}")
        innermost = f"{os.path.basename(path)}:{tb.tb_lineno}"
        if marker >= 0:
            apckx_frame = f"{path[marker + 1 :]}:{tb.tb_lineno}"
        tb = tb.tb_next
    return apckx_frame or innermost or "unknown place"


def _silence_stdout() -> None:
    """After EPIPE: point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (embedded)
        pass


def console_main() -> int:
    """The ``apckx`` console script (and ``python -m apckx``): :func:`main`, then a quick exit.

    By the time :func:`main` returns, everything apckx writes has been flushed and fsync'd
    (journal, records, keys: each write is durable before the step that depends on it) and
    its worker threads are joined. What the interpreter would still do is free every object of
    the ~300 modules a ceremony imports, module by module: 50 to 100 ms of CPU on a loaded
    machine, as long as a round trip to APC, for nothing the user can see. So, as mypy does,
    the process then runs the ``atexit`` handlers (logging's flush among them), flushes
    stdout and stderr, and ends with ``os._exit``. Should any other thread still be running
    (none does today), the ordinary exit is kept, which waits for it.
    """
    import atexit
    import threading

    from apckx import _startup

    _startup.begin_startup()  # until the SDK client is built
    code = main()
    _startup.end_startup()  # a command that built no client
    try:
        _startup.save_caches()  # what start-up learnt anew, for the next run
    except KeyboardInterrupt:  # the command is done (and said so): a cache can wait
        pass
    if any(t is not threading.main_thread() and t.is_alive() for t in threading.enumerate()):
        return code  # the ordinary exit joins it
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe at the very end: nothing left to say
            if stream is sys.stdout and code == 0:
                code = 1
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(console_main())
