"""ECDH (DiffieHellmanTr31KeyBlock) ceremonies end to end, in-process, with real keys,
certificates and key blocks built by the test from ``apckx.crypto``; plus the account CA
(GetPublicKeyCertificate) and root/trusted certificate imports."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from apckx.crypto.certs import (
    certificate_from_apc,
    certificate_to_apc,
    certificate_to_pem,
    new_ecdh_leaf,
    new_sender_ca,
)
from apckx.crypto.ecdh import CURVES, derive_kbpk, new_shared_info
from apckx.crypto.kcv import compute_kcv
from apckx.crypto.keys import generate_key
from apckx.crypto.tr31 import build_header, unwrap_key_block, wrap_key_block
from apckx.emulator.control.account import BackendRegistry
from apckx.emulator.exceptions import ValidationException

from .conftest import ACCOUNT, REGION, Call, FakeClock

CreateKey = Callable[..., dict[str, Any]]
K1 = "TR31_K1_KEY_BLOCK_PROTECTION_KEY"
K3 = "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT"
S0 = "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE"
DAY = 86400.0


def s0_attributes(curve: str) -> dict[str, Any]:
    return {"KeyUsage": S0, "KeyClass": "PUBLIC_KEY", "KeyAlgorithm": f"ECC_NIST_{curve}",
            "KeyModesOfUse": {"Verify": True}}


def issue_certificate(issuer_key: ec.EllipticCurvePrivateKey, issuer_cert: x509.Certificate,
                      curve: ec.EllipticCurve, *, ca: bool = True,
                      common_name: str = "test intermediate"
                      ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A certificate on any curve under any issuer: cases the sender helpers rightly refuse
    to build (leaf curve different from the CA's)."""
    key = ec.generate_private_key(curve)
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA384())
    )
    return key, certificate


def public_kcv(certificate: x509.Certificate) -> str:
    der = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha1(der, usedforsecurity=False).digest()[:4].hex().upper()


@dataclass
class Party:
    """The counterparty: its CA and ECDH leaf; and APC's K3 key, root import, leaf cert."""

    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    leaf_cert: x509.Certificate
    k3_arn: str
    root_arn: str
    apc_cert: x509.Certificate


@pytest.fixture
def setup_party(call: Call, create_key: CreateKey) -> Callable[..., Party]:
    def setup(curve: str = "P521", *, leaf_curve: str | None = None,
              derive_key_usage: str | None = K1) -> Party:
        ca_key, ca_cert = new_sender_ca(curve)
        if leaf_curve is None:
            leaf_key, leaf_cert = new_ecdh_leaf(ca_key, ca_cert, curve)
        else:
            leaf_key, leaf_cert = issue_certificate(ca_key, ca_cert, CURVES[leaf_curve](),
                                                    ca=False)
        extra = {"DeriveKeyUsage": derive_key_usage} if derive_key_usage else {}
        k3_arn = create_key(K3, f"ECC_NIST_{curve}", {"DeriveKey": True},
                            key_class="ASYMMETRIC_KEY_PAIR", **extra)["KeyArn"]
        root_arn = call("ImportKey", KeyMaterial={"RootCertificatePublicKey": {
            "KeyAttributes": s0_attributes(curve),
            "PublicKeyCertificate": certificate_to_apc(ca_cert)}})["Key"]["KeyArn"]
        apc_cert = certificate_from_apc(
            call("GetPublicKeyCertificate", KeyIdentifier=k3_arn)["KeyCertificate"])
        return Party(ca_key, ca_cert, leaf_key, leaf_cert, k3_arn, root_arn, apc_cert)

    return setup


