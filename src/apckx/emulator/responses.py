"""The emulator's request handlers: read parameters, call the backend, serialize.

``dispatch`` is the one entry point the HTTP server (part B) calls. Each operation is a method
of :class:`PaymentCryptographyResponse` named after botocore's python name for it
(``ImportKey`` -> ``import_key``), so a target maps to its handler without guessing. Bodies are
validated against the botocore input shape first (:mod:`apckx.emulator.validation`); outputs
follow the model's output shapes (``Key``, ``KeySummary``, ``Alias``, ``WrappedKey``...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from botocore import xform_name

from apckx.emulator.exceptions import (
    SerializationException,
    UnknownOperationException,
    ValidationException,
)
from apckx.emulator.models import (
    BackendRegistry,
    EcdhParameters,
    KeyBlockHeaderOverrides,
    KeyRecord,
    PaymentCryptographyBackend,
    WrappedKeyResult,
    all_modes,
)
from apckx.emulator.validation import operation_model, prune_input, validate_input

Params = Mapping[str, Any]
Body = dict[str, Any]


def key_to_wire(key: KeyRecord) -> Body:
    """The model's ``Key`` structure: all nine KeyModesOfUse flags, epoch-second timestamps,
    optional members only when set. Never key material."""
    body: Body = {
        "KeyArn": key.arn,
        "KeyAttributes": _attributes_to_wire(key),
        "KeyCheckValue": key.key_check_value,
        "KeyCheckValueAlgorithm": key.key_check_value_algorithm,
        "Enabled": key.enabled,
        "Exportable": key.exportable,
        "KeyState": key.key_state,
        "KeyOrigin": key.key_origin,
        "CreateTimestamp": key.create_timestamp,
    }
    optional = {
        "UsageStartTimestamp": key.usage_start_timestamp,
        "UsageStopTimestamp": key.usage_stop_timestamp,
        "DeletePendingTimestamp": key.delete_pending_timestamp,
        "DeleteTimestamp": key.delete_timestamp,
        "DeriveKeyUsage": key.derive_key_usage,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    return body


def key_summary_to_wire(key: KeyRecord) -> Body:
    """The model's ``KeySummary`` (ListKeys): a subset of ``Key``."""
    return {
        "KeyArn": key.arn,
        "KeyState": key.key_state,
        "KeyAttributes": _attributes_to_wire(key),
        "KeyCheckValue": key.key_check_value,
        "Exportable": key.exportable,
        "Enabled": key.enabled,
    }


def _attributes_to_wire(key: KeyRecord) -> Body:
    return {
        "KeyUsage": key.key_usage,
        "KeyClass": key.key_class,
        "KeyAlgorithm": key.key_algorithm,
        "KeyModesOfUse": all_modes(key.modes),
    }


def alias_to_wire(alias: tuple[str, str | None]) -> Body:
    """The model's ``Alias``: ``KeyArn`` only when the alias has a key."""
    name, target = alias
    return {"AliasName": name} if target is None else {"AliasName": name, "KeyArn": target}


def wrapped_key_to_wire(result: WrappedKeyResult) -> Body:
    return {
        "WrappingKeyArn": result.wrapping_key_arn,
        "WrappedKeyMaterialFormat": "TR31_KEY_BLOCK",
        "KeyMaterial": result.key_block,
        "KeyCheckValue": result.key_check_value,
        "KeyCheckValueAlgorithm": result.key_check_value_algorithm,
    }


def _tags(params: Params, name: str = "Tags") -> list[tuple[str, str]]:
    return [(tag["Key"], tag["Value"]) for tag in params.get(name) or ()]


def _page(items: list[Body], token: str | None, name: str) -> Body:
    body: Body = {name: items}
    if token is not None:
        body["NextToken"] = token
    return body


def _ecdh_parameters(material: Params) -> EcdhParameters:
    return EcdhParameters(
        private_key_identifier=material["PrivateKeyIdentifier"],
        certificate_authority_identifier=material["CertificateAuthorityPublicKeyIdentifier"],
        public_key_certificate=material["PublicKeyCertificate"],
        derive_key_algorithm=material["DeriveKeyAlgorithm"],
        key_derivation_function=material["KeyDerivationFunction"],
        key_derivation_hash_algorithm=material["KeyDerivationHashAlgorithm"],
        shared_information_hex=material["DerivationData"]["SharedInformation"],
    )


