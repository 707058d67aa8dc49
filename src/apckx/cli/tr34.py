"""``apckx tr34 inspect BLOCK|@FILE|-``: what a TR-34 key block says, without opening it.

Signer and recipient (IssuerAndSerialNumber), content cipher, random nonce (2-pass) or signing
time (1-pass), the key block header decoded as ``tr31 inspect`` decodes one, and the sizes of
the encrypted parts. No key is needed or asked for, and none is shown: the content key and the
key block stay encrypted.

The ``--via tr34|rsa`` options of import-kek, import-key and export-key are declared here too
(:func:`add_import_arguments`, :func:`add_export_arguments`), so their parsers stay small
hooks; the ceremonies live in :mod:`apckx.ceremonies.tr34_import` and
:mod:`apckx.ceremonies.tr34_export`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from apckx.errors import InputError

# A TR-34 block of an RSA-4096 KRD is about 3,000 hex characters; APC allows 4,096.
MAX_TR34_HEX = 8_192
WRAPPING_ALGORITHMS = ("RSA_2048", "RSA_3072", "RSA_4096")
WRAPPING_SPECS = ("RSA_OAEP_SHA_256", "RSA_OAEP_SHA_512")
DEFAULT_WRAPPING_ALGORITHM = "RSA_3072"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="tr34_action", metavar="ACTION", required=True)
    inspect = actions.add_parser(
        "inspect",
        help="show a TR-34 block's signer, recipient, cipher, nonce and header (no key)",
        description="Decode a TR-34 (X9 TR-34-2012, APC's shape) key block: who signed it, for "
        "which KRD certificate, the content cipher, the random nonce or signing time, and the "
        "key block header. Nothing is decrypted: no key is needed or shown.",
    )
    inspect.add_argument(
        "block",
        metavar="BLOCK",
        help="the block as upper-case hex, @FILE to read it from a file, or - for stdin",
    )
    inspect.add_argument(
        "--output", choices=("text", "json"), default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )


def read_tr34_block(text: str) -> bytes:
    """BLOCK, @FILE or - -> the DER (hex decoded; a file may also hold the raw DER)."""
    import sys
    from pathlib import Path

    from apckx.crypto.tr34 import key_block_from_hex

    if text.startswith("@"):
        from apckx._hardening import read_regular_file

        path = Path(text[1:])
        data = read_regular_file(path, limit=MAX_TR34_HEX * 2, what="TR-34 block").data
        if data[:1] == b"\x30":
            return data  # raw DER
        try:
            block = "".join(data.decode("ascii").split())
        except UnicodeDecodeError:
            raise InputError(f"{path} holds neither hex nor DER of a TR-34 block") from None
        source = str(path)
    elif text == "-":
        block = "".join(sys.stdin.read(MAX_TR34_HEX + 1).split())
        source = "stdin"
    else:
        block = "".join(text.split())
        source = "the argument"
    if not block:
        raise InputError(f"no TR-34 block in {source}")
    if len(block) > MAX_TR34_HEX:
        raise InputError(f"{source} is too large to hold a TR-34 block")
    return key_block_from_hex(block.upper())


def describe_tr34_block(der: bytes) -> dict[str, Any]:
    """The block's public facts (JSON-ready); never a key."""
    from apckx.crypto.tr34 import parse_key_block

    block = parse_key_block(der)
    return {
        "format": "X9_TR34_2012",
        "passes": block.passes,
        "signer": {
            "issuer": block.signer.issuer,
            "serial_number": f"{block.signer.serial_number:X}",
        },
        "recipient": {
            "issuer": block.recipient.issuer,
            "serial_number": f"{block.recipient.serial_number:X}",
        },
        "content_cipher": block.content_cipher,
        "random_nonce": block.nonce.hex().upper() if block.nonce is not None else None,
        "signing_time": block.signing_time.isoformat() if block.signing_time else None,
        "header": block.header,
        "header_decoded": _decode_header(block.header),
        "message_digest_sha256": block.message_digest.hex().upper(),
        "encrypted_content_key_bytes": len(block.encrypted_content_key),
        "encrypted_key_block_bytes": len(block.encrypted_key_block),
        "signature_bytes": len(block.signature),
        "block_bytes": len(der),
    }


