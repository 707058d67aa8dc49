"""ANSI X9 TR-34-2012 key blocks exactly as AWS Payment Cryptography accepts and emits them.

The shape (apc-tr34.md sections 3.2 and 3.3, from AWS's import builder and strict export
parser): a CMS ``ContentInfo``/``SignedData`` whose encapsulated content (type envelopedData)
is an OCTET STRING holding the EnvelopedData *fields without their outer SEQUENCE*::

    INTEGER 0
    SET { KeyTransRecipientInfo { 0, IssuerAndSerialNumber(KRD),
          { id-RSAES-OAEP, { {sha256, NULL}, {mgf1, {sha256}}, {pSpecified, ''} } },  -- untagged
          OCTET STRING OAEP-SHA256(content key) } }
    SEQUENCE { data, SEQUENCE { des-ede3-cbc | aes128-CBC, OCTET STRING iv,
                                [0] IMPLICIT encrypted key block } }

The encrypted key block is ``SEQUENCE { 1, IssuerAndSerialNumber(KDH), OCTET STRING key,
SEQUENCE { data, SET { OCTET STRING header } } }`` plus PKCS#7 padding. One SignerInfo
(version 1, KDH IssuerAndSerialNumber, sha256) signs, with RSASSA-PKCS1-v1_5-SHA256, the signed
attributes in this order (not DER-sorted): contentType, randomNonce (2-pass) or signingTime
(1-pass), header (OID data), messageDigest (SHA-256 of the envelope octets). No certificates, no
CRLs. The header is TR-31's 16-character header (version and length "ignored in TR-34").

The structures are asn1crypto schemas; nothing here counts DER lengths. A block is accepted
only if re-encoding what was parsed gives back exactly its bytes, so anything but this shape
(a SEQUENCE-wrapped envelope, RFC 8017-tagged OAEP parameters, certificates, re-ordered
attributes, BER lengths) is refused, as AWS's strict parsers would. Randomness (content key,
IV; the nonce is the caller's) is injected at the edge so builds are checkable byte for byte.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from apckx.crypto.keys import algorithm_for_length
from apckx.crypto.rsa_wrap import check_rsa_transport_strength, oaep_padding, rsa_algorithm_for
from apckx.crypto.tr31 import header_to_key_attributes, parse_header
from apckx.errors import InputError, IntegrityError, KeyBlockError, StrengthError

__all__ = [
    "CONTENT_CIPHERS",
    "EXTRA_USAGE_CODES",
    "KEY_BLOCK_FORMAT",
    "CertificateId",
    "OpenedKeyBlock",
    "Tr34KeyBlock",
    "build_key_block",
    "build_tr34_header",
    "certificate_id",
    "check_nonce",
    "check_tr34_strength",
    "key_attributes_from_header",
    "key_block_from_hex",
    "key_block_to_hex",
    "open_key_block",
    "parse_key_block",
    "verify_signature",
]

#: ImportKey/ExportKey ``KeyBlockFormat``.
KEY_BLOCK_FORMAT = "X9_TR34_2012"

_OID_DATA = "1.2.840.113549.1.7.1"
_OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
_OID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
_OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_OID_SIGNING_TIME = "1.2.840.113549.1.9.5"
_OID_RANDOM_NONCE = "1.2.840.113549.1.9.25.3"
_OID_SHA256 = "2.16.840.1.101.3.4.2.1"
_OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
_OID_RSAES_OAEP = "1.2.840.113549.1.1.7"
_OID_MGF1 = "1.2.840.113549.1.1.8"
_OID_P_SPECIFIED = "1.2.840.113549.1.1.9"


@dataclass(frozen=True)
class _Cipher:
    oid: str
    key_length: int
    block_size: int
    algorithm: Callable[[bytes], Any]
    strength_algorithm: str  # the APC algorithm its content key counts as


#: Content ciphers of the key block: name -> (OID, content key length, block size).
CONTENT_CIPHERS: dict[str, _Cipher] = {
    "TDES_CBC": _Cipher("1.2.840.113549.3.7", 24, 8, TripleDES, "TDES_3KEY"),
    "AES_128_CBC": _Cipher("2.16.840.1.101.3.4.1.2", 16, 16, algorithms.AES, "AES_128"),
}
_CIPHER_BY_OID = {c.oid: name for name, c in CONTENT_CIPHERS.items()}
_NONCE_LENGTHS = range(8, 17)  # RandomNonce: even hex, 16..32 characters
_HEADER_RE = re.compile(r"[0-9A-Z]{16}")


# --- asn1crypto schemas for APC's shape -----------------------------------------------------


class _AlgorithmIdentifier(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 (asn1crypto schema)
        ("algorithm", core.ObjectIdentifier),
        ("parameters", core.Any, {"optional": True}),
    ]


class _OaepParameters(core.Sequence):  # type: ignore[misc]
    """RSAES-OAEP-params as APC encodes them: plain SEQUENCEs, not RFC 8017's [0]/[1]/[2]."""

    _fields = [  # noqa: RUF012
        ("hash_algorithm", _AlgorithmIdentifier),
        ("mask_gen_algorithm", _AlgorithmIdentifier),
        ("p_source_algorithm", _AlgorithmIdentifier),
    ]


