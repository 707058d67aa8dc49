"""TR-34 key blocks in APC's exact shape (apc-tr34.md sections 3.2-3.3).

The reference encoder here is deliberately independent of apckx.crypto.tr34: a tiny TLV
writer over the OIDs' DER bytes, laid out element by element as the doc (and AWS's import
builder) draw the block. apckx must build the same bytes and open what it builds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apckx.crypto import certs, tr34
from apckx.errors import ApckxError, InputError, IntegrityError, KeyBlockError, StrengthError

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)

# DER of the OIDs (value bytes only), written out as AWS's sample and the doc list them.
OID_DATA = bytes.fromhex("2A864886F70D010701")
OID_SIGNED_DATA = bytes.fromhex("2A864886F70D010702")
OID_ENVELOPED_DATA = bytes.fromhex("2A864886F70D010703")
OID_CONTENT_TYPE = bytes.fromhex("2A864886F70D010903")
OID_MESSAGE_DIGEST = bytes.fromhex("2A864886F70D010904")
OID_SIGNING_TIME = bytes.fromhex("2A864886F70D010905")
OID_RANDOM_NONCE = bytes.fromhex("2A864886F70D01091903")
OID_SHA256 = bytes.fromhex("608648016503040201")
OID_RSA_ENCRYPTION = bytes.fromhex("2A864886F70D010101")
OID_RSAES_OAEP = bytes.fromhex("2A864886F70D010107")
OID_MGF1 = bytes.fromhex("2A864886F70D010108")
OID_P_SPECIFIED = bytes.fromhex("2A864886F70D010109")
OID_DES_EDE3_CBC = bytes.fromhex("2A864886F70D0307")
OID_AES128_CBC = bytes.fromhex("608648016503040102")


def tlv(tag: int, *parts: bytes) -> bytes:
    body = b"".join(parts)
    if len(body) < 0x80:
        length = bytes([len(body)])
    else:
        octets = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(octets)]) + octets
    return bytes([tag]) + length + body


def children(element: bytes) -> list[bytes]:
    """The raw child elements (tag, length, value) of one constructed element."""
    offset = 2 if element[1] < 0x80 else 2 + (element[1] & 0x7F)
    body, out = element[offset:], []
    while body:
        size = body[1] if body[1] < 0x80 else int.from_bytes(body[2 : 2 + (body[1] & 0x7F)])
        header = 2 if body[1] < 0x80 else 2 + (body[1] & 0x7F)
        out.append(body[: header + size])
        body = body[header + size :]
    return out


def value(element: bytes) -> bytes:
    return element[2:] if element[1] < 0x80 else element[2 + (element[1] & 0x7F) :]


def issuer_and_serial(cert: x509.Certificate) -> bytes:
    tbs = children(children(cert.public_bytes(serialization.Encoding.DER))[0])
    return tlv(0x30, tbs[3], tbs[1])  # issuer Name, then serialNumber


@dataclass(frozen=True)
class Party:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate


@dataclass(frozen=True)
class Pki:
    ca: Party
    kdh: Party
    krd: dict[int, Party]
    other: Party  # a second signing key with its own certificate


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca_key, ca_cert = certs.new_rsa_sender_ca("RSA_4096", now=NOW)
    kdh_key, kdh_cert = certs.new_rsa_signing_leaf(ca_key, ca_cert, "RSA_2048", now=NOW)
    krd = {
        bits: Party(*certs.new_rsa_wrapping_leaf(ca_key, ca_cert, bits, now=NOW))
        for bits in (2048, 3072, 4096)
    }
    other = Party(*certs.new_rsa_signing_leaf(ca_key, ca_cert, "RSA_2048", now=NOW))
    return Pki(Party(ca_key, ca_cert), Party(kdh_key, kdh_cert), krd, other)


@dataclass
class Reference:
    """Inputs of the independent reference encoder; each flag breaks one shape rule."""

    key: bytes
    header: bytes
    content_key: bytes
    iv: bytes
    nonce: bytes | None
    encrypted_content_key: bytes
    aes: bool = False
    inner_header: bytes | None = None
    inner_kdh: bytes | None = None
    wrap_envelope_in_sequence: bool = False
    tagged_oaep_params: bool = False
    standard_attribute_order: bool = False
    with_certificates: bytes | None = None


def reference_block(ref: Reference, kdh: Party, krd: Party) -> bytes:
    kdh_id, krd_id = issuer_and_serial(kdh.cert), issuer_and_serial(krd.cert)
    header_attr = tlv(0x30, tlv(0x06, OID_DATA), tlv(0x31, tlv(0x04, ref.header)))
    inner_header_attr = tlv(
        0x30, tlv(0x06, OID_DATA), tlv(0x31, tlv(0x04, ref.inner_header or ref.header))
    )
    plaintext = tlv(
        0x30, tlv(0x02, b"\x01"), ref.inner_kdh or kdh_id, tlv(0x04, ref.key), inner_header_attr
    )
    block_size = 16 if ref.aes else 8
    pad = block_size - len(plaintext) % block_size
    algorithm = algorithms.AES(ref.content_key) if ref.aes else TripleDES(ref.content_key)
    encryptor = Cipher(algorithm, modes.CBC(ref.iv)).encryptor()
    encrypted = encryptor.update(plaintext + bytes([pad]) * pad) + encryptor.finalize()
    hash_alg = tlv(0x30, tlv(0x06, OID_SHA256), tlv(0x05))
    mgf = tlv(0x30, tlv(0x06, OID_MGF1), tlv(0x30, tlv(0x06, OID_SHA256)))
    p_source = tlv(0x30, tlv(0x06, OID_P_SPECIFIED), tlv(0x04))
    if ref.tagged_oaep_params:  # RFC 8017's [0]/[1]/[2] EXPLICIT form
        params = tlv(0x30, tlv(0xA0, hash_alg), tlv(0xA1, mgf), tlv(0xA2, p_source))
    else:
        params = tlv(0x30, hash_alg, mgf, p_source)
    recipient = tlv(
        0x30,
        tlv(0x02, b"\x00"),
        krd_id,
        tlv(0x30, tlv(0x06, OID_RSAES_OAEP), params),
        tlv(0x04, ref.encrypted_content_key),
    )
    envelope = (
        tlv(0x02, b"\x00")
        + tlv(0x31, recipient)
        + tlv(
            0x30,
            tlv(0x06, OID_DATA),
            tlv(
                0x30,
                tlv(0x06, OID_AES128_CBC if ref.aes else OID_DES_EDE3_CBC),
                tlv(0x04, ref.iv),
                tlv(0x80, encrypted),
            ),
        )
    )
    if ref.wrap_envelope_in_sequence:
        envelope = tlv(0x30, envelope)
    content_type = tlv(0x30, tlv(0x06, OID_CONTENT_TYPE), tlv(0x31, tlv(0x06, OID_ENVELOPED_DATA)))
    if ref.nonce is not None:
        fresh = tlv(0x30, tlv(0x06, OID_RANDOM_NONCE), tlv(0x31, tlv(0x04, ref.nonce)))
    else:
        fresh = tlv(0x30, tlv(0x06, OID_SIGNING_TIME), tlv(0x31, tlv(0x17, b"261128120000Z")))
    digest = tlv(
        0x30,
        tlv(0x06, OID_MESSAGE_DIGEST),
        tlv(0x31, tlv(0x04, hashlib.sha256(envelope).digest())),
    )
    attrs = (
        [content_type, header_attr, fresh, digest]
        if ref.standard_attribute_order
        else [content_type, fresh, header_attr, digest]
    )
    signature = kdh.key.sign(tlv(0x31, *attrs), padding.PKCS1v15(), hashes.SHA256())
    signer = tlv(
        0x30,
        tlv(0x02, b"\x01"),
        kdh_id,
        tlv(0x30, tlv(0x06, OID_SHA256)),
        tlv(0xA0, *attrs),
        tlv(0x30, tlv(0x06, OID_RSA_ENCRYPTION), tlv(0x05)),
        tlv(0x04, signature),
    )
    signed_data = [
        tlv(0x02, b"\x01"),
        tlv(0x31, tlv(0x30, tlv(0x06, OID_SHA256))),
        tlv(0x30, tlv(0x06, OID_ENVELOPED_DATA), tlv(0xA0, tlv(0x04, envelope))),
    ]
    if ref.with_certificates is not None:
        signed_data.append(tlv(0xA0, ref.with_certificates))
    signed_data.append(tlv(0x31, signer))
    return tlv(0x30, tlv(0x06, OID_SIGNED_DATA), tlv(0xA0, tlv(0x30, *signed_data)))


TDES_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA98765432100123456789ABCDEF")[:16]
AES_KEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
NONCE = bytes.fromhex("167EB0E72781E494")


def _reference_for(pki: Pki, krd_bits: int, *, aes: bool, **changes: object) -> Reference:
    content_key = bytes(range(16)) if aes else bytes(range(24))
    krd = pki.krd[krd_bits]
    ref = Reference(
        key=AES_KEY if aes else TDES_KEY,
        header=(b"D9999K0AB00E0000" if aes else b"D9999K0TB00E0000"),
        content_key=content_key,
        iv=bytes(range(16, 32)) if aes else bytes(range(8)),
        nonce=NONCE,
        encrypted_content_key=krd.cert.public_key().encrypt(  # type: ignore[union-attr]
            content_key,
            padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None),
        ),
        aes=aes,
    )
    for name, change in changes.items():
        setattr(ref, name, change)
    return ref


# --- building: byte for byte against the reference ------------------------------------------


@pytest.mark.parametrize("aes", [False, True], ids=["TDES", "AES_128"])
def test_build_matches_the_reference_byte_for_byte(pki: Pki, aes: bool) -> None:
    krd = pki.krd[3072]
    ref = _reference_for(pki, 3072, aes=aes)
    built = tr34.build_key_block(
        ref.key,
        ref.header.decode(),
        signing_key=pki.kdh.key,
        signing_certificate=pki.kdh.cert,
        wrapping_certificate=krd.cert,
        nonce=ref.nonce,
        content_key=ref.content_key,
        iv=ref.iv,
    )
    # OAEP is randomized: the content key our block carries must decrypt to the given one,
    # and with that ciphertext every other byte is the reference's.
    oaep_ciphertext = tr34.parse_key_block(built).encrypted_content_key
    assert (
        krd.key.decrypt(
            oaep_ciphertext, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
        )
        == ref.content_key
    )
    ref.encrypted_content_key = oaep_ciphertext
    assert built == reference_block(ref, pki.kdh, krd)


def test_one_pass_matches_the_reference(pki: Pki) -> None:
    krd = pki.krd[2048]
    ref = _reference_for(pki, 2048, aes=False, nonce=None)
    built = tr34.build_key_block(
        ref.key,
        ref.header.decode(),
        signing_key=pki.kdh.key,
        signing_certificate=pki.kdh.cert,
        wrapping_certificate=krd.cert,
        signing_time=NOW,
        content_key=ref.content_key,
        iv=ref.iv,
    )
    ref.encrypted_content_key = tr34.parse_key_block(built).encrypted_content_key
    assert built == reference_block(ref, pki.kdh, krd)


def test_shape_details_in_the_der(pki: Pki) -> None:
    """The doc's checks, read off the DER with the independent walker."""
    built = tr34.build_key_block(
        TDES_KEY,
        "D9999K1TB00E0000",
        signing_key=pki.kdh.key,
        signing_certificate=pki.kdh.cert,
        wrapping_certificate=pki.krd[2048].cert,
        nonce=NONCE,
    )
    content_info = children(built)
    signed_data = children(children(content_info[1])[0])
    assert len(signed_data) == 4  # version, digestAlgorithms, encap, signerInfos: no certs/CRLs
    assert signed_data[1] == tlv(0x31, tlv(0x30, tlv(0x06, OID_SHA256)))  # no NULL
    signer = children(children(signed_data[3])[0])
    assert len(signer) == 6
    attributes = children(signer[3])
    assert signer[3][0] == 0xA0
    assert [value(children(a)[0]) for a in attributes] == [
        OID_CONTENT_TYPE,
        OID_RANDOM_NONCE,
        OID_DATA,
        OID_MESSAGE_DIGEST,
    ]
    assert value(children(children(attributes[2])[1])[0]) == b"D9999K1TB00E0000"
    envelope = value(children(children(signed_data[2])[1])[0])
    top = children(tlv(0x30, envelope))  # wrap it here to walk its top-level items
    assert [element[0] for element in top] == [0x02, 0x31, 0x30]  # no outer SEQUENCE
    recipient = children(children(top[1])[0])
    oaep = children(recipient[2])
    assert value(oaep[0]) == OID_RSAES_OAEP
    assert [element[0] for element in children(oaep[1])] == [0x30, 0x30, 0x30]  # untagged
    assert children(oaep[1])[0] == tlv(0x30, tlv(0x06, OID_SHA256), tlv(0x05))
    encryption = children(children(top[2])[1])
    assert value(encryption[0]) == OID_DES_EDE3_CBC
    assert [element[0] for element in encryption] == [0x06, 0x04, 0x80]
    assert signer[4] == tlv(0x30, tlv(0x06, OID_RSA_ENCRYPTION), tlv(0x05))


