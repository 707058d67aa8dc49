"""Migration manifests: a CSV file with a header row, or JSON lines with the same field names.

Every row names an ``alias`` and either a ``key_block`` (TR-31 under the KEK, imported as is,
no cleartext anywhere) or, for rehearsals, ``key_hex`` + ``key_usage`` + ``key_algorithm``
(wrapped locally under the KEK's cleartext). Optional: ``mode_of_use``, ``exportability``,
``tags`` (``k=v;k2=v2``) and ``kcv`` (the key's expected check value); for ``migrate --check``,
``check_input`` and ``expect`` (``name=value;name=value``, the names of ``apckx check``'s
``--input`` and ``--expect``).

The whole file is checked before any API call; every problem is reported as
``manifest.csv:7: what is wrong`` and no message ever echoes key material.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apckx.ceremonies.import_key import (
    describe_key_block,
    normalize_exportability,
    normalize_mode_of_use,
    resolve_key_usage,
    usage_code,
)
from apckx.errors import ApckxError, InputError

FIELDS = (
    "alias",
    "key_block",
    "key_hex",
    "key_usage",
    "key_algorithm",
    "mode_of_use",
    "exportability",
    "tags",
    "kcv",
    "check_input",
    "expect",
)
ALIAS_PATTERN = re.compile(r"alias/[a-zA-Z0-9/_-]+")  # AliasName [M], 7..256
KCV_PATTERN = re.compile(r"[0-9a-fA-F]{4,16}")  # KeyCheckValue [M]
TAG_KEY_MAX, TAG_VALUE_MAX, TAGS_MAX = 128, 256, 200  # Tag [M]
MAX_ERRORS_SHOWN = 50
#: A manifest is read whole and checked before any call: these bound the memory it takes.
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_MANIFEST_ROWS = 100_000


class ManifestError(InputError):
    """A manifest with one or more bad lines; ``errors`` holds every ``file:line: ...``."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(f"{self.errors[0]}{more}")


@dataclass(frozen=True)
class ManifestRow:
    """One key to migrate. ``key`` (rehearsal rows only) is cleartext: never printed."""

    line: int
    alias: str
    key_block: str | None = None
    key: bytes | None = field(default=None, repr=False)
    key_usage: str | None = None
    key_algorithm: str | None = None
    mode_of_use: str | None = None
    exportability: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    kcv: str | None = None
    check_inputs: tuple[tuple[str, str], ...] = ()  # migrate --check: apckx check's --input
    expects: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # ... and --expect

    @property
    def is_rehearsal(self) -> bool:
        return self.key is not None


@dataclass(frozen=True)
class Manifest:
    path: str
    rows: tuple[ManifestRow, ...]


def parse_tags(text: str) -> tuple[tuple[str, str], ...]:
    """``k=v;k2=v2`` -> ((k, v), (k2, v2)); keys unique, APC's length limits."""
    tags: list[tuple[str, str]] = []
    seen: set[str] = set()
    # Tag text is never echoed: a key pasted into the wrong column must not be shown.
    for number, item in enumerate((i for i in text.split(";") if i.strip()), start=1):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise InputError(f"tag {number} must be KEY=VALUE (tags look like k=v;k2=v2)")
        if len(key) > TAG_KEY_MAX or len(value) > TAG_VALUE_MAX:
            raise InputError(f"tag {number}: key at most 128, value at most 256 characters")
        if key in seen:
            raise InputError(f"tag {number} repeats the key of an earlier tag")
        seen.add(key)
        tags.append((key, value))
    if len(tags) > TAGS_MAX:
        raise InputError(f"at most {TAGS_MAX} tags per key (got {len(tags)})")
    return tuple(tags)


def check_alias(alias: str) -> str:
    if not (7 <= len(alias) <= 256 and ALIAS_PATTERN.fullmatch(alias)):
        raise InputError(
            "alias must look like alias/NAME (letters, digits, / _ -; 7..256 characters)"
        )
    return alias


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InputError("must be a string")
    text = str(value).strip()
    return text or None


def _tags_value(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping):  # JSON lines may carry {"k": "v"}
        return parse_tags(";".join(f"{k}={v}" for k, v in value.items()))
    text = _text(value, "tags")
    return parse_tags(text) if text else ()


