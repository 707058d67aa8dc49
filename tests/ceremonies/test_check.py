"""apckx check's pieces that need no server: NAME=VALUE pairs and the manifest columns that
carry them for ``migrate --check``."""

from __future__ import annotations

import pytest

from apckx.ceremonies import check
from apckx.ceremonies.manifest import ManifestError, parse_manifest_text
from apckx.errors import InputError


def test_pairs_are_normalized_and_checked() -> None:
    pairs = check.parse_pairs(
        ["pan=4111111111111111", "atc=00ff", "session-key-derivation=Mastercard"],
        flag="--input", allowed=check.INPUTS,
    )  # fmt: skip
    assert pairs == {"pan": "4111111111111111", "atc": "00FF",
                     "session-key-derivation": "Mastercard"}  # fmt: skip
    with pytest.raises(InputError, match="--expect pvv must be 4 digits"):
        check.parse_pairs(["pvv=12345"], flag="--expect", allowed=check.EXPECTS)


def test_unknown_hex_looking_name_is_not_echoed() -> None:
    with pytest.raises(InputError) as caught:
        check.parse_pairs(["00112233445566778899=1"], flag="--input", allowed=check.INPUTS)
    assert "00112233" not in str(caught.value)


def test_every_usage_with_a_recipe_is_supported() -> None:
    for usage in check.CHECKS:
        check.check_usage_supported(usage)
    with pytest.raises(InputError, match="no data-plane check for TR31_K0"):
        check.check_usage_supported("TR31_K0_KEY_ENCRYPTION_KEY")


def _manifest(check_input: str, expect: str) -> str:
    header = "alias,key_hex,key_usage,key_algorithm,check_input,expect\n"
    row = f"alias/cvk,0123456789ABCDEFFEDCBA9876543210,C0,TDES_2KEY,{check_input},{expect}\n"
    return header + row


def test_manifest_carries_check_columns() -> None:
    manifest = parse_manifest_text(
        _manifest("pan=4123456789012345;expiry=8701", "cvv=561"), "m.csv"
    )
    row = manifest.rows[0]
    assert dict(row.check_inputs) == {"pan": "4123456789012345", "expiry": "8701"}
    assert dict(row.expects) == {"cvv": "561"}
    assert "561" not in repr(row)


@pytest.mark.parametrize(
    ("check_input", "expect", "message"),
    [
        ("pan=41", "", "m.csv:2: column check_input: pan must be 12..19 digits"),
        ("", "cvv=5a1", "m.csv:2: column expect: cvv must be 3..5 digits"),
        ("colour=red", "", "m.csv:2: column check_input: unknown name 'colour'"),
    ],
)
def test_manifest_check_columns_are_checked(check_input: str, expect: str, message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest_text(_manifest(check_input, expect), "m.csv")
    assert caught.value.errors[0].startswith(message)