def _header_overrides(material: Params) -> KeyBlockHeaderOverrides | None:
    headers = material.get("KeyBlockHeaders")
    if headers is None:
        return None
    return KeyBlockHeaderOverrides(
        modes=headers.get("KeyModesOfUse"),
        exportability=headers.get("KeyExportability"),
        key_version=headers.get("KeyVersion"),
        optional_blocks=headers.get("OptionalBlocks"),
    )


def _unsupported_member(union: str, member: str) -> ValidationException:
    return ValidationException(f"{union}.{member} is not implemented by the apckx emulator")


class PaymentCryptographyResponse:
    """One method per implemented operation, named as botocore names it."""

    def __init__(self, backend: PaymentCryptographyBackend) -> None:
        self.backend = backend

    # keys

    def create_key(self, params: Params) -> Body:
        key = self.backend.create_key(
            params["KeyAttributes"], exportable=params["Exportable"],
            enabled=params.get("Enabled", True),
            key_check_value_algorithm=params.get("KeyCheckValueAlgorithm"),
            derive_key_usage=params.get("DeriveKeyUsage"), tags=_tags(params),
        )
        return {"Key": key_to_wire(key)}

    def get_key(self, params: Params) -> Body:
        return {"Key": key_to_wire(self.backend.get_key(params["KeyIdentifier"]))}

    def list_keys(self, params: Params) -> Body:
        found, token = self.backend.list_keys(
            key_state=params.get("KeyState"), next_token=params.get("NextToken"),
            max_results=params.get("MaxResults"),
        )
        return _page([key_summary_to_wire(key) for key in found], token, "Keys")

    def delete_key(self, params: Params) -> Body:
        key = self.backend.delete_key(params["KeyIdentifier"], params.get("DeleteKeyInDays"))
        return {"Key": key_to_wire(key)}

    def restore_key(self, params: Params) -> Body:
        return {"Key": key_to_wire(self.backend.restore_key(params["KeyIdentifier"]))}

    def start_key_usage(self, params: Params) -> Body:
        return {"Key": key_to_wire(self.backend.start_key_usage(params["KeyIdentifier"]))}

    def stop_key_usage(self, params: Params) -> Body:
        return {"Key": key_to_wire(self.backend.stop_key_usage(params["KeyIdentifier"]))}

    def get_public_key_certificate(self, params: Params) -> Body:
        certificate, chain = self.backend.get_public_key_certificate(params["KeyIdentifier"])
        return {"KeyCertificate": certificate, "KeyCertificateChain": chain}

    # import / export

    def import_key(self, params: Params) -> Body:
        material: Params = params["KeyMaterial"]
        common: dict[str, Any] = {"enabled": params.get("Enabled", True),
                                  "tags": _tags(params)}
        kcv_algorithm = params.get("KeyCheckValueAlgorithm")
        if "RootCertificatePublicKey" in material:
            root = material["RootCertificatePublicKey"]
            key = self.backend.import_root_certificate(
                root["KeyAttributes"], root["PublicKeyCertificate"], **common)
        elif "TrustedCertificatePublicKey" in material:
            trusted = material["TrustedCertificatePublicKey"]
            key = self.backend.import_trusted_certificate(
                trusted["KeyAttributes"], trusted["PublicKeyCertificate"],
                trusted["CertificateAuthorityPublicKeyIdentifier"], **common)
        elif "Tr31KeyBlock" in material:
            block = material["Tr31KeyBlock"]
            key = self.backend.import_tr31_key_block(
                block["WrappingKeyIdentifier"], block["WrappedKeyBlock"],
                key_check_value_algorithm=kcv_algorithm, **common)
        elif "DiffieHellmanTr31KeyBlock" in material:
            block = material["DiffieHellmanTr31KeyBlock"]
            key = self.backend.import_diffie_hellman_tr31_key_block(
                _ecdh_parameters(block), block["WrappedKeyBlock"],
                key_check_value_algorithm=kcv_algorithm, **common)
        else:
            raise _unsupported_member("KeyMaterial", next(iter(material)))
        return {"Key": key_to_wire(key)}

    def export_key(self, params: Params) -> Body:
        material: Params = params["KeyMaterial"]
        export_attributes: Params = params.get("ExportAttributes") or {}
        if export_attributes.get("ExportDukptInitialKey") is not None:
            raise _unsupported_member("ExportAttributes", "ExportDukptInitialKey")
        kcv_algorithm = export_attributes.get("KeyCheckValueAlgorithm")
        identifier = params["ExportKeyIdentifier"]
        if "Tr31KeyBlock" in material:
            block = material["Tr31KeyBlock"]
            result = self.backend.export_tr31_key_block(
                identifier, block["WrappingKeyIdentifier"],
                key_block_headers=_header_overrides(block),
                key_check_value_algorithm=kcv_algorithm)
        elif "DiffieHellmanTr31KeyBlock" in material:
            block = material["DiffieHellmanTr31KeyBlock"]
            result = self.backend.export_diffie_hellman_tr31_key_block(
                identifier, _ecdh_parameters(block),
                key_block_headers=_header_overrides(block),
                key_check_value_algorithm=kcv_algorithm)
        else:
            raise _unsupported_member("KeyMaterial", next(iter(material)))
        return {"WrappedKey": wrapped_key_to_wire(result)}

    # aliases

    def create_alias(self, params: Params) -> Body:
        alias = self.backend.create_alias(params["AliasName"], params.get("KeyArn"))
        return {"Alias": alias_to_wire(alias)}

    def get_alias(self, params: Params) -> Body:
        return {"Alias": alias_to_wire(self.backend.get_alias(params["AliasName"]))}

    def update_alias(self, params: Params) -> Body:
        alias = self.backend.update_alias(params["AliasName"], params.get("KeyArn"))
        return {"Alias": alias_to_wire(alias)}

    def delete_alias(self, params: Params) -> Body:
        self.backend.delete_alias(params["AliasName"])
        return {}

    def list_aliases(self, params: Params) -> Body:
        found, token = self.backend.list_aliases(
            key_arn_value=params.get("KeyArn"), next_token=params.get("NextToken"),
            max_results=params.get("MaxResults"),
        )
        return _page([alias_to_wire(alias) for alias in found], token, "Aliases")

    # tags

    def tag_resource(self, params: Params) -> Body:
        self.backend.tag_resource(params["ResourceArn"], _tags(params))
        return {}

    def untag_resource(self, params: Params) -> Body:
        self.backend.untag_resource(params["ResourceArn"], params["TagKeys"])
        return {}

    def list_tags_for_resource(self, params: Params) -> Body:
        found, token = self.backend.list_tags_for_resource(
            params["ResourceArn"], next_token=params.get("NextToken"),
            max_results=params.get("MaxResults"),
        )
        tags = [{"Key": tag_key, "Value": value} for tag_key, value in found]
        return _page(tags, token, "Tags")


