"""The account CA, GetPublicKeyCertificate's leaves, imported roots and trusted
certificates, and the chain checks other modules run (spec 5.3, 5.5).

For other modules: :func:`certificate_authority` (an imported root or trusted certificate
named by an identifier), :func:`load_certificate` (APC's base64-of-PEM form),
:func:`check_ca_strength` and :func:`verify_issued_by`.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apckx import errors
from apckx.crypto import certs
from apckx.emulator.control import rsa_keys
from apckx.emulator.control.account import AccountState, locked
from apckx.emulator.control.common import (
    DAY_SECONDS,
    RSA_ALGORITHMS,
    key_algorithm_of,
    public_key_kcv,
    public_key_strength,
    refusals,
    to_datetime,
)
from apckx.emulator.control.key_exchange.common import ImportRequest, Params
from apckx.emulator.control.keys import check_key_quota
from apckx.emulator.control.records import (
    CREATE_COMPLETE,
    S0,
    AccountCa,
    KeyRecord,
    all_modes,
    true_modes,
)
from apckx.emulator.control.tags import check_tags
from apckx.emulator.exceptions import ValidationException

_ACCOUNT_CA_DAYS = 5 * 365
_ACCOUNT_CA_RENEW_DAYS = 90
_LEAF_DAYS = 90  # spec 5.5: "valid for 90 days", cached while >= 30 days remain
_LEAF_MIN_REMAINING_DAYS = 30
_BACKDATE_SECONDS = 60.0


# --- the account CA and GetPublicKeyCertificate -------------------------------------------


def current_account_ca(account: AccountState) -> AccountCa:
    """The account's ECC P-521 root, issued (or renewed 90 days before expiry) on demand."""
    now = account.now()
    ca = account.account_ca
    if ca is not None and ca.not_after - now >= _ACCOUNT_CA_RENEW_DAYS * DAY_SECONDS:
        return ca
    ca_key = ec.generate_private_key(ec.SECP521R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "apckx emulator"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME,
                           "AWS Payment Cryptography (emulated)"),
        x509.NameAttribute(NameOID.COMMON_NAME, account.account_id),
    ])
    serial = x509.random_serial_number()
    not_after = now + _ACCOUNT_CA_DAYS * DAY_SECONDS
    public_key = ca_key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(public_key).serial_number(serial)
        .not_valid_before(to_datetime(now - _BACKDATE_SECONDS))
        .not_valid_after(to_datetime(not_after))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True,
            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                       critical=False)
        .sign(ca_key, hashes.SHA512())
    )
    ca = AccountCa(
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        serial=serial, not_after=not_after,
        private_key_pem=ca_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode(),
    )
    account.save_account_ca(ca)
    return ca


def _issue_leaf(account: AccountState, key: KeyRecord, ca: AccountCa) -> KeyRecord:
    now = account.now()
    public_key = key.private_key().public_key()
    ca_certificate = ca.certificate()
    not_after = now + _LEAF_DAYS * DAY_SECONDS
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, account.account_id),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, str(secrets.randbelow(10**10)).zfill(10)),
    ])
    ca_ski = ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(ca_certificate.subject).public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(to_datetime(now - _BACKDATE_SECONDS))
        .not_valid_after(to_datetime(not_after))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=True, key_cert_sign=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                       critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski.value),
            critical=False)
        .sign(ca.private_key(), hashes.SHA512())  # ecdsa-with-SHA512
    )
    return account.update_key(
        key, leaf_certificate_apc=certs.certificate_to_apc(certificate),
        leaf_not_after=not_after, leaf_ca_serial=ca.serial,
    )


