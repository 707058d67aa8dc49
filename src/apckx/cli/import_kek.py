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
    from apckx.cli.tr34 import add_import_arguments

    keyinput.add_key_arguments(parser, name="kek", label="KEK")
    parser.add_argument(
        "--via", choices=("ecdh", "tr34"), default=None,
        help="ecdh (default: ECDH + TR-31) or tr34 (apckx as TR-34 KDH; AES_128 by default)",
    )  # fmt: skip
    add_import_arguments(parser, kek=True)
    what = parser.add_argument_group("what is imported")
    what.add_argument(
        "--key-algorithm", choices=KEK_ALGORITHMS, help="default: AES_256"
    )
    what.add_argument(
        "--key-usage",
        "--key-type",
        "-t",
        dest="key_usage",
        help="K0 (key encryption key, default) or K1 (key block protection key)",
    )
    what.add_argument(
        "--mode-of-use",
        "-m",
        help="TR-31 mode of use: B (wrap+unwrap, default), E (wrap), D (unwrap), N",
    )
    what.add_argument(
        "--exportability",
        "--export-mode",
        "-e",
        dest="exportability",
        choices=("E", "N", "S"),
        help="TR-31 exportability (default: E)",
    )
    what.add_argument(
        "--header",
        help="a raw 16-character TR-31 header instead of the four options above "
        "(the sample's default is D0000K0AB00E0000)",
    )
    how = parser.add_argument_group("how the wrapping key is derived")
    how.add_argument("--curve", help=f"{', '.join(CURVE_CHOICES)} (default P521)")
    how.add_argument("--kdf", choices=KDF_CHOICES, help="default: NIST_SP800")
    how.add_argument("--kdf-hash", choices=KDF_HASH_CHOICES, help="default: SHA_256")
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
        help="sender CA and ECDH leaf (default: certs/)",
    )
    where.add_argument("--journal-dir", type=Path, default=DEFAULT_JOURNAL_DIR)
    where.add_argument("--records-dir", type=Path, default=DEFAULT_RECORDS_DIR)
    where.add_argument("--receiver-alias", help=f"default: {RECEIVER_ALIAS}")
    where.add_argument("--root-alias", help=f"default: {ROOT_ALIAS}")
    where.add_argument(
        "--alias", dest="kek_alias", help=f"the imported KEK's alias (default: {KEK_ALIAS})"
    )
    trust = parser.add_argument_group("reuse, trust and recovery")
    trust.add_argument(
        "--new-receiver-key",
        action="store_true",
        default=None,
        help="create a new APC key-agreement pair even if the receiver alias has a usable one",
    )
    trust.add_argument(
        "--trust-apc-root",
        metavar="SHA256",
        help="refuse APC's certificate unless its chain root has this SHA-256 fingerprint",
    )
    trust.add_argument(
        "--resume",
        metavar="ID",
        help="continue a failed ceremony: every setting comes from its journal (a flag that "
        "contradicts it is refused); give only the key input",
    )
    trust.add_argument(
        "--replace",
        action="store_true",
        help="move --alias to the new KEK when it already names another key (without it, "
        "apckx refuses; an alias already naming a key with this KCV imports nothing)",
    )
    add_retry_arguments(parser)


_DEFAULTS: dict[str, Any] = {
    "key_algorithm": "AES_256",
    "key_usage": "K0",
    "mode_of_use": "B",
    "exportability": "E",
    "curve": "P521",
    "kdf": "NIST_SP800",
    "kdf_hash": "SHA_256",
    "receiver_alias": RECEIVER_ALIAS,
    "root_alias": ROOT_ALIAS,
    "kek_alias": KEK_ALIAS,
    "certs_dir": Path("certs"),
    "new_receiver_key": False,
}