def _decode_header(header: str) -> dict[str, Any] | None:
    """The TR-31 fields of a TR-34 header (its version and length are ignored in TR-34)."""
    from apckx.cli.tr31 import EXPORTABILITY
    from apckx.crypto.attributes import MODES, USAGE_NAMES
    from apckx.crypto.tr31 import parse_header

    try:
        parsed = parse_header(header)
    except InputError:
        return None
    modes = MODES.get(parsed.mode_of_use)
    return {
        "key_usage": parsed.key_usage,
        "key_usage_name": USAGE_NAMES.get(parsed.key_usage)
        or ("DUKPT initial key (IPEK)" if parsed.key_usage == "B1" else None),
        "algorithm": parsed.algorithm,
        "algorithm_name": {"T": "TDES", "A": "AES"}.get(parsed.algorithm, "unknown"),
        "mode_of_use": parsed.mode_of_use,
        "key_modes_of_use": sorted(modes) if modes else None,
        "key_version": parsed.key_version,
        "exportability": parsed.exportability,
        "exportability_name": EXPORTABILITY.get(parsed.exportability, "unknown"),
    }


def _format(info: dict[str, Any]) -> list[tuple[str, Any]]:
    freshness = (
        ("random nonce", info["random_nonce"])
        if info["passes"] == 2
        else ("signing time", info["signing_time"])
    )
    decoded = info.get("header_decoded") or {}
    usage = f"{decoded.get('key_usage')}  {decoded.get('key_usage_name') or '-'}"
    rows: list[tuple[str, Any]] = [
        ("format", f"{info['format']}, {info['passes']}-pass"),
        ("signer (KDH)", f"{info['signer']['issuer']}, serial {info['signer']['serial_number']}"),
        (
            "recipient (KRD)",
            f"{info['recipient']['issuer']}, serial {info['recipient']['serial_number']}",
        ),
        ("content cipher", info["content_cipher"]),
        freshness,
        ("header", info["header"]),
    ]
    if decoded:
        rows.append(("key usage", usage))
    if decoded:
        modes = decoded.get("key_modes_of_use")
        rows += [
            ("algorithm", f"{decoded['algorithm']}  {decoded['algorithm_name']}"),
            ("mode of use", f"{decoded['mode_of_use']}  {', '.join(modes) if modes else '-'}"),
            ("exportability", f"{decoded['exportability']}  {decoded['exportability_name']}"),
        ]
    rows += [
        ("message digest", info["message_digest_sha256"]),
        (
            "sizes",
            f"block {info['block_bytes']} B, content key {info['encrypted_content_key_bytes']} "
            f"B, key block {info['encrypted_key_block_bytes']} B (encrypted)",
        ),
    ]
    return rows


def run(args: argparse.Namespace) -> int:
    from apckx.cli._output import format_rows, print_json

    info = describe_tr34_block(read_tr34_block(args.block))
    if args.output == "json":
        print_json(info)
    else:
        print("TR-34 key block")
        print(format_rows(_format(info)))
    return 0


# -- the --via tr34|rsa options of import-kek, import-key and export-key --------------------


def add_import_arguments(parser: argparse.ArgumentParser, *, kek: bool) -> None:
    """``--via tr34|rsa`` options: the RSA wrapping key APC makes, the pass count, the hash."""
    group = parser.add_argument_group("--via tr34" + ("" if kek else " | rsa"))
    group.add_argument(
        "--wrapping-key-algorithm",
        choices=WRAPPING_ALGORITHMS,
        help="APC's RSA wrapping key (GetParametersForImport); default RSA_3072 (carries "
        "AES_128 and TDES; RSA_2048 carries TDES only)",
    )
    group.add_argument(
        "--one-pass",
        action="store_true",
        help="TR-34 1-pass (signing time, no nonce); default 2-pass with a fresh 8-byte nonce",
    )
    if not kek:
        group.add_argument(
            "--wrapping-spec",
            choices=WRAPPING_SPECS,
            help="--via rsa: the OAEP hash (default RSA_OAEP_SHA_256)",
        )


