"""Export a key from APC over TR-34 (APC as KDH) or RSA wrap (``export-key --via tr34|rsa``).

Two destinations (apc-tr34.md 3.3, 3.5):

* **apckx's own RSA key** (no ``--krd-certificate``): a wrapping leaf under apckx's RSA CA
  (``certs/``, 0600, reused), the CA imported into APC as a root (reused by fingerprint tag).
  TR-34: GetParametersForExport gives APC's signing certificate, verified up APC's chain; the
  block APC returns is parsed, its signature, nonce and recipient checked, opened with our
  wrapping key, and the key's KCV compared with APC's (constant time). RSA wrap: the
  cryptogram is opened with our key and its KCV compared. The key is then written as XOR
  components or as a TR-31 block under a KEK the caller names (export-key's output code).
* **a partner's certificate** (``--krd-certificate FILE --krd-ca FILE``): the certificate is
  verified under the CA before any call; the CA is imported as a root (reused by tag); apckx
  only relays the block: it checks the TR-34 signature, nonce and recipient (no key needed),
  never holds the key, and writes the block 0600 for the HSM to load.

``ipek_ksn``: ExportAttributes.ExportDukptInitialKey: the IPEK of a B0 BDK for that KSN
instead of the key itself (its header says B1).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apckx.ceremonies.journal import Journal
from apckx.ceremonies.tr34_session import (
    KEY_BLOCK_FORMAT,
    TR34_ROOT_ALIAS,
    ApcCertificate,
    RsaSession,
    load_ca_certificates,
    load_or_create_rsa_credentials,
)
from apckx.errors import (
    CeremonyError,
    CertificateError,
    InputError,
    IntegrityError,
    KcvMismatchError,
)

if TYPE_CHECKING:
    from cryptography import x509

    from apckx.ceremonies.export_key import ExportedKey
    from apckx.service.apc import ApcService

KRD_ROOT_ROLE = "krd-root"
NONCE_BYTES = 8


@dataclass(frozen=True)
class RsaExportOptions:
    via: str  # "tr34" | "rsa"
    certs_dir: Path = Path("certs")
    root_alias: str | None = None
    one_pass: bool = False
    wrapping_spec: str = "RSA_OAEP_SHA_256"
    trust_apc_root: str | None = None
    krd_certificate: Path | None = None
    krd_ca: Path | None = None
    ipek_ksn: str | None = None

    @property
    def relay(self) -> bool:
        return self.krd_certificate is not None


@dataclass(frozen=True)
class Partner:
    """A partner's KRD certificate, verified under its CA (before any call)."""

    certificate: x509.Certificate
    ca: x509.Certificate
    rsa_algorithm: str


def check_export_options(options: RsaExportOptions) -> Partner | None:
    """Local checks before any call; the partner's certificate verified under its CA."""
    from apckx.crypto.certs import verify_rsa_chain
    from apckx.crypto.rsa_wrap import WRAPPING_SPECS, rsa_algorithm_for

    if options.via not in ("tr34", "rsa"):
        raise InputError("--via must be tr34 or rsa")
    if options.via == "rsa" and options.one_pass:
        raise InputError("--one-pass is for --via tr34 (RSA wrap has no passes)")
    if options.wrapping_spec not in WRAPPING_SPECS:
        raise InputError(f"--wrapping-spec must be one of {', '.join(WRAPPING_SPECS)}")
    if options.ipek_ksn is not None:
        check_ksn(options.ipek_ksn)
    if (options.krd_certificate is None) != (options.krd_ca is None):
        raise InputError("--krd-certificate and --krd-ca go together (the partner's leaf and CA)")
    if options.krd_certificate is None or options.krd_ca is None:
        return None
    leaf = load_ca_certificates(options.krd_certificate)[0]
    anchors = load_ca_certificates(options.krd_ca)
    try:
        verify_rsa_chain(leaf, anchors)
    except CertificateError as exc:
        raise InputError(
            f"--krd-certificate {options.krd_certificate} does not verify under --krd-ca "
            f"{options.krd_ca}: {exc}"
        ) from None
    issuer = next(c for c in anchors if c.subject == leaf.issuer)
    public_key = leaf.public_key()
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not isinstance(public_key, rsa.RSAPublicKey):
        raise InputError(f"--krd-certificate {options.krd_certificate} holds no RSA key")
    return Partner(leaf, issuer, rsa_algorithm_for(public_key))


