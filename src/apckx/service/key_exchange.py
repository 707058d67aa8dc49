"""GetParametersForImport / GetParametersForExport: the token calls of TR-34 and RSA wrap.

Kept beside :class:`apckx.service.apc.ApcService` (whose call plumbing, error mapping and call
log they use) so that the TR-34 ceremonies add no edits to that class.
"""

from __future__ import annotations

from typing import Any

from apckx.service.apc import ApcService


def get_parameters_for_import(
    apc: ApcService,
    *,
    key_material_type: str,
    wrapping_key_algorithm: str,
    reuse_last_generated_token: bool = False,
) -> dict[str, Any]:
    """{WrappingKeyCertificate, WrappingKeyCertificateChain, WrappingKeyAlgorithm,
    ImportToken, ParametersValidUntilTimestamp}; certificates are base64 PEM."""
    params: dict[str, Any] = {
        "KeyMaterialType": key_material_type,
        "WrappingKeyAlgorithm": wrapping_key_algorithm,
    }
    if reuse_last_generated_token:
        params["ReuseLastGeneratedToken"] = True
    return apc._call("GetParametersForImport", "get_parameters_for_import", **params)


def get_parameters_for_export(
    apc: ApcService,
    *,
    key_material_type: str,
    signing_key_algorithm: str,
    reuse_last_generated_token: bool = False,
) -> dict[str, Any]:
    """{SigningKeyCertificate, SigningKeyCertificateChain, SigningKeyAlgorithm, ExportToken,
    ParametersValidUntilTimestamp}."""
    params: dict[str, Any] = {
        "KeyMaterialType": key_material_type,
        "SigningKeyAlgorithm": signing_key_algorithm,
    }
    if reuse_last_generated_token:
        params["ReuseLastGeneratedToken"] = True
    return apc._call("GetParametersForExport", "get_parameters_for_export", **params)