_ECDH_ONLY = {
    "curve": "--curve",
    "kdf": "--kdf",
    "kdf_hash": "--kdf-hash",
    "derive_key_algorithm": "--derive-key-algorithm",
    "shared_info": "--shared-info",
    "receiver_alias": "--receiver-alias",
    "new_receiver_key": "--new-receiver-key",
    "resume": "--resume",
    "header": "--header",
}
_RSA_ONLY = {"wrapping_key_algorithm": "--wrapping-key-algorithm", "one_pass": "--one-pass",
             "wrapping_spec": "--wrapping-spec"}  # fmt: skip


def check_no_rsa_options(args: argparse.Namespace, via: str) -> None:
    """``--via ecdh|kek``: refuse the TR-34/RSA options (they would be silently ignored)."""
    for dest, flag in _RSA_ONLY.items():
        if getattr(args, dest, None) not in (None, False):
            raise InputError(f"{flag} is for --via tr34 or rsa, not --via {via}")


def _check_no_ecdh_options(args: argparse.Namespace, via: str, *, defaults: dict[str, Any]) -> None:
    for dest, flag in _ECDH_ONLY.items():
        value = getattr(args, dest, None)
        if value not in (None, False) and value != defaults.get(dest):
            what = "builds its header from --key-usage/--mode-of-use/--exportability" if (
                dest == "header") else "has no such setting"  # fmt: skip
            if dest == "resume":
                what = "does not resume: roll a failed ceremony back (cleanup) and run it again"
            raise InputError(f"{flag} is an ECDH option: --via {via} {what}")


def _progress(args: argparse.Namespace) -> Any:
    from apckx.cli._output import progress_printer

    return progress_printer(getattr(args, "output", "text") == "text")


def run_import_kek(args: argparse.Namespace, io: Any = None) -> int:
    """``apckx import-kek --via tr34``."""
    from apckx.ceremonies.tr34_import import TR34_KEK_ALIAS, plan_rsa_import, run_rsa_import
    from apckx.cli import keyinput
    from apckx.cli._aws import check_aws_options, make_service
    from apckx.cli.import_kek import check_local_paths

    _check_no_ecdh_options(args, "tr34", defaults={})
    plan = plan_rsa_import(
        via="tr34", role="kek", key_usage=args.key_usage or "K0",
        key_algorithm=args.key_algorithm or "AES_128", alias=args.kek_alias or TR34_KEK_ALIAS,
        mode_of_use=args.mode_of_use or "B", exportability=args.exportability or "E",
        wrapping_key_algorithm=args.wrapping_key_algorithm, one_pass=args.one_pass,
        root_alias=args.root_alias, certs_dir=args.certs_dir or Path("certs"),
        trust_apc_root=args.trust_apc_root, replace=bool(args.replace),
    )  # fmt: skip
    check_aws_options(args)
    check_local_paths(args, plan)
    kek = keyinput.read_key(args, plan.key_algorithm, name="kek", label="KEK", io=io)
    apc = make_service(args)
    try:
        result, journal = run_rsa_import(
            apc, kek, plan, journal_dir=args.journal_dir, progress=_progress(args)
        )
    finally:
        del kek
    record = _write_record(args, apc, journal, keyinput.describe_key_source(args, name="kek"))
    print_import_result(result.to_record(), args.output, journal=journal.path, record=record,
                        what="KEK")  # fmt: skip
    return 0


def _write_record(args: argparse.Namespace, apc: Any, journal: Any, source: str) -> Any:
    from apckx.ceremonies.journal import write_ceremony_record

    records_dir = getattr(args, "records_dir", None)
    if records_dir is None:
        return None
    details = {"key_source": source, "region": apc.client.meta.region_name,
               "endpoint": apc.client.meta.endpoint_url, "profile": args.profile}  # fmt: skip
    return write_ceremony_record(
        records_dir, journal, api_calls=[c.to_record() for c in apc.calls], details=details
    )


