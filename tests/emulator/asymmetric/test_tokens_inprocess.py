"""Import/export token lifetimes on the emulator clock, in process (``call`` checks every
answer against the model and that no secret, token keys included, reaches it)."""

from __future__ import annotations

from typing import Any

import pytest

from apckx.emulator.exceptions import ValidationException

DAY = 86400.0


def test_token_lifetime_and_reuse(call: Any, clock: Any) -> None:
    first = call(
        "GetParametersForImport", KeyMaterialType="TR34_KEY_BLOCK", WrappingKeyAlgorithm="RSA_2048"
    )
    assert first["ParametersValidUntilTimestamp"] == pytest.approx(clock.now + 30 * DAY)
    clock.advance(22 * DAY)  # 8 days left: still reused
    reused = call(
        "GetParametersForImport",
        KeyMaterialType="TR34_KEY_BLOCK",
        WrappingKeyAlgorithm="RSA_2048",
        ReuseLastGeneratedToken=True,
    )
    assert reused["ImportToken"] == first["ImportToken"]
    other_size = call(
        "GetParametersForImport",
        KeyMaterialType="TR34_KEY_BLOCK",
        WrappingKeyAlgorithm="RSA_3072",
        ReuseLastGeneratedToken=True,
    )
    assert other_size["ImportToken"] != first["ImportToken"]  # same type, other algorithm
    clock.advance(2 * DAY)  # 6 days left: a new one
    fresh = call(
        "GetParametersForImport",
        KeyMaterialType="TR34_KEY_BLOCK",
        WrappingKeyAlgorithm="RSA_2048",
        ReuseLastGeneratedToken=True,
    )
    assert fresh["ImportToken"] != first["ImportToken"]
    exported = call(
        "GetParametersForExport", KeyMaterialType="TR34_KEY_BLOCK", SigningKeyAlgorithm="RSA_2048"
    )
    assert exported["ExportToken"].startswith("export-token-")
    assert len(exported["ExportToken"]) == len("export-token-") + 16
    cryptogram = call(
        "GetParametersForImport", KeyMaterialType="KEY_CRYPTOGRAM", WrappingKeyAlgorithm="RSA_2048"
    )
    clock.advance(30 * DAY + 1)
    with pytest.raises(ValidationException, match="has expired"):
        call(
            "ImportKey",
            KeyMaterial={
                "KeyCryptogram": {
                    "Exportable": True,
                    "ImportToken": cryptogram["ImportToken"],
                    "KeyAttributes": {
                        "KeyAlgorithm": "TDES_2KEY",
                        "KeyClass": "SYMMETRIC_KEY",
                        "KeyModesOfUse": {"DeriveKey": True},
                        "KeyUsage": "TR31_B0_BASE_DERIVATION_KEY",
                    },
                    "WrappedKeyCryptogram": "00" * 256,
                }
            },
        )
