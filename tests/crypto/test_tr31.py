"""TR-31 behaviour beyond the vectors: refusals, APC attribute mapping, round trips."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import psec.tr31
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apckx.crypto import tr31
from apckx.crypto.keys import KEY_ALGORITHMS, allowed_lengths, strength_bits
from apckx.errors import InputError, IntegrityError, KeyBlockError, StrengthError

AES256_KBPK = bytes.fromhex("88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6")
AES128_KBPK = bytes.fromhex("F45185EADC5B799819DC8F4C3B58EC73")
TDES2_KBPK = bytes.fromhex("DD7515F2BFC17F85CE48F3CA25CB21F6")
TDES2_KEY = bytes.fromhex("3F419E1CB7079442AA37474C2EFBF8B8")
VECTORS_FILE = Path(__file__).resolve().parents[1] / "vectors" / "tr31_wrap_unwrap.json"
VECTORS = {e["id"]: e for e in json.loads(VECTORS_FILE.read_text(encoding="utf-8"))}
D_BLOCK = VECTORS["x9143_2021_8.1"]["key_block"]  # AES-256 KBPK
B_BLOCK = VECTORS["tr31_2018_A.7.2.2"]["key_block"]  # TDES_2KEY KBPK


def _flip(block: str, index: int) -> str:
    char = block[index]
    replacement = "0" if char != "0" else "1"
    return block[:index] + replacement + block[index + 1 :]


# --- integrity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kbpk", "block"), [(AES256_KBPK, D_BLOCK), (TDES2_KBPK, B_BLOCK)], ids=["D", "B"]
)
@pytest.mark.parametrize("where", ["mac", "ciphertext", "header"])
def test_tampering_fails_integrity(kbpk: bytes, block: str, where: str) -> None:
    index = {"mac": len(block) - 1, "ciphertext": 20, "header": 11}[where]
    tampered = _flip(block, index) if where != "header" else block[:11] + "N" + block[12:]
    with pytest.raises(IntegrityError) as info:
        tr31.unwrap_key_block(kbpk, tampered)
    assert str(info.value) == "key block integrity check failed"  # says nothing more


@pytest.mark.parametrize(
    ("kbpk", "block"),
    [(os.urandom(32), D_BLOCK), (os.urandom(16), B_BLOCK), (AES128_KBPK, D_BLOCK)],
    ids=["random-AES_256", "random-TDES_2KEY", "other-AES_128"],
)
def test_wrong_kbpk_fails_integrity(kbpk: bytes, block: str) -> None:
    with pytest.raises(IntegrityError):
        tr31.unwrap_key_block(kbpk, block)


def test_truncation_with_matching_length_field_fails_integrity() -> None:
    truncated = "D0112" + D_BLOCK[5:-32]
    with pytest.raises(IntegrityError):
        tr31.unwrap_key_block(AES256_KBPK, truncated)


def test_integrity_error_is_not_an_input_error() -> None:
    with pytest.raises(IntegrityError) as info:
        tr31.unwrap_key_block(os.urandom(32), D_BLOCK)
    assert not isinstance(info.value, InputError)


# --- malformed input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (D_BLOCK[:-2], "length field says 144"),  # truncated
        ("D0048P0AE00E0000" + "A" * 32, "truncated or padded wrongly"),
        (D_BLOCK.replace("D0144", "D0146", 1) + "00", "truncated or padded wrongly"),
        (D_BLOCK.replace("D0144", "D01X4", 1), "length field 'D01X4'|must be 4 digits"),
        (D_BLOCK.replace("D0144", "D0143", 1), "length field says 143"),
        ("d" + D_BLOCK[1:], "upper case"),
        (D_BLOCK[:5] + "p0ae00e0000" + D_BLOCK[16:], "upper case"),
        (D_BLOCK[:16] + D_BLOCK[16:].lower(), "upper-case hex"),
        ("E" + D_BLOCK[1:], "version 'E' is not supported"),
        ("D0144P0AE", "at least 16 characters"),
        ("", "at least 16 characters"),
        (D_BLOCK[:-1] + "é", "printable ASCII"),
        (D_BLOCK[:12] + "0X" + D_BLOCK[14:], "2 digits"),
        ("D0048P0AE00E0100KS" + "A" * 30, "malformed TR-31 header"),
    ],
    ids=[
        "truncated",
        "no-encrypted-key",
        "extra-data",
        "non-digit-length",
        "length-off-by-one",
        "lower-case-version",
        "lower-case-fields",
        "lower-case-hex",
        "unknown-version",
        "short-header",
        "empty",
        "non-ascii",
        "bad-block-count",
        "missing-optional-block",
    ],
)
def test_malformed_blocks_raise_key_block_error(block: str, message: str) -> None:
    with pytest.raises(KeyBlockError, match=message):
        tr31.unwrap_key_block(AES256_KBPK, block)
    with pytest.raises(KeyBlockError):
        tr31.inspect_key_block(block)


def test_key_block_errors_are_input_errors() -> None:
    assert issubclass(KeyBlockError, InputError)
    assert issubclass(StrengthError, InputError)


def test_invalid_key_length_field_after_good_mac() -> None:
    header = "D0112K0AB00E0000"
    version = tr31._VERSIONS["D"]
    kbek, kbak = tr31.derive_block_keys(AES256_KBPK, "D")
    payload = (8 * 40).to_bytes(2, "big") + bytes(30)  # claims 40 bytes in a 32-byte payload
    assert version.seal is not None
    ciphertext, mac = version.seal(kbek, kbak, header, payload)
    block = header + ciphertext.hex().upper() + mac.hex().upper()
    assert len(block) == 112
    with pytest.raises(KeyBlockError, match="key length field is invalid"):
        tr31.unwrap_key_block(AES256_KBPK, block)


# --- version / KBPK fit and strength --------------------------------------------------------


@pytest.mark.parametrize(
    ("kbpk", "block", "kbpk_algorithm", "message"),
    [
        (AES256_KBPK, B_BLOCK, None, "version B key block needs a TDES KBPK of 16, 24"),
        (TDES2_KBPK, D_BLOCK, "TDES_2KEY", "needs a AES KBPK, not TDES_2KEY: use version B"),
        (AES128_KBPK, B_BLOCK, "AES_128", "needs a TDES KBPK, not AES_128: use version D"),
        (bytes(8), B_BLOCK, None, "got 8"),
        (AES256_KBPK, D_BLOCK, "AES_128", "not a AES_128 key"),
        (AES256_KBPK, D_BLOCK, "HMAC_SHA256", "must be TDES or AES"),
    ],
)
def test_version_must_fit_kbpk(
    kbpk: bytes, block: str, kbpk_algorithm: str | None, message: str
) -> None:
    with pytest.raises(KeyBlockError, match=message):
        tr31.unwrap_key_block(kbpk, block, kbpk_algorithm=kbpk_algorithm)


def test_wrap_version_must_fit_kbpk() -> None:
    with pytest.raises(KeyBlockError, match="use version D"):
        tr31.wrap_key_block(AES128_KBPK, "B0000K0TB00E0000", TDES2_KEY, kbpk_algorithm="AES_128")
    with pytest.raises(KeyBlockError, match="TDES KBPK"):
        tr31.wrap_key_block(AES256_KBPK, "B0000K0TB00E0000", TDES2_KEY)


@pytest.mark.parametrize(
    ("kbpk", "header", "key"),
    [
        (AES128_KBPK, "D0000K0AB00E0000", os.urandom(32)),  # AES-256 under AES-128
        (AES128_KBPK, "D0000K0AB00E0000", os.urandom(24)),  # AES-192 under AES-128
        (TDES2_KBPK, "B0000K0TB00E0000", os.urandom(24)),  # TDES_3KEY under TDES_2KEY
        (os.urandom(24), "B0000K0AB00E0000", os.urandom(16)),  # AES-128 under TDES_3KEY
        (AES128_KBPK, "D0000M7HC00E0200HM0623PB0A000000", os.urandom(64)),
    ],
    ids=["AES_256-under-AES_128", "AES_192-under-AES_128", "TDES_3KEY-under-TDES_2KEY",
         "AES_128-under-TDES_3KEY", "HMAC_SHA512-under-AES_128"],
)  # fmt: skip
def test_wrap_refuses_key_stronger_than_kbpk(kbpk: bytes, header: str, key: bytes) -> None:
    with pytest.raises(StrengthError, match="stronger than its"):
        tr31.wrap_key_block(kbpk, header, key)


def test_unwrap_refuses_key_stronger_than_kbpk() -> None:
    # Built with psec directly, which does not enforce the rule.
    block = psec.tr31.KeyBlock(AES128_KBPK, "D0000K0AB00E0000").wrap(os.urandom(32))
    with pytest.raises(StrengthError):
        tr31.unwrap_key_block(AES128_KBPK, block)


def test_injected_padding_of_wrong_length() -> None:
    with pytest.raises(KeyBlockError, match="padding must be 14 bytes"):
        tr31.wrap_key_block(
            AES256_KBPK, "D0000K0TB00E0000", TDES2_KEY, padding=bytes(13), masked_key_len=16
        )
    with pytest.raises(KeyBlockError, match="off the 16-byte cipher block"):
        tr31.wrap_key_block(AES256_KBPK, "D0000K0TB00E0000", TDES2_KEY, padding=bytes(15))


def test_wrap_refuses_bad_headers() -> None:
    with pytest.raises(KeyBlockError, match="HM optional block"):
        tr31.wrap_key_block(AES256_KBPK, "D0000M7HC00E0000", os.urandom(32))
    with pytest.raises(KeyBlockError, match="HM 10"):
        tr31.wrap_key_block(AES256_KBPK, "D0000M7HC00E0200HM0610PB0A000000", os.urandom(32))
    with pytest.raises(KeyBlockError, match="algorithm 'R'"):
        tr31.wrap_key_block(AES256_KBPK, "D0000K0RB00E0000", os.urandom(32))
    with pytest.raises(KeyBlockError, match="add a PB block"):
        tr31.wrap_key_block(AES256_KBPK, "D0000K0AB00E0100KS0800604B", os.urandom(32))
    with pytest.raises(KeyBlockError, match="repeats an optional block"):
        tr31.wrap_key_block(AES256_KBPK, "D0000K0AB00E0200KS08AAAAKS08BBBB", os.urandom(32))
    with pytest.raises(KeyBlockError, match="empty"):
        tr31.wrap_key_block(AES256_KBPK, "D0000K0AB00E0000", b"")
    with pytest.raises(KeyBlockError, match="text after the TR-31 header"):
        tr31.wrap_key_block(AES256_KBPK, D_BLOCK, os.urandom(16))


def test_default_padding_masks_key_length_and_is_random() -> None:
    first = tr31.wrap_key_block(AES256_KBPK, "D0000K1TB00E0000", TDES2_KEY)
    second = tr31.wrap_key_block(AES256_KBPK, "D0000K1TB00E0000", TDES2_KEY)
    assert first[:16] == second[:16] == "D0112K1TB00E0000"  # as APC's documented export
    assert first != second
    aes128 = tr31.wrap_key_block(AES256_KBPK, "D0000K0AB00E0000", os.urandom(16))
    aes256 = tr31.wrap_key_block(AES256_KBPK, "D0000K0AB00E0000", os.urandom(32))
    assert len(aes128) == len(aes256) == 144


def test_tdes_warnings_stay_inside_tr31() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tr31.unwrap_key_block(TDES2_KBPK, B_BLOCK)
        tr31.wrap_key_block(TDES2_KBPK, "B0000K0TB00E0000", TDES2_KEY)
        tr31.derive_block_keys(TDES2_KBPK, "C")
    assert [str(w.message) for w in caught] == []


# --- headers and APC attributes -------------------------------------------------------------


def test_inspect_key_block_reads_optional_blocks() -> None:
    entry = VECTORS["x9143_2021_8.2"]
    inspected = tr31.inspect_key_block(entry["key_block"])
    assert inspected.raw == entry["header"]
    assert inspected.length == 192
    header = tr31.parse_header("D0192C0AVA1N0300KS08VM9ATS1A2018-06-18T20:42:39.22PB0E0000000000")
    assert header.optional_blocks == (("KS", "VM9A"), ("TS", "2018-06-18T20:42:39.22"))
    assert header.block("TS") == "2018-06-18T20:42:39.22"
    assert header.block("PB") is None
    assert header.key_version == "A1"
    assert not header.exportable


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"key_usage": "K0", "key_algorithm": "AES_256", "kbpk_algorithm": "AES_256"},
            "D0144K0AB00E0000",
        ),
        (
            {
                "key_usage": "TR31_K1_KEY_BLOCK_PROTECTION_KEY",
                "key_algorithm": "TDES_2KEY",
                "kbpk_algorithm": "AES_256",
            },
            "D0112K1TB00E0000",
        ),
        (
            {
                "key_usage": "P0",
                "key_algorithm": "TDES_2KEY",
                "kbpk_algorithm": "TDES_2KEY",
                "modes_of_use": {"Encrypt": True, "Wrap": True},
                "exportability": "N",
                "key_version": "01",
            },
            "B0096P0TE01N0000",
        ),
        (
            {
                "key_usage": "M7",
                "key_algorithm": "HMAC_SHA256",
                "kbpk_algorithm": "AES_256",
                "modes_of_use": "C",
            },
            "D0160M7HC00E0200HM0621PB0A000000",
        ),
        (
            {
                "key_usage": "B0",
                "key_algorithm": "TDES_3KEY",
                "kbpk_algorithm": "TDES_3KEY",
                "modes_of_use": "X",
                "exportability": "S",
                "optional_blocks": {"KS": "00604B120F9292800000"},
            },
            "B0120B0TX00S0100KS1800604B120F9292800000",
        ),
    ],
)
def test_build_header(kwargs: dict[str, object], expected: str) -> None:
    header = tr31.build_header(**kwargs)  # type: ignore[arg-type]
    assert header == expected
    key = os.urandom(KEY_ALGORITHMS[str(kwargs["key_algorithm"])])
    kbpk = os.urandom(KEY_ALGORITHMS[str(kwargs["kbpk_algorithm"])])
    block = tr31.wrap_key_block(kbpk, header, key)
    assert block[:5] == header[:5]  # default padding gives the length build_header predicted
    parsed, unwrapped = tr31.unwrap_key_block(kbpk, block)
    assert unwrapped == key
    attrs = tr31.header_to_key_attributes(parsed, len(key))
    assert attrs["KeyAlgorithm"] == kwargs["key_algorithm"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"key_usage": "K0", "key_algorithm": "AES_256", "kbpk_algorithm": "AES_128"},
         StrengthError, "cannot protect"),
        ({"key_usage": "K0", "key_algorithm": "TDES_3KEY", "kbpk_algorithm": "TDES_2KEY"},
         StrengthError, "cannot protect"),
        ({"key_usage": "K0", "key_algorithm": "AES_128", "kbpk_algorithm": "AES_128",
          "modes_of_use": "X"}, KeyBlockError, "KeyModesOfUse for TR31_K0"),
        ({"key_usage": "B0", "key_algorithm": "AES_128", "kbpk_algorithm": "AES_128",
          "modes_of_use": "B"}, KeyBlockError, "KeyModesOfUse for TR31_B0"),
        ({"key_usage": "M1", "key_algorithm": "AES_128", "kbpk_algorithm": "AES_128",
          "modes_of_use": "C"}, KeyBlockError, "not valid for TR31_M1"),
        ({"key_usage": "K0", "key_algorithm": "HMAC_SHA256", "kbpk_algorithm": "AES_256"},
         KeyBlockError, "not valid for TR31_K0"),
        ({"key_usage": "K3", "key_algorithm": "AES_128", "kbpk_algorithm": "AES_128",
          "modes_of_use": "X"}, KeyBlockError, "KeyClass 'SYMMETRIC_KEY' is not valid"),
        ({"key_usage": "Z9", "key_algorithm": "AES_128", "kbpk_algorithm": "AES_128"},
         InputError, "unknown key usage"),
        ({"key_usage": "K0", "key_algorithm": "AES_128", "kbpk_algorithm": "AES_128",
          "exportability": "X"}, KeyBlockError, "exportability"),
        ({"key_usage": "K0", "key_algorithm": "AES_128", "kbpk_algorithm": "AES_128",
          "optional_blocks": {"PB": "0000"}}, KeyBlockError, "PB"),
        ({"key_usage": "M7", "key_algorithm": "HMAC_SHA256", "kbpk_algorithm": "AES_256",
          "modes_of_use": "C", "optional_blocks": {"HM": "23"}}, KeyBlockError, "contradicts"),
        ({"key_usage": "K0", "key_algorithm": "AES_128", "kbpk_algorithm": "AES_128",
          "modes_of_use": {"Encrypt": True}}, InputError, "no TR-31 mode of use"),
    ],
)  # fmt: skip
def test_build_header_refuses(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        tr31.build_header(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "key_length", "expected"),
    [
        ("D0000K0TB00E0000", 16, ("TR31_K0_KEY_ENCRYPTION_KEY", "TDES_2KEY", "B")),
        ("D0000K1TD00N0000", 24, ("TR31_K1_KEY_BLOCK_PROTECTION_KEY", "TDES_3KEY", "D")),
        ("D0000D0AE00S0000", 32, ("TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY", "AES_256", "E")),
        ("D0000B0AX00E0000", 24, ("TR31_B0_BASE_DERIVATION_KEY", "AES_192", "X")),
        ("D0000C0TC00E0000", 16, ("TR31_C0_CARD_VERIFICATION_KEY", "TDES_2KEY", "C")),
        ("D0000M7HG00E0200HM0622PB0A000000", 48, ("TR31_M7_HMAC_KEY", "HMAC_SHA384", "G")),
        ("D0000V2TV00E0000", 16, ("TR31_V2_VISA_PIN_VERIFICATION_KEY", "TDES_2KEY", "V")),
        ("D0000E0AN00E0000", 16, ("TR31_E0_EMV_MKEY_APP_CRYPTOGRAMS", "AES_128", "N")),
    ],
)
def test_header_to_key_attributes(
    header: str, key_length: int, expected: tuple[str, str, str]
) -> None:
    usage, algorithm, mode = expected
    attrs = tr31.header_to_key_attributes(header, key_length)
    assert attrs == {
        "KeyUsage": usage,
        "KeyClass": "SYMMETRIC_KEY",
        "KeyAlgorithm": algorithm,
        "KeyModesOfUse": {
            flag: flag in tr31.MODES[mode]
            for flag in (
                "Encrypt", "Decrypt", "Wrap", "Unwrap", "Generate",
                "Sign", "Verify", "DeriveKey", "NoRestrictions",
            )
        },
    }  # fmt: skip
    assert tr31.parse_header(header).exportable == (header[11] in "ES")


@pytest.mark.parametrize(
    ("header", "key_length", "message"),
    [
        ("D0000K0TB00E0000", 8, "16, 24 bytes"),
        ("D0000K0AB00E0000", 20, "16, 24, 32 bytes"),
        ("D0000K0TX00E0000", 16, "KeyModesOfUse for TR31_K0"),
        ("D0000M3AC00E0000", 16, "not valid for TR31_M3"),
        ("D0000K2TB00E0000", 16, "not supported by apckx"),
        ("D0000X9TB00E0000", 16, "not one APC supports"),
        ("D0000K0TT00E0000", 16, "mode of use 'T'"),
        ("D0000K0TB00X0000", 16, "exportability 'X'"),
        ("D0000M7HC00E0000", 32, "HM optional block"),
        ("D0000M7HC00E0200HM0621PB0A000000", 8, "16 to 64 bytes"),
        ("D0000K0RB00E0000", 16, "algorithm 'R'"),
    ],
)
def test_header_to_key_attributes_refuses(header: str, key_length: int, message: str) -> None:
    with pytest.raises(KeyBlockError, match=message):
        tr31.header_to_key_attributes(header, key_length)


def test_retained_optional_blocks_drop_kp() -> None:
    header = tr31.parse_header("D0000K0AB00E0400HM0621KP10012331550BC9KS0600PB04")
    assert tr31.retained_optional_blocks(header) == {"HM": "21", "KS": "00"}


# --- round trips (hypothesis) ---------------------------------------------------------------

_KBPKS = ("TDES_2KEY", "TDES_3KEY", "AES_128", "AES_192", "AES_256")
_CODES = {"TDES": "T", "AES": "A", "HMAC": "H"}
_PAIRS = [
    (key_alg, kbpk_alg)
    for key_alg in KEY_ALGORITHMS
    for kbpk_alg in _KBPKS
    if strength_bits(key_alg) <= strength_bits(kbpk_alg)
]


@st.composite
def _wrap_cases(draw: st.DrawFn) -> tuple[str, str, bytes, bytes, bytes | None]:
    key_alg, kbpk_alg = draw(st.sampled_from(_PAIRS))
    lengths = allowed_lengths(key_alg)
    key = draw(st.binary(min_size=lengths[0], max_size=lengths[-1]))
    kbpk = draw(st.binary(min_size=KEY_ALGORITHMS[kbpk_alg], max_size=KEY_ALGORITHMS[kbpk_alg]))
    block_size = 16 if kbpk_alg.startswith("AES") else 8
    padding = draw(
        st.none()
        | st.integers(min_value=0, max_value=3).map(
            lambda extra: bytes(extra * block_size + (-(2 + len(key))) % block_size)
        )
    )
    return key_alg, kbpk_alg, key, kbpk, padding


@settings(max_examples=60, deadline=None)
@given(_wrap_cases())
def test_wrap_then_unwrap_returns_the_key(
    case: tuple[str, str, bytes, bytes, bytes | None],
) -> None:
    key_alg, kbpk_alg, key, kbpk, padding = case
    usage, modes = ("M7", "C") if key_alg.startswith("HMAC") else ("K0", "B")
    header = tr31.build_header(
        key_usage=usage, key_algorithm=key_alg, kbpk_algorithm=kbpk_alg, modes_of_use=modes
    )
    block = tr31.wrap_key_block(kbpk, header, key, padding=padding, kbpk_algorithm=kbpk_alg)
    assert block[0] == ("D" if kbpk_alg.startswith("AES") else "B")
    parsed, unwrapped = tr31.unwrap_key_block(kbpk, block, kbpk_algorithm=kbpk_alg)
    assert unwrapped == key
    assert parsed.raw == block[: len(parsed.raw)]
    assert tr31.header_to_key_attributes(parsed, len(key))["KeyAlgorithm"] == key_alg


def test_every_supported_pair_is_covered() -> None:
    # TDES_2KEY protects only TDES_2KEY; AES_128 protects TDES and AES_128 ... (UG table)
    assert ("TDES_3KEY", "TDES_2KEY") not in _PAIRS
    assert ("AES_128", "TDES_3KEY") not in _PAIRS
    assert ("TDES_3KEY", "AES_128") in _PAIRS
    assert ("HMAC_SHA512", "AES_256") in _PAIRS
    assert len(_PAIRS) == 25


# --- odds and ends ----------------------------------------------------------------------------


def test_wrap_recomputes_the_length_field() -> None:
    block = tr31.wrap_key_block(AES256_KBPK, "D9999K0TB00E0000", TDES2_KEY)
    assert block.startswith("D0112K0TB00E0000")
    assert tr31.unwrap_key_block(AES256_KBPK, block, kbpk_algorithm="AES_256")[1] == TDES2_KEY


def test_unwrap_refuses_tdes3_key_under_tdes2_kbpk() -> None:
    with warnings.catch_warnings():  # psec's own TDES warnings (outside apckx here)
        warnings.simplefilter("ignore")
        block = psec.tr31.KeyBlock(TDES2_KBPK, "B0000K0TB00E0000").wrap(os.urandom(24))
    with pytest.raises(StrengthError):
        tr31.unwrap_key_block(TDES2_KBPK, block)


def test_concurrent_tdes_unwraps_leave_warning_filters_alone() -> None:
    import threading

    before = list(warnings.filters)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                assert tr31.unwrap_key_block(TDES2_KBPK, B_BLOCK)[1] == TDES2_KEY
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inner = list(warnings.filters)
        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert list(warnings.filters) == inner
    assert errors == []
    assert caught == []
    assert list(warnings.filters) == before


def test_wrap_refuses_blocks_over_9999_characters() -> None:
    with pytest.raises(KeyBlockError, match="limit is 9999"):
        tr31.wrap_key_block(AES256_KBPK, "D0000K0TB00E0000", TDES2_KEY, masked_key_len=5000)
    with pytest.raises(KeyBlockError, match="limit is 9999"):
        tr31.wrap_key_block(AES256_KBPK, "D0000K0AB00E0000", os.urandom(16), padding=bytes(5006))