def parse_row(record: Mapping[str, Any], line: int) -> ManifestRow:
    """Validate one record (field name -> value); raises InputError (without the line)."""
    from apckx.crypto.attributes import modes_from_code, validate_key_attributes
    from apckx.crypto.keys import KEY_ALGORITHMS, parse_key_hex

    with _column("alias"):
        alias = _text(record.get("alias"), "alias")
        if alias is None:
            raise InputError("is empty: every row needs alias/NAME")
        check_alias(alias)
    texts: dict[str, str | None] = {}
    for name in FIELDS[1:]:
        if name not in ("tags", "check_input", "expect"):
            with _column(name):
                texts[name] = _text(record.get(name), name)
    key_block, key_hex, kcv = texts["key_block"], texts["key_hex"], texts["kcv"]
    usage_text, algorithm_text = texts["key_usage"], texts["key_algorithm"]
    mode_text, export_text = texts["mode_of_use"], texts["exportability"]
    with _column("tags"):
        tags = _tags_value(record.get("tags"))
    if kcv is not None and not KCV_PATTERN.fullmatch(kcv):
        raise InputError("column kcv: must be 4 to 16 hex characters (APC reports 6)")
    checks = _check_pairs(record)

    if key_block is not None:
        if key_hex is not None:
            raise InputError("give key_block or key_hex, not both")
        extra = [
            name
            for name, value in (
                ("key_usage", usage_text),
                ("key_algorithm", algorithm_text),
                ("mode_of_use", mode_text),
                ("exportability", export_text),
            )
            if value is not None
        ]
        if extra:
            raise InputError(
                f"{', '.join(extra)} must be empty for a key_block row: the attributes come "
                "from the block's header"
            )
        with _column("key_block"):
            describe_key_block(key_block)  # a block APC can't import fails here, not later
        return ManifestRow(
            line=line, alias=alias, key_block=key_block, tags=tags,
            kcv=kcv.upper() if kcv else None, **checks,
        )  # fmt: skip

    if key_hex is None:
        raise InputError("needs key_block, or key_hex with key_usage and key_algorithm")
    missing = [
        n for n, v in (("key_usage", usage_text), ("key_algorithm", algorithm_text)) if v is None
    ]
    if missing:
        raise InputError(f"a key_hex row needs {' and '.join(missing)}")
    with _column("key_usage"):
        key_usage = resolve_key_usage(str(usage_text))
    key_algorithm = str(algorithm_text).upper()
    if key_algorithm not in KEY_ALGORITHMS:
        raise InputError(f"column key_algorithm: must be one of {', '.join(KEY_ALGORITHMS)}")
    key = parse_key_hex(key_hex, key_algorithm, what="key_hex")  # names the column itself
    with _column("mode_of_use"):
        mode_of_use = normalize_mode_of_use(mode_text) if mode_text else None
    with _column("exportability"):
        exportability = normalize_exportability(export_text) if export_text else None
    attributes = {
        "KeyUsage": key_usage,
        "KeyClass": "SYMMETRIC_KEY",
        "KeyAlgorithm": key_algorithm,
        "KeyModesOfUse": modes_from_code(mode_of_use or default_mode(key_usage)),
    }
    validate_key_attributes(attributes)
    return ManifestRow(
        line=line,
        alias=alias,
        key=key,
        key_usage=key_usage,
        key_algorithm=key_algorithm,
        mode_of_use=mode_of_use,
        exportability=exportability,
        tags=tags,
        kcv=kcv.upper() if kcv else None,
        **checks,
    )


def _check_pairs(record: Mapping[str, Any]) -> dict[str, Any]:
    """The ``check_input`` and ``expect`` columns (``name=value;...``), checked as ``apckx
    check`` checks its ``--input`` and ``--expect`` (values are never echoed)."""
    from apckx.ceremonies.check import EXPECTS, INPUTS, parse_pairs

    found: dict[str, Any] = {}
    for column, field_name, allowed, flag in (
        ("check_input", "check_inputs", INPUTS, "--input"),
        ("expect", "expects", EXPECTS, "--expect"),
    ):
        with _column(column):
            text = _text(record.get(column), column)
            if text:
                items = [i.strip() for i in text.split(";") if i.strip()]
                try:
                    pairs = parse_pairs(items, flag=flag, allowed=allowed)
                except InputError as exc:
                    raise InputError(str(exc).replace(flag, "", 1).lstrip(": ")) from None
                found[field_name] = tuple(pairs.items())
    return found


@contextlib.contextmanager
def _column(name: str) -> Iterator[None]:
    """Name the column in an error from the checks inside (which never echo the value)."""
    try:
        yield
    except ApckxError as exc:
        raise InputError(f"column {name}: {exc}") from None


def default_mode(key_usage: str) -> str:
    """The mode of use a rehearsal row gets when it names none (see import_key)."""
    from apckx.ceremonies.import_key import default_mode_of_use

    return default_mode_of_use(usage_code(key_usage))


