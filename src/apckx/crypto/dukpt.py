"""DUKPT: TDES (ANSI X9.24-1:2009) and AES (ANSI X9.24-3-2017) key derivation.

Host-side derivations only (what an HSM or APC does with a BDK): the initial key a device
is loaded with, the transaction key for a KSN, and the working keys (PIN, MAC, data) that
key yields. Bytes in, bytes out; names are APC's (``TDES_2KEY``, ``AES_128``,
``DukptKeyVariant`` ``REQUEST``/``RESPONSE``/``BIDIRECTIONAL``).

TDES (X9.24-1:2009):
  * KSN: 10 bytes; the rightmost 21 bits are the transaction counter. An 8-byte KSN is
    padded on the left with ``FFFF`` (the usual 64-bit form). A device never uses a
    counter with more than 10 one-bits, so such a KSN is refused.
  * IPEK (A.6 "initial key"): left = TDES(BDK, KSN8), right = TDES(BDK xor C0C0C0C0
    00000000 C0C0C0C0 00000000, KSN8), KSN8 = the leftmost 8 bytes of the KSN with the
    counter zeroed.
  * Transaction key (A.2 "non-reversible key generation process"): from the IPEK, one
    step per one-bit of the counter, most significant first.
  * Variants: transaction key xor a mask (PIN, MAC request, MAC response, data request,
    data response); the data variants then go through the one-way step (each half
    TDES-encrypted under the variant key itself). "Both ways" is the request variant.

AES (X9.24-3-2017):
  * KSN: 12 bytes: the 8-byte initial key ID (BDK ID 4 bytes + derivation ID 4 bytes)
    then a 32-bit counter with at most 16 one-bits.
  * Every derivation is AES-ECB(key, derivation data) (6.3.1), the 16-byte data being
    01 || block counter || key usage || algorithm || length in bits || 8 bytes (the
    initial key ID for the initial key, else the derivation ID || the working counter).
  * Transaction key (6.3.3): from the initial key, one intermediate derivation per
    one-bit of the counter, most significant first.
  * Working keys (6.3.4): one derivation from the transaction key by usage and algorithm.

Every value here is checked against X9.24-1 A.4 and the X9.24-3-2017 supplement vectors
(``tests/vectors/dataplane/dukpt_tdes.json``, ``dukpt_aes.json``).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from apckx.errors import InputError, KeyMaterialError

TDES_BDK_ALGORITHMS = ("TDES_2KEY",)
AES_BDK_ALGORITHMS = ("AES_128", "AES_192", "AES_256")
BDK_ALGORITHMS = TDES_BDK_ALGORITHMS + AES_BDK_ALGORITHMS
KEY_VARIANTS = ("BIDIRECTIONAL", "REQUEST", "RESPONSE")
USAGES = ("PIN", "MAC", "DATA")

TDES_KSN_LENGTH = 10
AES_KSN_LENGTH = 12
KSN_HEX_LENGTHS = {"TDES": (16, 20), "AES": (24,)}

TDES_COUNTER_BITS = 21
TDES_MAX_COUNTER_ONE_BITS = 10
AES_MAX_COUNTER_ONE_BITS = 16
_TDES_COUNTER_MASK = (1 << TDES_COUNTER_BITS) - 1

# X9.24-1:2009 variant masks ("request or both ways" for MAC and data).
TDES_VARIANT_MASKS: dict[str, bytes] = {
    "PIN": bytes.fromhex("00000000000000FF00000000000000FF"),
    "MAC_REQUEST": bytes.fromhex("000000000000FF00000000000000FF00"),
    "MAC_RESPONSE": bytes.fromhex("00000000FF00000000000000FF000000"),
    "DATA_REQUEST": bytes.fromhex("0000000000FF00000000000000FF0000"),
    "DATA_RESPONSE": bytes.fromhex("000000FF00000000000000FF00000000"),
}
_ONE_WAY_VARIANTS = frozenset({"DATA_REQUEST", "DATA_RESPONSE"})
_KEY_MASK_C0 = bytes.fromhex("C0C0C0C000000000C0C0C0C000000000")

# X9.24-3-2017 table 2 (key usage indicator) and table 3 (algorithm indicator).
AES_KEY_USAGES: dict[str, int] = {
    "KEY_ENCRYPTION_KEY": 0x0002,
    "PIN_ENCRYPTION": 0x1000,
    "MAC_GENERATION": 0x2000,
    "MAC_VERIFICATION": 0x2001,
    "MAC_BOTH": 0x2002,
    "DATA_ENCRYPT": 0x3000,
    "DATA_DECRYPT": 0x3001,
    "DATA_BOTH": 0x3002,
    "KEY_DERIVATION": 0x8000,
    "KEY_DERIVATION_INITIAL_KEY": 0x8001,
}
AES_KEY_TYPES: dict[str, tuple[int, int]] = {
    # APC name -> (algorithm indicator, length in bits)
    "TDES_2KEY": (0x0000, 128),
    "TDES_3KEY": (0x0001, 192),
    "AES_128": (0x0002, 128),
    "AES_192": (0x0003, 192),
    "AES_256": (0x0004, 256),
}
_AES_BDK_LENGTHS = {"AES_128": 16, "AES_192": 24, "AES_256": 32}

# APC DukptKeyVariant -> the key usage, seen from the device (inferred, docs/EMULATOR.md):
# REQUEST = what the device sends (it encrypts / generates), RESPONSE = what it receives.
_AES_USAGE_BY_VARIANT: dict[tuple[str, str], str] = {
    ("MAC", "REQUEST"): "MAC_GENERATION",
    ("MAC", "RESPONSE"): "MAC_VERIFICATION",
    ("MAC", "BIDIRECTIONAL"): "MAC_BOTH",
    ("DATA", "REQUEST"): "DATA_ENCRYPT",
    ("DATA", "RESPONSE"): "DATA_DECRYPT",
    ("DATA", "BIDIRECTIONAL"): "DATA_BOTH",
}
_TDES_VARIANT_BY_USAGE: dict[tuple[str, str], str] = {
    ("MAC", "REQUEST"): "MAC_REQUEST",
    ("MAC", "RESPONSE"): "MAC_RESPONSE",
    ("MAC", "BIDIRECTIONAL"): "MAC_REQUEST",
    ("DATA", "REQUEST"): "DATA_REQUEST",
    ("DATA", "RESPONSE"): "DATA_RESPONSE",
    ("DATA", "BIDIRECTIONAL"): "DATA_REQUEST",
}


@dataclass(frozen=True)
class TdesKsn:
    """A 10-byte TDES KSN split into its parts."""

    ksn: bytes
    counter: int

    @property
    def initial_ksn(self) -> bytes:
        """The KSN with the 21-bit counter zeroed (what the IPEK is derived from)."""
        value = int.from_bytes(self.ksn, "big") & ~_TDES_COUNTER_MASK
        return value.to_bytes(TDES_KSN_LENGTH, "big")


@dataclass(frozen=True)
class AesKsn:
    """A 12-byte AES KSN split into its parts."""

    initial_key_id: bytes
    counter: int

    @property
    def ksn(self) -> bytes:
        return self.initial_key_id + self.counter.to_bytes(4, "big")

    @property
    def bdk_id(self) -> bytes:
        return self.initial_key_id[:4]

    @property
    def derivation_id(self) -> bytes:
        return self.initial_key_id[4:]


# --- primitives ------------------------------------------------------------------------


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _des_encrypt(key8: bytes, block: bytes) -> bytes:
    # Single DES as TDES with K1 = K2 = K3 (cryptography has no plain DES).
    encryptor = Cipher(TripleDES(key8 * 3), modes.ECB()).encryptor()  # noqa: S305
    return encryptor.update(block) + encryptor.finalize()


def _tdes_encrypt_ecb(key: bytes, data: bytes) -> bytes:
    full = key + key[:8] if len(key) == 16 else key
    encryptor = Cipher(TripleDES(full), modes.ECB()).encryptor()  # noqa: S305
    return encryptor.update(data) + encryptor.finalize()


def _aes_encrypt_block(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305
    return encryptor.update(block) + encryptor.finalize()


def _one_bits(value: int) -> int:
    return bin(value).count("1")


# --- KSN handling ----------------------------------------------------------------------


def _family(bdk_algorithm: str) -> str:
    if bdk_algorithm in TDES_BDK_ALGORITHMS:
        return "TDES"
    if bdk_algorithm in AES_BDK_ALGORITHMS:
        return "AES"
    names = ", ".join(BDK_ALGORITHMS)
    raise InputError(f"a DUKPT BDK must be one of {names} (got {bdk_algorithm!r})")


def parse_ksn_hex(ksn_hex: str, bdk_algorithm: str) -> bytes:
    """Parse a KSN in hex for a BDK of ``bdk_algorithm`` into its normalized bytes.

    TDES takes 16 or 20 hex characters (16 is padded on the left with FFFF to the 10-byte
    X9.24-1 KSN); AES takes 24. The counter's one-bit limit is checked too.

    >>> parse_ksn_hex("9876543210E00001", "TDES_2KEY").hex().upper()
    'FFFF9876543210E00001'
    """
    family = _family(bdk_algorithm)
    text = ksn_hex.strip()
    allowed = KSN_HEX_LENGTHS[family]
    if len(text) not in allowed:
        lengths = " or ".join(str(n) for n in allowed)
        raise InputError(f"a {family} DUKPT KSN must be {lengths} hex characters (got {len(text)})")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise InputError("the KSN must be hex (0-9, A-F)") from None
    return normalize_ksn(raw, bdk_algorithm)


def normalize_ksn(ksn: bytes, bdk_algorithm: str) -> bytes:
    """Check a KSN's length and counter for ``bdk_algorithm``; pad an 8-byte TDES KSN."""
    if _family(bdk_algorithm) == "TDES":
        return parse_tdes_ksn(ksn).ksn
    return parse_aes_ksn(ksn).ksn


