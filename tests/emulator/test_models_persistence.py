"""Write-through persistence: a second registry built from the store's records has all the
state back (keys with their material, aliases, tags, the account CA)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from apckx.crypto.certs import (
    certificate_from_apc,
    certificate_to_apc,
    new_ecdh_leaf,
    new_sender_ca,
)
from apckx.crypto.ecdh import derive_kbpk, new_shared_info
from apckx.crypto.tr31 import build_header, unwrap_key_block, wrap_key_block
from apckx.emulator.control.account import BackendRegistry
from apckx.emulator.responses import dispatch

from .conftest import ACCOUNT, REGION, Call, FakeClock, RecordingStore

CreateKey = Callable[..., dict[str, Any]]
K3 = "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT"


def snapshot(registry: BackendRegistry) -> dict[str, Any]:
    """Everything a backend holds, as plain data."""
    state: dict[str, Any] = {}
    for backend in registry.backends():
        state[f"{backend.account_id}/{backend.region}"] = {
            "keys": {key_id: key.to_record() for key_id, key in backend.keys.items()},
            "aliases": dict(backend.aliases),
            "account_ca": backend.account_ca.to_record() if backend.account_ca else None,
        }
    return state


def test_every_mutation_is_written_through(create_key: CreateKey, call: Call,
                                           store: RecordingStore) -> None:
    arn = create_key()["KeyArn"]
    key_id = arn.rsplit("/", 1)[1]
    assert store.puts[-1] == ("key", ACCOUNT, REGION, key_id)
    for operation, members in (
            ("StopKeyUsage", {"KeyIdentifier": arn}),
            ("StartKeyUsage", {"KeyIdentifier": arn}),
            ("TagResource", {"ResourceArn": arn, "Tags": [{"Key": "k", "Value": "v"}]}),
            ("UntagResource", {"ResourceArn": arn, "TagKeys": ["k"]}),
            ("DeleteKey", {"KeyIdentifier": arn}),
            ("RestoreKey", {"KeyIdentifier": arn})):
        before = len(store.puts)
        call(operation, **members)
        assert store.puts[before:] == [("key", ACCOUNT, REGION, key_id)], operation
    call("CreateAlias", AliasName="alias/a")
    assert store.puts[-1] == ("alias", ACCOUNT, REGION, "alias/a")
    call("DeleteAlias", AliasName="alias/a")
    assert store.deletes[-1] == ("alias", ACCOUNT, REGION, "alias/a")
    assert ("alias", ACCOUNT, REGION, "alias/a") not in store.records
    before = len(store.puts)
    call("GetKey", KeyIdentifier=arn)
    call("ListKeys")
    assert len(store.puts) == before  # reads write nothing


def test_records_are_json_and_restore_everything(create_key: CreateKey, call: Call,
                                                 registry: BackendRegistry,
                                                 store: RecordingStore,
                                                 clock: FakeClock) -> None:
    kek = create_key("TR31_K0_KEY_ENCRYPTION_KEY", "AES_256",
                     Tags=[{"Key": "team", "Value": "cards"}])
    k3 = create_key(K3, "ECC_NIST_P521", {"DeriveKey": True}, key_class="ASYMMETRIC_KEY_PAIR",
                    DeriveKeyUsage="TR31_K1_KEY_BLOCK_PROTECTION_KEY")
    pending = create_key("TR31_P0_PIN_ENCRYPTION_KEY", "TDES_3KEY")
    call("DeleteKey", KeyIdentifier=pending["KeyArn"])
    call("CreateAlias", AliasName="alias/kek", KeyArn=kek["KeyArn"])
    call("CreateAlias", AliasName="alias/empty")
    certificate = call("GetPublicKeyCertificate", KeyIdentifier=k3["KeyArn"])
    ca_key, ca_cert = new_sender_ca("P521")
    root = call("ImportKey", KeyMaterial={"RootCertificatePublicKey": {
        "KeyAttributes": {"KeyUsage": "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE",
                          "KeyClass": "PUBLIC_KEY", "KeyAlgorithm": "ECC_NIST_P521",
                          "KeyModesOfUse": {"Verify": True}},
        "PublicKeyCertificate": certificate_to_apc(ca_cert)}})["Key"]
    dispatch(registry, "CreateAlias", {"AliasName": "alias/elsewhere"},
             account_id="444455556666", region="eu-west-1")

    for record in store.records.values():
        assert json.loads(json.dumps(record)) == record  # JSON-able as the SqliteStore needs

    restored = BackendRegistry(RecordingStore(store.load()), clock=clock)
    assert snapshot(restored) == snapshot(registry)

    def again(operation: str, **members: Any) -> dict[str, Any]:
        return dispatch(restored, operation, members, account_id=ACCOUNT, region=REGION)

    assert again("GetKey", KeyIdentifier="alias/kek")["Key"] == kek
    assert again("GetKey", KeyIdentifier=pending["KeyArn"])["Key"]["KeyState"] == \
        "DELETE_PENDING"
    assert again("ListTagsForResource", ResourceArn=kek["KeyArn"])["Tags"] == [
        {"Key": "team", "Value": "cards"}]
    assert again("GetAlias", AliasName="alias/empty")["Alias"] == {"AliasName": "alias/empty"}
    assert again("GetPublicKeyCertificate", KeyIdentifier=k3["KeyArn"]) == certificate
    elsewhere = dispatch(restored, "ListAliases", {}, account_id="444455556666",
                         region="eu-west-1")
    assert elsewhere["Aliases"] == [{"AliasName": "alias/elsewhere"}]

    # The restored key material and key pair still work: an ECDH import lands under the
    # restored K3 key, and the KEK exports the imported key again.
    leaf_key, leaf_cert = new_ecdh_leaf(ca_key, ca_cert, "P521")
    apc_public_key = certificate_from_apc(certificate["KeyCertificate"]).public_key()
    shared_info = new_shared_info()
    kbpk = derive_kbpk(leaf_key, apc_public_key, hash_algorithm="SHA_512",  # type: ignore[arg-type]
                       key_algorithm="AES_256", shared_info=shared_info)
    key = bytes(range(1, 33))
    block = wrap_key_block(kbpk, build_header(
        key_usage="TR31_K0_KEY_ENCRYPTION_KEY", key_algorithm="AES_256",
        kbpk_algorithm="AES_256"), key)
    imported = again("ImportKey", KeyMaterial={"DiffieHellmanTr31KeyBlock": {
        "PrivateKeyIdentifier": k3["KeyArn"],
        "CertificateAuthorityPublicKeyIdentifier": root["KeyArn"],
        "PublicKeyCertificate": certificate_to_apc(leaf_cert), "DeriveKeyAlgorithm": "AES_256",
        "KeyDerivationFunction": "NIST_SP800", "KeyDerivationHashAlgorithm": "SHA_512",
        "DerivationData": {"SharedInformation": shared_info.hex()},
        "WrappedKeyBlock": block}})["Key"]
    wrapped = again("ExportKey", ExportKeyIdentifier=imported["KeyArn"], KeyMaterial={
        "Tr31KeyBlock": {"WrappingKeyIdentifier": "alias/kek"}})["WrappedKey"]
    assert wrapped["KeyCheckValue"] == imported["KeyCheckValue"]
    original_kek = registry.backend(ACCOUNT, REGION).resolve_key(kek["KeyArn"]).secret()
    assert unwrap_key_block(original_kek, wrapped["KeyMaterial"])[1] == key


def test_completed_deletion_is_persisted(create_key: CreateKey, call: Call,
                                         store: RecordingStore, clock: FakeClock) -> None:
    arn = create_key()["KeyArn"]
    call("CreateAlias", AliasName="alias/gone", KeyArn=arn)
    call("DeleteKey", KeyIdentifier=arn, DeleteKeyInDays=3)
    clock.advance(4 * 86400)
    call("ListKeys")
    key_record = store.records[("key", ACCOUNT, REGION, arn.rsplit("/", 1)[1])]
    assert key_record["key_state"] == "DELETE_COMPLETE"
    assert key_record["secret_hex"] is None
    assert store.records[("alias", ACCOUNT, REGION, "alias/gone")]["KeyArn"] is None