def ecdh_member(party: Party, shared_info: bytes, *, derive: str = "AES_256",
                kdf: str = "NIST_SP800", hash_algorithm: str = "SHA_512",
                leaf: x509.Certificate | None = None, ca_arn: str | None = None
                ) -> dict[str, Any]:
    return {
        "PrivateKeyIdentifier": party.k3_arn,
        "CertificateAuthorityPublicKeyIdentifier": ca_arn or party.root_arn,
        "PublicKeyCertificate": certificate_to_apc(leaf or party.leaf_cert),
        "DeriveKeyAlgorithm": derive,
        "KeyDerivationFunction": kdf,
        "KeyDerivationHashAlgorithm": hash_algorithm,
        "DerivationData": {"SharedInformation": shared_info.hex().upper()},
    }


def sender_block(party: Party, shared_info: bytes, key: bytes, algorithm: str, *,
                 derive: str = "AES_256", kdf: str = "NIST_SP800",
                 hash_algorithm: str = "SHA_512", usage: str = K1,
                 leaf_key: ec.EllipticCurvePrivateKey | None = None) -> str:
    """What the counterparty sends: the key wrapped under its side of the ECDH KBPK."""
    kbpk = derive_kbpk(leaf_key or party.leaf_key, party.apc_cert.public_key(),  # type: ignore[arg-type]
                       kdf=kdf, hash_algorithm=hash_algorithm, key_algorithm=derive,
                       shared_info=shared_info)
    header = build_header(key_usage=usage, key_algorithm=algorithm, kbpk_algorithm=derive)
    return wrap_key_block(kbpk, header, key)


def import_ecdh(call: Call, party: Party, shared_info: bytes, block: str,
                **member: Any) -> dict[str, Any]:
    body = dict(ecdh_member(party, shared_info, **member), WrappedKeyBlock=block)
    key: dict[str, Any] = call("ImportKey", KeyMaterial={"DiffieHellmanTr31KeyBlock": body},
                               KeyCheckValueAlgorithm="CMAC")["Key"]
    return key


def secret(registry: BackendRegistry, arn: str) -> bytes:
    return registry.backend(ACCOUNT, REGION).resolve_key(arn).secret()


# --- the full ceremonies ------------------------------------------------------------------


def test_full_ecdh_import(setup_party: Callable[..., Party], call: Call,
                          registry: BackendRegistry) -> None:
    party = setup_party("P521")
    shared_info = new_shared_info()
    key = generate_key("AES_256")
    block = sender_block(party, shared_info, key, "AES_256")
    assert block.startswith("D")
    imported = import_ecdh(call, party, shared_info, block)
    assert imported["KeyCheckValue"] == compute_kcv(key, "CMAC")
    assert imported["KeyCheckValueAlgorithm"] == "CMAC"
    assert imported["KeyAttributes"]["KeyUsage"] == K1
    assert imported["KeyAttributes"]["KeyAlgorithm"] == "AES_256"
    assert imported["KeyOrigin"] == "EXTERNAL"
    assert secret(registry, imported["KeyArn"]) == key


def test_full_ecdh_export(setup_party: Callable[..., Party], call: Call,
                          create_key: CreateKey, registry: BackendRegistry) -> None:
    party = setup_party("P521")
    exported = create_key("TR31_P0_PIN_ENCRYPTION_KEY", "AES_256")
    shared_info = new_shared_info()
    wrapped = call("ExportKey", ExportKeyIdentifier=exported["KeyArn"], KeyMaterial={
        "DiffieHellmanTr31KeyBlock": ecdh_member(party, shared_info)})["WrappedKey"]
    assert wrapped["WrappingKeyArn"] == party.k3_arn
    assert wrapped["WrappedKeyMaterialFormat"] == "TR31_KEY_BLOCK"
    kbpk = derive_kbpk(party.leaf_key, party.apc_cert.public_key(),  # type: ignore[arg-type]
                       kdf="NIST_SP800", hash_algorithm="SHA_512", key_algorithm="AES_256",
                       shared_info=shared_info)
    header, key = unwrap_key_block(kbpk, wrapped["KeyMaterial"])
    assert header.version_id == "D"
    assert header.key_usage == "P0"
    assert key == secret(registry, exported["KeyArn"])
    assert wrapped["KeyCheckValue"] == compute_kcv(key, "CMAC") == exported["KeyCheckValue"]