def parse_tdes_ksn(ksn: bytes) -> TdesKsn:
    """Split a TDES KSN (8 or 10 bytes) into the 10-byte KSN and its 21-bit counter."""
    if len(ksn) == 8:
        ksn = b"\xff\xff" + ksn
    if len(ksn) != TDES_KSN_LENGTH:
        raise InputError(f"a TDES DUKPT KSN must be 8 or 10 bytes (got {len(ksn)})")
    counter = int.from_bytes(ksn, "big") & _TDES_COUNTER_MASK
    check_counter(counter, "TDES")
    return TdesKsn(ksn=ksn, counter=counter)


def parse_aes_ksn(ksn: bytes) -> AesKsn:
    """Split a 12-byte AES KSN into the initial key ID and the 32-bit counter."""
    if len(ksn) != AES_KSN_LENGTH:
        raise InputError(f"an AES DUKPT KSN must be 12 bytes (got {len(ksn)})")
    counter = int.from_bytes(ksn[8:], "big")
    check_counter(counter, "AES")
    return AesKsn(initial_key_id=ksn[:8], counter=counter)


def check_counter(counter: int, family: str) -> None:
    """Refuse a transaction counter a device never uses (too many one-bits, out of range).

    TDES: 21 bits, at most 10 one-bits (X9.24-1). AES: 32 bits, at most 16 (X9.24-3).
    """
    if family == "TDES":
        limit, bits = TDES_MAX_COUNTER_ONE_BITS, TDES_COUNTER_BITS
    else:
        limit, bits = AES_MAX_COUNTER_ONE_BITS, 32
    if not 0 <= counter < (1 << bits):
        raise InputError(f"a {family} DUKPT counter must fit in {bits} bits (got {counter})")
    ones = _one_bits(counter)
    if ones > limit:
        raise InputError(
            f"the KSN's transaction counter {counter:#x} has {ones} one-bits; "
            f"{family} DUKPT allows at most {limit}: use the device's next valid KSN"
        )


