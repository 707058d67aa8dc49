"""ImportKey / ExportKey ``Tr34KeyBlock`` (ANSI X9 TR-34-2012, 1-pass and 2-pass), with the
real cryptography of :mod:`apckx.crypto.tr34` and AWS's refusals (issue 9; apc-tr34.md).

Import: the KDH signing certificate must verify under the imported root or trusted
certificate named by ``CertificateAuthorityPublicKeyIdentifier``; the block must be in
APC's exact shape, signed by that certificate's key over a digest of its envelope, carry
the ``RandomNonce`` (2-pass) or a signing time not in the future (1-pass), be addressed to
the wrapping certificate (the import token's, or the BYOCA ``WrappingKeyCertificate``),
decrypt under its private key (RSA-OAEP SHA-256) and obey the strength rules. The key's
attributes come from the block's header.

Export: the KRD certificate must verify under the named CA; the block is signed with the
export token's key (or the BYOCA ``SigningKeyIdentifier``), carries ``RandomNonce`` when
given (2-pass, else 1-pass with a signing time) and the key's header restricted by
``KeyBlockHeaders``. Every refusal is a ValidationException (ResourceNotFoundException for
unknown keys) whose message carries no key material.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from apckx.crypto import keys as crypto_keys
from apckx.crypto import rsa_wrap, tr34
from apckx.emulator.control.account import AccountState, locked
from apckx.emulator.control.certificates import (
    certificate_authority,
    check_ca_strength,
    check_validity_window,
    load_certificate,
    verify_issued_by,
)
from apckx.emulator.control.common import RSA_ALGORITHMS, refusals, to_datetime
from apckx.emulator.control.key_exchange import tokens
from apckx.emulator.control.key_exchange.common import (
    ExportRequest,
    ImportRequest,
    Params,
    WrappedKeyResult,
)
from apckx.emulator.control.key_exchange.export_payload import ExportPayload, payload_for
from apckx.emulator.control.key_exchange.tr31 import header_overrides
from apckx.emulator.control.keys import (
    check_key_quota,
    compute_symmetric_kcv,
    kcv_algorithm_for,
)
from apckx.emulator.control.records import S0, KeyRecord, all_modes
from apckx.emulator.control.rsa_keys import K2, rsa_private_key
from apckx.emulator.control.tags import check_tags
from apckx.emulator.exceptions import ValidationException

_CA_ROLE = "CertificateAuthorityPublicKeyIdentifier"


def store_imported_key(account: AccountState, material: bytes,
                       key_attributes: Mapping[str, object], *, exportable: bool,
                       exportability: str, key_version: str, request: ImportRequest,
                       what: str) -> KeyRecord:
    """Keep an imported symmetric key (KeyOrigin EXTERNAL) with its KCV."""
    algorithm = str(key_attributes["KeyAlgorithm"])
    modes_value = key_attributes["KeyModesOfUse"]
    modes = all_modes(modes_value if isinstance(modes_value, Mapping) else {})
    with refusals(what):
        crypto_keys.check_key_material(material, algorithm, what="the imported key")
    tag_map = check_tags(request.tags)
    check_key_quota(account)
    kcv_algorithm = kcv_algorithm_for(algorithm, request.key_check_value_algorithm)
    now = account.now()
    key = KeyRecord(
        key_id=account.new_key_id(), account_id=account.account_id, region=account.region,
        key_usage=str(key_attributes["KeyUsage"]), key_class=str(key_attributes["KeyClass"]),
        key_algorithm=algorithm, modes=modes,
        key_check_value=compute_symmetric_kcv(material, algorithm, kcv_algorithm),
        key_check_value_algorithm=kcv_algorithm, enabled=request.enabled,
        exportable=exportable, key_origin="EXTERNAL", create_timestamp=now,
        usage_start_timestamp=now if request.enabled else None, exportability=exportability,
        key_version=key_version, tags=tag_map, secret_hex=material.hex().upper(),
    )
    return account.add_key(key)


def rsa_certificate(member: Params, name: str) -> tuple[x509.Certificate, rsa.RSAPublicKey]:
    """A base64-PEM certificate member that must hold an RSA key of an APC size."""
    certificate = load_certificate(member[name], name)
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size not in (
        RSA_ALGORITHMS.values()
    ):
        raise ValidationException(
            f"{name} must hold an RSA_2048, RSA_3072 or RSA_4096 public key"
        )
    return certificate, public_key


def _same_public_key(certificate: x509.Certificate, key: rsa.RSAPrivateKey) -> bool:
    public = certificate.public_key()
    return (isinstance(public, rsa.RSAPublicKey)
            and public.public_numbers() == key.public_key().public_numbers())


def nonce_from(member: Params) -> bytes | None:
    """``RandomNonce`` (even hex, 16..32 characters, validated by the model) as bytes."""
    text = member.get("RandomNonce")
    return None if text is None else bytes.fromhex(text)


# --- import -----------------------------------------------------------------------------


def _token_or_byoca_key(account: AccountState, member: Params, *, issued_field: str,
                        token_kind: str, parameters_operation: str, key_field: str,
                        certificate_field: str, check_key: Callable[[KeyRecord], None],
                        mismatch_detail: str = ""
                        ) -> tuple[rsa.RSAPrivateKey, x509.Certificate,
                                   tokens.TokenRecord | None]:
    """The token's RSA key pair, or the BYOCA key pair named by ``key_field`` with its
    certificate (``check_key`` refuses a key of the wrong usage or modes)."""
    token = member.get(issued_field)
    byoca = [name for name in (key_field, certificate_field) if member.get(name) is not None]
    if token is not None and byoca:
        raise ValidationException(
            f"Tr34KeyBlock: give {issued_field}, or {key_field} with "
            f"{certificate_field}, not both"
        )
    if token is not None:
        record = tokens.redeem_token(account, token, kind=token_kind,
                                     key_material_type="TR34_KEY_BLOCK", role=issued_field)
        return record.private_key(), record.certificate(), record
    if len(byoca) != 2:
        raise ValidationException(
            f"Tr34KeyBlock needs an {issued_field} (from {parameters_operation}) or both "
            f"{key_field} and {certificate_field}"
        )
    key = account.resolve_usable_key(member[key_field], key_field)
    check_key(key)
    certificate, _ = rsa_certificate(member, certificate_field)
    private_key = rsa_private_key(key)
    if not _same_public_key(certificate, private_key):
        raise ValidationException(
            f"{certificate_field} does not hold the public key of {key.arn}{mismatch_detail}"
        )
    check_validity_window(account, certificate, certificate_field)
    return private_key, certificate, None


def _import_wrapping_key(account: AccountState, member: Params
                         ) -> tuple[rsa.RSAPrivateKey, x509.Certificate,
                                    tokens.TokenRecord | None]:
    """The KRD key: the import token's, or the BYOCA K2 key pair with its certificate."""
    def check_k2(k2: KeyRecord) -> None:
        if (k2.key_usage != K2 or k2.key_class != "ASYMMETRIC_KEY_PAIR"
                or k2.key_algorithm not in RSA_ALGORITHMS
                or not (k2.modes.get("Unwrap") or k2.modes.get("Decrypt"))):
            raise ValidationException(
                f"WrappingKeyIdentifier {k2.arn} must be a {K2} RSA key pair that allows "
                "Decrypt/Unwrap"
            )

    return _token_or_byoca_key(
        account, member, issued_field="ImportToken", token_kind=tokens.IMPORT_TOKEN_KIND,
        parameters_operation="GetParametersForImport", key_field="WrappingKeyIdentifier",
        certificate_field="WrappingKeyCertificate", check_key=check_k2,
    )