class _KeyTransportAlgorithm(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("algorithm", core.ObjectIdentifier),
        ("parameters", _OaepParameters),
    ]


class _KeyTransRecipientInfo(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("version", core.Integer),
        ("rid", cms.IssuerAndSerialNumber),
        ("key_encryption_algorithm", _KeyTransportAlgorithm),
        ("encrypted_key", core.OctetString),
    ]


class _RecipientInfos(core.SetOf):  # type: ignore[misc]
    _child_spec = _KeyTransRecipientInfo


class _ContentEncryption(core.Sequence):  # type: ignore[misc]
    """APC's shape: the encrypted key block sits after the IV, inside the algorithm SEQUENCE."""

    _fields = [  # noqa: RUF012
        ("algorithm", core.ObjectIdentifier),
        ("iv", core.OctetString),
        ("encrypted_content", core.OctetString, {"implicit": 0}),
    ]


class _EncryptedContentInfo(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("content_type", core.ObjectIdentifier),
        ("content_encryption", _ContentEncryption),
    ]


class _Envelope(core.Sequence):  # type: ignore[misc]
    """EnvelopedData's fields; APC puts only their ``contents`` (no SEQUENCE) in the eContent."""

    _fields = [  # noqa: RUF012
        ("version", core.Integer),
        ("recipient_infos", _RecipientInfos),
        ("encrypted_content_info", _EncryptedContentInfo),
    ]


class _AttributeValues(core.SetOf):  # type: ignore[misc]
    _child_spec = core.Any


class _Attribute(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("type", core.ObjectIdentifier),
        ("values", _AttributeValues),
    ]


class _SignedAttributes(core.SequenceOf):  # type: ignore[misc]
    """SET OF Attribute kept in APC's order: asn1crypto's SetOf would DER-sort it."""

    tag = 17
    _child_spec = _Attribute


class _SignerInfo(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("version", core.Integer),
        ("sid", cms.IssuerAndSerialNumber),
        ("digest_algorithm", _AlgorithmIdentifier),
        ("signed_attrs", _SignedAttributes, {"implicit": 0}),
        ("signature_algorithm", _AlgorithmIdentifier),
        ("signature", core.OctetString),
    ]


class _SignerInfos(core.SetOf):  # type: ignore[misc]
    _child_spec = _SignerInfo


class _DigestAlgorithms(core.SetOf):  # type: ignore[misc]
    _child_spec = _AlgorithmIdentifier


class _EncapsulatedContentInfo(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("content_type", core.ObjectIdentifier),
        ("content", core.OctetString, {"explicit": 0}),
    ]


class _SignedData(core.Sequence):  # type: ignore[misc]
    """Exactly version, digestAlgorithms, encapContentInfo, signerInfos: no certificates/CRLs."""

    _fields = [  # noqa: RUF012
        ("version", core.Integer),
        ("digest_algorithms", _DigestAlgorithms),
        ("encap_content_info", _EncapsulatedContentInfo),
        ("signer_infos", _SignerInfos),
    ]


class _ContentInfo(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("content_type", core.ObjectIdentifier),
        ("content", _SignedData, {"explicit": 0}),
    ]


class _KeyBlockContent(core.Sequence):  # type: ignore[misc]
    """The plaintext of the encrypted key block (before PKCS#7 padding)."""

    _fields = [  # noqa: RUF012
        ("version", core.Integer),
        ("kdh_id", cms.IssuerAndSerialNumber),
        ("key", core.OctetString),
        ("header", _Attribute),
    ]


# --- identities -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateId:
    """A TR-34 credential id: the IssuerAndSerialNumber of a certificate."""

    issuer: str  # RFC 4514
    serial_number: int
    der: bytes = field(repr=False)  # the IssuerAndSerialNumber DER, as in the block

    def matches(self, cert: x509.Certificate) -> bool:
        """True if ``cert`` is the certificate this id names (same issuer bytes and serial)."""
        return hmac.compare_digest(self.der, certificate_id(cert).der)


def _issuer_and_serial(cert: x509.Certificate) -> cms.IssuerAndSerialNumber:
    tbs = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))[
        "tbs_certificate"
    ]
    return cms.IssuerAndSerialNumber(
        {"issuer": tbs["issuer"], "serial_number": tbs["serial_number"]}
    )


