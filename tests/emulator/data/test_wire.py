"""The data plane's wire: rest-json routed from the model, SigV4, errors botocore parses to
their classes, policy, per-plane rate limits, faults, request log, keep-alive."""

from __future__ import annotations

import datetime
import http.client
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.parsers import RestJSONParser

from apckx.emulator import rest_json
from apckx.emulator.auth import Policy
from apckx.emulator.data.exceptions import VerificationFailedException
from apckx.emulator.exceptions import ValidationException
from apckx.emulator.server import EmulatorConfig, FaultSpec
from apckx.emulator.validation import data_service_model

from .conftest import DataPlane, start_data_plane

D0 = "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY"
AES_KEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")  # SP 800-38A's AES-128 key
SYMMETRIC_CBC = {"Symmetric": {"Mode": "CBC"}}


def create_d0(plane: DataPlane, modes: dict[str, bool] | None = None) -> str:
    arn: str = plane.control.create_key(
        KeyAttributes={"KeyUsage": D0, "KeyClass": "SYMMETRIC_KEY", "KeyAlgorithm": "AES_128",
                       "KeyModesOfUse": modes or {"Encrypt": True, "Decrypt": True,
                                                  "Wrap": True, "Unwrap": True}},
        Exportable=True)["Key"]["KeyArn"]
    return arn


def signed(url: str, path: str, body: dict[str, Any], *, service: str = "payment-cryptography",
           content_type: str = "application/json") -> tuple[dict[str, str], bytes]:
    """Headers and body of a raw request to ``path``, SigV4-signed as botocore signs it."""
    data = json.dumps(body).encode()
    request = AWSRequest(method="POST", url=url + path, data=data,
                         headers={"Content-Type": content_type})
    request.context["timestamp"] = datetime.datetime.now(datetime.UTC).strftime(
        "%Y%m%dT%H%M%SZ")
    SigV4Auth(Credentials("test", "test"), service, "us-east-1").add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}, data


# --- routing from the model -------------------------------------------------------------------


def test_every_model_operation_has_a_route_from_its_request_uri() -> None:
    model = data_service_model()
    routed = {route.operation: route for route in rest_json.routes()}
    assert set(routed) == set(model.operation_names)
    for name in model.operation_names:
        template = model.operation_model(name).http["requestUri"]
        concrete = re.sub(r"\{[^}]+\}", "alias%2Fsome-key", template)
        matched = rest_json.match_route("POST", concrete)
        assert matched is not None and matched[0].operation == name
        for member in matched[1]:
            assert matched[1][member] == "alias/some-key"  # URL-decoded
    assert rest_json.match_route("POST", "/keys/x/bogus") is None
    assert rest_json.match_route("GET", "/mac/generate") is None  # the model's method only
    assert rest_json.match_route("POST", "/keys/a/b/encrypt") is None  # a label is one segment


def test_encrypt_through_an_alias_in_the_path(data_plane: DataPlane) -> None:
    arn = create_d0(data_plane)
    data_plane.control.create_alias(AliasName="alias/wire-d0", KeyArn=arn)
    answer = data_plane.data.encrypt_data(KeyIdentifier="alias/wire-d0", PlainText="00" * 16,
                                          EncryptionAttributes=SYMMETRIC_CBC)
    assert answer["KeyArn"] == arn
    key = data_plane.control.get_key(KeyIdentifier=arn)["Key"]
    assert answer["KeyCheckValue"] == key["KeyCheckValue"]
    assert re.fullmatch(r"[0-9A-F]{32}", answer["CipherText"])


# --- errors -------------------------------------------------------------------------------------