#: botocore operation names the emulator implements.
IMPLEMENTED_OPERATIONS: frozenset[str] = frozenset({
    "CreateKey", "GetKey", "ListKeys", "DeleteKey", "RestoreKey", "StartKeyUsage",
    "StopKeyUsage", "GetPublicKeyCertificate", "ImportKey", "ExportKey", "CreateAlias",
    "GetAlias", "UpdateAlias", "DeleteAlias", "ListAliases", "TagResource", "UntagResource",
    "ListTagsForResource",
})


def handler_name(operation: str) -> str:
    """botocore's python name for an operation (``ImportKey`` -> ``import_key``)."""
    name: str = xform_name(operation)
    return name


def dispatch(registry: BackendRegistry, operation: str, body: object, *, account_id: str,
             region: str) -> dict[str, Any]:
    """Validate ``body`` for ``operation``, run it for (account, region), return the output.

    Raises only :class:`~apckx.emulator.exceptions.ApcServiceException` subclasses; anything
    else escaping is a bug (the server answers it with InternalServerException).
    """
    operation_model(operation)  # UnknownOperationException for names outside the model
    if operation not in IMPLEMENTED_OPERATIONS:
        raise UnknownOperationException(
            f"{operation} is not implemented by the apckx emulator"
        )
    if not isinstance(body, dict):
        raise SerializationException("The request body must be a JSON object")
    validate_input(operation, body)
    handler: Callable[[Params], Body] = getattr(
        PaymentCryptographyResponse(registry.backend(account_id, region)),
        handler_name(operation),
    )
    return handler(prune_input(operation, body))
