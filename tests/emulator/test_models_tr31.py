"""TR-31 ImportKey/ExportKey under K0/K1 keys: real blocks, real MACs, the spec's refusals."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import psec.tr31
import pytest
from cryptography.utils import CryptographyDeprecationWarning
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apckx.crypto.kcv import compute_kcv
from apckx.crypto.keys import generate_key
from apckx.crypto.tr31 import build_header, inspect_key_block, unwrap_key_block, wrap_key_block
from apckx.emulator.control import keys
from apckx.emulator.control.account import BackendRegistry
from apckx.emulator.exceptions import ResourceNotFoundException, ValidationException

from .conftest import ACCOUNT, REGION, Call

CreateKey = Callable[..., dict[str, Any]]
K0 = "TR31_K0_KEY_ENCRYPTION_KEY"
K1 = "TR31_K1_KEY_BLOCK_PROTECTION_KEY"
UNWRAP_ONLY = {"Decrypt": True, "Unwrap": True}
WRAP_ONLY = {"Encrypt": True, "Wrap": True}


def psec_wrap(kbpk: bytes, header: str, key: bytes) -> str:
    """Wrap with psec directly, without APC's rules, as a careless sender would."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        block: str = psec.tr31.wrap(kbpk, header, key)
    return block


def secret(registry: BackendRegistry, arn: str) -> bytes:
    """The key bytes the emulator holds (test-only peek)."""
    return registry.backend(ACCOUNT, REGION).resolve_key(arn).secret()


def import_block(call: Call, wrapping_arn: str, block: str, **extra: Any) -> dict[str, Any]:
    key: dict[str, Any] = call("ImportKey", KeyMaterial={"Tr31KeyBlock": {
        "WrappingKeyIdentifier": wrapping_arn, "WrappedKeyBlock": block}}, **extra)["Key"]
    return key


def export_block(call: Call, key_arn: str, wrapping_arn: str,
                 headers: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    material: dict[str, Any] = {"WrappingKeyIdentifier": wrapping_arn}
    if headers is not None:
        material["KeyBlockHeaders"] = headers
    wrapped: dict[str, Any] = call("ExportKey", ExportKeyIdentifier=key_arn,
                                   KeyMaterial={"Tr31KeyBlock": material}, **extra)["WrappedKey"]
    return wrapped


# --- import -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("kbpk_usage", "kbpk_algorithm", "usage", "algorithm", "version"), [
    (K1, "AES_256", "TR31_P0_PIN_ENCRYPTION_KEY", "AES_128", "D"),
    (K0, "AES_128", "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY", "TDES_3KEY", "D"),
    (K0, "TDES_3KEY", K0, "TDES_2KEY", "B"),
    (K1, "TDES_2KEY", "TR31_P0_PIN_ENCRYPTION_KEY", "TDES_2KEY", "B"),
])
def test_import_under_k0_and_k1(create_key: CreateKey, call: Call, registry: BackendRegistry,
                                kbpk_usage: str, kbpk_algorithm: str, usage: str,
                                algorithm: str, version: str) -> None:
    kbpk_arn = create_key(kbpk_usage, kbpk_algorithm)["KeyArn"]
    key = generate_key(algorithm)
    header = build_header(key_usage=usage, key_algorithm=algorithm,
                          kbpk_algorithm=kbpk_algorithm, modes_of_use="E", exportability="S",
                          key_version="12")
    block = wrap_key_block(secret(registry, kbpk_arn), header, key)
    assert block[0] == version
    imported = import_block(call, kbpk_arn, block)
    assert imported["KeyAttributes"] == {
        "KeyUsage": usage, "KeyClass": "SYMMETRIC_KEY", "KeyAlgorithm": algorithm,
        "KeyModesOfUse": {"Encrypt": True, "Decrypt": False, "Wrap": True, "Unwrap": False,
                          "Generate": False, "Sign": False, "Verify": False,
                          "DeriveKey": False, "NoRestrictions": False},
    }
    assert imported["KeyOrigin"] == "EXTERNAL"
    assert imported["Exportable"] is True  # S counts as exportable
    kcv_algorithm = "CMAC" if algorithm.startswith("AES") else "ANSI_X9_24"
    assert imported["KeyCheckValueAlgorithm"] == kcv_algorithm
    assert imported["KeyCheckValue"] == compute_kcv(key, kcv_algorithm)
    assert secret(registry, imported["KeyArn"]) == key