@locked
def import_tr34_key_block(account: AccountState, member: Params,
                          request: ImportRequest) -> KeyRecord:
    """ImportKey Tr34KeyBlock: verify, decrypt, check and keep the key (issue 9)."""
    _, ca_certificate = certificate_authority(account, member[_CA_ROLE], _CA_ROLE)
    kdh_certificate, _ = rsa_certificate(member, "SigningKeyCertificate")
    check_ca_strength(ca_certificate, kdh_certificate, "SigningKeyCertificate")
    verify_issued_by(account, kdh_certificate, ca_certificate, "SigningKeyCertificate")
    wrapping_key, wrapping_certificate, token = _import_wrapping_key(account, member)
    with refusals("Tr34KeyBlock"):
        block = tr34.parse_key_block(tr34.key_block_from_hex(member["WrappedKeyBlock"]))
        opened = tr34.open_key_block(
            block, wrapping_key, signing_certificate=kdh_certificate,
            nonce=nonce_from(member), wrapping_certificate=wrapping_certificate,
            now=to_datetime(account.now()),
        )
    if opened.key_attributes is None:
        raise ValidationException(
            f"Tr34KeyBlock: key usage {opened.header[5:7]} in the header is not one APC "
            "imports"
        )
    key = store_imported_key(
        account, opened.key, opened.key_attributes, exportable=opened.exportable,
        exportability=opened.header[11], key_version=opened.header[9:11], request=request,
        what="Tr34KeyBlock",
    )
    if token is not None:
        tokens.spend_token(account, token)
    return key