def _id_from_asn1(value: cms.IssuerAndSerialNumber) -> CertificateId:
    return CertificateId(
        issuer=str(value["issuer"].human_friendly),
        serial_number=int(value["serial_number"].native),
        der=value.dump(),
    )


def certificate_id(cert: x509.Certificate) -> CertificateId:
    """The TR-34 credential id (IssuerAndSerialNumber) of ``cert``."""
    value = _issuer_and_serial(cert)
    return CertificateId(
        issuer=cert.issuer.rfc4514_string(), serial_number=cert.serial_number, der=value.dump()
    )


# --- the parsed block -----------------------------------------------------------------------


@dataclass(frozen=True)
class Tr34KeyBlock:
    """A parsed TR-34 block: who signed it, for whom, how, with what header. No key."""

    signer: CertificateId
    recipient: CertificateId
    content_cipher: str  # a CONTENT_CIPHERS name
    nonce: bytes | None  # 2-pass: the randomNonce attribute
    signing_time: dt.datetime | None  # 1-pass: the signingTime attribute
    header: str
    iv: bytes
    message_digest: bytes
    signature: bytes = field(repr=False)
    encrypted_content_key: bytes = field(repr=False)
    encrypted_key_block: bytes = field(repr=False)
    envelope: bytes = field(repr=False)  # the eContent octets the digest covers
    signed_attributes: bytes = field(repr=False)  # SET-tagged DER, the signature's input

    @property
    def passes(self) -> int:
        """2 for a 2-pass block (random nonce), 1 for a 1-pass block (signing time)."""
        return 2 if self.nonce is not None else 1


@dataclass(frozen=True)
class OpenedKeyBlock:
    """What the KRD recovers: the header, the key and APC's attributes for it."""

    header: str
    key: bytes = field(repr=False)
    key_algorithm: str
    #: None for a usage APC has no KeyAttributes for (B1, a DUKPT initial key).
    key_attributes: dict[str, object] | None
    exportable: bool


# --- header and strength --------------------------------------------------------------------


#: TR-31 usage codes TR-34 may carry that have no APC KeyUsage (APC's IPEK export uses B1).
EXTRA_USAGE_CODES = frozenset({"B1"})


def build_tr34_header(
    *,
    key_usage: str,
    key_algorithm: str,
    mode_of_use: str = "B",
    exportability: str = "E",
    key_version: str = "00",
) -> str:
    """The 16-character key block header TR-34 carries: TR-31's fixed header with version
    ``D`` and length ``9999`` ("ignored in TR-34", as AWS's sample builds it), no optional
    blocks. ``key_usage`` is a TR-31 code ("K0"), APC's name, or "B1" (a DUKPT initial key,
    which APC exports but has no KeyUsage for). APC's usage/mode rules are checked."""
    from apckx.crypto.attributes import KEY_USAGES, normalize_key_usage

    usage = (
        key_usage if key_usage in EXTRA_USAGE_CODES else KEY_USAGES[normalize_key_usage(key_usage)]
    )
    family = key_algorithm.split("_")[0]
    codes = {"TDES": "T", "AES": "A"}
    if family not in codes or key_algorithm not in _KEY_LENGTH_HINT:
        raise KeyBlockError(f"TR-34 carries TDES and AES keys (got {key_algorithm!r})")
    header = f"D9999{usage}{codes[family]}{mode_of_use}{key_version}{exportability}0000"
    if not _HEADER_RE.fullmatch(header) or len(header) != 16:
        raise KeyBlockError(
            "mode of use, key version and exportability must be upper-case letters or digits "
            "(1, 2 and 1 characters)"
        )
    if usage in EXTRA_USAGE_CODES:
        if mode_of_use not in ("X", "N") or exportability not in ("E", "N", "S"):
            raise KeyBlockError("a B1 (DUKPT initial key) header has mode X or N, and E, N or S")
    else:
        header_to_key_attributes(parse_header(header), _KEY_LENGTH_HINT[key_algorithm])
    return header


def key_attributes_from_header(header: str, key_length: int) -> dict[str, object] | None:
    """APC's KeyAttributes for a TR-34 header, or None for a usage APC has no name for (B1).

    ``KeyBlockError`` for a header APC would refuse."""
    parsed = parse_header(header)
    if parsed.key_usage in EXTRA_USAGE_CODES:
        return None
    return header_to_key_attributes(parsed, key_length)


_KEY_LENGTH_HINT = {"TDES_2KEY": 16, "TDES_3KEY": 24, "AES_128": 16, "AES_192": 24, "AES_256": 32}