def test_import_hmac_key_and_requested_kcv(create_key: CreateKey, call: Call,
                                           registry: BackendRegistry) -> None:
    kbpk_arn = create_key(K1, "AES_256", UNWRAP_ONLY)["KeyArn"]
    key = generate_key("HMAC_SHA256")
    header = build_header(key_usage="TR31_M7_HMAC_KEY", key_algorithm="HMAC_SHA256",
                          kbpk_algorithm="AES_256", modes_of_use="C")
    imported = import_block(call, kbpk_arn, wrap_key_block(secret(registry, kbpk_arn),
                                                           header, key),
                            KeyCheckValueAlgorithm="HMAC")
    assert imported["KeyAttributes"]["KeyAlgorithm"] == "HMAC_SHA256"
    assert imported["KeyCheckValue"] == compute_kcv(key, "HMAC", hash_algorithm="SHA_256")


def test_import_honours_cmac_kcv_for_tdes(create_key: CreateKey, call: Call,
                                          registry: BackendRegistry) -> None:
    kbpk_arn = create_key(K0, "TDES_3KEY")["KeyArn"]
    key = generate_key("TDES_2KEY")
    header = build_header(key_usage=K0, key_algorithm="TDES_2KEY", kbpk_algorithm="TDES_3KEY")
    imported = import_block(call, kbpk_arn, wrap_key_block(secret(registry, kbpk_arn),
                                                           header, key),
                            KeyCheckValueAlgorithm="CMAC")
    assert imported["KeyCheckValueAlgorithm"] == "CMAC"
    assert imported["KeyCheckValue"] == compute_kcv(key, "CMAC", key_algorithm="TDES_2KEY")
    with pytest.raises(ValidationException, match="HMAC is for HMAC keys only"):
        import_block(call, kbpk_arn, wrap_key_block(secret(registry, kbpk_arn), header, key),
                     KeyCheckValueAlgorithm="HMAC")


def test_non_exportable_header_gives_non_exportable_key(create_key: CreateKey, call: Call,
                                                        registry: BackendRegistry) -> None:
    kbpk_arn = create_key(K1, "AES_256")["KeyArn"]
    header = build_header(key_usage=K0, key_algorithm="AES_128", kbpk_algorithm="AES_256",
                          exportability="N")
    imported = import_block(call, kbpk_arn, wrap_key_block(
        secret(registry, kbpk_arn), header, generate_key("AES_128")), Enabled=False)
    assert imported["Exportable"] is False
    assert imported["Enabled"] is False
    call("StartKeyUsage", KeyIdentifier=imported["KeyArn"])
    with pytest.raises(ValidationException, match="is not exportable"):
        export_block(call, imported["KeyArn"], kbpk_arn)


def test_tampered_block_and_wrong_kbpk_are_refused(create_key: CreateKey, call: Call,
                                                   registry: BackendRegistry) -> None:
    kbpk_arn = create_key(K1, "AES_256")["KeyArn"]
    other_arn = create_key(K1, "AES_256")["KeyArn"]
    key = generate_key("AES_128")
    header = build_header(key_usage=K0, key_algorithm="AES_128", kbpk_algorithm="AES_256")
    block = wrap_key_block(secret(registry, kbpk_arn), header, key)
    flipped = "0" if block[40] != "0" else "1"
    tampered = block[:40] + flipped + block[41:]
    for wrapping, candidate in ((kbpk_arn, tampered), (other_arn, block)):
        with pytest.raises(ValidationException, match="integrity check") as caught:
            import_block(call, wrapping, candidate)
        assert key.hex().upper() not in caught.value.message.upper()
    assert len(call("ListKeys")["Keys"]) == 2  # nothing imported


