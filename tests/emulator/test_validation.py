"""Input validation against the botocore model: every refusal is a ValidationException."""

from __future__ import annotations

from typing import Any

import pytest

from apckx.emulator.control.account import BackendRegistry
from apckx.emulator.exceptions import (
    ResourceNotFoundException,
    SerializationException,
    UnknownOperationException,
    ValidationException,
)
from apckx.emulator.responses import dispatch
from apckx.emulator.validation import prune_input, service_model, validate_input

KEY_ARN = "arn:aws:payment-cryptography:us-east-1:111122223333:key/abcdefghijklmnop"
K1_ATTRIBUTES = {
    "KeyUsage": "TR31_K1_KEY_BLOCK_PROTECTION_KEY",
    "KeyClass": "SYMMETRIC_KEY",
    "KeyAlgorithm": "AES_256",
    "KeyModesOfUse": {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True},
}


def refusal(operation: str, body: dict[str, Any]) -> str:
    with pytest.raises(ValidationException) as caught:
        validate_input(operation, body)
    assert caught.value.status == 400
    assert caught.value.to_body()["__type"] == "ValidationException"
    return caught.value.message


def test_the_model_is_loaded_once() -> None:
    assert service_model() is service_model()
    assert "ImportKey" in service_model().operation_names


def test_a_valid_body_passes() -> None:
    validate_input("CreateKey", {"KeyAttributes": K1_ATTRIBUTES, "Exportable": True})
    validate_input("GetKey", {"KeyIdentifier": KEY_ARN})
    validate_input("GetKey", {"KeyIdentifier": "alias/my-key_1/x"})


def test_missing_required_member() -> None:
    message = refusal("CreateKey", {"KeyAttributes": K1_ATTRIBUTES})
    assert message == ("1 validation error detected: Value null at 'Exportable' failed to "
                       "satisfy constraint: Member must not be null")


def test_missing_nested_required_member() -> None:
    attributes = {k: v for k, v in K1_ATTRIBUTES.items() if k != "KeyClass"}
    message = refusal("CreateKey", {"KeyAttributes": attributes, "Exportable": True})
    assert "'KeyAttributes.KeyClass'" in message
    assert "must not be null" in message


def test_null_counts_as_absent() -> None:
    assert "must not be null" in refusal("GetKey", {"KeyIdentifier": None})


@pytest.mark.parametrize(("body", "expected"), [
    ({"KeyAttributes": K1_ATTRIBUTES, "Exportable": "yes"}, "must be a boolean"),
    ({"KeyAttributes": "K1", "Exportable": True}, "must be a JSON object"),
    ({"KeyAttributes": K1_ATTRIBUTES, "Exportable": True, "Tags": {"a": "b"}}, "must be a list"),
])
def test_wrong_type(body: dict[str, Any], expected: str) -> None:
    assert expected in refusal("CreateKey", body)


def test_wrong_integer_type_and_bool_is_not_an_integer() -> None:
    assert "must be an integer" in refusal("ListKeys", {"MaxResults": "5"})
    assert "must be an integer" in refusal("ListKeys", {"MaxResults": True})


def test_bad_enum() -> None:
    attributes = dict(K1_ATTRIBUTES, KeyAlgorithm="AES_512")
    message = refusal("CreateKey", {"KeyAttributes": attributes, "Exportable": True})
    assert "Value 'AES_512' at 'KeyAttributes.KeyAlgorithm'" in message
    assert "enum value set" in message
    assert "AES_256" in message


@pytest.mark.parametrize("identifier", [
    "alias/has space",
    "key/abcdefghijklmnop",
    "arn:aws:payment-cryptography:us-east-1:1111:key/abcdefghijklmnop",
    "alias/ok\n",
])
def test_bad_pattern(identifier: str) -> None:
    assert "regular expression pattern" in refusal("GetKey", {"KeyIdentifier": identifier})


def test_too_long_and_too_short() -> None:
    assert "less than or equal to 256" in refusal("GetAlias", {"AliasName": "alias/" + "a" * 251})
    assert "greater than or equal to 7" in refusal("GetAlias", {"AliasName": "alias/"})


@pytest.mark.parametrize(("days", "bound"), [(2, "greater than or equal to 3"),
                                             (181, "less than or equal to 180")])
def test_integer_range(days: int, bound: str) -> None:
    body = {"KeyIdentifier": KEY_ARN, "DeleteKeyInDays": days}
    assert bound in refusal("DeleteKey", body)


def test_list_length() -> None:
    tags = [{"Key": f"k{i}", "Value": "v"} for i in range(201)]
    message = refusal("TagResource", {"ResourceArn": KEY_ARN, "Tags": tags})
    assert "'Tags'" in message
    assert "less than or equal to 200" in message


def test_union_with_no_member() -> None:
    message = refusal("ImportKey", {"KeyMaterial": {}})
    assert "exactly one member must be set (0 given" in message


def test_union_with_two_members() -> None:
    root = {"KeyAttributes": K1_ATTRIBUTES, "PublicKeyCertificate": "Y2VydA=="}
    block = {"WrappingKeyIdentifier": KEY_ARN, "WrappedKeyBlock": "D" * 56}
    message = refusal("ImportKey", {"KeyMaterial": {"RootCertificatePublicKey": root,
                                                    "Tr31KeyBlock": block}})
    assert "exactly one member must be set (2 given" in message


