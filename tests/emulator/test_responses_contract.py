"""The emulator against the botocore model: handler names, error classes, output shapes,
and ``dispatch`` raising nothing but ApcServiceException."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from botocore import xform_name
from botocore.parsers import JSONParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apckx.emulator import exceptions
from apckx.emulator.control.account import BackendRegistry
from apckx.emulator.exceptions import ApcServiceException, ResourceNotFoundException
from apckx.emulator.responses import (
    IMPLEMENTED_OPERATIONS,
    PaymentCryptographyResponse,
    dispatch,
    handler_name,
)
from apckx.emulator.validation import service_model

from .conftest import (
    ACCOUNT,
    MODES_WRAP,
    REGION,
    Call,
    assert_no_secrets,
    held_secrets,
    output_problems,
)

# Errors of the wire protocol itself, not of the service model.
PROTOCOL_ERRORS = {
    "UnknownOperationException", "SerializationException", "UnrecognizedClientException",
    "InvalidSignatureException", "IncompleteSignatureException",
    "MissingAuthenticationTokenException",
}
# Smithy httpError codes (spec section 1.1).
SMITHY_STATUS = {
    "ValidationException": 400, "AccessDeniedException": 403,
    "ResourceNotFoundException": 404, "ConflictException": 409,
    "ServiceQuotaExceededException": 402, "ThrottlingException": 429,
    "InternalServerException": 500, "ServiceUnavailableException": 503,
}
#: Errors the shared spec's status table does not list; the botocore model gives them no
#: status, so the emulator's choice is recorded in docs/EMULATOR.md (a client error: 400).
INFERRED_STATUS = {"PublicPolicyException": 400}


def error_classes() -> list[type[ApcServiceException]]:
    return [cls for _, cls in inspect.getmembers(exceptions, inspect.isclass)
            if issubclass(cls, ApcServiceException) and cls is not ApcServiceException]


def test_every_handler_is_a_botocore_operation() -> None:
    model = service_model()
    python_names = {xform_name(name): name for name in model.operation_names}
    handlers = {name for name, member in inspect.getmembers(PaymentCryptographyResponse)
                if inspect.isfunction(member) and not name.startswith("_")}
    assert handlers == {handler_name(op) for op in IMPLEMENTED_OPERATIONS}
    for handler in handlers:
        assert handler in python_names, handler
    assert IMPLEMENTED_OPERATIONS <= set(model.operation_names)
    assert len(IMPLEMENTED_OPERATIONS) == 24  # + GetParametersForImport/Export, GetCSR (tr34)
    # and the three resource-policy operations


def test_every_error_class_is_named_as_the_model() -> None:
    model_errors = {shape.name for shape in service_model().error_shapes}
    for cls in error_classes():
        assert cls.__name__ == cls.error_type
        if cls.error_type not in PROTOCOL_ERRORS:
            assert cls.error_type in model_errors, cls.error_type
            assert cls.status == {**SMITHY_STATUS, **INFERRED_STATUS}[cls.error_type]
    assert {c.error_type for c in error_classes()} >= set(SMITHY_STATUS)


def test_error_bodies_parse_in_botocore() -> None:
    operation = service_model().operation_model("GetKey")
    for cls in error_classes():
        error = (ResourceNotFoundException("Key x does not exist", "alias/x")
                 if cls is ResourceNotFoundException else cls("what went wrong"))
        body = error.to_body()
        assert body["__type"] == cls.error_type
        assert body["message"] == error.message
        parsed = JSONParser().parse({"status_code": error.status, "headers": {},
                                     "body": json.dumps(body).encode()},
                                    operation.output_shape)
        assert parsed["Error"]["Code"] == cls.error_type
        assert parsed["Error"]["Message"] == error.message
    missing = ResourceNotFoundException("Alias alias/x does not exist", "alias/x")
    assert missing.to_body() == {"__type": "ResourceNotFoundException",
                                 "message": "Alias alias/x does not exist",
                                 "ResourceId": "alias/x"}


def test_the_output_checker_catches_shape_errors() -> None:
    key_shape = service_model().operation_model("GetKey").output_shape
    assert output_problems(key_shape, {}) == [".Key: required member missing"]
    assert output_problems(key_shape, {"Key": {}, "Extra": 1})[-1] == (
        ".Extra: not a member of GetKeyOutput")
    problems = output_problems(key_shape, {"Key": {
        "KeyArn": 5, "KeyAttributes": {"KeyUsage": "NOPE", "KeyClass": "SYMMETRIC_KEY",
                                       "KeyAlgorithm": "AES_256", "KeyModesOfUse": {}},
        "KeyCheckValue": "ABCDEF", "KeyCheckValueAlgorithm": "CMAC", "Enabled": "true",
        "Exportable": True, "KeyState": "CREATE_COMPLETE", "KeyOrigin": "EXTERNAL",
        "CreateTimestamp": "yesterday"}})
    assert problems == [".Key.KeyArn: expected a string",
                        ".Key.KeyAttributes.KeyUsage: 'NOPE' is not in the enum",
                        ".Key.Enabled: expected a boolean",
                        ".Key.CreateTimestamp: expected epoch seconds"]


def test_every_operation_answers_its_output_shape(call: Call) -> None:
    """One pass over all 21 operations; ``call`` checks each output against the model."""
    attributes = {"KeyUsage": "TR31_K1_KEY_BLOCK_PROTECTION_KEY", "KeyClass": "SYMMETRIC_KEY",
                  "KeyAlgorithm": "AES_256", "KeyModesOfUse": MODES_WRAP}
    called: set[str] = set()

    def run(operation: str, **members: Any) -> dict[str, Any]:
        called.add(operation)
        return call(operation, **members)

    kek = run("CreateKey", KeyAttributes=attributes, Exportable=True,
              Tags=[{"Key": "a", "Value": "b"}])["Key"]
    k3 = run("CreateKey", Exportable=False, KeyAttributes={
        "KeyUsage": "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT",
        "KeyClass": "ASYMMETRIC_KEY_PAIR", "KeyAlgorithm": "ECC_NIST_P256",
        "KeyModesOfUse": {"DeriveKey": True}})["Key"]
    run("GetKey", KeyIdentifier=kek["KeyArn"])
    run("ListKeys")
    run("GetPublicKeyCertificate", KeyIdentifier=k3["KeyArn"])
    wrapped = run("ExportKey", ExportKeyIdentifier=kek["KeyArn"], KeyMaterial={
        "Tr31KeyBlock": {"WrappingKeyIdentifier": kek["KeyArn"]}})["WrappedKey"]
    run("ImportKey", KeyMaterial={"Tr31KeyBlock": {
        "WrappingKeyIdentifier": kek["KeyArn"], "WrappedKeyBlock": wrapped["KeyMaterial"]}})
    run("CreateAlias", AliasName="alias/one", KeyArn=kek["KeyArn"])
    run("GetAlias", AliasName="alias/one")
    run("UpdateAlias", AliasName="alias/one")
    run("ListAliases")
    run("DeleteAlias", AliasName="alias/one")
    run("TagResource", ResourceArn=kek["KeyArn"], Tags=[{"Key": "c", "Value": "d"}])
    run("ListTagsForResource", ResourceArn=kek["KeyArn"])
    run("UntagResource", ResourceArn=kek["KeyArn"], TagKeys=["a"])
    run("PutResourcePolicy", ResourceArn=kek["KeyArn"], Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
            "Action": "payment-cryptography:GetKey", "Resource": "*"}]}))
    run("GetResourcePolicy", ResourceArn=kek["KeyArn"])
    run("DeleteResourcePolicy", ResourceArn=kek["KeyArn"])
    run("StopKeyUsage", KeyIdentifier=kek["KeyArn"])
    run("StartKeyUsage", KeyIdentifier=kek["KeyArn"])
    run("DeleteKey", KeyIdentifier=kek["KeyArn"])
    run("RestoreKey", KeyIdentifier=kek["KeyArn"])
    signer = run("CreateKey", Exportable=False, KeyAttributes={
        "KeyUsage": "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE",
        "KeyClass": "ASYMMETRIC_KEY_PAIR", "KeyAlgorithm": "RSA_2048",
        "KeyModesOfUse": {"Sign": True}})["Key"]
    run("GetCertificateSigningRequest", KeyIdentifier=signer["KeyArn"],
        SigningAlgorithm="SHA256", CertificateSubject={"CommonName": "apckx"})
    run("GetParametersForImport", KeyMaterialType="KEY_CRYPTOGRAM",
        WrappingKeyAlgorithm="RSA_2048")
    run("GetParametersForExport", KeyMaterialType="TR34_KEY_BLOCK",
        SigningKeyAlgorithm="RSA_2048")
    assert called == IMPLEMENTED_OPERATIONS


# --- robustness: arbitrary JSON never escapes as anything but an AWS error ------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 300) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8,
)


def plausible_body(operation: str) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies that use the operation's real member names with arbitrary JSON values."""
    members = list(service_model().operation_model(operation).input_shape.members)
    return st.dictionaries(st.sampled_from(members), json_values, max_size=len(members))