_DOC_IMPORT_PREFIX = (
    "308205A106092A864886F70D010702A08205923082058E020101310D300B0609608648016503040201308203"
)
_DOC_EXPORT_PREFIX = "3082055A06092A864886F70D010702A082054B30820547"


def _mask_lengths(prefix: str) -> str:
    # The doc's blocks came from unknown keys and names: compare everything but lengths.
    return re.sub(
        r"(30|A0)82[0-9A-F]{0,4}", lambda m: m.group(0)[:4] + "." * (len(m.group(0)) - 4), prefix
    )


@pytest.mark.parametrize("doc_prefix", [_DOC_IMPORT_PREFIX, _DOC_EXPORT_PREFIX])
def test_prefix_matches_the_documented_blocks(pki: Pki, doc_prefix: str) -> None:
    built = tr34.key_block_to_hex(
        tr34.build_key_block(
            TDES_KEY,
            "D9999K0TB00E0000",
            signing_key=pki.kdh.key,
            signing_certificate=pki.kdh.cert,
            wrapping_certificate=pki.krd[2048].cert,
            nonce=NONCE,
        )
    )
    pattern = _mask_lengths(doc_prefix)
    assert re.match(pattern, built), (pattern, built[: len(doc_prefix)])


# --- opening: round trips and the reference block --------------------------------------------

