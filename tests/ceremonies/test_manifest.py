"""Manifest parsing: CSV and JSON lines, per-line errors before any call, no key echoed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apckx.ceremonies.manifest import (
    ManifestError,
    load_manifest,
    parse_manifest_text,
    parse_tags,
)
from apckx.crypto.tr31 import build_header, wrap_key_block
from apckx.errors import InputError

KEK = bytes.fromhex("89E88CF7931444F334BD7547FC3F380C")  # AES_128, TR-31 D vector KBPK
AES_KEY_HEX = "2B7E151628AED2A6ABF7158809CF4F3C"
TDES_KEY_HEX = "0123456789ABCDEFFEDCBA9876543210"


def _block(usage: str = "D0", algorithm: str = "AES_128", key_hex: str = AES_KEY_HEX) -> str:
    header = build_header(
        key_usage=usage,
        key_algorithm=algorithm,
        kbpk_algorithm="AES_128",
        modes_of_use="B" if usage in ("D0", "K0", "P0") else "C",
    )
    return wrap_key_block(KEK, header, bytes.fromhex(key_hex))


def _errors(text: str, name: str = "manifest.csv") -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifest_text(text, name)
    return info.value.errors


def test_csv_with_blocks_and_rehearsal_rows() -> None:
    block = _block()
    text = (
        "alias,key_block,key_hex,key_usage,key_algorithm,mode_of_use,exportability,tags,kcv\n"
        f"alias/bdk-1,{block},,,,,,team=pay;env=test,\n"
        f"alias/pin-1,,{TDES_KEY_HEX},P0,TDES_2KEY,E,N,,08d7b4\n"
        f"alias/cvk-1,,{AES_KEY_HEX},TR31_C0_CARD_VERIFICATION_KEY,aes_128,,,,\n"
    )
    manifest = parse_manifest_text(text, "manifest.csv")
    first, second, third = manifest.rows
    assert first.key_block == block and first.key is None
    assert first.tags == (("team", "pay"), ("env", "test"))
    assert (first.line, second.line, third.line) == (2, 3, 4)
    assert second.key == bytes.fromhex(TDES_KEY_HEX)
    assert second.key_usage == "TR31_P0_PIN_ENCRYPTION_KEY"
    assert (second.mode_of_use, second.exportability, second.kcv) == ("E", "N", "08D7B4")
    assert third.key_usage == "TR31_C0_CARD_VERIFICATION_KEY"
    assert third.key_algorithm == "AES_128"
    assert AES_KEY_HEX not in repr(third) and TDES_KEY_HEX not in repr(second)


def test_jsonl_same_fields(tmp_path: Path) -> None:
    block = _block("M6")
    lines = [
        json.dumps({"alias": "alias/mac-1", "key_block": block, "tags": {"k": "v"}}),
        "",
        json.dumps(
            {
                "alias": "alias/dek-1",
                "key_hex": AES_KEY_HEX,
                "key_usage": "D0",
                "key_algorithm": "AES_128",
            }
        ),
    ]
    path = tmp_path / "keys.jsonl"
    path.write_text("\n".join(lines) + "\n")
    manifest = load_manifest(path)
    assert [r.alias for r in manifest.rows] == ["alias/mac-1", "alias/dek-1"]
    assert [r.line for r in manifest.rows] == [1, 3]
    assert manifest.rows[0].tags == (("k", "v"),)


def test_missing_columns_are_reported_with_the_header_line() -> None:
    assert _errors("key_block\nABC\n") == ["manifest.csv:1: missing column 'alias'"]
    assert "missing column 'key_block'" in _errors("alias,tags\nalias/a,\n")[0]
    errors = _errors("alias,key_blok\nalias/a,x\n")
    assert errors[0].startswith("manifest.csv:1: unknown column(s) 'key_blok'")


def test_every_bad_line_is_reported_before_any_call() -> None:
    block = _block()
    text = (
        "alias,key_block,key_hex,key_usage,key_algorithm\n"
        f"alias/ok,{block},,,\n"  # 2
        f"alias/ok,{block},,,\n"  # 3 duplicate
        "alias/badhex,,XYZ123,D0,AES_128\n"  # 4
        "alias/usage,,2B7E151628AED2A6ABF7158809CF4F3C,Q9,AES_128\n"  # 5
        "alias/m2,,0123456789ABCDEFFEDCBA9876543210,M2,TDES_2KEY\n"  # 6
        "no-prefix,,2B7E151628AED2A6ABF7158809CF4F3C,D0,AES_128\n"  # 7
        "alias/short,,2B7E1516,D0,AES_128\n"  # 8
        "alias/noalg,,2B7E151628AED2A6ABF7158809CF4F3C,D0,\n"  # 9
        "alias/badblock,D0112XXXX,,,\n"  # 10
        "alias/weak,,0123456789ABCDEFFEDCBA9876543210,M0,AES_128\n"  # 11 M0 is TDES only
    )
    errors = _errors(text)
    by_line = {int(e.split(":")[1]): e for e in errors}
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert "duplicate alias alias/ok (first on line 2)" in by_line[3]
    assert "not hex" in by_line[4]
    assert "Q9" in by_line[5]
    assert "M2 is not one APC accepts" in by_line[6] and "M7" in by_line[6]
    assert "alias/NAME" in by_line[7]
    assert "AES_128" in by_line[8]
    assert "key_algorithm" in by_line[9]
    assert by_line[10].startswith("manifest.csv:10: ")
    assert by_line[11].startswith("manifest.csv:11: ")
    for error in errors:  # never the key itself
        assert "2B7E151628AED2A6" not in error and "0123456789ABCDEF" not in error


def test_key_block_rows_take_attributes_from_the_header() -> None:
    errors = _errors(f"alias,key_block,key_usage\nalias/a,{_block()},D0\n")
    assert "must be empty for a key_block row" in errors[0]


def test_key_block_with_a_usage_apc_does_not_import() -> None:
    # A hand-made K3 header: APC imports no asymmetric keys through TR-31.
    block = _block()
    k3 = block[:5] + "K3" + block[7:]
    errors = _errors(f"alias,key_block\nalias/a,{k3}\n")
    assert errors[0].startswith("manifest.csv:2: ")


def test_bad_json_lines(tmp_path: Path) -> None:
    text = '{"alias": "alias/a", "key_block": "x"\n[1, 2]\n{"alias": "alias/b", "kb": 1}\n'
    errors = _errors(text, "m.jsonl")
    assert errors[0].startswith("m.jsonl:1: not valid JSON")
    assert errors[1] == "m.jsonl:2: each line must be a JSON object"
    assert errors[2].startswith("m.jsonl:3: unknown field(s) 'kb'")


def test_empty_and_unreadable(tmp_path: Path) -> None:
    assert "empty manifest" in _errors("")[0]
    assert "no keys" in _errors("alias,key_block\n")[0]
    with pytest.raises(InputError, match="cannot read manifest"):
        load_manifest(tmp_path / "missing.csv")


def test_error_summary_is_one_line() -> None:
    text = "alias,key_block\nalias/a,\nalias/b,\n"
    with pytest.raises(ManifestError) as info:
        parse_manifest_text(text, "manifest.csv")
    assert "\n" not in str(info.value)
    assert str(info.value).endswith("(and 1 more)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("k=v;k2=v2", (("k", "v"), ("k2", "v2"))), ("", ()), (" a = b ;", (("a", "b"),))],
)
def test_parse_tags(text: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert parse_tags(text) == expected


@pytest.mark.parametrize("text", ["novalue", "k=", "=v", "k=1;k=2"])
def test_parse_tags_rejects(text: str) -> None:
    with pytest.raises(InputError):
        parse_tags(text)