def test_ecdh_export_under_a_tdes_derived_key_is_version_b(
        setup_party: Callable[..., Party], call: Call, create_key: CreateKey) -> None:
    party = setup_party("P256")
    exported = create_key("TR31_K0_KEY_ENCRYPTION_KEY", "TDES_2KEY")
    shared_info = new_shared_info()
    member = ecdh_member(party, shared_info, derive="TDES_3KEY", hash_algorithm="SHA_256")
    member["KeyBlockHeaders"] = {"KeyModesOfUse": {"Encrypt": True, "Wrap": True},
                                "KeyExportability": "NON_EXPORTABLE"}
    wrapped = call("ExportKey", ExportKeyIdentifier=exported["KeyArn"],
                   KeyMaterial={"DiffieHellmanTr31KeyBlock": member})["WrappedKey"]
    kbpk = derive_kbpk(party.leaf_key, party.apc_cert.public_key(),  # type: ignore[arg-type]
                       hash_algorithm="SHA_256", key_algorithm="TDES_3KEY",
                       shared_info=shared_info)
    header, key = unwrap_key_block(kbpk, wrapped["KeyMaterial"])
    assert (header.version_id, header.mode_of_use, header.exportability) == ("B", "E", "N")
    assert compute_kcv(key, "ANSI_X9_24") == exported["KeyCheckValue"]


def test_ansi_x963_and_tdes_derivation_import(setup_party: Callable[..., Party],
                                              call: Call) -> None:
    party = setup_party("P384")
    shared_info = new_shared_info(32)
    key = generate_key("TDES_2KEY")
    block = sender_block(party, shared_info, key, "TDES_2KEY", derive="TDES_3KEY",
                         kdf="ANSI_X963", hash_algorithm="SHA_384",
                         usage="TR31_K0_KEY_ENCRYPTION_KEY")
    assert block.startswith("B")
    imported = import_ecdh(call, party, shared_info, block, derive="TDES_3KEY",
                           kdf="ANSI_X963", hash_algorithm="SHA_384")
    assert imported["KeyCheckValue"] == compute_kcv(key, "CMAC", key_algorithm="TDES_2KEY")


def test_p256_with_an_aes_256_derived_key_moves_tdes(setup_party: Callable[..., Party],
                                                     call: Call) -> None:
    # The docs pair P-256 with DeriveKeyAlgorithm AES_256 to move a TDES_3KEY (spec 7.4).
    party = setup_party("P256")
    shared_info = new_shared_info()
    key = generate_key("TDES_3KEY")
    block = sender_block(party, shared_info, key, "TDES_3KEY")
    imported = import_ecdh(call, party, shared_info, block)
    assert imported["KeyAttributes"]["KeyAlgorithm"] == "TDES_3KEY"


def test_leaf_equal_to_root_is_accepted(setup_party: Callable[..., Party], call: Call) -> None:
    # AWS samples pass the self-signed root as the leaf (spec 7.2).
    party = setup_party("P521")
    shared_info = new_shared_info()
    key = generate_key("AES_128")
    block = sender_block(party, shared_info, key, "AES_128", leaf_key=party.ca_key)
    imported = import_ecdh(call, party, shared_info, block, leaf=party.ca_cert)
    assert imported["KeyCheckValue"] == compute_kcv(key, "CMAC")


# --- refusals -------------------------------------------------------------------------------


def test_wrong_shared_information(setup_party: Callable[..., Party], call: Call) -> None:
    party = setup_party("P521")
    key = generate_key("AES_256")
    block = sender_block(party, new_shared_info(), key, "AES_256")
    with pytest.raises(ValidationException, match="integrity check") as caught:
        import_ecdh(call, party, new_shared_info(), block)
    assert key.hex().upper() not in caught.value.message.upper()


