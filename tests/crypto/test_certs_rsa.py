"""RSA certificates for TR-34 and RSA wrap: sender CA, KDH signing and KRD leaves, CSRs."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from apckx.crypto import certs
from apckx.errors import CertificateError, InputError

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def sender() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    return certs.new_rsa_sender_ca("RSA_3072", now=NOW)


def test_profiles_and_chain(sender: tuple[rsa.RSAPrivateKey, x509.Certificate]) -> None:
    ca_key, ca_cert = sender
    kdh_key, kdh_cert = certs.new_rsa_signing_leaf(ca_key, ca_cert, now=NOW)
    krd_key, krd_cert = certs.new_rsa_wrapping_leaf(ca_key, ca_cert, "RSA_3072", now=NOW)
    assert kdh_key.key_size == 2048 and krd_key.key_size == 3072
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    kdh_usage = kdh_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    krd_usage = krd_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert kdh_usage.digital_signature and not kdh_usage.key_encipherment
    assert krd_usage.key_encipherment and not krd_usage.digital_signature
    assert kdh_cert.public_key() != ca_cert.public_key()  # a separate signing key
    for leaf in (kdh_cert, krd_cert):
        certs.verify_rsa_chain(leaf, ca_cert, now=NOW)
        certs.verify_rsa_chain(leaf, [ca_cert], now=NOW, require_self_signed_root=True)
    under_leaf = certs.issue_rsa_certificate(
        kdh_key, kdh_cert, krd_key.public_key(), krd_cert.subject, purpose="wrapping", now=NOW
    )
    with pytest.raises(CertificateError, match="not a CA"):
        certs.verify_rsa_chain(under_leaf, kdh_cert, now=NOW)
    with pytest.raises(CertificateError, match="not by the CA"):
        certs.verify_rsa_chain(krd_cert, kdh_cert, now=NOW)
    other_key, other_ca = certs.new_rsa_sender_ca("RSA_2048", common_name="other", now=NOW)
    with pytest.raises(CertificateError):
        certs.verify_rsa_chain(kdh_cert, other_ca, now=NOW)
    with pytest.raises(CertificateError, match="expired"):
        certs.verify_rsa_chain(kdh_cert, ca_cert, now=NOW + dt.timedelta(days=400))
    with pytest.raises(InputError, match="stronger"):
        certs.new_rsa_wrapping_leaf(other_key, other_ca, "RSA_4096", now=NOW)
    # An issuer weaker than its child is refused even if the signature is good.
    strong_leaf = certs.issue_rsa_certificate(
        other_key,
        other_ca,
        krd_key.public_key(),
        krd_cert.subject,
        purpose="wrapping",
        now=NOW,
    )
    with pytest.raises(CertificateError, match="weaker"):
        certs.verify_rsa_chain(strong_leaf, other_ca, now=NOW)


def test_pem_round_trip(sender: tuple[rsa.RSAPrivateKey, x509.Certificate]) -> None:
    ca_key, _ = sender
    pem = certs.rsa_private_key_to_pem(ca_key, b"passphrase")
    assert b"ENCRYPTED" in pem
    loaded = certs.load_rsa_private_key_pem(pem, b"passphrase")
    assert loaded.public_key() == ca_key.public_key()
    with pytest.raises(InputError, match="passphrase"):
        certs.load_rsa_private_key_pem(pem)


def test_csr(sender: tuple[rsa.RSAPrivateKey, x509.Certificate]) -> None:
    ca_key, _ = sender
    subject = certs.subject_from_apc({"CommonName": "apckx", "Country": "US", "City": "Oslo"})
    csr = certs.build_csr(ca_key, subject, "SHA512")
    text = certs.csr_to_apc(csr)
    parsed = certs.csr_from_apc(text)
    assert parsed.subject == subject
    assert parsed.signature_hash_algorithm is not None
    assert parsed.signature_hash_algorithm.name == "sha512"
    with pytest.raises(InputError, match="CommonName"):
        certs.subject_from_apc({"Country": "US"})
    with pytest.raises(InputError, match="Nickname"):
        certs.subject_from_apc({"CommonName": "x", "Nickname": "y"})
    with pytest.raises(InputError):
        certs.build_csr(ca_key, subject, "MD5")
    with pytest.raises(CertificateError):
        certs.csr_from_apc("bm90IGEgY3Ny")