_CASES = [
    (2048, "TDES_2KEY", 2),
    (2048, "TDES_3KEY", 1),
    (3072, "AES_128", 2),
    (3072, "TDES_2KEY", 1),
    (4096, "AES_128", 1),
    (4096, "TDES_3KEY", 2),
]


@pytest.mark.parametrize(("bits", "algorithm", "passes"), _CASES)
def test_round_trip(pki: Pki, bits: int, algorithm: str, passes: int) -> None:
    key = {"TDES_2KEY": TDES_KEY, "TDES_3KEY": TDES_KEY + bytes(range(8)), "AES_128": AES_KEY}[
        algorithm
    ]
    header = tr34.build_tr34_header(key_usage="K0", key_algorithm=algorithm, exportability="N")
    nonce = NONCE if passes == 2 else None
    built = tr34.build_key_block(
        key,
        header,
        signing_key=pki.kdh.key,
        signing_certificate=pki.kdh.cert,
        wrapping_certificate=pki.krd[bits].cert,
        nonce=nonce,
        signing_time=None if nonce else NOW,
    )
    parsed = tr34.parse_key_block(tr34.key_block_from_hex(tr34.key_block_to_hex(built)))
    assert parsed.passes == passes
    assert parsed.signer.matches(pki.kdh.cert)
    assert parsed.recipient.matches(pki.krd[bits].cert)
    assert parsed.header == header
    assert parsed.content_cipher == ("AES_128_CBC" if algorithm == "AES_128" else "TDES_CBC")
    assert key.hex() not in repr(parsed).lower()
    opened = tr34.open_key_block(
        built,
        pki.krd[bits].key,
        signing_certificate=pki.kdh.cert,
        nonce=nonce,
        wrapping_certificate=pki.krd[bits].cert,
        now=NOW,
    )
    assert opened.key == key
    assert opened.key_algorithm == algorithm
    assert opened.key_attributes["KeyUsage"] == "TR31_K0_KEY_ENCRYPTION_KEY"
    assert opened.exportable is False
    assert key.hex() not in repr(opened).lower()


