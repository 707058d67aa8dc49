"""Block-cipher and RSA encryption as APC's EncryptData/DecryptData use them (pure).

Symmetric: TDES (2- and 3-key) and AES in ECB, CBC, CFB (full block: CFB64 for TDES,
CFB128 for AES), CFB1, CFB8, CFB64, CFB128 and OFB (NIST SP 800-38A). ``cryptography``
covers ECB, CBC, OFB, CFB8 and full-block CFB; the other segment sizes (CFB1 for both
ciphers, CFB64 for AES) are built here from the raw block cipher, as SP 800-38A section
6.3 defines CFB-s. A segment larger than the cipher's block (CFB128 with TDES) is refused.

RSA: PKCS #1 v1.5, OAEP with SHA-1/256/512 (MGF1 with the same hash, no label), or raw
RSA (no padding: the plaintext must be as long as the modulus and smaller than it).

Everything is bytes in, bytes out; the IV defaults to zeros as in APC. Errors are
:class:`~apckx.errors.InputError` (a caller's mistake: length, mode) with a message that
never quotes the data or the key.
"""

from __future__ import annotations

from cryptography.hazmat.decrepit.ciphers import modes as decrepit_modes
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, CipherAlgorithm, algorithms, modes

from apckx.errors import InputError

#: APC's symmetric EncryptionMode names.
SYMMETRIC_MODES = ("ECB", "CBC", "CFB", "CFB1", "CFB8", "CFB64", "CFB128", "OFB")
#: APC's PaddingType names for RSA, plus None for raw RSA.
RSA_PADDINGS = ("PKCS1", "OAEP_SHA1", "OAEP_SHA256", "OAEP_SHA512")
_OAEP_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "OAEP_SHA1": hashes.SHA1,
    "OAEP_SHA256": hashes.SHA256,
    "OAEP_SHA512": hashes.SHA512,
}
_OAEP_DIGEST_SIZES = {"OAEP_SHA1": 20, "OAEP_SHA256": 32, "OAEP_SHA512": 64}
_TDES_LENGTHS = (16, 24)
_AES_LENGTHS = (16, 24, 32)


def block_size(family: str) -> int:
    """The block size in bytes of ``"TDES"`` (8) or ``"AES"`` (16)."""
    if family == "TDES":
        return 8
    if family == "AES":
        return 16
    raise InputError(f"cipher family must be TDES or AES (got {family!r})")


def _algorithm(key: bytes, family: str) -> CipherAlgorithm:
    if family == "TDES":
        if len(key) not in _TDES_LENGTHS:
            raise InputError(f"a TDES key is 16 or 24 bytes (got {len(key)})")
        # TDES_2KEY is K1||K2||K1 (keying option 2).
        return TripleDES(key + key[:8] if len(key) == 16 else key)
    if family == "AES":
        if len(key) not in _AES_LENGTHS:
            raise InputError(f"an AES key is 16, 24 or 32 bytes (got {len(key)})")
        return algorithms.AES(key)
    raise InputError(f"cipher family must be TDES or AES (got {family!r})")


def _segment_bits(mode: str, block_bytes: int) -> int | None:
    """CFB segment size in bits for a CFB mode name (``CFB`` = full block), else None."""
    if mode == "CFB":
        return block_bytes * 8
    if mode.startswith("CFB"):
        return int(mode[3:])
    return None


def _check_inputs(key: bytes, family: str, mode: str, data: bytes,
                  iv: bytes | None) -> tuple[CipherAlgorithm, bytes]:
    algorithm = _algorithm(key, family)
    size = block_size(family)
    if mode not in SYMMETRIC_MODES:
        raise InputError(f"mode must be one of {', '.join(SYMMETRIC_MODES)} (got {mode!r})")
    segment = _segment_bits(mode, size)
    if segment is not None and segment > size * 8:
        raise InputError(f"{mode} needs a block of at least {segment} bits; {family} has "
                         f"{size * 8}")
    if mode in ("ECB", "CBC") and len(data) % size:
        raise InputError(f"{family} {mode} data must be a multiple of {size} bytes "
                         f"(got {len(data)})")
    if iv is None:
        iv = bytes(size)
    if len(iv) != size:
        raise InputError(f"the {family} initialization vector is {size} bytes (got {len(iv)})")
    return algorithm, iv


def _cfb_bits(algorithm: CipherAlgorithm, iv: bytes, data: bytes, segment: int,
              *, decrypt: bool) -> bytes:
    """CFB-s (SP 800-38A 6.3) for any segment size s (bits), from the block cipher."""
    size = len(iv)
    # ECB here is the raw block function CFB is built on, not a mode applied to data.
    encryptor = Cipher(algorithm, modes.ECB()).encryptor()  # noqa: S305
    register = int.from_bytes(iv, "big")
    register_bits = size * 8
    register_mask = (1 << register_bits) - 1
    total_bits = len(data) * 8
    data_int = int.from_bytes(data, "big")
    out = 0
    segment_mask = (1 << segment) - 1
    for position in range(0, total_bits, segment):
        block = encryptor.update(register.to_bytes(size, "big"))
        keystream = int.from_bytes(block, "big") >> (register_bits - segment)
        shift = total_bits - position - segment
        piece = (data_int >> shift) & segment_mask
        result = piece ^ keystream
        out = (out << segment) | result
        feedback = piece if decrypt else result
        register = ((register << segment) | feedback) & register_mask
    return out.to_bytes(len(data), "big")


