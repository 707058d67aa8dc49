"""ImportKey / ExportKey ``KeyCryptogram``: RSA wrap (RSAES-OAEP SHA-256 or SHA-512, MGF1
with the same hash, empty label), as AWS's RSA import and export samples use it
(apc-tr34.md section 3.5; issue 9).

Import: the cryptogram (upper-case hex, the modulus length) decrypts under the import
token's private key; the key's attributes and exportability come from the request, must
be a combination APC allows, match the key's length, and fit the strength rule (RSA_2048
carries TDES only, AES_128 needs RSA_3072/4096, nothing stronger travels under RSA).
Export: to a receiver's RSA certificate verified under an imported root or trusted CA.
There is no sender signature and no key block: RSA wrap binds no metadata.
"""

from __future__ import annotations

from apckx.crypto import attributes, rsa_wrap
from apckx.crypto import keys as crypto_keys
from apckx.emulator.control.account import AccountState, locked
from apckx.emulator.control.common import refusals
from apckx.emulator.control.key_exchange import tokens
from apckx.emulator.control.key_exchange.common import (
    ExportRequest,
    ImportRequest,
    Params,
    WrappedKeyResult,
)
from apckx.emulator.control.key_exchange.export_payload import payload_for
from apckx.emulator.control.key_exchange.tr34 import krd_certificate, store_imported_key
from apckx.emulator.control.records import KeyRecord, all_modes
from apckx.emulator.exceptions import ValidationException

DEFAULT_WRAPPING_SPEC = "RSA_OAEP_SHA_256"


@locked
def import_key_cryptogram(account: AccountState, member: Params,
                          request: ImportRequest) -> KeyRecord:
    """ImportKey KeyCryptogram under an import token's RSA key."""
    token = tokens.redeem_token(account, member["ImportToken"], kind=tokens.IMPORT_TOKEN_KIND,
                                key_material_type="KEY_CRYPTOGRAM", role="ImportToken")
    key_attributes = dict(member["KeyAttributes"])
    key_attributes["KeyModesOfUse"] = all_modes(key_attributes["KeyModesOfUse"])
    algorithm = str(key_attributes["KeyAlgorithm"])
    if key_attributes["KeyClass"] != "SYMMETRIC_KEY" or algorithm not in (
        crypto_keys.KEY_ALGORITHMS
    ):
        raise ValidationException(
            "KeyCryptogram.KeyAttributes: RSA wrap imports symmetric keys (KeyClass "
            "SYMMETRIC_KEY, a TDES or AES KeyAlgorithm)"
        )
    with refusals("KeyCryptogram.KeyAttributes"):
        attributes.validate_key_attributes(key_attributes)
    with refusals("KeyCryptogram"):
        rsa_wrap.check_rsa_transport_strength(token.algorithm, algorithm)
        cryptogram = rsa_wrap.cryptogram_from_hex(member["WrappedKeyCryptogram"])
        material = rsa_wrap.unwrap_key(cryptogram, token.private_key(),
                                       member.get("WrappingSpec", DEFAULT_WRAPPING_SPEC))
    if len(material) != crypto_keys.KEY_ALGORITHMS[algorithm]:
        raise ValidationException(
            f"KeyCryptogram: the unwrapped key is {len(material)} bytes, but KeyAlgorithm "
            f"{algorithm} keys are {crypto_keys.KEY_ALGORITHMS[algorithm]}"
        )
    exportable = bool(member["Exportable"])
    key = store_imported_key(
        account, material, key_attributes, exportable=exportable,
        exportability="E" if exportable else "N", key_version="00", request=request,
        what="KeyCryptogram",
    )
    tokens.spend_token(account, token)
    return key


@locked
def export_key_cryptogram(account: AccountState, member: Params,
                          request: ExportRequest) -> WrappedKeyResult:
    """ExportKey KeyCryptogram: RSA-OAEP to the receiver's certificate (the key, or a
    DUKPT initial key)."""
    payload = payload_for(account, request)
    ca, _, public_key = krd_certificate(account, member)
    spec = member.get("WrappingSpec", DEFAULT_WRAPPING_SPEC)
    with refusals("KeyCryptogram"):
        cryptogram = rsa_wrap.wrap_key(payload.material, public_key, spec,
                                       key_algorithm=payload.key_algorithm)
    return WrappedKeyResult(
        wrapping_key_arn=ca.arn, key_block=rsa_wrap.cryptogram_to_hex(cryptogram),
        key_check_value=payload.key_check_value,
        key_check_value_algorithm=payload.key_check_value_algorithm,
        material_format="KEY_CRYPTOGRAM",
    )