def check_tr34_strength(
    wrapping_algorithm: str, key_algorithm: str, content_cipher: str | None = None
) -> None:
    """Raise ``StrengthError`` if a ``key_algorithm`` key may not travel in a TR-34 block
    for an ``wrapping_algorithm`` (RSA_*) KRD key, or under ``content_cipher``.

    RSA_2048 carries TDES only; AES_128 needs RSA_3072/4096 (UG keys-importexport); an AES
    key is not protected by a TDES content key (weaker than the key) [inferred].
    """
    check_rsa_transport_strength(wrapping_algorithm, key_algorithm)
    if content_cipher is None:
        return
    cipher = _cipher(content_cipher)
    if key_algorithm.startswith("AES") and cipher.strength_algorithm.startswith("TDES"):
        raise StrengthError(
            f"a TDES content key cannot protect an {key_algorithm} key: use AES_128_CBC"
        )


def _cipher(name: str) -> _Cipher:
    try:
        return CONTENT_CIPHERS[name]
    except KeyError:
        raise InputError(
            f"content cipher {name!r} is not one TR-34 uses: {' or '.join(CONTENT_CIPHERS)}"
        ) from None


def _key_algorithm(header: str, key_length: int) -> str:
    if len(header) < 8:
        raise KeyBlockError("the TR-34 key block header is shorter than 16 characters")
    code = header[7]
    if code not in ("T", "A"):
        raise KeyBlockError(f"TR-34 carries TDES (T) and AES (A) keys (header says {code!r})")
    try:
        return algorithm_for_length(code, key_length)
    except InputError as exc:
        raise KeyBlockError(str(exc)) from None


# --- encoding -------------------------------------------------------------------------------


def _attribute(oid: str, value: core.Asn1Value) -> _Attribute:
    return _Attribute({"type": oid, "values": _AttributeValues([value])})


def _oaep_algorithm() -> _KeyTransportAlgorithm:
    return _KeyTransportAlgorithm(
        {
            "algorithm": _OID_RSAES_OAEP,
            "parameters": {
                "hash_algorithm": {"algorithm": _OID_SHA256, "parameters": core.Null()},
                "mask_gen_algorithm": {
                    "algorithm": _OID_MGF1,
                    "parameters": _AlgorithmIdentifier({"algorithm": _OID_SHA256}),
                },
                "p_source_algorithm": {
                    "algorithm": _OID_P_SPECIFIED,
                    "parameters": core.OctetString(b""),
                },
            },
        }
    )


def _encode_envelope(
    recipient: cms.IssuerAndSerialNumber,
    encrypted_content_key: bytes,
    cipher_oid: str,
    iv: bytes,
    encrypted_key_block: bytes,
) -> bytes:
    envelope = _Envelope(
        {
            "version": 0,
            "recipient_infos": [
                {
                    "version": 0,
                    "rid": recipient,
                    "key_encryption_algorithm": _oaep_algorithm(),
                    "encrypted_key": encrypted_content_key,
                }
            ],
            "encrypted_content_info": {
                "content_type": _OID_DATA,
                "content_encryption": {
                    "algorithm": cipher_oid,
                    "iv": iv,
                    "encrypted_content": encrypted_key_block,
                },
            },
        }
    )
    envelope.dump()
    contents: bytes = envelope.contents  # the fields without the outer SEQUENCE (APC)
    return contents


def _freshness_attribute(nonce: bytes | None, signing_time: dt.datetime | None) -> _Attribute:
    if nonce is not None:
        return _attribute(_OID_RANDOM_NONCE, core.OctetString(nonce))
    assert signing_time is not None  # noqa: S101 (checked by the callers)
    return _attribute(_OID_SIGNING_TIME, core.UTCTime(signing_time))


def _encode_signed_attributes(
    header: str, nonce: bytes | None, signing_time: dt.datetime | None, digest: bytes
) -> _SignedAttributes:
    return _SignedAttributes(
        [
            _attribute(_OID_CONTENT_TYPE, core.ObjectIdentifier(_OID_ENVELOPED_DATA)),
            _freshness_attribute(nonce, signing_time),
            _attribute(_OID_DATA, core.OctetString(header.encode("ascii"))),
            _attribute(_OID_MESSAGE_DIGEST, core.OctetString(digest)),
        ]
    )


def _encode_content_info(
    signer: cms.IssuerAndSerialNumber,
    envelope: bytes,
    signed_attributes: _SignedAttributes,
    signature: bytes,
) -> bytes:
    sha256 = {"algorithm": _OID_SHA256}
    info = _ContentInfo(
        {
            "content_type": _OID_SIGNED_DATA,
            "content": {
                "version": 1,
                "digest_algorithms": [sha256],
                "encap_content_info": {
                    "content_type": _OID_ENVELOPED_DATA,
                    "content": envelope,
                },
                "signer_infos": [
                    {
                        "version": 1,
                        "sid": signer,
                        "digest_algorithm": sha256,
                        "signed_attrs": signed_attributes,
                        "signature_algorithm": {
                            "algorithm": _OID_RSA_ENCRYPTION,
                            "parameters": core.Null(),
                        },
                        "signature": signature,
                    }
                ],
            },
        }
    )
    der: bytes = info.dump()
    return der


