"""TranslateKeyMaterial over HTTP: an ECDH-wrapped TR-31 block in, TR-31 under a KEK out."""

from __future__ import annotations

import os

import pytest

from apckx.crypto import kcv, tr31

from .conftest import DataPlane

P0 = "TR31_P0_PIN_ENCRYPTION_KEY"


def test_the_key_comes_out_under_the_kek_with_its_header(data_plane: DataPlane) -> None:
    key = os.urandom(16)
    kek_arn = data_plane.ensure_kek()
    incoming = data_plane.ecdh_block(key, P0, "AES_128", "E", exportability="S")
    answer = data_plane.data.translate_key_material(
        IncomingKeyMaterial={"DiffieHellmanTr31KeyBlock": incoming},
        OutgoingKeyMaterial={"Tr31KeyBlock": {"WrappingKeyIdentifier": kek_arn}})
    wrapped = answer["WrappedKey"]
    assert wrapped["WrappedKeyMaterialFormat"] == "TR31_KEY_BLOCK"
    assert wrapped["KeyCheckValue"] == kcv.compute_kcv(key, "CMAC")
    header, material = tr31.unwrap_key_block(data_plane.kek, wrapped["WrappedKeyMaterial"],
                                             kbpk_algorithm="AES_256")
    assert material == key
    assert (header.version_id, header.key_usage, header.algorithm, header.mode_of_use,
            header.exportability) == ("D", "P0", "A", "E", "S")


def test_tdes_key_with_an_ansi_kcv(data_plane: DataPlane) -> None:
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    incoming = data_plane.ecdh_block(key, "TR31_C0_CARD_VERIFICATION_KEY", "TDES_2KEY", "C")
    answer = data_plane.data.translate_key_material(
        IncomingKeyMaterial={"DiffieHellmanTr31KeyBlock": incoming},
        OutgoingKeyMaterial={"Tr31KeyBlock": {"WrappingKeyIdentifier": data_plane.ensure_kek()}},
        KeyCheckValueAlgorithm="ANSI_X9_24")
    assert answer["WrappedKey"]["KeyCheckValue"] == "08D7B4"  # the UG examples' IMK KCV


def test_refusals(data_plane: DataPlane) -> None:
    kek_arn = data_plane.ensure_kek()
    incoming = data_plane.ecdh_block(os.urandom(16), P0, "AES_128", "B")
    tampered = dict(incoming, DerivationData={"SharedInformation": "01" * 16})
    errors = data_plane.data.exceptions
    with pytest.raises(errors.ValidationException, match="integrity check"):
        data_plane.data.translate_key_material(
            IncomingKeyMaterial={"DiffieHellmanTr31KeyBlock": tampered},
            OutgoingKeyMaterial={"Tr31KeyBlock": {"WrappingKeyIdentifier": kek_arn}})
    locked = data_plane.ecdh_block(os.urandom(16), P0, "AES_128", "B", exportability="N")
    with pytest.raises(errors.ValidationException, match="non-exportable"):
        data_plane.data.translate_key_material(
            IncomingKeyMaterial={"DiffieHellmanTr31KeyBlock": locked},
            OutgoingKeyMaterial={"Tr31KeyBlock": {"WrappingKeyIdentifier": kek_arn}})
    d0 = data_plane.import_key(os.urandom(16), "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY",
                               "AES_128", "B")
    with pytest.raises(errors.ValidationException, match="must be a TR31_K0"):
        data_plane.data.translate_key_material(
            IncomingKeyMaterial={"DiffieHellmanTr31KeyBlock": incoming},
            OutgoingKeyMaterial={"Tr31KeyBlock": {"WrappingKeyIdentifier": d0}})
    weak_kek = data_plane.import_key(os.urandom(16), "TR31_K0_KEY_ENCRYPTION_KEY",
                                     "TDES_2KEY", "B")
    with pytest.raises(errors.ValidationException, match="OutgoingKeyMaterial"):
        data_plane.data.translate_key_material(
            IncomingKeyMaterial={"DiffieHellmanTr31KeyBlock": incoming},
            OutgoingKeyMaterial={"Tr31KeyBlock": {"WrappingKeyIdentifier": weak_kek}})