@pytest.mark.parametrize("aes", [False, True], ids=["TDES", "AES_128"])
def test_opens_the_reference_block(pki: Pki, aes: bool) -> None:
    ref = _reference_for(pki, 4096, aes=aes)
    block = reference_block(ref, pki.kdh, pki.krd[4096])
    opened = tr34.open_key_block(
        block, pki.krd[4096].key, signing_certificate=pki.kdh.cert, nonce=NONCE
    )
    assert opened.key == ref.key
    assert opened.header == ref.header.decode()


def test_tdes_payload_under_aes_content_cipher(pki: Pki) -> None:
    built = tr34.build_key_block(
        TDES_KEY,
        "D9999K0TB00E0000",
        signing_key=pki.kdh.key,
        signing_certificate=pki.kdh.cert,
        wrapping_certificate=pki.krd[2048].cert,
        nonce=NONCE,
        content_cipher="AES_128_CBC",
    )
    opened = tr34.open_key_block(
        built, pki.krd[2048].key, signing_certificate=pki.kdh.cert, nonce=NONCE
    )
    assert opened.key == TDES_KEY


# --- strength rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rsa_algorithm", "key_algorithm", "cipher", "allowed"),
    [
        ("RSA_2048", "TDES_2KEY", None, True),
        ("RSA_2048", "TDES_3KEY", "TDES_CBC", True),
        ("RSA_2048", "AES_128", None, False),
        ("RSA_3072", "AES_128", "AES_128_CBC", True),
        ("RSA_4096", "AES_128", "AES_128_CBC", True),
        ("RSA_4096", "AES_128", "TDES_CBC", False),
        ("RSA_4096", "AES_192", None, False),
        ("RSA_4096", "AES_256", None, False),
        ("RSA_4096", "HMAC_SHA256", None, False),
    ],
)
def test_strength_rules(
    rsa_algorithm: str, key_algorithm: str, cipher: str | None, allowed: bool
) -> None:
    if allowed:
        tr34.check_tr34_strength(rsa_algorithm, key_algorithm, cipher)
    else:
        with pytest.raises(StrengthError):
            tr34.check_tr34_strength(rsa_algorithm, key_algorithm, cipher)