def collect_given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The plan settings as typed (None where a flag was not given)."""
    return {
        "key_algorithm": args.key_algorithm,
        "header": args.header,
        "key_usage": args.key_usage,
        "mode_of_use": args.mode_of_use,
        "exportability": args.exportability,
        "curve": args.curve,
        "kdf": args.kdf,
        "kdf_hash": args.kdf_hash,
        "derive_key_algorithm": args.derive_key_algorithm,
        "shared_info_hex": args.shared_info,
        "receiver_alias": args.receiver_alias,
        "root_alias": args.root_alias,
        "kek_alias": args.kek_alias,
        "certs_dir": args.certs_dir,
        "new_receiver_key": args.new_receiver_key,
        "trust_apc_root": args.trust_apc_root,
    }


def plan_from_args(args: argparse.Namespace) -> Any:
    """The plan: from the flags (defaults filled in), or on ``--resume`` from the journal,
    with the flags given checked against it. Local only: no API call."""
    from apckx.ceremonies.import_kek import plan_kek_import, plan_resumed_import
    from apckx.ceremonies.journal import Journal, check_ceremony_id

    given = collect_given_settings(args)
    if args.resume is not None:
        check_ceremony_id(args.resume)
        journal = Journal.load(args.journal_dir, args.resume)
        return plan_resumed_import(journal.parameters, given, ceremony_id=args.resume)
    settings: dict[str, Any] = {
        k: (_DEFAULTS.get(k) if v is None else v) for k, v in given.items()
    }
    return plan_kek_import(**settings)


def check_local_paths(args: argparse.Namespace, plan: Any) -> None:
    """Every path before the first call: the certs dir, and the journal and records
    directories (created 0700 if missing, refused if another user could write them)."""
    from apckx.ceremonies.import_kek import check_certs_dir
    from apckx.ceremonies.journal import check_writable_dir

    check_certs_dir(plan.certs_dir)
    check_writable_dir(args.journal_dir, what="journal directory", create=False)
    check_writable_dir(args.records_dir, what="records directory", create=False, trusted=False)


def run(args: argparse.Namespace, *, io: keyinput.KeyInputIO | None = None) -> int:
    # Everything is checked before the key is read, and the key before any API call.
    from apckx.cli import tr34

    if getattr(args, "via", None) == "tr34":
        return tr34.run_import_kek(args, io)
    tr34.check_no_rsa_options(args, "ecdh")
    plan = plan_from_args(args)
    check_aws_options(args)
    check_local_paths(args, plan)
    kek = keyinput.read_key(args, plan.key_algorithm, name="kek", label="KEK", io=io)
    return run_with_key(args, plan, kek)


def run_with_key(args: argparse.Namespace, plan: Any, kek: bytes) -> int:
    """Run the ceremony with an already read KEK (``apckx demo`` enters here too)."""
    from apckx.ceremonies.import_kek import run_kek_import
    from apckx.ceremonies.journal import LocalWriteError, write_ceremony_record
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
            replace=bool(getattr(args, "replace", False)),
        )
    except LocalWriteError:
        raise  # the journal could not be written: neither can the record, most likely
    except ApckxError as exc:
        _record_failure(args, apc, details, getattr(exc, "ceremony_id", None))
        raise
    finally:
        del kek
    try:
        record_path = write_ceremony_record(
            args.records_dir,
            journal,
            api_calls=[c.to_record() for c in apc.calls],
            details=details,
        )
    except ApckxError as exc:
        raise LocalWriteError(
            f"APC holds the KEK {result.key_arn} (KCV {result.key_check_value}) under "
            f"{result.key_alias}, but {exc}; the journal {journal.path} has the ceremony"
        ) from None
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
    if result.unchanged:
        print(
            f"{result.key_alias} already points at {result.key_arn} with this KEK's KCV "
            f"{result.key_check_value} ({result.key_check_value_algorithm}): nothing imported "
            f"(ceremony {result.ceremony_id})"
        )
        sys.stdout.flush()
        return
    if result.replaced_key_arn:
        print(
            f"{result.key_alias}: was {result.replaced_key_arn} (KCV "
            f"{result.replaced_key_check_value or 'none'}), now {result.key_arn} (KCV "
            f"{result.key_check_value})"
        )
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
