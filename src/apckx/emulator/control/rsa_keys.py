"""RSA key pairs (CreateKey for D1, S0 and K2 keys), their certificates under the account's
RSA CA, GetCertificateSigningRequest, and the RSA account CA itself (issue 9; spec 5.5).

The RSA account CA is an RSA-4096 root, made on first use (never at start-up) and kept in
the store as an ``rsa_account_ca`` record; leaves for key pairs are valid 90 days and
sha512WithRSAEncryption, as GetPublicKeyCertificate's documented example. The short-lived
certificates of import and export tokens come from :func:`issue_rsa_leaf` too. Private keys
live only in records, which the SQLite store seals with AES-GCM; nothing here prints them.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apckx import errors
from apckx.crypto import certs
from apckx.crypto.attributes import code_from_modes
from apckx.emulator.control.account import AccountState, locked
from apckx.emulator.control.common import (
    DAY_SECONDS,
    RSA_ALGORITHMS,
    public_key_kcv,
    to_datetime,
)
from apckx.emulator.control.keys import check_key_quota
from apckx.emulator.control.records import (
    CREATE_COMPLETE,
    S0,
    KeyRecord,
    StoredCa,
    true_modes,
)
from apckx.emulator.control.tags import check_tags
from apckx.emulator.exceptions import InternalServerException, ValidationException

D1 = "TR31_D1_ASYMMETRIC_KEY_FOR_DATA_ENCRYPTION"
K2 = "TR31_K2_TR34_ASYMMETRIC_KEY"

#: UG keys-validattributes, asymmetric keys: the TR-31 mode codes each RSA usage allows
#: (B = {Encrypt, Decrypt, Wrap, Unwrap}, E = {Encrypt, Wrap}, D = {Decrypt, Unwrap}).
RSA_USAGE_MODES: dict[str, frozenset[str]] = {
    D1: frozenset("BED"),
    K2: frozenset("BED"),
    S0: frozenset("SV"),
}
RSA_CA_KIND = "rsa_account_ca"
_RSA_CA_BITS = 4096  # spec 5.5: the documented root is RSA-4096
_RSA_CA_DAYS = 5 * 365
_RSA_CA_RENEW_DAYS = 90
_LEAF_DAYS = 90
_LEAF_MIN_REMAINING_DAYS = 30
_BACKDATE_SECONDS = 60.0


@dataclass
class RsaAccountCa(StoredCa):
    """The account's RSA-4096 root for one region."""

    def private_key(self) -> rsa.RSAPrivateKey:
        key = self._load_private_key()
        assert isinstance(key, rsa.RSAPrivateKey)  # noqa: S101 (we wrote it)
        return key

    def chain_apc(self) -> str:
        """The chain as GetPublicKeyCertificate returns it: base64 of the root's PEM."""
        return base64.b64encode(self.certificate_pem.rstrip("\n").encode()).decode()


def private_key_to_pem(key: rsa.RSAPrivateKey) -> str:
    """PKCS#8 PEM for a record (the store seals records; the text is never printed)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def rsa_private_key(key: KeyRecord) -> rsa.RSAPrivateKey:
    """The RSA private key of a key pair (ValidationException for anything else)."""
    if key.private_key_pem is None:
        raise ValidationException(f"Key {key.arn} holds no private key")
    private = serialization.load_pem_private_key(key.private_key_pem.encode(), password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ValidationException(f"Key {key.arn} is not an RSA key pair")
    return private


# --- CreateKey ------------------------------------------------------------------------------


def check_rsa_key_attributes(usage: str, key_class: str, algorithm: str,
                             modes: Mapping[str, bool]) -> str:
    """Refuse an RSA KeyAttributes combination APC does not allow; return the mode code."""
    if usage not in RSA_USAGE_MODES:
        raise ValidationException(
            f"{algorithm} keys are for {D1}, {S0} or {K2}, not {usage}"
        )
    if key_class != "ASYMMETRIC_KEY_PAIR":
        raise ValidationException(
            f"CreateKey makes {algorithm} keys as ASYMMETRIC_KEY_PAIR (got {key_class}); "
            "import public keys as certificates with ImportKey"
        )
    try:
        code = code_from_modes(modes)
    except errors.InputError as exc:
        raise ValidationException(f"invalid KeyAttributes: {exc}") from None
    if code not in RSA_USAGE_MODES[usage]:
        allowed = {"B": "{Encrypt,Decrypt,Wrap,Unwrap}", "E": "{Encrypt,Wrap}",
                   "D": "{Decrypt,Unwrap}", "S": "{Sign}", "V": "{Verify}"}
        options = ", ".join(allowed[c] for c in sorted(RSA_USAGE_MODES[usage]))
        raise ValidationException(
            f"KeyModesOfUse {{{','.join(sorted(true_modes(modes)))}}} is not valid for "
            f"{usage}: use {options}"
        )
    return code


def create_rsa_key_pair(account: AccountState, *, usage: str, key_class: str, algorithm: str,
                        modes: dict[str, bool], exportable: bool, enabled: bool,
                        tags: Sequence[tuple[str, str]]) -> KeyRecord:
    """CreateKey for RSA_2048/3072/4096 (called by ``keys.create_key`` under the lock).

    The KCV is SHA_1 over the public key, as for every key pair (spec 6). RSA key pairs are
    never exportable by the emulator (ExportKey carries symmetric keys only)."""
    check_rsa_key_attributes(usage, key_class, algorithm, modes)
    tag_map = check_tags(tags)
    check_key_quota(account)
    private_key = certs.generate_rsa_key(algorithm)
    now = account.now()
    key = KeyRecord(
        key_id=account.new_key_id(), account_id=account.account_id, region=account.region,
        key_usage=usage, key_class=key_class, key_algorithm=algorithm, modes=modes,
        key_check_value=public_key_kcv(private_key.public_key()),
        key_check_value_algorithm="SHA_1", enabled=enabled, exportable=exportable,
        key_origin="AWS_PAYMENT_CRYPTOGRAPHY", create_timestamp=now,
        usage_start_timestamp=now if enabled else None,
        exportability="E" if exportable else "N", tags=tag_map,
        private_key_pem=private_key_to_pem(private_key),
    )
    return account.add_key(key)


# --- the RSA account CA and its leaves ------------------------------------------------------


def current_rsa_account_ca(account: AccountState) -> RsaAccountCa:
    """The account's RSA-4096 root, made on first use and renewed 90 days before expiry."""
    now = account.now()
    stored = account.records.get(RSA_CA_KIND, {}).get("ca")
    if stored is not None:
        ca = RsaAccountCa.from_record(stored)
        if ca.not_after - now >= _RSA_CA_RENEW_DAYS * DAY_SECONDS:
            return ca
    ca_key = certs.generate_rsa_key(_RSA_CA_BITS)
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "apckx emulator"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME,
                           "AWS Payment Cryptography (emulated)"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Virginia"),
        x509.NameAttribute(NameOID.COMMON_NAME, account.account_id),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Arlington"),
    ])
    serial = x509.random_serial_number()
    not_after = now + _RSA_CA_DAYS * DAY_SECONDS
    certificate = certs.issue_rsa_certificate(
        ca_key, None, ca_key.public_key(), name, purpose="ca", now=to_datetime(now),
        days=_RSA_CA_DAYS, hash_algorithm=hashes.SHA512(), serial_number=serial,
    )
    ca = RsaAccountCa(
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        serial=serial, not_after=not_after, private_key_pem=private_key_to_pem(ca_key),
    )
    account.save_record(RSA_CA_KIND, "ca", ca.to_record())
    return ca