# --- export -----------------------------------------------------------------------------


def _export_signing_key(account: AccountState, member: Params
                        ) -> tuple[rsa.RSAPrivateKey, x509.Certificate,
                                   tokens.TokenRecord | None]:
    """The KDH key: the export token's, or the BYOCA S0 key pair with its certificate."""
    def check_s0(s0: KeyRecord) -> None:
        if (s0.key_usage != S0 or s0.key_class != "ASYMMETRIC_KEY_PAIR"
                or s0.key_algorithm not in RSA_ALGORITHMS or not s0.modes.get("Sign")):
            raise ValidationException(
                f"SigningKeyIdentifier {s0.arn} must be an {S0} RSA key pair with Sign"
            )

    return _token_or_byoca_key(
        account, member, issued_field="ExportToken", token_kind=tokens.EXPORT_TOKEN_KIND,
        parameters_operation="GetParametersForExport", key_field="SigningKeyIdentifier",
        certificate_field="SigningKeyCertificate", check_key=check_s0,
        mismatch_detail=": the signing key and its certificate must match",
    )


def krd_certificate(account: AccountState, member: Params
                    ) -> tuple[KeyRecord, x509.Certificate, rsa.RSAPublicKey]:
    """The receiver's WrappingKeyCertificate, verified under the named imported CA."""
    ca, ca_certificate = certificate_authority(account, member[_CA_ROLE], _CA_ROLE)
    certificate, public_key = rsa_certificate(member, "WrappingKeyCertificate")
    check_ca_strength(ca_certificate, certificate, "WrappingKeyCertificate")
    verify_issued_by(account, certificate, ca_certificate, "WrappingKeyCertificate")
    return ca, certificate, public_key


@locked
def export_tr34_key_block(account: AccountState, member: Params,
                          request: ExportRequest) -> WrappedKeyResult:
    """ExportKey Tr34KeyBlock: the key (or a DUKPT initial key) for the KRD certificate."""
    payload: ExportPayload = payload_for(account, request, header_overrides(member))
    ca, wrapping_certificate, wrapping_public_key = krd_certificate(account, member)
    with refusals("Tr34KeyBlock"):
        tr34.check_tr34_strength(rsa_wrap.rsa_algorithm_for(wrapping_public_key),
                                 payload.key_algorithm)
    signing_key, signing_certificate, token = _export_signing_key(account, member)
    nonce = nonce_from(member)
    with refusals("Tr34KeyBlock"):
        header = tr34.build_tr34_header(
            key_usage=payload.usage_code, key_algorithm=payload.key_algorithm,
            mode_of_use=payload.mode_code, exportability=payload.exportability,
            key_version=payload.key_version,
        )
        der = tr34.build_key_block(
            payload.material, header, signing_key=signing_key,
            signing_certificate=signing_certificate,
            wrapping_certificate=wrapping_certificate, nonce=nonce,
            signing_time=None if nonce is not None else to_datetime(account.now()),
        )
    if token is not None:
        tokens.spend_token(account, token)
    return WrappedKeyResult(
        wrapping_key_arn=ca.arn, key_block=tr34.key_block_to_hex(der),
        key_check_value=payload.key_check_value,
        key_check_value_algorithm=payload.key_check_value_algorithm,
        material_format="TR34_KEY_BLOCK",
    )
