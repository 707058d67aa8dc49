"""``apckx kcv``: a key's check value, from a file, stdin, the prompt or components.

The key algorithm comes from ``--key-algorithm``, or, for a key read from a file, stdin or
the environment, from its length by this rule: 16 bytes TDES_2KEY, 24 TDES_3KEY, 32 AES_256,
28/48/64 HMAC_SHA224/384/512 (say ``--key-algorithm`` for AES_128, AES_192 or HMAC_SHA256).
The prompt and components need ``--key-algorithm``: each entry is checked as it is typed.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from typing import Any

from apckx.errors import InputError

INFERRED_ALGORITHMS = {
    16: "TDES_2KEY",
    24: "TDES_3KEY",
    28: "HMAC_SHA224",
    32: "AES_256",
    48: "HMAC_SHA384",
    64: "HMAC_SHA512",
}
ALTERNATIVES = {16: "AES_128", 24: "AES_192", 32: "HMAC_SHA256"}
KCV_ALGORITHMS = ("CMAC", "ANSI_X9_24", "HMAC")


def add_key_source_arguments(
    parser: argparse.ArgumentParser, *, label: str = "key", required: bool = False
) -> None:
    """``--key-file PATH|-``, ``--key-env VAR``, ``--key-prompt``, ``--key-components N``.

    Destinations match :func:`apckx.cli.keyinput.read_key` with ``name="key"``, so the
    shared key-input code reads them. No hex-on-the-command-line form.
    """
    group = parser.add_argument_group(f"{label} input (one of)")
    sources = group.add_mutually_exclusive_group(required=required)
    sources.add_argument(
        "--key-file",
        dest="key_file",
        metavar="PATH",
        help=f"read the {label} (hex) from a file, or '-' for stdin",
    )
    sources.add_argument(
        "--key-env",
        dest="key_env",
        metavar="VAR",
        help=f"read the {label} (hex) from an environment variable",
    )
    sources.add_argument(
        "--key-prompt",
        dest="key_prompt",
        action="store_true",
        help=f"enter the {label} at a masked prompt",
    )
    sources.add_argument(
        "--key-components",
        dest="key_components",
        metavar="N",
        type=int,
        help=f"N custodians (2 to 9) each enter a component of the {label} at a masked prompt",
    )
    group.add_argument(
        "--key-expect-kcv", dest="key_expect_kcv", metavar="KCV",
        help=f"stop unless the {label}'s check value is KCV",
    )  # fmt: skip


def infer_key_algorithm(length: int) -> str:
    try:
        return INFERRED_ALGORITHMS[length]
    except KeyError:
        raise InputError(
            f"cannot infer the key algorithm from {length} bytes: pass --key-algorithm "
            "(16 bytes TDES_2KEY, 24 TDES_3KEY, 32 AES_256, 28/48/64 HMAC_SHA224/384/512)"
        ) from None


def _peek_key_text(args: argparse.Namespace) -> tuple[str, str]:
    """The raw hex text of a file/stdin/env key source and where it came from."""
    from apckx.cli.keyinput import MAX_KEY_FILE_BYTES

    if args.key_file == "-":
        return sys.stdin.read(MAX_KEY_FILE_BYTES + 1), "stdin"
    if args.key_file is not None:
        from apckx._hardening import read_regular_file

        content = read_regular_file(args.key_file, limit=MAX_KEY_FILE_BYTES, what="--key-file")
        try:
            return content.data.decode("ascii"), str(args.key_file)
        except UnicodeDecodeError:
            raise InputError(f"--key-file: cannot read hex text from {args.key_file}") from None
    if args.key_env is not None:
        return os.environ.get(args.key_env, ""), f"${args.key_env}"
    raise InputError("--key-prompt and --key-components need --key-algorithm")


def read_key_with_algorithm(
    args: argparse.Namespace, algorithm: str | None, *, label: str = "key"
) -> tuple[bytes, str, bool]:
    """Read the key the flags name; returns (key, algorithm, inferred?)."""
    from apckx.cli.keyinput import KeyInputIO, key_source_given, read_key

    if not key_source_given(args, name="key"):
        raise InputError(
            f"no {label} given: use --key-file PATH|-, --key-env VAR, --key-prompt or "
            "--key-components N"
        )
    if algorithm is not None:
        return read_key(args, algorithm.upper(), name="key", label=label), algorithm.upper(), False
    text, source = _peek_key_text(args)
    compact = "".join(text.split())
    if not compact:
        raise InputError(f"no {label} in {source}")
    inferred = infer_key_algorithm(len(compact) // 2)
    key_io = KeyInputIO(stdin=io.StringIO(text)) if args.key_file == "-" else KeyInputIO()
    return read_key(args, inferred, name="key", label=label, io=key_io), inferred, True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_key_source_arguments(parser, required=True)
    parser.add_argument(
        "--key-algorithm",
        metavar="ALG",
        help="TDES_2KEY, TDES_3KEY, AES_128, AES_192, AES_256 or HMAC_SHA224..512 "
        "(default: inferred from the length; see the rule in the docs)",
    )
    parser.add_argument(
        "--kcv-algorithm",
        choices=KCV_ALGORITHMS,
        help="default: APC's for the algorithm (ANSI_X9_24 for TDES, CMAC for AES, HMAC)",
    )


def compute(key: bytes, algorithm: str, kcv_algorithm: str | None) -> dict[str, Any]:
    from apckx.crypto.attributes import default_kcv_algorithm
    from apckx.crypto.kcv import compute_kcv

    chosen = kcv_algorithm or default_kcv_algorithm(algorithm)
    return {
        "key_algorithm": algorithm,
        "kcv_algorithm": chosen,
        "kcv": compute_kcv(key, chosen, key_algorithm=algorithm),
    }


def run(args: argparse.Namespace) -> int:
    from apckx.cli._output import format_rows, print_json

    key, algorithm, inferred = read_key_with_algorithm(args, args.key_algorithm)
    result = compute(key, algorithm, args.kcv_algorithm)
    result["key_algorithm_inferred"] = inferred
    if args.output == "json":
        print_json(result)
        return 0
    note = None
    if inferred:
        alternative = ALTERNATIVES.get(len(key))
        note = f"inferred from {len(key)} bytes" + (
            f"; pass --key-algorithm {alternative} if it is one" if alternative else ""
        )
    print(
        format_rows(
            [
                ("Key algorithm", algorithm + (f" ({note})" if note else "")),
                ("KCV algorithm", result["kcv_algorithm"]),
                ("KCV", result["kcv"]),
            ],
            indent="",
        )
    )
    return 0
