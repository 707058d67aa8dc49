"""TR-34 over real HTTP through boto3: apckx.crypto as KDH into the emulator, the emulator
as KDH back to apckx.crypto as KRD, 1-pass and 2-pass, TDES and AES-128, RSA 2048/3072/4096;
and every refusal issue 9 lists, parsed by botocore to AWS's exception class.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from apckx.crypto import certs, kcv, rsa_wrap, tr34
from apckx.emulator.pytest_plugin import make_emulator_client, start_test_emulator
from apckx.emulator.server import EmulatorConfig

Emulator = Any
Pki = Any
Party = Any
S0 = "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE"


# --- apckx as KDH, the emulator as KRD -------------------------------------------------------


@pytest.mark.parametrize(
    ("wrapping_algorithm", "algorithm", "passes"),
    [
        ("RSA_2048", "TDES_2KEY", 2),
        ("RSA_3072", "AES_128", 2),
        ("RSA_3072", "TDES_3KEY", 1),
        ("RSA_4096", "AES_128", 1),
    ],
)
def test_import_from_apckx(
    kit: Any, emu: Emulator, pki: Pki, wrapping_algorithm: str, algorithm: str, passes: int
) -> None:
    params = kit.import_parameters(emu, "TR34_KEY_BLOCK", wrapping_algorithm)
    assert params["ImportToken"].startswith("import-token-")
    assert params["WrappingKeyAlgorithm"] == wrapping_algorithm
    krd_cert = certs.certificate_from_apc(params["WrappingKeyCertificate"])
    chain = certs.certificates_from_apc(params["WrappingKeyCertificateChain"])
    certs.verify_rsa_chain(krd_cert, chain, require_self_signed_root=True)
    assert chain[0].public_key().key_size == 4096  # type: ignore[union-attr]
    valid_for = params["ParametersValidUntilTimestamp"] - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=29) < valid_for <= dt.timedelta(days=30)
    nonce = os.urandom(8) if passes == 2 else None
    key = kit.tr34_import(
        emu, pki, params, kit.build_block(pki, krd_cert, algorithm, nonce=nonce), nonce
    )
    assert key["KeyAttributes"]["KeyAlgorithm"] == algorithm
    assert key["KeyAttributes"]["KeyUsage"] == "TR31_K0_KEY_ENCRYPTION_KEY"
    assert key["KeyAttributes"]["KeyModesOfUse"] == {
        **dict.fromkeys(("Generate", "Sign", "Verify", "DeriveKey", "NoRestrictions"), False),
        **kit.MODES_B,
    }
    assert key["KeyOrigin"] == "EXTERNAL" and key["Exportable"] is True
    assert kcv.kcv_matches(key["KeyCheckValue"], kit.kcv_of(kit.KEYS[algorithm], algorithm))


def test_reuse_last_generated_token(kit: Any, emu: Emulator) -> None:
    first = emu.client.get_parameters_for_import(
        KeyMaterialType="KEY_CRYPTOGRAM", WrappingKeyAlgorithm="RSA_2048"
    )
    again = emu.client.get_parameters_for_import(
        KeyMaterialType="KEY_CRYPTOGRAM",
        WrappingKeyAlgorithm="RSA_2048",
        ReuseLastGeneratedToken=True,
    )
    fresh = emu.client.get_parameters_for_import(
        KeyMaterialType="KEY_CRYPTOGRAM", WrappingKeyAlgorithm="RSA_2048"
    )
    assert again["ImportToken"] == first["ImportToken"]
    assert again["WrappingKeyCertificate"] == first["WrappingKeyCertificate"]
    assert fresh["ImportToken"] != first["ImportToken"]


# --- the emulator as KDH, apckx as KRD -------------------------------------------------------


@pytest.mark.parametrize(
    ("bits", "algorithm", "passes"),
    [(2048, "TDES_2KEY", 2), (3072, "AES_128", 2), (4096, "TDES_3KEY", 1)],
)
def test_export_to_apckx(
    kit: Any, emu: Emulator, pki: Pki, bits: int, algorithm: str, passes: int
) -> None:
    key = kit.create_key(emu, algorithm)
    nonce = os.urandom(16) if passes == 2 else None
    params, wrapped = kit.export_tr34(emu, pki, key["KeyArn"], pki.receivers[bits], nonce)
    assert wrapped["WrappedKeyMaterialFormat"] == "TR34_KEY_BLOCK"
    assert params["ExportToken"].startswith("export-token-")
    kdh_cert = certs.certificate_from_apc(params["SigningKeyCertificate"])
    certs.verify_rsa_chain(
        kdh_cert,
        certs.certificates_from_apc(params["SigningKeyCertificateChain"]),
        require_self_signed_root=True,
    )
    block = tr34.parse_key_block(tr34.key_block_from_hex(wrapped["KeyMaterial"]))
    assert block.passes == passes
    assert block.content_cipher == ("AES_128_CBC" if algorithm == "AES_128" else "TDES_CBC")
    opened = tr34.open_key_block(
        block,
        pki.receivers[bits].key,
        signing_certificate=kdh_cert,
        nonce=nonce,
        wrapping_certificate=pki.receivers[bits].cert,
    )
    assert opened.key_algorithm == algorithm
    assert opened.header[5:12] == ("K0" + ("A" if algorithm == "AES_128" else "T") + "B00E")
    assert kcv.kcv_matches(kit.kcv_of(opened.key, algorithm), key["KeyCheckValue"])
    assert wrapped["KeyCheckValue"] == key["KeyCheckValue"]


def test_export_applies_key_block_headers(kit: Any, emu: Emulator, pki: Pki) -> None:
    key = kit.create_key(emu, "TDES_2KEY")
    nonce = os.urandom(8)
    params, wrapped = kit.export_tr34(
        emu,
        pki,
        key["KeyArn"],
        pki.receivers[2048],
        nonce,
        KeyBlockHeaders={
            "KeyModesOfUse": {"Encrypt": True, "Wrap": True},
            "KeyExportability": "NON_EXPORTABLE",
            "KeyVersion": "07",
        },
    )
    opened = tr34.open_key_block(
        tr34.key_block_from_hex(wrapped["KeyMaterial"]),
        pki.receivers[2048].key,
        signing_certificate=certs.certificate_from_apc(params["SigningKeyCertificate"]),
        nonce=nonce,
    )
    assert opened.header == "D9999K0TE07N0000"
    kit.refused(
        lambda: kit.export_tr34(
            emu,
            pki,
            key["KeyArn"],
            pki.receivers[2048],
            nonce,
            KeyBlockHeaders={"KeyModesOfUse": {"DeriveKey": True}},
        ),
        match="KeyModesOfUse",
    )


# --- what AWS refuses ------------------------------------------------------------------------


@pytest.fixture
def tr34_token(kit: Any, emu: Emulator) -> tuple[dict[str, Any], x509.Certificate]:
    params = kit.import_parameters(emu, "TR34_KEY_BLOCK", "RSA_2048")
    return params, certs.certificate_from_apc(params["WrappingKeyCertificate"])


def test_signature_by_another_key(
    kit: Any, emu: Emulator, pki: Pki, tr34_token: tuple[dict[str, Any], x509.Certificate]
) -> None:
    params, krd_cert = tr34_token
    nonce = os.urandom(8)
    block = kit.build_block(pki, krd_cert, "TDES_2KEY", nonce=nonce, signer=pki.other_signer)
    kit.refused(lambda: kit.tr34_import(emu, pki, params, block, nonce), match="integrity check")
    # The token is not spent by a refused import: the honest block still imports.
    kit.tr34_import(
        emu, pki, params, kit.build_block(pki, krd_cert, "TDES_2KEY", nonce=nonce), nonce
    )


def test_kdh_certificate_not_under_the_named_ca(
    kit: Any, emu: Emulator, pki: Pki, tr34_token: tuple[dict[str, Any], x509.Certificate]
) -> None:
    params, krd_cert = tr34_token
    _, other_ca = certs.new_rsa_sender_ca("RSA_2048", common_name="other root")
    other_arn = kit.import_root(emu.client, other_ca)
    nonce = os.urandom(8)
    block = kit.build_block(pki, krd_cert, "TDES_2KEY", nonce=nonce)
    kit.refused(
        lambda: kit.tr34_import(
            emu, pki, params, block, nonce, CertificateAuthorityPublicKeyIdentifier=other_arn
        ),
        match="SigningKeyCertificate",
    )


def test_expired_unknown_and_reused_tokens(
    kit: Any, emu: Emulator, pki: Pki, tr34_token: tuple[dict[str, Any], x509.Certificate]
) -> None:
    params, krd_cert = tr34_token
    nonce = os.urandom(8)
    block = kit.build_block(pki, krd_cert, "TDES_2KEY", nonce=nonce)
    account = emu.account()
    account.clock = lambda: time.time() + 31 * kit.DAY
    try:
        kit.refused(lambda: kit.tr34_import(emu, pki, params, block, nonce), match="has expired")
    finally:
        account.clock = time.time
    kit.refused(
        lambda: kit.tr34_import(
            emu, pki, params, block, nonce, ImportToken="import-token-aaaaaaaaaaaaaaaa"
        ),
        match="not a token of this account",
    )
    kit.tr34_import(emu, pki, params, block, nonce)
    kit.refused(lambda: kit.tr34_import(emu, pki, params, block, nonce), match="already been used")


def test_tokens_of_another_account(kit: Any, emu: Emulator, pki: Pki) -> None:
    other = start_test_emulator(EmulatorConfig(account_id="444455556666"))
    other_client = make_emulator_client(other.url)
    try:
        foreign = other_client.get_parameters_for_export(
            KeyMaterialType="TR34_KEY_BLOCK", SigningKeyAlgorithm="RSA_2048"
        )
        params = other_client.get_parameters_for_import(
            KeyMaterialType="TR34_KEY_BLOCK", WrappingKeyAlgorithm="RSA_2048"
        )
    finally:
        other_client.close()
        other.stop()
    krd_cert = certs.certificate_from_apc(params["WrappingKeyCertificate"])
    nonce = os.urandom(8)
    block = kit.build_block(pki, krd_cert, "TDES_2KEY", nonce=nonce)
    kit.refused(
        lambda: kit.tr34_import(emu, pki, params, block, nonce),
        match="not a token of this account and region",
    )
    key = kit.create_key(emu, "TDES_2KEY")
    kit.refused(
        lambda: kit.export_tr34(
            emu, pki, key["KeyArn"], pki.receivers[2048], nonce, ExportToken=foreign["ExportToken"]
        ),
        match="not a token of this account",
    )


def test_token_for_another_material_type(kit: Any, emu: Emulator, pki: Pki) -> None:
    params = kit.import_parameters(emu, "KEY_CRYPTOGRAM", "RSA_2048")
    krd_cert = certs.certificate_from_apc(params["WrappingKeyCertificate"])
    nonce = os.urandom(8)
    block = kit.build_block(pki, krd_cert, "TDES_2KEY", nonce=nonce)
    kit.refused(
        lambda: kit.tr34_import(emu, pki, params, block, nonce), match="issued for KEY_CRYPTOGRAM"
    )


def test_nonce_rules(
    kit: Any, emu: Emulator, pki: Pki, tr34_token: tuple[dict[str, Any], x509.Certificate]
) -> None:
    params, krd_cert = tr34_token
    nonce = os.urandom(8)
    block = kit.build_block(pki, krd_cert, "TDES_2KEY", nonce=nonce)
    kit.refused(
        lambda: kit.tr34_import(emu, pki, params, block, os.urandom(8)), match="integrity check"
    )
    kit.refused(lambda: kit.tr34_import(emu, pki, params, block, None), match="2-pass")
    one_pass = kit.build_block(pki, krd_cert, "TDES_2KEY", nonce=None)
    kit.refused(lambda: kit.tr34_import(emu, pki, params, one_pass, nonce), match="1-pass")


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_tampered_envelope_or_header(
    kit: Any, emu: Emulator, pki: Pki, tr34_token: tuple[dict[str, Any], x509.Certificate]
) -> None:
    params, krd_cert = tr34_token
    nonce = os.urandom(8)
    block = kit.build_block(pki, krd_cert, "TDES_2KEY", nonce=nonce)
    encrypted = tr34.parse_key_block(block).encrypted_key_block
    envelope_tampered = _flip(block, block.index(encrypted) + 3)
    kit.refused(
        lambda: kit.tr34_import(emu, pki, params, envelope_tampered, nonce), match="integrity check"
    )
    header_tampered = block.replace(b"D9999K0TB00E0000", b"D9999K0TB00N0000", 1)
    assert header_tampered != block
    kit.refused(
        lambda: kit.tr34_import(emu, pki, params, header_tampered, nonce), match="integrity check"
    )
    kit.refused(lambda: kit.tr34_import(emu, pki, params, block[:-4], nonce), match="Tr34KeyBlock")


def test_aes_128_under_rsa_2048(
    kit: Any,
    emu: Emulator,
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    tr34_token: tuple[dict[str, Any], x509.Certificate],
) -> None:
    params, krd_cert = tr34_token
    nonce = os.urandom(8)
    with monkeypatch.context() as patch:  # apckx itself refuses to build it
        patch.setattr(tr34, "check_tr34_strength", lambda *args: None)
        block = kit.build_block(pki, krd_cert, "AES_128", nonce=nonce)
    kit.refused(lambda: kit.tr34_import(emu, pki, params, block, nonce), match="RSA_3072")
    cryptogram_params = kit.import_parameters(emu, "KEY_CRYPTOGRAM", "RSA_2048")
    public_key = certs.certificate_from_apc(
        cryptogram_params["WrappingKeyCertificate"]
    ).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    kit.refused(
        lambda: emu.client.import_key(
            KeyMaterial={
                "KeyCryptogram": {
                    "Exportable": True,
                    "ImportToken": cryptogram_params["ImportToken"],
                    "KeyAttributes": {
                        "KeyAlgorithm": "AES_128",
                        "KeyClass": "SYMMETRIC_KEY",
                        "KeyModesOfUse": kit.MODES_B,
                        "KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY",
                    },
                    "WrappedKeyCryptogram": rsa_wrap.cryptogram_to_hex(
                        rsa_wrap.wrap_key(kit.KEYS["AES_128"], public_key)
                    ),
                    "WrappingSpec": "RSA_OAEP_SHA_256",
                }
            }
        ),
        match="RSA_3072",
    )
    key = kit.create_key(emu, "AES_128")
    kit.refused(
        lambda: kit.export_tr34(emu, pki, key["KeyArn"], pki.receivers[2048], nonce),
        match="RSA_3072",
    )
    kit.refused(
        lambda: emu.client.export_key(
            ExportKeyIdentifier=key["KeyArn"],
            KeyMaterial={
                "KeyCryptogram": {
                    "CertificateAuthorityPublicKeyIdentifier": pki.ca_arn,
                    "WrappingKeyCertificate": certs.certificate_to_apc(pki.receivers[2048].cert),
                }
            },
        ),
        match="RSA_3072",
    )


def test_krd_certificate_not_under_the_named_ca(kit: Any, emu: Emulator, pki: Pki) -> None:
    other_key, other_ca = certs.new_rsa_sender_ca("RSA_2048", common_name="stranger root")
    stranger = kit.Party(*certs.new_rsa_wrapping_leaf(other_key, other_ca, "RSA_2048"))
    key = kit.create_key(emu, "TDES_2KEY")
    kit.refused(
        lambda: kit.export_tr34(emu, pki, key["KeyArn"], stranger, os.urandom(8)),
        match="WrappingKeyCertificate",
    )
    kit.refused(
        lambda: emu.client.export_key(
            ExportKeyIdentifier=key["KeyArn"],
            KeyMaterial={
                "KeyCryptogram": {
                    "CertificateAuthorityPublicKeyIdentifier": pki.ca_arn,
                    "WrappingKeyCertificate": certs.certificate_to_apc(stranger.cert),
                }
            },
        ),
        match="WrappingKeyCertificate",
    )


def test_wrong_wrapping_spec_and_parameters(kit: Any, emu: Emulator) -> None:
    params = kit.import_parameters(emu, "KEY_CRYPTOGRAM", "RSA_2048")
    public_key = certs.certificate_from_apc(params["WrappingKeyCertificate"]).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    cryptogram = rsa_wrap.wrap_key(kit.KEYS["TDES_2KEY"], public_key, "RSA_OAEP_SHA_512")
    kit.refused(
        lambda: emu.client.import_key(
            KeyMaterial={
                "KeyCryptogram": {
                    "Exportable": True,
                    "ImportToken": params["ImportToken"],
                    "KeyAttributes": {
                        "KeyAlgorithm": "TDES_2KEY",
                        "KeyClass": "SYMMETRIC_KEY",
                        "KeyModesOfUse": kit.MODES_B,
                        "KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY",
                    },
                    "WrappedKeyCryptogram": rsa_wrap.cryptogram_to_hex(cryptogram),
                    "WrappingSpec": "RSA_OAEP_SHA_256",
                }
            }
        ),
        match="integrity check",
    )
    kit.refused(
        lambda: emu.client.get_parameters_for_import(
            KeyMaterialType="TR31_KEY_BLOCK", WrappingKeyAlgorithm="RSA_2048"
        ),
        match="needs no import parameters",
    )
    kit.refused(
        lambda: emu.client.get_parameters_for_import(
            KeyMaterialType="TR34_KEY_BLOCK", WrappingKeyAlgorithm="AES_128"
        ),
        match="RSA_2048, RSA_3072 or RSA_4096",
    )
    kit.refused(
        lambda: emu.client.get_parameters_for_export(
            KeyMaterialType="KEY_CRYPTOGRAM", SigningKeyAlgorithm="RSA_2048"
        ),
        match="TR34_KEY_BLOCK",
    )