def test_build_refuses_aes_under_rsa_2048(pki: Pki) -> None:
    with pytest.raises(StrengthError, match="RSA_3072"):
        tr34.build_key_block(
            AES_KEY,
            "D9999K0AB00E0000",
            signing_key=pki.kdh.key,
            signing_certificate=pki.kdh.cert,
            wrapping_certificate=pki.krd[2048].cert,
            nonce=NONCE,
        )


def test_open_refuses_aes_under_rsa_2048(pki: Pki) -> None:
    block = reference_block(_reference_for(pki, 2048, aes=True), pki.kdh, pki.krd[2048])
    with pytest.raises(StrengthError):
        tr34.open_key_block(block, pki.krd[2048].key, signing_certificate=pki.kdh.cert, nonce=NONCE)


def test_open_refuses_aes_key_under_tdes_content_key(pki: Pki) -> None:
    ref = _reference_for(pki, 3072, aes=False, key=AES_KEY, header=b"D9999K0AB00E0000")
    block = reference_block(ref, pki.kdh, pki.krd[3072])
    with pytest.raises(StrengthError):
        tr34.open_key_block(block, pki.krd[3072].key, signing_certificate=pki.kdh.cert, nonce=NONCE)


# --- negative cases -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def block(pki: Pki) -> bytes:
    return reference_block(_reference_for(pki, 3072, aes=True), pki.kdh, pki.krd[3072])


def _open(pki: Pki, data: bytes, nonce: bytes | None = NONCE, **kwargs: object) -> object:
    arguments: dict[str, object] = {"signing_certificate": pki.kdh.cert, "nonce": nonce}
    arguments.update(kwargs)
    return tr34.open_key_block(data, pki.krd[3072].key, **arguments)  # type: ignore[arg-type]


