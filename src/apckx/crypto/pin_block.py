"""ISO 9564-1 PIN blocks (formats 0, 1, 2, 3, 4) and AS2805 format 0 (pure; psec where it covers).

Clear blocks are 8 bytes for formats 0..3 (a TDES block) and 16-byte fields for format 4, which
exists only enciphered under an AES key. Names follow APC's ``PinBlockFormat`` values
(``ISO_FORMAT_0`` ...) and its ``TranslationIsoFormats`` members (``IsoFormat0`` ...).

Randomness (format 1 and 3 fill, the format 4 random half) is injectable (``rng``), so the
encoding direction is checked against fixed vectors; it defaults to ``os.urandom``.

Decoding refuses a block whose control nibble, length or fill does not fit its format with
:class:`PinBlockError` (an :class:`InputError`), whose message never contains PIN digits.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from typing import Final

from psec import aes as _aes
from psec import des as _des
from psec import pinblock as _pinblock

from apckx.errors import InputError

__all__ = [
    "FORMATS",
    "PinBlockError",
    "decipher_iso4_pin_block",
    "decode_pin_block",
    "decrypt_pin_block",
    "encipher_iso4_pin_block",
    "encode_iso4_pan_field",
    "encode_iso4_pin_field",
    "encode_pin_block",
    "encrypt_pin_block",
    "normalize_format",
    "pan_field",
    "pins_equal",
]

Rng = Callable[[int], bytes]

#: APC's names (both spellings) -> the canonical ``PinBlockFormat`` name.
FORMATS: Final[dict[str, str]] = {
    "ISO_FORMAT_0": "ISO_FORMAT_0",
    "IsoFormat0": "ISO_FORMAT_0",
    "ISO_FORMAT_1": "ISO_FORMAT_1",
    "IsoFormat1": "ISO_FORMAT_1",
    "ISO_FORMAT_2": "ISO_FORMAT_2",
    "ISO_FORMAT_3": "ISO_FORMAT_3",
    "IsoFormat3": "ISO_FORMAT_3",
    "ISO_FORMAT_4": "ISO_FORMAT_4",
    "IsoFormat4": "ISO_FORMAT_4",
    "AS2805_FORMAT_0": "AS2805_FORMAT_0",
    "As2805Format0": "AS2805_FORMAT_0",
}

_NEEDS_PAN: Final = frozenset({"ISO_FORMAT_0", "ISO_FORMAT_3", "ISO_FORMAT_4", "AS2805_FORMAT_0"})


class PinBlockError(InputError):
    """A PIN block that does not decode in its format (the message carries no PIN digits)."""


def normalize_format(name: str) -> str:
    try:
        return FORMATS[name]
    except KeyError:
        names = ", ".join(sorted(set(FORMATS.values())))
        raise InputError(f"unknown PIN block format {name!r}: use one of {names}") from None


def _check_pin(pin: str) -> None:
    if not pin.isascii() or not pin.isdigit() or not 4 <= len(pin) <= 12:
        raise InputError("the PIN must be 4..12 decimal digits")


def _check_pan(pan: str | None, fmt: str) -> str:
    if pan is None:
        raise InputError(f"{fmt} needs the primary account number")
    if not pan.isascii() or not pan.isdigit() or not 1 <= len(pan) <= 19:
        raise InputError(f"the primary account number must be 1..19 digits (got {len(pan)})")
    return pan


def pan_field(pan: str) -> bytes:
    """Formats 0 and 3: 0000 || the rightmost 12 PAN digits excluding the check digit."""
    if len(pan) < 2:
        raise InputError("the primary account number is too short for a PAN field")
    return bytes.fromhex("0000" + pan[:-1][-12:].rjust(12, "0"))


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _random_nibbles(count: int, alphabet: str, rng: Rng) -> str:
    # Unbiased: draw bytes, keep those whose low nibble falls in the alphabet's range.
    out: list[str] = []
    while len(out) < count:
        for byte in rng(count * 2):
            digit = "0123456789ABCDEF"[byte & 0x0F]
            if digit in alphabet and len(out) < count:
                out.append(digit)
    return "".join(out)


def _pin_field(control: str, pin: str, fill: str) -> bytes:
    return bytes.fromhex(control + f"{len(pin):X}" + pin + fill)


def encode_pin_block(
    pin: str,
    fmt: str,
    *,
    pan: str | None = None,
    fill: str | None = None,
    rng: Rng = os.urandom,
) -> bytes:
    """The 8-byte clear PIN block of formats 0, 1, 2, 3 and AS2805 format 0.

    ``fill`` gives the fill digits explicitly (formats 1 and 3; vectors); otherwise format 1
    draws random digits 0..F and format 3 random digits A..F from ``rng``.
    AS2805 format 0 is laid out as ISO 9564 format 0 (AS2805.3 adopts that format).
    """
    fmt = normalize_format(fmt)
    _check_pin(pin)
    width = 14 - len(pin)
    if fmt in ("ISO_FORMAT_0", "AS2805_FORMAT_0"):
        # Written here, not psec's: psec wants 13+ PAN digits, APC accepts 12.
        return _xor(_pin_field("0", pin, "F" * width), pan_field(_check_pan(pan, fmt)))
    if fmt == "ISO_FORMAT_2":
        return bytes(_pinblock.encode_pinblock_iso_2(pin))
    if fmt == "ISO_FORMAT_1":
        digits = fill if fill is not None else _random_nibbles(width, "0123456789ABCDEF", rng)
        _check_fill(digits, width, "0123456789ABCDEF", fmt)
        return _pin_field("1", pin, digits)
    if fmt == "ISO_FORMAT_3":
        digits = fill if fill is not None else _random_nibbles(width, "ABCDEF", rng)
        _check_fill(digits, width, "ABCDEF", fmt)
        return _xor(_pin_field("3", pin, digits), pan_field(_check_pan(pan, fmt)))
    raise InputError("ISO_FORMAT_4 is a 16-byte AES block: use encipher_iso4_pin_block")


def _check_fill(fill: str, width: int, alphabet: str, fmt: str) -> None:
    if len(fill) != width or any(c not in alphabet for c in fill.upper()):
        raise InputError(f"{fmt} fill must be {width} digits from {alphabet}")


def decode_pin_block(block: bytes, fmt: str, *, pan: str | None = None) -> str:
    """The PIN in an 8-byte clear block of formats 0, 1, 2, 3 or AS2805 format 0."""
    fmt = normalize_format(fmt)
    if len(block) != 8:
        raise PinBlockError(f"a {fmt} PIN block is 8 bytes (got {len(block)})")
    if fmt in ("ISO_FORMAT_0", "AS2805_FORMAT_0"):
        field = _xor(block, pan_field(_check_pan(pan, fmt)))
        return _parse_pin_field(field, "0", "F", fmt)
    if fmt == "ISO_FORMAT_3":
        field = _xor(block, pan_field(_check_pan(pan, fmt)))
        return _parse_pin_field(field, "3", "ABCDEF", fmt)
    if fmt == "ISO_FORMAT_2":
        try:
            return str(_pinblock.decode_pinblock_iso_2(block))
        except ValueError:
            raise PinBlockError(f"the PIN block does not decode as {fmt}") from None
    if fmt == "ISO_FORMAT_1":
        return _parse_pin_field(block, "1", "0123456789ABCDEF", fmt)
    raise InputError("ISO_FORMAT_4 is a 16-byte AES block: use decipher_iso4_pin_block")


def _parse_pin_field(field: bytes, control: str, fill: str, fmt: str) -> str:
    """The PIN in a clear PIN field C || N || PIN || fill (fill digits from ``fill``)."""
    text = field.hex().upper()
    length = int(text[1], 16)
    pin, rest = text[2 : 2 + length], text[2 + length :]
    if (
        text[0] != control
        or not 4 <= length <= 12
        or not pin.isdigit()
        or any(c not in fill for c in rest)
    ):
        raise PinBlockError(f"the PIN block does not decode as {fmt}")
    return pin


# --- format 4 (ISO 9564-1:2017 9.4, AES) ---------------------------------------------------------


def encode_iso4_pin_field(pin: str, random: bytes) -> bytes:
    """4 || N || PIN || A fill to 16 nibbles || 8 random bytes."""
    _check_pin(pin)
    if len(random) != 8:
        raise InputError(f"the format 4 random half is 8 bytes (got {len(random)})")
    return _pin_field("4", pin, "A" * (14 - len(pin))) + random


def encode_iso4_pan_field(pan: str) -> bytes:
    """M (= PAN length - 12, 0 below 12) || PAN left-justified, zero-filled to 16 bytes."""
    try:
        return bytes(_pinblock.encode_pan_field_iso_4(_check_pan(pan, "ISO_FORMAT_4")))
    except ValueError as exc:
        raise InputError(str(exc)) from None


def encipher_iso4_pin_block(
    key: bytes, pin: str, pan: str, *, random: bytes | None = None, rng: Rng = os.urandom
) -> bytes:
    """EPB = AES(K, AES(K, PIN field) xor PAN field)."""
    _check_aes_key(key)
    field = encode_iso4_pin_field(pin, random if random is not None else rng(8))
    intermediate = _aes.encrypt_aes_ecb(key, field)
    return bytes(_aes.encrypt_aes_ecb(key, _xor(intermediate, encode_iso4_pan_field(pan))))


def decipher_iso4_pin_block(key: bytes, block: bytes, pan: str) -> str:
    _check_aes_key(key)
    if len(block) != 16:
        raise PinBlockError(f"an ISO_FORMAT_4 PIN block is 16 bytes (got {len(block)})")
    try:
        return str(_pinblock.decipher_pinblock_iso_4(key, block, _check_pan(pan, "ISO_FORMAT_4")))
    except ValueError:
        raise PinBlockError("the PIN block does not decode as ISO_FORMAT_4") from None


def _check_aes_key(key: bytes) -> None:
    if len(key) not in (16, 24, 32):
        raise InputError("ISO_FORMAT_4 needs an AES key (16, 24 or 32 bytes)")


# --- encrypted blocks -------------------------------------------------------------------------


def encrypt_pin_block(
    key: bytes,
    pin: str,
    fmt: str,
    *,
    pan: str | None = None,
    aes: bool = False,
    rng: Rng = os.urandom,
) -> bytes:
    """A PIN block enciphered under a PEK: format 4 under AES (``aes=True``), formats 0..3 and
    AS2805 format 0 as one TDES-ECB block."""
    fmt = normalize_format(fmt)
    if fmt == "ISO_FORMAT_4":
        if not aes:
            raise InputError("ISO_FORMAT_4 needs an AES key; TDES keys use formats 0, 1 or 3")
        return encipher_iso4_pin_block(key, pin, _check_pan(pan, fmt), rng=rng)
    if aes:
        raise InputError(f"{fmt} is a TDES format; AES keys use ISO_FORMAT_4")
    return bytes(_des.encrypt_tdes_ecb(key, encode_pin_block(pin, fmt, pan=pan, rng=rng)))


def decrypt_pin_block(
    key: bytes, block: bytes, fmt: str, *, pan: str | None = None, aes: bool = False
) -> str:
    """The PIN in a PIN block enciphered under a PEK (inverse of :func:`encrypt_pin_block`)."""
    fmt = normalize_format(fmt)
    if fmt == "ISO_FORMAT_4":
        if not aes:
            raise InputError("ISO_FORMAT_4 needs an AES key; TDES keys use formats 0, 1 or 3")
        return decipher_iso4_pin_block(key, block, _check_pan(pan, fmt))
    if aes:
        raise InputError(f"{fmt} is a TDES format; AES keys use ISO_FORMAT_4")
    if len(block) != 8:
        raise PinBlockError(f"a {fmt} PIN block is 8 bytes (got {len(block)})")
    return decode_pin_block(bytes(_des.decrypt_tdes_ecb(key, block)), fmt, pan=pan)


def needs_pan(fmt: str) -> bool:
    return normalize_format(fmt) in _NEEDS_PAN


def pins_equal(a: str, b: str) -> bool:
    """Constant-time PIN comparison."""
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))
