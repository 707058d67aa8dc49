"""ImportKey/ExportKey ``DiffieHellmanTr31KeyBlock`` (spec 7): a one-time KBPK derived by
ECDH between a K3 key pair and a certificate issued by an imported CA, then TR-31."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from apckx.crypto import certs, ecdh
from apckx.emulator.control.account import AccountState, locked
from apckx.emulator.control.certificates import (
    certificate_authority,
    check_ca_strength,
    load_certificate,
)
from apckx.emulator.control.common import (
    ECC_CURVES,
    key_algorithm_of,
    refusals,
    to_datetime,
)
from apckx.emulator.control.key_exchange.common import (
    ExportRequest,
    ImportRequest,
    Params,
    WrappedKeyResult,
    refuse_dukpt_initial_key,
)
from apckx.emulator.control.key_exchange.tr31 import (
    TR31_WRAPPING_ALGORITHMS,
    exportable_key,
    header_overrides,
    import_key_block,
    wrap_for_export,
)
from apckx.emulator.control.records import K1, K3, KeyRecord
from apckx.emulator.exceptions import ValidationException


@dataclass(frozen=True)
class EcdhParameters:
    """The DiffieHellmanTr31KeyBlock members shared by import and export (spec 7)."""

    private_key_identifier: str
    certificate_authority_identifier: str
    public_key_certificate: str
    derive_key_algorithm: str
    key_derivation_function: str
    key_derivation_hash_algorithm: str
    shared_information_hex: str

    @classmethod
    def from_member(cls, member: Params) -> EcdhParameters:
        return cls(
            private_key_identifier=member["PrivateKeyIdentifier"],
            certificate_authority_identifier=member["CertificateAuthorityPublicKeyIdentifier"],
            public_key_certificate=member["PublicKeyCertificate"],
            derive_key_algorithm=member["DeriveKeyAlgorithm"],
            key_derivation_function=member["KeyDerivationFunction"],
            key_derivation_hash_algorithm=member["KeyDerivationHashAlgorithm"],
            shared_information_hex=member["DerivationData"]["SharedInformation"],
        )


def derive_ecdh_kbpk(account: AccountState, params: EcdhParameters
                     ) -> tuple[KeyRecord, bytes, str]:
    """Check the K3 key, the CA and the counterparty's certificate, then derive the
    one-time KBPK (spec 7.2-7.4). Returns (K3 key, KBPK, curve name "P256"...)."""
    k3 = account.resolve_usable_key(params.private_key_identifier, "PrivateKeyIdentifier")
    if (k3.key_usage != K3 or k3.key_class != "ASYMMETRIC_KEY_PAIR"
            or k3.key_algorithm not in ECC_CURVES or not k3.modes.get("DeriveKey")):
        raise ValidationException(
            f"PrivateKeyIdentifier {k3.arn} must be a {K3} ECC key pair with DeriveKey"
        )
    if k3.derive_key_usage != K1:
        raise ValidationException(
            f"PrivateKeyIdentifier {k3.arn} has DeriveKeyUsage "
            f"{k3.derive_key_usage or '(none)'}: a key pair that wraps keys over ECDH must be "
            f"created with DeriveKeyUsage {K1}"
        )
    curve = str(ecdh.normalize_curve(k3.key_algorithm))
    _, ca_certificate = certificate_authority(
        account, params.certificate_authority_identifier,
        "CertificateAuthorityPublicKeyIdentifier")
    leaf = load_certificate(params.public_key_certificate, "PublicKeyCertificate")
    leaf_public_key = leaf.public_key()
    if not isinstance(leaf_public_key, ec.EllipticCurvePublicKey):
        raise ValidationException("PublicKeyCertificate must hold an ECC public key for ECDH")
    leaf_algorithm = key_algorithm_of(leaf_public_key)
    if leaf_algorithm != k3.key_algorithm:
        raise ValidationException(
            f"PublicKeyCertificate is on {leaf_algorithm or 'an unsupported curve'}, but "
            f"the private key {k3.arn} is {k3.key_algorithm}: the curves must match"
        )
    check_ca_strength(ca_certificate, leaf, "PublicKeyCertificate")
    with refusals("PublicKeyCertificate"):
        certs.verify_certificate(
            leaf, ca_certificate, now=to_datetime(account.now()), expected_curve=curve
        )
    if params.derive_key_algorithm not in TR31_WRAPPING_ALGORITHMS:
        raise ValidationException(
            f"DeriveKeyAlgorithm {params.derive_key_algorithm} cannot protect a TR-31 key "
            f"block: use one of {', '.join(TR31_WRAPPING_ALGORITHMS)}"
        )
    shared_info = bytes.fromhex(params.shared_information_hex)
    if 0 in shared_info:
        raise ValidationException(
            "DerivationData.SharedInformation must not contain zero bytes (00); use fresh "
            "random bytes from 01 to FF"
        )
    with refusals("cannot derive the wrapping key"):
        kbpk: bytes = ecdh.derive_kbpk(
            k3.private_key(), leaf_public_key, kdf=params.key_derivation_function,
            hash_algorithm=params.key_derivation_hash_algorithm,
            key_algorithm=params.derive_key_algorithm, shared_info=shared_info,
        )
    return k3, kbpk, curve


@locked
def import_diffie_hellman_tr31_key_block(account: AccountState, member: Params,
                                         request: ImportRequest) -> KeyRecord:
    """ImportKey DiffieHellmanTr31KeyBlock (spec 7): derive, unwrap, check, store."""
    params = EcdhParameters.from_member(member)
    _, kbpk, curve = derive_ecdh_kbpk(account, params)

    def check_strength(algorithm: str) -> None:
        with refusals("DiffieHellmanTr31KeyBlock"):
            ecdh.check_ecdh_strength(curve, params.derive_key_algorithm, algorithm)

    return import_key_block(
        account, kbpk, params.derive_key_algorithm, member["WrappedKeyBlock"],
        what="DiffieHellmanTr31KeyBlock", request=request, check_strength=check_strength,
    )


@locked
def export_diffie_hellman_tr31_key_block(account: AccountState, member: Params,
                                         request: ExportRequest) -> WrappedKeyResult:
    """ExportKey DiffieHellmanTr31KeyBlock: version D under an AES-derived KBPK, B under
    TDES (spec 7.5); WrappingKeyArn is the K3 key's ARN."""
    refuse_dukpt_initial_key(request)
    params = EcdhParameters.from_member(member)
    key = exportable_key(account, request.export_key_identifier)
    k3, kbpk, curve = derive_ecdh_kbpk(account, params)
    with refusals("DiffieHellmanTr31KeyBlock"):
        ecdh.check_ecdh_strength(curve, params.derive_key_algorithm, key.key_algorithm)
    return wrap_for_export(key, kbpk, params.derive_key_algorithm, k3.arn,
                           header_overrides(member), request.key_check_value_algorithm)