def test_leaf_signed_by_another_ca(setup_party: Callable[..., Party], call: Call) -> None:
    party = setup_party("P521")
    other_ca_key, other_ca_cert = new_sender_ca("P521", common_name="apckx sender root")
    leaf_key, leaf_cert = new_ecdh_leaf(other_ca_key, other_ca_cert, "P521")
    shared_info = new_shared_info()
    block = sender_block(party, shared_info, generate_key("AES_256"), "AES_256",
                         leaf_key=leaf_key)
    with pytest.raises(ValidationException,
                       match=r"PublicKeyCertificate: .* is not signed by the expected issuer"):
        import_ecdh(call, party, shared_info, block, leaf=leaf_cert)


def test_expired_leaf(setup_party: Callable[..., Party], call: Call) -> None:
    party = setup_party("P521")
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=400)
    leaf_key, leaf_cert = new_ecdh_leaf(party.ca_key, party.ca_cert, "P521", now=long_ago,
                                        days=30)
    shared_info = new_shared_info()
    block = sender_block(party, shared_info, generate_key("AES_256"), "AES_256",
                         leaf_key=leaf_key)
    with pytest.raises(ValidationException, match=r"PublicKeyCertificate: .* expired on"):
        import_ecdh(call, party, shared_info, block, leaf=leaf_cert)


def test_leaf_expires_while_the_clock_runs(setup_party: Callable[..., Party], call: Call,
                                           clock: FakeClock) -> None:
    party = setup_party("P521")
    shared_info = new_shared_info()
    block = sender_block(party, shared_info, generate_key("AES_256"), "AES_256")
    clock.advance(366 * DAY)  # the leaf is valid 365 days, the CA 3650
    with pytest.raises(ValidationException, match="expired on"):
        import_ecdh(call, party, shared_info, block)


def test_mismatched_curve(setup_party: Callable[..., Party], call: Call) -> None:
    party = setup_party("P521", leaf_curve="P384")
    shared_info = new_shared_info()
    with pytest.raises(ValidationException, match="curves must match"):
        import_ecdh(call, party, shared_info, "D" + "0" * 111)


def test_tampered_block(setup_party: Callable[..., Party], call: Call) -> None:
    party = setup_party("P521")
    shared_info = new_shared_info()
    block = sender_block(party, shared_info, generate_key("AES_256"), "AES_256")
    tampered = block[:-1] + ("0" if block[-1] != "0" else "1")
    with pytest.raises(ValidationException, match="integrity check"):
        import_ecdh(call, party, shared_info, tampered)


def test_curve_caps_the_transported_key(setup_party: Callable[..., Party], call: Call,
                                        create_key: CreateKey) -> None:
    party = setup_party("P256")
    shared_info = new_shared_info()
    block = sender_block(party, shared_info, generate_key("AES_192"), "AES_192")
    with pytest.raises(ValidationException, match="P256"):
        import_ecdh(call, party, shared_info, block)
    strong = create_key("TR31_K0_KEY_ENCRYPTION_KEY", "AES_256")["KeyArn"]
    with pytest.raises(ValidationException, match="P256"):
        call("ExportKey", ExportKeyIdentifier=strong, KeyMaterial={
            "DiffieHellmanTr31KeyBlock": ecdh_member(party, shared_info)})


def test_derived_key_must_be_as_strong_as_the_transported_key(
        setup_party: Callable[..., Party], call: Call, create_key: CreateKey) -> None:
    party = setup_party("P521")
    exported = create_key("TR31_K0_KEY_ENCRYPTION_KEY", "AES_256")["KeyArn"]
    with pytest.raises(ValidationException, match="cannot protect"):
        call("ExportKey", ExportKeyIdentifier=exported, KeyMaterial={
            "DiffieHellmanTr31KeyBlock": ecdh_member(party, new_shared_info(),
                                                     derive="AES_128")})


