"""TR-31 / ANSI X9.143 key blocks on psec, with injectable padding and constant-time MACs.

psec provides the header codec (``psec.tr31.Header``), the version-specific key derivation
and MAC generation, and the CBC helpers. The payload assembly (2-byte key length in bits ||
key || padding), the encryption and the MAC comparison are ours: psec draws padding inside
``wrap`` and compares MACs with ``!=``.

psec is pinned ``>=1.3,<1.4`` (pyproject.toml) because we call ``KeyBlock``'s private
``_b/_c/_d_derive`` and ``_b/_c/_d_generate_mac`` methods.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from apckx.crypto.attributes import (
    KEY_USAGES,
    MODES,
    USAGE_NAMES,
    check_wrapping_strength,
    code_from_modes,
    modes_from_code,
    normalize_key_usage,
    validate_key_attributes,
)
from apckx.crypto.keys import (
    KEY_ALGORITHMS,
    algorithm_for_length,
    allowed_lengths,
    is_aes,
    is_hmac,
    is_tdes,
    strength_bits,
)
from apckx.errors import InputError, IntegrityError, KeyBlockError, StrengthError

if TYPE_CHECKING:
    from psec import tr31 as _psec_tr31

# psec (and the cryptography it loads) is imported by the functions that need it: a header
# without optional blocks, as a KEK's is, parses and builds without it, so the checks a
# ceremony runs before its first API call load no cryptography (bench/process.py).

__all__ = [
    "HM_HASHES",
    "KeyBlockHeader",
    "build_header",
    "derive_block_keys",
    "header_to_key_attributes",
    "inspect_key_block",
    "parse_header",
    "retained_optional_blocks",
    "unwrap_key_block",
    "wrap_key_block",
]

#: X9.143:2021 section 6.3.6.5 table 13: HM optional block value -> APC HMAC algorithm.
HM_HASHES: dict[str, str] = {
    "20": "HMAC_SHA224",
    "21": "HMAC_SHA256",
    "22": "HMAC_SHA384",
    "23": "HMAC_SHA512",
}
_HM_FOR_ALGORITHM: dict[str, str] = {name: code for code, name in HM_HASHES.items()}
_HM_UNSUPPORTED = {"10": "SHA-1", "24": "SHA-512/224", "25": "SHA-512/256"}

_MAX_BLOCK_LENGTH = 9999  # the 4-digit length field
_FIELD_RE = re.compile(r"[0-9A-Z]+")
_DIGITS_RE = re.compile(r"[0-9]+")
_UPPER_HEX_RE = re.compile(r"[0-9A-F]*")
_BLOCK_ID_RE = re.compile(r"[0-9A-Z]{2}")

# Key length obfuscation (X9.143 section 6.4): by default pad as if the key were the longest
# of its algorithm, as psec does (APC's documented D0112K1TB00E0000 export agrees).
_MASKED_KEY_LENGTH = {"T": 24, "A": 32}


# warnings.catch_warnings swaps process-wide state (Python 3.11): serialize our own uses so
# concurrent emulator threads cannot restore each other's filter lists.
_WARNINGS_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet_tdes(version_id: str) -> Iterator[None]:
    """Silence the TDES deprecation warnings psec triggers, here and nowhere else.

    (cryptography warns that TripleDES moved to ``decrepit`` and that 2-key TDES is
    deprecated; TR-31 versions A, B and C are TDES by definition. D needs nothing.)
    """
    if _VERSIONS[version_id].kbpk_family != "TDES":
        yield
        return
    from cryptography.utils import CryptographyDeprecationWarning

    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


# --- version dispatch -----------------------------------------------------------------------


def _psec_block(kbpk: bytes) -> _psec_tr31.KeyBlock:
    from psec import tr31

    return tr31.KeyBlock(kbpk)


def _tdes_cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    from psec import des

    return des.decrypt_tdes_cbc(key, iv, data)


def _tdes_cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    from psec import des

    return des.encrypt_tdes_cbc(key, iv, data)


def _aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    from psec import aes

    return aes.decrypt_aes_cbc(key, iv, data)


def _aes_cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    from psec import aes

    return aes.encrypt_aes_cbc(key, iv, data)


def _derive_b(kbpk: bytes) -> tuple[bytes, bytes]:
    return _psec_block(kbpk)._b_derive()  # X9.143 section 7.2: TDES CMAC-based KDF


def _derive_c(kbpk: bytes) -> tuple[bytes, bytes]:
    return _psec_block(kbpk)._c_derive()  # TR-31:2018 A.1.2: key variants 0x45 / 0x4D


def _derive_d(kbpk: bytes) -> tuple[bytes, bytes]:
    return _psec_block(kbpk)._d_derive()  # X9.143 section 7.2: AES CMAC-based KDF


def _mac_b(kbak: bytes, header: str, data: bytes) -> bytes:
    return _psec_block(kbak)._b_generate_mac(kbak, header, data)


def _mac_c(kbak: bytes, header: str, data: bytes) -> bytes:
    return _psec_block(kbak)._c_generate_mac(kbak, header, data)


def _mac_d(kbak: bytes, header: str, data: bytes) -> bytes:
    return _psec_block(kbak)._d_generate_mac(kbak, header, data)


_Mac = Callable[[bytes, str, bytes], bytes]
_Cbc = Callable[[bytes, bytes, bytes], bytes]


def _seal_mac_then_encrypt(
    mac_fn: _Mac, encrypt: _Cbc
) -> Callable[[bytes, bytes, str, bytes], tuple[bytes, bytes]]:
    # Versions B and D (X9.143 section 7.3): MAC over header || clear payload, then CBC
    # encryption of the payload with the MAC as IV.
    def seal(kbek: bytes, kbak: bytes, header: str, payload: bytes) -> tuple[bytes, bytes]:
        mac = mac_fn(kbak, header, payload)
        return encrypt(kbek, mac, payload), mac

    return seal


def _open_mac_then_encrypt(
    mac_fn: _Mac, decrypt: _Cbc
) -> Callable[[bytes, bytes, str, bytes, bytes], bytes]:
    def open_(kbek: bytes, kbak: bytes, header: str, ciphertext: bytes, mac: bytes) -> bytes:
        payload = decrypt(kbek, mac, ciphertext)
        if not hmac.compare_digest(mac_fn(kbak, header, payload), mac):
            raise IntegrityError()
        return payload

    return open_


def _open_encrypt_then_mac(
    mac_fn: _Mac, decrypt: _Cbc
) -> Callable[[bytes, bytes, str, bytes, bytes], bytes]:
    # Versions A and C (TR-31:2018 A.1): CBC with the first 8 header bytes as IV, then a
    # 4-byte CBC-MAC over header || ciphertext.
    def open_(kbek: bytes, kbak: bytes, header: str, ciphertext: bytes, mac: bytes) -> bytes:
        if not hmac.compare_digest(mac_fn(kbak, header, ciphertext), mac):
            raise IntegrityError()
        return decrypt(kbek, header.encode("ascii")[:8], ciphertext)

    return open_


@dataclass(frozen=True)
class _Version:
    kbpk_family: str  # "TDES" or "AES"
    kbpk_lengths: tuple[int, ...]
    cipher_block: int
    mac_length: int
    derive: Callable[[bytes], tuple[bytes, bytes]]
    open: Callable[[bytes, bytes, str, bytes, bytes], bytes]
    seal: Callable[[bytes, bytes, str, bytes], tuple[bytes, bytes]] | None  # None: unwrap only


_VERSIONS: dict[str, _Version] = {
    "A": _Version(
        "TDES", (16, 24), 8, 4, _derive_c,
        _open_encrypt_then_mac(_mac_c, _tdes_cbc_decrypt), None,
    ),
    "B": _Version(
        "TDES", (16, 24), 8, 8, _derive_b,
        _open_mac_then_encrypt(_mac_b, _tdes_cbc_decrypt),
        _seal_mac_then_encrypt(_mac_b, _tdes_cbc_encrypt),
    ),
    "C": _Version(
        "TDES", (16, 24), 8, 4, _derive_c,
        _open_encrypt_then_mac(_mac_c, _tdes_cbc_decrypt), None,
    ),
    "D": _Version(
        "AES", (16, 24, 32), 16, 16, _derive_d,
        _open_mac_then_encrypt(_mac_d, _aes_cbc_decrypt),
        _seal_mac_then_encrypt(_mac_d, _aes_cbc_encrypt),
    ),
}  # fmt: skip


# --- header ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyBlockHeader:
    """A decoded TR-31 header. ``raw`` is the header text exactly as in the block."""

    version_id: str
    key_usage: str
    algorithm: str
    mode_of_use: str
    key_version: str
    exportability: str
    optional_blocks: tuple[tuple[str, str], ...]
    length: int
    raw: str

    @property
    def exportable(self) -> bool:
        """APC's Exportable: true for exportability E or S, false for N."""
        return self.exportability in ("E", "S")

    def block(self, block_id: str) -> str | None:
        """The value of optional block ``block_id``, or None."""
        return dict(self.optional_blocks).get(block_id)


