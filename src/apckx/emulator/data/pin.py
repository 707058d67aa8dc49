"""TranslatePinData, GeneratePinData and VerifyPinData.

- **PIN blocks**: ISO 9564 formats 0, 1, 3 (TDES keys) and 4 (AES keys), and AS2805 format 0
  (:mod:`apckx.crypto.pin_block`).
- **PIN keys**: a PEK (P0); a DUKPT BDK (B0, TDES or AES, ``DukptAttributes``) from which the
  PIN working key of the KSN is derived (:mod:`apckx.crypto.dukpt`); or a dynamic key:
  ``WrappedKey.Tr31KeyBlock`` (a P0 block under the KEK the identifier names) or
  ``DiffieHellmanSymmetricKey`` (a PEK derived over ECDH from the K3 key pair the identifier
  names and the counterparty's certificate).
- **AS2805**: ``IncomingAs2805Attributes`` derives the incoming per-transaction KPE from the
  PEK (the KPP), the STAN and the amount (:func:`apckx.crypto.as2805.derive_kpe`).
- **PIN verification data**: Visa PVV (V2) and IBM 3624 (V1)
  (:mod:`apckx.crypto.pin_verification`).

The clear PIN exists only inside a call. A wrong PIN is ``VerificationFailedException`` with
``Reason`` ``INVALID_PIN``; a PIN block that does not decode under its key and format is the same
(the key or the block is wrong, which to the verifier is a wrong PIN). Translation refuses such
a block with ``ValidationException``. Every inferred choice is in docs/EMULATOR.md ("PINs").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apckx import errors
from apckx.crypto import as2805, dukpt, pin_block, pin_verification
from apckx.emulator.data.exceptions import INVALID_PIN, VerificationFailedException
from apckx.emulator.data.keys import (
    AES_ALGORITHMS,
    B0,
    BLOCK_ALGORITHMS,
    P0,
    TDES_ALGORITHMS,
    V1,
    V2,
    DataKey,
    KeyContext,
)
from apckx.emulator.exceptions import ValidationException

Params = Mapping[str, Any]
Body = dict[str, Any]

#: TranslationIsoFormats member -> PinBlockFormat name.
_TRANSLATION_FORMATS = {
    "IsoFormat0": "ISO_FORMAT_0",
    "IsoFormat1": "ISO_FORMAT_1",
    "IsoFormat3": "ISO_FORMAT_3",
    "IsoFormat4": "ISO_FORMAT_4",
    "As2805Format0": "AS2805_FORMAT_0",
}
_PVK_ALGORITHMS = TDES_ALGORITHMS
_DEFAULT_PIN_LENGTH = 4


@dataclass(frozen=True)
class PinKey:
    """The key a PIN block is enciphered under: the working key's material and algorithm, and
    the ARN/KCV the output names (the PEK's; a BDK's for DUKPT; the KEK's or key pair's ARN
    with the working key's KCV for a dynamic key)."""

    arn: str
    key_check_value: str
    working_key: bytes
    algorithm: str

    @property
    def aes(self) -> bool:
        return self.algorithm in AES_ALGORITHMS


def _choice(union: Params) -> tuple[str, Params]:
    name, value = next(iter(union.items()))
    return name, value


def _refusal(operation: str, exc: errors.ApckxError) -> ValidationException:
    return ValidationException(f"{operation}: {exc}")


# --- PIN keys ------------------------------------------------------------------------------


def _pek(key: DataKey) -> PinKey:
    return PinKey(key.arn, key.key_check_value, key.secret(), key.key_algorithm)


def _dukpt_pin_key(
    context: KeyContext, identifier: str, attributes: Params, *, operation: str, role: str
) -> PinKey:
    """The DUKPT PIN working key for the KSN, derived from a B0 BDK (DeriveKey)."""
    bdk = context.key(
        identifier,
        operation=operation,
        usages=(B0,),
        modes=("DeriveKey",),
        algorithms=BLOCK_ALGORITHMS,
        role=role,
    )
    derivation = attributes.get("DukptKeyDerivationType") or attributes.get("DukptDerivationType")
    key_algorithm = derivation or (
        "TDES_2KEY" if bdk.key_algorithm in TDES_ALGORITHMS else bdk.key_algorithm
    )
    try:
        ksn = dukpt.parse_ksn_hex(attributes["KeySerialNumber"], bdk.key_algorithm)
        working = dukpt.derive_working_key(
            bdk.secret(), ksn, bdk.key_algorithm, "PIN", key_algorithm=key_algorithm
        )
    except errors.ApckxError as exc:
        raise _refusal(operation, exc) from None
    return PinKey(bdk.arn, bdk.key_check_value, working, key_algorithm)


def _pin_key(
    context: KeyContext,
    identifier: str,
    *,
    operation: str,
    role: str,
    decrypt: bool,
    dukpt_attributes: Params | None = None,
    wrapped: Params | None = None,
) -> PinKey:
    """The key of one side of a PIN operation, however the request names it."""
    modes = ("Decrypt", "Unwrap") if decrypt else ("Encrypt", "Wrap")
    if dukpt_attributes is not None and wrapped is not None:
        raise ValidationException(
            f"{operation}: a PIN key is either DUKPT-derived or wrapped, not both"
        )
    if dukpt_attributes is not None:
        return _dukpt_pin_key(context, identifier, dukpt_attributes, operation=operation, role=role)
    if wrapped is not None:
        material = wrapped["WrappedKeyMaterial"]
        if "DiffieHellmanSymmetricKey" in material:
            # PIN select/reveal: a PEK derived from a K3 key pair with DeriveKeyUsage P0.
            derived = context.derive_ecdh_key(
                identifier,
                material["DiffieHellmanSymmetricKey"],
                operation=operation,
                usage=P0,
                modes=modes,
                kcv_algorithm=wrapped.get("KeyCheckValueAlgorithm"),
                role=role,
            )
            return _pek(derived)
        kek = context.resolve(identifier, role=role)
        working = context.unwrap_tr31_key(
            kek,
            material["Tr31KeyBlock"],
            operation=operation,
            usages=(P0,),
            modes=modes,
            kcv_algorithm=wrapped.get("KeyCheckValueAlgorithm"),
        )
        return _pek(working)
    return _pek(
        context.key(
            identifier,
            operation=operation,
            usages=(P0,),
            modes=modes,
            algorithms=BLOCK_ALGORITHMS,
            role=role,
        )
    )


def _check_format(key: PinKey, fmt: str, *, operation: str, role: str) -> None:
    """AES keys use ISO_FORMAT_4 only; TDES keys every other format (APC: format 4 is
    "required for AES keys")."""
    if key.aes and fmt != "ISO_FORMAT_4":
        raise ValidationException(
            f"{operation}: {role} is an {key.algorithm} key, which needs ISO_FORMAT_4 "
            f"PIN blocks (got {fmt})"
        )
    if not key.aes and fmt == "ISO_FORMAT_4":
        raise ValidationException(
            f"{operation}: ISO_FORMAT_4 needs an AES key; {role} is {key.algorithm}"
        )


def _pan_for(fmt: str, pan: str | None, *, operation: str) -> str | None:
    if fmt != "ISO_FORMAT_1" and pan is None:
        raise ValidationException(f"{operation}: {fmt} needs the PrimaryAccountNumber")
    return pan


def _check_block_length(key: PinKey, block_hex: str, *, operation: str, what: str) -> bytes:
    expected = 16 if key.aes else 8
    block = bytes.fromhex(block_hex)
    if len(block) != expected:
        raise ValidationException(
            f"{operation}: {what} must be {expected * 2} hex characters under a "
            f"{key.algorithm} key (got {len(block_hex)})"
        )
    return block


def _encrypt(key: PinKey, pin: str, fmt: str, pan: str | None, *, operation: str) -> str:
    try:
        block = pin_block.encrypt_pin_block(key.working_key, pin, fmt, pan=pan, aes=key.aes)
    except errors.ApckxError as exc:
        raise _refusal(operation, exc) from None
    return block.hex().upper()


def _decrypt(key: PinKey, block: bytes, fmt: str, pan: str | None) -> str:
    """The PIN, or PinBlockError when the block does not decode (wrong key or format)."""
    return pin_block.decrypt_pin_block(key.working_key, block, fmt, pan=pan, aes=key.aes)


def _check_as2805_combination(params: Params, *, operation: str) -> None:
    """``IncomingAs2805Attributes`` derives from a stored PEK, so it excludes the incoming
    DUKPT and dynamic-key members (inferred: AWS documents the PEK case only)."""
    if params.get("IncomingAs2805Attributes") is None:
        return
    for member in ("IncomingDukptAttributes", "IncomingWrappedKey"):
        if params.get(member) is not None:
            raise ValidationException(
                f"{operation}: IncomingAs2805Attributes derives the KPE from the PEK "
                f"IncomingKeyIdentifier names; it cannot be combined with {member}"
            )


def _as2805_kpe(kpp: PinKey, attributes: Params, *, operation: str) -> PinKey:
    """The per-transaction KPE of ``IncomingAs2805Attributes``: OWF(KPP, STAN || amount) with
    the incoming PEK as the KPP (AS2805.6.6.3 as AWS's sample 3_1 derives it); the output still
    names the outgoing key only."""
    if kpp.algorithm != "TDES_2KEY":
        raise ValidationException(
            f"{operation}: IncomingAs2805Attributes needs a TDES_2KEY PEK as "
            f"IncomingKeyIdentifier (the AS2805 KPP); it is {kpp.algorithm}"
        )
    try:
        kpe = as2805.derive_kpe(
            kpp.working_key,
            attributes["SystemTraceAuditNumber"],
            attributes["TransactionAmount"],
        )
    except errors.ApckxError as exc:
        raise _refusal(operation, exc) from None
    return PinKey(kpp.arn, kpp.key_check_value, kpe, kpp.algorithm)


# --- TranslatePinData ----------------------------------------------------------------------


def translate_pin_data(context: KeyContext, params: Params) -> Body:
    """TranslatePinData: a PIN block from one key and format to another; the PIN never
    leaves the call."""
    operation = "TranslatePinData"
    _check_as2805_combination(params, operation=operation)
    in_name, in_values = _choice(params["IncomingTranslationAttributes"])
    out_name, out_values = _choice(params["OutgoingTranslationAttributes"])
    in_format, out_format = _TRANSLATION_FORMATS[in_name], _TRANSLATION_FORMATS[out_name]
    incoming = _pin_key(
        context,
        params["IncomingKeyIdentifier"],
        operation=operation,
        role="IncomingKeyIdentifier",
        decrypt=True,
        dukpt_attributes=params.get("IncomingDukptAttributes"),
        wrapped=params.get("IncomingWrappedKey"),
    )
    outgoing = _pin_key(
        context,
        params["OutgoingKeyIdentifier"],
        operation=operation,
        role="OutgoingKeyIdentifier",
        decrypt=False,
        dukpt_attributes=params.get("OutgoingDukptAttributes"),
        wrapped=params.get("OutgoingWrappedKey"),
    )
    as2805_attributes = params.get("IncomingAs2805Attributes")
    if as2805_attributes is not None:
        incoming = _as2805_kpe(incoming, as2805_attributes, operation=operation)
    _check_format(incoming, in_format, operation=operation, role="IncomingKeyIdentifier")
    _check_format(outgoing, out_format, operation=operation, role="OutgoingKeyIdentifier")
    block = _check_block_length(
        incoming, params["EncryptedPinBlock"], operation=operation, what="EncryptedPinBlock"
    )
    try:
        pin = _decrypt(incoming, block, in_format, in_values.get("PrimaryAccountNumber"))
    except errors.ApckxError:
        raise ValidationException(
            f"{operation}: EncryptedPinBlock does not decode as {in_format} under the "
            "incoming key (wrong key, format or PrimaryAccountNumber)"
        ) from None
    out_block = _encrypt(
        outgoing, pin, out_format, out_values.get("PrimaryAccountNumber"), operation=operation
    )
    return {
        "PinBlock": out_block,
        "KeyArn": outgoing.arn,
        "KeyCheckValue": outgoing.key_check_value,
    }


# --- GeneratePinData -----------------------------------------------------------------------


def _pvk(
    context: KeyContext, identifier: str, usage: str, mode: str, *, operation: str, role: str
) -> DataKey:
    return context.key(
        identifier,
        operation=operation,
        usages=(usage,),
        modes=(mode,),
        algorithms=_PVK_ALGORITHMS,
        role=role,
    )


def _ibm_inputs(values: Params) -> tuple[str, str, str]:
    return (
        values["DecimalizationTable"],
        values["PinValidationData"],
        values["PinValidationDataPadCharacter"],
    )


def generate_pin_data(context: KeyContext, params: Params) -> Body:
    """GeneratePinData: a new PIN (random, natural or from an offset) or the verification
    data of a given PIN block, with the PIN block under the encryption key."""
    operation = "GeneratePinData"
    kind, values = _choice(params["GenerationAttributes"])
    usage = V2 if kind.startswith("VisaPin") else V1
    pvk = _pvk(
        context,
        params["GenerationKeyIdentifier"],
        usage,
        "Generate",
        operation=operation,
        role="GenerationKeyIdentifier",
    )
    fmt = params["PinBlockFormat"]
    pan = _pan_for(fmt, params.get("PrimaryAccountNumber"), operation=operation)
    length = params.get("PinDataLength") or _DEFAULT_PIN_LENGTH
    given = kind in ("VisaPinVerificationValue", "Ibm3624PinOffset")
    encryption = _pin_key(
        context,
        params["EncryptionKeyIdentifier"],
        operation=operation,
        role="EncryptionKeyIdentifier",
        decrypt=given,
        wrapped=params.get("EncryptionWrappedKey"),
    )
    _check_format(encryption, fmt, operation=operation, role="EncryptionKeyIdentifier")
    secret = pvk.secret()
    pin_data: Body
    try:
        if given:
            block_hex = values["EncryptedPinBlock"]
            block = _check_block_length(
                encryption, block_hex, operation=operation, what="EncryptedPinBlock"
            )
            try:
                pin = _decrypt(encryption, block, fmt, pan)
            except errors.ApckxError:
                raise ValidationException(
                    f"{operation}: EncryptedPinBlock does not decode as {fmt} under "
                    "EncryptionKeyIdentifier"
                ) from None
            encrypted = block_hex.upper()
            if kind == "VisaPinVerificationValue":
                pin_data = {
                    "VerificationValue": pin_verification.generate_visa_pvv(
                        secret, _require_pan(pan, kind), values["PinVerificationKeyIndex"], pin
                    )
                }
            else:
                pin_data = {
                    "PinOffset": pin_verification.generate_ibm3624_offset(
                        secret, *_ibm_inputs(values), pin
                    )
                }
        else:
            if kind == "VisaPin":
                pin = pin_verification.generate_random_pin(length)
                pin_data = {
                    "VerificationValue": pin_verification.generate_visa_pvv(
                        secret, _require_pan(pan, kind), values["PinVerificationKeyIndex"], pin
                    )
                }
            elif kind == "Ibm3624NaturalPin":
                pin = pin_verification.generate_ibm3624_natural_pin(
                    secret, *_ibm_inputs(values), length
                )
                pin_data = {"PinOffset": "0" * len(pin)}
            elif kind == "Ibm3624RandomPin":
                pin, offset = pin_verification.generate_ibm3624_random_pin(
                    secret, *_ibm_inputs(values), length
                )
                pin_data = {"PinOffset": offset}
            else:  # Ibm3624PinFromOffset
                pin = pin_verification.generate_ibm3624_pin_from_offset(
                    secret, *_ibm_inputs(values), values["PinOffset"]
                )
                pin_data = {"PinOffset": values["PinOffset"]}
            encrypted = _encrypt(encryption, pin, fmt, pan, operation=operation)
    except errors.ApckxError as exc:
        raise _refusal(operation, exc) from None
    return {
        "GenerationKeyArn": pvk.arn,
        "GenerationKeyCheckValue": pvk.key_check_value,
        "EncryptionKeyArn": encryption.arn,
        "EncryptionKeyCheckValue": encryption.key_check_value,
        "EncryptedPinBlock": encrypted,
        "PinData": pin_data,
    }


def _require_pan(pan: str | None, kind: str) -> str:
    if pan is None:
        raise ValidationException(f"GeneratePinData: {kind} needs the PrimaryAccountNumber")
    return pan


# --- VerifyPinData -------------------------------------------------------------------------


def verify_pin_data(context: KeyContext, params: Params) -> Body:
    """VerifyPinData: the PIN in the block against a Visa PVV or an IBM 3624 offset."""
    operation = "VerifyPinData"
    kind, values = _choice(params["VerificationAttributes"])
    usage = V2 if kind == "VisaPin" else V1
    pvk = _pvk(
        context,
        params["VerificationKeyIdentifier"],
        usage,
        "Verify",
        operation=operation,
        role="VerificationKeyIdentifier",
    )
    fmt = params["PinBlockFormat"]
    pan = _pan_for(fmt, params.get("PrimaryAccountNumber"), operation=operation)
    encryption = _pin_key(
        context,
        params["EncryptionKeyIdentifier"],
        operation=operation,
        role="EncryptionKeyIdentifier",
        decrypt=True,
        dukpt_attributes=params.get("DukptAttributes"),
        wrapped=params.get("EncryptionWrappedKey"),
    )
    _check_format(encryption, fmt, operation=operation, role="EncryptionKeyIdentifier")
    block = _check_block_length(
        encryption, params["EncryptedPinBlock"], operation=operation, what="EncryptedPinBlock"
    )
    if kind == "VisaPin" and pan is None:
        raise ValidationException(f"{operation}: VisaPin needs the PrimaryAccountNumber")
    secret = pvk.secret()
    try:
        pin = _decrypt(encryption, block, fmt, pan)
    except errors.ApckxError:
        pin = None
    matched = False
    if pin is not None and (params.get("PinDataLength") in (None, len(pin))):
        try:
            if kind == "VisaPin":
                matched = pin_verification.verify_visa_pvv(
                    secret,
                    str(pan),
                    values["PinVerificationKeyIndex"],
                    pin,
                    values["VerificationValue"],
                )
            else:
                offset = values["PinOffset"]
                matched = len(offset) == len(pin) and pin_verification.verify_ibm3624_pin(
                    secret, *_ibm_inputs(values), offset, pin
                )
        except errors.ApckxError as exc:
            raise _refusal(operation, exc) from None
    if not matched:
        raise VerificationFailedException("PIN verification failed", INVALID_PIN)
    return {
        "VerificationKeyArn": pvk.arn,
        "VerificationKeyCheckValue": pvk.key_check_value,
        "EncryptionKeyArn": encryption.arn,
        "EncryptionKeyCheckValue": encryption.key_check_value,
    }