def test_hmac_derive_key_algorithm_is_refused(setup_party: Callable[..., Party],
                                              call: Call) -> None:
    party = setup_party("P521")
    with pytest.raises(ValidationException, match="cannot protect a TR-31 key block"):
        import_ecdh(call, party, new_shared_info(), "D" + "0" * 111, derive="HMAC_SHA256")


def test_ca_weaker_than_leaf(call: Call, create_key: CreateKey) -> None:
    ca_key, ca_cert = new_sender_ca("P256")
    leaf_key, leaf_cert = issue_certificate(ca_key, ca_cert, ec.SECP521R1(), ca=False)
    root_arn = call("ImportKey", KeyMaterial={"RootCertificatePublicKey": {
        "KeyAttributes": s0_attributes("P256"),
        "PublicKeyCertificate": certificate_to_apc(ca_cert)}})["Key"]["KeyArn"]
    k3_arn = create_key(K3, "ECC_NIST_P521", {"DeriveKey": True},
                        key_class="ASYMMETRIC_KEY_PAIR", DeriveKeyUsage=K1)["KeyArn"]
    apc_cert = certificate_from_apc(
        call("GetPublicKeyCertificate", KeyIdentifier=k3_arn)["KeyCertificate"])
    party = Party(ca_key, ca_cert, leaf_key, leaf_cert, k3_arn, root_arn, apc_cert)
    with pytest.raises(ValidationException, match="weaker"):
        import_ecdh(call, party, new_shared_info(), "D" + "0" * 111)


def test_ca_must_be_an_imported_enabled_certificate(setup_party: Callable[..., Party],
                                                    call: Call, create_key: CreateKey) -> None:
    party = setup_party("P521")
    shared_info = new_shared_info()
    block = sender_block(party, shared_info, generate_key("AES_256"), "AES_256")
    kek_arn = create_key()["KeyArn"]
    with pytest.raises(ValidationException, match="not an imported root or trusted"):
        import_ecdh(call, party, shared_info, block, ca_arn=kek_arn)
    with pytest.raises(ValidationException, match="not an imported root or trusted"):
        import_ecdh(call, party, shared_info, block, ca_arn=party.k3_arn)
    call("StopKeyUsage", KeyIdentifier=party.root_arn)
    with pytest.raises(ValidationException, match="disabled"):
        import_ecdh(call, party, shared_info, block)
    call("StartKeyUsage", KeyIdentifier=party.root_arn)
    assert import_ecdh(call, party, shared_info, block)["KeyState"] == "CREATE_COMPLETE"


@pytest.mark.parametrize("state", ["disabled", "deleted"])
def test_k3_key_must_be_usable(setup_party: Callable[..., Party], call: Call,
                               state: str) -> None:
    party = setup_party("P521")
    shared_info = new_shared_info()
    block = sender_block(party, shared_info, generate_key("AES_256"), "AES_256")
    if state == "disabled":
        call("StopKeyUsage", KeyIdentifier=party.k3_arn)
    else:
        call("DeleteKey", KeyIdentifier=party.k3_arn)
    with pytest.raises(ValidationException, match="PrivateKeyIdentifier"):
        import_ecdh(call, party, shared_info, block)


@pytest.mark.parametrize("derive_key_usage", [
    "TR31_P0_PIN_ENCRYPTION_KEY", "TR31_K0_KEY_ENCRYPTION_KEY", None])