def test_nested_union_cardinality() -> None:
    derivation: dict[str, Any] = {
        "PrivateKeyIdentifier": KEY_ARN, "CertificateAuthorityPublicKeyIdentifier": KEY_ARN,
        "PublicKeyCertificate": "Y2VydA==", "DeriveKeyAlgorithm": "AES_256",
        "KeyDerivationFunction": "NIST_SP800", "KeyDerivationHashAlgorithm": "SHA_512",
        "DerivationData": {}, "WrappedKeyBlock": "D" * 56,
    }
    message = refusal("ImportKey", {"KeyMaterial": {"DiffieHellmanTr31KeyBlock": derivation}})
    assert "'KeyMaterial.DiffieHellmanTr31KeyBlock.DerivationData'" in message


def test_every_violation_is_reported() -> None:
    body = {"KeyAttributes": dict(K1_ATTRIBUTES, KeyUsage="K1"), "Exportable": 1,
            "KeyCheckValueAlgorithm": "MD5"}
    assert refusal("CreateKey", body).startswith("3 validation errors detected: ")


def test_shared_information_must_be_even_hex() -> None:
    derivation = {
        "PrivateKeyIdentifier": KEY_ARN, "CertificateAuthorityPublicKeyIdentifier": KEY_ARN,
        "PublicKeyCertificate": "Y2VydA==", "DeriveKeyAlgorithm": "AES_256",
        "KeyDerivationFunction": "NIST_SP800", "KeyDerivationHashAlgorithm": "SHA_512",
        "DerivationData": {"SharedInformation": "ABC"}, "WrappedKeyBlock": "D" * 56,
    }
    message = refusal("ImportKey", {"KeyMaterial": {"DiffieHellmanTr31KeyBlock": derivation}})
    assert "SharedInformation" in message


def test_sensitive_values_are_not_echoed() -> None:
    # KeyMaterial (a wrapped key block on export) is marked sensitive in the model; the
    # input side's Tr31WrappedKeyBlock is echoed only when short, so a long bad block is not.
    block = "D0112K1TB00E0000" + "!" * 96
    body = {"KeyMaterial": {"Tr31KeyBlock": {"WrappingKeyIdentifier": KEY_ARN,
                                             "WrappedKeyBlock": block}}}
    message = refusal("ImportKey", body)
    assert "WrappedKeyBlock" in message
    assert block not in message
    assert "D0112K1TB00E0000" not in message


def test_unknown_members_are_ignored() -> None:
    validate_input("GetKey", {"KeyIdentifier": KEY_ARN, "SomethingNew": [1, 2]})


def test_dispatch_refuses_a_body_that_is_not_an_object() -> None:
    registry = BackendRegistry()
    for body in ([], "text", None, 3):
        with pytest.raises(SerializationException) as caught:
            dispatch(registry, "ListKeys", body, account_id="111122223333", region="us-east-1")
        assert caught.value.status == 400


def test_dispatch_names_an_unimplemented_operation() -> None:
    registry = BackendRegistry()
    with pytest.raises(UnknownOperationException) as caught:
        dispatch(registry, "GetMpaTeamAssociation", {}, account_id="111122223333",
                 region="us-east-1")
    assert caught.value.message == (
        "GetMpaTeamAssociation is not implemented by the apckx emulator")
    assert caught.value.status == 400


def test_dispatch_refuses_an_unknown_operation() -> None:
    with pytest.raises(UnknownOperationException, match="FlyToTheMoon"):
        dispatch(BackendRegistry(), "FlyToTheMoon", {}, account_id="111122223333",
                 region="us-east-1")


def test_dispatch_validates_before_running(call: Any) -> None:
    with pytest.raises(ValidationException, match="KeyIdentifier"):
        call("GetKey")


def test_nulls_and_unknown_members_never_reach_the_handlers(call: Any) -> None:
    attributes = dict(K1_ATTRIBUTES, KeyModesOfUse={"Encrypt": True, "Decrypt": None,
                                                    "Wrap": True, "Unwrap": None})
    key = call("CreateKey", KeyAttributes=attributes, Exportable=True, Enabled=None,
               DeriveKeyUsage=None, Tags=None, Future={"x": 1})["Key"]
    assert key["Enabled"] is True  # null Enabled is absent: the default applies
    assert key["KeyAttributes"]["KeyModesOfUse"]["Decrypt"] is False
    # Unknown and null members are pruned: the one member left reaches its handler.
    with pytest.raises(ResourceNotFoundException, match="alias/ca"):
        call("ImportKey", KeyMaterial={"Unknown": {"a": 1}, "RootCertificatePublicKey": None,
                                       "Tr34KeyBlock": {
            "CertificateAuthorityPublicKeyIdentifier": "alias/ca",
            "SigningKeyCertificate": "Y2VydA==", "WrappedKeyBlock": "AB",
            "KeyBlockFormat": "X9_TR34_2012"}})


def test_prune_input_keeps_only_modeled_members() -> None:
    body = {"KeyIdentifier": "alias/x", "DeleteKeyInDays": None, "Extra": 1}
    assert prune_input("DeleteKey", body) == {"KeyIdentifier": "alias/x"}