def run_import_key(args: argparse.Namespace, tags: dict[str, str], io: Any = None) -> int:
    """``apckx import-key --via tr34|rsa``."""
    from apckx.ceremonies.journal import check_writable_dir
    from apckx.ceremonies.tr34_import import plan_rsa_import, run_rsa_import
    from apckx.cli import keyinput
    from apckx.cli._aws import make_service

    via = args.via
    if args.kek_id or args.key_block:
        raise InputError(f"--via {via} takes no --kek-id or --key-block")
    if keyinput.key_source_given(args, name="kek"):
        raise InputError(f"--via {via} wraps under APC's RSA key: drop the KEK input")
    if not args.key_usage or not args.key_algorithm:
        raise InputError("--key-usage and --key-algorithm are required to wrap a key")
    if not args.alias:
        raise InputError(f"--via {via} needs --alias for the imported key")
    if args.expected_kcv:
        raise InputError("--kcv is for --key-block: the KCV is computed from the key given")
    _check_no_ecdh_options(args, via, defaults={"curve": "P521", "kdf": "NIST_SP800",
                                                 "kdf_hash": "SHA_256"})  # fmt: skip
    if via == "rsa" and args.root_alias:
        raise InputError("--root-alias is for --via tr34 (RSA wrap uses no sender root)")
    plan = plan_rsa_import(
        via=via, role="working", key_usage=args.key_usage, key_algorithm=args.key_algorithm,
        alias=args.alias, mode_of_use=args.mode_of_use, exportability=args.exportability,
        key_version=args.key_version, wrapping_key_algorithm=args.wrapping_key_algorithm,
        one_pass=args.one_pass, wrapping_spec=args.wrapping_spec, root_alias=args.root_alias,
        certs_dir=args.certs_dir, trust_apc_root=args.trust_apc_root,
    )  # fmt: skip
    check_writable_dir(args.journal_dir, what="journal directory", create=False)
    key = keyinput.read_key(args, plan.key_algorithm, name="key", label="working key", io=io)
    apc = make_service(args)
    try:
        result, journal = run_rsa_import(
            apc, key, plan, journal_dir=args.journal_dir, progress=_progress(args), tags=tags
        )
    finally:
        del key
    print_import_result(result.to_record(), args.output, journal=journal.path, what="Key")
    return 0


def print_import_result(
    data: dict[str, Any], output: str, *, journal: Any, record: Any = None, what: str
) -> None:
    from apckx.cli._output import print_json, print_rows

    if output == "json":
        print_json({**data, "journal": str(journal), "record": str(record) if record else None})
        return
    if data.get("via") == "tr34":
        how = f"TR-34 {data.get('passes')}-pass to APC's {data['wrapping_key_algorithm']} key" + (
            f", nonce {data['random_nonce']}" if data.get("random_nonce") else ""
        )
    else:
        how = f"RSA wrap {data.get('wrapping_spec')} to APC's {data['wrapping_key_algorithm']} key"
    root = data.get("root_key_arn")
    print_rows(
        f"{what} imported: {data['key_arn']}",
        [
            ("ceremony", data["ceremony_id"]),
            ("alias", data["alias"]),
            ("key", f"{data['key_usage']}, {data['key_algorithm']}"),
            ("exportable", "yes" if data.get("exportable") else "no"),
            ("KCV", f"{data['kcv']} (APC) = {data['local_kcv']} (local), {data['kcv_algorithm']}"),
            ("via", how),
            ("header", data.get("header")),
            (
                "sender root",
                f"{root} ({'reused' if data.get('root_reused') else 'created'})" if root else None,
            ),
            ("replaced", data.get("replaced_key_arn")),
            ("APC root SHA-256", data["apc_root_fingerprint"]),
            ("APC wrapping SHA-256", data["apc_wrapping_fingerprint"]),
            ("sender CA SHA-256", data.get("sender_ca_fingerprint")),
            ("journal", journal),
            ("record", record),
        ],
    )


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """``export-key --via tr34|rsa`` options."""
    group = parser.add_argument_group("--via tr34 | rsa")
    group.add_argument(
        "--krd-certificate",
        type=Path,
        metavar="FILE",
        help="relay to a partner: its KRD / RSA-wrap certificate (PEM); apckx never holds the "
        "key and writes the block to --out for the HSM (default: apckx's own RSA key)",
    )
    group.add_argument(
        "--krd-ca", type=Path, metavar="FILE", help="the CA (PEM) that issued --krd-certificate"
    )
    group.add_argument(
        "--ipek",
        action="store_true",
        help="export the DUKPT initial key of the BDK --key for --ksn (ExportDukptInitialKey)",
    )
    group.add_argument("--ksn", metavar="HEX", help="with --ipek: the key serial number")
    group.add_argument(
        "--one-pass", action="store_true", help="TR-34 1-pass (default 2-pass with a nonce)"
    )
    group.add_argument(
        "--wrapping-spec", choices=WRAPPING_SPECS, help="--via rsa: default RSA_OAEP_SHA_256"
    )


