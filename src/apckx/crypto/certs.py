"""Sender certificates for APC's ECDH exchange: a root CA and a separate ECDH leaf.

Pure: keys and certificates in, objects and bytes out; files are ``apckx.keystore``'s job.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from apckx.crypto.ecdh import curve_class, curve_name, normalize_curve
from apckx.errors import CertificateError, InputError

#: ECDSA signature hash by curve (FIPS 186-5 / SP 800-57 strength match).
SIGNATURE_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "P256": hashes.SHA256,
    "P384": hashes.SHA384,
    "P521": hashes.SHA512,
}
_BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock skew at the receiver

IssuerKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    return now if now.tzinfo else now.replace(tzinfo=dt.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _describe(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else cert.subject.rfc4514_string()
    return repr(value if isinstance(value, str) else value.decode("utf-8", "replace"))


def new_sender_ca(
    curve: str,
    *,
    common_name: str = "apckx sender root",
    now: dt.datetime | None = None,
    days: int = 3650,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed ECDSA root CA on ``curve`` (CA:TRUE critical; keyCertSign, cRLSign)."""
    name = normalize_curve(curve)
    key = ec.generate_private_key(curve_class(name)())
    start = _now(now)
    subject = _name(common_name)
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - _BACKDATE)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, SIGNATURE_HASHES[name]())
    )
    return key, cert


def new_ecdh_leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    curve: str,
    *,
    common_name: str = "apckx sender ECDH",
    now: dt.datetime | None = None,
    days: int = 365,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A separate ECDH key (keyAgreement, CA:FALSE) certified by the sender CA.

    The leaf never outlives its CA.
    """
    name = normalize_curve(curve)
    if curve_name(ca_key) != name:
        raise InputError(f"the sender CA is on {curve_name(ca_key)}, not {name}")
    key = ec.generate_private_key(curve_class(name)())
    start = _now(now)
    not_after = min(start + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, SIGNATURE_HASHES[name]())
    )
    return key, cert


# --- PEM and APC's wire form ----------------------------------------------------------------


def private_key_to_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted with the best available scheme when a passphrase is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def load_private_key_pem(
    data: bytes, passphrase: bytes | None = None
) -> ec.EllipticCurvePrivateKey:
    """Load an EC private key from PEM; errors say what to do, never what the key is."""
    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError:
        if passphrase:
            raise InputError(
                "the private key is not encrypted: load it without a passphrase"
            ) from None
        raise InputError("the private key is encrypted: give its passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise InputError(
            "cannot read the private key: wrong passphrase, or not a PEM private key"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InputError("the private key is not an EC key (ECDH needs P256, P384 or P521)")
    curve_name(key)
    return key


def certificate_to_pem(cert: x509.Certificate) -> bytes:
    """The certificate as PEM bytes."""
    return cert.public_bytes(serialization.Encoding.PEM)


def load_certificate_pem(data: bytes) -> x509.Certificate:
    """One certificate from PEM (the first, if there are several)."""
    certs = load_certificates_pem(data)
    return certs[0]


def load_certificates_pem(data: bytes) -> list[x509.Certificate]:
    """Every certificate in PEM data, in order."""
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateError(
            "not a PEM certificate (expected -----BEGIN CERTIFICATE-----)"
        ) from None
    if not certs:
        raise CertificateError("no certificate found in the PEM data")
    return certs


def certificate_to_apc(cert: x509.Certificate) -> str:
    """APC's wire form: base64 of the PEM text (spec section 5.3)."""
    return base64.b64encode(certificate_to_pem(cert)).decode("ascii")


def _pem_from_apc(text: str) -> bytes:
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        return stripped.encode("ascii")
    try:
        return base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        raise CertificateError("certificate from APC is not base64 of PEM text") from None


def certificate_from_apc(text: str) -> x509.Certificate:
    """Decode APC's base64-of-PEM certificate (GetPublicKeyCertificate's KeyCertificate)."""
    return load_certificate_pem(_pem_from_apc(text))


def certificates_from_apc(text: str) -> list[x509.Certificate]:
    """Decode APC's KeyCertificateChain (base64 of one or more PEM certificates)."""
    return load_certificates_pem(_pem_from_apc(text))


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """SHA-256 over the DER certificate, upper-case hex without colons."""
    return cert.fingerprint(hashes.SHA256()).hex().upper()


# --- verification ---------------------------------------------------------------------------


