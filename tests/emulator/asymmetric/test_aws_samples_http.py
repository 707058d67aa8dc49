"""AWS's public sample clients for TR-34 import/export and RSA import/export, re-expressed.

aws-samples/samples-for-payment-cryptography-service: key-import-export/tr34/import_app/
import_raw_key_tr34.py, tr34/export-app/export_raw_key_from_apc.py, rsa/import_app/
import_raw_key_rsa.py and rsa/export_app/export_raw_key_from_apc_with_rsa_wrap.py. Each
test sends the same calls with the same members, builds the TR-34 block with a hand-made
TLV encoder as the import sample does (nothing from apckx.crypto.tr34), and parses answers
as strictly as the samples: the export sample's walker requires an exact element count and
tag at every level. The certificates have the samples' profiles (a self-signed RSA CA with
every KeyUsage bit, a leaf with no extensions, fixed serials 100 and 200).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID

from apckx.crypto import kcv

OID = {
    "mgf1": "2A864886F70D010108",
    "sha256": "608648016503040201",
    "des-ede3-cbc": "2A864886F70D0307",
    "aes128-cbc": "608648016503040102",
    "data": "2A864886F70D010701",
    "rsaes-oaep": "2A864886F70D010107",
    "p-specified": "2A864886F70D010109",
    "content-type": "2A864886F70D010903",
    "message-digest": "2A864886F70D010904",
    "rsa-encryption": "2A864886F70D010101",
    "signed-data": "2A864886F70D010702",
    "enveloped-data": "2A864886F70D010703",
    "random-nonce": "2A864886F70D01091903",
}
Node = tuple[int, bool, Any]  # (tag, constructed, bytes | list of nodes)


def oid(name: str) -> Node:
    return (0x06, False, bytes.fromhex(OID[name]))


def encode(nodes: list[Node]) -> bytes:
    out = b""
    for tag, constructed, value in nodes:
        body = encode(value) if constructed else value
        size = len(body)
        length = (
            bytes([size])
            if size < 0x80
            else (
                bytes([0x80 | ((size.bit_length() + 7) // 8)])
                + size.to_bytes((size.bit_length() + 7) // 8, "big")
            )
        )
        out += bytes([tag]) + length + body
    return out


def decode(data: bytes) -> list[Node]:
    nodes: list[Node] = []
    at = 0
    while at < len(data):
        tag, first = data[at], data[at + 1]
        if first & 0x80:
            count = first & 0x7F
            size, start = int.from_bytes(data[at + 2 : at + 2 + count], "big"), at + 2 + count
        else:
            size, start = first, at + 2
        assert start + size <= len(data), "element runs past its parent"
        body = data[start : start + size]
        constructed = bool(tag & 0x20)
        nodes.append((tag, constructed, decode(body) if constructed else body))
        at = start + size
    return nodes


def first_element(data: bytes) -> bytes:
    """The first TLV of ``data`` (tag, length and value), as the sample cuts the padding."""
    if data[1] & 0x80:
        count = data[1] & 0x7F
        return data[: 2 + count + int.from_bytes(data[2 : 2 + count], "big")]
    return data[: 2 + data[1]]


def walk(nodes: list[Node], template: list[Any], found: dict[str, Any]) -> None:
    """The export sample's strict walk: same count, tags and fixed values at every level."""
    assert len(nodes) == len(template), f"{len(nodes)} elements where {len(template)} expected"
    for node, expected in zip(nodes, template, strict=True):
        if isinstance(expected, str):
            found[expected] = node
            continue
        tag, constructed, value = expected
        assert (node[0], node[1]) == (tag, constructed), (hex(node[0]), hex(tag))
        if isinstance(value, str):
            found[value] = node[2]
        elif constructed:
            walk(node[2], value, found)
        else:
            assert node[2] == value