def test_server_side_validation_uses_the_data_model(data_plane: DataPlane) -> None:
    arn = create_d0(data_plane)
    with pytest.raises(data_plane.data.exceptions.ValidationException) as caught:
        data_plane.data.encrypt_data(KeyIdentifier=arn, PlainText="XYZ0",
                                     EncryptionAttributes=SYMMETRIC_CBC)
    error = caught.value.response["Error"]
    assert "'PlainText' failed to satisfy constraint" in error["Message"]
    assert "XYZ0" not in error["Message"]  # PlainText is sensitive: never echoed
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unknown_key_is_resource_not_found_with_its_id(data_plane: DataPlane) -> None:
    missing = "alias/no-such-key"
    with pytest.raises(data_plane.data.exceptions.ResourceNotFoundException) as caught:
        data_plane.data.encrypt_data(KeyIdentifier=missing, PlainText="00" * 16,
                                     EncryptionAttributes=SYMMETRIC_CBC)
    assert caught.value.response["ResourceId"] == missing
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_verification_failed_parses_with_its_reason() -> None:
    operation = data_service_model().operation_model("VerifyMac")
    error = VerificationFailedException("MAC verification failed", "INVALID_MAC")
    headers, body = rest_json.serialize_error(error)
    parsed = RestJSONParser().parse(
        {"status_code": 400, "headers": headers, "body": body}, operation.output_shape)
    assert parsed["Error"]["Code"] == "VerificationFailedException"
    assert parsed["Error"]["Message"] == "MAC verification failed"
    # botocore then parses the body with the error's own shape (endpoint.py
    # _add_modeled_error_fields): that is where Reason comes from.
    error_shape = data_service_model().shape_for_error_code("VerificationFailedException")
    modeled = RestJSONParser().parse(
        {"status_code": 400, "headers": headers, "body": body}, error_shape)
    assert modeled["Reason"] == "INVALID_MAC"
    validation = ValidationException("bad")
    headers, body = rest_json.serialize_error(validation)
    assert json.loads(body)["message"] == "bad"  # the model's lower-case member
    assert headers == {"x-amzn-ErrorType": "ValidationException"}


def test_disabled_and_deleted_keys_are_refused(data_plane: DataPlane) -> None:
    arn = create_d0(data_plane)
    data_plane.control.stop_key_usage(KeyIdentifier=arn)
    with pytest.raises(data_plane.data.exceptions.ValidationException, match="disabled"):
        data_plane.data.encrypt_data(KeyIdentifier=arn, PlainText="00" * 16,
                                     EncryptionAttributes=SYMMETRIC_CBC)
    data_plane.control.delete_key(KeyIdentifier=arn, DeleteKeyInDays=3)
    with pytest.raises(data_plane.data.exceptions.ValidationException, match="DELETE_PENDING"):
        data_plane.data.encrypt_data(KeyIdentifier=arn, PlainText="00" * 16,
                                     EncryptionAttributes=SYMMETRIC_CBC)