def check_ksn(ksn: str) -> str:
    import re

    if not re.fullmatch(r"[0-9A-F]{20}|[0-9A-F]{24}", ksn):
        raise InputError(
            "--ksn must be 20 upper-case hex characters (TDES DUKPT) or 24 (AES DUKPT)"
        )
    return ksn


@dataclass(frozen=True)
class _Source:
    arn: str
    algorithm: str  # of what travels (the IPEK's for --ipek)
    kcv: str  # APC's KCV of the key (empty for an IPEK: the answer carries it)
    header: str  # a TR-34 header describing it (for RSA wrap, synthesized)


def _describe_source(apc: ApcService, key_id: str, ipek_ksn: str | None) -> _Source:
    from apckx.crypto.attributes import KEY_USAGES, code_from_modes
    from apckx.crypto.tr34 import build_tr34_header

    key = apc.get_key(key_id)
    attributes = key.get("KeyAttributes", {})
    algorithm = str(attributes.get("KeyAlgorithm", ""))
    if attributes.get("KeyClass") != "SYMMETRIC_KEY":
        raise InputError(f"{key_id} is not a symmetric key: TR-34 and RSA wrap carry TDES/AES")
    if ipek_ksn is not None:
        if attributes.get("KeyUsage") != "TR31_B0_BASE_DERIVATION_KEY":
            raise InputError(f"--ipek needs a BDK (TR31_B0_BASE_DERIVATION_KEY): {key_id} is not")
        ipek_algorithm = "TDES_2KEY" if algorithm.startswith("TDES") else algorithm
        header = f"D9999B1{ipek_algorithm[0]}X00S0000"
        return _Source(str(key["KeyArn"]), ipek_algorithm, "", header)
    if not key.get("Exportable", False):
        raise InputError(f"{key_id} is not exportable (Exportable=false)")
    header = build_tr34_header(
        key_usage=KEY_USAGES[str(attributes["KeyUsage"])],
        key_algorithm=algorithm,
        mode_of_use=code_from_modes(attributes.get("KeyModesOfUse", {})),
        exportability="E",
    )
    return _Source(str(key["KeyArn"]), algorithm, str(key.get("KeyCheckValue", "")), header)


