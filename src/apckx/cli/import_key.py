"""``apckx import-key``: import one working key into APC.

Three ways in:

* under a KEK already in APC (``--kek-id``): apckx checks the KEK's cleartext against APC's
  KCV, wraps the key (``--key-file``, ``--key-prompt``, ``--key-components``) in TR-31 and
  calls ImportKey with ``Tr31KeyBlock``;
* a key block made elsewhere (``--key-block BLOCK|@FILE``, e.g. an HSM export): its header is
  decoded and shown, then it is imported as is under ``--kek-id``;
* over ECDH (``--via ecdh``): the import-kek ceremony, for any key type.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from apckx.ceremonies.import_key import ImportedKey
from apckx.ceremonies.journal import DEFAULT_JOURNAL_DIR
from apckx.cli import keyinput
from apckx.cli._aws import add_retry_arguments, make_service
from apckx.cli.kcv import add_key_source_arguments
from apckx.errors import InputError

CURVES = ("P256", "P384", "P521")
KEK_ALGORITHMS = ("TDES_2KEY", "TDES_3KEY", "AES_128", "AES_192", "AES_256")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    how = parser.add_argument_group("how the key travels (one of)")
    how.add_argument(
        "--kek-id",
        metavar="ALIAS|ARN",
        help="the KEK in APC the key is wrapped under (alias/... or a key ARN)",
    )
    how.add_argument(
        "--via", choices=("kek", "ecdh", "tr34", "rsa"), default=None,
        help="kek (default with --kek-id), ecdh (the import-kek ceremony, any key type), tr34 "
        "(apckx as TR-34 KDH) or rsa (RSA wrap, KeyCryptogram)",
    )  # fmt: skip
    how.add_argument(
        "--key-block",
        metavar="BLOCK|@FILE",
        help="import this TR-31 block (e.g. an HSM export) as is, under --kek-id",
    )
    keyinput.add_key_arguments(parser, name="kek", label="KEK")
    add_key_source_arguments(parser, label="working key")
    what = parser.add_argument_group("the key's attributes (its TR-31 header)")
    what.add_argument(
        "--key-usage",
        help="APC's name (TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY) or the TR-31 code (D0)",
    )
    what.add_argument(
        "--key-algorithm", help="TDES_2KEY, TDES_3KEY, AES_128/192/256, HMAC_SHA224..512"
    )
    what.add_argument(
        "--mode-of-use", help="TR-31 code: B, E, D, X, N, C, G, V (default: the widest allowed)"
    )
    what.add_argument(
        "--exportability", default="E", help="E (EXPORTABLE, default), N or S (SENSITIVE)"
    )
    what.add_argument("--key-version", default="00", help="TR-31 key version (default 00)")
    names = parser.add_argument_group("names, tags and checks")
    names.add_argument("--alias", help="alias/NAME for the imported key")
    names.add_argument(
        "--tag", action="append", default=[], metavar="K=V",
        help="tag the key (repeatable; or k=v;k2=v2)",
    )  # fmt: skip
    names.add_argument(
        "--kcv",
        dest="expected_kcv",
        metavar="KCV",
        help="with --key-block: the key's expected KCV, compared with APC's",
    )
    names.add_argument("--journal-dir", type=Path, default=DEFAULT_JOURNAL_DIR)
    add_ecdh_arguments(parser)
    from apckx.cli.tr34 import add_import_arguments

    add_import_arguments(parser, kek=False)
    add_retry_arguments(parser)


def add_ecdh_arguments(parser: argparse.ArgumentParser) -> None:
    """``--via ecdh``: import-kek's derivation and parties (import-key and export-key)."""
    ecdh = parser.add_argument_group("--via ecdh (as import-kek)")
    ecdh.add_argument("--curve", default="P521", help="P256, P384, P521 (default P521)")
    ecdh.add_argument("--kdf", default="NIST_SP800", help="NIST_SP800 (default) or ANSI_X963")
    ecdh.add_argument("--kdf-hash", default="SHA_256", help="SHA_256 (default), SHA_384, SHA_512")
    ecdh.add_argument("--derive-key-algorithm", help="default: the strongest the curve allows")
    ecdh.add_argument("--shared-info", metavar="HEX", help="default: fresh random")
    ecdh.add_argument("--certs-dir", type=Path, default=Path("certs"))
    ecdh.add_argument("--receiver-alias", help="default: import-kek's receiver alias")
    ecdh.add_argument("--root-alias", help="default: import-kek's sender root alias")
    ecdh.add_argument("--trust-apc-root", metavar="SHA256")


def parse_tag_options(values: list[str]) -> dict[str, str]:
    from apckx.ceremonies.manifest import parse_tags

    tags: dict[str, str] = {}
    for value in values:
        for key, tag_value in parse_tags(value):
            if key in tags:
                raise InputError("--tag: a tag key is given twice")
            tags[key] = tag_value
    return tags