def _signature_input(signed_attributes: _SignedAttributes) -> bytes:
    # RFC 5652 5.4: the signature covers the attributes re-tagged as a SET (0x31), in the
    # order they appear (APC's order; not re-sorted).
    untagged = _SignedAttributes(contents=signed_attributes.contents)
    der: bytes = untagged.dump()
    return der


def _encode_key_block_content(kdh: cms.IssuerAndSerialNumber, key: bytes, header: str) -> bytes:
    content = _KeyBlockContent(
        {
            "version": 1,
            "kdh_id": kdh,
            "key": key,
            "header": _attribute(_OID_DATA, core.OctetString(header.encode("ascii"))),
        }
    )
    der: bytes = content.dump()
    return der


def _check_header_text(header: str) -> None:
    if not header.isascii() or not _HEADER_RE.fullmatch(header):
        raise KeyBlockError(
            "a TR-34 key block header is 16 upper-case letters and digits (TR-31's fixed "
            "header; optional blocks are not supported)"
        )


def _check_nonce_shape(nonce: bytes) -> None:
    if len(nonce) not in _NONCE_LENGTHS:
        raise InputError(f"a TR-34 random nonce is 8 to 16 bytes (got {len(nonce)})")


def _cbc(cipher: _Cipher, content_key: bytes, iv: bytes) -> Cipher[modes.CBC]:
    return Cipher(cipher.algorithm(content_key), modes.CBC(iv))


def build_key_block(
    key: bytes,
    header: str,
    *,
    signing_key: rsa.RSAPrivateKey,
    signing_certificate: x509.Certificate,
    wrapping_certificate: x509.Certificate,
    nonce: bytes | None = None,
    signing_time: dt.datetime | None = None,
    content_cipher: str | None = None,
    content_key: bytes | None = None,
    iv: bytes | None = None,
) -> bytes:
    """Build a TR-34 block (DER) as the KDH: ``key`` under ``header`` for the KRD whose
    ``wrapping_certificate`` holds the RSA key, signed by ``signing_key`` (its certificate
    ``signing_certificate`` is named as signer and inside the key block).

    Exactly one of ``nonce`` (2-pass, the KRD's RandomNonce, 8..16 bytes) or
    ``signing_time`` (1-pass). ``content_cipher`` defaults to AES_128_CBC for an AES key and
    TDES_CBC for a TDES key (as AWS's sample). ``content_key`` and ``iv`` default to fresh
    random bytes (os.urandom); pass them to reproduce a block. The strength rules are checked
    first (``StrengthError``).
    """
    if (nonce is None) == (signing_time is None):
        raise InputError("give a nonce (2-pass) or a signing time (1-pass), not both or neither")
    if nonce is not None:
        _check_nonce_shape(nonce)
    if signing_time is not None and signing_time.tzinfo is None:
        signing_time = signing_time.replace(tzinfo=dt.UTC)
    _check_header_text(header)
    key_algorithm = _key_algorithm(header, len(key))
    if content_cipher is None:
        content_cipher = "AES_128_CBC" if key_algorithm.startswith("AES") else "TDES_CBC"
    cipher = _cipher(content_cipher)
    krd_key = wrapping_certificate.public_key()
    if not isinstance(krd_key, rsa.RSAPublicKey):
        raise InputError("the KRD (wrapping) certificate must hold an RSA key")
    if not isinstance(signing_certificate.public_key(), rsa.RSAPublicKey):
        raise InputError("the KDH signing certificate must hold an RSA key")
    check_tr34_strength(rsa_algorithm_for(krd_key), key_algorithm, content_cipher)
    key_attributes_from_header(header, len(key))
    content_key = os.urandom(cipher.key_length) if content_key is None else content_key
    iv = os.urandom(cipher.block_size) if iv is None else iv
    if len(content_key) != cipher.key_length or len(iv) != cipher.block_size:
        raise InputError(
            f"{content_cipher} needs a {cipher.key_length}-byte content key and a "
            f"{cipher.block_size}-byte IV"
        )

    kdh = _issuer_and_serial(signing_certificate)
    plaintext = _encode_key_block_content(kdh, key, header)
    padder = sym_padding.PKCS7(cipher.block_size * 8).padder()
    padded = padder.update(plaintext) + padder.finalize()  # always at least one pad byte
    encryptor = _cbc(cipher, content_key, iv).encryptor()
    encrypted_key_block = encryptor.update(padded) + encryptor.finalize()
    encrypted_content_key = krd_key.encrypt(content_key, oaep_padding("RSA_OAEP_SHA_256"))

    envelope = _encode_envelope(
        _issuer_and_serial(wrapping_certificate),
        encrypted_content_key,
        cipher.oid,
        iv,
        encrypted_key_block,
    )
    signed_attributes = _encode_signed_attributes(
        header, nonce, signing_time, hashlib.sha256(envelope).digest()
    )
    signed_attributes.dump()
    signature = signing_key.sign(
        _signature_input(signed_attributes), padding.PKCS1v15(), hashes.SHA256()
    )
    return _encode_content_info(kdh, envelope, signed_attributes, signature)