def _walk_optional_blocks(text: str, count: int) -> list[tuple[str, str]]:
    # X9.143 section 6.3: ID(2) || length(2 hex, or "00" || length-of-length || length) ||
    # data. psec has already validated the structure; this keeps order and duplicates.
    blocks: list[tuple[str, str]] = []
    i = 0
    for _ in range(count):
        block_id = text[i : i + 2]
        length = int(text[i + 2 : i + 4], 16)
        if length == 0:
            length_of_length = int(text[i + 4 : i + 6], 16) * 2
            length = int(text[i + 6 : i + 6 + length_of_length], 16)
            data_start = i + 6 + length_of_length
        else:
            data_start = i + 4
        blocks.append((block_id, text[data_start : i + length]))
        i += length
    return blocks


_PSEC_DATA_RE = re.compile(r"\s*(?:Block data|Data|Header):.*$", re.DOTALL)
_PSEC_VALUE_RE = re.compile(r"\(([^)]{5,})\)")


def _psec_reason(exc: Exception) -> str:
    """psec's reason without the data it quotes (a pasted key must never be echoed)."""
    text = _PSEC_DATA_RE.sub("", str(exc)).strip()
    return _PSEC_VALUE_RE.sub("(...)", text) or "the optional blocks do not parse"


def _parse(text: str) -> tuple[KeyBlockHeader, int]:
    if not text.isascii() or not text.isprintable():
        raise KeyBlockError("a TR-31 key block must be printable ASCII")
    if len(text) < 16:
        raise KeyBlockError(f"a TR-31 header has at least 16 characters (got {len(text)})")
    fixed = text[:16]
    if fixed != fixed.upper():
        raise KeyBlockError(
            "the TR-31 header (the first 16 characters) must be upper case: its fields are "
            "A-Z and 0-9"
        )
    version_id = fixed[0]
    if version_id not in _VERSIONS:
        raise KeyBlockError(
            f"key block version {version_id!r} is not supported: expected A, B, C or D"
        )
    if not _DIGITS_RE.fullmatch(fixed[1:5]):
        raise KeyBlockError("the key block length field (characters 2 to 5) must be 4 digits")
    if not _FIELD_RE.fullmatch(fixed[5:12]):
        raise KeyBlockError("the TR-31 header fields (characters 6 to 12) must be A-Z and 0-9 only")
    if not _DIGITS_RE.fullmatch(fixed[12:14]):
        raise KeyBlockError("the number of optional blocks (characters 13 and 14) must be 2 digits")
    if fixed[12:14] == "00":
        # No optional blocks: all psec's Header.load would check is the fixed part's
        # characters, the reserved field included.
        if not _FIELD_RE.fullmatch(fixed):
            raise KeyBlockError(
                "malformed TR-31 header: the first 16 characters must be A-Z and 0-9"
            )
        header_length = 16
    else:
        from psec import tr31 as psec_tr31

        try:
            header_length = psec_tr31.Header().load(text)
        except psec_tr31.HeaderError as exc:
            raise KeyBlockError(f"malformed TR-31 header: {_psec_reason(exc)}") from None
    blocks = _walk_optional_blocks(text[16:header_length], int(fixed[12:14]))
    for block_id, _ in blocks:
        if not _BLOCK_ID_RE.fullmatch(block_id):
            raise KeyBlockError(f"optional block ID {block_id!r} must be 2 of A-Z, 0-9")
    kept = tuple((block_id, value) for block_id, value in blocks if block_id != "PB")
    if len({block_id for block_id, _ in kept}) != len(kept):
        raise KeyBlockError("TR-31 header repeats an optional block ID")
    cipher_block = _VERSIONS[version_id].cipher_block
    if (header_length - 16) % cipher_block:
        raise KeyBlockError(
            f"optional blocks of a version {version_id} header must fill whole "
            f"{cipher_block}-character blocks: add a PB block (build_header does)"
        )
    header = KeyBlockHeader(
        version_id=version_id,
        key_usage=fixed[5:7],
        algorithm=fixed[7],
        mode_of_use=fixed[8],
        key_version=fixed[9:11],
        exportability=fixed[11],
        optional_blocks=kept,
        length=int(fixed[1:5]),
        raw=text[:header_length],
    )
    return header, header_length


