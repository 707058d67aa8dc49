"""The emulator's data plane (``payment-cryptography-data``): one module per family.

``dispatch`` is what the server calls with a validated, pruned input dict
(:mod:`apckx.emulator.rest_json` parses the wire). Each operation is a function named as
botocore names it (``EncryptData`` -> ``encrypt_data``) in its family's module, listed in
:data:`FAMILIES`; the function takes a :class:`~apckx.emulator.data.keys.KeyContext` and the
input, and returns the output dict. Key resolution and the usage/mode checks every
operation makes are in :mod:`apckx.emulator.data.keys`.

To add a family: write ``data/<family>.py`` with one function per operation and add its
operations to :data:`FAMILIES` (one line each).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from botocore import xform_name

from apckx.emulator.data.keys import KeyContext
from apckx.emulator.exceptions import UnknownOperationException

Params = Mapping[str, Any]
Body = dict[str, Any]
Handler = Callable[[KeyContext, Params], Body]

#: The rate-limit planes of the data plane (APC's quotas count them apart).
SYMMETRIC_PLANE = "symmetric data-plane"
ASYMMETRIC_PLANE = "asymmetric data-plane"

#: operation -> the module (under ``apckx.emulator.data``) that implements it.
FAMILIES: dict[str, str] = {
    "EncryptData": "encryption",
    "DecryptData": "encryption",
    "ReEncryptData": "encryption",
    "TranslateKeyMaterial": "translation",
    "GenerateMac": "mac",
    "VerifyMac": "mac",
    "GenerateCardValidationData": "card_validation",
    "VerifyCardValidationData": "card_validation",
    "TranslatePinData": "pin",
    "GeneratePinData": "pin",
    "VerifyPinData": "pin",
    "VerifyAuthRequestCryptogram": "emv",
    "GenerateAuthRequestCryptogram": "emv",
    "GenerateMacEmvPinChange": "emv",
    "GenerateAs2805KekValidation": "as2805",
}

IMPLEMENTED_OPERATIONS: frozenset[str] = frozenset(FAMILIES)

_handlers: dict[str, Handler] = {}


def handler_for(operation: str) -> Handler:
    """The function implementing ``operation`` (imported on first use)."""
    handler = _handlers.get(operation)
    if handler is None:
        family = FAMILIES.get(operation)
        if family is None:
            raise UnknownOperationException(
                f"Operation {operation} is not implemented by the apckx emulator"
            )
        module = importlib.import_module(f"{__name__}.{family}")
        handler = _handlers[operation] = getattr(module, xform_name(operation))
    return handler


def _uses_asymmetric(params: Params) -> bool:
    for name in ("EncryptionAttributes", "DecryptionAttributes", "IncomingEncryptionAttributes",
                 "OutgoingEncryptionAttributes"):
        attributes = params.get(name)
        if isinstance(attributes, Mapping) and "Asymmetric" in attributes:
            return True
    for name in ("WrappedKey", "IncomingWrappedKey", "OutgoingWrappedKey",
                 "EncryptionWrappedKey"):
        wrapped = params.get(name)
        material = wrapped.get("WrappedKeyMaterial") if isinstance(wrapped, Mapping) else None
        if isinstance(material, Mapping) and "DiffieHellmanSymmetricKey" in material:
            return True
    incoming = params.get("IncomingKeyMaterial")
    return isinstance(incoming, Mapping) and "DiffieHellmanTr31KeyBlock" in incoming


def plane_of(operation: str, params: Params) -> str:
    """The quota a call counts against: asymmetric for RSA encryption and ECDH-derived keys
    (RSA/ECC private-key work), symmetric for everything else."""
    return ASYMMETRIC_PLANE if _uses_asymmetric(params) else SYMMETRIC_PLANE


def dispatch(registry: Any, operation: str, params: Params, *, account_id: str,
             region: str) -> Body:
    """Run a data-plane operation for (account, region) on a validated input."""
    handler = handler_for(operation)
    return handler(KeyContext(registry, account_id, region), params)