# --- parsing --------------------------------------------------------------------------------


def _single_value(attribute: _Attribute) -> core.Any:
    values = attribute["values"]
    if len(values) != 1:
        raise KeyBlockError("a TR-34 signed attribute must have exactly one value")
    return values[0]


def _octets(value: core.Any) -> bytes:
    parsed = value.parse(core.OctetString)
    octets: bytes = parsed.native
    return octets


def _parse_signed_attributes(
    attributes: _SignedAttributes,
) -> tuple[bytes | None, dt.datetime | None, str, bytes]:
    types = [attribute["type"].dotted for attribute in attributes]
    nonce: bytes | None = None
    signing_time: dt.datetime | None = None
    if (
        len(types) != 4
        or types[0] != _OID_CONTENT_TYPE
        or types[2:]
        != [
            _OID_DATA,
            _OID_MESSAGE_DIGEST,
        ]
    ):
        raise KeyBlockError(
            "TR-34 signed attributes must be exactly contentType, randomNonce (or signingTime), "
            "header, messageDigest, in that order"
        )
    content_type = _single_value(attributes[0]).parse(core.ObjectIdentifier).dotted
    if content_type != _OID_ENVELOPED_DATA:
        raise KeyBlockError("the contentType attribute must be envelopedData")
    freshness = _single_value(attributes[1])
    if types[1] == _OID_RANDOM_NONCE:
        nonce = _octets(freshness)
    elif types[1] == _OID_SIGNING_TIME:
        signing_time = freshness.parse(core.UTCTime).native
    else:
        raise KeyBlockError("the second signed attribute must be randomNonce or signingTime")
    header_bytes = _octets(_single_value(attributes[2]))
    digest = _octets(_single_value(attributes[3]))
    try:
        header = header_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise KeyBlockError("the TR-34 key block header must be ASCII") from None
    _check_header_text(header)
    if len(digest) != hashlib.sha256().digest_size:
        raise KeyBlockError("the messageDigest attribute must be a SHA-256 digest (32 bytes)")
    return nonce, signing_time, header, digest