def is_valid_counter(counter: int, family: str) -> bool:
    """True when a device may use ``counter`` (see :func:`check_counter`)."""
    try:
        check_counter(counter, family)
    except InputError:
        return False
    return True


def next_counter(counter: int, family: str) -> int:
    """The device's next counter after ``counter``: skips values with too many one-bits.

    X9.24-1 A.2: when the counter has 10 one-bits, add its lowest one-bit instead of 1
    (so ...EFFC00 is followed by ...F00000). X9.24-3 does the same with 16 one-bits.
    """
    limit = TDES_MAX_COUNTER_ONE_BITS if family == "TDES" else AES_MAX_COUNTER_ONE_BITS
    bits = TDES_COUNTER_BITS if family == "TDES" else 32
    nxt = counter + (counter & -counter) if _one_bits(counter) >= limit else counter + 1
    while _one_bits(nxt) > limit:
        nxt += nxt & -nxt
    if nxt >= (1 << bits):
        raise InputError(f"the {family} DUKPT counter is exhausted: load a new initial key")
    return nxt


def next_ksn(ksn: bytes, bdk_algorithm: str) -> bytes:
    """The KSN of the device's next transaction (counter advanced by :func:`next_counter`)."""
    if _family(bdk_algorithm) == "TDES":
        tdes = parse_tdes_ksn(ksn)
        value = int.from_bytes(tdes.initial_ksn, "big") | next_counter(tdes.counter, "TDES")
        return value.to_bytes(TDES_KSN_LENGTH, "big")
    aes = parse_aes_ksn(ksn)
    return aes.initial_key_id + next_counter(aes.counter, "AES").to_bytes(4, "big")