def run_export_key(args: argparse.Namespace, io: Any = None) -> int:
    """``apckx export-key --via tr34|rsa``."""
    from typing import cast

    from apckx.ceremonies.export_key import (
        ExportHeaders,
        check_block_destination,
        check_components_destination,
        write_components,
        write_key_block,
    )
    from apckx.ceremonies.import_key import verify_kek
    from apckx.ceremonies.journal import COMPLETE, FAILED, Journal
    from apckx.ceremonies.tr34_export import (
        RsaExportOptions,
        check_export_options,
        export_over_rsa,
        wrap_for_kek,
    )
    from apckx.ceremonies.tr34_session import describe_failure
    from apckx.cli import keyinput
    from apckx.cli._aws import make_service
    from apckx.cli.export_key import _optional_blocks
    from apckx.errors import ApckxError, CeremonyError, ConfigError, KcvMismatchError

    via = args.via
    if args.ipek != (args.ksn is not None):
        raise InputError("--ipek and --ksn go together (the DUKPT initial key for that KSN)")
    _check_no_ecdh_options(args, via, defaults={"curve": "P521", "kdf": "NIST_SP800",
                                                 "kdf_hash": "SHA_256"})  # fmt: skip
    headers = ExportHeaders.from_options(
        mode_of_use=args.mode_of_use, exportability=args.exportability,
        key_version=args.key_version, optional_blocks=_optional_blocks(args.optional_block),
    ).to_apc()  # fmt: skip
    if headers and via == "rsa":
        raise InputError("--via rsa carries no key block header: drop the KeyBlockHeaders options")
    options = RsaExportOptions(
        via=via, certs_dir=args.certs_dir, root_alias=args.root_alias, one_pass=args.one_pass,
        wrapping_spec=args.wrapping_spec or "RSA_OAEP_SHA_256",
        trust_apc_root=_fingerprint(args.trust_apc_root), krd_certificate=args.krd_certificate,
        krd_ca=args.krd_ca, ipek_ksn=args.ksn,
    )  # fmt: skip
    partner = check_export_options(options)
    kek_given = keyinput.key_source_given(args, name="kek")
    if partner is not None:
        if args.split_components is not None or args.kek_id or kek_given:
            raise InputError("relayed to a partner, the key never reaches apckx: drop "
                             "--components/--kek-id; the block goes to --out FILE")  # fmt: skip
        if args.out is None:
            raise InputError("--krd-certificate needs --out FILE: the block is written 0600 for "
                             "the partner's HSM")  # fmt: skip
    elif args.split_components is None and not args.kek_id:
        raise InputError(
            f"--via {via} to apckx's own RSA key needs an output: --components N --out-dir "
            "DIR, or --kek-id (a TR-31 block under that KEK, whose cleartext you give); or "
            "--krd-certificate to relay to a partner"
        )
    if args.split_components is not None:
        if args.out_dir is None:
            raise InputError("--components needs --out-dir DIR for the component files")
        if not 2 <= args.split_components <= 9:
            raise InputError(f"--components must be between 2 and 9 (got {args.split_components})")
        if args.kek_id or args.out is not None:
            raise InputError("--components go to --out-dir DIR: drop --kek-id and --out")
        check_components_destination(cast(Path, args.out_dir))
    elif args.out_dir is not None:
        raise InputError("--out-dir is for --components; use --out FILE for the block")
    elif args.out is not None:
        for warning in check_block_destination(args.out):
            import sys

            print(f"apckx: warning: {warning}", file=sys.stderr)
    if args.kek_id and not kek_given:
        raise InputError("--kek-id needs the KEK's cleartext to wrap the key locally: "
                         "--kek-file, --kek-env, --prompt or --kek-components")  # fmt: skip
    apc = make_service(args)
    kek: bytes | None = None
    kek_algorithm = ""
    if args.kek_id:
        kek_key = apc.get_key(args.kek_id)
        kek_algorithm = str(kek_key["KeyAttributes"]["KeyAlgorithm"])
        kek = keyinput.read_key(args, kek_algorithm, name="kek", label="KEK", io=io)
        verify_kek(apc, args.kek_id, kek)
    journal = Journal.create(
        args.journal_dir, f"export-{via}",
        parameters={"key": args.key, "via": via, "receiver": "partner" if partner else "apckx",
                    "krd_certificate": str(args.krd_certificate) if partner else None,
                    "ipek_ksn": args.ksn, "kek_id": args.kek_id,
                    "passes": None if via == "rsa" else (1 if args.one_pass else 2)},
    )  # fmt: skip
    try:
        exported, record = export_over_rsa(
            apc, key_id=args.key, options=options, journal=journal, partner=partner,
            headers=headers, progress=_progress(args),
        )  # fmt: skip
        if exported is None:
            write_key_block(cast(Path, args.out), str(record.pop("key_block")))
            record["out"] = str(args.out)
        elif args.split_components is not None:
            files = write_components(exported, args.split_components, cast(Path, args.out_dir))
            record["components"] = [
                {"index": f.index, "path": str(f.path), "kcv": f.kcv} for f in files
            ]
        else:
            block = wrap_for_kek(exported, cast(bytes, kek), kek_algorithm)
            record["tr31_kek_id"] = args.kek_id
            if args.out is not None:
                write_key_block(args.out, block)
                record["out"] = str(args.out)
            else:
                record["key_block"] = block
        del exported
    except ApckxError as exc:
        journal.finish(FAILED, error=str(exc))
        error_type: type[ApckxError] = CeremonyError
        if isinstance(exc, KcvMismatchError | ConfigError | InputError):
            error_type = type(exc)
        raise error_type(describe_failure(journal, exc)) from None
    except Exception as exc:  # the journal is finished whatever stopped the ceremony
        journal.finish(FAILED, error=type(exc).__name__)
        raise CeremonyError(describe_failure(journal, exc)) from None
    finally:
        del kek
    journal.finish(COMPLETE, outputs={k: v for k, v in record.items() if k != "key_block"})
    _print_export(record, args.output, journal.ceremony_id)
    return 0


