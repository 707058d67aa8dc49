"""apckx.crypto.emv against tests/vectors/dataplane/emv.json, byte for byte, plus refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apckx.crypto import emv
from apckx.errors import InputError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "dataplane" / "emv.json"


def load(keep: Any) -> Any:
    with VECTORS.open(encoding="utf-8") as handle:
        entries = [e for e in json.load(handle) if keep(e)]
    assert entries
    return pytest.mark.parametrize("entry", entries, ids=[e["id"] for e in entries])


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def icc_mk(entry: dict[str, Any], imk_field: str = "imk") -> bytes:
    return emv.derive_icc_master_key(
        h(entry[imk_field]),
        entry["pan"],
        entry["pan_sequence_number"],
        mode=entry["major_key_derivation_mode"],
    )


@load(lambda e: "icc_master_key" in e)
def test_icc_master_key(entry: dict[str, Any]) -> None:
    assert icc_mk(entry) == h(entry["icc_master_key"])


@load(lambda e: "session_key" in e)
def test_common_session_key_with_fixed_r(entry: dict[str, Any]) -> None:
    # pyemv's entries use a fixed R; the R = ARQC path of derive_session_key takes any 8 bytes.
    key = emv.derive_session_key(
        icc_mk(entry), "EMV_COMMON_SESSION_KEY", application_cryptogram=h(entry["session_key_r"])
    )
    assert key == h(entry["session_key"])


def test_common_session_key_from_atc() -> None:
    # pyemv_b_sha_decimalize's R is ATC 001C || 000000000000: APC's EmvCommon form.
    with VECTORS.open(encoding="utf-8") as handle:
        entry = next(e for e in json.load(handle) if e["id"] == "pyemv_b_sha_decimalize")
    key = emv.derive_session_key(icc_mk(entry), "EmvCommon", atc=h("001C"))
    assert key == h(entry["session_key"])


def arqc_key(entry: dict[str, Any]) -> bytes:
    return h(entry["session_key"]) if "session_key" in entry else icc_mk(entry)


@load(lambda e: "arqc" in e)
def test_arqc(entry: dict[str, Any]) -> None:
    data = h(entry.get("transaction_data_padded", entry["transaction_data"]))
    assert emv.generate_arqc(arqc_key(entry), data) == h(entry["arqc"])
    assert emv.verify_arqc(arqc_key(entry), data, h(entry["arqc"]))
    wrong = bytes([data[0] ^ 1]) + data[1:]
    assert not emv.verify_arqc(arqc_key(entry), wrong, h(entry["arqc"]))


@load(lambda e: e["id"] in {"aws_doc_visa_cvn10"} or e["id"].startswith("aws_sample"))
def test_arqc_with_icc_mk_directly(entry: dict[str, Any]) -> None:
    # Visa CVN10 and the AWS sample's Amex derivation use the ICC MK as the cryptogram key.
    derivation = "Visa" if entry["id"] == "aws_doc_visa_cvn10" else "Amex"
    key = emv.derive_session_key(icc_mk(entry), derivation)
    assert emv.generate_arqc(key, h(entry["transaction_data"])) == h(entry["arqc"])


def arpc_key(entry: dict[str, Any]) -> bytes:
    return icc_mk(entry) if entry["arpc_key"] == "icc_mk" else h(entry["session_key"])


@load(lambda e: e.get("arpc_method") == 1)
def test_arpc_method1(entry: dict[str, Any]) -> None:
    arpc = emv.generate_arpc_method1(
        arpc_key(entry), h(entry["arqc"]), h(entry["auth_response_code"])
    )
    assert arpc == h(entry["arpc"])


@load(lambda e: e.get("arpc_method") == 2)
def test_arpc_method2(entry: dict[str, Any]) -> None:
    arpc = emv.generate_arpc_method2(
        arpc_key(entry),
        h(entry["arqc"]),
        h(entry["card_status_update"]),
        h(entry["proprietary_authentication_data"]),
    )
    assert arpc == h(entry["arpc"])


def sm_keys(entry: dict[str, Any]) -> tuple[bytes, bytes | None]:
    mk_smi = icc_mk(entry, "imk_smi")
    mk_smc = icc_mk(entry, "imk_smc") if "imk_smc" in entry else None
    r = h(entry["session_key_r"])
    if entry["session_key_r"] == "FFFF":  # VIS: MK xor ATC
        return (
            emv.derive_session_key(mk_smi, "VISA", atc=r),
            emv.derive_session_key(mk_smc, "VISA", atc=r) if mk_smc else None,
        )
    return (
        emv.derive_session_key(mk_smi, "EMV_COMMON_SESSION_KEY", application_cryptogram=r),
        emv.derive_session_key(mk_smc, "MASTERCARD_SESSION_KEY", application_cryptogram=r)
        if mk_smc
        else None,
    )


@load(lambda e: "sk_smi" in e)
def test_secure_messaging_session_keys(entry: dict[str, Any]) -> None:
    sk_smi, sk_smc = sm_keys(entry)
    assert sk_smi == h(entry["sk_smi"])
    if "sk_smc" in entry:
        assert sk_smc == h(entry["sk_smc"])


@load(lambda e: e["id"] == "pyemv_sm_command_mac")
def test_script_mac(entry: dict[str, Any]) -> None:
    sk_smi, _ = sm_keys(entry)
    assert emv.generate_script_mac(sk_smi, h(entry["message_data"])) == h(entry["mac"])


SCHEMES = {
    "EMV": {"mode": "CBC", "padding": "ISO_IEC_7816_4", "length_position": "NONE"},
    "MASTERCARD": {"mode": "CBC", "padding": "NO_PADDING", "length_position": "NONE"},
    "VISA": {"mode": "ECB", "padding": "ISO_IEC_7816_4", "length_position": "FRONT_OF_PIN_BLOCK"},
}


@load(lambda e: "encryption_type" in e)
def test_pin_change(entry: dict[str, Any]) -> None:
    sk_smi, sk_smc = sm_keys(entry)
    assert sk_smc is not None
    if entry["pin_block_type"] == "ISO_FORMAT_2":
        block = emv.format_iso2_pin_block(entry["new_pin"])
    else:
        mk_ac = icc_mk(entry, "imk_ac")
        assert mk_ac == h(entry["icc_mk_ac"])
        block = emv.format_vis_pin_block(mk_ac, entry["new_pin"], entry["current_pin"])
    assert block == h(entry["plain_pin_block"])
    encrypted = emv.encrypt_pin_block_for_card(sk_smc, block, **SCHEMES[entry["encryption_type"]])
    assert encrypted == h(entry["encrypted_pin_block"])
    mode = SCHEMES[entry["encryption_type"]]["mode"]
    assert emv.decrypt_pin_block_from_card(sk_smc, encrypted, mode=mode).find(block) >= 0
    mac_input = h(entry["command_header"]) + encrypted
    assert mac_input == h(entry["mac_input"])
    assert emv.generate_script_mac(sk_smi, mac_input) == h(entry["mac"])


def test_mastercard_and_emv2000_session_keys_differ_by_input() -> None:
    mk = h("F84315C7B95BD3B0C74694922C3808B0")
    mc = emv.derive_session_key(mk, "Mastercard", atc=h("0001"), unpredictable_number=h("12345678"))
    # Mastercard SKD is the common derivation with R = ATC || 0000 || UN.
    assert mc == emv.derive_session_key(
        mk, "EmvCommon", application_cryptogram=h("0001000012345678")
    )
    tree = emv.derive_session_key(mk, "Emv2000", atc=h("0001"))
    assert tree not in {mc, mk} and len(tree) == 16


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: emv.derive_icc_master_key(bytes(8), "1234", "00"), "16-byte"),
        (lambda: emv.derive_icc_master_key(bytes(16), "12a4", "00"), "PAN"),
        (lambda: emv.derive_icc_master_key(bytes(16), "1234", "0"), "sequence"),
        (lambda: emv.derive_icc_master_key(bytes(16), "1234", mode="EMV_OPTION_C"), "mode"),
        (lambda: emv.derive_session_key(bytes(16), "Discover"), "unknown"),
        (lambda: emv.derive_session_key(bytes(16), "EmvCommon"), "transaction counter"),
        (lambda: emv.derive_session_key(bytes(16), "Mastercard", atc=b"\0\1"), "unpredictable"),
        (lambda: emv.verify_arqc(bytes(16), b"1", b"123"), "8 bytes"),
        (lambda: emv.generate_arpc_method2(bytes(16), bytes(8), bytes(4), bytes(9)), "0..8"),
        (lambda: emv.format_iso2_pin_block("123"), "4..12"),
        (lambda: emv.encrypt_pin_block_for_card(bytes(16), bytes(9), padding="NO_PADDING"), "7816"),
    ],
)
def test_refusals(call: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()


def test_aws_doc_visa_cvn18_emv_common_session_key() -> None:
    # AWS UG use-cases-issuers.networkfunctions.visa (CVN18/22), see apc-data-plane.md 2.3.
    mk = emv.derive_icc_master_key(h("0123456789ABCDEFFEDCBA9876543210"), "9137631040001422", "01")
    key = emv.derive_session_key(mk, "EmvCommon", atc=h("000B"))
    data = h(
        "00000000170000000000000008400080008000084016051700000000093800000B1F220103000000"
        "0000000000000000000000000000000000000000000000008000000000000000"
    )
    assert emv.generate_arqc(key, data) == h("61EDCC708B4C97B4")


def _model_session_key_spellings() -> list[str]:
    """Every session-key derivation name the data-plane model uses: EmvMac's
    SessionKeyDerivationMode enum (GenerateMac, VerifyMac) and the members of the ARQC
    operations' SessionKeyDerivationAttributes union."""
    import botocore.session  # the test reads the model; apckx.crypto itself never imports it

    model = botocore.session.get_session().get_service_model("payment-cryptography-data")
    names: set[str] = set()
    for operation, path in (("GenerateMac", "GenerationAttributes"),
                            ("VerifyMac", "VerificationAttributes")):
        shape = model.operation_model(operation).input_shape.members[path]
        mode = shape.members["EmvMac"].members["SessionKeyDerivationMode"]
        names.update(mode.enum)  # type: ignore[attr-defined]
    for operation in ("VerifyAuthRequestCryptogram", "GenerateAuthRequestCryptogram"):
        union = model.operation_model(operation).input_shape.members[
            "SessionKeyDerivationAttributes"]
        names.update(union.members)  # type: ignore[attr-defined]
    assert {"UNION_PAY", "UnionPay", "EMV_COMMON_SESSION_KEY"} <= names
    return sorted(names)


@pytest.mark.parametrize("spelling", _model_session_key_spellings())
def test_every_model_spelling_of_a_session_key_derivation_is_known(spelling: str) -> None:
    mk, atc = h("0123456789ABCDEFFEDCBA9876543210"), h("001C")
    canonical = emv.SESSION_KEY_DERIVATIONS[spelling]
    assert emv.derive_session_key(mk, spelling, atc=atc, unpredictable_number=h("12345678")) \
        == emv.derive_session_key(mk, canonical, atc=atc, unpredictable_number=h("12345678"))


def test_union_pay_spellings_are_the_common_session_key() -> None:
    mk, atc = h("0123456789ABCDEFFEDCBA9876543210"), h("001C")
    common = emv.derive_session_key(mk, "EMV_COMMON_SESSION_KEY", atc=atc)
    assert common != mk
    for spelling in ("UNION_PAY", "UnionPay", "UNIONPAY"):
        assert emv.derive_session_key(mk, spelling, atc=atc) == common