def test_version_must_fit_the_kbpk(create_key: CreateKey, call: Call,
                                   registry: BackendRegistry) -> None:
    aes_arn = create_key(K1, "AES_256")["KeyArn"]
    tdes_arn = create_key(K1, "TDES_3KEY")["KeyArn"]
    b_header = build_header(key_usage=K0, key_algorithm="TDES_2KEY", kbpk_algorithm="TDES_3KEY")
    b_block = wrap_key_block(secret(registry, tdes_arn), b_header, generate_key("TDES_2KEY"))
    with pytest.raises(ValidationException, match="version B"):
        import_block(call, aes_arn, b_block)


def test_import_strength_refusal(create_key: CreateKey, call: Call,
                                 registry: BackendRegistry) -> None:
    kbpk_arn = create_key(K1, "AES_128")["KeyArn"]
    block = psec_wrap(secret(registry, kbpk_arn), "D0000K0AB00E0000",
                           generate_key("AES_256"))
    with pytest.raises(ValidationException, match=r"stronger|strength"):
        import_block(call, kbpk_arn, block)
    tdes2_arn = create_key(K1, "TDES_2KEY")["KeyArn"]
    block = psec_wrap(secret(registry, tdes2_arn), "B0000K0TB00E0000",
                           generate_key("TDES_3KEY"))
    with pytest.raises(ValidationException, match=r"stronger|strength"):
        import_block(call, tdes2_arn, block)


def test_import_refuses_header_combinations_apc_rejects(create_key: CreateKey, call: Call,
                                                        registry: BackendRegistry) -> None:
    kbpk_arn = create_key(K1, "AES_256")["KeyArn"]
    # K0 with mode G (generate) is not a valid APC combination (spec 4)
    block = psec_wrap(secret(registry, kbpk_arn), "D0000K0AG00E0000",
                           generate_key("AES_128"))
    with pytest.raises(ValidationException, match=r"KeyModesOfUse|mode"):
        import_block(call, kbpk_arn, block)


@pytest.mark.parametrize("state", ["disabled", "deleted"])
def test_import_refuses_unusable_wrapping_key(create_key: CreateKey, call: Call,
                                              registry: BackendRegistry, state: str) -> None:
    kbpk_arn = create_key(K1, "AES_256")["KeyArn"]
    header = build_header(key_usage=K0, key_algorithm="AES_128", kbpk_algorithm="AES_256")
    block = wrap_key_block(secret(registry, kbpk_arn), header, generate_key("AES_128"))
    if state == "disabled":
        call("StopKeyUsage", KeyIdentifier=kbpk_arn)
        expected = "disabled"
    else:
        call("DeleteKey", KeyIdentifier=kbpk_arn)
        expected = "not in CREATE_COMPLETE state"
    with pytest.raises(ValidationException, match=expected):
        import_block(call, kbpk_arn, block)


def test_import_wrapping_key_usage_and_modes(create_key: CreateKey, call: Call,
                                             registry: BackendRegistry) -> None:
    wrap_only = create_key(K1, "AES_256", WRAP_ONLY)["KeyArn"]
    data_key = create_key("TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY", "AES_256")["KeyArn"]
    header = build_header(key_usage=K0, key_algorithm="AES_128", kbpk_algorithm="AES_256")
    for arn, why in ((wrap_only, "does not allow Unwrap or Decrypt"),
                     (data_key, "must be a TR31_K0_KEY_ENCRYPTION_KEY or")):
        block = wrap_key_block(secret(registry, arn), header, generate_key("AES_128"))
        with pytest.raises(ValidationException, match=why):
            import_block(call, arn, block)
    no_restrictions = create_key(K0, "AES_256", {"NoRestrictions": True})["KeyArn"]
    block = wrap_key_block(secret(registry, no_restrictions), header, generate_key("AES_128"))
    assert import_block(call, no_restrictions, block)["KeyState"] == "CREATE_COMPLETE"


def test_import_under_a_missing_key(call: Call) -> None:
    with pytest.raises(ResourceNotFoundException):
        import_block(call, "alias/none", "D0112K0AB00E0000" + "0" * 96)