# --- TDES DUKPT (X9.24-1:2009) -----------------------------------------------------------


def _check_tdes_bdk(bdk: bytes, what: str = "BDK") -> None:
    if len(bdk) != 16:
        raise KeyMaterialError(
            f"a TDES DUKPT {what} must be a 16-byte TDES_2KEY key (got {len(bdk)} bytes)"
        )


def derive_ipek(bdk: bytes, ksn: bytes) -> bytes:
    """The TDES IPEK (initial PIN encryption key) for a device, from the BDK and its KSN.

    ``ksn`` is 8 or 10 bytes; its counter is ignored (zeroed).
    """
    _check_tdes_bdk(bdk)
    if len(ksn) == 8:
        ksn = b"\xff\xff" + ksn
    if len(ksn) != TDES_KSN_LENGTH:
        raise InputError(f"a TDES DUKPT KSN must be 8 or 10 bytes (got {len(ksn)})")
    value = int.from_bytes(ksn, "big") & ~_TDES_COUNTER_MASK
    ksn8 = value.to_bytes(TDES_KSN_LENGTH, "big")[:8]
    left = _tdes_encrypt_ecb(bdk, ksn8)
    right = _tdes_encrypt_ecb(_xor(bdk, _KEY_MASK_C0), ksn8)
    return left + right


def _generate_key(key: bytes, data: bytes) -> bytes:
    # X9.24-1 A.2 "non-reversible key generation process" on a 16-byte key.
    def half(k: bytes) -> bytes:
        left, right = k[:8], k[8:]
        return _xor(_des_encrypt(left, _xor(data, right)), right)

    return half(_xor(key, _KEY_MASK_C0)) + half(key)


def derive_tdes_transaction_key(ipek: bytes, ksn: bytes) -> bytes:
    """The TDES transaction key for ``ksn`` (8 or 10 bytes) from the device's IPEK."""
    _check_tdes_bdk(ipek, "IPEK")
    parsed = parse_tdes_ksn(ksn)
    register = int.from_bytes(parsed.initial_ksn[2:], "big")  # rightmost 64 bits
    key = ipek
    bit = 1 << (TDES_COUNTER_BITS - 1)
    while bit:
        if parsed.counter & bit:
            register |= bit
            key = _generate_key(key, register.to_bytes(8, "big"))
        bit >>= 1
    return key


def derive_tdes_variant_key(transaction_key: bytes, variant: str) -> bytes:
    """A TDES working key: ``variant`` is PIN, MAC_REQUEST, MAC_RESPONSE, DATA_REQUEST or
    DATA_RESPONSE (the data variants include the one-way step)."""
    _check_tdes_bdk(transaction_key, "transaction key")
    mask = TDES_VARIANT_MASKS.get(variant)
    if mask is None:
        names = ", ".join(TDES_VARIANT_MASKS)
        raise InputError(f"unknown TDES DUKPT variant {variant!r}: expected one of {names}")
    key = _xor(transaction_key, mask)
    if variant in _ONE_WAY_VARIANTS:
        key = _tdes_encrypt_ecb(key, key)
    return key


# --- AES DUKPT (X9.24-3-2017) ------------------------------------------------------------