def parse_header(text: str) -> KeyBlockHeader:
    """Decode a TR-31 header (fixed part and optional blocks, nothing after them)."""
    header, header_length = _parse(text)
    if header_length != len(text):
        raise KeyBlockError(
            f"text after the TR-31 header: the header ends at character {header_length}"
        )
    return header


def _split_block(key_block: str) -> tuple[KeyBlockHeader, str]:
    header, header_length = _parse(key_block)
    if header.length != len(key_block):
        raise KeyBlockError(
            f"key block length field says {header.length} characters "
            f"but the block has {len(key_block)}"
        )
    body = key_block[header_length:]
    if not _UPPER_HEX_RE.fullmatch(body):
        raise KeyBlockError("key block data after the header must be upper-case hex")
    version = _VERSIONS[header.version_id]
    data_chars = len(body) - 2 * version.mac_length
    if data_chars < 2 * version.cipher_block or data_chars % (2 * version.cipher_block):
        raise KeyBlockError(
            f"version {header.version_id} key block is truncated or padded wrongly: the "
            f"encrypted key must be a non-empty multiple of {version.cipher_block} bytes"
        )
    return header, body


def inspect_key_block(key_block: str) -> KeyBlockHeader:
    """Decode a key block's header and check its structure, without any key."""
    header, _ = _split_block(key_block)
    return header