@locked
def get_public_key_certificate(account: AccountState, identifier: str) -> tuple[str, str]:
    """(KeyCertificate, KeyCertificateChain), both base64 of PEM (spec 5.5)."""
    key = account.resolve_key(identifier)
    if key.key_state != CREATE_COMPLETE:
        raise ValidationException(
            f"Key {key.arn} is not in CREATE_COMPLETE state (it is {key.key_state})"
        )
    if key.key_class == "PUBLIC_KEY" and key.certificate_apc is not None:
        chain = key.certificate_apc
        if key.issuer_key_arn is not None:
            issuer = account.keys.get(key.issuer_key_arn.rsplit("/", 1)[-1])
            if issuer is not None and issuer.certificate_apc is not None:
                chain = issuer.certificate_apc
        return key.certificate_apc, chain
    if key.key_class != "ASYMMETRIC_KEY_PAIR":
        raise ValidationException(
            f"Key {key.arn} is a {key.key_class}: only asymmetric keys have certificates"
        )
    if key.key_algorithm in RSA_ALGORITHMS:
        return rsa_keys.rsa_public_key_certificate(account, key)
    ca = current_account_ca(account)
    now = account.now()
    if (key.leaf_certificate_apc is None or key.leaf_ca_serial != ca.serial
            or key.leaf_not_after is None
            or key.leaf_not_after - now < _LEAF_MIN_REMAINING_DAYS * DAY_SECONDS):
        key = _issue_leaf(account, key, ca)
    assert key.leaf_certificate_apc is not None  # noqa: S101 (just issued)
    chain_apc = base64.b64encode(ca.certificate_pem.rstrip("\n").encode()).decode()
    return key.leaf_certificate_apc, chain_apc


# --- certificate checks other modules share ------------------------------------------------


def load_certificate(certificate_apc: str, what: str) -> x509.Certificate:
    """A certificate in APC's form (base64 of the PEM text); ValidationException otherwise."""
    if certificate_apc.lstrip().startswith("-----BEGIN"):
        raise ValidationException(
            f"{what} must be the base64 encoding of the PEM text, not the PEM itself"
        )
    try:
        certificate: x509.Certificate = certs.certificate_from_apc(certificate_apc)
    except (errors.ApckxError, ValueError):
        raise ValidationException(
            f"{what} is not a base64-encoded PEM X.509 certificate"
        ) from None
    return certificate


def check_validity_window(account: AccountState, certificate: x509.Certificate,
                          what: str) -> None:
    """Refuse a certificate that is not yet valid or has expired, at the emulator clock."""
    now = to_datetime(account.now())
    if now < certificate.not_valid_before_utc:
        raise ValidationException(f"{what} is not valid yet (notBefore is in the future)")
    if now > certificate.not_valid_after_utc:
        raise ValidationException(f"{what} has expired")


def verify_issued_by(account: AccountState, certificate: x509.Certificate,
                     issuer: x509.Certificate, what: str) -> None:
    """Signature by ``issuer`` (and issuer name) plus the validity window, at the
    emulator's clock."""
    with refusals(what):
        certs.verify_certificate(certificate, issuer, now=to_datetime(account.now()))


def check_ca_strength(ca_certificate: x509.Certificate, certificate: x509.Certificate,
                      what: str) -> None:
    """A CA of the same family (RSA/ECC) and at least the strength of what it signs."""
    ca_family, ca_bits = public_key_strength(ca_certificate.public_key())
    family, bits = public_key_strength(certificate.public_key())
    if ca_family != family:
        raise ValidationException(
            f"{what}: an {family} certificate must be issued by an {family} certificate "
            f"authority of equal or greater strength (the CA is {ca_family})"
        )
    if ca_bits < bits:
        raise ValidationException(
            f"{what}: the certificate authority ({ca_bits}-bit strength) is weaker than "
            f"the certificate it signs ({bits}-bit)"
        )


def certificate_authority(account: AccountState, identifier: str, role: str
                          ) -> tuple[KeyRecord, x509.Certificate]:
    """The imported, enabled S0 root or trusted certificate named by ``identifier``."""
    ca = account.resolve_usable_key(identifier, role)
    if (ca.key_class != "PUBLIC_KEY" or ca.key_usage != S0 or not ca.modes.get("Verify")
            or ca.public_key_role not in ("ROOT", "TRUSTED") or ca.certificate_apc is None):
        raise ValidationException(
            f"{role} {ca.arn} is not an imported root or trusted certificate "
            f"(PUBLIC_KEY, {S0}, Verify)"
        )
    return ca, load_certificate(ca.certificate_apc, role)


# --- ImportKey RootCertificatePublicKey / TrustedCertificatePublicKey ----------------------