def _fingerprint(text: str | None) -> str | None:
    from apckx.ceremonies.import_kek import normalize_fingerprint

    return None if text is None else normalize_fingerprint(text)


def _print_export(record: dict[str, Any], output: str, ceremony_id: str) -> None:
    import sys

    from apckx.cli._output import format_rows, print_json

    if output == "json":
        print_json({"ceremony_id": ceremony_id, **record})
        return
    report = sys.stdout
    if "key_block" in record:
        print(record["key_block"])  # stdout carries the block alone; the report goes to stderr
        report = sys.stderr
    how = (
        f"TR-34 {record.get('passes')}-pass" if record["via"] == "tr34"
        else f"RSA wrap {record.get('wrapping_spec')}"
    )  # fmt: skip
    kcv = record.get("kcv")
    rows: list[tuple[str, Any]] = [
        ("via", f"{how} to {record['receiver']}'s {record['receiver_rsa_algorithm']} key"),
        ("header", record.get("header") if record["via"] == "tr34" else None),
        ("random nonce", record.get("random_nonce")),
        ("IPEK for KSN", record.get("ipek_ksn")),
        ("KCV", None if kcv is None else (
            f"{kcv} ({record['kcv_algorithm']}), equal to APC's" if record.get("kcv_algorithm")
            else f"{kcv}, as APC reports it (the key was relayed, not opened)")),
        ("receiver's CA in APC", record.get("root_key_arn")),
        ("block written to", record.get("out")),
        ("ceremony", ceremony_id),
    ]  # fmt: skip
    for component in record.get("components", []):
        rows.append(
            (f"component {component['index']}", f"{component['path']}  KCV {component['kcv']}")
        )
    print(f"Key exported: {record['key_arn']} ({record['key_algorithm']})", file=report)
    print(format_rows(rows), file=report)