def test_k3_derive_key_usage_must_be_k1(setup_party: Callable[..., Party], call: Call,
                                        derive_key_usage: str | None) -> None:
    """AWS: a K3 pair that wraps keys over ECDH is created with DeriveKeyUsage K1; a pair
    fixed to another derived-key type (or none) is refused, on import and on export."""
    party = setup_party("P256", derive_key_usage=derive_key_usage)
    shared_info = new_shared_info()
    block = sender_block(party, shared_info, generate_key("AES_128"), "AES_128",
                         derive="AES_128", hash_algorithm="SHA_256")
    with pytest.raises(ValidationException, match="must be created with DeriveKeyUsage "
                       "TR31_K1_KEY_BLOCK_PROTECTION_KEY"):
        import_ecdh(call, party, shared_info, block, derive="AES_128",
                    hash_algorithm="SHA_256")
    key_arn = call("CreateKey", KeyAttributes={
        "KeyUsage": K1, "KeyClass": "SYMMETRIC_KEY", "KeyAlgorithm": "AES_128",
        "KeyModesOfUse": {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}},
        Exportable=True)["Key"]["KeyArn"]
    with pytest.raises(ValidationException, match="DeriveKeyUsage"):
        call("ExportKey", ExportKeyIdentifier=key_arn, KeyMaterial={
            "DiffieHellmanTr31KeyBlock": ecdh_member(party, shared_info, derive="AES_128",
                                                     hash_algorithm="SHA_256")})


@pytest.mark.parametrize("shared_info_hex", ["00", "0102030400", "00" * 16, "A1B2C3D4E5F600FF"])
def test_shared_information_with_a_zero_byte_is_refused(
        setup_party: Callable[..., Party], call: Call, shared_info_hex: str) -> None:
    """The model: SharedInformation "must not contain zero bytes"."""
    party = setup_party("P256")
    shared_info = bytes.fromhex(shared_info_hex)
    block = sender_block(party, shared_info, generate_key("AES_128"), "AES_128",
                         derive="AES_128", hash_algorithm="SHA_256")
    with pytest.raises(ValidationException, match="must not contain zero bytes"):
        import_ecdh(call, party, shared_info, block, derive="AES_128",
                    hash_algorithm="SHA_256")
    fine = bytes(byte or 1 for byte in shared_info)
    block = sender_block(party, fine, generate_key("AES_128"), "AES_128",
                         derive="AES_128", hash_algorithm="SHA_256")
    imported = import_ecdh(call, party, fine, block, derive="AES_128", hash_algorithm="SHA_256")
    assert imported["KeyState"] == "CREATE_COMPLETE"


def test_private_key_must_be_k3(setup_party: Callable[..., Party], call: Call,
                                create_key: CreateKey) -> None:
    party = setup_party("P521")
    party.k3_arn = create_key()["KeyArn"]
    with pytest.raises(ValidationException, match="must be a TR31_K3"):
        import_ecdh(call, party, new_shared_info(), "D" + "0" * 111)


# --- trusted (intermediate) certificates ------------------------------------------------------


def test_trusted_certificate_chain(setup_party: Callable[..., Party], call: Call,
                                   registry: BackendRegistry) -> None:
    party = setup_party("P521")
    inter_key, inter_cert = issue_certificate(party.ca_key, party.ca_cert, ec.SECP521R1())
    trusted = call("ImportKey", KeyMaterial={"TrustedCertificatePublicKey": {
        "KeyAttributes": s0_attributes("P521"),
        "PublicKeyCertificate": certificate_to_apc(inter_cert),
        "CertificateAuthorityPublicKeyIdentifier": party.root_arn}})["Key"]
    assert trusted["KeyAttributes"]["KeyClass"] == "PUBLIC_KEY"
    assert trusted["KeyCheckValue"] == public_kcv(inter_cert)
    assert trusted["KeyCheckValueAlgorithm"] == "SHA_1"
    leaf_key, leaf_cert = new_ecdh_leaf(inter_key, inter_cert, "P521")
    shared_info = new_shared_info()
    key = generate_key("AES_256")
    block = sender_block(party, shared_info, key, "AES_256", leaf_key=leaf_key)
    imported = import_ecdh(call, party, shared_info, block, leaf=leaf_cert,
                           ca_arn=trusted["KeyArn"])
    assert secret(registry, imported["KeyArn"]) == key
    # the leaf is not signed by the root directly
    with pytest.raises(ValidationException, match="was issued by"):
        import_ecdh(call, party, shared_info, block, leaf=leaf_cert)
    certificate, chain = (call("GetPublicKeyCertificate", KeyIdentifier=trusted["KeyArn"])[m]
                          for m in ("KeyCertificate", "KeyCertificateChain"))
    assert certificate_from_apc(certificate) == inter_cert
    assert certificate_from_apc(chain) == party.ca_cert


