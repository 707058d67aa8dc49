"""EncryptData, DecryptData, ReEncryptData over HTTP through boto3: published vectors byte for
byte (the key imported as a TR-31 block under a KEK), dynamic keys, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from apckx.crypto import certs, cipher, ecdh, emv, kcv

from .conftest import DataPlane

D0 = "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY"
VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "vectors" / "cipher_sp800_38a.json").read_text())
# APC takes whole blocks in every mode: the CFB1/CFB8 vectors (2 and 18 bytes) are not.
ALIGNED = [e for e in VECTORS if len(e["plaintext"]) % 32 == 0]


def symmetric(mode: str, iv: str | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {"Mode": mode}
    if iv is not None:
        values["InitializationVector"] = iv
    return {"Symmetric": values}


@pytest.mark.parametrize("entry", ALIGNED, ids=[e["id"] for e in ALIGNED])
def test_sp800_38a_vectors_through_the_emulator(data_plane: DataPlane,
                                                entry: dict[str, Any]) -> None:
    key = bytes.fromhex(entry["key"])
    arn = data_plane.import_key(key, D0, "AES_128", "B")
    attributes = symmetric(entry["mode"], entry["iv"])
    encrypted = data_plane.data.encrypt_data(KeyIdentifier=arn, PlainText=entry["plaintext"],
                                             EncryptionAttributes=attributes)
    assert encrypted["CipherText"] == entry["ciphertext"]
    assert encrypted["KeyCheckValue"] == kcv.compute_kcv(key, "CMAC")
    decrypted = data_plane.data.decrypt_data(KeyIdentifier=arn, CipherText=entry["ciphertext"],
                                             DecryptionAttributes=attributes)
    assert decrypted["PlainText"] == entry["plaintext"]


@pytest.mark.parametrize(("algorithm", "length", "mode"), [
    ("TDES_2KEY", 16, "CBC"), ("TDES_3KEY", 24, "CFB1"), ("TDES_2KEY", 16, "CFB8"),
    ("TDES_2KEY", 16, "CFB64"), ("TDES_3KEY", 24, "OFB"), ("AES_256", 32, "CFB128"),
    ("AES_192", 24, "CFB"), ("AES_128", 16, "CFB64"),
])
def test_every_mode_matches_a_local_computation(data_plane: DataPlane, algorithm: str,
                                                length: int, mode: str) -> None:
    key = os.urandom(length)
    arn = data_plane.import_key(key, D0, algorithm, "B")
    family = "TDES" if algorithm.startswith("TDES") else "AES"
    iv = os.urandom(cipher.block_size(family))
    data = os.urandom(4 * cipher.block_size(family))
    answer = data_plane.data.encrypt_data(
        KeyIdentifier=arn, PlainText=data.hex(), EncryptionAttributes=symmetric(mode, iv.hex()))
    assert answer["CipherText"] == cipher.encrypt_symmetric(key, family, mode, data, iv).hex(
    ).upper()


def test_dynamic_tr31_key_under_the_kek(data_plane: DataPlane) -> None:
    working = os.urandom(16)
    block = data_plane.wrap(working, D0, "AES_128", "B")
    kek_arn = data_plane.ensure_kek()
    answer = data_plane.data.encrypt_data(
        KeyIdentifier=kek_arn, PlainText="00" * 16, EncryptionAttributes=symmetric("ECB"),
        WrappedKey={"WrappedKeyMaterial": {"Tr31KeyBlock": block}})
    assert answer["KeyArn"] == kek_arn
    assert answer["KeyCheckValue"] == kcv.compute_kcv(working, "CMAC")
    assert answer["CipherText"] == cipher.encrypt_symmetric(
        working, "AES", "ECB", bytes(16)).hex().upper()
    mac_block = data_plane.wrap(os.urandom(16), "TR31_M6_ISO_9797_5_CMAC_KEY", "AES_128", "C")
    with pytest.raises(data_plane.data.exceptions.ValidationException, match="KeyUsage"):
        data_plane.data.encrypt_data(
            KeyIdentifier=kek_arn, PlainText="00" * 16, EncryptionAttributes=symmetric("ECB"),
            WrappedKey={"WrappedKeyMaterial": {"Tr31KeyBlock": mac_block}})
    tampered = block[:-4] + ("0000" if block[-4:] != "0000" else "1111")
    with pytest.raises(data_plane.data.exceptions.ValidationException,
                       match="integrity check"):
        data_plane.data.encrypt_data(
            KeyIdentifier=kek_arn, PlainText="00" * 16, EncryptionAttributes=symmetric("ECB"),
            WrappedKey={"WrappedKeyMaterial": {"Tr31KeyBlock": tampered}})


def test_re_encrypt_moves_ciphertext_between_keys(data_plane: DataPlane) -> None:
    incoming_key, outgoing_key = os.urandom(16), os.urandom(24)
    incoming = data_plane.import_key(incoming_key, D0, "AES_128", "B")
    outgoing = data_plane.import_key(outgoing_key, D0, "TDES_3KEY", "B")
    data = os.urandom(32)
    ciphertext = cipher.encrypt_symmetric(incoming_key, "AES", "CBC", data)
    answer = data_plane.data.re_encrypt_data(
        IncomingKeyIdentifier=incoming, OutgoingKeyIdentifier=outgoing,
        CipherText=ciphertext.hex(), IncomingEncryptionAttributes=symmetric("CBC"),
        OutgoingEncryptionAttributes=symmetric("ECB"))
    assert answer["KeyArn"] == outgoing
    assert answer["KeyCheckValue"] == kcv.compute_kcv(outgoing_key, "ANSI_X9_24")
    assert bytes.fromhex(answer["CipherText"]) == cipher.encrypt_symmetric(
        outgoing_key, "TDES", "ECB", data)
    unrestricted = data_plane.import_key(os.urandom(16), D0, "AES_128", "N")
    with pytest.raises(data_plane.data.exceptions.ValidationException,
                       match="KeyUsages not allowed"):
        data_plane.data.re_encrypt_data(
            IncomingKeyIdentifier=incoming, OutgoingKeyIdentifier=unrestricted,
            CipherText=ciphertext.hex(), IncomingEncryptionAttributes=symmetric("CBC"),
            OutgoingEncryptionAttributes=symmetric("ECB"))


@pytest.mark.parametrize(("attributes", "plaintext", "message"), [
    (symmetric("CFB8"), "00" * 17, "multiple of 16 bytes"),
    ({"Symmetric": {"Mode": "CBC", "PaddingType": "PKCS1"}}, "00" * 16,
     "PaddingType applies to RSA"),
    (symmetric("ECB", "00" * 16), "00" * 16, "ECB takes no InitializationVector"),
    (symmetric("CBC", "00" * 8), "00" * 16, "initialization vector is 16 bytes"),
    ({"Asymmetric": {"PaddingType": "OAEP_SHA256"}}, "00" * 16, "KeyUsage"),
])
def test_refusals(data_plane: DataPlane, attributes: dict[str, Any], plaintext: str,
                  message: str) -> None:
    arn = data_plane.import_key(os.urandom(16), D0, "AES_128", "B")
    with pytest.raises(data_plane.data.exceptions.ValidationException, match=message):
        data_plane.data.encrypt_data(KeyIdentifier=arn, PlainText=plaintext,
                                     EncryptionAttributes=attributes)


@pytest.mark.parametrize(("derivation", "pan", "mode"), [
    ("EMV_OPTION_A", "5413339000001513", "CBC"),
    ("EMV_OPTION_B", "541333900000151300", "ECB"),
])
def test_emv_encryption_uses_the_card_session_key(data_plane: DataPlane, derivation: str,
                                                  pan: str, mode: str) -> None:
    imk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    arn = data_plane.import_key(imk, "TR31_E1_EMV_MKEY_CONFIDENTIALITY", "TDES_2KEY", "X")
    session_data = "000B000000000000"
    attributes = {"Emv": {"MajorKeyDerivationMode": derivation, "PrimaryAccountNumber": pan,
                          "PanSequenceNumber": "01", "SessionDerivationData": session_data,
                          "Mode": mode}}
    data = os.urandom(16)
    answer = data_plane.data.encrypt_data(KeyIdentifier=arn, PlainText=data.hex(),
                                          EncryptionAttributes=attributes)
    icc = emv.derive_icc_master_key(imk, pan, "01", mode=derivation)
    session_key = emv.derive_session_key(icc, "EMV_COMMON_SESSION_KEY",
                                         application_cryptogram=bytes.fromhex(session_data))
    assert bytes.fromhex(answer["CipherText"]) == cipher.encrypt_symmetric(
        session_key, "TDES", mode, data)
    assert answer["KeyCheckValue"] == "08D7B4"
    back = data_plane.data.decrypt_data(KeyIdentifier=arn, CipherText=answer["CipherText"],
                                        DecryptionAttributes=attributes)
    assert back["PlainText"] == data.hex().upper()
    with pytest.raises(data_plane.data.exceptions.ValidationException, match="KeyUsage"):
        d0 = data_plane.import_key(imk, D0, "TDES_2KEY", "B")
        data_plane.data.encrypt_data(KeyIdentifier=d0, PlainText=data.hex(),
                                     EncryptionAttributes=attributes)


def test_ecdh_derived_key(data_plane: DataPlane) -> None:
    party = data_plane.ensure_ecdh()  # its K3 key has DeriveKeyUsage K1
    k3 = data_plane.control.create_key(
        KeyAttributes={"KeyUsage": "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT",
                       "KeyClass": "ASYMMETRIC_KEY_PAIR", "KeyAlgorithm": "ECC_NIST_P521",
                       "KeyModesOfUse": {"DeriveKey": True}},
        Exportable=True, DeriveKeyUsage=D0)["Key"]["KeyArn"]
    apc_public_key = certs.certificate_from_apc(data_plane.control.get_public_key_certificate(
        KeyIdentifier=k3)["KeyCertificate"]).public_key()
    shared_info = ecdh.new_shared_info()
    derivation = {
        "CertificateAuthorityPublicKeyIdentifier": party["root"],
        "PublicKeyCertificate": certs.certificate_to_apc(party["leaf_cert"]),
        "KeyAlgorithm": "AES_256", "KeyDerivationFunction": "NIST_SP800",
        "KeyDerivationHashAlgorithm": "SHA_512", "SharedInformation": shared_info.hex()}
    wrapped = {"WrappedKeyMaterial": {"DiffieHellmanSymmetricKey": derivation}}
    data = os.urandom(32)
    answer = data_plane.data.encrypt_data(
        KeyIdentifier=k3, PlainText=data.hex(), EncryptionAttributes=symmetric("CBC"),
        WrappedKey=wrapped)
    key = ecdh.derive_kbpk(party["leaf_key"], apc_public_key, kdf="NIST_SP800",
                           hash_algorithm="SHA_512", key_algorithm="AES_256",
                           shared_info=shared_info)
    assert answer["KeyArn"] == k3
    assert answer["KeyCheckValue"] == kcv.compute_kcv(key, "CMAC")
    assert bytes.fromhex(answer["CipherText"]) == cipher.encrypt_symmetric(key, "AES", "CBC",
                                                                          data)
    back = data_plane.data.decrypt_data(KeyIdentifier=k3, CipherText=answer["CipherText"],
                                        DecryptionAttributes=symmetric("CBC"),
                                        WrappedKey=wrapped)
    assert back["PlainText"] == data.hex().upper()
    with pytest.raises(data_plane.data.exceptions.ValidationException,
                       match="DeriveKeyUsage TR31_K1"):
        data_plane.data.encrypt_data(
            KeyIdentifier=party["k3"], PlainText=data.hex(),
            EncryptionAttributes=symmetric("CBC"), WrappedKey=wrapped)
    zero = {"WrappedKeyMaterial": {"DiffieHellmanSymmetricKey": dict(
        derivation, SharedInformation="00" + shared_info.hex()[2:])}}
    with pytest.raises(data_plane.data.exceptions.ValidationException, match="zero bytes"):
        data_plane.data.encrypt_data(KeyIdentifier=k3, PlainText=data.hex(),
                                     EncryptionAttributes=symmetric("CBC"), WrappedKey=zero)