def _spec(args: argparse.Namespace) -> Any:
    from apckx.ceremonies.import_key import (
        WorkingKeySpec,
        check_key_version,
        normalize_exportability,
        normalize_mode_of_use,
        resolve_key_usage,
    )
    from apckx.crypto.keys import KEY_ALGORITHMS

    if not args.key_usage or not args.key_algorithm:
        raise InputError("--key-usage and --key-algorithm are required to wrap a key")
    algorithm = args.key_algorithm.strip().upper()
    if algorithm not in KEY_ALGORITHMS:
        raise InputError(f"--key-algorithm must be one of {', '.join(KEY_ALGORITHMS)}")
    return WorkingKeySpec(
        key_usage=resolve_key_usage(args.key_usage),
        key_algorithm=algorithm,
        mode_of_use=normalize_mode_of_use(args.mode_of_use) if args.mode_of_use else None,
        exportability=normalize_exportability(args.exportability),
        key_version=check_key_version(args.key_version),
    )


def run(args: argparse.Namespace, *, io: keyinput.KeyInputIO | None = None) -> int:
    from apckx.ceremonies.manifest import check_alias

    tags = parse_tag_options(args.tag)
    if args.alias:
        check_alias(args.alias)
    via = args.via or ("ecdh" if args.kek_id is None and args.key_block is None else "kek")
    from apckx.cli import tr34

    if via in ("tr34", "rsa"):
        return tr34.run_import_key(args, tags, io)
    tr34.check_no_rsa_options(args, via)
    if via == "ecdh":
        if args.kek_id or args.key_block:
            raise InputError("--via ecdh takes no --kek-id or --key-block")
        return _run_ecdh(args, io)
    if not args.kek_id:
        raise InputError("--kek-id is required (the KEK in APC), or use --via ecdh")
    if args.key_block is not None:
        if keyinput.key_source_given(args, name="key"):
            raise InputError("--key-block carries the key already: drop the --key-* input")
        if keyinput.key_source_given(args, name="kek"):
            raise InputError("--key-block needs no KEK cleartext: drop the KEK input")
        return _run_key_block(args, tags)
    return _run_under_kek(args, tags, io)


def _run_key_block(args: argparse.Namespace, tags: dict[str, str]) -> int:
    from apckx.ceremonies.import_key import describe_key_block, import_key_block
    from apckx.ceremonies.journal import COMPLETE, FAILED, Journal
    from apckx.cli.keyinput import check_kcv_text
    from apckx.cli.tr31 import describe_header, format_header, read_block_argument
    from apckx.errors import ApckxError

    block = read_block_argument(args.key_block)
    describe_key_block(block)  # fails on a usage APC can't import, before any call
    info = describe_header(block)
    expected = check_kcv_text(args.expected_kcv, flag="--kcv") if args.expected_kcv else None
    if args.output == "text":
        from apckx.cli._output import format_rows

        print("Importing a TR-31 key block with this header:", file=sys.stderr)
        print(format_rows(format_header(info)), file=sys.stderr)
    apc = make_service(args)
    journal = Journal.create(
        args.journal_dir, "key", parameters={"via": "key-block", "kek_id": args.kek_id,
                                             "header": info["header"], "alias": args.alias},
    )  # fmt: skip
    try:
        result = import_key_block(
            apc, kek_id=args.kek_id, key_block=block, alias=args.alias,
            tags={"apckx:ceremony": journal.ceremony_id, **tags},
            expected_kcv=expected, journal=journal,
        )  # fmt: skip
    except ApckxError as exc:
        journal.finish(FAILED, error=str(exc))
        raise
    journal.set_output(**result.to_record())
    journal.finish(COMPLETE)
    print_result(result, args.output, journal.ceremony_id, header=info)
    return 0


