"""PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy: in-process through dispatch,
then over real HTTP through boto3 (the AWS CLI run is in test_awscli.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from apckx.emulator.control.account import BackendRegistry
from apckx.emulator.exceptions import (
    PublicPolicyException,
    ResourceNotFoundException,
    ValidationException,
)
from apckx.emulator.pytest_plugin import EmulatorFixture

from .conftest import MODES_WRAP, Call, FakeClock, RecordingStore

CreateKey = Callable[..., dict[str, Any]]
PARTNER = "arn:aws:iam::444455556666:root"


def policy(*statements: dict[str, Any], **document: Any) -> str:
    return json.dumps({"Version": "2012-10-17", **document, "Statement": list(statements)})


def allow(principal: Any = None, **extra: Any) -> dict[str, Any]:
    statement = {"Sid": "Partner", "Effect": "Allow",
                 "Principal": {"AWS": PARTNER} if principal is None else principal,
                 "Action": ["payment-cryptography:EncryptData",
                            "payment-cryptography:GetKey"],
                 "Resource": "*"}  # fmt: skip
    statement.update(extra)
    return statement


def test_put_get_replace_delete(create_key: CreateKey, call: Call) -> None:
    arn = create_key()["KeyArn"]
    first = policy(allow())
    assert call("PutResourcePolicy", ResourceArn=arn, Policy=first) == {
        "ResourceArn": arn, "Policy": first}  # fmt: skip
    assert call("GetResourcePolicy", ResourceArn=arn)["Policy"] == first  # verbatim
    second = policy(allow(Resource=arn, Action="payment-cryptography:*"))
    call("PutResourcePolicy", ResourceArn=arn, Policy=second)  # one per key: replaced
    assert call("GetResourcePolicy", ResourceArn=arn)["Policy"] == second
    assert call("DeleteResourcePolicy", ResourceArn=arn) == {}
    with pytest.raises(ResourceNotFoundException, match="has no resource-based policy"):
        call("GetResourcePolicy", ResourceArn=arn)
    with pytest.raises(ResourceNotFoundException, match="has no resource-based policy"):
        call("DeleteResourcePolicy", ResourceArn=arn)


def test_a_policy_belongs_to_one_key_of_this_account(create_key: CreateKey, call: Call) -> None:
    one, other = create_key()["KeyArn"], create_key()["KeyArn"]
    call("PutResourcePolicy", ResourceArn=one, Policy=policy(allow()))
    with pytest.raises(ResourceNotFoundException):
        call("GetResourcePolicy", ResourceArn=other)
    with pytest.raises(ValidationException, match="must be '\\*' or the key's ARN"):
        call("PutResourcePolicy", ResourceArn=other, Policy=policy(allow(Resource=one)))
    foreign = one.replace("111122223333", "999988887777")  # cross-account: not found
    with pytest.raises(ResourceNotFoundException):
        call("PutResourcePolicy", ResourceArn=foreign, Policy=policy(allow()))
    missing = one[: -len(one.rsplit("/", 1)[1])] + "A" * 16
    with pytest.raises(ResourceNotFoundException):
        call("GetResourcePolicy", ResourceArn=missing)


@pytest.mark.parametrize("statement", [
    allow("*"),
    allow({"AWS": "*"}),
    allow({"AWS": [PARTNER, "*"]}),
    {k: v for k, v in allow(NotPrincipal={"AWS": PARTNER}).items() if k != "Principal"},
    allow("*", Condition={"StringLike": {"aws:PrincipalOrgID": "o-*"}}),
    allow("*", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-*"}}),
    allow("*", Condition={"ForAllValues:StringEquals": {"aws:PrincipalOrgID": "o-abc"}}),
    allow("*", Condition={"StringEquals": {"aws:RequestedRegion": "us-east-1"}}),
], ids=["star", "aws-star", "star-among-names", "not-principal", "like", "wildcard-value",
        "for-all-values", "unconfining-key"])  # fmt: skip
def test_a_public_policy_is_refused(create_key: CreateKey, call: Call,
                                    statement: dict[str, Any]) -> None:
    arn = create_key()["KeyArn"]
    with pytest.raises(PublicPolicyException, match="would grant public access"):
        call("PutResourcePolicy", ResourceArn=arn, Policy=policy(statement))
    with pytest.raises(ResourceNotFoundException):  # nothing was attached
        call("GetResourcePolicy", ResourceArn=arn)


@pytest.mark.parametrize("statement", [
    allow("*", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}),
    allow({"AWS": "*"}, Condition={"StringEquals": {"aws:PrincipalAccount": ["444455556666"]}}),
    allow({"AWS": [PARTNER, "arn:aws:iam::444455556666:role/Acquirer"]}),
    {**allow("*"), "Effect": "Deny"},  # denying everyone grants nothing
], ids=["org", "account", "named", "deny-all"])  # fmt: skip
def test_a_confined_policy_is_attached(create_key: CreateKey, call: Call,
                                       statement: dict[str, Any]) -> None:
    arn = create_key()["KeyArn"]
    call("PutResourcePolicy", ResourceArn=arn, Policy=policy(statement))
    assert json.loads(call("GetResourcePolicy", ResourceArn=arn)["Policy"])["Statement"] == [
        statement]


@pytest.mark.parametrize(("document", "message"), [
    ("{not json", "not a valid JSON document"),
    ("[]", "must be a JSON object"),
    (json.dumps({"Version": "2012-10-17"}), "must have a Statement"),
    (json.dumps({"Version": "2012-10-17", "Statement": []}), "must have a Statement"),
    (policy(allow(), Version="2020-01-01"), "Version '2020-01-01' is not supported"),
    (policy(allow(), Extra=1), "unknown element 'Extra'"),
    (policy(allow(Effect="Permit")), "Effect of Allow or Deny"),
    (policy(allow(Actions=["x"])), "unknown element 'Actions'"),
    (policy(allow(Action="kms:Decrypt")), "names action 'kms:Decrypt'"),
    (policy(allow(Action=[])), "Action must be a string or a list of strings"),
    (policy(allow(NotAction="payment-cryptography:DeleteKey")),
     "exactly one of Action and NotAction"),
    (policy({k: v for k, v in allow().items() if k != "Principal"}),
     "exactly one of Principal and NotPrincipal"),
    (policy(allow({"AWS": 3})), "principal AWS must be a string"),
    (policy(allow(["*"])), "a principal is '*' or an object"),
    (policy({k: v for k, v in allow().items() if k != "Resource"}),
     "exactly one of Resource and NotResource"),
    (policy(allow(Condition=["StringEquals"])), "Condition must map operators"),
])  # fmt: skip
def test_a_malformed_policy_is_refused(create_key: CreateKey, call: Call, document: str,
                                       message: str) -> None:
    arn = create_key()["KeyArn"]
    with pytest.raises(ValidationException, match=message.replace("*", "\\*")):
        call("PutResourcePolicy", ResourceArn=arn, Policy=document)


def test_the_policy_survives_a_restart(create_key: CreateKey, call: Call,
                                       store: RecordingStore, clock: FakeClock) -> None:
    arn = create_key()["KeyArn"]
    document = policy(allow())
    call("PutResourcePolicy", ResourceArn=arn, Policy=document)
    restarted = BackendRegistry(RecordingStore(store.load()), clock=clock)
    (backend,) = restarted.backends()
    (key,) = backend.keys.values()
    assert key.resource_policy == document


def test_the_policy_outlives_delete_pending_not_deletion(create_key: CreateKey, call: Call,
                                                        clock: FakeClock) -> None:
    arn = create_key()["KeyArn"]
    document = policy(allow())
    call("PutResourcePolicy", ResourceArn=arn, Policy=document)
    call("DeleteKey", KeyIdentifier=arn, DeleteKeyInDays=3)
    assert call("GetResourcePolicy", ResourceArn=arn)["Policy"] == document
    call("RestoreKey", KeyIdentifier=arn)
    assert call("GetResourcePolicy", ResourceArn=arn)["Policy"] == document
    call("DeleteKey", KeyIdentifier=arn, DeleteKeyInDays=3)
    clock.advance(3 * 86400 + 1)
    assert call("GetKey", KeyIdentifier=arn)["Key"]["KeyState"] == "DELETE_COMPLETE"
    with pytest.raises(ResourceNotFoundException):
        call("GetResourcePolicy", ResourceArn=arn)
    with pytest.raises(ValidationException, match="is deleted"):
        call("PutResourcePolicy", ResourceArn=arn, Policy=document)


def test_over_http_through_boto3(apc_emulator: EmulatorFixture) -> None:
    client = apc_emulator.client
    arn = client.create_key(Exportable=True, KeyAttributes={
        "KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY", "KeyClass": "SYMMETRIC_KEY",
        "KeyAlgorithm": "AES_256", "KeyModesOfUse": MODES_WRAP,
    })["Key"]["KeyArn"]  # fmt: skip
    document = policy(allow())
    put = client.put_resource_policy(ResourceArn=arn, Policy=document)
    assert (put["ResourceArn"], put["Policy"]) == (arn, document)
    assert client.get_resource_policy(ResourceArn=arn)["Policy"] == document
    with pytest.raises(client.exceptions.PublicPolicyException) as caught:
        client.put_resource_policy(ResourceArn=arn, Policy=policy(allow("*")))
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert client.get_resource_policy(ResourceArn=arn)["Policy"] == document  # kept
    client.delete_resource_policy(ResourceArn=arn)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_resource_policy(ResourceArn=arn)
    with pytest.raises(client.exceptions.ValidationException, match="less than or equal to 20480"):
        client.put_resource_policy(ResourceArn=arn, Policy="x" * 20481)  # the model's bound
