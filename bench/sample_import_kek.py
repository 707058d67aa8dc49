"""The AWS sample's KEK import (``import_raw_kek.py``), re-created from its documented order of
calls, for the ceremony benchmark. Real cryptography, as the sample does it:

* one self-signed P-521 certificate is both the CA imported as the root and the ECDH key;
* ECDH + NIST SP 800-56A Concatenation KDF, SHA-256, SharedInformation ``0123456789``;
* the KEK wrapped by psec in a TR-31 version D block, header ``D0000K0AB00E0000``;
* every alias through GetAlias, CreateAlias (no key) when missing, then UpdateAlias;
* all calls one after another:

    GetAlias, CreateAlias, CreateKey, UpdateAlias, GetPublicKeyCertificate,
    GetAlias, CreateAlias, ImportKey (root), UpdateAlias,
    GetAlias, CreateAlias, ImportKey (KEK), UpdateAlias

It is a benchmark baseline, not a tool: it prints nothing secret, but, unlike apckx, keeps the
sample's shortcuts (fixed SharedInformation, no chain check, no journal).

    python bench/sample_import_kek.py --endpoint-url URL --region R  (KEK hex on stdin)
"""

from __future__ import annotations

import argparse
import base64
import datetime
import sys
import time
from typing import Any

RECEIVER_ALIAS = "alias/import-kek-ecdh-receiver"
ROOT_ALIAS = "alias/import-kek-ecdh-sender-root"
KEK_ALIAS = "alias/import-kek-ecdh-result"
HEADER = "D0000K0AB00E0000"
SHARED_INFO_HEX = "0123456789"


def _client(endpoint_url: str, region: str) -> Any:
    import boto3

    return boto3.Session(region_name=region).client(
        "payment-cryptography", endpoint_url=endpoint_url
    )


def _ensure_alias(client: Any, alias: str) -> None:
    """The sample's alias dance, first half: GetAlias, CreateAlias (no key) when missing."""
    try:
        client.get_alias(AliasName=alias)
    except client.exceptions.ResourceNotFoundException:
        client.create_alias(AliasName=alias)


def _key_usage() -> Any:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=True, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _self_signed_p521() -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP521R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Desktop HSM CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(), critical=True)
        .sign(key, hashes.SHA512())
    )
    return key, cert


def _apc_certificate(cert: Any) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return base64.b64encode(cert.public_bytes(Encoding.PEM)).decode()


def run_sample(client: Any, kek: bytes) -> dict[str, Any]:
    """The sample's ceremony, call by call. Returns ARNs and KCV only."""
    import psec.tr31
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash

    # 1. the receiver: an APC key-agreement pair
    _ensure_alias(client, RECEIVER_ALIAS)
    receiver = client.create_key(
        KeyAttributes={
            "KeyAlgorithm": "ECC_NIST_P521",
            "KeyClass": "ASYMMETRIC_KEY_PAIR",
            "KeyModesOfUse": {"DeriveKey": True},
            "KeyUsage": "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT",
        },
        Exportable=True,
        DeriveKeyUsage="TR31_K1_KEY_BLOCK_PROTECTION_KEY",
    )["Key"]
    client.update_alias(AliasName=RECEIVER_ALIAS, KeyArn=receiver["KeyArn"])
    apc_cert_text = client.get_public_key_certificate(KeyIdentifier=receiver["KeyArn"])[
        "KeyCertificate"
    ]
    apc_leaf = x509.load_pem_x509_certificate(base64.b64decode(apc_cert_text))
    # 2. the sender: one self-signed P-521 certificate, imported as the root
    ca_key, ca_cert = _self_signed_p521()
    _ensure_alias(client, ROOT_ALIAS)
    root = client.import_key(
        KeyMaterial={
            "RootCertificatePublicKey": {
                "KeyAttributes": {
                    "KeyAlgorithm": "ECC_NIST_P521",
                    "KeyClass": "PUBLIC_KEY",
                    "KeyModesOfUse": {"Verify": True},
                    "KeyUsage": "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE",
                },
                "PublicKeyCertificate": _apc_certificate(ca_cert),
            }
        }
    )["Key"]
    client.update_alias(AliasName=ROOT_ALIAS, KeyArn=root["KeyArn"])
    # 3. ECDH + Concatenation KDF (SP 800-56A 5.8.2.1) -> KBPK; TR-31 D block of the KEK
    z = ca_key.exchange(ec.ECDH(), apc_leaf.public_key())
    shared_info = bytes.fromhex(SHARED_INFO_HEX)
    kbpk = ConcatKDFHash(hashes.SHA256(), 32, shared_info).derive(z)
    key_block = psec.tr31.wrap(kbpk, HEADER, kek)
    del kbpk, z
    _ensure_alias(client, KEK_ALIAS)
    imported = client.import_key(
        KeyMaterial={
            "DiffieHellmanTr31KeyBlock": {
                "PrivateKeyIdentifier": receiver["KeyArn"],
                "CertificateAuthorityPublicKeyIdentifier": root["KeyArn"],
                "PublicKeyCertificate": _apc_certificate(ca_cert),
                "DeriveKeyAlgorithm": "AES_256",
                "KeyDerivationFunction": "NIST_SP800",
                "KeyDerivationHashAlgorithm": "SHA_256",
                "DerivationData": {"SharedInformation": SHARED_INFO_HEX},
                "WrappedKeyBlock": key_block,
            }
        },
        KeyCheckValueAlgorithm="CMAC",
    )["Key"]
    client.update_alias(AliasName=KEK_ALIAS, KeyArn=imported["KeyArn"])
    return {
        "key_arn": imported["KeyArn"],
        "key_check_value": imported.get("KeyCheckValue"),
        "receiver_key_arn": receiver["KeyArn"],
        "root_key_arn": root["KeyArn"],
    }


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore", message="TripleDES has been moved")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--region", default="us-east-1")
    options = parser.parse_args()
    kek = bytes.fromhex(sys.stdin.read().strip())
    t0 = time.perf_counter()
    result = run_sample(_client(options.endpoint_url, options.region), kek)
    result["wall_s"] = round(time.perf_counter() - t0, 4)
    print(result)


if __name__ == "__main__":
    main()
