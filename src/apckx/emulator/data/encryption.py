"""EncryptData, DecryptData and ReEncryptData.

- **Symmetric**: a D0 key (TDES or AES) in ECB, CBC, CFB, CFB1, CFB8, CFB64, CFB128 or OFB
  with an optional IV (zero by default); the data must be whole cipher blocks (APC wants the
  caller to pad). The key may be a dynamic one: ``WrappedKey.Tr31KeyBlock``, a D0 TR-31 block
  under the KEK that ``KeyIdentifier`` names.
- **Dukpt**: a B0 BDK (TDES_2KEY or AES, DeriveKey): the KSN's data working key
  (:mod:`apckx.crypto.dukpt`), REQUEST/RESPONSE/BIDIRECTIONAL, ECB or CBC.
- **Emv**: an E1 or E6 TDES_2KEY issuer master key (DeriveKey): ICC master key by Option A
  or B, common session key from ``SessionDerivationData``, TDES ECB or CBC
  (:mod:`apckx.crypto.emv` and :mod:`apckx.crypto.cipher`).
- **Asymmetric**: a D1 RSA key; encryption with the key pair or an imported public key,
  decryption with the key pair; PKCS1, OAEP_SHA1/256/512 or no padding (raw RSA).

The cryptography is :mod:`apckx.crypto.cipher`. Every answer carries the key's ``KeyArn``
and ``KeyCheckValue`` (a dynamic key's KCV is the working key's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from apckx import errors
from apckx.crypto import certs, cipher, dukpt, emv
from apckx.emulator.data.keys import (
    B0,
    BLOCK_ALGORITHMS,
    D0,
    D1,
    E1,
    E6,
    RSA_ALGORITHMS,
    DataKey,
    KeyContext,
    cipher_family,
)
from apckx.emulator.exceptions import ValidationException

Params = Mapping[str, Any]
Body = dict[str, Any]

_ASYMMETRIC_KEY_PAIR = "ASYMMETRIC_KEY_PAIR"
_PUBLIC_KEY = "PUBLIC_KEY"


def _choice(attributes: Params) -> tuple[str, Params]:
    """The one member of an EncryptionDecryptionAttributes union (validated as one)."""
    name, value = next(iter(attributes.items()))
    return name, value


def _hex(text: str) -> bytes:
    return bytes.fromhex(text)


def _crypto_refusal(operation: str, exc: errors.ApckxError) -> ValidationException:
    return ValidationException(f"{operation}: {exc}")


class _Direction:
    """What one side of a call needs from its key: the operation and the mode flag."""

    def __init__(self, operation: str, mode: str, *, allow_no_restrictions: bool = True,
                 role: str = "KeyIdentifier") -> None:
        self.operation = operation
        self.mode = mode
        self.allow_no_restrictions = allow_no_restrictions
        self.role = role


def _symmetric_key(context: KeyContext, identifier: str, wrapped: Params | None,
                   direction: _Direction) -> DataKey:
    if wrapped is not None:
        material = wrapped["WrappedKeyMaterial"]
        if "DiffieHellmanSymmetricKey" in material:
            return context.derive_ecdh_key(
                identifier, material["DiffieHellmanSymmetricKey"], operation=direction.operation,
                usage=D0, modes=(direction.mode,), role=direction.role,
                kcv_algorithm=wrapped.get("KeyCheckValueAlgorithm"))
        kek = context.resolve(identifier, role=direction.role)
        return context.unwrap_tr31_key(
            kek, material["Tr31KeyBlock"], operation=direction.operation, usages=(D0,),
            modes=("Encrypt", "Decrypt"), kcv_algorithm=wrapped.get("KeyCheckValueAlgorithm"),
        )
    return context.key(identifier, operation=direction.operation, usages=(D0,),
                       modes=(direction.mode,), algorithms=BLOCK_ALGORITHMS,
                       role=direction.role,
                       allow_no_restrictions=direction.allow_no_restrictions)


def _run_symmetric(key: DataKey, values: Params, data: bytes, *, decrypt: bool,
                   operation: str) -> bytes:
    if values.get("PaddingType") is not None:
        raise ValidationException(
            f"{operation}: PaddingType applies to RSA (Asymmetric) encryption only; pad "
            "symmetric data to whole blocks yourself"
        )
    iv_hex = values.get("InitializationVector")
    iv = None if iv_hex is None else _hex(iv_hex)
    family = cipher_family(key.key_algorithm)
    size = cipher.block_size(family)
    if len(data) % size:  # APC: whole blocks in every mode, the stream modes too
        raise ValidationException(
            f"{operation}: {family} data must be a multiple of {size} bytes (got "
            f"{len(data)}); pad it yourself"
        )
    if values["Mode"] == "ECB" and iv is not None:
        raise ValidationException(f"{operation}: ECB takes no InitializationVector")
    try:
        if decrypt:
            return cipher.decrypt_symmetric(key.secret(), family, values["Mode"], data, iv)
        return cipher.encrypt_symmetric(key.secret(), family, values["Mode"], data, iv)
    except errors.ApckxError as exc:
        raise _crypto_refusal(operation, exc) from None


def _rsa_public_key(key: DataKey) -> rsa.RSAPublicKey:
    if key.key_class == _PUBLIC_KEY and key.certificate_apc is not None:
        public_key = certs.certificate_from_apc(key.certificate_apc).public_key()
    else:
        public_key = key.private_key().public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValidationException(f"Key {key.arn} is not an RSA key")
    return public_key


def _asymmetric_key(context: KeyContext, identifier: str, direction: _Direction) -> DataKey:
    key = context.key(identifier, operation=direction.operation, usages=(D1,),
                      modes=(direction.mode,), algorithms=RSA_ALGORITHMS, role=direction.role,
                      allow_no_restrictions=direction.allow_no_restrictions)
    if direction.mode == "Decrypt" and key.key_class != _ASYMMETRIC_KEY_PAIR:
        raise ValidationException(
            f"{direction.role} {key.arn} is a {key.key_class}: decryption needs the RSA "
            "key pair (its private key)"
        )
    return key


def _run_asymmetric(key: DataKey, values: Params, data: bytes, *, decrypt: bool,
                    operation: str) -> bytes:
    padding = values.get("PaddingType")
    try:
        if decrypt:
            private_key = key.private_key()
            if not isinstance(private_key, rsa.RSAPrivateKey):
                raise ValidationException(f"Key {key.arn} is not an RSA key pair")
            return cipher.decrypt_rsa(private_key, data, padding)
        return cipher.encrypt_rsa(_rsa_public_key(key), data, padding)
    except errors.ApckxError as exc:
        raise _crypto_refusal(operation, exc) from None


def _not_available(kind: str, operation: str) -> ValidationException:
    return ValidationException(
        f"{operation}: {kind} encryption attributes are not implemented by the apckx "
        "emulator yet"
    )


def _transform(context: KeyContext, identifier: str, attributes: Params,
               wrapped: Params | None, data: bytes, *, decrypt: bool,
               direction: _Direction) -> tuple[DataKey, bytes]:
    kind, values = _choice(attributes)
    operation = direction.operation
    if kind == "Symmetric":
        key = _symmetric_key(context, identifier, wrapped, direction)
        return key, _run_symmetric(key, values, data, decrypt=decrypt, operation=operation)
    if wrapped is not None:
        raise ValidationException(
            f"{operation}: a WrappedKey is used with Symmetric attributes only (got {kind})"
        )
    if kind == "Asymmetric":
        key = _asymmetric_key(context, identifier, direction)
        return key, _run_asymmetric(key, values, data, decrypt=decrypt, operation=operation)
    if kind == "Dukpt":
        key = context.key(identifier, operation=operation, usages=(B0,), modes=("DeriveKey",),
                          algorithms=_DUKPT_BDK_ALGORITHMS, role=direction.role,
                          allow_no_restrictions=direction.allow_no_restrictions)
        return key, _run_dukpt(key, values, data, decrypt=decrypt, operation=operation)
    if kind == "Emv":
        key = context.key(identifier, operation=operation, usages=(E1, E6),
                          modes=("DeriveKey",), algorithms=("TDES_2KEY",), role=direction.role)
        return key, _run_emv(key, values, data, decrypt=decrypt, operation=operation)
    raise _not_available(kind, operation)


_DUKPT_BDK_ALGORITHMS = frozenset({"TDES_2KEY", "AES_128", "AES_192", "AES_256"})


def _run_dukpt(key: DataKey, values: Params, data: bytes, *, decrypt: bool,
               operation: str) -> bytes:
    """DUKPT: the data working key of the KSN (X9.24-1 TDES: the data request/response
    variant; X9.24-3 AES: the data-encryption usage), ``DukptKeyVariant`` REQUEST, RESPONSE
    or BIDIRECTIONAL (default), ``DukptKeyDerivationType`` (default the BDK's algorithm),
    then ECB or CBC (CBC by default, as the model documents)."""
    mode = values.get("Mode", "CBC")
    iv_hex = values.get("InitializationVector")
    derivation = values.get("DukptKeyDerivationType")
    working_algorithm = derivation or (
        "TDES_2KEY" if key.key_algorithm.startswith("TDES") else key.key_algorithm)
    family = cipher_family(working_algorithm)
    size = cipher.block_size(family)
    if len(data) % size:
        raise ValidationException(
            f"{operation}: {family} DUKPT data must be a multiple of {size} bytes (got "
            f"{len(data)}); pad it yourself"
        )
    if mode == "ECB" and iv_hex is not None:
        raise ValidationException(f"{operation}: ECB takes no InitializationVector")
    try:
        ksn = dukpt.parse_ksn_hex(values["KeySerialNumber"], key.key_algorithm)
        working_key = dukpt.derive_working_key(
            key.secret(), ksn, key.key_algorithm, "DATA",
            variant=values.get("DukptKeyVariant", "BIDIRECTIONAL"), key_algorithm=derivation)
        iv = None if iv_hex is None else _hex(iv_hex)
        if decrypt:
            return cipher.decrypt_symmetric(working_key, family, mode, data, iv)
        return cipher.encrypt_symmetric(working_key, family, mode, data, iv)
    except errors.ApckxError as exc:
        raise _crypto_refusal(operation, exc) from None


def _run_emv(key: DataKey, values: Params, data: bytes, *, decrypt: bool,
             operation: str) -> bytes:
    """EMV: the card's ICC master key (Option A/B from the IMK, PAN and PSN), then the
    common session key with R = SessionDerivationData (8 bytes: the ATC padded with zeros,
    or the ARQC), then TDES in ECB or CBC (CBC when Mode is absent, as for DUKPT)."""
    mode = values.get("Mode", "CBC")
    iv_hex = values.get("InitializationVector")
    if len(data) % 8:
        raise ValidationException(
            f"{operation}: TDES data must be a multiple of 8 bytes (got {len(data)}); pad it "
            "yourself"
        )
    if mode == "ECB" and iv_hex is not None:
        raise ValidationException(f"{operation}: ECB takes no InitializationVector")
    try:
        icc_master_key = emv.derive_icc_master_key(
            key.secret(), values["PrimaryAccountNumber"], values["PanSequenceNumber"],
            mode=values["MajorKeyDerivationMode"])
        session_key = emv.derive_session_key(
            icc_master_key, "EMV_COMMON_SESSION_KEY",
            application_cryptogram=_hex(values["SessionDerivationData"]))
        iv = None if iv_hex is None else _hex(iv_hex)
        if decrypt:
            return cipher.decrypt_symmetric(session_key, "TDES", mode, data, iv)
        return cipher.encrypt_symmetric(session_key, "TDES", mode, data, iv)
    except errors.ApckxError as exc:
        raise _crypto_refusal(operation, exc) from None


def encrypt_data(context: KeyContext, params: Params) -> Body:
    """EncryptData: PlainText (hex) to CipherText (upper-case hex)."""
    key, ciphertext = _transform(
        context, params["KeyIdentifier"], params["EncryptionAttributes"],
        params.get("WrappedKey"), _hex(params["PlainText"]), decrypt=False,
        direction=_Direction("EncryptData", "Encrypt"),
    )
    return {**key.output(), "CipherText": ciphertext.hex().upper()}


def decrypt_data(context: KeyContext, params: Params) -> Body:
    """DecryptData: CipherText (hex) to PlainText (upper-case hex)."""
    key, plaintext = _transform(
        context, params["KeyIdentifier"], params["DecryptionAttributes"],
        params.get("WrappedKey"), _hex(params["CipherText"]), decrypt=True,
        direction=_Direction("DecryptData", "Decrypt"),
    )
    return {**key.output(), "PlainText": plaintext.hex().upper()}


def re_encrypt_data(context: KeyContext, params: Params) -> Body:
    """ReEncryptData: decrypt under the incoming key, encrypt under the outgoing key; the
    plaintext never leaves. Keys with NoRestrictions are refused (live-service behaviour)."""
    _, plaintext = _transform(
        context, params["IncomingKeyIdentifier"], params["IncomingEncryptionAttributes"],
        params.get("IncomingWrappedKey"), _hex(params["CipherText"]), decrypt=True,
        direction=_Direction("ReEncryptData", "Decrypt", allow_no_restrictions=False,
                             role="IncomingKeyIdentifier"),
    )
    key, ciphertext = _transform(
        context, params["OutgoingKeyIdentifier"], params["OutgoingEncryptionAttributes"],
        params.get("OutgoingWrappedKey"), plaintext, decrypt=False,
        direction=_Direction("ReEncryptData", "Encrypt", allow_no_restrictions=False,
                             role="OutgoingKeyIdentifier"),
    )
    return {**key.output(), "CipherText": ciphertext.hex().upper()}