def _flip(data: bytes, marker: bytes, offset: int = 0) -> bytes:
    at = data.index(marker) + offset
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_tampered_envelope_is_an_integrity_error(pki: Pki, block: bytes) -> None:
    encrypted = tr34.parse_key_block(block).encrypted_key_block
    with pytest.raises(IntegrityError) as caught:
        _open(pki, _flip(block, encrypted, 5))
    assert str(caught.value) == "TR-34 signature verification failed"


def test_tampered_header_is_an_integrity_error(pki: Pki, block: bytes) -> None:
    tampered = block.replace(b"D9999K0AB00E0000", b"D9999K1AB00E0000", 1)
    assert tampered != block
    with pytest.raises(IntegrityError):
        _open(pki, tampered)


def test_signature_by_another_key(pki: Pki) -> None:
    forged = reference_block(
        _reference_for(pki, 3072, aes=True), Party(pki.other.key, pki.kdh.cert), pki.krd[3072]
    )
    with pytest.raises(IntegrityError):
        _open(pki, forged)


def test_verified_with_another_certificate(pki: Pki, block: bytes) -> None:
    with pytest.raises(IntegrityError):
        tr34.verify_signature(tr34.parse_key_block(block), pki.other.cert)


def test_wrong_nonce(pki: Pki, block: bytes) -> None:
    with pytest.raises(IntegrityError, match="nonce"):
        _open(pki, block, nonce=bytes(8))


def test_two_pass_without_nonce_and_one_pass_with_one(pki: Pki, block: bytes) -> None:
    with pytest.raises(KeyBlockError, match="2-pass"):
        _open(pki, block, nonce=None)
    one_pass = reference_block(
        _reference_for(pki, 3072, aes=True, nonce=None), pki.kdh, pki.krd[3072]
    )
    with pytest.raises(KeyBlockError, match="1-pass"):
        _open(pki, one_pass)
    _open(pki, one_pass, nonce=None, now=NOW)
    with pytest.raises(KeyBlockError, match="future"):
        _open(pki, one_pass, nonce=None, now=NOW - dt.timedelta(days=1))


def test_wrong_recipient(pki: Pki, block: bytes) -> None:
    with pytest.raises(IntegrityError):
        tr34.open_key_block(block, pki.krd[4096].key, signing_certificate=pki.kdh.cert, nonce=NONCE)
    with pytest.raises(KeyBlockError, match="another recipient"):
        _open(pki, block, wrapping_certificate=pki.krd[4096].cert)


def test_inner_header_or_kdh_that_differ(pki: Pki) -> None:
    changed_header = reference_block(
        _reference_for(pki, 3072, aes=True, inner_header=b"D9999K1AB00E0000"),
        pki.kdh,
        pki.krd[3072],
    )
    with pytest.raises(KeyBlockError, match="header"):
        _open(pki, changed_header)
    changed_kdh = reference_block(
        _reference_for(pki, 3072, aes=True, inner_kdh=issuer_and_serial(pki.other.cert)),
        pki.kdh,
        pki.krd[3072],
    )
    with pytest.raises(KeyBlockError, match="KDH"):
        _open(pki, changed_kdh)


@pytest.mark.parametrize(
    "change",
    [
        {"wrap_envelope_in_sequence": True},
        {"tagged_oaep_params": True},
        {"standard_attribute_order": True},
        {"with_certificates": b"certificate"},
    ],
    ids=["sequence-wrapped envelope", "tagged OAEP params", "standard order", "certificates"],
)
def test_other_shapes_are_refused(pki: Pki, change: dict[str, object]) -> None:
    ref = _reference_for(pki, 3072, aes=True, **change)
    if "with_certificates" in change:
        ref.with_certificates = pki.kdh.cert.public_bytes(serialization.Encoding.DER)
    with pytest.raises(KeyBlockError):
        tr34.parse_key_block(reference_block(ref, pki.kdh, pki.krd[3072]))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b[:-1],
        lambda b: b + b"\x00",
        lambda b: b"\x31" + b[1:],
        lambda b: b[:40],
        lambda b: b"",
    ],
    ids=["truncated", "trailing byte", "SET instead of SEQUENCE", "cut short", "empty"],
)
def test_malformed_der(block: bytes, mangle: Callable[[bytes], bytes]) -> None:
    with pytest.raises(KeyBlockError):
        tr34.parse_key_block(mangle(block))