def sample_ca_and_leaf(
    ca_bits: int, leaf_bits: int
) -> tuple[rsa.RSAPrivateKey, x509.Certificate, rsa.RSAPrivateKey, x509.Certificate]:
    today = dt.datetime.now(dt.UTC)
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Desktop HSM CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "The Organization"),
        ]
    )
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=ca_bits)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .not_valid_before(today - dt.timedelta(days=1))
        .not_valid_after(today + dt.timedelta(days=90))
        .serial_number(100)
        .public_key(ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(
            x509.KeyUsage(True, True, True, True, True, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=leaf_bits)
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "Desktop HSM"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "The Organization"),
                ]
            )
        )
        .issuer_name(ca_name)
        .not_valid_before(today - dt.timedelta(days=1))
        .not_valid_after(today + dt.timedelta(days=30))
        .serial_number(200)
        .public_key(leaf_key.public_key())
        .sign(ca_key, hashes.SHA256())
    )
    return ca_key, ca_cert, leaf_key, leaf_cert


def b64_pem(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode("UTF-8")


def credential_id(cert: x509.Certificate) -> Node:
    tbs = decode(cert.public_bytes(serialization.Encoding.DER))[0][2][0][2]
    return (0x30, True, [tbs[3], tbs[1]])  # issuer, serialNumber


def import_sample_root(client: Any, cert: x509.Certificate, algorithm: str) -> str:
    arn: str = client.import_key(
        Enabled=True,
        KeyMaterial={
            "RootCertificatePublicKey": {
                "KeyAttributes": {
                    "KeyAlgorithm": algorithm,
                    "KeyClass": "PUBLIC_KEY",
                    "KeyModesOfUse": {"Verify": True},
                    "KeyUsage": "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE",
                },
                "PublicKeyCertificate": b64_pem(cert),
            }
        },
        KeyCheckValueAlgorithm="ANSI_X9_24",
        Tags=[],
    )["Key"]["KeyArn"]
    return arn


def alias_for(client: Any, name: str) -> dict[str, Any]:
    """The samples' alias dance: get, or create without a key when missing."""
    try:
        alias: dict[str, Any] = client.get_alias(AliasName=name)["Alias"]
    except client.exceptions.ResourceNotFoundException:
        alias = client.create_alias(AliasName=name)["Alias"]
    return alias


# --- TR-34 import (import_raw_key_tr34.py) ---------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "clear_key"),
    [
        ("A", bytes.fromhex("6E46FE409DF704BCA75E7FF270B65E73")),
        ("T", bytes.fromhex("8A8349794C9EE9A4C2927098F249FED6")),
    ],
)
def test_tr34_import_sample(emu: Any, algorithm: str, clear_key: bytes) -> None:
    client = emu.client
    _, ca_cert, kdh_key, kdh_cert = sample_ca_and_leaf(2048, 2048)
    ca_alias = alias_for(client, f"alias/tr34-key-import-kdh-ca-{algorithm}")
    assert "KeyArn" not in ca_alias
    ca_arn = import_sample_root(client, ca_cert, "RSA_2048")
    client.update_alias(AliasName=ca_alias["AliasName"], KeyArn=ca_arn)
    nonce = os.urandom(8)
    parameters = client.get_parameters_for_import(
        KeyMaterialType="TR34_KEY_BLOCK", WrappingKeyAlgorithm="RSA_3072"
    )
    krd_cert = x509.load_pem_x509_certificate(
        base64.b64decode(parameters["WrappingKeyCertificate"])
    )
    if algorithm == "A":
        cipher_oid, block_size, content_key = "aes128-cbc", 16, os.urandom(16)
    else:
        cipher_oid, block_size, content_key = "des-ede3-cbc", 8, os.urandom(24)
    iv = os.urandom(block_size)
    header = ("D" + "9999" + "K0" + algorithm + "B" + "00" + "E" + "0000").encode()
    header_attr: Node = (0x30, True, [oid("data"), (0x31, True, [(0x04, False, header)])])
    plain = encode(
        [
            (
                0x30,
                True,
                [
                    (0x02, False, b"\x01"),
                    credential_id(kdh_cert),
                    (0x04, False, clear_key),
                    header_attr,
                ],
            )
        ]
    )
    pad = block_size - len(plain) % block_size
    engine = algorithms.AES(content_key) if algorithm == "A" else TripleDES(content_key)
    encryptor = Cipher(engine, modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()
    krd_public = krd_cert.public_key()
    assert isinstance(krd_public, rsa.RSAPublicKey)
    wrapped_content_key = krd_public.encrypt(
        content_key, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    )
    envelope = encode(
        [
            (0x02, False, b"\x00"),
            (
                0x31,
                True,
                [
                    (
                        0x30,
                        True,
                        [
                            (0x02, False, b"\x00"),
                            credential_id(krd_cert),
                            (
                                0x30,
                                True,
                                [
                                    oid("rsaes-oaep"),
                                    (
                                        0x30,
                                        True,
                                        [
                                            (0x30, True, [oid("sha256"), (0x05, False, b"")]),
                                            (
                                                0x30,
                                                True,
                                                [oid("mgf1"), (0x30, True, [oid("sha256")])],
                                            ),
                                            (0x30, True, [oid("p-specified"), (0x04, False, b"")]),
                                        ],
                                    ),
                                ],
                            ),
                            (0x04, False, wrapped_content_key),
                        ],
                    )
                ],
            ),
            (
                0x30,
                True,
                [
                    oid("data"),
                    (0x30, True, [oid(cipher_oid), (0x04, False, iv), (0x80, False, encrypted)]),
                ],
            ),
        ]
    )
    attributes: list[Node] = [
        (0x30, True, [oid("content-type"), (0x31, True, [oid("enveloped-data")])]),
        (0x30, True, [oid("random-nonce"), (0x31, True, [(0x04, False, nonce)])]),
        header_attr,
        (
            0x30,
            True,
            [
                oid("message-digest"),
                (0x31, True, [(0x04, False, hashlib.sha256(envelope).digest())]),
            ],
        ),
    ]
    signature = kdh_key.sign(
        encode([(0x31, True, attributes)]), padding.PKCS1v15(), hashes.SHA256()
    )
    payload = encode(
        [
            (
                0x30,
                True,
                [
                    oid("signed-data"),
                    (
                        0xA0,
                        True,
                        [
                            (
                                0x30,
                                True,
                                [
                                    (0x02, False, b"\x01"),
                                    (0x31, True, [(0x30, True, [oid("sha256")])]),
                                    (
                                        0x30,
                                        True,
                                        [
                                            oid("enveloped-data"),
                                            (0xA0, True, [(0x04, False, envelope)]),
                                        ],
                                    ),
                                    (
                                        0x31,
                                        True,
                                        [
                                            (
                                                0x30,
                                                True,
                                                [
                                                    (0x02, False, b"\x01"),
                                                    credential_id(kdh_cert),
                                                    (0x30, True, [oid("sha256")]),
                                                    (0xA0, True, attributes),
                                                    (
                                                        0x30,
                                                        True,
                                                        [oid("rsa-encryption"), (0x05, False, b"")],
                                                    ),
                                                    (0x04, False, signature),
                                                ],
                                            )
                                        ],
                                    ),
                                ],
                            )
                        ],
                    ),
                ],
            )
        ]
    )
    imported = client.import_key(
        Enabled=True,
        KeyMaterial={
            "Tr34KeyBlock": {
                "CertificateAuthorityPublicKeyIdentifier": ca_arn,
                "ImportToken": parameters["ImportToken"],
                "KeyBlockFormat": "X9_TR34_2012",
                "SigningKeyCertificate": b64_pem(kdh_cert),
                "WrappedKeyBlock": payload.hex().upper(),
                "RandomNonce": nonce.hex().upper(),
            }
        },
        KeyCheckValueAlgorithm="CMAC" if algorithm == "A" else "ANSI_X9_24",
        Tags=[],
    )
    key_alias = alias_for(client, f"alias/tr34-key-import-{algorithm}")
    client.update_alias(AliasName=key_alias["AliasName"], KeyArn=imported["Key"]["KeyArn"])
    expected_kcv = kcv.compute_kcv(clear_key, "CMAC" if algorithm == "A" else "ANSI_X9_24")
    assert imported["Key"]["KeyCheckValue"] == expected_kcv
    assert imported["Key"]["KeyAttributes"]["KeyAlgorithm"] == (
        "AES_128" if algorithm == "A" else "TDES_2KEY"
    )


# --- TR-34 export (export_raw_key_from_apc.py) -----------------------------------------------

PAYLOAD = [
    (
        0x30,
        True,
        [
            (0x06, False, bytes.fromhex(OID["signed-data"])),
            (
                0xA0,
                True,
                [
                    (
                        0x30,
                        True,
                        [
                            (0x02, False, b"\x01"),
                            (
                                0x31,
                                True,
                                [(0x30, True, [(0x06, False, bytes.fromhex(OID["sha256"]))])],
                            ),
                            (
                                0x30,
                                True,
                                [
                                    (0x06, False, bytes.fromhex(OID["enveloped-data"])),
                                    (0xA0, True, [(0x04, False, "envelope")]),
                                ],
                            ),
                            (
                                0x31,
                                True,
                                [
                                    (
                                        0x30,
                                        True,
                                        [
                                            (0x02, False, b"\x01"),
                                            "kdh_id",
                                            (
                                                0x30,
                                                True,
                                                [(0x06, False, bytes.fromhex(OID["sha256"]))],
                                            ),
                                            (0xA0, True, "attributes"),
                                            (
                                                0x30,
                                                True,
                                                [
                                                    (
                                                        0x06,
                                                        False,
                                                        bytes.fromhex(OID["rsa-encryption"]),
                                                    ),
                                                    (0x05, False, b""),
                                                ],
                                            ),
                                            (0x04, False, "signature"),
                                        ],
                                    )
                                ],
                            ),
                        ],
                    )
                ],
            ),
        ],
    )
]
ATTRIBUTES = [
    (
        0x30,
        True,
        [
            (0x06, False, bytes.fromhex(OID["content-type"])),
            (0x31, True, [(0x06, False, bytes.fromhex(OID["enveloped-data"]))]),
        ],
    ),
    (
        0x30,
        True,
        [(0x06, False, bytes.fromhex(OID["random-nonce"])), (0x31, True, [(0x04, False, "nonce")])],
    ),
    (
        0x30,
        True,
        [(0x06, False, bytes.fromhex(OID["data"])), (0x31, True, [(0x04, False, "header")])],
    ),
    (
        0x30,
        True,
        [
            (0x06, False, bytes.fromhex(OID["message-digest"])),
            (0x31, True, [(0x04, False, "digest")]),
        ],
    ),
]
ENVELOPE = [
    (0x02, False, b"\x00"),
    (
        0x31,
        True,
        [
            (
                0x30,
                True,
                [
                    (0x02, False, b"\x00"),
                    "krd_id",
                    (
                        0x30,
                        True,
                        [
                            (0x06, False, bytes.fromhex(OID["rsaes-oaep"])),
                            (
                                0x30,
                                True,
                                [
                                    (
                                        0x30,
                                        True,
                                        [
                                            (0x06, False, bytes.fromhex(OID["sha256"])),
                                            (0x05, False, b""),
                                        ],
                                    ),
                                    (
                                        0x30,
                                        True,
                                        [
                                            (0x06, False, bytes.fromhex(OID["mgf1"])),
                                            (
                                                0x30,
                                                True,
                                                [(0x06, False, bytes.fromhex(OID["sha256"]))],
                                            ),
                                        ],
                                    ),
                                    (
                                        0x30,
                                        True,
                                        [
                                            (0x06, False, bytes.fromhex(OID["p-specified"])),
                                            (0x04, False, b""),
                                        ],
                                    ),
                                ],
                            ),
                        ],
                    ),
                    (0x04, False, "wrapped_content_key"),
                ],
            )
        ],
    ),
    (
        0x30,
        True,
        [
            (0x06, False, bytes.fromhex(OID["data"])),
            (
                0x30,
                True,
                [
                    (0x06, False, bytes.fromhex(OID["des-ede3-cbc"])),
                    (0x04, False, "iv"),
                    (0x80, False, "encrypted"),
                ],
            ),
        ],
    ),
]
KEY_BLOCK = [
    (
        0x30,
        True,
        [
            (0x02, False, b"\x01"),
            "inner_kdh_id",
            (0x04, False, "key"),
            (
                0x30,
                True,
                [
                    (0x06, False, bytes.fromhex(OID["data"])),
                    (0x31, True, [(0x04, False, "inner_header")]),
                ],
            ),
        ],
    )
]


def test_tr34_export_sample(emu: Any) -> None:
    client = emu.client
    _, krd_ca, krd_key, krd_cert = sample_ca_and_leaf(2048, 2048)
    ca_alias = alias_for(client, "alias/tr34-key-export-krd-ca")
    krd_ca_arn = import_sample_root(client, krd_ca, "RSA_2048")
    client.update_alias(AliasName=ca_alias["AliasName"], KeyArn=krd_ca_arn)
    created = client.create_key(
        Enabled=True,
        Exportable=True,
        KeyAttributes={
            "KeyAlgorithm": "TDES_2KEY",
            "KeyClass": "SYMMETRIC_KEY",
            "KeyModesOfUse": {"Decrypt": True, "Encrypt": True, "Unwrap": True, "Wrap": True},
            "KeyUsage": "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY",
        },
        KeyCheckValueAlgorithm="ANSI_X9_24",
        Tags=[],
    )["Key"]
    parameters = client.get_parameters_for_export(
        KeyMaterialType="TR34_KEY_BLOCK", SigningKeyAlgorithm="RSA_2048"
    )
    kdh_cert = x509.load_pem_x509_certificate(base64.b64decode(parameters["SigningKeyCertificate"]))
    nonce = os.urandom(8)
    exported = client.export_key(
        ExportKeyIdentifier=created["KeyArn"],
        KeyMaterial={
            "Tr34KeyBlock": {
                "CertificateAuthorityPublicKeyIdentifier": krd_ca_arn,
                "ExportToken": parameters["ExportToken"],
                "KeyBlockFormat": "X9_TR34_2012",
                "RandomNonce": nonce.hex().upper(),
                "WrappingKeyCertificate": b64_pem(krd_cert),
            }
        },
    )
    found: dict[str, Any] = {}
    walk(decode(bytearray.fromhex(exported["WrappedKey"]["KeyMaterial"])), PAYLOAD, found)
    kdh_public = kdh_cert.public_key()
    assert isinstance(kdh_public, rsa.RSAPublicKey)
    kdh_public.verify(
        bytes(found["signature"]),
        encode([(0x31, True, found["attributes"])]),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert encode([found["kdh_id"]]) == encode([credential_id(kdh_cert)])
    walk(found["attributes"], ATTRIBUTES, found)
    assert hashlib.sha256(found["envelope"]).digest() == found["digest"]
    assert found["nonce"] == nonce
    walk(decode(found["envelope"]), ENVELOPE, found)
    assert encode([found["krd_id"]]) == encode([credential_id(krd_cert)])
    content_key = krd_key.decrypt(
        bytes(found["wrapped_content_key"]),
        padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None),
    )
    decryptor = Cipher(TripleDES(content_key), modes.CBC(bytes(found["iv"]))).decryptor()
    key_block = decryptor.update(bytes(found["encrypted"])) + decryptor.finalize()
    walk(decode(first_element(key_block)), KEY_BLOCK, found)  # the padding is left behind
    assert encode([found["inner_kdh_id"]]) == encode([credential_id(kdh_cert)])
    assert found["inner_header"] == found["header"]
    exported_kcv = kcv.compute_kcv(bytes(found["key"]), "ANSI_X9_24")
    assert client.get_key(KeyIdentifier=created["KeyArn"])["Key"]["KeyCheckValue"] == (exported_kcv)


# --- RSA import (import_raw_key_rsa.py) ------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "clear_key", "kcv_type"),
    [
        ("TDES_2KEY", bytes.fromhex("8A8349794C9EE9A4C2927098F249FED6"), "ANSI_X9_24"),
        ("AES_128", bytes.fromhex("6E46FE409DF704BCA75E7FF270B65E73"), "CMAC"),
    ],
)
def test_rsa_import_sample(emu: Any, algorithm: str, clear_key: bytes, kcv_type: str) -> None:
    client = emu.client
    parameters = client.get_parameters_for_import(
        KeyMaterialType="KEY_CRYPTOGRAM", WrappingKeyAlgorithm="RSA_4096"
    )
    assert {
        "ImportToken",
        "WrappingKeyAlgorithm",
        "WrappingKeyCertificateChain",
        "WrappingKeyCertificate",
    } <= set(parameters)
    public_key = x509.load_pem_x509_certificate(
        base64.b64decode(parameters["WrappingKeyCertificate"])
    ).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    wrapped = public_key.encrypt(
        clear_key,
        padding.OAEP(
            mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        ),
    )
    imported = client.import_key(
        Enabled=True,
        KeyMaterial={
            "KeyCryptogram": {
                "Exportable": True,
                "ImportToken": parameters["ImportToken"],
                "KeyAttributes": {
                    "KeyAlgorithm": algorithm,
                    "KeyClass": "SYMMETRIC_KEY",
                    "KeyModesOfUse": {"DeriveKey": True},
                    "KeyUsage": "TR31_B0_BASE_DERIVATION_KEY",
                },
                "WrappedKeyCryptogram": wrapped.hex().upper(),
                "WrappingSpec": "RSA_OAEP_SHA_256",
            }
        },
        KeyCheckValueAlgorithm=kcv_type,
        Tags=[],
    )
    assert imported["Key"]["KeyCheckValue"] == kcv.compute_kcv(clear_key, kcv_type)
    assert imported["Key"]["KeyAttributes"]["KeyAlgorithm"] == algorithm


