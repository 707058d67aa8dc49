"""``apckx import-kek``: import a KEK into APC over ECDH + TR-31 (the key ceremony).

The AWS sample's invocation works as is::

    apckx import-kek --region us-east-1 --profile default --kek <64 hex>

with the sample's defaults (P-521, NIST_SP800, SHA_256, AES_256 wrapping key, header
``D0000K0AB00E0000``, its three aliases, credentials under ``certs/``); ``--kek-file``,
``--kek-env``, ``--prompt`` or ``--components`` keep the key off the command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

# --help loads only these: the ceremony, the journal and the printing helpers are imported
# where they are used (start-up is measured by bench/startup.py and bench/process.py).
from apckx.ceremonies.defaults import (
    CURVE_CHOICES,
    DEFAULT_JOURNAL_DIR,
    DEFAULT_RECORDS_DIR,
    DERIVE_KEY_ALGORITHMS,
    KDF_CHOICES,
    KDF_HASH_CHOICES,
    KEK_ALGORITHMS,
    KEK_ALIAS,
    RECEIVER_ALIAS,
    ROOT_ALIAS,
)
from apckx.cli import keyinput
from apckx.cli._aws import add_retry_arguments, check_aws_options, make_service
from apckx.errors import ApckxError

if TYPE_CHECKING:
    from apckx.ceremonies.import_kek import KekImportResult


def add_arguments(parser: argparse.ArgumentParser) -> None:
    keyinput.add_key_arguments(parser, name="kek", label="KEK")
    what = parser.add_argument_group("what is imported")
    what.add_argument(
        "--key-algorithm", choices=KEK_ALGORITHMS, default="AES_256", help="default: AES_256"
    )
    what.add_argument(
        "--key-usage",
        "--key-type",
        "-t",
        dest="key_usage",
        default="K0",
        help="K0 (key encryption key, default) or K1 (key block protection key)",
    )
    what.add_argument(
        "--mode-of-use",
        "-m",
        default="B",
        help="TR-31 mode of use: B (wrap+unwrap, default), E (wrap), D (unwrap), N",
    )
    what.add_argument(
        "--exportability",
        "--export-mode",
        "-e",
        dest="exportability",
        choices=("E", "N", "S"),
        default="E",
        help="TR-31 exportability (default: E)",
    )
    what.add_argument(
        "--header",
        help="a raw 16-character TR-31 header instead of the four options above "
        "(the sample's default is D0000K0AB00E0000)",
    )
    how = parser.add_argument_group("how the wrapping key is derived")
    how.add_argument("--curve", default="P521", help=f"{', '.join(CURVE_CHOICES)} (default P521)")
    how.add_argument("--kdf", choices=KDF_CHOICES, default="NIST_SP800")
    how.add_argument("--kdf-hash", choices=KDF_HASH_CHOICES, default="SHA_256")
    how.add_argument(
        "--derive-key-algorithm",
        choices=DERIVE_KEY_ALGORITHMS,
        help="the derived wrapping key (default: the strongest the curve allows: "
        "P256 AES_128, P384 AES_192, P521 AES_256)",
    )
    how.add_argument(
        "--shared-info",
        metavar="HEX",
        help="SharedInformation (even-length hex, no zero byte); default: fresh random per "
        "ceremony. --shared-info 0123456789 reproduces the AWS sample",
    )
    where = parser.add_argument_group("names and places")
    where.add_argument(
        "--certs-dir",
        type=Path,
        default=Path("certs"),
        help="sender CA and ECDH leaf (default: certs/)",
    )
    where.add_argument("--journal-dir", type=Path, default=DEFAULT_JOURNAL_DIR)
    where.add_argument("--records-dir", type=Path, default=DEFAULT_RECORDS_DIR)
    where.add_argument("--receiver-alias", default=RECEIVER_ALIAS)
    where.add_argument("--root-alias", default=ROOT_ALIAS)
    where.add_argument(
        "--alias", dest="kek_alias", default=KEK_ALIAS, help="the imported KEK's alias"
    )
    trust = parser.add_argument_group("reuse, trust and recovery")
    trust.add_argument(
        "--new-receiver-key",
        action="store_true",
        help="create a new APC key-agreement pair even if the receiver alias has a usable one",
    )
    trust.add_argument(
        "--trust-apc-root",
        metavar="SHA256",
        help="refuse APC's certificate unless its chain root has this SHA-256 fingerprint",
    )
    trust.add_argument("--resume", metavar="ID", help="continue a failed ceremony from its journal")
    add_retry_arguments(parser)


def run(args: argparse.Namespace, *, io: keyinput.KeyInputIO | None = None) -> int:
    from apckx.ceremonies.import_kek import plan_kek_import
    from apckx.ceremonies.journal import check_ceremony_id

    # Everything is checked before the key is read, and the key before any API call.
    plan = plan_kek_import(
        key_algorithm=args.key_algorithm,
        header=args.header,
        key_usage=args.key_usage,
        mode_of_use=args.mode_of_use,
        exportability=args.exportability,
        curve=args.curve,
        kdf=args.kdf,
        kdf_hash=args.kdf_hash,
        derive_key_algorithm=args.derive_key_algorithm,
        shared_info_hex=args.shared_info,
        receiver_alias=args.receiver_alias,
        root_alias=args.root_alias,
        kek_alias=args.kek_alias,
        certs_dir=args.certs_dir,
        new_receiver_key=args.new_receiver_key,
        trust_apc_root=args.trust_apc_root,
    )
    if args.resume is not None:
        check_ceremony_id(args.resume)
    check_aws_options(args)
    kek = keyinput.read_key(args, plan.key_algorithm, name="kek", label="KEK", io=io)
    return run_with_key(args, plan, kek)


def run_with_key(args: argparse.Namespace, plan: Any, kek: bytes) -> int:
    """Run the ceremony with an already read KEK (``apckx demo`` enters here too)."""
    from apckx.ceremonies.import_kek import run_kek_import
    from apckx.ceremonies.journal import write_ceremony_record
    from apckx.cli._output import progress_printer

    apc = make_service(args)
    progress = progress_printer(True)  # stderr: stdout stays pure text or JSON
    details = {
        "key_source": keyinput.describe_key_source(args, name="kek"),
        "region": apc.client.meta.region_name,
        "endpoint": apc.client.meta.endpoint_url,
        "profile": args.profile,
    }
    try:
        result, journal = run_kek_import(
            apc,
            kek,
            plan,
            journal_dir=args.journal_dir,
            resume_id=args.resume,
            progress=progress,
        )
    except ApckxError as exc:
        _record_failure(args, apc, details, getattr(exc, "ceremony_id", None))
        raise
    finally:
        del kek
    record_path = write_ceremony_record(
        args.records_dir,
        journal,
        api_calls=[c.to_record() for c in apc.calls],
        details=details,
    )
    print_result(result, args.output, journal_path=journal.path, record_path=record_path)
    return 0


def _record_failure(
    args: argparse.Namespace, apc: Any, details: dict[str, Any], ceremony_id: str | None
) -> None:
    """Write the audit record of a failed ceremony too (best effort)."""
    from apckx.ceremonies.journal import Journal, write_ceremony_record

    if ceremony_id is None:
        return  # stopped before the journal was opened: nothing was created
    try:
        journal = Journal.load(args.journal_dir, ceremony_id)
        write_ceremony_record(
            args.records_dir,
            journal,
            api_calls=[c.to_record() for c in apc.calls],
            details=details,
        )
    except (ApckxError, OSError):
        pass


def print_result(
    result: KekImportResult,
    output: str,
    *,
    journal_path: Path | None = None,
    record_path: Path | None = None,
) -> None:
    from apckx.cli._output import print_json, print_rows

    if output == "json":
        data = result.to_record()
        data["journal"] = str(journal_path) if journal_path else None
        data["record"] = str(record_path) if record_path else None
        print_json(data)
        return
    kcv_line = (
        f"{result.key_check_value} (APC) = {result.local_key_check_value} (local), "
        f"{result.key_check_value_algorithm}"
    )

    def reused(flag: bool) -> str:
        return "reused" if flag else "created"

    print_rows(
        f"KEK imported: {result.key_arn}",
        [
            ("ceremony", result.ceremony_id),
            ("alias", result.key_alias),
            ("key", f"{result.key_algorithm}, header {result.header}"),
            ("KCV", kcv_line),
            ("receiver key", f"{result.receiver_key_arn} ({reused(result.receiver_reused)})"),
            ("receiver alias", result.receiver_alias),
            ("sender root", f"{result.root_key_arn} ({reused(result.root_reused)})"),
            ("root alias", result.root_alias),
            (
                "derivation",
                f"ECDH {result.curve}, {result.kdf} {result.kdf_hash} -> "
                f"{result.derive_key_algorithm}",
            ),
            ("SharedInformation", result.shared_info_hex),
            ("APC root SHA-256", result.apc_root_fingerprint),
            ("APC leaf SHA-256", result.apc_leaf_fingerprint),
            ("sender CA SHA-256", result.sender_ca_fingerprint),
            ("sender leaf SHA-256", result.sender_leaf_fingerprint),
            ("API calls", f"{result.api_calls} ({result.sequential_calls} one after another)"),
            ("time", _format_timings(result.timings_ms)),
            ("journal", journal_path),
            ("record", record_path),
        ],
    )
    sys.stdout.flush()


_STEP_LABELS = (
    ("receiver", "receiver"),
    ("local_credentials", "local credentials"),
    ("root", "root"),
    ("receiver_certificate", "certificate"),
    ("import_kek", "import"),
    ("kek_alias", "alias"),
)


def _format_timings(timings: dict[str, float]) -> str:
    steps = ", ".join(
        f"{label} {timings[key]:.0f}" for key, label in _STEP_LABELS if key in timings
    )
    return f"{timings.get('total', 0.0):.0f} ms ({steps} ms)" if steps else "-"