def _check_public_key_attributes(key_attributes: Mapping[str, Any],
                                 certificate: x509.Certificate, what: str) -> dict[str, bool]:
    modes = all_modes(key_attributes["KeyModesOfUse"])
    if key_attributes["KeyClass"] != "PUBLIC_KEY":
        raise ValidationException(f"{what}: KeyClass must be PUBLIC_KEY")
    if key_attributes["KeyUsage"] != S0:
        raise ValidationException(f"{what}: KeyUsage must be {S0}")
    if true_modes(modes) != {"Verify"}:
        raise ValidationException(f"{what}: KeyModesOfUse must be {{Verify: true}} only")
    actual = key_algorithm_of(certificate.public_key())
    if actual is None:
        raise ValidationException(f"{what}: the certificate's public key is not RSA or "
                                  "ECC on a NIST P-256/P-384/P-521 curve")
    if key_attributes["KeyAlgorithm"] != actual:
        raise ValidationException(
            f"{what}: KeyAlgorithm {key_attributes['KeyAlgorithm']} does not match the "
            f"certificate's key ({actual})"
        )
    return modes


def _new_public_key(account: AccountState, certificate_apc: str,
                    certificate: x509.Certificate, key_attributes: Mapping[str, Any],
                    modes: dict[str, bool], role: str, issuer_arn: str | None, enabled: bool,
                    tags: Sequence[tuple[str, str]]) -> KeyRecord:
    tag_map = check_tags(tags)
    check_key_quota(account)
    now = account.now()
    key = KeyRecord(
        key_id=account.new_key_id(), account_id=account.account_id, region=account.region,
        key_usage=S0, key_class="PUBLIC_KEY", key_algorithm=key_attributes["KeyAlgorithm"],
        modes=modes, key_check_value=public_key_kcv(certificate.public_key()),  # type: ignore[arg-type]
        key_check_value_algorithm="SHA_1", enabled=enabled, exportable=False,
        key_origin="EXTERNAL", create_timestamp=now,
        usage_start_timestamp=now if enabled else None, exportability="N",
        public_key_role=role, certificate_apc=certificate_apc, issuer_key_arn=issuer_arn,
        tags=tag_map,
    )
    return account.add_key(key)


@locked
def import_root_certificate(account: AccountState, member: Params,
                            request: ImportRequest) -> KeyRecord:
    """ImportKey RootCertificatePublicKey (spec 5.3): an S0/Verify public key."""
    what = "RootCertificatePublicKey"
    key_attributes = member["KeyAttributes"]
    certificate_apc: str = member["PublicKeyCertificate"]
    certificate = load_certificate(certificate_apc, f"{what}.PublicKeyCertificate")
    modes = _check_public_key_attributes(key_attributes, certificate, what)
    check_validity_window(account, certificate, f"{what}.PublicKeyCertificate")
    if certificate.issuer == certificate.subject:
        verify_issued_by(account, certificate, certificate, f"{what}.PublicKeyCertificate")
    return _new_public_key(account, certificate_apc, certificate, key_attributes, modes,
                           "ROOT", None, request.enabled, request.tags)


@locked
def import_trusted_certificate(account: AccountState, member: Params,
                               request: ImportRequest) -> KeyRecord:
    """ImportKey TrustedCertificatePublicKey: a certificate signed by an imported CA."""
    what = "TrustedCertificatePublicKey"
    key_attributes = member["KeyAttributes"]
    certificate_apc: str = member["PublicKeyCertificate"]
    ca, ca_certificate = certificate_authority(
        account, member["CertificateAuthorityPublicKeyIdentifier"],
        "CertificateAuthorityPublicKeyIdentifier")
    certificate = load_certificate(certificate_apc, f"{what}.PublicKeyCertificate")
    modes = _check_public_key_attributes(key_attributes, certificate, what)
    check_validity_window(account, certificate, f"{what}.PublicKeyCertificate")
    check_ca_strength(ca_certificate, certificate, what)
    verify_issued_by(account, certificate, ca_certificate, f"{what}.PublicKeyCertificate")
    return _new_public_key(account, certificate_apc, certificate, key_attributes, modes,
                           "TRUSTED", ca.arn, request.enabled, request.tags)
