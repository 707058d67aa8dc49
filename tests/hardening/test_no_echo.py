"""No error message echoes a value that could be key material (issue 13 item 1).

A key pasted into the wrong manifest column, a lower-case key given as a key block, or a key
passed to ``tr31 inspect`` / ``import-key --key-block``: the message names the column and line
and says what was expected, and never holds 8 or more bytes (16 hex digits) of the key.
Hypothesis plants key hex in every cell of random CSV and JSON-lines manifests.
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apckx._cli import main
from apckx.ceremonies.manifest import FIELDS, ManifestError, parse_manifest_text
from apckx.cli.tr31 import describe_header
from apckx.errors import ApckxError

KEY = "676EDC9C023EB7B8A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718"
WINDOW = 16  # hex digits: 8 bytes


def leaks(message: str, key_hex: str) -> list[str]:
    """Every 8-byte window of ``key_hex`` found in ``message`` (any case, spaces ignored)."""
    text = "".join(message.split()).upper()
    key = key_hex.upper()
    return [
        key[i : i + WINDOW] for i in range(len(key) - WINDOW + 1) if key[i : i + WINDOW] in text
    ]


def manifest_errors(text: str, name: str) -> str:
    try:
        parse_manifest_text(text, name)
    except ManifestError as exc:
        return "\n".join(exc.errors) + "\n" + str(exc)
    except ApckxError as exc:  # pragma: no cover - parse_manifest_text raises ManifestError
        return str(exc)
    return ""


# -- the cases of the report, each of which leaked ----------------------------------------


@pytest.mark.parametrize(
    ("row", "column"),
    [
        (f"alias/a,,{KEY},D0,{KEY}", "key_algorithm"),
        (f"{KEY},,{KEY[:32]},D0,AES_128", "alias"),
        (f"alias/a,,{KEY[:32]},{KEY},AES_128", "key_usage"),
        (f"alias/a,{KEY.lower()},,,", "key_block"),
        (f"alias/a,{KEY},,,", "key_block"),
    ],
)
def test_reported_leaks_name_the_column_instead(row: str, column: str) -> None:
    text = "alias,key_block,key_hex,key_usage,key_algorithm\n" + row + "\n"
    message = manifest_errors(text, "m.csv")
    assert message.startswith(f"m.csv:2: column {column}: "), message
    assert not leaks(message, KEY), message


def test_tags_and_jsonl_fields_are_not_echoed() -> None:
    lines = [
        json.dumps(
            {
                "alias": "alias/a",
                "key_hex": KEY[:32],
                "key_usage": "D0",
                "key_algorithm": "AES_128",
                "tags": f"{KEY}",
            }
        ),
        json.dumps(
            {
                "alias": "alias/b",
                "key_hex": KEY[:32],
                "key_usage": "D0",
                "key_algorithm": "AES_128",
                KEY: "x",
            }
        ),
        json.dumps(
            {
                "alias": "alias/c",
                "key_hex": KEY[:32],
                "key_usage": "D0",
                "key_algorithm": "AES_128",
                "mode_of_use": KEY,
            }
        ),
        json.dumps(
            {
                "alias": "alias/d",
                "key_hex": KEY[:32],
                "key_usage": "D0",
                "key_algorithm": "AES_128",
                "exportability": KEY,
            }
        ),
    ]
    message = manifest_errors("\n".join(lines) + "\n", "m.jsonl")
    assert len(message.splitlines()) >= 4
    assert "m.jsonl:1: column tags: " in message
    assert "m.jsonl:3: column mode_of_use: " in message
    assert "m.jsonl:4: column exportability: " in message
    assert not leaks(message, KEY), message


@pytest.mark.parametrize("block", [KEY.lower(), "D0112" + KEY.lower()[:40], KEY, "D" + KEY])
def test_tr31_inspect_and_key_block_import_never_echo(block: str) -> None:
    with pytest.raises(ApckxError) as info:
        describe_header(block)
    assert not leaks(str(info.value), block)
    for argv in (["tr31", "inspect", block],
                 ["import-key", "--kek-id", "alias/k", "--key-block", block,
                  "--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9"]):  # fmt: skip
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv)
        assert rc == 2, err.getvalue()
        assert not leaks(out.getvalue() + err.getvalue(), block), err.getvalue()


# -- fuzz: key hex planted in every cell -------------------------------------------------

keys = (
    st.binary(min_size=16, max_size=32)
    .map(lambda b: b.hex())
    .flatmap(lambda h: st.sampled_from([h.upper(), h.lower(), h[:1].upper() + h[1:]]))
)
filler = st.sampled_from(["", "D0", "AES_128", "alias/x", "B", "E", "k=v", "A1B2C3", "K0"])


@st.composite
def planted_manifest(draw: st.DrawFn) -> tuple[str, str, str]:
    key_hex = draw(keys)
    columns = draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=9, unique=True))
    if draw(st.booleans()):
        columns = ["alias", *[c for c in columns if c != "alias"]]
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        row = {}
        for column in columns:
            planted = draw(st.sampled_from(["key", "prefixed", "suffixed", "filler"]))
            value = {
                "key": key_hex,
                "prefixed": draw(filler) + key_hex,
                "suffixed": key_hex + draw(filler),
                "filler": draw(filler),
            }[planted]
            if column == "tags" and draw(st.booleans()):
                value = draw(st.sampled_from([f"{key_hex}=v", f"k={key_hex}", f"a=b;{key_hex}"]))
            row[column] = value
        rows.append(row)
    if draw(st.booleans()):
        header = key_hex if draw(st.booleans()) else ",".join(columns)
        lines = [header, *[",".join(r[c] for c in columns) for r in rows]]
        return "\n".join(lines) + "\n", "fuzz.csv", key_hex
    if draw(st.booleans()):
        rows[0] = {**rows[0], key_hex: "x"}
    return "\n".join(json.dumps(r) for r in rows) + "\n", "fuzz.jsonl", key_hex


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planted_manifest())
def test_fuzz_no_manifest_message_holds_8_bytes_of_a_planted_key(
    case: tuple[str, str, str],
) -> None:
    text, name, key_hex = case
    message = manifest_errors(text, name)
    assert not leaks(message, key_hex), message


@settings(max_examples=200, deadline=None)
@given(keys, st.sampled_from(["", "D", "B0", "D0112", "D0144K0AB00E00", "A0072P0TE00E0000"]))
def test_fuzz_no_key_block_message_holds_8_bytes_of_a_key(key_hex: str, prefix: str) -> None:
    block = prefix + key_hex
    try:
        describe_header(block)
    except ApckxError as exc:
        assert not leaks(str(exc), key_hex), str(exc)