def issue_rsa_leaf(account: AccountState, ca: RsaAccountCa, public_key: rsa.RSAPublicKey, *,
                   days: float, key_encipherment: bool = True) -> x509.Certificate:
    """A leaf under the RSA account CA: subject CN=<account>, serialNumber=<10 digits>;
    CA:FALSE, digitalSignature (+ keyEncipherment), serverAuth/clientAuth, SHA-512."""
    now = account.now()
    ca_certificate = ca.certificate()
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, account.account_id),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, str(secrets.randbelow(10**10)).zfill(10)),
    ])
    ca_ski = ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    return (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(ca_certificate.subject).public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(to_datetime(now - _BACKDATE_SECONDS))
        .not_valid_after(to_datetime(min(now + days * DAY_SECONDS, ca.not_after)))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False,
            key_encipherment=key_encipherment, data_encipherment=False, key_agreement=False,
            key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski.value),
            critical=False)
        .sign(ca.private_key(), hashes.SHA512())
    )


def rsa_public_key_certificate(account: AccountState, key: KeyRecord) -> tuple[str, str]:
    """GetPublicKeyCertificate for an RSA key pair: a cached 90-day leaf (reissued with
    under 30 days left, or under a new CA) and the RSA root as the chain."""
    ca = current_rsa_account_ca(account)
    now = account.now()
    if (key.leaf_certificate_apc is None or key.leaf_ca_serial != ca.serial
            or key.leaf_not_after is None
            or key.leaf_not_after - now < _LEAF_MIN_REMAINING_DAYS * DAY_SECONDS):
        leaf = issue_rsa_leaf(account, ca, rsa_private_key(key).public_key(), days=_LEAF_DAYS)
        key = account.update_key(
            key, leaf_certificate_apc=certs.certificate_to_apc(leaf),
            leaf_not_after=leaf.not_valid_after_utc.timestamp(), leaf_ca_serial=ca.serial,
        )
    if key.leaf_certificate_apc is None:  # issued just above when missing
        raise InternalServerException("the key's certificate could not be issued")
    return key.leaf_certificate_apc, ca.chain_apc()


# --- GetCertificateSigningRequest -----------------------------------------------------------


@locked
def get_certificate_signing_request(account: AccountState, identifier: str,
                                    signing_algorithm: str,
                                    subject: Mapping[str, Any]) -> str:
    """A PKCS#10 request for an RSA key pair, signed with the requested hash, for the
    requested subject; base64 of the PEM (UG keyexchange-byoca)."""
    key = account.resolve_usable_key(identifier, "KeyIdentifier")
    if key.key_class != "ASYMMETRIC_KEY_PAIR" or key.key_algorithm not in RSA_ALGORITHMS:
        raise ValidationException(
            f"KeyIdentifier {key.arn} is a {key.key_class} {key.key_algorithm}: certificate "
            "signing requests are made for RSA key pairs (ASYMMETRIC_KEY_PAIR)"
        )
    if key.key_state != CREATE_COMPLETE:  # resolve_usable_key checked; kept for clarity
        raise ValidationException(f"KeyIdentifier {key.arn} is not in CREATE_COMPLETE state")
    try:
        name = certs.subject_from_apc({k: str(v) for k, v in subject.items()})
        csr = certs.build_csr(rsa_private_key(key), name, signing_algorithm)
    except errors.ApckxError as exc:
        raise ValidationException(f"CertificateSubject: {exc}") from None
    return certs.csr_to_apc(csr)