# --- export ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kbpk_usage", "kbpk_algorithm", "algorithm", "version"), [
    (K1, "AES_256", "AES_256", "D"),
    (K0, "AES_192", "TDES_3KEY", "D"),
    (K0, "TDES_3KEY", "TDES_3KEY", "B"),
    (K1, "TDES_2KEY", "TDES_2KEY", "B"),
])
def test_export_under_k0_and_k1(create_key: CreateKey, call: Call, registry: BackendRegistry,
                                kbpk_usage: str, kbpk_algorithm: str, algorithm: str,
                                version: str) -> None:
    kbpk_arn = create_key(kbpk_usage, kbpk_algorithm, WRAP_ONLY)["KeyArn"]
    exported = create_key("TR31_P0_PIN_ENCRYPTION_KEY", algorithm)
    wrapped = export_block(call, exported["KeyArn"], kbpk_arn)
    assert wrapped["WrappingKeyArn"] == kbpk_arn
    assert wrapped["WrappedKeyMaterialFormat"] == "TR31_KEY_BLOCK"
    header, key = unwrap_key_block(secret(registry, kbpk_arn), wrapped["KeyMaterial"])
    assert header.version_id == version
    assert (header.key_usage, header.mode_of_use, header.exportability,
            header.key_version) == ("P0", "B", "E", "00")
    assert key == secret(registry, exported["KeyArn"])
    assert wrapped["KeyCheckValue"] == exported["KeyCheckValue"] == compute_kcv(
        key, wrapped["KeyCheckValueAlgorithm"], key_algorithm=algorithm)


def test_export_strength_refusal(create_key: CreateKey, call: Call) -> None:
    kbpk_arn = create_key(K1, "AES_128")["KeyArn"]
    strong = create_key(K0, "AES_256")["KeyArn"]
    with pytest.raises(ValidationException, match="cannot protect"):
        export_block(call, strong, kbpk_arn)
    tdes3 = create_key(K0, "TDES_3KEY")["KeyArn"]
    aes = create_key(K0, "AES_128")["KeyArn"]
    with pytest.raises(ValidationException, match="cannot protect"):
        export_block(call, aes, tdes3)


def test_export_refusals_by_state(create_key: CreateKey, call: Call) -> None:
    kbpk_arn = create_key(K1, "AES_256")["KeyArn"]
    key_arn = create_key(K0, "AES_128")["KeyArn"]
    unexportable = create_key(K0, "AES_128", exportable=False)["KeyArn"]
    with pytest.raises(ValidationException, match="is not exportable"):
        export_block(call, unexportable, kbpk_arn)
    call("StopKeyUsage", KeyIdentifier=kbpk_arn)
    with pytest.raises(ValidationException, match="disabled"):
        export_block(call, key_arn, kbpk_arn)
    call("StartKeyUsage", KeyIdentifier=kbpk_arn)
    call("DeleteKey", KeyIdentifier=key_arn)
    with pytest.raises(ValidationException, match="not in CREATE_COMPLETE"):
        export_block(call, key_arn, kbpk_arn)
    unwrap_only = create_key(K1, "AES_256", UNWRAP_ONLY)["KeyArn"]
    fine = create_key(K0, "AES_128")["KeyArn"]
    with pytest.raises(ValidationException, match="does not allow Wrap or Encrypt"):
        export_block(call, fine, unwrap_only)


def test_export_of_a_key_pair_is_refused(create_key: CreateKey, call: Call) -> None:
    kbpk_arn = create_key(K1, "AES_256")["KeyArn"]
    k3 = create_key("TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT", "ECC_NIST_P256",
                    {"DeriveKey": True}, key_class="ASYMMETRIC_KEY_PAIR")["KeyArn"]
    with pytest.raises(ValidationException, match="only symmetric keys"):
        export_block(call, k3, kbpk_arn)