# --- KBPK and strength ----------------------------------------------------------------------


def _kbpk_algorithm(kbpk: bytes, version_id: str, kbpk_algorithm: str | None) -> str:
    """The KBPK's APC algorithm, after checking that it fits the block version."""
    version = _VERSIONS[version_id]
    if kbpk_algorithm is not None:
        if kbpk_algorithm not in KEY_ALGORITHMS or not (
            is_tdes(kbpk_algorithm) or is_aes(kbpk_algorithm)
        ):
            raise KeyBlockError(f"a KBPK must be TDES or AES (got {kbpk_algorithm!r})")
        if len(kbpk) != KEY_ALGORITHMS[kbpk_algorithm]:
            raise KeyBlockError(
                f"the KBPK is {len(kbpk)} bytes, not a {kbpk_algorithm} key "
                f"({KEY_ALGORITHMS[kbpk_algorithm]} bytes)"
            )
        family = "TDES" if is_tdes(kbpk_algorithm) else "AES"
        if family != version.kbpk_family:
            fitting = "D" if family == "AES" else "B"
            raise KeyBlockError(
                f"a version {version_id} key block needs a {version.kbpk_family} KBPK, "
                f"not {kbpk_algorithm}: use version {fitting}"
            )
        return kbpk_algorithm
    if len(kbpk) not in version.kbpk_lengths:
        lengths = ", ".join(str(n) for n in version.kbpk_lengths)
        raise KeyBlockError(
            f"a version {version_id} key block needs a {version.kbpk_family} KBPK of "
            f"{lengths} bytes (got {len(kbpk)})"
        )
    return algorithm_for_length("A" if version.kbpk_family == "AES" else "T", len(kbpk))


def _hmac_algorithm(header: KeyBlockHeader) -> str:
    hm = header.block("HM")
    if hm is None:
        raise KeyBlockError("an HMAC ('H') key block needs an HM optional block naming the hash")
    if hm in _HM_UNSUPPORTED:
        raise KeyBlockError(f"HM {hm} ({_HM_UNSUPPORTED[hm]}) is not an APC HMAC algorithm")
    try:
        return HM_HASHES[hm]
    except KeyError:
        raise KeyBlockError(
            f"the HM optional block's value is not known: expected {', '.join(HM_HASHES)}"
        ) from None


def _check_algorithm_code(header: KeyBlockHeader, *, need_hash: bool = True) -> None:
    # ``need_hash=False`` (unwrap): an 'H' block without HM is valid X9.143 (openemv's tr31
    # tool reads it); only importing it into APC needs the hash.
    if header.algorithm == "H":
        if need_hash or header.block("HM") is not None:
            _hmac_algorithm(header)
    elif header.algorithm not in ("T", "A"):
        raise KeyBlockError(
            f"key algorithm {header.algorithm!r} is not supported: expected T (TDES), "
            "A (AES) or H (HMAC)"
        )