def _parse_structure(der: bytes) -> Tr34KeyBlock:
    info = _ContentInfo.load(der, strict=True)
    if info["content_type"].dotted != _OID_SIGNED_DATA:
        raise KeyBlockError("a TR-34 block is a CMS SignedData (contentType signedData)")
    signed = info["content"]
    if signed["version"].native != 1:
        raise KeyBlockError("the TR-34 SignedData must be version 1")
    digests = [algorithm["algorithm"].dotted for algorithm in signed["digest_algorithms"]]
    if digests != [_OID_SHA256]:
        raise KeyBlockError("the TR-34 SignedData digest algorithm must be SHA-256 alone")
    encapsulated = signed["encap_content_info"]
    if encapsulated["content_type"].dotted != _OID_ENVELOPED_DATA:
        raise KeyBlockError("the TR-34 signed content must be envelopedData")
    envelope_bytes: bytes = encapsulated["content"].native
    signers = signed["signer_infos"]
    if len(signers) != 1:
        raise KeyBlockError("a TR-34 block has exactly one signer")
    signer = signers[0]
    if signer["version"].native != 1 or signer["digest_algorithm"]["algorithm"].dotted != (
        _OID_SHA256
    ):
        raise KeyBlockError("the TR-34 SignerInfo must be version 1 with SHA-256")
    if signer["signature_algorithm"]["algorithm"].dotted != _OID_RSA_ENCRYPTION:
        raise KeyBlockError("the TR-34 signature must be rsaEncryption (PKCS#1 v1.5)")
    nonce, signing_time, header, digest = _parse_signed_attributes(signer["signed_attrs"])

    envelope = _Envelope(contents=envelope_bytes)
    if envelope["version"].native != 0 or len(envelope["recipient_infos"]) != 1:
        raise KeyBlockError("the TR-34 envelope must be version 0 with exactly one recipient")
    recipient = envelope["recipient_infos"][0]
    if recipient["version"].native != 0:
        raise KeyBlockError("the TR-34 KeyTransRecipientInfo must be version 0")
    content = envelope["encrypted_content_info"]
    if content["content_type"].dotted != _OID_DATA:
        raise KeyBlockError("the TR-34 encrypted content type must be data")
    encryption = content["content_encryption"]
    cipher_name = _CIPHER_BY_OID.get(encryption["algorithm"].dotted)
    if cipher_name is None:
        raise KeyBlockError("the TR-34 content cipher must be des-ede3-cbc or aes128-CBC")
    iv: bytes = encryption["iv"].native
    encrypted_key_block: bytes = encryption["encrypted_content"].native
    cipher = CONTENT_CIPHERS[cipher_name]
    if (
        len(iv) != cipher.block_size
        or not encrypted_key_block
        or (len(encrypted_key_block) % cipher.block_size)
    ):
        raise KeyBlockError(f"the {cipher_name} IV or encrypted key block has a wrong length")

    # Exact shape: re-encoding what was parsed must give back the bytes received.
    rebuilt_envelope = _encode_envelope(
        recipient["rid"], recipient["encrypted_key"].native, cipher.oid, iv, encrypted_key_block
    )
    if rebuilt_envelope != envelope_bytes:
        raise KeyBlockError(
            "the TR-34 envelope is not in the shape APC uses (EnvelopedData fields without an "
            "outer SEQUENCE, untagged OAEP SHA-256 parameters, key block after the IV)"
        )
    signed_attributes = _encode_signed_attributes(header, nonce, signing_time, digest)
    signature: bytes = signer["signature"].native
    rebuilt = _encode_content_info(signer["sid"], envelope_bytes, signed_attributes, signature)
    if rebuilt != der:
        raise KeyBlockError(
            "the TR-34 block is not in the shape APC uses (one SignedData with no certificates "
            "or CRLs, sha256, one SignerInfo, four signed attributes in APC's order, DER)"
        )
    return Tr34KeyBlock(
        signer=_id_from_asn1(signer["sid"]),
        recipient=_id_from_asn1(recipient["rid"]),
        content_cipher=cipher_name,
        nonce=nonce,
        signing_time=signing_time,
        header=header,
        iv=iv,
        message_digest=digest,
        signature=signature,
        encrypted_content_key=recipient["encrypted_key"].native,
        encrypted_key_block=encrypted_key_block,
        envelope=envelope_bytes,
        signed_attributes=_signature_input(signed_attributes),
    )


def parse_key_block(der: bytes) -> Tr34KeyBlock:
    """Parse a TR-34 block (DER) in APC's shape; ``KeyBlockError`` for anything else.

    Decrypts and verifies nothing: see ``verify_signature`` and ``open_key_block``.
    """
    if not der:
        raise KeyBlockError("the TR-34 key block is empty")
    try:
        return _parse_structure(der)
    except KeyBlockError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError):
        raise KeyBlockError(
            "not a TR-34 block: the DER does not parse as APC's SignedData shape"
        ) from None


def key_block_to_hex(der: bytes) -> str:
    """APC's wire form of a TR-34 block: upper-case hex of the DER."""
    return der.hex().upper()


_BLOCK_HEX_RE = re.compile(r"[0-9A-F]+")


def key_block_from_hex(text: str) -> bytes:
    """Decode APC's ``WrappedKeyBlock``/``KeyMaterial`` (upper-case hex) to DER."""
    if not _BLOCK_HEX_RE.fullmatch(text) or len(text) % 2:
        raise KeyBlockError(
            "a TR-34 key block is an even number of upper-case hex characters (0-9, A-F)"
        )
    return bytes.fromhex(text)


# --- verification and opening ---------------------------------------------------------------


def verify_signature(block: Tr34KeyBlock, signing_certificate: x509.Certificate) -> None:
    """Check that ``signing_certificate`` is the block's signer, that its RSA key signed the
    attributes and that the messageDigest covers the envelope. ``IntegrityError``, no detail.
    """
    public_key = signing_certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey) or not block.signer.matches(
        signing_certificate
    ):
        raise IntegrityError("TR-34 signature verification failed")
    digest = hashlib.sha256(block.envelope).digest()
    if not hmac.compare_digest(digest, block.message_digest):
        raise IntegrityError("TR-34 signature verification failed")
    try:
        public_key.verify(
            block.signature, block.signed_attributes, padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError):
        raise IntegrityError("TR-34 signature verification failed") from None


