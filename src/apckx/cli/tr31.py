"""``apckx tr31 inspect BLOCK|@FILE|-``: a TR-31 header decoded field by field, no key needed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from apckx.errors import InputError

MAX_BLOCK_FILE_BYTES = 20_000

VERSIONS = {
    "A": "TDES key variant binding (legacy; APC imports only)",
    "B": "TDES key derivation binding",
    "C": "TDES key variant binding (APC imports only)",
    "D": "AES key derivation binding",
}
ALGORITHMS = {
    "A": "AES",
    "T": "TDES",
    "H": "HMAC",
    "D": "DES",
    "R": "RSA",
    "E": "ECC",
    "S": "DSA",
}
EXPORTABILITY = {
    "E": "EXPORTABLE (under a trusted KEK)",
    "N": "NON_EXPORTABLE",
    "S": "SENSITIVE (exportable in a non-trusted form only)",
}
KEY_VERSIONS = {"00": "no key versioning"}
# X9.143:2021 section 6.3.6 optional block identifiers.
OPTIONAL_BLOCKS = {
    "AL": "asymmetric key life",
    "BI": "base derivation key identifier",
    "CT": "public key certificate",
    "DA": "derivations allowed",
    "HM": "HMAC hash algorithm",
    "IK": "initial key identifier (AES DUKPT)",
    "KC": "KCV of the wrapped key",
    "KP": "KCV of the KBPK (not retained by APC)",
    "KS": "initial key serial number (TDES DUKPT)",
    "KV": "key block values",
    "LB": "label",
    "PB": "padding",
    "PK": "protection key check value",
    "TC": "time of creation",
    "TS": "time stamp",
    "WP": "wrapping pedigree",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="tr31_action", metavar="ACTION", required=True)
    inspect = actions.add_parser(
        "inspect",
        help="decode a key block's header (no key needed)",
        description="Decode a TR-31 / X9.143 key block's header field by field, with APC's "
        "names next to the codes. The key stays encrypted: no KBPK is needed or asked for.",
    )
    inspect.add_argument(
        "block", metavar="BLOCK", help="the key block, @FILE to read it from a file, or - for stdin"
    )
    # The global --output/--debug live on the "tr31" parser; accept them here too.
    inspect.add_argument(
        "--output", choices=("text", "json"), default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )


def read_block_argument(text: str, *, what: str = "key block") -> str:
    """BLOCK, @FILE or - (stdin) -> the block text, whitespace removed."""
    if text == "-":
        data = sys.stdin.read(MAX_BLOCK_FILE_BYTES + 1)
        source = "stdin"
    elif text.startswith("@"):
        from apckx._hardening import read_regular_file

        path = Path(text[1:])
        content = read_regular_file(path, limit=MAX_BLOCK_FILE_BYTES, what=what)
        try:
            data = content.data.decode("ascii")
        except UnicodeDecodeError:
            raise InputError(f"{path} does not hold a {what} (not ASCII text)") from None
        source = str(path)
    else:
        data = text
        source = "the argument"
    block = "".join(data.split())
    if not block:
        raise InputError(f"no {what} in {source}")
    if len(block) > MAX_BLOCK_FILE_BYTES:
        raise InputError(f"{source} is too large to hold a {what}")
    return block


def describe_header(block: str) -> dict[str, Any]:
    """The header of ``block`` as a JSON-able dict: codes with APC names and meanings."""
    from apckx.crypto.attributes import MODE_FLAGS, MODES, USAGE_NAMES
    from apckx.crypto.tr31 import HM_HASHES, inspect_key_block

    header = inspect_key_block(block)
    usage_name = USAGE_NAMES.get(header.key_usage)
    modes = MODES.get(header.mode_of_use)
    algorithm = ALGORITHMS.get(header.algorithm, "unknown")
    hm = header.block("HM")
    if header.algorithm == "H" and hm:
        algorithm = HM_HASHES.get(hm, f"HMAC with unsupported hash {hm}")
    optional = [
        {
            "id": block_id,
            "value": value,
            "meaning": OPTIONAL_BLOCKS.get(block_id, "proprietary or unknown"),
        }
        for block_id, value in header.optional_blocks
    ]
    declared = int(header.raw[12:14]) if header.raw[12:14].isdigit() else len(optional)
    if declared == len(optional) + 1 and all(e["id"] != "PB" for e in optional):
        # The padding block: listed by the header's count, left out by the parser.
        start = 16 + sum(4 + len(e["value"]) for e in optional)
        optional.append(
            {"id": "PB", "value": header.raw[start + 4 :], "meaning": OPTIONAL_BLOCKS["PB"]}
        )
    for entry in optional:
        if entry["id"] == "HM":
            entry["meaning"] += f" ({HM_HASHES.get(entry['value'], 'unsupported')})"
    return {
        "length": header.length,
        "version_id": header.version_id,
        "version": VERSIONS.get(header.version_id, "unknown version"),
        "key_usage": header.key_usage,
        "key_usage_name": usage_name,
        "apc_accepts_usage": _apc_accepts(header.key_usage),
        "algorithm": header.algorithm,
        "algorithm_name": algorithm,
        "mode_of_use": header.mode_of_use,
        "key_modes_of_use": [f for f in MODE_FLAGS if modes and f in modes] if modes else None,
        "key_version": header.key_version,
        "key_version_meaning": KEY_VERSIONS.get(header.key_version, "key version"),
        "exportability": header.exportability,
        "exportability_name": EXPORTABILITY.get(header.exportability, "unknown"),
        "exportable": header.exportable,
        "optional_blocks": optional,
        "header": header.raw,
    }


def _apc_accepts(code: str) -> bool:
    from apckx.ceremonies.import_key import SUPPORTED_USAGE_CODES

    return code in SUPPORTED_USAGE_CODES


def format_header(info: dict[str, Any]) -> list[tuple[str, str]]:
    usage = info["key_usage_name"] or "not an APC key usage"
    if not info["apc_accepts_usage"]:
        usage += " (APC does not import this usage through TR-31)"
    modes = info["key_modes_of_use"]
    rows = [
        ("Header", info["header"]),
        ("Block length", f"{info['length']} characters"),
        ("Version", f"{info['version_id']}   {info['version']}"),
        ("Key usage", f"{info['key_usage']}  {usage}"),
        ("Algorithm", f"{info['algorithm']}   {info['algorithm_name']}"),
        (
            "Mode of use",
            f"{info['mode_of_use']}   {', '.join(modes) if modes else 'not an APC mode of use'}",
        ),
        ("Key version", f"{info['key_version']}  {info['key_version_meaning']}"),
        ("Exportability", f"{info['exportability']}   {info['exportability_name']}"),
        ("Optional blocks", str(len(info["optional_blocks"]))),
    ]
    for entry in info["optional_blocks"]:
        value = entry["value"] if entry["id"] != "PB" else f"{len(entry['value'])} characters"
        rows.append((f"  {entry['id']}", f"{value}  ({entry['meaning']})"))
    return rows


def run(args: argparse.Namespace) -> int:
    from apckx.cli._output import format_rows, print_json

    block = read_block_argument(args.block)
    info = describe_header(block)
    if args.output == "json":
        print_json(info)
    else:
        print("TR-31 key block header")
        print(format_rows(format_header(info)))
    return 0