def _run_under_kek(
    args: argparse.Namespace, tags: dict[str, str], io: keyinput.KeyInputIO | None
) -> int:
    from apckx.ceremonies.import_key import import_under_kek, verify_kek
    from apckx.ceremonies.journal import COMPLETE, FAILED, Journal
    from apckx.errors import ApckxError

    spec = _spec(args)
    if not keyinput.key_source_given(args, name="key"):
        raise InputError("no working key given: use --key-file PATH|-, --key-prompt or "
                         "--key-components N (or --key-block for a ready-made block)")  # fmt: skip
    if not keyinput.key_source_given(args, name="kek"):
        raise InputError("the KEK's cleartext is needed to wrap the key: use --kek-file, "
                         "--kek-env, --prompt or --components")  # fmt: skip
    # Key files, stdin and variables are read and checked now, before any call (prompts wait
    # for GetKey: the KEK's algorithm comes from APC).
    keyinput.preload_key(args, name="kek", algorithms=KEK_ALGORITHMS, io=io)
    keyinput.preload_key(args, name="key", algorithms=[spec.key_algorithm], io=io)
    apc = make_service(args)
    # The KEK first: its algorithm comes from APC, and a wrong KEK stops us before the key.
    kek_key = apc.get_key(args.kek_id)
    kek_algorithm = str(kek_key["KeyAttributes"]["KeyAlgorithm"])
    kek = keyinput.read_key(args, kek_algorithm, name="kek", label="KEK", io=io)
    kek_info = verify_kek(apc, args.kek_id, kek)
    key = keyinput.read_key(args, spec.key_algorithm, name="key", label="working key", io=io)
    if args.alias:
        from apckx.ceremonies.import_key import ensure_alias_free

        ensure_alias_free(apc, args.alias)
    journal = Journal.create(
        args.journal_dir, "key",
        parameters={"via": "kek", "kek_id": args.kek_id, "kek_arn": kek_info.key_arn,
                    "kek_kcv": kek_info.kcv, "key_usage": spec.key_usage,
                    "key_algorithm": spec.key_algorithm, "mode_of_use": spec.mode,
                    "exportability": spec.exportability, "alias": args.alias,
                    "key_source": keyinput.describe_key_source(args, name="key")},
    )  # fmt: skip
    try:
        result = import_under_kek(
            apc, kek_id=args.kek_id, kek=kek, key=key, spec=spec, alias=args.alias,
            tags={"apckx:ceremony": journal.ceremony_id, **tags}, kek_info=kek_info,
            journal=journal,
        )  # fmt: skip
    except ApckxError as exc:
        journal.finish(FAILED, error=str(exc))
        raise
    finally:
        del kek, key
    journal.set_output(**result.to_record())
    journal.finish(COMPLETE)
    print_result(result, args.output, journal.ceremony_id)
    return 0


def _run_ecdh(args: argparse.Namespace, io: keyinput.KeyInputIO | None) -> int:
    from apckx.ceremonies.import_kek import run_kek_import
    from apckx.ceremonies.import_key import plan_ecdh_key_import

    spec = _spec(args)
    if not args.alias:
        raise InputError("--via ecdh needs --alias for the imported key")
    if keyinput.key_source_given(args, name="kek"):
        raise InputError("--via ecdh derives its wrapping key: drop the KEK input")
    from apckx.ceremonies.ecdh_session import configured_trust_apc_root

    configured_trust_apc_root()  # a malformed APCKX_TRUST_APC_ROOT stops here
    plan = plan_ecdh_key_import(
        spec, alias=args.alias, curve=args.curve, kdf=args.kdf, kdf_hash=args.kdf_hash,
        derive_key_algorithm=args.derive_key_algorithm, shared_info_hex=args.shared_info,
        receiver_alias=args.receiver_alias, root_alias=args.root_alias,
        certs_dir=args.certs_dir, trust_apc_root=args.trust_apc_root,
    )  # fmt: skip
    key = keyinput.read_key(args, spec.key_algorithm, name="key", label="working key", io=io)
    apc = make_service(args)
    from apckx.cli._output import progress_printer

    try:
        outcome, journal = run_kek_import(
            apc, key, plan, journal_dir=args.journal_dir,
            progress=progress_printer(args.output == "text"), kind="key", role="working",
        )  # fmt: skip
    finally:
        del key
    result = ImportedKey(
        key_arn=outcome.key_arn,
        kcv=outcome.key_check_value.upper(),
        kcv_algorithm=outcome.key_check_value_algorithm,
        key_usage=spec.key_usage,
        key_algorithm=spec.key_algorithm,
        exportable=spec.exportability != "N",
        alias=outcome.key_alias,
        header=outcome.header,
        extra={
            "via": "ecdh",
            "receiver_key_arn": outcome.receiver_key_arn,
            "root_key_arn": outcome.root_key_arn,
            "shared_info_hex": outcome.shared_info_hex,
            "derivation": f"ECDH {outcome.curve} {outcome.kdf} {outcome.kdf_hash} -> "
            f"{outcome.derive_key_algorithm}",
        },
    )
    print_result(result, args.output, journal.ceremony_id)
    return 0


def print_result(
    result: ImportedKey,
    output: str,
    ceremony_id: str,
    *,
    header: dict[str, Any] | None = None,
) -> None:
    from apckx.cli._output import print_json, print_rows

    if output == "json":
        data = {"ceremony_id": ceremony_id, **result.to_record()}
        if header is not None:
            data["header_decoded"] = header
        print_json(data)
        return
    print_rows(
        f"Key imported: {result.key_arn}",
        [
            ("alias", result.alias),
            ("key", f"{result.key_usage}, {result.key_algorithm}"),
            ("exportable", "yes" if result.exportable else "no"),
            (
                "KCV",
                f"{result.kcv} ({result.kcv_algorithm}), "
                + (
                    "APC's equals the local one"
                    if result.kcv_checked
                    else "as APC computed it (pass --kcv to check it)"
                ),
            ),
            ("header", result.header),
            *[(k.replace("_", " "), v) for k, v in result.extra.items()],
            ("ceremony", ceremony_id),
        ],
    )
