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
    group.add_argument(
        "--tr34-root-alias",
        metavar="ALIAS",
        help="the alias of apckx's RSA sender CA imported into APC (default "
        "alias/apckx-tr34-sender-root)",
    )