def test_trusted_certificate_refusals(setup_party: Callable[..., Party], call: Call) -> None:
    party = setup_party("P384")
    stranger_key, stranger_cert = new_sender_ca("P384")
    _, inter_cert = issue_certificate(stranger_key, stranger_cert, ec.SECP384R1())
    member = {"KeyAttributes": s0_attributes("P384"),
              "PublicKeyCertificate": certificate_to_apc(inter_cert),
              "CertificateAuthorityPublicKeyIdentifier": party.root_arn}
    with pytest.raises(ValidationException, match="not signed by the expected issuer"):
        call("ImportKey", KeyMaterial={"TrustedCertificatePublicKey": member})
    _, strong_cert = issue_certificate(party.ca_key, party.ca_cert, ec.SECP521R1())
    member = {"KeyAttributes": s0_attributes("P521"),
              "PublicKeyCertificate": certificate_to_apc(strong_cert),
              "CertificateAuthorityPublicKeyIdentifier": party.root_arn}
    with pytest.raises(ValidationException, match="weaker"):
        call("ImportKey", KeyMaterial={"TrustedCertificatePublicKey": member})


# --- root certificate imports ---------------------------------------------------------------


def test_root_import(call: Call) -> None:
    _, ca_cert = new_sender_ca("P384")
    root = call("ImportKey", KeyMaterial={"RootCertificatePublicKey": {
        "KeyAttributes": s0_attributes("P384"),
        "PublicKeyCertificate": certificate_to_apc(ca_cert)}},
        KeyCheckValueAlgorithm="ANSI_X9_24")["Key"]  # tolerated, as the samples pass it
    assert root["KeyOrigin"] == "EXTERNAL"
    assert root["KeyState"] == "CREATE_COMPLETE"
    assert root["KeyCheckValueAlgorithm"] == "SHA_1"
    assert root["KeyCheckValue"] == public_kcv(ca_cert)
    assert root["Exportable"] is False
    assert root["KeyAttributes"]["KeyModesOfUse"]["Verify"] is True


@pytest.mark.parametrize(("change", "why"), [
    ({"KeyAlgorithm": "ECC_NIST_P521"}, "does not match the certificate"),
    ({"KeyModesOfUse": {"Verify": True, "Sign": True}}, "Verify: true"),
    ({"KeyClass": "ASYMMETRIC_KEY_PAIR"}, "PUBLIC_KEY"),
    ({"KeyUsage": K3}, "KeyUsage must be"),
])
def test_root_attributes_must_fit(call: Call, change: dict[str, Any], why: str) -> None:
    _, ca_cert = new_sender_ca("P384")
    with pytest.raises(ValidationException, match=why):
        call("ImportKey", KeyMaterial={"RootCertificatePublicKey": {
            "KeyAttributes": dict(s0_attributes("P384"), **change),
            "PublicKeyCertificate": certificate_to_apc(ca_cert)}})


def test_root_must_be_a_valid_unexpired_certificate(call: Call) -> None:
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=400)
    _, old_cert = new_sender_ca("P256", now=long_ago, days=30)
    pem = certificate_to_pem(new_sender_ca("P256")[1]).decode()
    for certificate, why in ((certificate_to_apc(old_cert), "expired"),
                             ("bm90IGEgY2VydGlmaWNhdGU=", "not a base64-encoded PEM"),
                             (pem, "not the PEM itself")):
        with pytest.raises(ValidationException, match=why):
            call("ImportKey", KeyMaterial={"RootCertificatePublicKey": {
                "KeyAttributes": s0_attributes("P256"), "PublicKeyCertificate": certificate}})