# --- RSA export (export_raw_key_from_apc_with_rsa_wrap.py) ---------------------------------


def test_rsa_export_sample(emu: Any) -> None:
    client = emu.client
    created = client.create_key(
        Enabled=True,
        Exportable=True,
        KeyAttributes={
            "KeyAlgorithm": "TDES_3KEY",
            "KeyClass": "SYMMETRIC_KEY",
            "KeyModesOfUse": {"Decrypt": True, "Encrypt": True, "Unwrap": True, "Wrap": True},
            "KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY",
        },
        KeyCheckValueAlgorithm="ANSI_X9_24",
        Tags=[],
    )["Key"]
    _, krd_ca, krd_key, krd_cert = sample_ca_and_leaf(4096, 2048)
    root_arn = import_sample_root(client, krd_ca, "RSA_4096")
    exported = client.export_key(
        ExportKeyIdentifier=created["KeyArn"],
        KeyMaterial={
            "KeyCryptogram": {
                "CertificateAuthorityPublicKeyIdentifier": root_arn,
                "WrappingSpec": "RSA_OAEP_SHA_256",
                "WrappingKeyCertificate": b64_pem(krd_cert),
            }
        },
    )
    clear = krd_key.decrypt(
        bytes.fromhex(exported["WrappedKey"]["KeyMaterial"]),
        padding.OAEP(
            mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        ),
    )
    assert created["KeyCheckValue"].lower() == kcv.compute_kcv(clear, "ANSI_X9_24").lower()
    assert (
        client.delete_key(KeyIdentifier=created["KeyArn"], DeleteKeyInDays=3)["Key"]["KeyState"]
        == "DELETE_PENDING"
    )
    client.delete_key(KeyIdentifier=root_arn, DeleteKeyInDays=3)
    with pytest.raises(ClientError):  # a deleted root no longer vouches for anything
        client.export_key(
            ExportKeyIdentifier=created["KeyArn"],
            KeyMaterial={
                "KeyCryptogram": {
                    "CertificateAuthorityPublicKeyIdentifier": root_arn,
                    "WrappingKeyCertificate": b64_pem(krd_cert),
                }
            },
        )