def test_key_block_headers_may_only_restrict(create_key: CreateKey, call: Call,
                                             registry: BackendRegistry) -> None:
    kbpk_arn = create_key(K1, "AES_256")["KeyArn"]
    key_arn = create_key(K0, "AES_128")["KeyArn"]
    kbpk = secret(registry, kbpk_arn)

    wrapped = export_block(call, key_arn, kbpk_arn, {
        "KeyModesOfUse": WRAP_ONLY, "KeyExportability": "NON_EXPORTABLE", "KeyVersion": "07",
        "OptionalBlocks": {"KS": "00604B120F9292800000"},
    })
    header, key = unwrap_key_block(kbpk, wrapped["KeyMaterial"])
    assert (header.mode_of_use, header.exportability, header.key_version) == ("E", "N", "07")
    assert header.block("KS") == "00604B120F9292800000"
    assert key == secret(registry, key_arn)

    sensitive = export_block(call, key_arn, kbpk_arn, {"KeyExportability": "SENSITIVE"})
    assert inspect_key_block(sensitive["KeyMaterial"]).exportability == "S"

    # a key imported as E-only ("Encrypt, Wrap") cannot be exported with mode B
    header_e = build_header(key_usage=K0, key_algorithm="AES_128", kbpk_algorithm="AES_256",
                            modes_of_use="E", exportability="S")
    narrow = import_block(call, kbpk_arn, wrap_key_block(kbpk, header_e,
                                                         generate_key("AES_128")))
    with pytest.raises(ValidationException, match="may only restrict"):
        export_block(call, narrow["KeyArn"], kbpk_arn,
                     {"KeyModesOfUse": {"Encrypt": True, "Decrypt": True, "Wrap": True,
                                        "Unwrap": True}})
    with pytest.raises(ValidationException, match="less restrictive"):
        export_block(call, narrow["KeyArn"], kbpk_arn, {"KeyExportability": "EXPORTABLE"})
    default = export_block(call, narrow["KeyArn"], kbpk_arn)
    assert inspect_key_block(default["KeyMaterial"]).exportability == "S"

    with pytest.raises(ValidationException, match=r"PB|padding"):
        export_block(call, key_arn, kbpk_arn, {"OptionalBlocks": {"PB": "0000"}})
    with pytest.raises(ValidationException, match="KeyModesOfUse"):
        export_block(call, key_arn, kbpk_arn, {"KeyModesOfUse": {"Generate": True}})


def test_no_restrictions_key_may_be_exported_with_any_valid_mode(
        create_key: CreateKey, call: Call, registry: BackendRegistry) -> None:
    kbpk_arn = create_key(K1, "AES_256")["KeyArn"]
    key_arn = create_key(K0, "AES_128", {"NoRestrictions": True})["KeyArn"]
    wrapped = export_block(call, key_arn, kbpk_arn, {"KeyModesOfUse": UNWRAP_ONLY})
    assert inspect_key_block(wrapped["KeyMaterial"]).mode_of_use == "D"


def test_export_kcv_algorithm_input(create_key: CreateKey, call: Call,
                                    registry: BackendRegistry) -> None:
    kbpk_arn = create_key(K1, "AES_256")["KeyArn"]
    key_arn = create_key(K0, "TDES_2KEY")["KeyArn"]
    wrapped = export_block(call, key_arn, kbpk_arn,
                           ExportAttributes={"KeyCheckValueAlgorithm": "CMAC"})
    assert wrapped["KeyCheckValueAlgorithm"] == "CMAC"
    assert wrapped["KeyCheckValue"] == compute_kcv(secret(registry, key_arn), "CMAC",
                                                   key_algorithm="TDES_2KEY")
    with pytest.raises(ValidationException, match="ExportDukptInitialKey"):
        export_block(call, key_arn, kbpk_arn, ExportAttributes={
            "ExportDukptInitialKey": {"KeySerialNumber": "FFFF9876543210E00001"}})


