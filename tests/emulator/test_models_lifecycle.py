"""Key lifecycle, aliases, tags, pagination and quotas, in-process through ``dispatch``."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import pytest

from apckx.crypto.kcv import compute_kcv
from apckx.emulator.control import keys
from apckx.emulator.control.account import BackendRegistry
from apckx.emulator.exceptions import (
    ConflictException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
    ValidationException,
)
from apckx.emulator.responses import dispatch

from .conftest import ACCOUNT, REGION, Call, FakeClock, RecordingStore

DAY = 86400.0
ARN_RE = re.compile(
    rf"arn:aws:payment-cryptography:{REGION}:{ACCOUNT}:key/[a-z0-9]{{16}}"
)
CreateKey = Callable[..., dict[str, Any]]


def material_of(registry: BackendRegistry, arn: str) -> bytes:
    """The key bytes the emulator holds (test-only peek)."""
    return registry.backend(ACCOUNT, REGION).resolve_key(arn).secret()


# --- CreateKey / GetKey ---------------------------------------------------------------------


def test_create_key_answers_the_documented_key(create_key: CreateKey, clock: FakeClock,
                                               registry: BackendRegistry) -> None:
    key = create_key("TR31_K0_KEY_ENCRYPTION_KEY", "TDES_3KEY")
    assert ARN_RE.fullmatch(key["KeyArn"])
    assert key["KeyAttributes"] == {
        "KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY", "KeyClass": "SYMMETRIC_KEY",
        "KeyAlgorithm": "TDES_3KEY",
        "KeyModesOfUse": {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True,
                          "Generate": False, "Sign": False, "Verify": False,
                          "DeriveKey": False, "NoRestrictions": False},
    }
    assert key["KeyState"] == "CREATE_COMPLETE"
    assert key["KeyOrigin"] == "AWS_PAYMENT_CRYPTOGRAPHY"
    assert key["Enabled"] is True and key["Exportable"] is True
    assert key["CreateTimestamp"] == clock.now == key["UsageStartTimestamp"]
    assert key["KeyCheckValueAlgorithm"] == "ANSI_X9_24"
    material = material_of(registry, key["KeyArn"])
    assert len(material) == 24
    assert key["KeyCheckValue"] == compute_kcv(material, "ANSI_X9_24")


@pytest.mark.parametrize(("algorithm", "kcv_algorithm", "length"), [
    ("AES_128", "CMAC", 16), ("AES_192", "CMAC", 24), ("AES_256", "CMAC", 32),
    ("TDES_2KEY", "ANSI_X9_24", 16),
])
def test_default_kcv_algorithm_and_real_material(create_key: CreateKey,
                                                 registry: BackendRegistry, algorithm: str,
                                                 kcv_algorithm: str, length: int) -> None:
    key = create_key("TR31_K0_KEY_ENCRYPTION_KEY", algorithm)
    material = material_of(registry, key["KeyArn"])
    assert len(material) == length
    assert key["KeyCheckValueAlgorithm"] == kcv_algorithm
    assert key["KeyCheckValue"] == compute_kcv(material, kcv_algorithm, key_algorithm=algorithm)


def test_hmac_key_with_hmac_kcv(create_key: CreateKey, registry: BackendRegistry) -> None:
    key = create_key("TR31_M7_HMAC_KEY", "HMAC_SHA512", {"Generate": True, "Verify": True})
    material = material_of(registry, key["KeyArn"])
    assert len(material) == 64
    assert key["KeyCheckValueAlgorithm"] == "HMAC"
    assert key["KeyCheckValue"] == compute_kcv(material, "HMAC", hash_algorithm="SHA_512")


def test_requested_kcv_algorithm_is_honoured(create_key: CreateKey,
                                             registry: BackendRegistry) -> None:
    key = create_key("TR31_K0_KEY_ENCRYPTION_KEY", "TDES_2KEY", KeyCheckValueAlgorithm="CMAC")
    material = material_of(registry, key["KeyArn"])
    assert key["KeyCheckValueAlgorithm"] == "CMAC"
    assert key["KeyCheckValue"] == compute_kcv(material, "CMAC", key_algorithm="TDES_2KEY")


@pytest.mark.parametrize(("algorithm", "kcv_algorithm", "modes"), [
    ("AES_256", "ANSI_X9_24", None),
    ("AES_256", "HMAC", None),
    ("TDES_3KEY", "SHA_1", None),
    ("HMAC_SHA256", "CMAC", {"Generate": True}),
])
def test_kcv_algorithm_must_fit_the_key(create_key: CreateKey, algorithm: str,
                                        kcv_algorithm: str,
                                        modes: dict[str, bool] | None) -> None:
    usage = "TR31_M7_HMAC_KEY" if modes else "TR31_K0_KEY_ENCRYPTION_KEY"
    with pytest.raises(ValidationException, match=f"KeyCheckValueAlgorithm {kcv_algorithm}"):
        create_key(usage, algorithm, modes, KeyCheckValueAlgorithm=kcv_algorithm)


@pytest.mark.parametrize(("usage", "algorithm", "modes", "key_class", "why"), [
    ("TR31_K0_KEY_ENCRYPTION_KEY", "AES_256", {"Generate": True}, "SYMMETRIC_KEY",
     "KeyModesOfUse"),
    ("TR31_M1_ISO_9797_1_MAC_KEY", "AES_128", {"Generate": True}, "SYMMETRIC_KEY",
     "KeyAlgorithm"),
    ("TR31_K1_KEY_BLOCK_PROTECTION_KEY", "AES_128", None, "ASYMMETRIC_KEY_PAIR", "KeyClass"),
    ("TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT", "ECC_NIST_P256",
     {"DeriveKey": True, "Sign": True}, "ASYMMETRIC_KEY_PAIR", "KeyModesOfUse"),
    ("TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT", "AES_256", {"DeriveKey": True},
     "ASYMMETRIC_KEY_PAIR", "KeyAlgorithm"),
    ("TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE", "RSA_2048", {"Encrypt": True, "Wrap": True},
     "ASYMMETRIC_KEY_PAIR", "not valid for TR31_S0"),
    ("TR31_K2_TR34_ASYMMETRIC_KEY", "RSA_2048", {"Decrypt": True, "Unwrap": True},
     "PUBLIC_KEY", "import certificates with ImportKey"),
    ("TR31_K0_KEY_ENCRYPTION_KEY", "RSA_3072",
     {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}, "ASYMMETRIC_KEY_PAIR",
     "RSA_3072 keys are for"),
    ("TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE", "ECC_NIST_P256", {"Verify": True},
     "PUBLIC_KEY", "import certificates with ImportKey"),
])
def test_invalid_attribute_combinations_are_refused(create_key: CreateKey, usage: str,
                                                    algorithm: str,
                                                    modes: dict[str, bool] | None,
                                                    key_class: str, why: str) -> None:
    with pytest.raises(ValidationException, match=why):
        create_key(usage, algorithm, modes, key_class=key_class)


def test_derive_key_usage_only_on_k3(create_key: CreateKey) -> None:
    with pytest.raises(ValidationException, match="DeriveKeyUsage applies only to"):
        create_key(DeriveKeyUsage="TR31_K1_KEY_BLOCK_PROTECTION_KEY")


def test_k3_key_pair(create_key: CreateKey, registry: BackendRegistry) -> None:
    key = create_key("TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT", "ECC_NIST_P384",
                     {"DeriveKey": True}, key_class="ASYMMETRIC_KEY_PAIR",
                     DeriveKeyUsage="TR31_K1_KEY_BLOCK_PROTECTION_KEY",
                     KeyCheckValueAlgorithm="CMAC")
    assert key["DeriveKeyUsage"] == "TR31_K1_KEY_BLOCK_PROTECTION_KEY"
    assert key["KeyCheckValueAlgorithm"] == "SHA_1"  # asymmetric: requested value ignored
    assert re.fullmatch(r"[0-9A-F]{8}", key["KeyCheckValue"])
    private_key = registry.backend(ACCOUNT, REGION).resolve_key(key["KeyArn"]).private_key()
    assert private_key.curve.name == "secp384r1"


def test_created_disabled(create_key: CreateKey) -> None:
    key = create_key(Enabled=False)
    assert key["Enabled"] is False
    assert "UsageStartTimestamp" not in key


def test_get_key_by_arn_alias_and_alias_arn(create_key: CreateKey, call: Call) -> None:
    key = create_key()
    call("CreateAlias", AliasName="alias/kek", KeyArn=key["KeyArn"])
    alias_arn = f"arn:aws:payment-cryptography:{REGION}:{ACCOUNT}:alias/kek"
    for identifier in (key["KeyArn"], "alias/kek", alias_arn):
        assert call("GetKey", KeyIdentifier=identifier)["Key"] == key


def test_unknown_key_is_resource_not_found(call: Call) -> None:
    arn = f"arn:aws:payment-cryptography:{REGION}:{ACCOUNT}:key/aaaaaaaaaaaaaaaa"
    with pytest.raises(ResourceNotFoundException) as caught:
        call("GetKey", KeyIdentifier=arn)
    assert caught.value.status == 404
    assert caught.value.to_body()["ResourceId"] == arn
    assert caught.value.to_body()["__type"] == "ResourceNotFoundException"


def test_keys_are_per_account_and_region(create_key: CreateKey,
                                         registry: BackendRegistry) -> None:
    key = create_key()
    other_region_arn = key["KeyArn"].replace(REGION, "eu-west-1")
    with pytest.raises(ResourceNotFoundException):
        dispatch(registry, "GetKey", {"KeyIdentifier": other_region_arn},
                 account_id=ACCOUNT, region="eu-west-1")
    listed = dispatch(registry, "ListKeys", {}, account_id="999988887777", region=REGION)
    assert listed["Keys"] == []


def test_material_never_in_responses(create_key: CreateKey, call: Call,
                                     registry: BackendRegistry) -> None:
    key = create_key()
    material_hex = material_of(registry, key["KeyArn"]).hex()
    everything = repr(call("GetKey", KeyIdentifier=key["KeyArn"])) + repr(call("ListKeys"))
    assert material_hex.upper() not in everything.upper()
    record = registry.backend(ACCOUNT, REGION).resolve_key(key["KeyArn"])
    assert material_hex.upper() not in repr(record).upper()


# --- delete / restore / start / stop --------------------------------------------------------


def test_delete_restore_start_stop(create_key: CreateKey, call: Call, clock: FakeClock) -> None:
    arn = create_key()["KeyArn"]
    clock.advance(10)
    deleted = call("DeleteKey", KeyIdentifier=arn, DeleteKeyInDays=3)["Key"]
    assert deleted["KeyState"] == "DELETE_PENDING"
    assert deleted["Enabled"] is False
    assert deleted["UsageStopTimestamp"] == clock.now
    assert deleted["DeletePendingTimestamp"] == clock.now + 3 * DAY
    with pytest.raises(ValidationException, match=r"not in CREATE_COMPLETE state\."):
        call("DeleteKey", KeyIdentifier=arn)
    with pytest.raises(ValidationException, match="CREATE_COMPLETE"):
        call("StartKeyUsage", KeyIdentifier=arn)
    with pytest.raises(ValidationException, match="CREATE_COMPLETE"):
        call("StopKeyUsage", KeyIdentifier=arn)

    restored = call("RestoreKey", KeyIdentifier=arn)["Key"]
    assert restored["KeyState"] == "CREATE_COMPLETE"
    assert restored["Enabled"] is False  # restore does not re-enable (spec 3.3)
    assert "DeletePendingTimestamp" not in restored
    with pytest.raises(ValidationException, match="not in DELETE_PENDING state"):
        call("RestoreKey", KeyIdentifier=arn)

    clock.advance(5)
    started = call("StartKeyUsage", KeyIdentifier=arn)["Key"]
    assert started["Enabled"] is True
    assert started["UsageStartTimestamp"] == clock.now
    assert "UsageStopTimestamp" not in started
    stopped = call("StopKeyUsage", KeyIdentifier=arn)["Key"]
    assert stopped["Enabled"] is False
    assert stopped["UsageStopTimestamp"] == clock.now


def test_delete_defaults_to_seven_days(create_key: CreateKey, call: Call,
                                       clock: FakeClock) -> None:
    arn = create_key()["KeyArn"]
    deleted = call("DeleteKey", KeyIdentifier=arn)["Key"]
    assert deleted["DeletePendingTimestamp"] == clock.now + 7 * DAY


def test_waiting_period_ends_in_delete_complete(create_key: CreateKey, call: Call,
                                                clock: FakeClock,
                                                registry: BackendRegistry) -> None:
    arn = create_key()["KeyArn"]
    call("CreateAlias", AliasName="alias/doomed", KeyArn=arn)
    pending = call("DeleteKey", KeyIdentifier=arn, DeleteKeyInDays=3)["Key"]
    clock.advance(3 * DAY - 1)
    assert call("GetKey", KeyIdentifier=arn)["Key"]["KeyState"] == "DELETE_PENDING"
    clock.advance(2)
    gone = call("GetKey", KeyIdentifier=arn)["Key"]
    assert gone["KeyState"] == "DELETE_COMPLETE"
    assert gone["DeleteTimestamp"] == pending["DeletePendingTimestamp"]
    assert "DeletePendingTimestamp" not in gone
    assert call("GetAlias", AliasName="alias/doomed")["Alias"] == {"AliasName": "alias/doomed"}
    with pytest.raises(ValidationException):
        call("RestoreKey", KeyIdentifier=arn)
    assert registry.backend(ACCOUNT, REGION).resolve_key(arn).secret_hex is None


def test_list_keys_filters_by_state(create_key: CreateKey, call: Call) -> None:
    arns = [create_key()["KeyArn"] for _ in range(3)]
    call("DeleteKey", KeyIdentifier=arns[0])
    pending = call("ListKeys", KeyState="DELETE_PENDING")["Keys"]
    assert [k["KeyArn"] for k in pending] == [arns[0]]
    complete = call("ListKeys", KeyState="CREATE_COMPLETE")["Keys"]
    assert sorted(k["KeyArn"] for k in complete) == sorted(arns[1:])
    assert len(call("ListKeys")["Keys"]) == 3


def test_list_keys_pagination(create_key: CreateKey, call: Call) -> None:
    arns = {create_key("TR31_K0_KEY_ENCRYPTION_KEY", "AES_128")["KeyArn"] for _ in range(7)}
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = call("ListKeys", MaxResults=3, **({"NextToken": token} if token else {}))
        seen.extend(k["KeyArn"] for k in page["Keys"])
        pages += 1
        token = page.get("NextToken")
        if token is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(arns)
    assert len(seen) == len(set(seen))


def test_list_keys_default_page_is_50(registry: BackendRegistry, call: Call) -> None:
    backend = registry.backend(ACCOUNT, REGION)
    attributes = {"KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY", "KeyClass": "SYMMETRIC_KEY",
                  "KeyAlgorithm": "AES_128", "KeyModesOfUse": {"NoRestrictions": True}}
    for _ in range(51):
        keys.create_key(backend, attributes, exportable=True)
    first = call("ListKeys")
    assert len(first["Keys"]) == 50
    assert len(call("ListKeys", NextToken=first["NextToken"])["Keys"]) == 1


def test_bad_next_token(call: Call, create_key: CreateKey) -> None:
    create_key()
    with pytest.raises(ValidationException, match="NextToken"):
        call("ListKeys", NextToken="bm90LWEtdG9rZW4=")
    alias_token = None
    for name in ("alias/a", "alias/b"):
        call("CreateAlias", AliasName=name)
    alias_token = call("ListAliases", MaxResults=1)["NextToken"]
    with pytest.raises(ValidationException, match="NextToken"):
        call("ListKeys", NextToken=alias_token)


# --- aliases --------------------------------------------------------------------------------


def test_alias_lifecycle(create_key: CreateKey, call: Call) -> None:
    first, second = create_key()["KeyArn"], create_key()["KeyArn"]
    assert call("CreateAlias", AliasName="alias/empty")["Alias"] == {"AliasName": "alias/empty"}
    with pytest.raises(ResourceNotFoundException, match="not associated with a key") as caught:
        call("GetKey", KeyIdentifier="alias/empty")
    assert caught.value.to_body()["ResourceId"] == "alias/empty"

    with pytest.raises(ConflictException) as conflict:
        call("CreateAlias", AliasName="alias/empty", KeyArn=first)
    assert conflict.value.status == 409

    updated = call("UpdateAlias", AliasName="alias/empty", KeyArn=first)["Alias"]
    assert updated == {"AliasName": "alias/empty", "KeyArn": first}
    assert call("GetKey", KeyIdentifier="alias/empty")["Key"]["KeyArn"] == first
    call("UpdateAlias", AliasName="alias/empty", KeyArn=second)
    assert call("GetKey", KeyIdentifier="alias/empty")["Key"]["KeyArn"] == second
    detached = call("UpdateAlias", AliasName="alias/empty")["Alias"]
    assert detached == {"AliasName": "alias/empty"}

    assert call("DeleteAlias", AliasName="alias/empty") == {}
    for operation in ("GetAlias", "UpdateAlias", "DeleteAlias"):
        with pytest.raises(ResourceNotFoundException) as missing:
            call(operation, AliasName="alias/empty")
        assert missing.value.to_body()["ResourceId"] == "alias/empty"
    assert call("GetKey", KeyIdentifier=first)["Key"]["KeyState"] == "CREATE_COMPLETE"


def test_alias_to_a_missing_key(call: Call) -> None:
    arn = f"arn:aws:payment-cryptography:{REGION}:{ACCOUNT}:key/bbbbbbbbbbbbbbbb"
    with pytest.raises(ResourceNotFoundException):
        call("CreateAlias", AliasName="alias/x", KeyArn=arn)
    call("CreateAlias", AliasName="alias/x")
    with pytest.raises(ResourceNotFoundException):
        call("UpdateAlias", AliasName="alias/x", KeyArn=arn)


def test_missing_alias_as_key_identifier(call: Call) -> None:
    with pytest.raises(ResourceNotFoundException, match="does not exist"):
        call("GetKey", KeyIdentifier="alias/nothing")


def test_list_aliases_filter_and_pagination(create_key: CreateKey, call: Call) -> None:
    arn = create_key()["KeyArn"]
    names = [f"alias/a{i}" for i in range(5)]
    for name in names:
        call("CreateAlias", AliasName=name, KeyArn=arn)
    call("CreateAlias", AliasName="alias/lonely")
    filtered = call("ListAliases", KeyArn=arn)["Aliases"]
    assert [a["AliasName"] for a in filtered] == names
    assert all(a["KeyArn"] == arn for a in filtered)
    page = call("ListAliases", MaxResults=4)
    assert len(page["Aliases"]) == 4
    rest = call("ListAliases", MaxResults=4, NextToken=page["NextToken"])
    assert "NextToken" not in rest
    every = [a["AliasName"] for a in page["Aliases"] + rest["Aliases"]]
    assert sorted(every) == sorted([*names, "alias/lonely"])
    assert {"AliasName": "alias/lonely"} in rest["Aliases"] + page["Aliases"]


def test_aliases_are_case_sensitive(call: Call) -> None:
    call("CreateAlias", AliasName="alias/Key")
    call("CreateAlias", AliasName="alias/key")
    assert len(call("ListAliases")["Aliases"]) == 2


# --- tags -----------------------------------------------------------------------------------


def test_tags(create_key: CreateKey, call: Call) -> None:
    arn = create_key(Tags=[{"Key": "team", "Value": "payments"}])["KeyArn"]
    assert call("ListTagsForResource", ResourceArn=arn)["Tags"] == [
        {"Key": "team", "Value": "payments"}]
    assert call("TagResource", ResourceArn=arn, Tags=[
        {"Key": "team", "Value": "cards"}, {"Key": "env", "Value": "test"}]) == {}
    tags = call("ListTagsForResource", ResourceArn=arn)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "test"), ("team", "cards")]
    assert call("UntagResource", ResourceArn=arn, TagKeys=["team", "absent"]) == {}
    assert call("ListTagsForResource", ResourceArn=arn)["Tags"] == [
        {"Key": "env", "Value": "test"}]


def test_tags_pagination_and_limits(create_key: CreateKey, call: Call) -> None:
    arn = create_key()["KeyArn"]
    call("TagResource", ResourceArn=arn, Tags=[{"Key": f"k{i:03}", "Value": "v"}
                                               for i in range(200)])
    first = call("ListTagsForResource", ResourceArn=arn, MaxResults=100)
    second = call("ListTagsForResource", ResourceArn=arn, MaxResults=100,
                  NextToken=first["NextToken"])
    assert len(first["Tags"]) == 100 and len(second["Tags"]) == 100
    assert "NextToken" not in second
    with pytest.raises(ServiceQuotaExceededException):
        call("TagResource", ResourceArn=arn, Tags=[{"Key": "one-more", "Value": "v"}])


def test_tag_refusals(create_key: CreateKey, call: Call) -> None:
    arn = create_key()["KeyArn"]
    with pytest.raises(ValidationException, match="reserved"):
        call("TagResource", ResourceArn=arn, Tags=[{"Key": "aws:owner", "Value": "me"}])
    with pytest.raises(ValidationException, match="more than once"):
        call("TagResource", ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"},
                                                   {"Key": "a", "Value": "2"}])
    missing = arn[:-16] + "cccccccccccccccc"
    with pytest.raises(ResourceNotFoundException):
        call("ListTagsForResource", ResourceArn=missing)


# --- quotas ---------------------------------------------------------------------------------


def test_key_quota_counts_non_deleted_keys(clock: FakeClock) -> None:
    registry = BackendRegistry(RecordingStore(), key_quota=2, alias_quota=1, clock=clock)
    body = {"KeyAttributes": {"KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY",
                              "KeyClass": "SYMMETRIC_KEY", "KeyAlgorithm": "AES_128",
                              "KeyModesOfUse": {"NoRestrictions": True}},
            "Exportable": True}

    def run(operation: str, request: dict[str, Any]) -> dict[str, Any]:
        return dispatch(registry, operation, request, account_id=ACCOUNT, region=REGION)

    first = run("CreateKey", body)["Key"]["KeyArn"]
    run("CreateKey", body)
    with pytest.raises(ServiceQuotaExceededException) as caught:
        run("CreateKey", body)
    assert caught.value.status == 402
    # DELETE_PENDING still counts; DELETE_COMPLETE does not.
    run("DeleteKey", {"KeyIdentifier": first, "DeleteKeyInDays": 3})
    with pytest.raises(ServiceQuotaExceededException):
        run("CreateKey", body)
    clock.advance(3 * DAY + 1)
    run("CreateKey", body)
    # other regions have their own quota
    dispatch(registry, "CreateKey", body, account_id=ACCOUNT, region="eu-west-1")

    run("CreateAlias", {"AliasName": "alias/one"})
    with pytest.raises(ServiceQuotaExceededException):
        run("CreateAlias", {"AliasName": "alias/two"})
    run("DeleteAlias", {"AliasName": "alias/one"})
    run("CreateAlias", {"AliasName": "alias/two"})


def test_alias_arn_of_another_region_is_not_found(call: Call) -> None:
    call("CreateAlias", AliasName="alias/here")
    foreign = f"arn:aws:payment-cryptography:eu-west-1:{ACCOUNT}:alias/here"
    with pytest.raises(ResourceNotFoundException, match="Alias") as caught:
        call("GetKey", KeyIdentifier=foreign)
    assert caught.value.to_body()["ResourceId"] == foreign


def test_concurrent_clients_lose_no_writes(create_key: CreateKey,
                                           registry: BackendRegistry) -> None:
    arn = create_key()["KeyArn"]
    attributes = {"KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY", "KeyClass": "SYMMETRIC_KEY",
                  "KeyAlgorithm": "AES_128", "KeyModesOfUse": {"NoRestrictions": True}}

    def client(number: int) -> None:
        for i in range(15):
            dispatch(registry, "TagResource", {"ResourceArn": arn, "Tags": [
                {"Key": f"t{number}-{i}", "Value": "v"}]}, account_id=ACCOUNT, region=REGION)
            dispatch(registry, "CreateKey", {"KeyAttributes": attributes, "Exportable": True},
                     account_id=ACCOUNT, region=REGION)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    backend = registry.backend(ACCOUNT, REGION)
    assert len(backend.resolve_key(arn).tags) == 60
    assert len(backend.keys) == 61


def test_replication_regions_are_refused_not_ignored(call: Call, create_key: CreateKey,
                                                     registry: BackendRegistry) -> None:
    """Multi-region replication is not emulated: asking for it is a clear refusal, and
    nothing is created."""
    attributes = {"KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY", "KeyClass": "SYMMETRIC_KEY",
                  "KeyAlgorithm": "AES_128", "KeyModesOfUse": {"NoRestrictions": True}}
    with pytest.raises(ValidationException, match="ReplicationRegions is not supported"):
        call("CreateKey", KeyAttributes=attributes, Exportable=True,
             ReplicationRegions=["us-west-2"])
    assert registry.backend(ACCOUNT, REGION).keys == {}
    kek = create_key()
    with pytest.raises(ValidationException, match="ReplicationRegions is not supported"):
        call("ImportKey", KeyMaterial={"Tr31KeyBlock": {
            "WrappingKeyIdentifier": kek["KeyArn"], "WrappedKeyBlock": "D" + "0" * 111}},
            ReplicationRegions=["eu-west-1"])
    assert len(registry.backend(ACCOUNT, REGION).keys) == 1
    # an empty list asks for no replication, as leaving it out does
    assert call("CreateKey", KeyAttributes=attributes, Exportable=True,
                ReplicationRegions=[])["Key"]["KeyState"] == "CREATE_COMPLETE"
