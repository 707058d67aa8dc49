"""TranslateKeyMaterial: an ECDH-wrapped TR-31 block in, a TR-31 block under a KEK out.

The incoming side is exactly ImportKey's ``DiffieHellmanTr31KeyBlock`` (the K3 key pair,
the imported CA, the counterparty's certificate, the KDF and SharedInformation): the
control plane's :func:`~apckx.emulator.control.key_exchange.ecdh.derive_ecdh_kbpk` derives
the one-time KBPK and the block is opened under it (MAC checked). The key is never stored:
it is wrapped again under the outgoing KEK (a K0/K1 key allowing Wrap or Encrypt, TR-31
version D under AES, B under TDES) with the incoming header's usage, algorithm, modes of use,
exportability, key version and optional blocks (KP and PB are recomputed, as on export).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apckx import errors
from apckx.crypto import attributes, ecdh, keys, tr31
from apckx.emulator.control.key_exchange.ecdh import EcdhParameters, derive_ecdh_kbpk
from apckx.emulator.control.key_exchange.tr31 import wrapping_key
from apckx.emulator.control.keys import compute_symmetric_kcv, kcv_algorithm_for
from apckx.emulator.data.keys import KeyContext
from apckx.emulator.exceptions import ValidationException

Params = Mapping[str, Any]
Body = dict[str, Any]


def translate_key_material(context: KeyContext, params: Params) -> Body:
    """TranslateKeyMaterial (ECDH TR-31 in, TR-31 under a KEK out)."""
    incoming: Params = params["IncomingKeyMaterial"]["DiffieHellmanTr31KeyBlock"]
    outgoing: Params = params["OutgoingKeyMaterial"]["Tr31KeyBlock"]
    what = "IncomingKeyMaterial.DiffieHellmanTr31KeyBlock"
    ecdh_parameters = EcdhParameters.from_member(incoming)
    account = context.backend
    with account.lock:
        _, kbpk, curve = derive_ecdh_kbpk(account, ecdh_parameters)
        kek = wrapping_key(account, outgoing["WrappingKeyIdentifier"], for_export=True)
        kek_material, kek_algorithm, kek_arn = kek.secret(), kek.key_algorithm, kek.arn
    try:
        header, material = tr31.unwrap_key_block(
            kbpk, incoming["WrappedKeyBlock"],
            kbpk_algorithm=ecdh_parameters.derive_key_algorithm)
        key_attributes = tr31.header_to_key_attributes(header, len(material))
        algorithm = str(key_attributes["KeyAlgorithm"])
        keys.check_key_material(material, algorithm, what="the wrapped key")
    except errors.IntegrityError:
        raise ValidationException(
            f"{what}: the key block failed its integrity check (derivation inputs that "
            "differ from the sender's, or a tampered block)"
        ) from None
    except errors.ApckxError as exc:
        raise ValidationException(f"{what}: {exc}") from None
    if header.exportability == "N":
        raise ValidationException(
            f"{what}: the key block is non-exportable (exportability N), so it cannot be "
            "wrapped under another key"
        )
    try:
        ecdh.check_ecdh_strength(curve, ecdh_parameters.derive_key_algorithm, algorithm)
    except errors.ApckxError as exc:
        raise ValidationException(f"{what}: {exc}") from None
    try:
        attributes.check_wrapping_strength(kek_algorithm, algorithm)
    except errors.ApckxError as exc:
        raise ValidationException(f"OutgoingKeyMaterial.Tr31KeyBlock: {exc}") from None
    kcv_algorithm = kcv_algorithm_for(algorithm, params.get("KeyCheckValueAlgorithm"))
    try:
        out_header = tr31.build_header(
            key_usage=str(key_attributes["KeyUsage"]), key_algorithm=algorithm,
            kbpk_algorithm=kek_algorithm, modes_of_use=header.mode_of_use,
            exportability=header.exportability, key_version=header.key_version,
            optional_blocks=[(block_id, value) for block_id, value
                             in tr31.retained_optional_blocks(header).items()
                             if block_id not in ("PB", "HM")] or None,
        )
        block: str = tr31.wrap_key_block(kek_material, out_header, material,
                                         kbpk_algorithm=kek_algorithm)
    except errors.ApckxError as exc:
        raise ValidationException(f"OutgoingKeyMaterial.Tr31KeyBlock ({kek_arn}): {exc}") from None
    return {"WrappedKey": {
        "WrappedKeyMaterial": block,
        "KeyCheckValue": compute_symmetric_kcv(material, algorithm, kcv_algorithm),
        "WrappedKeyMaterialFormat": "TR31_KEY_BLOCK",
    }}