def _verify_signature(cert: x509.Certificate, issuer_key: object) -> None:
    hash_algorithm = cert.signature_hash_algorithm
    if hash_algorithm is None:
        raise CertificateError(f"certificate {_describe(cert)} uses an unsupported signature")
    if isinstance(issuer_key, ec.EllipticCurvePublicKey):
        issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hash_algorithm))
    elif isinstance(issuer_key, rsa.RSAPublicKey):
        issuer_key.verify(
            cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hash_algorithm
        )
    else:
        raise CertificateError("issuer key is neither EC nor RSA")


def verify_certificate(
    cert: x509.Certificate,
    issuer_cert_or_public_key: x509.Certificate | IssuerKey,
    *,
    now: dt.datetime | None = None,
    expected_curve: str | None = None,
) -> None:
    """Check the signature (by the issuer), validity window and, if given, the key's curve."""
    issuer = issuer_cert_or_public_key
    if isinstance(issuer, x509.Certificate):
        if cert.issuer != issuer.subject:
            raise CertificateError(
                f"certificate {_describe(cert)} was issued by {cert.issuer.rfc4514_string()!r}, "
                f"not by {issuer.subject.rfc4514_string()!r}"
            )
        issuer_key: object = issuer.public_key()
    else:
        issuer_key = issuer
    try:
        _verify_signature(cert, issuer_key)
    except (InvalidSignature, ValueError, TypeError):
        raise CertificateError(
            f"certificate {_describe(cert)} is not signed by the expected issuer"
        ) from None
    moment = _now(now)
    if moment < cert.not_valid_before_utc:
        raise CertificateError(
            f"certificate {_describe(cert)} is not valid before "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )
    if moment > cert.not_valid_after_utc:
        raise CertificateError(
            f"certificate {_describe(cert)} expired on "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        )
    if expected_curve is not None:
        expected = normalize_curve(expected_curve)
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise CertificateError(f"certificate {_describe(cert)} has no EC key ({expected})")
        try:
            actual = curve_name(key)
        except InputError:
            actual = key.curve.name
        if actual != expected:
            raise CertificateError(
                f"certificate {_describe(cert)} has a {actual} key, expected {expected}"
            )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _ec_bits(cert: x509.Certificate) -> int | None:
    key = cert.public_key()
    return key.curve.key_size if isinstance(key, ec.EllipticCurvePublicKey) else None


def verify_apc_chain(
    leaf: x509.Certificate,
    chain_root: x509.Certificate | Sequence[x509.Certificate],
    *,
    expected_curve: str,
    now: dt.datetime | None = None,
) -> None:
    """Verify APC's leaf certificate up to the self-signed root of its chain.

    Each issuer must be a CA, sign its child, be within its validity window and (for EC)
    be at least as strong as its child (UG keys-import); the leaf must be on
    ``expected_curve`` (the curve of our ECDH key).
    """
    chain = [chain_root] if isinstance(chain_root, x509.Certificate) else list(chain_root)
    if not chain:
        raise CertificateError("APC's certificate chain is empty")
    current = leaf
    for _ in range(len(chain) + 1):
        issuer = next((c for c in chain if c.subject == current.issuer), None)
        if issuer is None:
            raise CertificateError(
                f"certificate {_describe(current)} was issued by "
                f"{current.issuer.rfc4514_string()!r}, which is not in APC's chain"
            )
        if not _is_ca(issuer):
            raise CertificateError(f"issuer {_describe(issuer)} is not a CA certificate")
        verify_certificate(
            current,
            issuer,
            now=now,
            expected_curve=expected_curve if current is leaf else None,
        )
        issuer_bits, child_bits = _ec_bits(issuer), _ec_bits(current)
        if issuer_bits is not None and child_bits is not None and issuer_bits < child_bits:
            raise CertificateError(
                f"issuer {_describe(issuer)} ({issuer_bits}-bit curve) is weaker than "
                f"{_describe(current)} ({child_bits}-bit)"
            )
        if issuer.subject == issuer.issuer:
            verify_certificate(issuer, issuer, now=now)  # the root signs itself
            return
        current = issuer
    raise CertificateError("APC's certificate chain does not end in a self-signed root")


MIN_RSA_ROOT_BITS = 2048


