"""The emulator's control-plane handlers: read parameters, call the control modules, serialize.

``dispatch`` is the one entry point the HTTP server calls. Each operation is a method
of :class:`PaymentCryptographyResponse` named after botocore's python name for it
(``ImportKey`` -> ``import_key``), so a target maps to its handler without guessing. Bodies are
validated against the botocore input shape first (:mod:`apckx.emulator.validation`); outputs
follow the model's output shapes (``Key``, ``KeySummary``, ``Alias``, ``WrappedKey``...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from botocore import xform_name

from apckx.emulator.control import aliases, certificates, keys, resource_policies, rsa_keys, tags
from apckx.emulator.control.account import AccountState, BackendRegistry
from apckx.emulator.control.key_exchange import tokens
from apckx.emulator.control.key_exchange.common import (
    ExportRequest,
    ImportRequest,
    WrappedKeyResult,
    unsupported_member,
)
from apckx.emulator.control.key_exchange.dispatch import EXPORTERS, IMPORTERS
from apckx.emulator.control.records import KeyRecord, all_modes
from apckx.emulator.exceptions import (
    SerializationException,
    UnknownOperationException,
    ValidationException,
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
        "WrappedKeyMaterialFormat": result.material_format,
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


def _refuse_replication(params: Params) -> None:
    """Multi-region replication is not emulated: refused, never silently ignored."""
    if params.get("ReplicationRegions"):
        raise ValidationException(
            "ReplicationRegions is not supported by the apckx emulator: it does not replicate "
            "keys between regions. Leave ReplicationRegions out and create or import the key "
            "in each region you need (the region comes from the request's credential scope)"
        )


class PaymentCryptographyResponse:
    """One method per implemented operation, named as botocore names it."""

    def __init__(self, account: AccountState) -> None:
        self.account = account

    # keys

    def create_key(self, params: Params) -> Body:
        _refuse_replication(params)
        key = keys.create_key(
            self.account, params["KeyAttributes"], exportable=params["Exportable"],
            enabled=params.get("Enabled", True),
            key_check_value_algorithm=params.get("KeyCheckValueAlgorithm"),
            derive_key_usage=params.get("DeriveKeyUsage"), tags=_tags(params),
        )
        return {"Key": key_to_wire(key)}

    def get_key(self, params: Params) -> Body:
        return {"Key": key_to_wire(keys.get_key(self.account, params["KeyIdentifier"]))}

    def list_keys(self, params: Params) -> Body:
        found, token = keys.list_keys(
            self.account, key_state=params.get("KeyState"),
            next_token=params.get("NextToken"), max_results=params.get("MaxResults"),
        )
        return _page([key_summary_to_wire(key) for key in found], token, "Keys")

    def delete_key(self, params: Params) -> Body:
        key = keys.delete_key(self.account, params["KeyIdentifier"],
                              params.get("DeleteKeyInDays"))
        return {"Key": key_to_wire(key)}

    def restore_key(self, params: Params) -> Body:
        return {"Key": key_to_wire(keys.restore_key(self.account, params["KeyIdentifier"]))}

    def start_key_usage(self, params: Params) -> Body:
        key = keys.start_key_usage(self.account, params["KeyIdentifier"])
        return {"Key": key_to_wire(key)}

    def stop_key_usage(self, params: Params) -> Body:
        key = keys.stop_key_usage(self.account, params["KeyIdentifier"])
        return {"Key": key_to_wire(key)}

    def get_public_key_certificate(self, params: Params) -> Body:
        certificate, chain = certificates.get_public_key_certificate(
            self.account, params["KeyIdentifier"])
        return {"KeyCertificate": certificate, "KeyCertificateChain": chain}

    def get_certificate_signing_request(self, params: Params) -> Body:
        csr = rsa_keys.get_certificate_signing_request(
            self.account, params["KeyIdentifier"], params["SigningAlgorithm"],
            params["CertificateSubject"])
        return {"CertificateSigningRequest": csr}

    # import / export parameters (TR-34 and RSA wrap tokens: key_exchange.tokens)

    def get_parameters_for_import(self, params: Params) -> Body:
        token = tokens.get_parameters_for_import(
            self.account, params["KeyMaterialType"], params["WrappingKeyAlgorithm"],
            bool(params.get("ReuseLastGeneratedToken", False)))
        return {"WrappingKeyCertificate": token.certificate_apc,
                "WrappingKeyCertificateChain": token.chain_apc,
                "WrappingKeyAlgorithm": token.algorithm, "ImportToken": token.token,
                "ParametersValidUntilTimestamp": token.not_after}

    def get_parameters_for_export(self, params: Params) -> Body:
        token = tokens.get_parameters_for_export(
            self.account, params["KeyMaterialType"], params["SigningKeyAlgorithm"],
            bool(params.get("ReuseLastGeneratedToken", False)))
        return {"SigningKeyCertificate": token.certificate_apc,
                "SigningKeyCertificateChain": token.chain_apc,
                "SigningKeyAlgorithm": token.algorithm, "ExportToken": token.token,
                "ParametersValidUntilTimestamp": token.not_after}

    # import / export: the KeyMaterial member picks the function (key_exchange.dispatch)

    def import_key(self, params: Params) -> Body:
        _refuse_replication(params)
        material: Params = params["KeyMaterial"]
        member = next(iter(material))
        importer = IMPORTERS.get(member)
        if importer is None:
            raise unsupported_member("KeyMaterial", member)
        request = ImportRequest(
            enabled=params.get("Enabled", True), tags=_tags(params),
            key_check_value_algorithm=params.get("KeyCheckValueAlgorithm"),
        )
        return {"Key": key_to_wire(importer(self.account, material[member], request))}

    def export_key(self, params: Params) -> Body:
        material: Params = params["KeyMaterial"]
        export_attributes: Params = params.get("ExportAttributes") or {}
        member = next(iter(material))
        exporter = EXPORTERS.get(member)
        if exporter is None:
            raise unsupported_member("KeyMaterial", member)
        request = ExportRequest(
            export_key_identifier=params["ExportKeyIdentifier"],
            key_check_value_algorithm=export_attributes.get("KeyCheckValueAlgorithm"),
            export_dukpt_initial_key=export_attributes.get("ExportDukptInitialKey"),
        )
        result = exporter(self.account, material[member], request)
        return {"WrappedKey": wrapped_key_to_wire(result)}

    # aliases

    def create_alias(self, params: Params) -> Body:
        alias = aliases.create_alias(self.account, params["AliasName"], params.get("KeyArn"))
        return {"Alias": alias_to_wire(alias)}

    def get_alias(self, params: Params) -> Body:
        return {"Alias": alias_to_wire(aliases.get_alias(self.account, params["AliasName"]))}

    def update_alias(self, params: Params) -> Body:
        alias = aliases.update_alias(self.account, params["AliasName"], params.get("KeyArn"))
        return {"Alias": alias_to_wire(alias)}

    def delete_alias(self, params: Params) -> Body:
        aliases.delete_alias(self.account, params["AliasName"])
        return {}

    def list_aliases(self, params: Params) -> Body:
        found, token = aliases.list_aliases(
            self.account, key_arn_value=params.get("KeyArn"),
            next_token=params.get("NextToken"), max_results=params.get("MaxResults"),
        )
        return _page([alias_to_wire(alias) for alias in found], token, "Aliases")

    # tags

    def tag_resource(self, params: Params) -> Body:
        tags.tag_resource(self.account, params["ResourceArn"], _tags(params))
        return {}

    def untag_resource(self, params: Params) -> Body:
        tags.untag_resource(self.account, params["ResourceArn"], params["TagKeys"])
        return {}

    def list_tags_for_resource(self, params: Params) -> Body:
        found, token = tags.list_tags_for_resource(
            self.account, params["ResourceArn"], next_token=params.get("NextToken"),
            max_results=params.get("MaxResults"),
        )
        return _page([{"Key": tag_key, "Value": value} for tag_key, value in found], token,
                     "Tags")

    # resource-based policies

    def put_resource_policy(self, params: Params) -> Body:
        policy = resource_policies.put_resource_policy(
            self.account, params["ResourceArn"], params["Policy"])
        return {"ResourceArn": params["ResourceArn"], "Policy": policy}

    def get_resource_policy(self, params: Params) -> Body:
        policy = resource_policies.get_resource_policy(self.account, params["ResourceArn"])
        return {"ResourceArn": params["ResourceArn"], "Policy": policy}

    def delete_resource_policy(self, params: Params) -> Body:
        resource_policies.delete_resource_policy(self.account, params["ResourceArn"])
        return {}


#: botocore operation names the emulator implements.
IMPLEMENTED_OPERATIONS: frozenset[str] = frozenset({
    "CreateKey", "GetKey", "ListKeys", "DeleteKey", "RestoreKey", "StartKeyUsage",
    "StopKeyUsage", "GetPublicKeyCertificate", "ImportKey", "ExportKey", "CreateAlias",
    "GetAlias", "UpdateAlias", "DeleteAlias", "ListAliases", "TagResource", "UntagResource",
    "ListTagsForResource", "GetCertificateSigningRequest", "GetParametersForImport",
    "GetParametersForExport", "PutResourcePolicy", "GetResourcePolicy", "DeleteResourcePolicy",
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
