"""``apckx migrate MANIFEST --kek-id ID``: import every key of a manifest, paced at APC's quota.

Progress goes to stderr (a redrawn bar on a terminal, a plain line every few seconds
otherwise, nothing with ``--output json``); the summary table (alias, ARN, KCV) to stdout.
The exit code is 1 if any key failed. Re-running the same command resumes: keys already in
APC with the expected KCV are skipped.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from apckx.ceremonies.journal import DEFAULT_JOURNAL_DIR
from apckx.ceremonies.migrate import (
    FAILED_KEY,
    MigrationOptions,
    MigrationResult,
    Progress,
)
from apckx.cli import keyinput
from apckx.service.pacing import DEFAULT_RATE

PLAIN_PROGRESS_INTERVAL = 5.0  # seconds between progress lines when stderr is not a TTY
BAR_WIDTH = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "manifest",
        metavar="MANIFEST",
        type=Path,
        help="CSV with a header row, or JSON lines: alias + key_block (or key_hex, key_usage, "
        "key_algorithm for rehearsals); optional mode_of_use, exportability, tags, kcv",
    )
    parser.add_argument(
        "--kek-id", required=True, metavar="ALIAS|ARN", help="the KEK in APC the blocks are under"
    )
    keyinput.add_key_arguments(parser, name="kek", label="KEK")  # only key_hex rows need it
    pace = parser.add_argument_group("pacing")
    pace.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        metavar="TPS",
        help=f"control-plane calls per second, retries included (default {DEFAULT_RATE:g}, "
        "APC's default quota); each key costs 2 calls",
    )
    pace.add_argument("--workers", type=int, default=4, help="concurrent keys (default 4)")
    pace.add_argument(
        "--max-attempts",
        type=int,
        default=8,
        help="attempts per call on throttling or 5xx, with backoff (default 8)",
    )
    parser.add_argument("--journal-dir", type=Path, default=DEFAULT_JOURNAL_DIR)
    parser.add_argument(
        "--resume",
        metavar="ID",
        help="continue this migration (same manifest and KEK); by default a re-run continues "
        "the last unfinished one of the same manifest",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress output on stderr")
    parser.add_argument(
        "--check",
        action="store_true",
        help="after each key is in place, prove it works on the data plane (as apckx check; "
        "manifest columns check_input and expect), paced under --rate",
    )


class ProgressReporter:
    """Draws ``done, failed, ETA``: a bar on a TTY, or a plain line every few seconds."""

    def __init__(self, stream: TextIO, *, tty: bool, interval: float = PLAIN_PROGRESS_INTERVAL):
        self.stream = stream
        self.tty = tty
        self.interval = interval
        self._last: float | None = None  # the first progress line is always shown
        self._lock = threading.Lock()
        self._drawn = False

    @staticmethod
    def describe(progress: Progress) -> str:
        eta = progress.eta
        eta_text = "--" if eta is None else _duration(eta)
        rate = progress.finished / progress.elapsed if progress.elapsed > 0 else 0.0
        return (
            f"{progress.finished}/{progress.total} keys: {progress.done} done, "
            f"{progress.failed} failed, {rate:.1f} keys/s, ETA {eta_text}"
        )

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            now = time.monotonic()
            last = progress.finished == progress.total
            if self.tty:
                filled = int(BAR_WIDTH * progress.finished / max(progress.total, 1))
                bar = "#" * filled + "." * (BAR_WIDTH - filled)
                self.stream.write(f"\r[{bar}] {self.describe(progress)}\x1b[K")
                if last:
                    self.stream.write("\n")
                self.stream.flush()
                self._drawn = not last
            elif last or self._last is None or now - self._last >= self.interval:
                self._last = now
                print(f"apckx: migrate: {self.describe(progress)}", file=self.stream, flush=True)

    def close(self) -> None:
        with self._lock:
            if self.tty and self._drawn:
                self.stream.write("\n")
                self.stream.flush()
                self._drawn = False


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def run(args: argparse.Namespace, *, io: keyinput.KeyInputIO | None = None) -> int:
    from apckx.ceremonies.manifest import ManifestError, load_manifest
    from apckx.ceremonies.migrate import check_journal_dir, run_migration
    from apckx.cli._aws import make_service
    from apckx.errors import InputError

    options = MigrationOptions(
        kek_id=args.kek_id, rate=args.rate, workers=args.workers,
        max_attempts=args.max_attempts, journal_dir=args.journal_dir,
    )  # fmt: skip
    options.check()
    resume_id = getattr(args, "resume", None)
    if resume_id is not None:
        from apckx.ceremonies.journal import Journal, check_ceremony_id

        Journal.load(args.journal_dir, check_ceremony_id(resume_id))  # exists, is ours
    try:
        manifest = load_manifest(args.manifest)
    except ManifestError as exc:
        _print_errors(exc.errors)
        raise
    # The journal directory (and every journal and key log in it, which a re-run trusts) is
    # checked before the first call.
    check_journal_dir(args.journal_dir)
    rehearsal = [row.line for row in manifest.rows if row.is_rehearsal]
    if rehearsal and keyinput.key_source_given(args, name="kek"):
        # The KEK's file, stdin or variable is read and checked now; its algorithm (and so
        # its exact length) comes from APC's GetKey below.
        from apckx.ceremonies.import_kek import KEK_ALGORITHMS

        keyinput.preload_key(args, name="kek", algorithms=KEK_ALGORITHMS, io=io)
    kek: bytes | None = None
    # No botocore retries: every attempt must go through our token bucket.
    apc = make_service(
        args, retry_mode="standard", max_attempts=1,
        max_pool_connections=max(10, args.workers + 2),
    )  # fmt: skip
    if rehearsal:
        if not keyinput.key_source_given(args, name="kek"):
            raise InputError(
                f"{manifest.path}:{rehearsal[0]}: key_hex rows need the KEK's cleartext: "
                "use --kek-file, --kek-env, --prompt or --components"
            )
        kek_key = apc.get_key(args.kek_id)
        kek = keyinput.read_key(
            args, str(kek_key["KeyAttributes"]["KeyAlgorithm"]), name="kek", label="KEK", io=io
        )
    elif keyinput.key_source_given(args, name="kek"):
        print("apckx: warning: no key_hex rows: the KEK's cleartext is not needed, and not "
              "read", file=sys.stderr)  # fmt: skip
    check_key = None
    if args.check:
        from apckx.ceremonies.check import make_migration_check
        from apckx.service.data import make_data_service

        check_key = make_migration_check(apc, make_data_service(apc))
    options = MigrationOptions(
        kek_id=args.kek_id, kek=kek, rate=args.rate, workers=args.workers,
        max_attempts=args.max_attempts, journal_dir=args.journal_dir, resume_id=resume_id,
        check_key=check_key,
    )  # fmt: skip
    del kek
    show_progress = args.output == "text" and not args.no_progress
    reporter = ProgressReporter(sys.stderr, tty=sys.stderr.isatty()) if show_progress else None

    def started(journal: object, kek_info: object) -> None:
        if show_progress:
            print(
                f"apckx: migrate: {len(manifest.rows)} keys from {manifest.path} at "
                f"{args.rate:g} calls/s; journal {getattr(journal, 'path', '')}",
                file=sys.stderr,
                flush=True,
            )

    try:
        result = run_migration(apc, manifest, options, on_progress=reporter, on_start=started)
    except ManifestError as exc:
        _print_errors(exc.errors)
        raise
    except KeyboardInterrupt:
        if reporter is not None:
            reporter.close()
        print("apckx: migration interrupted: run the same command again to resume; keys "
              "already imported are checked by KCV and skipped", file=sys.stderr)  # fmt: skip
        raise
    finally:
        if reporter is not None:
            reporter.close()
    print_summary(result, args.output)
    return 0 if result.ok else 1


def _print_errors(errors: list[str]) -> None:
    """Every bad manifest line; _cli then prints the one-line summary."""
    from apckx.ceremonies.manifest import MAX_ERRORS_SHOWN

    for error in errors[:MAX_ERRORS_SHOWN]:
        print(f"apckx: {error}", file=sys.stderr)
    if len(errors) > MAX_ERRORS_SHOWN:
        print(f"apckx: ... and {len(errors) - MAX_ERRORS_SHOWN} more", file=sys.stderr)


def print_summary(result: MigrationResult, output: str) -> None:
    from apckx.cli._output import print_json

    if output == "json":
        print_json(result.to_record())
    else:
        _print_table(result)
    failed = sum(1 for o in result.outcomes if o.status == FAILED_KEY)
    check_failed = sum(1 for o in result.outcomes if o.check_failed)
    if check_failed:
        print(f"apckx: {check_failed} key(s) failed their check (migrate --check): see the "
              "CHECK column; apckx check KEY shows every step", file=sys.stderr)  # fmt: skip
    if failed:
        # Always, whatever --output: a failing run says so on stderr (JSON stays on stdout).
        print(
            f"apckx: {failed} key(s) failed; fix them and re-run the same command: "
            "keys already imported are skipped",
            file=sys.stderr,
        )


def _print_table(result: MigrationResult) -> None:
    from apckx.cli._output import print_table

    if any(o.check for o in result.outcomes):  # migrate --check
        checked = [
            (o.alias, o.status, o.key_arn or "-", o.kcv or "-", o.check or "-", o.error or "")
            for o in result.outcomes
        ]
        print_table(("ALIAS", "STATUS", "KEY ARN", "KCV", "CHECK", "ERROR"), checked)
    else:
        rows = [
            (o.alias, o.status, o.key_arn or "-", o.kcv or "-", o.error or "")
            for o in result.outcomes
        ]
        print_table(("ALIAS", "STATUS", "KEY ARN", "KCV", "ERROR"), rows)
    record = result.to_record()
    calls_per_second = result.stats.calls / result.elapsed if result.elapsed > 0 else 0.0
    print(
        f"\n{record['total']} keys: {record['imported']} imported, {record['skipped']} "
        f"already there, {record['failed']} failed, in {_duration(result.elapsed)} "
        f"({result.stats.calls} calls, {calls_per_second:.1f}/s, {result.stats.throttled} "
        f"throttled); ceremony {result.ceremony_id}"
    )
