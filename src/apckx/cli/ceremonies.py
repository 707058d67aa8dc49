"""``apckx ceremonies``: the ceremonies this directory's journals hold; ``show ID`` for one.

    apckx ceremonies                               # id, kind, started, status, resources live
    apckx ceremonies show kek-20260101T120000Z-1a2b3c4d

Local only (no API call). "Resources live" counts what the ceremony created (its journal and,
for a migration, its key log) minus what a cleanup removed: what local state knows, which
``apckx cleanup --ceremony ID --dry-run`` checks against APC.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from apckx.ceremonies.journal import DEFAULT_JOURNAL_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", nargs="?", choices=("list", "show"), default="list",
        help="list (default) or show ID",
    )  # fmt: skip
    parser.add_argument("ceremony_id", nargs="?", metavar="ID", help="the ceremony to show")
    parser.add_argument("--journal-dir", type=Path, default=DEFAULT_JOURNAL_DIR)


def run(args: argparse.Namespace) -> int:
    from apckx.errors import InputError

    if args.action == "show":
        if not args.ceremony_id:
            raise InputError("ceremonies show needs a ceremony id (see: apckx ceremonies)")
        return _show(args)
    if args.ceremony_id:
        raise InputError(f"unexpected {args.ceremony_id[:80]!r}: did you mean ceremonies show ID?")
    return _list(args)


def _list(args: argparse.Namespace) -> int:
    from apckx.ceremonies.journal import Journal, list_journals, summarize_journal
    from apckx.cli._output import print_json, print_table
    from apckx.errors import ApckxError

    rows: list[dict[str, Any]] = []
    for path in list_journals(args.journal_dir):
        ceremony_id = path.name.removesuffix(".json")
        try:
            rows.append(summarize_journal(Journal.load(args.journal_dir, ceremony_id)))
        except ApckxError as exc:  # another user's or a broken journal: said, not trusted
            print(f"apckx: warning: skipped {path}: {exc}", file=sys.stderr)
    if args.output == "json":
        print_json({"journal_dir": str(args.journal_dir), "ceremonies": rows})
        return 0
    if not rows:
        print(f"no ceremonies in {args.journal_dir}")
        return 0
    print_table(
        ("CEREMONY", "KIND", "STARTED", "STATUS", "LIVE"),
        [
            (r["ceremony_id"], r["kind"], r["started"] or "-", r["status"],
             f"{r['keys_live']} keys, {r['aliases_live']} aliases"
             + (f" (+{r['unconfirmed']} unconfirmed)" if r["unconfirmed"] else ""))
            for r in rows
        ],
    )  # fmt: skip
    return 0


def _show(args: argparse.Namespace) -> int:
    from apckx.ceremonies.journal import Journal, list_created_resources, summarize_journal
    from apckx.cli._output import print_json, print_rows, print_table

    journal = Journal.load(args.journal_dir, args.ceremony_id)
    summary = summarize_journal(journal)
    record = journal.to_record()
    keys, aliases = list_created_resources(journal)
    live = f"{summary['keys_live']} keys, {summary['aliases_live']} aliases"
    if summary["unconfirmed"]:
        live += f" (+{summary['unconfirmed']} imports unconfirmed: cleanup finds them by tag)"
    if args.output == "json":
        print_json({**summary, "journal": str(journal.path), "created_keys": sorted(keys),
                    "created_aliases": sorted(aliases), "record": record})  # fmt: skip
        return 0
    print_rows(
        f"ceremony {journal.ceremony_id}",
        [
            ("kind", journal.kind),
            ("status", journal.status),
            ("started", summary["started"]),
            ("finished", summary["finished"] or "-"),
            ("resumed", f"{summary['resumed']} time(s)"),
            ("live", live),
            ("error", record.get("error") or "-"),
            ("journal", journal.path),
        ],
    )
    resources = [
        (r.kind, r.role, r.alias or "-", r.arn or "-", "created" if r.created else "reused")
        for r in journal.resources
    ]
    if resources:
        print()
        print_table(("KIND", "ROLE", "ALIAS", "KEY ARN", "HOW"), resources)
    unlisted = sorted(keys - {r.arn for r in journal.resources if r.arn})
    if unlisted:
        print(f"\nkey log only (not yet in the journal): {len(unlisted)} key(s)")
        for arn in unlisted:
            print(f"  {arn}")
    return 0