def _key_usage_of(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def check_receiver_certificate_profile(
    leaf: x509.Certificate,
    chain: x509.Certificate | Sequence[x509.Certificate],
    *,
    min_rsa_bits: int = MIN_RSA_ROOT_BITS,
) -> None:
    """What an unpinned receiver chain must also show (trust on first use, issue 13).

    The ECDH leaf: KeyUsage with keyAgreement, and not a CA (BasicConstraints CA:FALSE or
    absent). Every issuer in the chain: KeyUsage with keyCertSign; an RSA issuer at least
    ``min_rsa_bits``. Raises ``CertificateError`` saying what is missing and that pinning the
    root (``--trust-apc-root``) is the way to accept a chain that lacks it.
    """
    hint = "; if this is your APC account's chain, pin its root with --trust-apc-root"
    usage = _key_usage_of(leaf)
    if usage is None or not usage.key_agreement:
        raise CertificateError(
            f"APC's certificate {_describe(leaf)} does not allow keyAgreement (KeyUsage){hint}"
        )
    if _is_ca(leaf):
        raise CertificateError(
            f"APC's certificate {_describe(leaf)} is a CA (CA:TRUE), not an ECDH key{hint}"
        )
    issuers = [chain] if isinstance(chain, x509.Certificate) else list(chain)
    for issuer in issuers:
        issuer_usage = _key_usage_of(issuer)
        if issuer_usage is None or not issuer_usage.key_cert_sign:
            raise CertificateError(
                f"issuer {_describe(issuer)} in APC's chain lacks keyCertSign (KeyUsage){hint}"
            )
        key = issuer.public_key()
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < min_rsa_bits:
            raise CertificateError(
                f"issuer {_describe(issuer)} in APC's chain has a {key.key_size}-bit RSA key "
                f"(at least {min_rsa_bits} needed){hint}"
            )


__all__ = [
    "MIN_RSA_ROOT_BITS",
    "SIGNATURE_HASHES",
    "certificate_from_apc",
    "certificate_to_apc",
    "certificate_to_pem",
    "certificates_from_apc",
    "check_receiver_certificate_profile",
    "fingerprint_sha256",
    "load_certificate_pem",
    "load_certificates_pem",
    "load_private_key_pem",
    "new_ecdh_leaf",
    "new_sender_ca",
    "private_key_to_pem",
    "verify_apc_chain",
    "verify_certificate",
]


# --- RSA: TR-34 and RSA wrap (sender CA, KDH signing leaf, KRD wrapping leaf, CSRs) ----------

#: RSA key sizes APC uses, by APC's KeyAlgorithm name.
RSA_KEY_SIZES: dict[str, int] = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
#: CSR / certificate signature hashes by APC's SigningAlgorithm name.
_SignatureHash = hashes.SHA224 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512
RSA_SIGNATURE_HASHES: dict[str, type[_SignatureHash]] = {
    "SHA224": hashes.SHA224,
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}
_CERT_PURPOSES = ("ca", "signing", "wrapping", "signing_and_wrapping")


def _rsa_bits(algorithm_or_bits: str | int) -> int:
    if isinstance(algorithm_or_bits, int):
        if algorithm_or_bits in RSA_KEY_SIZES.values():
            return algorithm_or_bits
    elif algorithm_or_bits in RSA_KEY_SIZES:
        return RSA_KEY_SIZES[algorithm_or_bits]
    raise InputError(
        f"RSA key size {algorithm_or_bits!r} is not one APC uses: RSA_2048, RSA_3072 or RSA_4096"
    )


def generate_rsa_key(algorithm_or_bits: str | int) -> rsa.RSAPrivateKey:
    """A fresh RSA key (e = 65537) of 2048, 3072 or 4096 bits."""
    return rsa.generate_private_key(public_exponent=65537, key_size=_rsa_bits(algorithm_or_bits))


def _key_usage(purpose: str) -> x509.KeyUsage:
    if purpose not in _CERT_PURPOSES:
        raise InputError(f"certificate purpose must be one of {', '.join(_CERT_PURPOSES)}")
    return x509.KeyUsage(
        digital_signature=purpose in ("ca", "signing", "signing_and_wrapping"),
        content_commitment=False,
        key_encipherment=purpose in ("wrapping", "signing_and_wrapping"),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=purpose == "ca",
        crl_sign=purpose == "ca",
        encipher_only=False,
        decipher_only=False,
    )


def issue_rsa_certificate(
    issuer_key: rsa.RSAPrivateKey,
    issuer_cert: x509.Certificate | None,
    public_key: rsa.RSAPublicKey,
    subject: x509.Name,
    *,
    purpose: str,
    now: dt.datetime | None = None,
    days: int = 365,
    hash_algorithm: _SignatureHash | None = None,
    serial_number: int | None = None,
) -> x509.Certificate:
    """An X.509 certificate for an RSA ``public_key`` signed by ``issuer_key``.

    ``issuer_cert`` None means self-signed (``subject`` is also the issuer). ``purpose``:
    "ca" (CA:TRUE, keyCertSign, cRLSign, digitalSignature), "signing" (digitalSignature),
    "wrapping" (keyEncipherment) or "signing_and_wrapping". The certificate never outlives
    its issuer. The hash defaults to SHA-256.
    """
    start = _now(now)
    not_after = start + dt.timedelta(days=days)
    if issuer_cert is not None:
        not_after = min(not_after, issuer_cert.not_valid_after_utc)
    issuer_name = subject if issuer_cert is None else issuer_cert.subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(serial_number or x509.random_serial_number())
        .not_valid_before(start - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=purpose == "ca", path_length=None), critical=True)
        .add_extension(_key_usage(purpose), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    return builder.sign(issuer_key, hash_algorithm or hashes.SHA256())


def new_rsa_sender_ca(
    algorithm_or_bits: str | int = "RSA_2048",
    *,
    common_name: str = "apckx TR-34 sender root",
    now: dt.datetime | None = None,
    days: int = 3650,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A self-signed RSA root CA (CA:TRUE critical; keyCertSign, cRLSign), SHA-256."""
    key = generate_rsa_key(algorithm_or_bits)
    cert = issue_rsa_certificate(
        key, None, key.public_key(), _name(common_name), purpose="ca", now=now, days=days
    )
    return key, cert


def _new_rsa_leaf(
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    algorithm_or_bits: str | int,
    *,
    purpose: str,
    ca_label: str,
    common_name: str,
    now: dt.datetime | None,
    days: int,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A fresh RSA key and its ``purpose`` certificate under the CA (never stronger than it)."""
    bits = _rsa_bits(algorithm_or_bits)
    if bits > ca_key.key_size:
        raise InputError(
            f"the {ca_label} is RSA-{ca_key.key_size}: it cannot certify a stronger RSA-{bits} key"
        )
    key = generate_rsa_key(bits)
    cert = issue_rsa_certificate(
        ca_key,
        ca_cert,
        key.public_key(),
        _name(common_name),
        purpose=purpose,
        now=now,
        days=days,
    )
    return key, cert


def new_rsa_signing_leaf(
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    algorithm_or_bits: str | int = "RSA_2048",
    *,
    common_name: str = "apckx TR-34 KDH signing",
    now: dt.datetime | None = None,
    days: int = 365,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A separate RSA signing key (the TR-34 KDH; digitalSignature, CA:FALSE) under the CA."""
    return _new_rsa_leaf(
        ca_key,
        ca_cert,
        algorithm_or_bits,
        purpose="signing",
        ca_label="sender CA",
        common_name=common_name,
        now=now,
        days=days,
    )


def new_rsa_wrapping_leaf(
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    algorithm_or_bits: str | int = "RSA_3072",
    *,
    common_name: str = "apckx TR-34 KRD",
    now: dt.datetime | None = None,
    days: int = 365,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """An RSA key-transport key (the TR-34 KRD / RSA-wrap receiver; keyEncipherment)."""
    return _new_rsa_leaf(
        ca_key,
        ca_cert,
        algorithm_or_bits,
        purpose="wrapping",
        ca_label="CA",
        common_name=common_name,
        now=now,
        days=days,
    )


def rsa_private_key_to_pem(key: rsa.RSAPrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM of an RSA key, encrypted with the best available scheme if a passphrase."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def load_rsa_private_key_pem(data: bytes, passphrase: bytes | None = None) -> rsa.RSAPrivateKey:
    """Load an RSA private key from PEM; errors say what to do, never what the key is."""
    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError:
        if passphrase:
            raise InputError(
                "the private key is not encrypted: load it without a passphrase"
            ) from None
        raise InputError("the private key is encrypted: give its passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise InputError(
            "cannot read the private key: wrong passphrase, or not a PEM private key"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InputError("the private key is not an RSA key (TR-34 and RSA wrap need RSA)")
    _rsa_bits(key.key_size)
    return key


_CSR_SUBJECT_OIDS: dict[str, x509.ObjectIdentifier] = {
    "CommonName": NameOID.COMMON_NAME,
    "OrganizationUnit": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "Organization": NameOID.ORGANIZATION_NAME,
    "City": NameOID.LOCALITY_NAME,
    "Country": NameOID.COUNTRY_NAME,
    "StateOrProvince": NameOID.STATE_OR_PROVINCE_NAME,
    "EmailAddress": NameOID.EMAIL_ADDRESS,
}


def subject_from_apc(subject: dict[str, str]) -> x509.Name:
    """APC's ``CertificateSubject`` {CommonName, OrganizationUnit, ...} as an X.509 Name."""
    unknown = sorted(set(subject) - set(_CSR_SUBJECT_OIDS))
    if unknown:
        raise InputError(f"unknown CertificateSubject field(s): {', '.join(unknown)}")
    if not subject.get("CommonName"):
        raise InputError("CertificateSubject needs a CommonName")
    try:
        return x509.Name(
            [
                x509.NameAttribute(oid, subject[field])
                for field, oid in _CSR_SUBJECT_OIDS.items()
                if subject.get(field)
            ]
        )
    except ValueError as exc:
        raise InputError(f"CertificateSubject is not valid: {exc}") from None


def build_csr(
    private_key: rsa.RSAPrivateKey,
    subject: x509.Name,
    signing_algorithm: str = "SHA256",
) -> x509.CertificateSigningRequest:
    """A PKCS#10 request for ``private_key`` signed with ``signing_algorithm`` (APC's names
    SHA224, SHA256, SHA384, SHA512)."""
    try:
        hash_type = RSA_SIGNATURE_HASHES[signing_algorithm]
    except KeyError:
        raise InputError(
            f"signing algorithm {signing_algorithm!r} must be one of "
            + ", ".join(RSA_SIGNATURE_HASHES)
        ) from None
    return (
        x509.CertificateSigningRequestBuilder().subject_name(subject).sign(private_key, hash_type())
    )


def csr_to_apc(csr: x509.CertificateSigningRequest) -> str:
    """APC's wire form of a CSR: base64 of the PEM text."""
    return base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode("ascii")


def csr_from_apc(text: str) -> x509.CertificateSigningRequest:
    """Decode a base64-of-PEM (or PEM) CSR and check its self-signature."""
    try:
        csr = x509.load_pem_x509_csr(_pem_from_apc(text))
    except ValueError:
        raise CertificateError("not a PEM certificate request") from None
    if not csr.is_signature_valid:
        raise CertificateError("the certificate request's signature does not verify")
    return csr


def _rsa_key_bits(cert: x509.Certificate) -> int:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise CertificateError(f"certificate {_describe(cert)} has no RSA key")
    return key.key_size


def verify_rsa_chain(
    leaf: x509.Certificate,
    anchors: x509.Certificate | Sequence[x509.Certificate],
    *,
    now: dt.datetime | None = None,
    require_self_signed_root: bool = False,
) -> None:
    """Verify an RSA ``leaf`` up through ``anchors`` (its issuer first, or a chain).

    The leaf's issuer must be among ``anchors``; each issuer must be a CA, sign its child
    with RSA, be within its validity window, and be at least as strong as its child
    (UG keys-import). The walk stops at the first anchor unless ``require_self_signed_root``,
    which continues to a self-signed root in ``anchors``. ``CertificateError`` otherwise.
    """
    chain = [anchors] if isinstance(anchors, x509.Certificate) else list(anchors)
    if not chain:
        raise CertificateError("no CA certificate to verify against")
    current = leaf
    _rsa_key_bits(leaf)
    for _ in range(len(chain) + 1):
        issuer = next((c for c in chain if c.subject == current.issuer), None)
        if issuer is None:
            raise CertificateError(
                f"certificate {_describe(current)} was issued by "
                f"{current.issuer.rfc4514_string()!r}, not by the CA given"
            )
        if not _is_ca(issuer):
            raise CertificateError(f"issuer {_describe(issuer)} is not a CA certificate")
        issuer_bits, child_bits = _rsa_key_bits(issuer), _rsa_key_bits(current)
        verify_certificate(current, issuer, now=now)
        if issuer_bits < child_bits:
            raise CertificateError(
                f"issuer {_describe(issuer)} (RSA-{issuer_bits}) is weaker than "
                f"{_describe(current)} (RSA-{child_bits})"
            )
        if issuer.subject == issuer.issuer:
            verify_certificate(issuer, issuer, now=now)
            return
        if not require_self_signed_root:
            _check_validity(issuer, now)
            return
        current = issuer
    raise CertificateError("the certificate chain does not end in a self-signed root")


def _check_validity(cert: x509.Certificate, now: dt.datetime | None) -> None:
    moment = _now(now)
    if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
        raise CertificateError(f"certificate {_describe(cert)} is not valid now")


__all__ += [
    "RSA_KEY_SIZES",
    "RSA_SIGNATURE_HASHES",
    "build_csr",
    "csr_from_apc",
    "csr_to_apc",
    "generate_rsa_key",
    "issue_rsa_certificate",
    "load_rsa_private_key_pem",
    "new_rsa_sender_ca",
    "new_rsa_signing_leaf",
    "new_rsa_wrapping_leaf",
    "rsa_private_key_to_pem",
    "subject_from_apc",
    "verify_rsa_chain",
]