@pytest.mark.parametrize("operation", sorted(IMPLEMENTED_OPERATIONS))
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_dispatch_raises_only_service_exceptions(operation: str, data: st.DataObject) -> None:
    registry = _shared_registry()
    body = data.draw(plausible_body(operation))
    try:
        output = dispatch(registry, operation, body, account_id=ACCOUNT, region=REGION)
    except ApcServiceException as error:
        assert error.to_body()["__type"] == error.error_type
    else:
        assert isinstance(output, dict)


_REGISTRY: list[BackendRegistry] = []


def _shared_registry() -> BackendRegistry:
    if not _REGISTRY:
        _REGISTRY.append(BackendRegistry())
    return _REGISTRY[0]


def test_the_secret_guard_sees_every_secret(call: Call, registry: BackendRegistry) -> None:
    """``call`` scans every answer and error for held secrets; make sure it can see them."""
    attributes = {"KeyUsage": "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT",
                  "KeyClass": "ASYMMETRIC_KEY_PAIR", "KeyAlgorithm": "ECC_NIST_P256",
                  "KeyModesOfUse": {"DeriveKey": True}}
    k3 = call("CreateKey", KeyAttributes=attributes, Exportable=False)["Key"]
    call("GetPublicKeyCertificate", KeyIdentifier=k3["KeyArn"])
    call("CreateKey", Exportable=True, KeyAttributes={
        "KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY", "KeyClass": "SYMMETRIC_KEY",
        "KeyAlgorithm": "AES_128", "KeyModesOfUse": MODES_WRAP})
    secrets = held_secrets(registry)
    assert len(secrets) == 4  # AES key (2 cases), K3 private key, account CA private key
    for secret in secrets:
        with pytest.raises(AssertionError, match="a secret reached"):
            assert_no_secrets(registry, f"message with {secret} inside")