def _key_strength(header: KeyBlockHeader, key_length: int) -> int:
    # Strength of the wrapped key, from the header's algorithm and the key's length.
    # Short 'T' keys (test vectors of single DES) rate 56 bits.
    if header.algorithm == "H":
        if header.block("HM") is None:
            return 0  # the hash is not stated: nothing to rate (unwrap only; APC needs HM)
        return strength_bits(_hmac_algorithm(header))
    if header.algorithm == "T":
        return 56 if key_length <= 8 else 80 if key_length <= 16 else 112
    return 128 if key_length <= 16 else 192 if key_length <= 24 else 256


def _check_key_strength(header: KeyBlockHeader, key_length: int, kbpk_algorithm: str) -> None:
    if _key_strength(header, key_length) > strength_bits(kbpk_algorithm):
        raise StrengthError(
            f"a {key_length}-byte '{header.algorithm}' key is stronger than its "
            f"{kbpk_algorithm} KBPK: the KBPK must be at least as strong as the key it wraps"
        )


# --- wrap / unwrap --------------------------------------------------------------------------


def _padding_length(key_length: int, masked_key_length: int, cipher_block: int) -> int:
    # As psec 1.3: pad to the masked length, then 1..cipher_block bytes to the block edge.
    extra = max(masked_key_length, key_length) - key_length
    return extra + cipher_block - (2 + key_length + extra) % cipher_block


def wrap_key_block(
    kbpk: bytes,
    header: str,
    key: bytes,
    *,
    padding: bytes | None = None,
    masked_key_len: int | None = None,
    kbpk_algorithm: str | None = None,
) -> str:
    """Wrap ``key`` under ``kbpk`` as a version B (TDES KBPK) or D (AES KBPK) key block.

    ``header`` is a template: its length field is recomputed. ``padding`` (the bytes after
    the key in the clear payload) may be injected for known-answer tests; otherwise it is
    random, for ``masked_key_len`` (default: the longest key of the algorithm).
    """
    parsed = parse_header(header)
    version = _VERSIONS[parsed.version_id]
    if version.seal is None:
        raise KeyBlockError(
            f"apckx wraps versions B and D only (version {parsed.version_id} is "
            "accepted on unwrap): use B for a TDES KBPK, D for an AES KBPK"
        )
    kbpk_name = _kbpk_algorithm(kbpk, parsed.version_id, kbpk_algorithm)
    _check_algorithm_code(parsed)
    if not key:
        raise KeyBlockError("nothing to wrap: the key is empty")
    _check_key_strength(parsed, len(key), kbpk_name)
    masked = masked_key_len
    if masked is None:
        masked = _MASKED_KEY_LENGTH.get(parsed.algorithm, len(key))
    expected_padding = _padding_length(len(key), masked, version.cipher_block)
    if padding is not None:
        if masked_key_len is not None and len(padding) != expected_padding:
            raise KeyBlockError(
                f"padding must be {expected_padding} bytes for a {len(key)}-byte key masked "
                f"as {masked_key_len} bytes (got {len(padding)})"
            )
        if (2 + len(key) + len(padding)) % version.cipher_block:
            raise KeyBlockError(
                f"padding of {len(padding)} bytes leaves the payload off the "
                f"{version.cipher_block}-byte cipher block"
            )
        expected_padding = len(padding)
    total = len(parsed.raw) + 2 * (2 + len(key) + expected_padding) + 2 * version.mac_length
    if total > _MAX_BLOCK_LENGTH:
        raise KeyBlockError(f"key block would be {total} characters (the limit is 9999)")
    if padding is None:
        padding = os.urandom(expected_padding)  # the randomness edge
    payload = (8 * len(key)).to_bytes(2, "big") + key + padding
    raw_header = f"{parsed.version_id}{total:04d}{parsed.raw[5:]}"
    with _quiet_tdes(parsed.version_id):
        kbek, kbak = version.derive(kbpk)
        ciphertext, mac = version.seal(kbek, kbak, raw_header, payload)
    return raw_header + ciphertext.hex().upper() + mac.hex().upper()