def check_nonce(
    block: Tr34KeyBlock, nonce: bytes | None, *, now: dt.datetime | None = None
) -> None:
    """The freshness rule: a 2-pass block carries exactly ``nonce`` (``IntegrityError`` if
    not; ``KeyBlockError`` if no nonce was given); a 1-pass block takes no nonce and its
    signing time must not be in the future (UG keyexchange-byoca)."""
    if block.nonce is not None:
        if nonce is None:
            raise KeyBlockError(
                "this is a 2-pass TR-34 block: give the RandomNonce it was built with"
            )
        if not hmac.compare_digest(block.nonce, nonce):
            raise IntegrityError("the TR-34 block's random nonce does not match")
        return
    if nonce is not None:
        raise KeyBlockError("this is a 1-pass TR-34 block (no random nonce): omit the nonce")
    moment = now or dt.datetime.now(dt.UTC)
    if block.signing_time is not None and block.signing_time > moment + dt.timedelta(minutes=5):
        raise KeyBlockError("the TR-34 block's signing time is in the future")


def open_key_block(
    block: Tr34KeyBlock | bytes,
    wrapping_key: rsa.RSAPrivateKey,
    *,
    signing_certificate: x509.Certificate,
    nonce: bytes | None = None,
    wrapping_certificate: x509.Certificate | None = None,
    now: dt.datetime | None = None,
) -> OpenedKeyBlock:
    """The KRD side: verify the signature and nonce, decrypt with ``wrapping_key`` (RSA-OAEP
    SHA-256), decrypt the key block, check it names the same KDH and header, apply the
    strength rules, and return the header, the key and its APC attributes.

    ``signing_certificate`` must already be verified under the KDH's CA by the caller
    (``certs.verify_rsa_chain``). Errors: ``KeyBlockError`` (malformed, wrong recipient,
    inconsistent), ``IntegrityError`` (signature, digest, nonce, decryption, padding; no
    detail), ``StrengthError``.
    """
    parsed = parse_key_block(block) if isinstance(block, bytes) else block
    verify_signature(parsed, signing_certificate)
    check_nonce(parsed, nonce, now=now)
    if wrapping_certificate is not None:
        if not parsed.recipient.matches(wrapping_certificate):
            raise KeyBlockError(
                "the TR-34 block is for another recipient (its KRD IssuerAndSerialNumber "
                "is not the wrapping certificate's)"
            )
        if wrapping_certificate.public_key() != wrapping_key.public_key():
            raise InputError("the wrapping certificate does not hold the wrapping key")
    rsa_algorithm = rsa_algorithm_for(wrapping_key)
    cipher = CONTENT_CIPHERS[parsed.content_cipher]
    try:
        content_key = wrapping_key.decrypt(
            parsed.encrypted_content_key, oaep_padding("RSA_OAEP_SHA_256")
        )
    except ValueError:
        raise IntegrityError("the TR-34 envelope does not decrypt under this key") from None
    if len(content_key) != cipher.key_length:
        raise IntegrityError("the TR-34 envelope does not decrypt under this key")
    decryptor = _cbc(cipher, content_key, parsed.iv).decryptor()
    padded = decryptor.update(parsed.encrypted_key_block) + decryptor.finalize()
    try:
        unpadder = sym_padding.PKCS7(cipher.block_size * 8).unpadder()
        plaintext = unpadder.update(padded) + unpadder.finalize()
        content = _KeyBlockContent.load(plaintext, strict=True)
        version = content["version"].native
        kdh_der = content["kdh_id"].dump()
        key: bytes = content["key"].native
        inner_header_bytes = _octets(_single_value(content["header"]))
        header_type = content["header"]["type"].dotted
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, KeyBlockError):
        raise IntegrityError("the TR-34 key block does not decrypt under this key") from None
    if version != 1 or header_type != _OID_DATA:
        raise KeyBlockError("the TR-34 key block must be version 1 with a data header attribute")
    if not hmac.compare_digest(kdh_der, parsed.signer.der):
        raise KeyBlockError("the TR-34 key block names a different KDH than its signer")
    if not hmac.compare_digest(inner_header_bytes, parsed.header.encode("ascii")):
        raise KeyBlockError("the header inside the TR-34 key block differs from the signed one")
    if _encode_key_block_content(content["kdh_id"], key, parsed.header) != plaintext:
        raise KeyBlockError("the TR-34 key block is not DER in APC's shape")
    key_algorithm = _key_algorithm(parsed.header, len(key))
    check_tr34_strength(rsa_algorithm, key_algorithm, parsed.content_cipher)
    header = parse_header(parsed.header)
    attributes = key_attributes_from_header(parsed.header, len(key))
    return OpenedKeyBlock(
        header=parsed.header,
        key=key,
        key_algorithm=key_algorithm,
        key_attributes=attributes,
        exportable=header.exportable,
    )