def test_key_usage_and_modes_are_enforced(data_plane: DataPlane) -> None:
    encrypt_only = create_d0(data_plane, {"Encrypt": True, "Wrap": True})
    data_plane.data.encrypt_data(KeyIdentifier=encrypt_only, PlainText="00" * 16,
                                 EncryptionAttributes=SYMMETRIC_CBC)
    with pytest.raises(data_plane.data.exceptions.ValidationException,
                       match="KeyModesOfUse must include Decrypt"):
        data_plane.data.decrypt_data(KeyIdentifier=encrypt_only, CipherText="00" * 16,
                                     DecryptionAttributes=SYMMETRIC_CBC)
    kek = data_plane.control.create_key(
        KeyAttributes={"KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY", "KeyClass": "SYMMETRIC_KEY",
                       "KeyAlgorithm": "AES_128", "KeyModesOfUse": {
                           "Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}},
        Exportable=True)["Key"]["KeyArn"]
    with pytest.raises(data_plane.data.exceptions.ValidationException,
                       match="KeyUsage TR31_K0_KEY_ENCRYPTION_KEY"):
        data_plane.data.encrypt_data(KeyIdentifier=kek, PlainText="00" * 16,
                                     EncryptionAttributes=SYMMETRIC_CBC)


def test_unknown_path_is_404_and_a_refused_call_keeps_the_connection(
        data_plane: DataPlane) -> None:
    arn = create_d0(data_plane)
    host, port = data_plane.emulator.host, data_plane.emulator.port
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        headers, body = signed(data_plane.url, "/keys/x/bogus", {})
        connection.request("POST", "/keys/x/bogus", body, headers)
        answer = connection.getresponse()
        assert answer.status == 404
        assert answer.getheader("x-amzn-ErrorType") == "UnknownOperationException"
        answer.read()
        path = f"/keys/{arn.replace(':', '%3A').replace('/', '%2F')}/encrypt"
        bad = {"PlainText": "00" * 15, "EncryptionAttributes": SYMMETRIC_CBC}
        headers, body = signed(data_plane.url, path, bad)
        connection.request("POST", path, body, headers)
        answer = connection.getresponse()
        assert answer.status == 400
        assert answer.getheader("x-amzn-ErrorType") == "ValidationException"
        assert "multiple of 16 bytes" in json.loads(answer.read())["message"]
        good = {"PlainText": "00" * 16, "EncryptionAttributes": SYMMETRIC_CBC}
        headers, body = signed(data_plane.url, path, good)
        connection.request("POST", path, body, headers)
        answer = connection.getresponse()
        assert answer.status == 200
        assert answer.getheader("Content-Type") == "application/json"
        assert json.loads(answer.read())["KeyArn"] == arn
    finally:
        connection.close()


def test_a_bad_signature_is_refused_in_rest_json_form(data_plane: DataPlane) -> None:
    arn = create_d0(data_plane)
    path = f"/keys/{arn.replace(':', '%3A').replace('/', '%2F')}/encrypt"
    headers, body = signed(data_plane.url, path, {"PlainText": "00" * 16,
                                                  "EncryptionAttributes": SYMMETRIC_CBC})
    connection = http.client.HTTPConnection(data_plane.emulator.host, data_plane.emulator.port,
                                            timeout=5)
    try:
        connection.request("POST", path, body.replace(b"00", b"11", 1), headers)
        answer = connection.getresponse()
        assert answer.status == 403
        assert answer.getheader("x-amzn-ErrorType") == "InvalidSignatureException"
    finally:
        connection.close()


# --- the shared machinery -------------------------------------------------------------------


def test_policy_names_the_data_plane_action(tmp_path: Path) -> None:
    policy = Policy(allow=("payment-cryptography:*",),
                    deny=("payment-cryptography:DecryptData",))
    plane = start_data_plane(EmulatorConfig(policy=policy, request_log_path=tmp_path / "log"))
    try:
        arn = create_d0(plane)
        cipher_text = plane.data.encrypt_data(KeyIdentifier=arn, PlainText="00" * 16,
                                              EncryptionAttributes=SYMMETRIC_CBC)["CipherText"]
        with pytest.raises(plane.data.exceptions.AccessDeniedException) as caught:
            plane.data.decrypt_data(KeyIdentifier=arn, CipherText=cipher_text,
                                    DecryptionAttributes=SYMMETRIC_CBC)
        assert "payment-cryptography:DecryptData" in caught.value.response["Error"]["Message"]
    finally:
        plane.emulator.stop()
    lines = [json.loads(line) for line in (tmp_path / "log").read_text().splitlines()]
    operations = [(line["operation"], line["status"]) for line in lines]
    assert ("EncryptData", 200) in operations
    assert ("DecryptData", 403) in operations


def test_rate_limits_are_per_plane() -> None:
    plane = start_data_plane(EmulatorConfig(rate_limit=100, data_rate_limit=2))
    try:
        arn = create_d0(plane)
        for _ in range(2):
            plane.data.encrypt_data(KeyIdentifier=arn, PlainText="00" * 16,
                                    EncryptionAttributes=SYMMETRIC_CBC)
        with pytest.raises(plane.data.exceptions.ThrottlingException,
                           match="2 symmetric data-plane requests per second"):
            plane.data.encrypt_data(KeyIdentifier=arn, PlainText="00" * 16,
                                    EncryptionAttributes=SYMMETRIC_CBC)
        plane.control.get_key(KeyIdentifier=arn)  # the control plane has its own bucket
    finally:
        plane.emulator.stop()


def test_faults_apply_to_data_plane_operations() -> None:
    plane = start_data_plane(EmulatorConfig(faults=(FaultSpec("EncryptData", "error", 1),)))
    try:
        arn = create_d0(plane)
        with pytest.raises(plane.data.exceptions.InternalServerException):
            plane.data.encrypt_data(KeyIdentifier=arn, PlainText="00" * 16,
                                    EncryptionAttributes=SYMMETRIC_CBC)
        plane.data.encrypt_data(KeyIdentifier=arn, PlainText="00" * 16,
                                EncryptionAttributes=SYMMETRIC_CBC)
    finally:
        plane.emulator.stop()


def test_answers_satisfy_the_data_models_output_shapes(data_plane: DataPlane) -> None:
    """One call of every implemented operation; each answer checked against its output shape
    (required members, patterns, lengths) with the server's own validator."""
    from apckx.emulator.data import IMPLEMENTED_OPERATIONS
    from apckx.emulator.validation import check_value

    d0 = create_d0(data_plane)
    cmac = data_plane.import_key(os.urandom(16), "TR31_M6_ISO_9797_5_CMAC_KEY", "AES_128", "C")
    cvk = data_plane.import_key(os.urandom(16), "TR31_C0_CARD_VERIFICATION_KEY", "TDES_2KEY",
                                "C")
    cipher_text = data_plane.data.encrypt_data(
        KeyIdentifier=d0, PlainText="00" * 16, EncryptionAttributes=SYMMETRIC_CBC)["CipherText"]
    mac = data_plane.data.generate_mac(KeyIdentifier=cmac, MessageData="00" * 9,
                                       GenerationAttributes={"Algorithm": "CMAC"})["Mac"]
    cvv2 = {"CardVerificationValue2": {"CardExpiryDate": "1230"}}
    cvv = data_plane.data.generate_card_validation_data(
        KeyIdentifier=cvk, PrimaryAccountNumber="4123456789012345",
        GenerationAttributes=cvv2)["ValidationData"]
    member = data_plane.ecdh_block(os.urandom(16), "TR31_P0_PIN_ENCRYPTION_KEY", "AES_128")
    calls: dict[str, Any] = {
        "EncryptData": lambda: data_plane.data.encrypt_data(
            KeyIdentifier=d0, PlainText="00" * 16, EncryptionAttributes=SYMMETRIC_CBC),
        "DecryptData": lambda: data_plane.data.decrypt_data(
            KeyIdentifier=d0, CipherText=cipher_text, DecryptionAttributes=SYMMETRIC_CBC),
        "ReEncryptData": lambda: data_plane.data.re_encrypt_data(
            IncomingKeyIdentifier=d0, OutgoingKeyIdentifier=d0, CipherText=cipher_text,
            IncomingEncryptionAttributes=SYMMETRIC_CBC,
            OutgoingEncryptionAttributes=SYMMETRIC_CBC),
        "GenerateMac": lambda: data_plane.data.generate_mac(
            KeyIdentifier=cmac, MessageData="00" * 9, GenerationAttributes={"Algorithm": "CMAC"}),
        "VerifyMac": lambda: data_plane.data.verify_mac(
            KeyIdentifier=cmac, MessageData="00" * 9, Mac=mac,
            VerificationAttributes={"Algorithm": "CMAC"}),
        "GenerateCardValidationData": lambda: data_plane.data.generate_card_validation_data(
            KeyIdentifier=cvk, PrimaryAccountNumber="4123456789012345",
            GenerationAttributes=cvv2),
        "VerifyCardValidationData": lambda: data_plane.data.verify_card_validation_data(
            KeyIdentifier=cvk, PrimaryAccountNumber="4123456789012345", ValidationData=cvv,
            VerificationAttributes=cvv2),
        "TranslateKeyMaterial": lambda: data_plane.data.translate_key_material(
            IncomingKeyMaterial={"DiffieHellmanTr31KeyBlock": member},
            OutgoingKeyMaterial={"Tr31KeyBlock": {"WrappingKeyIdentifier":
                                                  data_plane.ensure_kek()}}),
    }
    model = data_service_model()
    for operation in sorted(IMPLEMENTED_OPERATIONS & set(calls)):
        answer = calls[operation]()
        answer.pop("ResponseMetadata")
        shape = model.operation_model(operation).output_shape
        assert check_value(shape, answer, "") == [], operation