def _run(key: bytes, family: str, mode: str, data: bytes, iv: bytes | None,
         *, decrypt: bool) -> bytes:
    algorithm, iv = _check_inputs(key, family, mode, data, iv)
    size = block_size(family)
    segment = _segment_bits(mode, size)
    cipher_mode: modes.Mode
    if mode == "ECB":
        cipher_mode = modes.ECB()  # noqa: S305 (APC offers ECB; the caller chose it)
    elif mode == "CBC":
        cipher_mode = modes.CBC(iv)
    elif mode == "OFB":
        cipher_mode = decrepit_modes.OFB(iv)
    elif segment == size * 8:
        cipher_mode = decrepit_modes.CFB(iv)
    elif segment == 8:
        cipher_mode = decrepit_modes.CFB8(iv)
    else:
        assert segment is not None  # noqa: S101 (every other mode is CFB-s)
        return _cfb_bits(algorithm, iv, data, segment, decrypt=decrypt)
    cipher = Cipher(algorithm, cipher_mode)
    context = cipher.decryptor() if decrypt else cipher.encryptor()
    return context.update(data) + context.finalize()


def encrypt_symmetric(key: bytes, family: str, mode: str, plaintext: bytes,
                      iv: bytes | None = None) -> bytes:
    """Encrypt with TDES or AES (``family``) in an APC ``mode``; IV zero if None. No
    padding: ECB and CBC take whole blocks, the stream modes (CFB*, OFB) any whole number of
    bytes (APC itself asks for whole blocks in every mode; the emulator checks that)."""
    return _run(key, family, mode, plaintext, iv, decrypt=False)


def decrypt_symmetric(key: bytes, family: str, mode: str, ciphertext: bytes,
                      iv: bytes | None = None) -> bytes:
    """The inverse of :func:`encrypt_symmetric`."""
    return _run(key, family, mode, ciphertext, iv, decrypt=True)


# --- RSA ------------------------------------------------------------------------------------


def _padding(padding: str) -> rsa_padding.AsymmetricPadding:
    if padding == "PKCS1":
        return rsa_padding.PKCS1v15()
    hash_type = _OAEP_HASHES.get(padding)
    if hash_type is None:
        raise InputError(f"RSA padding must be one of {', '.join(RSA_PADDINGS)} or none "
                         f"(got {padding!r})")
    return rsa_padding.OAEP(mgf=rsa_padding.MGF1(hash_type()), algorithm=hash_type(),
                            label=None)


def max_rsa_plaintext(modulus_bytes: int, padding: str | None) -> int:
    """The longest plaintext (bytes) RSA takes with ``padding`` (RFC 8017 7.1, 7.2)."""
    if padding is None:
        return modulus_bytes
    if padding == "PKCS1":
        return modulus_bytes - 11
    digest_size = _OAEP_DIGEST_SIZES.get(padding)
    if digest_size is None:
        raise InputError(f"RSA padding must be one of {', '.join(RSA_PADDINGS)} or none "
                         f"(got {padding!r})")
    return modulus_bytes - 2 * digest_size - 2


def encrypt_rsa(public_key: rsa.RSAPublicKey, plaintext: bytes, padding: str | None) -> bytes:
    """RSA encryption with PKCS #1 v1.5, OAEP-SHA-1/256/512, or none (raw RSA)."""
    modulus_bytes = (public_key.key_size + 7) // 8
    limit = max_rsa_plaintext(modulus_bytes, padding)
    if padding is None:
        if len(plaintext) != modulus_bytes:
            raise InputError(f"raw RSA (no padding) takes exactly {modulus_bytes} bytes "
                             f"(got {len(plaintext)})")
        value = int.from_bytes(plaintext, "big")
        numbers = public_key.public_numbers()
        if value >= numbers.n:
            raise InputError("raw RSA plaintext must be smaller than the modulus")
        return pow(value, numbers.e, numbers.n).to_bytes(modulus_bytes, "big")
    if len(plaintext) > limit:
        raise InputError(f"RSA-{public_key.key_size} with {padding} takes at most {limit} "
                         f"bytes (got {len(plaintext)})")
    return public_key.encrypt(plaintext, _padding(padding))


def decrypt_rsa(private_key: rsa.RSAPrivateKey, ciphertext: bytes, padding: str | None) -> bytes:
    """The inverse of :func:`encrypt_rsa`; a padding failure is one generic InputError."""
    modulus_bytes = (private_key.key_size + 7) // 8
    if len(ciphertext) != modulus_bytes:
        raise InputError(f"RSA-{private_key.key_size} ciphertext is {modulus_bytes} bytes "
                         f"(got {len(ciphertext)})")
    if padding is None:
        numbers = private_key.private_numbers()
        value = int.from_bytes(ciphertext, "big")
        if value >= numbers.public_numbers.n:
            raise InputError("RSA ciphertext must be smaller than the modulus")
        return pow(value, numbers.d, numbers.public_numbers.n).to_bytes(modulus_bytes, "big")
    try:
        return private_key.decrypt(ciphertext, _padding(padding))
    except ValueError:
        raise InputError("RSA decryption failed: wrong key, padding or ciphertext") from None
