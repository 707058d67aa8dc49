"""Fuzzing the parsers that take untrusted text: TR-31 blocks and headers, hex, manifests.

Whatever comes in, only :class:`ApckxError` subclasses come out: no ``IndexError``,
``UnicodeError``, ``binascii.Error`` or psec's own exceptions. A block that is tampered with
never unwraps to a key (``IntegrityError`` or a ``KeyBlockError``).

Examples per test: ``APCKX_FUZZ_EXAMPLES`` (default 40, well under a minute for the whole
hardening fuzz set on 2 cores); e.g. ``APCKX_FUZZ_EXAMPLES=2000 pytest tests/hardening``.
"""

from __future__ import annotations

import json
import os
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from apckx.ceremonies.manifest import parse_manifest_text
from apckx.crypto.ecdh import normalize_curve, parse_shared_info_hex
from apckx.crypto.keys import parse_key_hex
from apckx.crypto.tr31 import (
    build_header,
    inspect_key_block,
    parse_header,
    unwrap_key_block,
    wrap_key_block,
)
from apckx.errors import ApckxError, IntegrityError, KeyBlockError

FUZZ = settings(
    max_examples=int(os.environ.get("APCKX_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

KBPK = bytes.fromhex("88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6")
KEY = bytes.fromhex("3F419E1CB7079442AA37474C2EFBF8B8")
HEADER = "D0000D0AB00E0000"
VALID_BLOCK = wrap_key_block(KBPK, HEADER, KEY)
TDES_KBPK = bytes.fromhex("0123456789ABCDEFFEDCBA987654321089ABCDEF01234567")
TDES_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TDES_BLOCK = wrap_key_block(TDES_KBPK, "B0000P0TE00E0000", TDES_KEY)

# Characters a key block is made of, plus the ones that break naive parsers.
BLOCK_ALPHABET = string.ascii_uppercase + string.digits + "abcdef \t\n\x00\u00e9-+/="
block_text = st.text(alphabet=BLOCK_ALPHABET, max_size=200) | st.text(max_size=80)


def _fails_cleanly(fn: object, *args: object) -> None:
    try:
        fn(*args)  # type: ignore[operator]
    except ApckxError as exc:
        text = str(exc)
        assert "\n" not in text.strip(), text
        assert KEY.hex().upper() not in text.upper()


@FUZZ
@given(block_text)
def test_inspect_key_block_only_apckx_errors(text: str) -> None:
    _fails_cleanly(inspect_key_block, text)


@FUZZ
@given(block_text)
def test_parse_header_only_apckx_errors(text: str) -> None:
    _fails_cleanly(parse_header, text)


@FUZZ
@given(block_text, st.sampled_from([KBPK, KBPK[:16], KBPK[:24], TDES_KBPK, b"", b"\x00" * 7]))
def test_unwrap_arbitrary_text_only_apckx_errors(text: str, kbpk: bytes) -> None:
    _fails_cleanly(unwrap_key_block, kbpk, text)


def _mutations() -> st.SearchStrategy[tuple[str, str]]:
    """A valid block (D or B) changed at one place: a character, a cut, or an insertion."""
    blocks = st.sampled_from([("D", VALID_BLOCK), ("B", TDES_BLOCK)])

    @st.composite
    def mutate(draw: st.DrawFn) -> tuple[str, str]:
        version, block = draw(blocks)
        kind = draw(st.sampled_from(["replace", "truncate", "insert", "length"]))
        index = draw(st.integers(0, len(block) - 1))
        if kind == "replace":
            char = draw(st.sampled_from("0123456789ABCDEFZ"))
            assume(block[index] != char)
            return version, block[:index] + char + block[index + 1 :]
        if kind == "truncate":
            return version, block[:index]
        if kind == "insert":
            return version, block[:index] + draw(st.sampled_from("0A ")) + block[index:]
        return version, block[0] + f"{draw(st.integers(0, 9999)):04d}" + block[5:]

    return mutate()


@FUZZ
@given(_mutations())
def test_tampered_blocks_never_unwrap(mutation: tuple[str, str]) -> None:
    version, block = mutation
    kbpk = KBPK if version == "D" else TDES_KBPK
    assume(block not in (VALID_BLOCK, TDES_BLOCK))
    with pytest.raises(ApckxError) as caught:
        unwrap_key_block(kbpk, block)
    assert isinstance(caught.value, IntegrityError | KeyBlockError) or (
        isinstance(caught.value, ApckxError)
    )


@FUZZ
@given(st.binary(min_size=0, max_size=40), st.sampled_from([KBPK, TDES_KBPK]))
def test_wrong_kbpk_is_an_integrity_error(kbpk_noise: bytes, good: bytes) -> None:
    kbpk = (kbpk_noise + good)[: len(good)]
    assume(kbpk != good)
    block = VALID_BLOCK if good is KBPK else TDES_BLOCK
    try:
        unwrap_key_block(kbpk, block)
    except IntegrityError:
        return
    except ApckxError as exc:  # e.g. a degenerate or wrong-length KBPK, refused up front
        assert not isinstance(exc, IntegrityError)
        return
    raise AssertionError("a block unwrapped under the wrong KBPK")


@FUZZ
@given(
    st.sampled_from(["AES_128", "AES_256", "TDES_2KEY", "TDES_3KEY", "HMAC_SHA256"]),
    st.text(alphabet=string.hexdigits + " :xg\t-", max_size=140) | st.text(max_size=40),
)
def test_parse_key_hex_only_apckx_errors(algorithm: str, text: str) -> None:
    _fails_cleanly(parse_key_hex, text, algorithm)


@FUZZ
@given(st.text(alphabet=string.hexdigits + " 0x", max_size=2100) | st.text(max_size=30))
def test_shared_info_and_curve_only_apckx_errors(text: str) -> None:
    _fails_cleanly(parse_shared_info_hex, text)
    _fails_cleanly(normalize_curve, text)


@FUZZ
@given(
    st.sampled_from(
        ["K0", "D0", "P0", "M3", "B0", "E0", "ZZ", "", "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY"]
    ),
    st.sampled_from(["AES_128", "AES_256", "TDES_2KEY", "HMAC_SHA256", "RSA_2048", ""]),
    st.sampled_from(["AES_256", "TDES_3KEY", "AES_128", "X"]),
    st.text(alphabet="BEDXNCGVS?", max_size=2),
    st.text(alphabet="ENSX", max_size=2),
)
def test_build_header_only_apckx_errors(
    usage: str, algorithm: str, kbpk_algorithm: str, mode: str, exportability: str
) -> None:
    try:
        header = build_header(
            key_usage=usage,
            key_algorithm=algorithm,
            kbpk_algorithm=kbpk_algorithm,
            modes_of_use=mode,
            exportability=exportability,
        )
    except ApckxError:
        return
    assert parse_header(header).raw[5:] == header[5:]


# -- manifests ------------------------------------------------------------------------------
CSV_COLUMNS = ["alias", "key_block", "key_hex", "key_usage", "key_algorithm", "mode_of_use",
               "exportability", "tags", "kcv", "bogus"]  # fmt: skip
cell = st.one_of(
    st.sampled_from(["alias/ok-1", "alias/", "D0", "AES_128", "B", "E", "a=b;c", VALID_BLOCK,
                     KEY.hex(), "", '"', "x,y", "\n", "alias/has space"]),
    st.text(max_size=20),
)  # fmt: skip


@st.composite
def csv_manifests(draw: st.DrawFn) -> str:
    columns = draw(st.lists(st.sampled_from(CSV_COLUMNS), min_size=0, max_size=6))
    rows = draw(st.lists(st.lists(cell, min_size=0, max_size=7), max_size=5))
    return "\n".join([",".join(columns), *[",".join(row) for row in rows]])


@st.composite
def jsonl_manifests(draw: st.DrawFn) -> str:
    json_value = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | cell,
        lambda children: st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(CSV_COLUMNS), children, max_size=3),
        max_leaves=8,
    )
    records = draw(
        st.lists(st.dictionaries(st.sampled_from(CSV_COLUMNS), json_value, max_size=6), max_size=4)
    )
    lines = [json.dumps(r) for r in records]
    if draw(st.booleans()):
        lines.append(draw(st.text(max_size=30)))  # a broken line
    return "\n".join(lines)


@FUZZ
@given(csv_manifests() | st.text(max_size=300))
def test_csv_manifest_only_apckx_errors(text: str) -> None:
    _fails_cleanly(parse_manifest_text, text, "fuzz.csv")


@FUZZ
@given(jsonl_manifests())
def test_jsonl_manifest_only_apckx_errors(text: str) -> None:
    _fails_cleanly(parse_manifest_text, text, "fuzz.jsonl")


def test_manifest_errors_never_echo_key_hex() -> None:
    secret = "0123456789ABCDEFFEDCBA98765432ZZ"  # not hex at the end: refused
    text = f"alias,key_hex,key_usage,key_algorithm\nalias/k1,{secret},D0,AES_128\n"
    with pytest.raises(ApckxError) as caught:
        parse_manifest_text(text, "m.csv")
    assert secret[:16] not in str(caught.value)
    assert secret[:16] not in " ".join(getattr(caught.value, "errors", []))
