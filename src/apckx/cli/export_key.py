"""``apckx export-key --key alias/...|ARN``: bring a key out of APC, verified.

Under a KEK (``--kek-id`` and the KEK's cleartext) or over ECDH (``--via ecdh``, the
import-kek receiver and sender root). The block is unwrapped locally and its KCV compared with
APC's. Output: the TR-31 block (``--out FILE`` or stdout), or ``--components N --out-dir DIR``
(one 0600 file per component, with its KCV). The cleartext key itself is never printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, cast

from apckx.ceremonies.journal import DEFAULT_JOURNAL_DIR
from apckx.cli import keyinput
from apckx.cli._aws import add_retry_arguments, make_service
from apckx.cli.import_key import add_ecdh_arguments
from apckx.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key", required=True, metavar="ALIAS|ARN", help="the key in APC to export"
    )
    how = parser.add_argument_group("how the key travels")
    how.add_argument("--kek-id", metavar="ALIAS|ARN", help="export under this KEK (TR-31)")
    how.add_argument(
        "--via", choices=("kek", "ecdh", "tr34", "rsa"), default=None,
        help="kek (default with --kek-id), ecdh (DiffieHellmanTr31KeyBlock), tr34 "
        "(Tr34KeyBlock) or rsa (KeyCryptogram)",
    )  # fmt: skip
    _add_kek_arguments(parser)
    headers = parser.add_argument_group("KeyBlockHeaders (only more restrictive)")
    headers.add_argument("--mode-of-use", help="TR-31 mode of use for the exported block")
    headers.add_argument("--exportability", help="E, N or S (EXPORTABLE, ...)")
    headers.add_argument("--key-version", help="two characters 0-9 A-Z")
    headers.add_argument(
        "--optional-block", action="append", default=[], metavar="ID=VALUE",
        help="an optional block to add (repeatable)",
    )  # fmt: skip
    out = parser.add_argument_group("output")
    out.add_argument("--out", type=Path, metavar="FILE", help="write the TR-31 block here (0600)")
    out.add_argument(
        "--components", dest="split_components", type=int, metavar="N",
        help="write the key as N XOR components (2-9), one 0600 file each, in --out-dir",
    )  # fmt: skip
    out.add_argument("--out-dir", type=Path, metavar="DIR", help="where components go")
    out.add_argument("--journal-dir", type=Path, default=DEFAULT_JOURNAL_DIR)
    add_ecdh_arguments(parser)
    from apckx.cli.tr34 import add_export_arguments

    add_export_arguments(parser)
    add_retry_arguments(parser)


def _add_kek_arguments(parser: argparse.ArgumentParser) -> None:
    """import-kek's KEK input, except that ``--components`` here splits the exported key:
    the KEK's components are ``--kek-components``. Same destinations as keyinput's."""
    group = parser.add_argument_group("KEK input (one of; with --kek-id)")
    sources = group.add_mutually_exclusive_group()
    sources.add_argument(
        "--kek-file",
        dest="kek_file",
        metavar="PATH",
        help="read the KEK (hex) from a file, or '-' for stdin",
    )
    sources.add_argument(
        "--kek-env",
        dest="kek_env",
        metavar="VAR",
        help="read the KEK (hex) from an environment variable",
    )
    sources.add_argument(
        "--prompt", dest="kek_prompt", action="store_true", help="enter the KEK at a masked prompt"
    )
    sources.add_argument(
        "--kek-components",
        dest="kek_components",
        type=int,
        metavar="N",
        help="N custodians each enter a component of the KEK",
    )
    group.add_argument("--expect-kcv", dest="kek_expect_kcv", metavar="KCV",
                       help="stop unless the KEK's check value is KCV")  # fmt: skip


def _optional_blocks(values: list[str]) -> dict[str, str]:
    blocks: dict[str, str] = {}
    for value in values:
        block_id, sep, data = value.partition("=")
        if not sep or len(block_id) != 2 or not data:
            raise InputError(
                "--optional-block must be ID=VALUE with a 2-character ID (e.g. LB=HSM1)"
            )
        blocks[block_id.upper()] = data
    return blocks


def run(args: argparse.Namespace, *, io: keyinput.KeyInputIO | None = None) -> int:
    from apckx.ceremonies.export_key import (
        EcdhOptions,
        ExportHeaders,
        check_block_destination,
        check_components_destination,
        export_over_ecdh,
        export_under_kek,
        write_components,
        write_key_block,
    )
    from apckx.ceremonies.journal import COMPLETE, FAILED, Journal
    from apckx.cli import tr34
    from apckx.errors import ApckxError

    if args.via in ("tr34", "rsa"):
        return tr34.run_export_key(args, io)
    if args.krd_certificate or args.krd_ca or args.ipek or args.ksn or args.one_pass:
        raise InputError("--krd-certificate, --krd-ca, --ipek, --ksn and --one-pass are for "
                         "--via tr34 or rsa")  # fmt: skip
    tr34.check_no_rsa_options(args, args.via or "kek")
    headers = ExportHeaders.from_options(
        mode_of_use=args.mode_of_use, exportability=args.exportability,
        key_version=args.key_version, optional_blocks=_optional_blocks(args.optional_block),
    )  # fmt: skip
    if args.split_components is not None:
        if args.out_dir is None:
            raise InputError("--components needs --out-dir DIR for the component files")
        if not 2 <= args.split_components <= 9:
            raise InputError(f"--components must be between 2 and 9 (got {args.split_components})")
        if args.out is not None:
            raise InputError("--out is for the block; --components go to --out-dir DIR")
    elif args.out_dir is not None:
        raise InputError("--out-dir is for --components; use --out FILE for the block")
    # The destination is checked before any API call: ExportKey must not run for nothing.
    if args.split_components is not None:
        check_components_destination(cast(Path, args.out_dir))
    elif args.out is not None:
        for warning in check_block_destination(args.out):
            print(f"apckx: warning: {warning}", file=sys.stderr)
    via = args.via or ("kek" if args.kek_id else "ecdh")
    if via == "kek" and not args.kek_id:
        raise InputError("--via kek needs --kek-id (the KEK in APC)")
    if via == "ecdh" and keyinput.key_source_given(args, name="kek"):
        raise InputError("--via ecdh derives its wrapping key: drop the KEK input")
    if via == "kek":
        if not keyinput.key_source_given(args, name="kek"):
            raise InputError("--kek-id needs the KEK's cleartext to unwrap the export: use "
                             "--kek-file, --kek-env, --prompt or --kek-components")  # fmt: skip
        from apckx.cli.import_key import KEK_ALGORITHMS

        # Key files, stdin and variables are read and checked before any call.
        keyinput.preload_key(args, name="kek", algorithms=KEK_ALGORITHMS, io=io)
    else:
        from apckx.ceremonies.ecdh_session import configured_trust_apc_root

        configured_trust_apc_root()  # a malformed APCKX_TRUST_APC_ROOT stops here
    apc = make_service(args)
    journal = Journal.create(
        args.journal_dir, "export", parameters={"key": args.key, "via": via,
                                                "kek_id": args.kek_id},
    )  # fmt: skip
    try:
        if via == "kek":
            kek_key = apc.get_key(args.kek_id)
            kek = keyinput.read_key(
                args, str(kek_key["KeyAttributes"]["KeyAlgorithm"]), name="kek", label="KEK",
                io=io,
            )  # fmt: skip
            try:
                exported = export_under_kek(apc, key_id=args.key, kek_id=args.kek_id, kek=kek,
                                            headers=headers, journal=journal)  # fmt: skip
            finally:
                del kek
        else:
            options = EcdhOptions(
                curve=args.curve, kdf=args.kdf, kdf_hash=args.kdf_hash,
                derive_key_algorithm=args.derive_key_algorithm,
                shared_info_hex=args.shared_info, receiver_alias=args.receiver_alias,
                root_alias=args.root_alias, certs_dir=args.certs_dir,
                trust_apc_root=args.trust_apc_root,
            )  # fmt: skip
            exported = export_over_ecdh(
                apc, key_id=args.key, options=options, journal=journal, headers=headers
            )
        outputs: dict[str, Any] = exported.to_record()
        if args.split_components is not None:
            out_dir = cast(Path, args.out_dir)
            files = write_components(exported, args.split_components, out_dir)
            outputs["components"] = [
                {"index": f.index, "path": str(f.path), "kcv": f.kcv} for f in files
            ]
        elif args.out is not None:
            write_key_block(args.out, exported.key_block)
            outputs["out"] = str(args.out)
        else:
            outputs["key_block"] = exported.key_block
    except ApckxError as exc:
        journal.finish(FAILED, error=str(exc))
        raise
    journal.set_output(**{k: v for k, v in outputs.items() if k != "key_block"})
    journal.finish(COMPLETE)
    del exported
    _print(outputs, args.output, journal.ceremony_id)
    return 0


def _print(outputs: dict[str, Any], output: str, ceremony_id: str) -> None:
    from apckx.cli._output import format_rows, print_json

    if output == "json":
        print_json({"ceremony_id": ceremony_id, **outputs})
        return
    if "key_block" in outputs:
        # stdout carries the block alone, so it can be piped; the report goes to stderr.
        print(outputs["key_block"])
        report = sys.stderr
    else:
        report = sys.stdout
    rows: list[tuple[str, Any]] = [
        ("via", outputs["via"]),
        ("wrapping key", outputs["wrapping_key_arn"]),
        ("header", outputs["header"]),
        ("KCV", f"{outputs['kcv']} ({outputs['kcv_algorithm']}), equal to APC's"),
        ("derivation", outputs.get("derivation")),
        ("SharedInformation", outputs.get("shared_info_hex")),
        ("block written to", outputs.get("out")),
        ("ceremony", ceremony_id),
    ]
    for component in outputs.get("components", []):
        rows.append(
            (f"component {component['index']}", f"{component['path']}  KCV {component['kcv']}")
        )
    print(f"Key exported: {outputs['key_arn']} ({outputs['key_algorithm']})", file=report)
    print(format_rows(rows), file=report)
