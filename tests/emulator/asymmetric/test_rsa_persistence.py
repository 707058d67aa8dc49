"""Tokens, the RSA account CA and RSA key pairs survive a restart of the SQLite-backed
emulator, sealed at rest: no private key appears in the state file in clear."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from apckx.crypto import certs, kcv, rsa_wrap
from apckx.emulator.control.account import BackendRegistry
from apckx.emulator.responses import dispatch
from apckx.emulator.state import SqliteStore

ACCOUNT, REGION = "111122223333", "us-east-1"


def run(registry: BackendRegistry, operation: str, **body: Any) -> dict[str, Any]:
    return dispatch(registry, operation, body, account_id=ACCOUNT, region=REGION)


def test_tokens_and_rsa_keys_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    registry = BackendRegistry(store)
    params = run(registry, "GetParametersForImport", KeyMaterialType="KEY_CRYPTOGRAM",
                 WrappingKeyAlgorithm="RSA_2048")
    pair = run(registry, "CreateKey", Exportable=False, KeyAttributes={
        "KeyAlgorithm": "RSA_2048", "KeyClass": "ASYMMETRIC_KEY_PAIR",
        "KeyModesOfUse": {"Sign": True},
        "KeyUsage": "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE"})["Key"]
    certificate = run(registry, "GetPublicKeyCertificate", KeyIdentifier=pair["KeyArn"])
    held = [record["private_key_pem"].splitlines()[2]
            for records in registry.backend(ACCOUNT, REGION).records.values()
            for record in records.values()]
    key_pem = registry.backend(ACCOUNT, REGION).keys[pair["KeyArn"].rsplit("/", 1)[1]]
    assert key_pem.private_key_pem is not None
    held.append(key_pem.private_key_pem.splitlines()[2])
    assert len(held) == 3  # the RSA CA, the token, the key pair
    store.close()

    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    for line in held:
        assert line.encode() not in raw

    reopened = SqliteStore(path)
    try:
        restarted = BackendRegistry(reopened)
        again = run(restarted, "GetPublicKeyCertificate", KeyIdentifier=pair["KeyArn"])
        assert again["KeyCertificateChain"] == certificate["KeyCertificateChain"]  # same CA
        public_key = certs.certificate_from_apc(params["WrappingKeyCertificate"]).public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)
        key = os.urandom(16)
        imported = run(restarted, "ImportKey", KeyMaterial={"KeyCryptogram": {
            "Exportable": True, "ImportToken": params["ImportToken"],
            "KeyAttributes": {"KeyAlgorithm": "TDES_2KEY", "KeyClass": "SYMMETRIC_KEY",
                              "KeyModesOfUse": {"DeriveKey": True},
                              "KeyUsage": "TR31_B0_BASE_DERIVATION_KEY"},
            "WrappedKeyCryptogram": rsa_wrap.cryptogram_to_hex(
                rsa_wrap.wrap_key(key, public_key))}})["Key"]
        assert imported["KeyCheckValue"] == kcv.compute_kcv(key, "ANSI_X9_24")
    finally:
        reopened.close()
    # The spent mark was persisted too.
    third = SqliteStore(path)
    try:
        tokens = BackendRegistry(third).backend(ACCOUNT, REGION).records["import_token"]
        assert tokens[params["ImportToken"]]["used"] is True
    finally:
        third.close()
