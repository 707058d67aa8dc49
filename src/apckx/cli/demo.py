"""``apckx demo``: rehearse the KEK ceremony against the embedded emulator, then clean up.

Starts the emulator in this process (127.0.0.1, a free port, real cryptography), runs the
whole ``import-kek`` ceremony with a freshly generated KEK that is never shown, checks that
APC's KCV equals the local one, rolls everything back with the cleanup recipe (aliases
deleted, keys DELETE_PENDING), and removes its temporary certs and journal directories.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from apckx.cli._output import print_json, print_table, progress_printer, setup_debug_logging
from apckx.errors import CeremonyError

DEMO_REGION = "us-east-1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--curve", default="P521", help="P256, P384 or P521 (default P521, as the AWS sample)"
    )
    parser.add_argument(
        "--key-algorithm",
        default=None,
        help="the demo KEK's algorithm (default: the strongest the curve carries)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=50.0,
        help="emulated network latency per call (default 50, about a nearby AWS region; "
        "calls made at once then overlap as they would against AWS)",
    )


def run(args: argparse.Namespace) -> int:
    from apckx.ceremonies.cleanup import run_ceremony_cleanup
    from apckx.ceremonies.ecdh_session import STRONGEST_DERIVE_KEY_ALGORITHM
    from apckx.ceremonies.import_kek import plan_kek_import, run_kek_import
    from apckx.ceremonies.journal import write_ceremony_record
    from apckx.cli.import_kek import print_result
    from apckx.crypto.ecdh import normalize_curve
    from apckx.crypto.keys import generate_key
    from apckx.emulator.server import EmulatorConfig, start_emulator
    from apckx.service.apc import ApcService
    from apckx.service.client import make_client

    curve = normalize_curve(args.curve)
    key_algorithm = args.key_algorithm or STRONGEST_DERIVE_KEY_ALGORITHM[curve]
    text = args.output == "text"
    out = sys.stdout if text else sys.stderr
    setup_debug_logging(args.debug)
    with tempfile.TemporaryDirectory(prefix="apckx-demo-") as tmp:
        workdir = Path(tmp)
        plan = plan_kek_import(
            key_algorithm=key_algorithm, curve=curve, certs_dir=workdir / "certs"
        )
        config = EmulatorConfig(latency_ms=args.latency_ms)
        emulator = start_emulator(config)
        try:
            print(f"apckx demo: emulator listening at {emulator.url} (in this process)", file=out)
            client = make_client(
                region=DEMO_REGION,
                endpoint_url=emulator.url,
                debug=args.debug,
                credentials=(
                    config.credentials.access_key_id,
                    config.credentials.secret_access_key,
                ),
            )
            apc = ApcService(client)
            kek = generate_key(key_algorithm)
            print(f"apckx demo: generated an {key_algorithm} KEK (never shown)", file=out)
            result, journal = run_kek_import(
                apc,
                kek,
                plan,
                journal_dir=workdir / "journal",
                progress=progress_printer(text, stream=out),
            )
            del kek
            record = write_ceremony_record(
                workdir / "records",
                journal,
                api_calls=[c.to_record() for c in apc.calls],
                details={"key_source": "generated", "endpoint": emulator.url},
            )
            if text:
                print_result(result, "text")
                print(
                    f"\nKCVs match: APC {result.key_check_value} == local "
                    f"{result.local_key_check_value} ({result.key_check_value_algorithm})\n"
                )
            del record
            actions = run_ceremony_cleanup(apc, journal, delete_in_days=7)
            states = {
                a.target: apc.get_key(a.target).get("KeyState")
                for a in actions
                if a.operation == "DeleteKey"
            }
            remaining_aliases = [
                alias["AliasName"] for alias in apc.list_aliases() if alias.get("KeyArn")
            ]
        finally:
            emulator.stop()
    clean = all(a.ok for a in actions) and all(
        state == "DELETE_PENDING" for state in states.values()
    )
    if text:
        print("cleanup (apckx cleanup --ceremony " + result.ceremony_id + "):")
        print_table(
            ("call", "target", "outcome"),
            [(a.operation, a.target, a.outcome or "") for a in actions],
        )
        print(
            f"\n{len(states)} keys DELETE_PENDING, {len(remaining_aliases)} aliases left; "
            "emulator stopped, temporary certs and journal removed."
        )
    else:
        summary = result.to_record()
        summary["cleanup"] = [a.to_record() for a in actions]
        summary["key_states_after_cleanup"] = states
        summary["aliases_left"] = remaining_aliases
        print_json(summary)
    if not clean or remaining_aliases:
        raise CeremonyError("demo cleanup left resources behind")
    return 0