def _csv_records(text: str, name: str) -> Iterable[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    for row in _csv_rows(reader, name):
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in row]
            _check_columns(header, f"{name}:{line}")
            continue
        if len(row) > len(header):
            raise ManifestError(
                [f"{name}:{line}: {len(row)} fields but the header has {len(header)}"]
            )
        yield line, dict(zip(header, row, strict=False))
    if header is None:
        raise ManifestError(
            [f"{name}: empty manifest (expected a header row: alias,key_block,...)"]
        )


def _csv_rows(reader: Any, name: str) -> Iterable[list[str]]:
    """The reader's rows; a CSV syntax error (a huge field, a stray CR) is a ManifestError."""
    try:
        yield from reader
    except csv.Error as exc:
        raise ManifestError([f"{name}:{reader.line_num + 1}: not valid CSV ({exc})"]) from None


def _shown_column(column: str) -> str:
    """An unknown column's name, unless it looks like data (a header row missing: it could be
    key material, which is never echoed)."""
    name_like = re.fullmatch(r"[a-z][a-z0-9_ ]{0,29}", column)
    hex_like = re.fullmatch(r"[0-9a-f ]{8,}", column)
    return repr(column) if name_like and not hex_like else "(a value?)"


def _check_columns(columns: Iterable[str], where: str) -> None:
    columns = list(columns)
    unknown = [c for c in columns if c not in FIELDS]
    if unknown:
        raise ManifestError(
            [
                f"{where}: unknown column(s) {', '.join(_shown_column(c) for c in unknown)}"
                f"; expected {', '.join(FIELDS)} (is the header row missing?)"
            ]
        )
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise ManifestError([f"{where}: column(s) given twice: {', '.join(duplicated)}"])
    if "alias" not in columns:
        raise ManifestError([f"{where}: missing column 'alias'"])
    if "key_block" not in columns and "key_hex" not in columns:
        raise ManifestError([f"{where}: missing column 'key_block' (or key_hex for rehearsals)"])


def _jsonl_records(text: str, name: str) -> Iterable[tuple[int, dict[str, Any]]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            record = json.loads(stripped)
        except json.JSONDecodeError as exc:
            # The decoder's message gives a position only, never the content.
            yield number, {"__error__": f"not valid JSON ({exc.msg} at column {exc.colno})"}
            continue
        if not isinstance(record, dict):
            yield number, {"__error__": "each line must be a JSON object"}
            continue
        unknown = [k for k in record if k not in FIELDS]
        if unknown:
            yield (
                number,
                {
                    "__error__": f"unknown field(s) "
                    f"{', '.join(_shown_column(str(k)) for k in unknown)}; "
                    f"expected {', '.join(FIELDS)}"
                },
            )
            continue
        yield number, record
    return


def detect_format(path: str, text: str) -> str:
    lower = path.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lower.endswith(".csv"):
        return "csv"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def parse_manifest_text(text: str, name: str, *, fmt: str | None = None) -> Manifest:
    """Parse and validate a whole manifest; raises ManifestError listing every bad line."""
    fmt = fmt or detect_format(name, text)
    records = _csv_records(text, name) if fmt == "csv" else _jsonl_records(text, name)
    rows: list[ManifestRow] = []
    errors: list[str] = []
    first_line: dict[str, int] = {}
    for count, (line, record) in enumerate(records, start=1):
        if count > MAX_MANIFEST_ROWS:
            raise ManifestError(
                [
                    f"{name}:{line}: more than {MAX_MANIFEST_ROWS} rows: split the manifest "
                    "and migrate the parts one after another"
                ]
            )
        if "__error__" in record:
            errors.append(f"{name}:{line}: {record['__error__']}")
            continue
        try:
            row = parse_row(record, line)
        except ApckxError as exc:
            errors.append(f"{name}:{line}: {exc}")
            continue
        if row.alias in first_line:
            first = first_line[row.alias]
            errors.append(f"{name}:{line}: duplicate alias {row.alias} (first on line {first})")
            continue
        first_line[row.alias] = line
        rows.append(row)
    if errors:
        raise ManifestError(errors)
    if not rows:
        raise ManifestError([f"{name}: no keys in the manifest"])
    return Manifest(path=name, rows=tuple(rows))


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest file (UTF-8, CSV or JSON lines)."""
    from apckx._hardening import read_regular_file

    path = Path(path)
    content = read_regular_file(path, limit=MAX_MANIFEST_BYTES, what="cannot read manifest")
    try:
        text = content.data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"manifest {path} is not UTF-8 text") from None
    return parse_manifest_text(text, path.name)