def test_wire_hex(block: bytes) -> None:
    text = tr34.key_block_to_hex(block)
    assert text == text.upper() and tr34.key_block_from_hex(text) == block
    for bad in (text.lower(), text[:-1], text + "G"):
        with pytest.raises(KeyBlockError):
            tr34.key_block_from_hex(bad)


def test_build_input_errors(pki: Pki) -> None:
    arguments = {
        "signing_key": pki.kdh.key,
        "signing_certificate": pki.kdh.cert,
        "wrapping_certificate": pki.krd[2048].cert,
    }
    with pytest.raises(InputError, match="nonce"):
        tr34.build_key_block(TDES_KEY, "D9999K0TB00E0000", **arguments)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="8 to 16"):
        tr34.build_key_block(TDES_KEY, "D9999K0TB00E0000", nonce=b"1234", **arguments)  # type: ignore[arg-type]
    with pytest.raises(KeyBlockError):
        tr34.build_key_block(TDES_KEY, "D9999K0TB00E00", nonce=NONCE, **arguments)  # type: ignore[arg-type]
    with pytest.raises(KeyBlockError):
        tr34.build_key_block(bytes(12), "D9999K0TB00E0000", nonce=NONCE, **arguments)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="content key"):
        tr34.build_key_block(
            TDES_KEY,
            "D9999K0TB00E0000",
            nonce=NONCE,
            content_key=bytes(16),
            **arguments,  # type: ignore[arg-type]
        )


def test_build_tr34_header() -> None:
    assert (
        tr34.build_tr34_header(
            key_usage="TR31_K1_KEY_BLOCK_PROTECTION_KEY", key_algorithm="TDES_3KEY"
        )
        == "D9999K1TB00E0000"
    )
    assert (
        tr34.build_tr34_header(
            key_usage="B0", key_algorithm="AES_128", mode_of_use="X", exportability="S"
        )
        == "D9999B0AX00S0000"
    )
    with pytest.raises(KeyBlockError):
        tr34.build_tr34_header(key_usage="K0", key_algorithm="HMAC_SHA256")
    with pytest.raises(InputError):
        tr34.build_tr34_header(key_usage="B0", key_algorithm="AES_128", mode_of_use="B")


def test_dukpt_initial_key_header_round_trip(pki: Pki) -> None:
    header = tr34.build_tr34_header(
        key_usage="B1", key_algorithm="TDES_2KEY", mode_of_use="X", exportability="S"
    )
    assert header == "D9999B1TX00S0000"
    built = tr34.build_key_block(
        TDES_KEY,
        header,
        signing_key=pki.kdh.key,
        signing_certificate=pki.kdh.cert,
        wrapping_certificate=pki.krd[2048].cert,
        nonce=NONCE,
    )
    opened = tr34.open_key_block(
        built, pki.krd[2048].key, signing_certificate=pki.kdh.cert, nonce=NONCE
    )
    assert opened.key == TDES_KEY
    assert opened.key_attributes is None  # APC has no KeyUsage for B1
    assert opened.exportable is True
    with pytest.raises(KeyBlockError, match="B1"):
        tr34.build_tr34_header(key_usage="B1", key_algorithm="TDES_2KEY", mode_of_use="B")


# --- hostile input: only apckx's own errors come out ----------------------------------------


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_blocks_raise_only_apckx_errors(
    pki: Pki, block: bytes, data: st.DataObject
) -> None:
    mutated = bytearray(block)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(mutated) - 1))
        mutated[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(mutated)))
    candidate = bytes(mutated[:cut])
    try:
        parsed = tr34.parse_key_block(candidate)
    except KeyBlockError:
        return
    if candidate == block:
        return  # the mutations put every byte back
    with pytest.raises(ApckxError):
        tr34.open_key_block(
            parsed, pki.krd[3072].key, signing_certificate=pki.kdh.cert, nonce=NONCE
        )


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_a_key_block_error(raw: bytes) -> None:
    with pytest.raises(KeyBlockError):
        tr34.parse_key_block(raw)
