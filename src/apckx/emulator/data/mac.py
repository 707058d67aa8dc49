"""GenerateMac and VerifyMac, on :mod:`apckx.crypto.mac`.

``GenerationAttributes`` / ``VerificationAttributes`` is one of:

- ``Algorithm``: ISO9797_ALGORITHM1 (an M1 TDES key), ISO9797_ALGORITHM3 (M3 TDES), CMAC (M6
  TDES or AES), HMAC (M7, the hash of the key's algorithm), HMAC_SHA224/256/384/512 (M7 of
  that algorithm), AS2805_4_1 (M0 TDES_2KEY);
- ``EmvMac``: an E2 TDES_2KEY issuer master key (DeriveKey), ICC master key by Option A/B,
  session key by ``SessionKeyDerivationMode``, ISO 9797-1 algorithm 3 with padding method 2;
- ``DukptIso9797Algorithm1`` / ``DukptIso9797Algorithm3`` / ``DukptCmac``: a B0 BDK
  (DeriveKey), the MAC working key of the KSN and ``DukptKeyVariant``.

The ISO 9797 algorithms need whole blocks (APC does not pad); a DUKPT MAC needs at least 8
bytes. ``MacLength`` (bytes) cuts the MAC; without it ISO 9797 MACs are 4 bytes (as observed
on the live service) and CMAC/HMAC full length. VerifyMac compares the given MAC with the
leftmost bytes of the computed one in constant time; a mismatch is
``VerificationFailedException`` with ``INVALID_MAC``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apckx import errors
from apckx.crypto import dukpt, mac
from apckx.emulator.data.exceptions import INVALID_MAC, VerificationFailedException
from apckx.emulator.data.keys import (
    AES_ALGORITHMS,
    B0,
    BLOCK_ALGORITHMS,
    E2,
    HMAC_ALGORITHMS,
    M1,
    M3,
    M6,
    M7,
    TDES_ALGORITHMS,
    DataKey,
    KeyContext,
)
from apckx.emulator.exceptions import ValidationException

Params = Mapping[str, Any]
Body = dict[str, Any]

M0 = "TR31_M0_ISO_16609_MAC_KEY"

#: MacAlgorithm -> (key usages, key algorithms) a key must have for it.
_ALGORITHM_KEYS: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "ISO9797_ALGORITHM1": ((M1,), TDES_ALGORITHMS),
    "ISO9797_ALGORITHM3": ((M3,), TDES_ALGORITHMS),
    "CMAC": ((M6,), TDES_ALGORITHMS | AES_ALGORITHMS),
    "HMAC": ((M7,), HMAC_ALGORITHMS),
    "HMAC_SHA224": ((M7,), frozenset({"HMAC_SHA224"})),
    "HMAC_SHA256": ((M7,), frozenset({"HMAC_SHA256"})),
    "HMAC_SHA384": ((M7,), frozenset({"HMAC_SHA384"})),
    "HMAC_SHA512": ((M7,), frozenset({"HMAC_SHA512"})),
    "AS2805_4_1": ((M0,), frozenset({"TDES_2KEY"})),
}
_DUKPT_MEMBERS = {
    "DukptIso9797Algorithm1": "ISO9797_ALGORITHM1",
    "DukptIso9797Algorithm3": "ISO9797_ALGORITHM3",
    "DukptCmac": "CMAC",
}
_ISO9797 = ("ISO9797_ALGORITHM1", "ISO9797_ALGORITHM3")
#: EmvMac's SessionKeyDerivationMode values that crypto/emv spells otherwise.
_SESSION_KEY_MODES = {"UNION_PAY": "UnionPay"}


def _refusal(operation: str, exc: errors.ApckxError) -> ValidationException:
    return ValidationException(f"{operation}: {exc}")


def _full_mac(context: KeyContext, params: Params, attributes: Params, operation: str,
              mode: str) -> tuple[DataKey, bytes, str]:
    """The key, the full-length MAC and the algorithm family name (for length defaults)."""
    identifier = params["KeyIdentifier"]
    message = bytes.fromhex(params["MessageData"])
    member, value = next(iter(attributes.items()))
    try:
        if member == "Algorithm":
            usages, algorithms = _ALGORITHM_KEYS[value]
            key = context.key(identifier, operation=operation, usages=usages, modes=(mode,),
                              algorithms=algorithms)
            computed = mac.MAC_ALGORITHMS[value](key.secret(), message, key.key_algorithm)
            return key, computed, str(value)
        if member == "EmvMac":
            key = context.key(identifier, operation=operation, usages=(E2,),
                              modes=("DeriveKey",), algorithms=("TDES_2KEY",))
            derivation_value: Params = value["SessionKeyDerivationValue"]
            atc = derivation_value.get("ApplicationTransactionCounter")
            cryptogram = derivation_value.get("ApplicationCryptogram")
            computed = mac.generate_emv_mac(
                key.secret(), message, pan=value["PrimaryAccountNumber"],
                pan_sequence_number=value["PanSequenceNumber"],
                major_key_derivation_mode=value["MajorKeyDerivationMode"],
                session_key_derivation_mode=_SESSION_KEY_MODES.get(
                    value["SessionKeyDerivationMode"], value["SessionKeyDerivationMode"]),
                atc=None if atc is None else bytes.fromhex(atc),
                application_cryptogram=None if cryptogram is None else bytes.fromhex(cryptogram),
            )
            return key, computed, "EMV"
        algorithm = _DUKPT_MEMBERS[member]
        key = context.key(identifier, operation=operation, usages=(B0,), modes=("DeriveKey",),
                          algorithms=BLOCK_ALGORITHMS)
        ksn = dukpt.parse_ksn_hex(value["KeySerialNumber"], key.key_algorithm)
        computed = mac.generate_dukpt_mac(
            key.secret(), ksn, message, bdk_algorithm=key.key_algorithm, algorithm=algorithm,
            variant=value["DukptKeyVariant"], key_algorithm=value.get("DukptDerivationType"))
        return key, computed, algorithm
    except errors.ApckxError as exc:
        raise _refusal(operation, exc) from None


def generate_mac(context: KeyContext, params: Params) -> Body:
    """GenerateMac: the MAC of MessageData, ``MacLength`` bytes, or by default 4 bytes for
    the ISO 9797 algorithms and the full MAC for the others."""
    key, computed, family = _full_mac(context, params, params["GenerationAttributes"],
                                      "GenerateMac", "Generate")
    length = params.get("MacLength") or mac.DEFAULT_MAC_LENGTHS.get(family)
    if length is not None and length > len(computed):
        raise ValidationException(
            f"GenerateMac: MacLength {length} is longer than this algorithm's MAC "
            f"({len(computed)} bytes)"
        )
    # The model allows MacLength 4..32 (bytes): an HMAC may be cut anywhere in that range.
    value = computed if length is None else computed[:length]
    return {**key.output(), "Mac": value.hex().upper()}


def verify_mac(context: KeyContext, params: Params) -> Body:
    """VerifyMac: ``Mac`` against the leftmost bytes of the computed MAC."""
    key, computed, family = _full_mac(context, params, params["VerificationAttributes"],
                                      "VerifyMac", "Verify")
    given = bytes.fromhex(params["Mac"])
    length = params.get("MacLength")
    if length is not None and length != len(given):
        raise ValidationException(
            f"VerifyMac: Mac is {len(given)} bytes but MacLength says {length}"
        )
    if family in _ISO9797 and len(given) not in (4, 8):
        raise ValidationException(
            "VerifyMac: an ISO 9797 MAC is 8 or 16 hex characters (4 or 8 bytes), got "
            f"{len(given) * 2}"
        )
    if len(given) > len(computed):
        raise ValidationException(
            f"VerifyMac: Mac is {len(given)} bytes; this algorithm's MAC has {len(computed)}"
        )
    if not mac.verify_mac(computed, given):
        raise VerificationFailedException("MAC verification failed", INVALID_MAC)
    return key.output()