def _check_aes_bdk(key: bytes, algorithm: str, what: str) -> None:
    expected = _AES_BDK_LENGTHS.get(algorithm)
    if expected is None:
        names = ", ".join(AES_BDK_ALGORITHMS)
        raise InputError(f"an AES DUKPT {what} must be one of {names} (got {algorithm!r})")
    if len(key) != expected:
        raise KeyMaterialError(
            f"an {algorithm} DUKPT {what} must be {expected} bytes (got {len(key)})"
        )


def _key_type(key_type: str) -> tuple[int, int]:
    found = AES_KEY_TYPES.get(key_type)
    if found is None:
        names = ", ".join(AES_KEY_TYPES)
        raise InputError(f"unknown AES DUKPT key type {key_type!r}: expected one of {names}")
    return found


def _derivation_data(usage: int, key_type: str, tail: bytes) -> bytes:
    algorithm, bits = _key_type(key_type)
    return (
        b"\x01\x01"
        + usage.to_bytes(2, "big")
        + algorithm.to_bytes(2, "big")
        + bits.to_bytes(2, "big")
        + tail
    )


def _derive_aes_key(derivation_key: bytes, key_type: str, data: bytes) -> bytes:
    # X9.24-3-2017 6.3.1: one AES block per 128 bits of output, block counter in byte 1.
    length = _key_type(key_type)[1] // 8
    out = b""
    block_counter = 1
    while len(out) < length:
        block = data[:1] + bytes([block_counter]) + data[2:]
        out += _aes_encrypt_block(derivation_key, block)
        block_counter += 1
    return out[:length]


def _check_initial_key_id(initial_key_id: bytes) -> None:
    if len(initial_key_id) != 8:
        raise InputError(
            f"an AES DUKPT initial key ID must be 8 bytes (16 hex) (got {len(initial_key_id)})"
        )


def derive_initial_key_aes(bdk: bytes, initial_key_id: bytes, key_type: str) -> bytes:
    """The AES DUKPT initial key (X9.24-3 6.3.2) for ``initial_key_id`` (8 bytes: the first
    8 bytes of the KSN). ``key_type`` is the BDK's algorithm (AES_128/192/256); the initial
    key has the same type."""
    _check_aes_bdk(bdk, key_type, "BDK")
    _check_initial_key_id(initial_key_id)
    usage = AES_KEY_USAGES["KEY_DERIVATION_INITIAL_KEY"]
    return _derive_aes_key(bdk, key_type, _derivation_data(usage, key_type, initial_key_id))


def derive_aes_transaction_key(
    initial_key: bytes, initial_key_id: bytes, counter: int, key_type: str
) -> bytes:
    """The AES DUKPT transaction key (X9.24-3 6.3.3) for ``counter`` from the initial key
    (``key_type`` = the BDK's algorithm)."""
    _check_aes_bdk(initial_key, key_type, "initial key")
    _check_initial_key_id(initial_key_id)
    check_counter(counter, "AES")
    usage = AES_KEY_USAGES["KEY_DERIVATION"]
    derivation_id = initial_key_id[4:]
    key = initial_key
    working = 0
    bit = 1 << 31
    while bit:
        if counter & bit:
            working |= bit
            data = _derivation_data(usage, key_type, derivation_id + working.to_bytes(4, "big"))
            key = _derive_aes_key(key, key_type, data)
        bit >>= 1
    return key


def derive_aes_working_key(
    transaction_key: bytes, initial_key_id: bytes, counter: int, usage: str, key_type: str
) -> bytes:
    """An AES DUKPT working key (X9.24-3 6.3.4). ``usage`` is a name of
    :data:`AES_KEY_USAGES` (PIN_ENCRYPTION, MAC_GENERATION, DATA_ENCRYPT, ...) and
    ``key_type`` the working key's algorithm (TDES_2KEY, TDES_3KEY, AES_128/192/256)."""
    code = AES_KEY_USAGES.get(usage)
    if code is None:
        names = ", ".join(AES_KEY_USAGES)
        raise InputError(f"unknown AES DUKPT key usage {usage!r}: expected one of {names}")
    if len(transaction_key) not in (16, 24, 32):
        raise KeyMaterialError(
            f"an AES DUKPT transaction key must be 16, 24 or 32 bytes (got {len(transaction_key)})"
        )
    _check_initial_key_id(initial_key_id)
    check_counter(counter, "AES")
    data = _derivation_data(code, key_type, initial_key_id[4:] + counter.to_bytes(4, "big"))
    return _derive_aes_key(transaction_key, key_type, data)


