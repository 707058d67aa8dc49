"""RSA EncryptData/DecryptData (D1 keys) over HTTP through boto3.

Most cases put a D1 key pair whose private key the test holds into the emulator's state the
way CreateKey stores one (a KeyRecord with its PKCS#8 private key), so the ciphertext can be
checked locally; ``test_created_key_pair`` uses CreateKey and GetPublicKeyCertificate.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from apckx.crypto import certs, cipher
from apckx.emulator.control.records import KeyRecord

from .conftest import DataPlane, start_data_plane

D1 = "TR31_D1_ASYMMETRIC_KEY_FOR_DATA_ENCRYPTION"


@pytest.fixture(scope="module")
def plane() -> Iterator[DataPlane]:
    running = start_data_plane()
    try:
        yield running
    finally:
        running.emulator.stop()


def put_rsa_key_pair(plane: DataPlane, private_key: rsa.RSAPrivateKey,
                     modes: dict[str, bool]) -> str:
    account = plane.emulator.registry.backend("111122223333", "us-east-1")
    pem = private_key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    with account.lock:
        record = KeyRecord(
            key_id=account.new_key_id(), account_id=account.account_id, region=account.region,
            key_usage=D1, key_class="ASYMMETRIC_KEY_PAIR",
            key_algorithm=f"RSA_{private_key.key_size}", modes=modes, key_check_value="0A1B2C3D",
            key_check_value_algorithm="SHA_1", enabled=True, exportable=False,
            key_origin="AWS_PAYMENT_CRYPTOGRAPHY", create_timestamp=time.time(),
            private_key_pem=pem)
        account.add_key(record)
    return record.arn


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize("padding", ["PKCS1", "OAEP_SHA1", "OAEP_SHA256", "OAEP_SHA512", None])
def test_rsa_round_trip_and_local_decryption(plane: DataPlane, rsa_key: rsa.RSAPrivateKey,
                                             padding: str | None) -> None:
    arn = put_rsa_key_pair(plane, rsa_key, {"Encrypt": True, "Decrypt": True})
    data = (b"\x00" + os.urandom(255)) if padding is None else os.urandom(100)
    attributes = {"Asymmetric": {"PaddingType": padding} if padding else {}}
    answer = plane.data.encrypt_data(KeyIdentifier=arn, PlainText=data.hex(),
                                     EncryptionAttributes=attributes)
    assert answer["KeyArn"] == arn and answer["KeyCheckValue"] == "0A1B2C3D"
    ciphertext = bytes.fromhex(answer["CipherText"])
    assert cipher.decrypt_rsa(rsa_key, ciphertext, padding) == data  # locally, our key
    back = plane.data.decrypt_data(KeyIdentifier=arn, CipherText=answer["CipherText"],
                                   DecryptionAttributes=attributes)
    assert back["PlainText"] == data.hex().upper()


def test_rsa_refusals(plane: DataPlane, rsa_key: rsa.RSAPrivateKey) -> None:
    encrypt_only = put_rsa_key_pair(plane, rsa_key, {"Encrypt": True})
    errors = plane.data.exceptions
    oaep = {"Asymmetric": {"PaddingType": "OAEP_SHA256"}}
    with pytest.raises(errors.ValidationException, match="at most 190 bytes"):
        plane.data.encrypt_data(KeyIdentifier=encrypt_only, PlainText="00" * 191,
                                EncryptionAttributes=oaep)
    ciphertext = plane.data.encrypt_data(KeyIdentifier=encrypt_only, PlainText="00" * 16,
                                         EncryptionAttributes=oaep)["CipherText"]
    with pytest.raises(errors.ValidationException, match="must include Decrypt"):
        plane.data.decrypt_data(KeyIdentifier=encrypt_only, CipherText=ciphertext,
                                DecryptionAttributes=oaep)
    both = put_rsa_key_pair(plane, rsa_key, {"Encrypt": True, "Decrypt": True})
    with pytest.raises(errors.ValidationException, match="RSA decryption failed"):
        plane.data.decrypt_data(KeyIdentifier=both, CipherText=ciphertext,
                                DecryptionAttributes={"Asymmetric": {"PaddingType": "OAEP_SHA1"}})
    with pytest.raises(errors.ValidationException, match="Symmetric attributes only"):
        plane.data.encrypt_data(
            KeyIdentifier=both, PlainText="00" * 16, EncryptionAttributes=oaep,
            WrappedKey={"WrappedKeyMaterial": {"Tr31KeyBlock": "D" * 80}})


def test_created_key_pair(plane: DataPlane) -> None:
    arn = plane.control.create_key(
        KeyAttributes={"KeyUsage": D1, "KeyClass": "ASYMMETRIC_KEY_PAIR",
                       "KeyAlgorithm": "RSA_3072", "KeyModesOfUse": {
                           "Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}},
        Exportable=False)["Key"]["KeyArn"]
    public_key = certs.certificate_from_apc(plane.control.get_public_key_certificate(
        KeyIdentifier=arn)["KeyCertificate"]).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    data = os.urandom(64)
    oaep = {"Asymmetric": {"PaddingType": "OAEP_SHA256"}}
    local = cipher.encrypt_rsa(public_key, data, "OAEP_SHA256")  # with the certificate's key
    back = plane.data.decrypt_data(KeyIdentifier=arn, CipherText=local.hex(),
                                   DecryptionAttributes=oaep)
    assert back["PlainText"] == data.hex().upper()
    answer = plane.data.encrypt_data(KeyIdentifier=arn, PlainText=data.hex(),
                                     EncryptionAttributes=oaep)
    assert len(answer["CipherText"]) == 2 * 384
    assert plane.data.decrypt_data(KeyIdentifier=arn, CipherText=answer["CipherText"],
                                   DecryptionAttributes=oaep)["PlainText"] == data.hex().upper()
