"""``apckx cleanup``: roll back a ceremony from its journal, or remove resources by alias.

    apckx cleanup --ceremony kek-20260101T120000Z-1a2b3c4d      # what that ceremony created
    apckx cleanup --alias alias/import-kek-ecdh-result ...       # e.g. the AWS sample's aliases

A ceremony's resources are found in its journal, its key log and APC's ``apckx:ceremony``
tags; only keys tagged with the ceremony's id are deleted. Aliases are deleted (or pointed
back where ``--replace`` moved them from); keys are scheduled for deletion
(``--delete-in-days``, 3 to 180, default 7; ``aws payment-cryptography restore-key`` undoes
it). ``--dry-run`` makes only read-only calls and prints what the real run would do, skips
included.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from apckx.ceremonies.cleanup import DEFAULT_DELETE_DAYS, CleanupAction
from apckx.ceremonies.journal import DEFAULT_JOURNAL_DIR
from apckx.cli._aws import add_retry_arguments, check_aws_options, make_service
from apckx.cli._output import print_json, print_table
from apckx.errors import CeremonyError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("what to remove (one of)")
    source = what.add_mutually_exclusive_group(required=True)
    source.add_argument("--ceremony", metavar="ID", help="roll back this ceremony (journal)")
    source.add_argument(
        "--alias",
        dest="aliases",
        metavar="NAME",
        nargs="+",
        help="delete these aliases and schedule their keys for deletion",
    )
    parser.add_argument(
        "--delete-in-days",
        type=int,
        default=DEFAULT_DELETE_DAYS,
        help=f"keys are deleted after this many days, 3 to 180 (default {DEFAULT_DELETE_DAYS})",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="read-only calls only: print what the real run would do, skips included",
    )
    parser.add_argument("--journal-dir", type=Path, default=DEFAULT_JOURNAL_DIR)
    add_retry_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from apckx.ceremonies.cleanup import (
        check_delete_days,
        plan_alias_cleanup,
        plan_ceremony_cleanup,
        run_ceremony_cleanup,
        run_cleanup,
    )
    from apckx.ceremonies.import_kek import check_alias_name
    from apckx.ceremonies.journal import Journal

    # Every local check before the first call: days, names, the journal (and who owns it).
    check_delete_days(args.delete_in_days)
    journal = Journal.load(args.journal_dir, args.ceremony) if args.ceremony else None
    for alias in args.aliases or ():
        check_alias_name(alias, flag="--alias")
    check_aws_options(args)
    apc = make_service(args)
    if journal is not None:
        planned = plan_ceremony_cleanup(apc, journal, delete_in_days=args.delete_in_days)
    else:
        planned = plan_alias_cleanup(apc, args.aliases, delete_in_days=args.delete_in_days)
    if args.dry_run:
        _print(planned, args.output, dry_run=True)
        return 0
    if journal is not None:
        done = run_ceremony_cleanup(
            apc, journal, delete_in_days=args.delete_in_days, planned=planned
        )
    else:
        done = run_cleanup(apc, planned)
    _print(done, args.output, dry_run=False)
    failed = [a for a in done if not a.ok]
    if failed:
        raise CeremonyError(
            f"cleanup incomplete: {len(failed)} of {len(done)} actions failed "
            f"({failed[0].operation} {failed[0].target}: {failed[0].outcome}); run it again"
        )
    return 0


def _print(actions: list[CleanupAction], output: str, *, dry_run: bool) -> None:
    if output == "json":
        print_json({"dry_run": dry_run, "actions": [a.to_record() for a in actions]})
        return
    if not actions:
        print("nothing to clean up")
        return
    print("plan (read-only calls only; nothing was changed):" if dry_run else "cleanup:")
    rows = []
    for action in actions:
        params = ", ".join(f"{k}={v}" for k, v in action.parameters.items())
        if dry_run:
            outcome = action.skip or "would run"
        else:
            outcome = action.outcome or ""
        rows.append((action.operation, params, outcome))
    print_table(("call", "parameters", "outcome"), rows)
