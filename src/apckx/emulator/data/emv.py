"""VerifyAuthRequestCryptogram, GenerateAuthRequestCryptogram and GenerateMacEmvPinChange.

The cryptography is :mod:`apckx.crypto.emv` (on pyemv): the ICC master key from the issuer
master key by ``MajorKeyDerivationMode`` (Option A/B), then the session key the
``SessionKeyDerivationAttributes`` member names (:func:`apckx.crypto.emv.derive_session_key`),
then the ARQC (ISO 9797-1 algorithm 3 over the caller's transaction data). ARPC method 1 and 2
use the same key as the ARQC. PIN change: the new PIN leaves its PEK only as the PIN block
enciphered for the card under SK-SMC, and the issuer-script MAC under SK-SMI covers the
``MessageData`` followed by that enciphered block. Inferred choices: docs/EMULATOR.md ("EMV").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apckx import errors
from apckx.crypto import emv, pin_block
from apckx.emulator.data.exceptions import (
    INVALID_AUTH_REQUEST_CRYPTOGRAM,
    VerificationFailedException,
)
from apckx.emulator.data.keys import E0, E1, E2, P0, TDES_ALGORITHMS, DataKey, KeyContext
from apckx.emulator.exceptions import ValidationException

Params = Mapping[str, Any]
Body = dict[str, Any]

_IMK_ALGORITHMS = ("TDES_2KEY",)


def _choice(union: Params) -> tuple[str, Params]:
    name, value = next(iter(union.items()))
    return name, value


def _refusal(operation: str, exc: errors.ApckxError) -> ValidationException:
    return ValidationException(f"{operation}: {exc}")


def _imk(context: KeyContext, identifier: str, usage: str, *, operation: str, role: str) -> DataKey:
    return context.key(
        identifier,
        operation=operation,
        usages=(usage,),
        modes=("DeriveKey",),
        algorithms=_IMK_ALGORITHMS,
        role=role,
    )


def _hex_or_none(values: Params, name: str) -> bytes | None:
    text = values.get(name)
    return None if text is None else bytes.fromhex(text)


def _cryptogram_key(imk: DataKey, mode: str, derivation: str, values: Params) -> bytes:
    """The key that computes the ARQC: the session key of ``derivation`` (the ICC MK itself
    for Visa CVN10 and Amex)."""
    icc_mk = emv.derive_icc_master_key(
        imk.secret(), values["PrimaryAccountNumber"], values["PanSequenceNumber"], mode=mode
    )
    return emv.derive_session_key(
        icc_mk,
        derivation,
        atc=_hex_or_none(values, "ApplicationTransactionCounter"),
        unpredictable_number=_hex_or_none(values, "UnpredictableNumber"),
    )


def verify_auth_request_cryptogram(context: KeyContext, params: Params) -> Body:
    """VerifyAuthRequestCryptogram: the ARQC, then the ARPC (method 1 or 2) when asked."""
    operation = "VerifyAuthRequestCryptogram"
    imk = _imk(context, params["KeyIdentifier"], E0, operation=operation, role="KeyIdentifier")
    derivation, values = _choice(params["SessionKeyDerivationAttributes"])
    data = bytes.fromhex(_even(params["TransactionData"], "TransactionData", operation))
    arqc = bytes.fromhex(params["AuthRequestCryptogram"])
    try:
        key = _cryptogram_key(imk, params["MajorKeyDerivationMode"], derivation, values)
        matched = emv.verify_arqc(key, data, arqc)
    except errors.ApckxError as exc:
        raise _refusal(operation, exc) from None
    if not matched:
        raise VerificationFailedException(
            "ARQC verification failed", INVALID_AUTH_REQUEST_CRYPTOGRAM
        )
    out: Body = imk.output()
    response = params.get("AuthResponseAttributes")
    if response is not None:
        method, arpc_values = _choice(response)
        try:
            if method == "ArpcMethod1":
                arpc = emv.generate_arpc_method1(
                    key, arqc, bytes.fromhex(arpc_values["AuthResponseCode"])
                )
            else:
                pad = _even(
                    arpc_values.get("ProprietaryAuthenticationData", ""),
                    "ProprietaryAuthenticationData",
                    operation,
                )
                arpc = emv.generate_arpc_method2(
                    key, arqc, bytes.fromhex(arpc_values["CardStatusUpdate"]), bytes.fromhex(pad)
                )
        except errors.ApckxError as exc:
            raise _refusal(operation, exc) from None
        out["AuthResponseValue"] = arpc.hex().upper()
    return out


def generate_auth_request_cryptogram(context: KeyContext, params: Params) -> Body:
    """GenerateAuthRequestCryptogram (APC: for development and testing): the ARQC a card
    would compute, with the same derivations as the verification."""
    operation = "GenerateAuthRequestCryptogram"
    imk = _imk(context, params["KeyIdentifier"], E0, operation=operation, role="KeyIdentifier")
    derivation, values = _choice(params["SessionKeyDerivationAttributes"])
    data = bytes.fromhex(_even(params["TransactionData"], "TransactionData", operation))
    try:
        key = _cryptogram_key(imk, params["MajorKeyDerivationMode"], derivation, values)
        arqc = emv.generate_arqc(key, data)
    except errors.ApckxError as exc:
        raise _refusal(operation, exc) from None
    return {**imk.output(), "AuthRequestCryptogram": arqc.hex().upper()}


def _even(text: str, what: str, operation: str) -> str:
    if len(text) % 2:
        raise ValidationException(
            f"{operation}: {what} must be whole bytes (an even number "
            f"of hex characters, got {len(text)})"
        )
    return text


# --- GenerateMacEmvPinChange ---------------------------------------------------------------

#: Derivation member -> (session-key derivation, PIN block kind, encryption parameters).
_PIN_CHANGE_SCHEMES: dict[str, tuple[str, str, dict[str, str] | None]] = {
    "EmvCommon": ("EMV_COMMON_SESSION_KEY", "ISO2", None),
    "Mastercard": (
        "MASTERCARD_SESSION_KEY",
        "ISO2",
        {"mode": "CBC", "padding": "NO_PADDING", "length_position": "NONE"},
    ),
    "Emv2000": (
        "EMV2000",
        "ISO2",
        {"mode": "CBC", "padding": "ISO_IEC_7816_4", "length_position": "NONE"},
    ),
    "Visa": (
        "VISA",
        "VIS",
        {"mode": "ECB", "padding": "ISO_IEC_7816_4", "length_position": "FRONT_OF_PIN_BLOCK"},
    ),
    "Amex": (
        "AMEX",
        "VIS",
        {"mode": "ECB", "padding": "ISO_IEC_7816_4", "length_position": "FRONT_OF_PIN_BLOCK"},
    ),
}


def _decrypt_pin(
    context: KeyContext,
    identifier: str,
    block_hex: str,
    fmt: str,
    pan: str,
    *,
    role: str,
    operation: str,
) -> tuple[DataKey, str]:
    pek = context.key(
        identifier,
        operation=operation,
        usages=(P0,),
        modes=("Decrypt", "Unwrap"),
        algorithms=TDES_ALGORITHMS,
        role=role,
    )
    try:
        pin = pin_block.decrypt_pin_block(pek.secret(), bytes.fromhex(block_hex), fmt, pan=pan)
    except errors.ApckxError:
        raise ValidationException(
            f"{operation}: the PIN block under {role} does not decode as {fmt}"
        ) from None
    return pek, pin


def generate_mac_emv_pin_change(context: KeyContext, params: Params) -> Body:
    """GenerateMacEmvPinChange: the new PIN enciphered for the card under SK-SMC and the
    issuer-script MAC under SK-SMI (derivations: EmvCommon, Mastercard, Emv2000, Visa, Amex)."""
    operation = "GenerateMacEmvPinChange"
    name, values = _choice(params["DerivationMethodAttributes"])
    derivation, block_kind, scheme = _PIN_CHANGE_SCHEMES[name]
    pan, psn = values["PrimaryAccountNumber"], values["PanSequenceNumber"]
    mode = values["MajorKeyDerivationMode"]
    smi = _imk(
        context,
        params["SecureMessagingIntegrityKeyIdentifier"],
        E2,
        operation=operation,
        role="SecureMessagingIntegrityKeyIdentifier",
    )
    smc = _imk(
        context,
        params["SecureMessagingConfidentialityKeyIdentifier"],
        E1,
        operation=operation,
        role="SecureMessagingConfidentialityKeyIdentifier",
    )
    ac_key: DataKey | None = None
    current_pek: DataKey | None = None
    if block_kind == "VIS":
        ac_key = _imk(
            context,
            values["AuthorizationRequestKeyIdentifier"],
            E0,
            operation=operation,
            role="AuthorizationRequestKeyIdentifier",
        )
    new_pek, new_pin = _decrypt_pin(
        context,
        params["NewPinPekIdentifier"],
        params["NewEncryptedPinBlock"],
        params["PinBlockFormat"],
        pan,
        role="NewPinPekIdentifier",
        operation=operation,
    )
    current_pin: str | None = None
    current = values.get("CurrentPinAttributes")
    if current is not None:
        current_pek, current_pin = _decrypt_pin(
            context,
            current["CurrentPinPekIdentifier"],
            current["CurrentEncryptedPinBlock"],
            params["PinBlockFormat"],
            pan,
            role="CurrentPinPekIdentifier",
            operation=operation,
        )
    if scheme is None:
        scheme = {
            "mode": values["Mode"],
            "padding": values["PinBlockPaddingType"],
            "length_position": values["PinBlockLengthPosition"],
        }
    message = bytes.fromhex(params["MessageData"])
    try:
        atc = _hex_or_none(values, "ApplicationTransactionCounter")
        ac = _hex_or_none(values, "ApplicationCryptogram")
        mk_smi = emv.derive_icc_master_key(smi.secret(), pan, psn, mode=mode)
        mk_smc = emv.derive_icc_master_key(smc.secret(), pan, psn, mode=mode)
        sk_smi = emv.derive_session_key(mk_smi, derivation, atc=atc, application_cryptogram=ac)
        sk_smc = emv.derive_session_key(mk_smc, derivation, atc=atc, application_cryptogram=ac)
        if ac_key is not None:
            mk_ac = emv.derive_icc_master_key(ac_key.secret(), pan, psn, mode=mode)
            clear = emv.format_vis_pin_block(mk_ac, new_pin, current_pin)
        else:
            clear = emv.format_iso2_pin_block(new_pin)
        encrypted = emv.encrypt_pin_block_for_card(sk_smc, clear, **scheme)
        mac = emv.generate_script_mac(sk_smi, message + encrypted)
    except errors.ApckxError as exc:
        raise _refusal(operation, exc) from None
    out: Body = {
        "NewPinPekArn": new_pek.arn,
        "NewPinPekKeyCheckValue": new_pek.key_check_value,
        "SecureMessagingIntegrityKeyArn": smi.arn,
        "SecureMessagingIntegrityKeyCheckValue": smi.key_check_value,
        "SecureMessagingConfidentialityKeyArn": smc.arn,
        "SecureMessagingConfidentialityKeyCheckValue": smc.key_check_value,
        "Mac": mac.hex().upper(),
        "EncryptedPinBlock": encrypted.hex().upper(),
    }
    if ac_key is not None:
        outputs: Body = {
            "AuthorizationRequestKeyArn": ac_key.arn,
            "AuthorizationRequestKeyCheckValue": ac_key.key_check_value,
        }
        if current_pek is not None:
            outputs["CurrentPinPekArn"] = current_pek.arn
            outputs["CurrentPinPekKeyCheckValue"] = current_pek.key_check_value
        out["VisaAmexDerivationOutputs"] = outputs
    return out
