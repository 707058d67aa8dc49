"""ApcService against botocore's Stubber: parameters sent, errors mapped, pages followed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from apckx.errors import ConfigError, InputError, ServiceError
from apckx.service.apc import ApcService
from apckx.service.client import check_endpoint_url, make_client

ARN = "arn:aws:payment-cryptography:us-east-1:111122223333:key/abcdefghijklmnop"
ARN2 = "arn:aws:payment-cryptography:us-east-1:111122223333:key/bbbbbbbbbbbbbbbb"


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ApcService, Stubber]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    client = make_client(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    with Stubber(client) as stubber:
        yield ApcService(client), stubber
        stubber.assert_no_pending_responses()


def _key(arn: str = ARN) -> dict[str, Any]:
    return {
        "KeyArn": arn,
        "KeyAttributes": {
            "KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY",
            "KeyClass": "SYMMETRIC_KEY",
            "KeyAlgorithm": "AES_256",
            "KeyModesOfUse": {"Wrap": True},
        },
        "KeyCheckValue": "ABCDEF",
        "KeyCheckValueAlgorithm": "CMAC",
        "Enabled": True,
        "Exportable": True,
        "KeyState": "CREATE_COMPLETE",
        "KeyOrigin": "EXTERNAL",
        "CreateTimestamp": 1.0,
    }


def test_create_key_sends_tags_and_derive_usage(stubbed: tuple[ApcService, Stubber]) -> None:
    apc, stub = stubbed
    attrs = {
        "KeyAlgorithm": "ECC_NIST_P521",
        "KeyClass": "ASYMMETRIC_KEY_PAIR",
        "KeyModesOfUse": {"DeriveKey": True},
        "KeyUsage": "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT",
    }
    stub.add_response(
        "create_key",
        {"Key": _key()},
        {
            "KeyAttributes": attrs,
            "Exportable": True,
            "Enabled": True,
            "DeriveKeyUsage": "TR31_K1_KEY_BLOCK_PROTECTION_KEY",
            "Tags": [{"Key": "apckx:ceremony", "Value": "c1"}],
        },
    )
    key = apc.create_key(
        key_attributes=attrs,
        exportable=True,
        derive_key_usage="TR31_K1_KEY_BLOCK_PROTECTION_KEY",
        tags={"apckx:ceremony": "c1"},
    )
    assert key["KeyArn"] == ARN
    assert [c.operation for c in apc.calls] == ["CreateKey"]
    assert apc.calls[0].error_code is None


def test_client_error_becomes_service_error(stubbed: tuple[ApcService, Stubber]) -> None:
    apc, stub = stubbed
    stub.add_client_error(
        "get_key", "ResourceNotFoundException", "Key not found", http_status_code=404
    )
    with pytest.raises(ServiceError) as info:
        apc.get_key("alias/nope")
    assert info.value.code == "ResourceNotFoundException"
    assert info.value.operation == "GetKey"
    assert apc.calls[0].error_code == "ResourceNotFoundException"


def test_find_key_none_on_not_found(stubbed: tuple[ApcService, Stubber]) -> None:
    apc, stub = stubbed
    stub.add_client_error("get_key", "ResourceNotFoundException", "no", http_status_code=404)
    assert apc.find_key("alias/nope") is None
    stub.add_client_error("get_key", "AccessDeniedException", "no", http_status_code=403)
    with pytest.raises(ServiceError):
        apc.find_key("alias/nope")


def test_set_alias_creates_then_updates_on_conflict(stubbed: tuple[ApcService, Stubber]) -> None:
    apc, stub = stubbed
    alias = {"AliasName": "alias/a", "KeyArn": ARN}
    stub.add_response("create_alias", {"Alias": alias}, {"AliasName": "alias/a", "KeyArn": ARN})
    assert apc.set_alias("alias/a", ARN) is True
    stub.add_client_error("create_alias", "ConflictException", "exists", http_status_code=409)
    stub.add_response("update_alias", {"Alias": alias}, {"AliasName": "alias/a", "KeyArn": ARN})
    assert apc.set_alias("alias/a", ARN) is False
    stub.add_client_error("create_alias", "ValidationException", "bad", http_status_code=400)
    with pytest.raises(ServiceError):
        apc.set_alias("alias/a", ARN)


def test_list_keys_follows_every_page(stubbed: tuple[ApcService, Stubber]) -> None:
    apc, stub = stubbed
    summary = {
        k: _key()[k]
        for k in ("KeyArn", "KeyState", "KeyAttributes", "KeyCheckValue", "Exportable", "Enabled")
    }
    summary2 = dict(summary, KeyArn=ARN2)
    stub.add_response("list_keys", {"Keys": [summary], "NextToken": "t1"}, {"MaxResults": 100})
    stub.add_response("list_keys", {"Keys": [summary2]}, {"MaxResults": 100, "NextToken": "t1"})
    assert [k["KeyArn"] for k in apc.list_keys()] == [ARN, ARN2]


def test_list_tags_pages_to_dict(stubbed: tuple[ApcService, Stubber]) -> None:
    apc, stub = stubbed
    stub.add_response(
        "list_tags_for_resource",
        {"Tags": [{"Key": "a", "Value": "1"}], "NextToken": "n"},
        {"ResourceArn": ARN},
    )
    stub.add_response(
        "list_tags_for_resource",
        {"Tags": [{"Key": "b", "Value": "2"}]},
        {"ResourceArn": ARN, "NextToken": "n"},
    )
    assert apc.list_tags_for_resource(ARN) == {"a": "1", "b": "2"}


def test_every_contract_operation_is_wrapped(stubbed: tuple[ApcService, Stubber]) -> None:
    apc, stub = stubbed
    stub.add_response("delete_key", {"Key": _key()}, {"KeyIdentifier": ARN, "DeleteKeyInDays": 3})
    stub.add_response("restore_key", {"Key": _key()}, {"KeyIdentifier": ARN})
    stub.add_response("start_key_usage", {"Key": _key()}, {"KeyIdentifier": ARN})
    stub.add_response("stop_key_usage", {"Key": _key()}, {"KeyIdentifier": ARN})
    stub.add_response(
        "get_public_key_certificate",
        {"KeyCertificate": "Y2VydA==", "KeyCertificateChain": "Y2hhaW4="},
        {"KeyIdentifier": ARN},
    )
    stub.add_response("get_alias", {"Alias": {"AliasName": "alias/a"}}, {"AliasName": "alias/a"})
    stub.add_response("delete_alias", {}, {"AliasName": "alias/a"})
    stub.add_response("list_aliases", {"Aliases": [{"AliasName": "alias/a"}]}, {"MaxResults": 100})
    stub.add_response(
        "tag_resource", {}, {"ResourceArn": ARN, "Tags": [{"Key": "k", "Value": "v"}]}
    )
    stub.add_response("untag_resource", {}, {"ResourceArn": ARN, "TagKeys": ["k"]})
    stub.add_response(
        "export_key",
        {
            "WrappedKey": {
                "WrappingKeyArn": ARN,
                "WrappedKeyMaterialFormat": "TR31_KEY_BLOCK",
                "KeyMaterial": "D" * 40,
            }
        },
        {
            "ExportKeyIdentifier": ARN,
            "KeyMaterial": {"Tr31KeyBlock": {"WrappingKeyIdentifier": ARN2}},
        },
    )
    apc.delete_key(ARN, delete_key_in_days=3)
    apc.restore_key(ARN)
    apc.start_key_usage(ARN)
    apc.stop_key_usage(ARN)
    assert apc.get_public_key_certificate(ARN) == ("Y2VydA==", "Y2hhaW4=")
    assert apc.get_alias("alias/a") == {"AliasName": "alias/a"}
    apc.delete_alias("alias/a")
    assert apc.list_aliases() == [{"AliasName": "alias/a"}]
    apc.tag_resource(ARN, {"k": "v"})
    apc.untag_resource(ARN, ["k"])
    wrapped = apc.export_key(
        export_key_identifier=ARN,
        key_material={"Tr31KeyBlock": {"WrappingKeyIdentifier": ARN2}},
    )
    assert wrapped["WrappingKeyArn"] == ARN
    assert len(apc.calls) == 11


def test_param_validation_is_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    apc = ApcService(make_client(region="us-east-1", endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(InputError):
        apc.import_key(key_material={})


@pytest.mark.parametrize(
    "url",
    ["ftp://x", "localhost:8080", "http://", "http://host:99999", "http://h/?a=b", "http://h:0"],
)
def test_bad_endpoint_urls(url: str) -> None:
    with pytest.raises(InputError):
        check_endpoint_url(url)


def test_good_endpoint_url() -> None:
    assert check_endpoint_url(" http://127.0.0.1:8080 ") == "http://127.0.0.1:8080"


def test_unknown_profile_is_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "creds"))
    with pytest.raises(ConfigError, match="profile"):
        make_client(region="us-east-1", profile="nope")


def test_missing_region_is_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    with pytest.raises(ConfigError, match="region"):
        make_client()


def test_bad_retry_options() -> None:
    with pytest.raises(InputError):
        make_client(region="us-east-1", retry_mode="wild")
    with pytest.raises(InputError):
        make_client(region="us-east-1", max_attempts=0)


def test_env_endpoint_is_applied_by_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_PAYMENT_CRYPTOGRAPHY", "http://127.0.0.1:4566")
    client = make_client(region="us-east-1")
    assert client.meta.endpoint_url == "http://127.0.0.1:4566"


def test_set_alias_probably_exists_updates_first(stubbed: tuple[ApcService, Stubber]) -> None:
    apc, stub = stubbed
    alias = {"AliasName": "alias/a", "KeyArn": ARN}
    stub.add_response("update_alias", {"Alias": alias}, {"AliasName": "alias/a", "KeyArn": ARN})
    assert apc.set_alias("alias/a", ARN, probably_exists=True) is False
    stub.add_client_error("update_alias", "ResourceNotFoundException", "no", http_status_code=404)
    stub.add_response("create_alias", {"Alias": alias}, {"AliasName": "alias/a", "KeyArn": ARN})
    assert apc.set_alias("alias/a", ARN, probably_exists=True) is True