def export_over_rsa(
    apc: ApcService,
    *,
    key_id: str,
    options: RsaExportOptions,
    journal: Journal,
    partner: Partner | None,
    headers: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[ExportedKey | None, dict[str, Any]]:
    """Run the export. Returns (the opened key, or None when relayed; the record to print)."""
    from apckx.crypto.rsa_wrap import check_rsa_transport_strength

    say = progress or (lambda _msg: None)
    source = _describe_source(apc, key_id, options.ipek_ksn)
    if partner is not None:
        receiver_cert, ca_cert, rsa_algorithm = (
            partner.certificate,
            partner.ca,
            partner.rsa_algorithm,
        )
        wrapping_key = None
        from apckx.crypto.certs import fingerprint_sha256

        fp = fingerprint_sha256(ca_cert)
        root_alias = options.root_alias or f"alias/apckx-krd-ca-{fp[:16].lower()}"
        role = KRD_ROOT_ROLE
        fresh = False
    else:
        check_rsa_transport_strength("RSA_3072", source.algorithm)
        creds = load_or_create_rsa_credentials(options.certs_dir, "wrapping")
        receiver_cert, ca_cert = creds.leaf.cert, creds.ca.cert
        wrapping_key, rsa_algorithm = creds.leaf.key, "RSA_3072"
        root_alias, role, fresh = options.root_alias or TR34_ROOT_ALIAS, "tr34-root", creds.created
    check_rsa_transport_strength(rsa_algorithm, source.algorithm)
    session = RsaSession(apc, journal, root_alias=root_alias,
                         trust_apc_root=options.trust_apc_root, progress=say)  # fmt: skip
    root_arn, root_reused = session.find_or_import_root(ca_cert, fresh=fresh, role=role)
    from apckx.crypto.certs import certificate_to_apc

    member: dict[str, Any] = {
        "CertificateAuthorityPublicKeyIdentifier": root_arn,
        "WrappingKeyCertificate": certificate_to_apc(receiver_cert),
    }
    attributes: dict[str, Any] | None = None
    if options.ipek_ksn is not None:
        from apckx.crypto.attributes import default_kcv_algorithm

        attributes = {
            "ExportDukptInitialKey": {"KeySerialNumber": options.ipek_ksn},
            "KeyCheckValueAlgorithm": default_kcv_algorithm(source.algorithm),
        }
    nonce: bytes | None = None
    signer: ApcCertificate | None = None
    if options.via == "tr34":
        signing_algorithm = "RSA_3072" if source.algorithm.startswith("AES") else "RSA_2048"
        token, signer = session.get_export_parameters(signing_algorithm)
        nonce = None if options.one_pass else os.urandom(NONCE_BYTES)
        member.update({"ExportToken": token, "KeyBlockFormat": KEY_BLOCK_FORMAT})
        if nonce is not None:
            member["RandomNonce"] = nonce.hex().upper()
        if headers:
            member["KeyBlockHeaders"] = headers
        material = {"Tr34KeyBlock": member}
    else:
        member["WrappingSpec"] = options.wrapping_spec
        material = {"KeyCryptogram": member}
    wrapped = apc.export_key(
        export_key_identifier=source.arn, key_material=material, export_attributes=attributes
    )
    say(f"APC exported {source.arn} ({options.via})")
    block_text = str(wrapped.get("KeyMaterial", ""))
    record: dict[str, Any] = {
        "key_arn": source.arn,
        "via": options.via,
        "wrapping_key_arn": str(wrapped.get("WrappingKeyArn") or root_arn),
        "key_algorithm": source.algorithm,
        "root_key_arn": root_arn,
        "root_reused": root_reused,
        "receiver": "partner" if partner is not None else "apckx",
        "receiver_rsa_algorithm": rsa_algorithm,
        "ipek_ksn": options.ipek_ksn,
    }
    header = source.header
    if options.via == "tr34":
        header, block_details = _check_tr34_answer(block_text, signer, nonce, receiver_cert)
        record.update(block_details)
    else:
        record["wrapping_spec"] = options.wrapping_spec
    record["header"] = header
    apc_kcv = str(wrapped.get("KeyCheckValue") or source.kcv)
    kcv_algorithm = str(wrapped.get("KeyCheckValueAlgorithm") or "")
    if wrapping_key is None:
        record.update({"kcv": apc_kcv or None, "key_block": block_text})
        journal.step("export", key_arn=source.arn, via=options.via, relayed=True,
                     header=header, kcv=apc_kcv or None)  # fmt: skip
        return None, record
    exported = _open(block_text, wrapping_key, options, signer, nonce, receiver_cert, source,
                     apc_kcv, kcv_algorithm, record)  # fmt: skip
    journal.step("export", key_arn=source.arn, via=options.via, header=header, kcv=exported.kcv)
    return exported, record


def _check_tr34_answer(
    block_text: str, signer: ApcCertificate | None, nonce: bytes | None, receiver: Any
) -> tuple[str, dict[str, Any]]:
    """The relay's checks (no key needed): APC's signature, our nonce, our recipient. A block
    that fails them is APC's answer, not the caller's input: ``CeremonyError`` (exit 1)."""
    from apckx.crypto.tr34 import check_nonce, key_block_from_hex, parse_key_block, verify_signature

    if signer is None:
        raise InputError("a TR-34 export needs APC's signing certificate")
    with _refusing_apc_answer():
        block = parse_key_block(key_block_from_hex(block_text))
    verify_signature(block, signer.leaf)
    try:
        check_nonce(block, nonce)
    except (IntegrityError, InputError):
        sent = "no nonce (1-pass)" if nonce is None else f"the RandomNonce {nonce.hex().upper()}"
        got = "none (1-pass)" if block.nonce is None else block.nonce.hex().upper()
        raise CeremonyError(
            f"APC's TR-34 block does not carry the random nonce apckx sent ({sent}; the "
            f"block has {got}): a replayed or substituted block, neither opened nor written; "
            "run the export again"
        ) from None
    if not block.recipient.matches(receiver):
        raise CertificateError("APC's TR-34 block is for another recipient than the one asked")
    return block.header, {
        "passes": block.passes,
        "random_nonce": block.nonce.hex().upper() if block.nonce else None,
        "content_cipher": block.content_cipher,
        "apc_signing_fingerprint": signer.leaf_fingerprint,
        "apc_root_fingerprint": signer.root_fingerprint,
    }


@contextlib.contextmanager
def _refusing_apc_answer() -> Iterator[None]:
    """An ``InputError`` (``KeyBlockError``...) while reading APC's answer is not bad input
    from the caller (exit 2) but a refused answer after the call: ``CeremonyError``."""
    try:
        yield
    except InputError as exc:
        raise CeremonyError(f"APC's answer is refused: {exc}") from None


def _open(
    block_text: str,
    wrapping_key: Any,
    options: RsaExportOptions,
    signer: ApcCertificate | None,
    nonce: bytes | None,
    receiver: Any,
    source: _Source,
    apc_kcv: str,
    kcv_algorithm: str,
    record: dict[str, Any],
) -> ExportedKey:
    from apckx.ceremonies.export_key import ExportedKey
    from apckx.crypto.attributes import default_kcv_algorithm
    from apckx.crypto.kcv import compute_kcv, kcv_matches
    from apckx.crypto.tr31 import parse_header

    if options.via == "tr34":
        from apckx.crypto.tr34 import key_block_from_hex, open_key_block

        assert_signer = signer.leaf if signer is not None else None
        if assert_signer is None:
            raise InputError("a TR-34 export needs APC's signing certificate")
        with _refusing_apc_answer():
            opened = open_key_block(
                key_block_from_hex(block_text), wrapping_key, signing_certificate=assert_signer,
                nonce=nonce, wrapping_certificate=receiver,
                now=dt.datetime.now(dt.UTC),
            )  # fmt: skip
        key, header = opened.key, opened.header
        if opened.key_algorithm != source.algorithm:
            raise KcvMismatchError(
                f"the block holds a {opened.key_algorithm} key, but {source.arn} exports "
                f"{source.algorithm}"
            )
    else:
        from apckx.crypto.rsa_wrap import cryptogram_from_hex, unwrap_key

        with _refusing_apc_answer():
            key = unwrap_key(cryptogram_from_hex(block_text), wrapping_key, options.wrapping_spec)
        header = source.header
    kcv_algorithm = kcv_algorithm or default_kcv_algorithm(source.algorithm)
    local_kcv = compute_kcv(key, kcv_algorithm, key_algorithm=source.algorithm)
    if not apc_kcv or not kcv_matches(local_kcv, apc_kcv):
        raise KcvMismatchError(
            f"the opened key's KCV {local_kcv} does not match APC's {apc_kcv or '(none)'} for "
            f"{source.arn}; nothing was written"
        )
    record.update({"kcv": local_kcv, "kcv_algorithm": kcv_algorithm})
    return ExportedKey(
        key_arn=source.arn,
        key_block="",
        header=parse_header(header),
        key_algorithm=source.algorithm,
        kcv=local_kcv,
        kcv_algorithm=kcv_algorithm,
        wrapping_key_arn=str(record["wrapping_key_arn"]),
        via=options.via,
        key=key,
    )


def wrap_for_kek(exported: ExportedKey, kek: bytes, kek_algorithm: str) -> str:
    """The opened key as a TR-31 block under a KEK (version D for AES, B for TDES), with the
    attributes its TR-34 header (or APC's key) gave."""
    from apckx.crypto.attributes import check_wrapping_strength
    from apckx.crypto.tr31 import build_header, wrap_key_block

    check_wrapping_strength(kek_algorithm, exported.key_algorithm)
    parsed = exported.header
    header = build_header(
        key_usage=parsed.key_usage,
        key_algorithm=exported.key_algorithm,
        kbpk_algorithm=kek_algorithm,
        modes_of_use=parsed.mode_of_use,
        exportability=parsed.exportability,
        key_version=parsed.key_version,
    )
    return wrap_key_block(kek, header, exported.key)
