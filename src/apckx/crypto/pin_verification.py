"""PIN verification values: Visa PVV and IBM 3624 (natural PIN, offset, PIN from offset, random
PIN), pure, on psec (``psec.pin``).

APC's inputs are taken as APC names them: ``DecimalizationTable`` (16 digits),
``PinValidationData`` (4..16 digits, padded on the right to 16 with
``PinValidationDataPadCharacter``), ``PinOffset`` (4..12 digits, the PIN's length), and for Visa
the ``PinVerificationKeyIndex`` (PVKI, 0..6 in APC's model).

Verification compares in constant time. Random PINs come from an injectable ``rng``.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable

from psec import pin as _pin

from apckx.errors import InputError

__all__ = [
    "generate_ibm3624_natural_pin",
    "generate_ibm3624_offset",
    "generate_ibm3624_pin_from_offset",
    "generate_ibm3624_random_pin",
    "generate_random_pin",
    "generate_visa_pvv",
    "verify_ibm3624_pin",
    "verify_visa_pvv",
]

Rng = Callable[[int], bytes]


def _check_tdes(pvk: bytes) -> None:
    if len(pvk) not in (16, 24):
        raise InputError("the PIN verification key must be TDES (16 or 24 bytes)")


def _check_digits(text: str, what: str, low: int, high: int) -> None:
    if not text.isascii() or not text.isdigit() or not low <= len(text) <= high:
        raise InputError(f"{what} must be {low}..{high} decimal digits")


def _check_ibm_inputs(decimalization_table: str, validation_data: str, pad: str) -> None:
    _check_digits(decimalization_table, "the decimalization table", 16, 16)
    _check_digits(validation_data, "the PIN validation data", 4, 16)
    if len(pad) != 1 or pad.upper() not in "0123456789ABCDEF":
        raise InputError("the PIN validation data pad character must be one hex digit")


def generate_random_pin(length: int = 4, *, rng: Rng = os.urandom) -> str:
    """A uniformly random PIN of ``length`` (4..12) digits."""
    if not 4 <= length <= 12:
        raise InputError(f"the PIN length must be 4..12 (got {length})")
    digits: list[str] = []
    while len(digits) < length:
        for byte in rng(length * 2):
            if byte < 250 and len(digits) < length:  # 250 = 25 * 10: unbiased
                digits.append(str(byte % 10))
    return "".join(digits)


# --- Visa PVV -------------------------------------------------------------------------------------


def generate_visa_pvv(pvk: bytes, pan: str, pvki: int, pin: str) -> str:
    """The 4-digit Visa PVV: TSP = 11 PAN digits before the check digit || PVKI || the PIN's
    first 4 digits, enciphered under the PVK, decimalized left to right (A..F -> 0..5 if short)."""
    _check_tdes(pvk)
    _check_digits(pan, "the primary account number", 12, 19)
    _check_digits(pin, "the PIN", 4, 12)
    if not 0 <= pvki <= 9:
        raise InputError(f"the PIN verification key index must be 0..9 (got {pvki})")
    return str(_pin.generate_visa_pvv(pvk, str(pvki), pin[:4], pan))


def verify_visa_pvv(pvk: bytes, pan: str, pvki: int, pin: str, pvv: str) -> bool:
    return hmac.compare_digest(generate_visa_pvv(pvk, pan, pvki, pin), pvv)


# --- IBM 3624 -------------------------------------------------------------------------------------


def _run_ibm3624(
    operation: Callable[[bytes, str, str, str, int, int, str], str],
    pvk: bytes,
    decimalization_table: str,
    validation_data: str,
    pad: str,
    digits: str,
    what: str,
) -> str:
    """psec's IBM 3624 ``operation`` on ``digits`` (an offset or a PIN, 4..12 digits),
    after the checks both directions share."""
    _check_tdes(pvk)
    _check_ibm_inputs(decimalization_table, validation_data, pad)
    _check_digits(digits, what, 4, 12)
    return str(
        operation(
            pvk, decimalization_table, digits, validation_data, 0, len(validation_data), pad.upper()
        )
    )


def generate_ibm3624_pin_from_offset(
    pvk: bytes, decimalization_table: str, validation_data: str, pad: str, offset: str
) -> str:
    """PIN = (natural PIN + offset) mod 10, digit by digit; the offset's length is the PIN's."""
    return _run_ibm3624(
        _pin.generate_ibm3624_pin,
        pvk, decimalization_table, validation_data, pad, offset, "the PIN offset",
    )


def generate_ibm3624_natural_pin(
    pvk: bytes, decimalization_table: str, validation_data: str, pad: str, length: int = 4
) -> str:
    """The natural PIN: the leftmost ``length`` decimalized digits of TDES(PVK, padded data)."""
    if not 4 <= length <= 12:
        raise InputError(f"the PIN length must be 4..12 (got {length})")
    return generate_ibm3624_pin_from_offset(
        pvk, decimalization_table, validation_data, pad, "0" * length
    )


def generate_ibm3624_offset(
    pvk: bytes, decimalization_table: str, validation_data: str, pad: str, pin: str
) -> str:
    """Offset = (PIN - natural PIN) mod 10, digit by digit."""
    return _run_ibm3624(
        _pin.generate_ibm3624_offset,
        pvk, decimalization_table, validation_data, pad, pin, "the PIN",
    )


def generate_ibm3624_random_pin(
    pvk: bytes,
    decimalization_table: str,
    validation_data: str,
    pad: str,
    length: int = 4,
    *,
    rng: Rng = os.urandom,
) -> tuple[str, str]:
    """A random PIN and its offset."""
    pin = generate_random_pin(length, rng=rng)
    return pin, generate_ibm3624_offset(pvk, decimalization_table, validation_data, pad, pin)


def verify_ibm3624_pin(
    pvk: bytes, decimalization_table: str, validation_data: str, pad: str, offset: str, pin: str
) -> bool:
    """True when ``pin`` is the PIN the offset gives (constant-time compare)."""
    expected = generate_ibm3624_pin_from_offset(
        pvk, decimalization_table, validation_data, pad, offset
    )
    return hmac.compare_digest(expected.encode(), pin.encode())