def test_round_trip_between_two_accounts(registry: BackendRegistry, call: Call,
                                         create_key: CreateKey) -> None:
    """Export from one account and import into another under a shared KEK."""
    from apckx.emulator.responses import dispatch

    kek_arn = create_key(K0, "AES_256")["KeyArn"]
    kek = secret(registry, kek_arn)
    other = registry.backend("444455556666", REGION)
    header = build_header(key_usage=K0, key_algorithm="AES_256", kbpk_algorithm="AES_256")
    attributes = {"KeyUsage": K0, "KeyClass": "SYMMETRIC_KEY", "KeyAlgorithm": "AES_256",
                  "KeyModesOfUse": {"NoRestrictions": True}}
    receiver = keys.create_key(other, attributes, exportable=True)
    # hand the receiver's KEK material to our account by wrapping it under our KEK
    receiver_kek = receiver.secret()
    ours = import_block(call, kek_arn, wrap_key_block(kek, header, receiver_kek))
    payload = create_key("TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY", "AES_128")
    wrapped = export_block(call, payload["KeyArn"], ours["KeyArn"])
    landed = dispatch(registry, "ImportKey", {"KeyMaterial": {"Tr31KeyBlock": {
        "WrappingKeyIdentifier": receiver.arn, "WrappedKeyBlock": wrapped["KeyMaterial"]}}},
        account_id="444455556666", region=REGION)["Key"]
    assert landed["KeyCheckValue"] == payload["KeyCheckValue"]
    assert landed["KeyArn"].split(":")[4] == "444455556666"


# --- robustness: malformed and mutated blocks are refused, never crash -------------------------


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_blocks_are_refused_cleanly(create_key: CreateKey, call: Call,
                                            registry: BackendRegistry,
                                            data: st.DataObject) -> None:
    kbpk_arn = _fuzz_kbpk(create_key)
    kbpk = secret(registry, kbpk_arn)
    key = bytes(range(1, 17))
    header = build_header(key_usage=K0, key_algorithm="AES_128", kbpk_algorithm="AES_256")
    block = wrap_key_block(kbpk, header, key)
    position = data.draw(st.integers(0, len(block) - 1))
    replacement = data.draw(st.sampled_from("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz"))
    cut = data.draw(st.integers(56, len(block)))
    mutated = (block[:position] + replacement + block[position + 1:])[:cut]
    try:
        imported = import_block(call, kbpk_arn, mutated)
    except ValidationException as refusal:
        assert key.hex().upper() not in refusal.message.upper()
        assert kbpk.hex().upper() not in refusal.message.upper()
    else:
        # only a change the MAC does not cover may pass (none in a D block), or no change
        assert mutated == block
        assert imported["KeyCheckValue"] == compute_kcv(key, "CMAC")


_KBPKS: dict[int, str] = {}


def _fuzz_kbpk(create_key: CreateKey) -> str:
    # one KBPK per test function run (hypothesis reuses the function-scoped fixtures)
    marker = id(create_key)
    if marker not in _KBPKS:
        _KBPKS[marker] = create_key(K1, "AES_256")["KeyArn"]
    return _KBPKS[marker]


@pytest.mark.parametrize(("blocks", "size"), [
    ({"KS": "A" * 108}, 112),
    ({"KS": "A" * 50, "KV": "B" * 54}, 112),
    ({"KS": "A" * 109}, None),  # the model's value limit (108) already refuses it
    ({"KS": "A" * 60, "KV": "B" * 49}, 117),
    ({"K1": "A" * 30, "K2": "B" * 30, "K3": "C" * 30}, 102),
])
def test_optional_blocks_over_112_characters_are_refused(
        create_key: CreateKey, call: Call, registry: BackendRegistry,
        blocks: dict[str, str], size: int | None) -> None:
    """The model: "Optional block character limit is 112 characters", 4 of them per block
    for its id and length."""
    kbpk_arn = create_key(K1, "AES_256")["KeyArn"]
    key_arn = create_key(K0, "AES_128")["KeyArn"]
    if size is None:
        with pytest.raises(ValidationException, match="OptionalBlocks"):
            export_block(call, key_arn, kbpk_arn, {"OptionalBlocks": blocks})
    elif size > 112:
        with pytest.raises(ValidationException, match=f"take {size} characters.*at most 112"):
            export_block(call, key_arn, kbpk_arn, {"OptionalBlocks": blocks})
    else:
        wrapped = export_block(call, key_arn, kbpk_arn, {"OptionalBlocks": blocks})
        header, _ = unwrap_key_block(secret(registry, kbpk_arn), wrapped["KeyMaterial"])
        assert all(header.block(block_id) == value for block_id, value in blocks.items())