def unwrap_key_block(
    kbpk: bytes, key_block: str, *, kbpk_algorithm: str | None = None
) -> tuple[KeyBlockHeader, bytes]:
    """Verify and decrypt a version A, B, C or D key block; return its header and key.

    Malformed input or a version that does not fit the KBPK: ``KeyBlockError`` (before any
    cryptography). Wrong KBPK or tampered block: ``IntegrityError``. A key stronger than the
    KBPK: ``StrengthError``.
    """
    header, body = _split_block(key_block)
    version = _VERSIONS[header.version_id]
    kbpk_name = _kbpk_algorithm(kbpk, header.version_id, kbpk_algorithm)
    _check_algorithm_code(header, need_hash=False)
    split = len(body) - 2 * version.mac_length
    ciphertext, mac = bytes.fromhex(body[:split]), bytes.fromhex(body[split:])
    with _quiet_tdes(header.version_id):
        kbek, kbak = version.derive(kbpk)
        payload = version.open(kbek, kbak, header.raw, ciphertext, mac)
    key_bits = int.from_bytes(payload[:2], "big")
    if key_bits == 0 or key_bits % 8 or 2 + key_bits // 8 > len(payload):
        raise KeyBlockError("the key block's key length field is invalid")
    key = payload[2 : 2 + key_bits // 8]
    _check_key_strength(header, len(key), kbpk_name)
    return header, key


def derive_block_keys(kbpk: bytes, version_id: str) -> tuple[bytes, bytes]:
    """The key block encryption and authentication keys (KBEK, KBAK) for a version."""
    if version_id not in _VERSIONS:
        raise KeyBlockError(
            f"key block version {version_id!r} is not supported: expected A, B, C or D"
        )
    _kbpk_algorithm(kbpk, version_id, None)
    with _quiet_tdes(version_id):
        return _VERSIONS[version_id].derive(kbpk)


# --- APC attributes <-> header --------------------------------------------------------------

_ALGORITHM_CODES = {"TDES": "T", "AES": "A", "HMAC": "H"}


def build_header(
    *,
    key_usage: str,
    key_algorithm: str,
    kbpk_algorithm: str,
    modes_of_use: str | Mapping[str, bool] = "B",
    exportability: str = "E",
    key_version: str = "00",
    optional_blocks: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
) -> str:
    """A TR-31 header from APC attributes: version D for an AES KBPK, B for TDES.

    The HM block is added for HMAC keys; PB and the length field are computed.
    """
    usage = normalize_key_usage(key_usage)
    if isinstance(modes_of_use, str):
        mode_code = modes_of_use
        modes = modes_from_code(mode_code)
    else:
        mode_code = code_from_modes(modes_of_use)
        modes = modes_from_code(mode_code)
    try:
        validate_key_attributes(
            {
                "KeyUsage": usage,
                "KeyClass": "SYMMETRIC_KEY",
                "KeyAlgorithm": key_algorithm,
                "KeyModesOfUse": modes,
            }
        )
    except InputError as exc:
        raise KeyBlockError(str(exc)) from None
    check_wrapping_strength(kbpk_algorithm, key_algorithm)
    if exportability not in ("E", "N", "S"):
        raise KeyBlockError(f"exportability must be E, N or S (got {exportability!r})")
    if len(key_version) != 2 or not _FIELD_RE.fullmatch(key_version):
        raise KeyBlockError(f"key version must be 2 of A-Z, 0-9 (got {key_version!r})")
    if isinstance(optional_blocks, Mapping):
        pairs = list(optional_blocks.items())
    else:
        pairs = list(optional_blocks or ())
    ids = [block_id for block_id, _ in pairs]
    if len(set(ids)) != len(ids):
        raise KeyBlockError("optional blocks repeat an ID")
    if "PB" in ids:
        raise KeyBlockError("do not pass a PB optional block: padding is added automatically")
    if is_hmac(key_algorithm):
        hm = _HM_FOR_ALGORITHM[key_algorithm]
        given = dict(pairs).get("HM")
        if given is None:
            pairs.insert(0, ("HM", hm))
        elif given != hm:
            raise KeyBlockError(f"HM block {given!r} contradicts {key_algorithm} (HM {hm})")
    family = key_algorithm.split("_")[0]
    version_id = "D" if is_aes(kbpk_algorithm) else "B"
    key_length = KEY_ALGORITHMS[key_algorithm]
    masked_length = max(key_length, _MASKED_KEY_LENGTH.get(_ALGORITHM_CODES[family], 0))
    fields = f"{KEY_USAGES[usage]}{_ALGORITHM_CODES[family]}{mode_code}{key_version}{exportability}"
    if pairs:
        text = _dump_with_optional_blocks(version_id, fields, pairs, masked_length)
    else:
        text = f"{version_id}{_block_length(version_id, masked_length):04d}{fields}0000"
    parse_header(text)  # our own checks on what psec produced
    return text


def _block_length(version_id: str, key_length: int, optional_blocks_length: int = 0) -> int:
    """The length field: header, then the payload (2-byte length, key, padding to the
    cipher block: always at least 1 byte, as psec pads), then the MAC, in characters."""
    version = _VERSIONS[version_id]
    padding = version.cipher_block - (2 + key_length) % version.cipher_block
    return 16 + optional_blocks_length + 2 * (2 + key_length + padding + version.mac_length)


def _dump_with_optional_blocks(
    version_id: str, fields: str, pairs: Sequence[tuple[str, str]], masked_length: int
) -> str:
    """A header with optional blocks, by psec (which encodes them and adds the PB block)."""
    from psec import tr31 as psec_tr31

    psec_header = psec_tr31.Header(
        version_id=version_id,
        key_usage=fields[0:2],
        algorithm=fields[2],
        mode_of_use=fields[3],
        version_num=fields[4:6],
        exportability=fields[6],
    )
    for block_id, value in pairs:
        if not _BLOCK_ID_RE.fullmatch(block_id):
            raise KeyBlockError(f"optional block ID {block_id!r} must be 2 of A-Z, 0-9")
        try:
            psec_header.blocks[block_id] = value
        except psec_tr31.HeaderError as exc:
            raise KeyBlockError(f"optional block {block_id}: {_psec_reason(exc)}") from None
    try:
        return psec_header.dump(masked_length)
    except psec_tr31.HeaderError as exc:
        raise KeyBlockError(f"cannot build the TR-31 header: {_psec_reason(exc)}") from None


def header_to_key_attributes(header: KeyBlockHeader | str, key_length: int) -> dict[str, object]:
    """APC ``KeyAttributes`` for an imported key (spec section 5.3).

    {KeyUsage, KeyClass, KeyAlgorithm, KeyModesOfUse (all nine flags)}; ``header.exportable``
    gives Exportable. Raises ``KeyBlockError`` for combinations APC rejects.
    """
    parsed = parse_header(header) if isinstance(header, str) else header
    usage = USAGE_NAMES.get(parsed.key_usage)
    if usage is None:
        raise KeyBlockError(f"key usage {parsed.key_usage!r} is not one APC supports")
    try:
        if parsed.algorithm == "H":
            algorithm = _hmac_algorithm(parsed)
            if key_length not in allowed_lengths(algorithm):
                raise KeyBlockError(
                    f"an {algorithm} key must be {allowed_lengths(algorithm)[0]} to "
                    f"{allowed_lengths(algorithm)[-1]} bytes (got {key_length})"
                )
        elif parsed.algorithm in ("T", "A"):
            algorithm = algorithm_for_length(parsed.algorithm, key_length)
        else:
            raise KeyBlockError(
                f"key algorithm {parsed.algorithm!r} is not supported: expected T, A or H"
            )
        if parsed.mode_of_use not in MODES:
            raise KeyBlockError(
                f"mode of use {parsed.mode_of_use!r} is not one APC supports: "
                f"expected one of {''.join(MODES)}"
            )
        if parsed.exportability not in ("E", "N", "S"):
            raise KeyBlockError(f"exportability {parsed.exportability!r} must be E, N or S")
        attrs: dict[str, object] = {
            "KeyUsage": usage,
            "KeyClass": "SYMMETRIC_KEY",
            "KeyAlgorithm": algorithm,
            "KeyModesOfUse": modes_from_code(parsed.mode_of_use),
        }
        validate_key_attributes(attrs)
    except KeyBlockError:
        raise
    except InputError as exc:
        raise KeyBlockError(str(exc)) from None
    return attrs


def retained_optional_blocks(header: KeyBlockHeader) -> dict[str, str]:
    """Optional blocks APC keeps on import: all but KP (and PB, which is padding)."""
    return {block_id: value for block_id, value in header.optional_blocks if block_id != "KP"}
