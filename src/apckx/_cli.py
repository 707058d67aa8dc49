"""Command-line entry point: parse, call the library, print. Nothing else lives here.

Sub-commands are loaded lazily: ``apckx --help`` imports no boto3 and no crypto, and
``apckx import-kek`` imports only what the ceremony needs. Each sub-command lives in
``apckx.cli.<module>`` and exposes ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
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
    "cleanup": _Command(
        "apckx.cli.cleanup", "roll back a ceremony or remove resources by alias", True
    ),
    "tr31": _Command("apckx.cli.tr31", "TR-31 key block tools (inspect)", False),
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
    parser.add_argument("--version", action="version", version=f"apckx {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = _chosen_command(argv)
    for name, command in COMMANDS.items():
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
    """Run apckx. Returns the process exit code; never raises."""
    disable_core_dumps()  # before any key is read: no core file holds a typed component
    args_list = list(sys.argv[1:] if argv is None else argv)
    option = _dash_dash_value(args_list)
    if option is not None:
        print(f"apckx: error: {option} needs a value ('--' is not one)", file=sys.stderr)
        return 2
    try:
        parser = build_parser(args_list)
        args = parser.parse_args(args_list)
        return _load(args.command).run(args)
    except SystemExit as exc:  # argparse: --help (0) or misuse (2)
        return exc.code if isinstance(exc.code, int) else 2
    except ApckxError as exc:
        print(f"apckx: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("apckx: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