# --- GetPublicKeyCertificate ------------------------------------------------------------------


def test_public_key_certificate_and_account_ca(create_key: CreateKey, call: Call,
                                               registry: BackendRegistry,
                                               clock: FakeClock) -> None:
    k3_arn = create_key(K3, "ECC_NIST_P256", {"DeriveKey": True},
                        key_class="ASYMMETRIC_KEY_PAIR")["KeyArn"]
    answer = call("GetPublicKeyCertificate", KeyIdentifier=k3_arn)
    leaf = certificate_from_apc(answer["KeyCertificate"])
    root = certificate_from_apc(answer["KeyCertificateChain"])
    private_key = registry.backend(ACCOUNT, REGION).resolve_key(k3_arn).private_key()
    assert leaf.public_key() == private_key.public_key()
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert root.public_key().curve.name == "secp521r1"  # type: ignore[union-attr]
    assert root.subject == root.issuer
    root.verify_directly_issued_by(root)
    leaf.verify_directly_issued_by(root)
    assert leaf.signature_algorithm_oid == x509.SignatureAlgorithmOID.ECDSA_WITH_SHA512
    lifetime = leaf.not_valid_after_utc.timestamp() - clock.now
    assert lifetime == pytest.approx(90 * DAY)
    basic = root.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca is True
    # one CA per account and region, cached leaf while >= 30 days remain
    other = create_key(K3, "ECC_NIST_P521", {"DeriveKey": True},
                       key_class="ASYMMETRIC_KEY_PAIR")["KeyArn"]
    assert call("GetPublicKeyCertificate", KeyIdentifier=other)["KeyCertificateChain"] == \
        answer["KeyCertificateChain"]
    clock.advance(59 * DAY)
    assert call("GetPublicKeyCertificate", KeyIdentifier=k3_arn) == answer
    clock.advance(2 * DAY)
    renewed = call("GetPublicKeyCertificate", KeyIdentifier=k3_arn)
    assert renewed["KeyCertificate"] != answer["KeyCertificate"]
    assert renewed["KeyCertificateChain"] == answer["KeyCertificateChain"]
    renewed_leaf = certificate_from_apc(renewed["KeyCertificate"])
    assert renewed_leaf.public_key() == private_key.public_key()


def test_public_key_certificate_refusals(create_key: CreateKey, call: Call) -> None:
    symmetric = create_key()["KeyArn"]
    with pytest.raises(ValidationException, match="only asymmetric keys"):
        call("GetPublicKeyCertificate", KeyIdentifier=symmetric)


def test_rsa_root_import(call: Call) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa root")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(rsa_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(rsa_key, hashes.SHA256())
    )
    attributes = {"KeyUsage": S0, "KeyClass": "PUBLIC_KEY", "KeyAlgorithm": "RSA_2048",
                  "KeyModesOfUse": {"Verify": True}}
    root = call("ImportKey", KeyMaterial={"RootCertificatePublicKey": {
        "KeyAttributes": attributes,
        "PublicKeyCertificate": certificate_to_apc(certificate)}})["Key"]
    assert root["KeyAttributes"]["KeyAlgorithm"] == "RSA_2048"
    assert root["KeyCheckValue"] == public_kcv(certificate)
    with pytest.raises(ValidationException, match="does not match the certificate's key"):
        call("ImportKey", KeyMaterial={"RootCertificatePublicKey": {
            "KeyAttributes": dict(attributes, KeyAlgorithm="RSA_4096"),
            "PublicKeyCertificate": certificate_to_apc(certificate)}})
    # a root whose self-signature does not verify is refused
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(rsa_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(other_key, hashes.SHA256())
    )
    with pytest.raises(ValidationException, match="not signed by the expected issuer"):
        call("ImportKey", KeyMaterial={"RootCertificatePublicKey": {
            "KeyAttributes": attributes, "PublicKeyCertificate": certificate_to_apc(forged)}})
