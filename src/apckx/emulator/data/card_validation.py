"""GenerateCardValidationData and VerifyCardValidationData, on
:mod:`apckx.crypto.card_validation`.

| attribute | key | computed as |
|---|---|---|
| CardVerificationValue1 | C0 TDES_2KEY | Visa CVV (expiry, service code) |
| CardVerificationValue2 | C0 TDES_2KEY | CVV with service code 000 |
| AmexCardSecurityCodeVersion1/2 | C0 TDES_2KEY/3KEY | Amex CSC (inferred form) |
| DynamicCardVerificationCode | E4 TDES_2KEY (DeriveKey) | Mastercard CVC3 |
| DynamicCardVerificationValue | E6 TDES_2KEY (DeriveKey) | Visa dCVV (jPOS's form) |
| CardHolderVerificationValue, DiscoverDynamicCardVerificationCode | - | refused (no public text) |

Generate takes ``Generate`` (C0) and Verify ``Verify``; ``ValidationDataLength`` 3..5
(default 3) on generate, the given value's length on verify. A mismatch is
``VerificationFailedException`` with ``INVALID_VALIDATION_DATA``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apckx import errors
from apckx.crypto import card_validation
from apckx.emulator.data.exceptions import INVALID_VALIDATION_DATA, VerificationFailedException
from apckx.emulator.data.keys import C0, E4, E6, TDES_ALGORITHMS, DataKey, KeyContext
from apckx.emulator.exceptions import ValidationException

Params = Mapping[str, Any]
Body = dict[str, Any]

_TDES_2KEY = frozenset({"TDES_2KEY"})


def _key_for(context: KeyContext, identifier: str, member: str, operation: str,
             mode: str) -> DataKey:
    if member in ("CardVerificationValue1", "CardVerificationValue2"):
        return context.key(identifier, operation=operation, usages=(C0,), modes=(mode,),
                           algorithms=_TDES_2KEY)
    if member.startswith("AmexCardSecurityCode"):
        return context.key(identifier, operation=operation, usages=(C0,), modes=(mode,),
                           algorithms=TDES_ALGORITHMS)
    usage = E4 if member == "DynamicCardVerificationCode" else E6
    return context.key(identifier, operation=operation, usages=(usage,), modes=("DeriveKey",),
                       algorithms=_TDES_2KEY)


def _compute(key: DataKey, pan: str, member: str, values: Params, length: int) -> str:
    secret = key.secret()
    if member == "CardVerificationValue1":
        return card_validation.generate_cvv(secret, pan, values["CardExpiryDate"],
                                            values["ServiceCode"], length)
    if member == "CardVerificationValue2":
        return card_validation.generate_cvv2(secret, pan, values["CardExpiryDate"], length)
    if member == "AmexCardSecurityCodeVersion1":
        return card_validation.generate_amex_csc(secret, pan, values["CardExpiryDate"],
                                                 version=1, length=length)
    if member == "AmexCardSecurityCodeVersion2":
        return card_validation.generate_amex_csc(secret, pan, values["CardExpiryDate"],
                                                 version=2, service_code=values["ServiceCode"],
                                                 length=length)
    if member == "DynamicCardVerificationCode":
        return card_validation.generate_cvc3(
            secret, pan, values["PanSequenceNumber"], bytes.fromhex(values["TrackData"]),
            values["ApplicationTransactionCounter"], values["UnpredictableNumber"], length)
    return card_validation.generate_dcvv(
        secret, pan, values["PanSequenceNumber"], values["CardExpiryDate"],
        values["ServiceCode"], values["ApplicationTransactionCounter"], length)


def _run(context: KeyContext, params: Params, attributes: Params, operation: str, mode: str,
         length: int) -> tuple[DataKey, str]:
    member, values = next(iter(attributes.items()))
    try:
        card_validation.check_supported(member)
    except errors.ApckxError as exc:
        raise ValidationException(f"{operation}: {exc}") from None
    key = _key_for(context, params["KeyIdentifier"], member, operation, mode)
    try:
        return key, _compute(key, params["PrimaryAccountNumber"], member, values, length)
    except errors.ApckxError as exc:
        raise ValidationException(f"{operation}: {exc}") from None


def generate_card_validation_data(context: KeyContext, params: Params) -> Body:
    """GenerateCardValidationData: ``ValidationDataLength`` digits (default 3)."""
    length = params.get("ValidationDataLength") or card_validation.DEFAULT_VALIDATION_DATA_LENGTH
    key, value = _run(context, params, params["GenerationAttributes"],
                      "GenerateCardValidationData", "Generate", length)
    return {**key.output(), "ValidationData": value}


def verify_card_validation_data(context: KeyContext, params: Params) -> Body:
    """VerifyCardValidationData: recompute at the given value's length, compare in constant
    time."""
    given = params["ValidationData"]
    key, value = _run(context, params, params["VerificationAttributes"],
                      "VerifyCardValidationData", "Verify", len(given))
    if not card_validation.verify_validation_data(value, given):
        raise VerificationFailedException(
            "Card validation data verification failed", INVALID_VALIDATION_DATA)
    return key.output()
