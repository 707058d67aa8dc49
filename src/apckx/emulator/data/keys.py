"""The key checks every data-plane operation makes, as APC makes them.

A data-plane handler gets a :class:`KeyContext` (the caller's account and region) and asks
it for the keys it needs::

    key = context.key(params["KeyIdentifier"], operation="GenerateMac",
                      usages=MAC_USAGES, modes=("Generate",))
    mac = compute(key.secret(), ...)
    return {**key.output(), "Mac": mac.hex().upper()}

:meth:`KeyContext.key` resolves the identifier (key ARN, alias ARN or ``alias/name``) in the
same per-(account, region) state as the control plane, refuses a key that is not
``CREATE_COMPLETE`` (DELETE_PENDING, deleted) or is disabled, then checks the KeyUsage,
the KeyAlgorithm and the KeyModesOfUse against what the operation needs. It returns a
:class:`DataKey`, a snapshot taken under the registry lock, so the cryptography runs
without holding it. ``output()`` gives the ``KeyArn`` and ``KeyCheckValue`` every data-plane
output carries. Refusals are ``ValidationException`` (unknown keys
``ResourceNotFoundException``), worded to say what the key lacks; they never carry key
material. Wrapped (dynamic) working keys come from :meth:`KeyContext.unwrap_tr31_key` (a
TR-31 block under a KEK) and :meth:`KeyContext.derive_ecdh_key` (``DiffieHellmanSymmetricKey``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from apckx import errors
from apckx.crypto import attributes, certs, ecdh, keys, tr31
from apckx.emulator.control.certificates import (
    certificate_authority,
    check_ca_strength,
    load_certificate,
)
from apckx.emulator.control.common import ECC_CURVES, key_algorithm_of, to_datetime
from apckx.emulator.control.keys import compute_symmetric_kcv, kcv_algorithm_for
from apckx.emulator.exceptions import ValidationException

Params = Mapping[str, Any]
Body = dict[str, Any]

CREATE_COMPLETE = "CREATE_COMPLETE"
NO_RESTRICTIONS = "NoRestrictions"

# KeyUsage names the data-plane modules share.
D0 = "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY"
D1 = "TR31_D1_ASYMMETRIC_KEY_FOR_DATA_ENCRYPTION"
B0 = "TR31_B0_BASE_DERIVATION_KEY"
C0 = "TR31_C0_CARD_VERIFICATION_KEY"
K0 = "TR31_K0_KEY_ENCRYPTION_KEY"
K1 = "TR31_K1_KEY_BLOCK_PROTECTION_KEY"
K3 = "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT"
E0 = "TR31_E0_EMV_MKEY_APP_CRYPTOGRAMS"
E1 = "TR31_E1_EMV_MKEY_CONFIDENTIALITY"
E2 = "TR31_E2_EMV_MKEY_INTEGRITY"
E4 = "TR31_E4_EMV_MKEY_DYNAMIC_NUMBERS"
E6 = "TR31_E6_EMV_MKEY_OTHER"
M1 = "TR31_M1_ISO_9797_1_MAC_KEY"
M3 = "TR31_M3_ISO_9797_3_MAC_KEY"
M6 = "TR31_M6_ISO_9797_5_CMAC_KEY"
M7 = "TR31_M7_HMAC_KEY"
P0 = "TR31_P0_PIN_ENCRYPTION_KEY"
V1 = "TR31_V1_IBM3624_PIN_VERIFICATION_KEY"
V2 = "TR31_V2_VISA_PIN_VERIFICATION_KEY"

TDES_ALGORITHMS = frozenset({"TDES_2KEY", "TDES_3KEY"})
AES_ALGORITHMS = frozenset({"AES_128", "AES_192", "AES_256"})
HMAC_ALGORITHMS = frozenset({"HMAC_SHA224", "HMAC_SHA256", "HMAC_SHA384", "HMAC_SHA512"})
RSA_ALGORITHMS = frozenset({"RSA_2048", "RSA_3072", "RSA_4096"})
BLOCK_ALGORITHMS = TDES_ALGORITHMS | AES_ALGORITHMS


def cipher_family(key_algorithm: str) -> str:
    """``"TDES"`` or ``"AES"`` for a block-cipher key algorithm."""
    if key_algorithm in TDES_ALGORITHMS:
        return "TDES"
    if key_algorithm in AES_ALGORITHMS:
        return "AES"
    raise ValidationException(f"{key_algorithm} is not a TDES or AES key algorithm")


@dataclass(frozen=True)
class DataKey:
    """What a data-plane operation may use of a key: attributes and material (never shown)."""

    arn: str
    key_usage: str
    key_class: str
    key_algorithm: str
    modes: frozenset[str]
    key_check_value: str
    key_check_value_algorithm: str
    material: bytes | None = field(default=None, repr=False)
    private_key_pem: str | None = field(default=None, repr=False)
    certificate_apc: str | None = field(default=None, repr=False)

    def secret(self) -> bytes:
        """The symmetric key material."""
        if self.material is None:
            raise ValidationException(f"Key {self.arn} holds no symmetric key material")
        return self.material

    def private_key(self) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
        """A key pair's private key (RSA or ECC)."""
        if self.private_key_pem is None:
            raise ValidationException(f"Key {self.arn} holds no private key")
        key = serialization.load_pem_private_key(self.private_key_pem.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValidationException(f"Key {self.arn} holds an unsupported private key")
        return key

    def output(self) -> Body:
        """``KeyArn`` and ``KeyCheckValue``, as every data-plane output carries them."""
        return {"KeyArn": self.arn, "KeyCheckValue": self.key_check_value}

    def allows(self, mode: str) -> bool:
        return mode in self.modes or NO_RESTRICTIONS in self.modes


def _true_modes(modes: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(flag for flag, value in modes.items() if value)


def _snapshot(record: Any) -> DataKey:
    secret_hex = getattr(record, "secret_hex", None)
    return DataKey(
        arn=record.arn, key_usage=record.key_usage, key_class=record.key_class,
        key_algorithm=record.key_algorithm, modes=_true_modes(record.modes),
        key_check_value=record.key_check_value,
        key_check_value_algorithm=record.key_check_value_algorithm,
        material=None if secret_hex is None else bytes.fromhex(secret_hex),
        private_key_pem=getattr(record, "private_key_pem", None),
        certificate_apc=getattr(record, "certificate_apc", None),
    )


def require_key(key: DataKey, *, operation: str, usages: Collection[str],
                modes: Collection[str], algorithms: Collection[str] | None = None,
                role: str = "KeyIdentifier", allow_no_restrictions: bool = True) -> None:
    """Refuse ``key`` unless its KeyUsage is one of ``usages``, its KeyAlgorithm one of
    ``algorithms`` (any if None) and its KeyModesOfUse set one of ``modes`` (or
    NoRestrictions, where the operation accepts it)."""
    if key.key_usage not in usages:
        raise ValidationException(
            f"{role} {key.arn} has KeyUsage {key.key_usage}, which {operation} cannot use; "
            f"it needs {' or '.join(sorted(usages))}"
        )
    if algorithms is not None and key.key_algorithm not in algorithms:
        raise ValidationException(
            f"{role} {key.arn} is {key.key_algorithm}; {operation} with this key usage "
            f"needs {' or '.join(sorted(algorithms))}"
        )
    if NO_RESTRICTIONS in key.modes:
        if allow_no_restrictions:
            return
        raise ValidationException(
            f"{role} {key.arn}: KeyUsages not allowed: {operation} refuses keys with "
            f"KeyModesOfUse NoRestrictions; use a key with "
            f"{' or '.join(sorted(modes))} set"
        )
    if not any(mode in key.modes for mode in modes):
        raise ValidationException(
            f"{role} {key.arn} does not allow {operation}: its KeyModesOfUse must include "
            f"{' or '.join(sorted(modes))}"
        )


class KeyContext:
    """One data-plane call's view of the caller's (account, region) keys."""

    def __init__(self, registry: Any, account_id: str, region: str) -> None:
        self.registry = registry
        self.account_id = account_id
        self.region = region

    @property
    def backend(self) -> Any:
        """The control plane's per-(account, region) backend (shared state)."""
        return self.registry.backend(self.account_id, self.region)

    def resolve(self, identifier: str, *, role: str = "KeyIdentifier") -> DataKey:
        """The usable key an identifier names: CREATE_COMPLETE and enabled."""
        with self.registry.lock:
            record = self.backend.resolve_key(identifier)
            key = _snapshot(record)
            state = record.key_state
            enabled = record.enabled
        if state != CREATE_COMPLETE:
            raise ValidationException(
                f"{role} {key.arn} is not in CREATE_COMPLETE state (it is {state})"
            )
        if not enabled:
            raise ValidationException(
                f"{role} {key.arn} is disabled; enable it with StartKeyUsage first"
            )
        return key

    def key(self, identifier: str, *, operation: str, usages: Collection[str],
            modes: Collection[str], algorithms: Collection[str] | None = None,
            role: str = "KeyIdentifier", allow_no_restrictions: bool = True) -> DataKey:
        """:meth:`resolve`, then :func:`require_key`."""
        key = self.resolve(identifier, role=role)
        require_key(key, operation=operation, usages=usages, modes=modes,
                    algorithms=algorithms, role=role,
                    allow_no_restrictions=allow_no_restrictions)
        return key

    def unwrap_tr31_key(self, kek: DataKey, key_block: str, *, operation: str,
                        usages: Collection[str], modes: Collection[str],
                        kcv_algorithm: str | None = None,
                        role: str = "WrappedKey") -> DataKey:
        """A dynamic working key: the TR-31 block ``key_block`` opened under ``kek`` (a K0
        or K1 key allowing Decrypt/Unwrap), its header checked like a stored key's. The
        result's ARN is the KEK's (the working key has none) and its KCV is the working
        key's, under ``kcv_algorithm`` or the algorithm's default."""
        require_key(kek, operation=operation, usages=(K0, K1), modes=("Decrypt", "Unwrap"),
                    algorithms=BLOCK_ALGORITHMS, role="KeyIdentifier (the KEK)")
        try:
            header, material = tr31.unwrap_key_block(
                kek.secret(), key_block, kbpk_algorithm=kek.key_algorithm
            )
            key_attributes = tr31.header_to_key_attributes(header, len(material))
            key_modes: Mapping[str, Any] = key_attributes["KeyModesOfUse"]  # type: ignore[assignment]
            attributes.validate_key_attributes(key_attributes)
            algorithm = str(key_attributes["KeyAlgorithm"])
            keys.check_key_material(material, algorithm, what="the wrapped key")
            kcv_name = kcv_algorithm_for(algorithm, kcv_algorithm)
            check_value = compute_symmetric_kcv(material, algorithm, kcv_name)
        except errors.IntegrityError:
            raise ValidationException(
                f"{role}: the TR-31 key block failed its integrity check under "
                f"{kek.arn} (wrong KEK or a tampered block)"
            ) from None
        except errors.ApckxError as exc:
            raise ValidationException(f"{role}: {exc}") from None
        working = DataKey(
            arn=kek.arn, key_usage=str(key_attributes["KeyUsage"]),
            key_class=str(key_attributes["KeyClass"]), key_algorithm=algorithm,
            modes=_true_modes(key_modes),
            key_check_value=check_value, key_check_value_algorithm=kcv_name,
            material=material,
        )
        require_key(working, operation=operation, usages=usages, modes=modes,
                    algorithms=BLOCK_ALGORITHMS, role=role)
        return working

    def derive_ecdh_key(self, identifier: str, derivation: Params, *, operation: str,
                        usage: str, modes: Collection[str],
                        algorithms: Collection[str] = BLOCK_ALGORITHMS,
                        kcv_algorithm: str | None = None,
                        role: str = "KeyIdentifier") -> DataKey:
        """A dynamic working key derived by ECDH (``WrappedKeyMaterial.DiffieHellmanSymmetricKey``):
        ``identifier`` names a K3 ECC key pair (DeriveKey) created with ``DeriveKeyUsage``
        ``usage``; ``derivation`` is the EcdhDerivationAttributes member (the imported CA, the
        counterparty's certificate, KeyAlgorithm, KDF, hash, SharedInformation). The
        certificate is checked as ImportKey checks it; the key is the KDF output of
        KeyAlgorithm's length. The result carries the K3 key's ARN and the derived key's KCV
        and has ``modes`` (the flags the caller needs; a derived key has no header)."""
        account = self.backend
        with account.lock:
            k3 = account.resolve_usable_key(identifier, role)
            if (k3.key_usage != K3 or k3.key_class != "ASYMMETRIC_KEY_PAIR"
                    or k3.key_algorithm not in ECC_CURVES or not k3.modes.get("DeriveKey")):
                raise ValidationException(
                    f"{role} {k3.arn} must be a {K3} ECC key pair with DeriveKey to derive a "
                    "key by ECDH"
                )
            if k3.derive_key_usage != usage:
                raise ValidationException(
                    f"{role} {k3.arn} has DeriveKeyUsage {k3.derive_key_usage or '(none)'}; "
                    f"{operation} with a DiffieHellmanSymmetricKey needs {usage}"
                )
            _, ca_certificate = certificate_authority(
                account, derivation["CertificateAuthorityPublicKeyIdentifier"],
                "CertificateAuthorityPublicKeyIdentifier")
            private_key = k3.private_key()
            now = to_datetime(account.now())
            arn, curve_algorithm = k3.arn, k3.key_algorithm
        leaf = load_certificate(derivation["PublicKeyCertificate"], "PublicKeyCertificate")
        leaf_public_key = leaf.public_key()
        if not isinstance(leaf_public_key, ec.EllipticCurvePublicKey):
            raise ValidationException("PublicKeyCertificate must hold an ECC public key for ECDH")
        if key_algorithm_of(leaf_public_key) != curve_algorithm:
            raise ValidationException(
                f"PublicKeyCertificate is not on {curve_algorithm}, the curve of {arn}: the "
                "curves must match"
            )
        check_ca_strength(ca_certificate, leaf, "PublicKeyCertificate")
        algorithm = derivation["KeyAlgorithm"]
        if algorithm not in algorithms:
            raise ValidationException(
                f"DiffieHellmanSymmetricKey.KeyAlgorithm {algorithm} cannot be used by "
                f"{operation}; use one of {', '.join(sorted(algorithms))}"
            )
        shared_info = bytes.fromhex(derivation["SharedInformation"])
        if 0 in shared_info:
            raise ValidationException(
                "SharedInformation must not contain zero bytes (00); use fresh random bytes "
                "from 01 to FF"
            )
        curve = str(ecdh.normalize_curve(curve_algorithm))
        try:
            certs.verify_certificate(leaf, ca_certificate, now=now, expected_curve=curve)
            ecdh.check_ecdh_strength(curve, algorithm, algorithm)
            material: bytes = ecdh.derive_kbpk(
                private_key, leaf_public_key, kdf=derivation["KeyDerivationFunction"],
                hash_algorithm=derivation["KeyDerivationHashAlgorithm"],
                key_algorithm=algorithm, shared_info=shared_info)
        except errors.ApckxError as exc:
            raise ValidationException(f"DiffieHellmanSymmetricKey: {exc}") from None
        kcv_name = kcv_algorithm_for(algorithm, kcv_algorithm)
        return DataKey(
            arn=arn, key_usage=usage, key_class="SYMMETRIC_KEY", key_algorithm=algorithm,
            modes=frozenset(modes), key_check_value=compute_symmetric_kcv(
                material, algorithm, kcv_name),
            key_check_value_algorithm=kcv_name, material=material,
        )
