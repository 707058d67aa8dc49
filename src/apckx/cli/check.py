"""``apckx check KEY``: prove a key in APC works for its usage, on the data plane.

The recipe is chosen from the key's usage (``apckx.ceremonies.check``). With the cleartext
(``--key-file``, ``--key-env``, ``--prompt``, ``--components``) APC's answers are compared with
a local computation; without it, with ``--expect NAME=VALUE`` values your HSM produced for the
same test inputs (``--input NAME=VALUE``). Text summary or ``--output json``; exit 1 on any
mismatch or APC error, 2 on bad input (before any call).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from apckx.cli import keyinput
from apckx.cli._aws import add_retry_arguments, check_aws_options, make_service


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from apckx.ceremonies.check import EXPECTS, INPUTS

    parser.add_argument("key_id", metavar="KEY", help="the key in APC (alias/... or ARN)")
    keyinput.add_key_arguments(parser, name="key", label="key")
    parser.add_argument(
        "--input",
        dest="inputs",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="test data (repeatable): " + ", ".join(INPUTS),
    )
    parser.add_argument(
        "--expect",
        dest="expects",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a value your HSM produced for the same inputs (repeatable): " + ", ".join(EXPECTS),
    )
    add_retry_arguments(parser)


def _key_algorithms() -> list[str]:
    from apckx.crypto.keys import KEY_ALGORITHMS

    return list(KEY_ALGORITHMS)


def run(args: argparse.Namespace, *, io: keyinput.KeyInputIO | None = None) -> int:
    from apckx.ceremonies.check import (
        EXPECTS,
        INPUTS,
        check_key,
        check_usage_supported,
        parse_pairs,
    )
    from apckx.service.data import make_data_service

    # Every local check before any call: pairs, options, a file/env key's hex.
    inputs = parse_pairs(args.inputs, flag="--input", allowed=INPUTS)
    expects = parse_pairs(args.expects, flag="--expect", allowed=EXPECTS)
    check_aws_options(args)
    if args.key_expect_kcv is not None:
        keyinput.check_kcv_text(args.key_expect_kcv, flag="--expect-kcv")
    keyinput.preload_key(args, name="key", algorithms=_key_algorithms(), io=io)
    apc = make_service(args)
    key = apc.get_key(args.key_id)
    check_usage_supported(str(key["KeyAttributes"]["KeyUsage"]))
    cleartext = None
    if keyinput.key_source_given(args, name="key"):
        algorithm = str(key["KeyAttributes"]["KeyAlgorithm"])
        cleartext = keyinput.read_key(args, algorithm, name="key", label="key", io=io)
    try:
        data = make_data_service(apc)
        result = check_key(apc, data, key, cleartext=cleartext, inputs=inputs, expects=expects)
    finally:
        del cleartext
    if args.output == "json":
        from apckx.cli._output import print_json

        print_json(result.to_record())
    else:
        _print_text(result)
    if not result.ok:
        print(f"apckx: check {result.outcome}: {args.key_id}", file=sys.stderr)
        return 1
    return 0


def _print_text(result: Any) -> None:
    from apckx.cli._output import print_rows, print_table

    print_rows(
        f"apckx check: {result.outcome.upper()}",
        [
            ("Key", result.key_arn),
            ("Usage", result.key_usage),
            ("Algorithm", result.key_algorithm),
            ("KCV", result.key_check_value),
            ("Compared with", result.compared_with),
        ],
    )
    print()
    print_table(
        ["CHECK", "OUTCOME", "APC CALLS", "DETAIL"],
        [[s.check, s.outcome, ",".join(s.operations) or "-", s.detail] for s in result.steps],
    )
