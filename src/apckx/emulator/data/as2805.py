"""GenerateAs2805KekValidation: AS2805.6.3 node-to-node KEK validation (AWS UG
as2805.kekvalidation; the cryptography is :mod:`apckx.crypto.as2805`, inferred choices in
docs/EMULATOR.md, "AS2805").

- ``KekValidationRequest``: a random key KR (``DeriveKeyAlgorithm`` TDES_2KEY/TDES_3KEY, at
  most ``RandomKeyMaxLength``); returns KRs (for the partner) and KRr (to compare with the
  partner's answer), both under the sending KEK's variants.
- ``KekValidationResponse``: the partner's KRs in, the KRr to send back out (KRs echoed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apckx import errors
from apckx.crypto import as2805
from apckx.emulator.data.keys import K0, TDES_ALGORITHMS, KeyContext
from apckx.emulator.exceptions import ValidationException

Params = Mapping[str, Any]
Body = dict[str, Any]


def generate_as2805_kek_validation(context: KeyContext, params: Params) -> Body:
    operation = "GenerateAs2805KekValidation"
    kind, values = next(iter(params["KekValidationType"].items()))
    request = kind == "KekValidationRequest"
    # The sending KEK (request) wraps; the receiving KEK (response) unwraps.
    modes = ("Encrypt", "Wrap") if request else ("Decrypt", "Unwrap")
    kek = context.key(
        params["KeyIdentifier"],
        operation=operation,
        usages=(K0,),
        modes=modes,
        algorithms=TDES_ALGORITHMS,
        role="KeyIdentifier",
    )
    mask = params["RandomKeySendVariantMask"]
    try:
        if request:
            kr_send, kr_receive = as2805.generate_kek_validation_request(
                kek.secret(),
                values["DeriveKeyAlgorithm"],
                mask,
                max_length=values.get("RandomKeyMaxLength"),
            )
        else:
            kr_send = bytes.fromhex(values["RandomKeySend"])
            kr_receive = as2805.generate_kek_validation_response(kek.secret(), kr_send, mask)
    except errors.ApckxError as exc:
        raise ValidationException(f"{operation}: {exc}") from None
    return {
        **kek.output(),
        "RandomKeySend": kr_send.hex().upper(),
        "RandomKeyReceive": kr_receive.hex().upper(),
    }