# --- one entry point for both families -----------------------------------------------------


def derive_initial_key(bdk: bytes, ksn: bytes, bdk_algorithm: str) -> bytes:
    """The key a device is loaded with: the TDES IPEK or the AES initial key.

    ``ksn`` is the device's KSN (TDES 8 or 10 bytes; AES 12 bytes, or the 8-byte initial
    key ID); its counter is ignored. This is what ExportKey ExportDukptInitialKey exports.
    """
    if _family(bdk_algorithm) == "TDES":
        return derive_ipek(bdk, ksn)
    if len(ksn) == AES_KSN_LENGTH:
        ksn = ksn[:8]
    return derive_initial_key_aes(bdk, ksn, bdk_algorithm)


def derive_transaction_key(bdk: bytes, ksn: bytes, bdk_algorithm: str) -> bytes:
    """The transaction key for ``ksn`` straight from the BDK (both families)."""
    if _family(bdk_algorithm) == "TDES":
        return derive_tdes_transaction_key(derive_ipek(bdk, ksn), ksn)
    parsed = parse_aes_ksn(ksn)
    initial = derive_initial_key_aes(bdk, parsed.initial_key_id, bdk_algorithm)
    return derive_aes_transaction_key(initial, parsed.initial_key_id, parsed.counter, bdk_algorithm)


def derive_working_key(
    bdk: bytes,
    ksn: bytes,
    bdk_algorithm: str,
    usage: str,
    *,
    variant: str = "BIDIRECTIONAL",
    key_algorithm: str | None = None,
) -> bytes:
    """The DUKPT working key APC uses for a BDK, a KSN and an operation.

    ``usage``: PIN, MAC or DATA. ``variant``: APC's DukptKeyVariant (REQUEST, RESPONSE,
    BIDIRECTIONAL; ignored for PIN). ``key_algorithm``: APC's DukptDerivationType, the
    working key's algorithm; by default the BDK's. TDES DUKPT only derives TDES_2KEY keys.
    An AES working key must not be stronger than the BDK.
    """
    if usage not in USAGES:
        raise InputError(f"unknown DUKPT usage {usage!r}: expected one of {', '.join(USAGES)}")
    if variant not in KEY_VARIANTS:
        names = ", ".join(KEY_VARIANTS)
        raise InputError(f"unknown DukptKeyVariant {variant!r}: expected one of {names}")
    key_algorithm = key_algorithm or bdk_algorithm
    if _family(bdk_algorithm) == "TDES":
        if key_algorithm != "TDES_2KEY":
            raise InputError(
                f"a TDES_2KEY BDK derives TDES_2KEY working keys only (got {key_algorithm!r})"
            )
        transaction_key = derive_transaction_key(bdk, ksn, bdk_algorithm)
        tdes_variant = "PIN" if usage == "PIN" else _TDES_VARIANT_BY_USAGE[(usage, variant)]
        return derive_tdes_variant_key(transaction_key, tdes_variant)
    check_working_key_strength(bdk_algorithm, key_algorithm)
    parsed = parse_aes_ksn(ksn)
    transaction_key = derive_transaction_key(bdk, ksn, bdk_algorithm)
    aes_usage = "PIN_ENCRYPTION" if usage == "PIN" else _AES_USAGE_BY_VARIANT[(usage, variant)]
    return derive_aes_working_key(
        transaction_key, parsed.initial_key_id, parsed.counter, aes_usage, key_algorithm
    )


_STRENGTH = {"TDES_2KEY": 80, "TDES_3KEY": 112, "AES_128": 128, "AES_192": 192, "AES_256": 256}


def check_working_key_strength(bdk_algorithm: str, key_algorithm: str) -> None:
    """Refuse an AES DUKPT working key stronger than its BDK (APC: 'less than or equal')."""
    _key_type(key_algorithm)
    _family(bdk_algorithm)
    if _STRENGTH[key_algorithm] > _STRENGTH[bdk_algorithm]:
        raise InputError(
            f"a {bdk_algorithm} BDK cannot derive a {key_algorithm} working key: "
            "the DUKPT derivation type must not be stronger than the BDK"
        )
