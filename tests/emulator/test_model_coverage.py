"""The emulator against botocore's service models, member by member.

Walks ``payment-cryptography-data`` (every operation, every union in every input) and the
control plane's key-exchange surface (ImportKey/ExportKey ``KeyMaterial``, the import/export
parameters, certificate signing requests) and checks, from the emulator's own tables and over
real HTTP through boto3, that each one is either served (a real success, verified by a round
trip where the model has one) or refused on purpose: a ``ValidationException`` that names the
member, listed with its reason in :data:`REFUSED`. A member that is neither fails; so does a
member listed in :data:`REFUSED` that has started to work (the table must stay true).
"""

from __future__ import annotations

import base64
import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.model import Shape
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from apckx.crypto import as2805, certs, ecdh, pin_block, tr31
from apckx.emulator import data as data_plane_package
from apckx.emulator import responses
from apckx.emulator.control.key_exchange import dispatch as key_exchange
from apckx.emulator.validation import data_service_model, service_model

from .data.conftest import DataPlane, start_data_plane

Answer = dict[str, Any]
Member = tuple[str, str, str]  # (operation, union path, member)

#: Members the emulator refuses on purpose, with the reason (the test checks the refusal is a
#: ValidationException whose message names the member).
REFUSED: dict[Member, str] = {
    ("GenerateCardValidationData", "GenerationAttributes", "CardHolderVerificationValue"):
        "no public specification of the CHVV computation",
    ("VerifyCardValidationData", "VerificationAttributes", "CardHolderVerificationValue"):
        "no public specification of the CHVV computation",
    ("VerifyCardValidationData", "VerificationAttributes", "DiscoverDynamicCardVerificationCode"):
        "no public specification of Discover dCVC",
}

PAN = "4111111111111111"
AMEX_PAN = "371449635398431"
PIN = "1234"
KEY_2TDES = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
MODES_PEK = {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}
MODES_GV = {"Generate": True, "Verify": True}
D0 = "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY"
P0 = "TR31_P0_PIN_ENCRYPTION_KEY"
KSN = "FFFF9876543210E00001"
DECIMALIZATION = "0123456789012345"


# --- walking the model ---------------------------------------------------------------------


def _unions(shape: Shape, path: str, seen: frozenset[str]) -> Iterator[tuple[str, Shape]]:
    if shape.type_name == "list":
        yield from _unions(shape.member, path, seen)
        return
    if shape.type_name != "structure" or shape.name in seen:
        return
    if shape.metadata.get("union"):
        yield path, shape
    for name, member in shape.members.items():
        yield from _unions(member, f"{path}.{name}" if path else name, seen | {shape.name})


def data_plane_members() -> list[Member]:
    """(operation, union path, member) for every union member in every data-plane input."""
    model = data_service_model()
    found: list[Member] = []
    for operation in model.operation_names:
        input_shape = model.operation_model(operation).input_shape
        for path, union in _unions(input_shape, "", frozenset()):
            found.extend((operation, path, member) for member in union.members)
    return found


MODEL_MEMBERS = data_plane_members()


# --- the tables ----------------------------------------------------------------------------


def test_every_data_plane_operation_is_served() -> None:
    missing = set(data_service_model().operation_names) - data_plane_package.IMPLEMENTED_OPERATIONS
    assert not missing, f"data-plane operations the emulator does not serve: {sorted(missing)}"


@pytest.mark.parametrize(("operation", "table"), [("ImportKey", key_exchange.IMPORTERS),
                                                  ("ExportKey", key_exchange.EXPORTERS)])
def test_every_key_material_member_is_handled(operation: str, table: dict[str, Any]) -> None:
    union = service_model().operation_model(operation).input_shape.members["KeyMaterial"]
    assert set(union.members) == set(table)


def test_key_exchange_operations_are_served() -> None:
    for operation in ("ImportKey", "ExportKey", "GetParametersForImport",
                      "GetParametersForExport", "GetCertificateSigningRequest",
                      "GetPublicKeyCertificate"):
        assert operation in responses.IMPLEMENTED_OPERATIONS, operation


def test_every_model_member_has_a_request_here() -> None:
    """The request table below covers the model exactly (a new botocore member fails here)."""
    assert set(MODEL_MEMBERS) == set(REQUESTS), {
        "in the model, no request here": sorted(set(MODEL_MEMBERS) - set(REQUESTS)),
        "here, not in the model": sorted(set(REQUESTS) - set(MODEL_MEMBERS)),
    }
    assert set(REFUSED) <= set(REQUESTS)


# --- keys ----------------------------------------------------------------------------------


@dataclass
class Kit:
    """One emulator and the keys the requests use (made on first use, cleartext known)."""

    plane: DataPlane
    cache: dict[str, str] = field(default_factory=dict)

    @property
    def data(self) -> Any:
        return self.plane.data

    def key(self, name: str, key: bytes, usage: str, algorithm: str,
            modes: dict[str, bool] | str) -> str:
        if name not in self.cache:
            self.cache[name] = self.plane.import_key(key, usage, algorithm, modes)
        return self.cache[name]

    def d0(self) -> str:
        return self.key("d0", bytes(range(16)), D0, "AES_128", "B")

    def pek(self) -> str:
        return self.key("pek", KEY_2TDES, P0, "TDES_2KEY", MODES_PEK)

    def aes_pek(self) -> str:
        return self.key("aes_pek", bytes(range(16)), P0, "AES_128", MODES_PEK)

    def bdk(self) -> str:
        return self.key("bdk", KEY_2TDES, "TR31_B0_BASE_DERIVATION_KEY", "TDES_2KEY",
                        {"DeriveKey": True})

    def imk(self, usage: str) -> str:
        return self.key(usage, KEY_2TDES, usage, "TDES_2KEY", {"DeriveKey": True})

    def rsa(self) -> str:
        if "rsa" not in self.cache:
            self.cache["rsa"] = self.plane.control.create_key(
                KeyAttributes={"KeyUsage": "TR31_D1_ASYMMETRIC_KEY_FOR_DATA_ENCRYPTION",
                               "KeyClass": "ASYMMETRIC_KEY_PAIR", "KeyAlgorithm": "RSA_2048",
                               "KeyModesOfUse": {"Encrypt": True, "Decrypt": True,
                                                 "Wrap": True, "Unwrap": True}},
                Exportable=False)["Key"]["KeyArn"]
        return self.cache["rsa"]

    def ecdh_key(self, derive_usage: str) -> tuple[str, dict[str, Any]]:
        """A K3 key pair deriving ``derive_usage`` keys, and the DiffieHellmanSymmetricKey
        member that derives one with it."""
        party = self.plane.ensure_ecdh()
        name = f"k3-{derive_usage}"
        if name not in self.cache:
            self.cache[name] = self.plane.control.create_key(
                KeyAttributes={"KeyUsage": "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT",
                               "KeyClass": "ASYMMETRIC_KEY_PAIR", "KeyAlgorithm": "ECC_NIST_P521",
                               "KeyModesOfUse": {"DeriveKey": True}},
                Exportable=True, DeriveKeyUsage=derive_usage)["Key"]["KeyArn"]
        wrapped = {"WrappedKeyMaterial": {"DiffieHellmanSymmetricKey": {
            "CertificateAuthorityPublicKeyIdentifier": party["root"],
            "PublicKeyCertificate": certs.certificate_to_apc(party["leaf_cert"]),
            "KeyAlgorithm": "AES_256" if derive_usage == D0 else "TDES_2KEY",
            "KeyDerivationFunction": "NIST_SP800", "KeyDerivationHashAlgorithm": "SHA_256",
            "SharedInformation": ecdh.new_shared_info().hex()}}}
        return self.cache[name], wrapped

    def tr31_wrapped(self, key: bytes, usage: str, algorithm: str,
                     modes: dict[str, bool] | str) -> dict[str, Any]:
        return {"WrappedKeyMaterial": {"Tr31KeyBlock": self.plane.wrap(key, usage, algorithm,
                                                                        modes)}}


@pytest.fixture(scope="module")
def kit() -> Iterator[Kit]:
    plane = start_data_plane()
    try:
        yield Kit(plane)
    finally:
        plane.control.close()
        plane.data.close()
        plane.emulator.stop()


def iso0(pin: str = PIN, pan: str = PAN, key: bytes = KEY_2TDES) -> str:
    return pin_block.encrypt_pin_block(key, pin, "ISO_FORMAT_0", pan=pan).hex().upper()


# --- one request per member ----------------------------------------------------------------

Request = Callable[[Kit], Answer]
REQUESTS: dict[Member, Request] = {}


def request(*members: Member) -> Callable[[Request], Request]:
    def register(fn: Request) -> Request:
        for member in members:
            assert member not in REQUESTS, member
            REQUESTS[member] = fn
        return fn
    return register


def _round_trip(kit: Kit, key: str, attributes: dict[str, Any], plaintext: str,
                **extra: Any) -> Answer:
    out = kit.data.encrypt_data(KeyIdentifier=key, PlainText=plaintext,
                                EncryptionAttributes=attributes, **extra)
    back = kit.data.decrypt_data(KeyIdentifier=key, CipherText=out["CipherText"],
                                 DecryptionAttributes=attributes, **extra)
    if "Asymmetric" not in attributes:
        assert out["CipherText"] != plaintext.upper()
    assert back["PlainText"] == plaintext.upper()
    return dict(back)


@request(("EncryptData", "EncryptionAttributes", "Symmetric"),
         ("DecryptData", "DecryptionAttributes", "Symmetric"))
def _symmetric(kit: Kit) -> Answer:
    return _round_trip(kit, kit.d0(), {"Symmetric": {"Mode": "CBC",
                                                     "InitializationVector": "00" * 16}},
                       "11" * 16)


@request(("EncryptData", "EncryptionAttributes", "Asymmetric"),
         ("DecryptData", "DecryptionAttributes", "Asymmetric"))
def _asymmetric(kit: Kit) -> Answer:
    return _round_trip(kit, kit.rsa(), {"Asymmetric": {"PaddingType": "OAEP_SHA256"}}, "22" * 16)


@request(("EncryptData", "EncryptionAttributes", "Dukpt"),
         ("DecryptData", "DecryptionAttributes", "Dukpt"))
def _dukpt(kit: Kit) -> Answer:
    return _round_trip(kit, kit.bdk(), {"Dukpt": {"KeySerialNumber": KSN, "Mode": "CBC",
                                                  "DukptKeyVariant": "BIDIRECTIONAL"}},
                       "33" * 16)


@request(("EncryptData", "EncryptionAttributes", "Emv"),
         ("DecryptData", "DecryptionAttributes", "Emv"))
def _emv(kit: Kit) -> Answer:
    attributes = {"Emv": {"MajorKeyDerivationMode": "EMV_OPTION_A", "PrimaryAccountNumber": PAN,
                          "PanSequenceNumber": "01", "SessionDerivationData": "000B000000000000",
                          "Mode": "CBC"}}
    return _round_trip(kit, kit.imk("TR31_E1_EMV_MKEY_CONFIDENTIALITY"), attributes, "44" * 16)


_SYMMETRIC_CBC = {"Symmetric": {"Mode": "CBC", "InitializationVector": "00" * 16}}


@request(("EncryptData", "WrappedKey.WrappedKeyMaterial", "Tr31KeyBlock"),
         ("DecryptData", "WrappedKey.WrappedKeyMaterial", "Tr31KeyBlock"))
def _wrapped_tr31(kit: Kit) -> Answer:
    wrapped = kit.tr31_wrapped(os.urandom(16), D0, "AES_128", "B")
    return _round_trip(kit, kit.plane.ensure_kek(), _SYMMETRIC_CBC, "55" * 16,
                       WrappedKey=wrapped)


@request(("EncryptData", "WrappedKey.WrappedKeyMaterial", "DiffieHellmanSymmetricKey"),
         ("DecryptData", "WrappedKey.WrappedKeyMaterial", "DiffieHellmanSymmetricKey"))
def _wrapped_ecdh(kit: Kit) -> Answer:
    k3, wrapped = kit.ecdh_key(D0)
    return _round_trip(kit, k3, _SYMMETRIC_CBC, "66" * 16, WrappedKey=wrapped)


_REENCRYPT_SIDES: dict[str, Callable[[Kit], tuple[str, dict[str, Any]]]] = {
    "Symmetric": lambda kit: (kit.d0(), _SYMMETRIC_CBC),
    "Asymmetric": lambda kit: (kit.rsa(), {"Asymmetric": {"PaddingType": "OAEP_SHA256"}}),
    "Dukpt": lambda kit: (kit.bdk(), {"Dukpt": {"KeySerialNumber": KSN, "Mode": "CBC",
                                                "DukptKeyVariant": "BIDIRECTIONAL"}}),
}


def _reencrypt(kit: Kit, incoming: str, outgoing: str, **extra: Any) -> Answer:
    in_key, in_attrs = _REENCRYPT_SIDES[incoming](kit)
    out_key, out_attrs = _REENCRYPT_SIDES[outgoing](kit)
    plaintext = "77" * 16
    cipher = kit.data.encrypt_data(KeyIdentifier=in_key, PlainText=plaintext,
                                   EncryptionAttributes=in_attrs)["CipherText"]
    out = kit.data.re_encrypt_data(
        IncomingKeyIdentifier=in_key, OutgoingKeyIdentifier=out_key, CipherText=cipher,
        IncomingEncryptionAttributes=in_attrs, OutgoingEncryptionAttributes=out_attrs, **extra)
    back = kit.data.decrypt_data(KeyIdentifier=out_key, CipherText=out["CipherText"],
                                 DecryptionAttributes=out_attrs)
    assert back["PlainText"] == plaintext.upper()
    return dict(out)


for _side in _REENCRYPT_SIDES:
    request(("ReEncryptData", "IncomingEncryptionAttributes", _side))(
        functools.partial(_reencrypt, incoming=_side, outgoing="Symmetric"))
    request(("ReEncryptData", "OutgoingEncryptionAttributes", _side))(
        functools.partial(_reencrypt, incoming="Symmetric", outgoing=_side))


@request(("ReEncryptData", "IncomingWrappedKey.WrappedKeyMaterial", "Tr31KeyBlock"),
         ("ReEncryptData", "OutgoingWrappedKey.WrappedKeyMaterial", "Tr31KeyBlock"))
def _reencrypt_wrapped_tr31(kit: Kit) -> Answer:
    key = os.urandom(16)
    kek = kit.plane.ensure_kek()
    wrapped = kit.tr31_wrapped(key, D0, "AES_128", "B")
    cipher = kit.data.encrypt_data(KeyIdentifier=kek, PlainText="88" * 16,
                                   EncryptionAttributes=_SYMMETRIC_CBC,
                                   WrappedKey=wrapped)["CipherText"]
    out = kit.data.re_encrypt_data(
        IncomingKeyIdentifier=kek, OutgoingKeyIdentifier=kek, CipherText=cipher,
        IncomingEncryptionAttributes=_SYMMETRIC_CBC, OutgoingEncryptionAttributes=_SYMMETRIC_CBC,
        IncomingWrappedKey=wrapped, OutgoingWrappedKey=kit.tr31_wrapped(key, D0, "AES_128", "B"))
    assert out["CipherText"] == cipher
    return dict(out)


@request(("ReEncryptData", "IncomingWrappedKey.WrappedKeyMaterial", "DiffieHellmanSymmetricKey"),
         ("ReEncryptData", "OutgoingWrappedKey.WrappedKeyMaterial", "DiffieHellmanSymmetricKey"))
def _reencrypt_wrapped_ecdh(kit: Kit) -> Answer:
    k3, wrapped = kit.ecdh_key(D0)
    cipher = kit.data.encrypt_data(KeyIdentifier=k3, PlainText="99" * 16,
                                   EncryptionAttributes=_SYMMETRIC_CBC,
                                   WrappedKey=wrapped)["CipherText"]
    out = kit.data.re_encrypt_data(
        IncomingKeyIdentifier=k3, OutgoingKeyIdentifier=k3, CipherText=cipher,
        IncomingEncryptionAttributes=_SYMMETRIC_CBC, OutgoingEncryptionAttributes=_SYMMETRIC_CBC,
        IncomingWrappedKey=wrapped, OutgoingWrappedKey=wrapped)
    assert out["CipherText"] == cipher
    return dict(out)


@request(("TranslateKeyMaterial", "IncomingKeyMaterial", "DiffieHellmanTr31KeyBlock"),
         ("TranslateKeyMaterial", "IncomingKeyMaterial.DiffieHellmanTr31KeyBlock.DerivationData",
          "SharedInformation"),
         ("TranslateKeyMaterial", "OutgoingKeyMaterial", "Tr31KeyBlock"))
def _translate_key_material(kit: Kit) -> Answer:
    key = os.urandom(16)
    kek = kit.plane.ensure_kek()
    out = kit.data.translate_key_material(
        IncomingKeyMaterial={"DiffieHellmanTr31KeyBlock": kit.plane.ecdh_block(
            key, D0, "AES_128")},
        OutgoingKeyMaterial={"Tr31KeyBlock": {"WrappingKeyIdentifier": kek}})
    _, clear = tr31.unwrap_key_block(kit.plane.kek, out["WrappedKey"]["WrappedKeyMaterial"])
    assert clear == key
    return dict(out)


# MACs: every MacAlgorithm value (the Algorithm member) and every other member.
_MAC_KEYS: dict[str, tuple[str, str, int]] = {
    "ISO9797_ALGORITHM1": ("TR31_M1_ISO_9797_1_MAC_KEY", "TDES_2KEY", 16),
    "ISO9797_ALGORITHM3": ("TR31_M3_ISO_9797_3_MAC_KEY", "TDES_2KEY", 16),
    "CMAC": ("TR31_M6_ISO_9797_5_CMAC_KEY", "AES_128", 16),
    "HMAC": ("TR31_M7_HMAC_KEY", "HMAC_SHA256", 32),
    "HMAC_SHA224": ("TR31_M7_HMAC_KEY", "HMAC_SHA224", 28),
    "HMAC_SHA256": ("TR31_M7_HMAC_KEY", "HMAC_SHA256", 32),
    "HMAC_SHA384": ("TR31_M7_HMAC_KEY", "HMAC_SHA384", 48),
    "HMAC_SHA512": ("TR31_M7_HMAC_KEY", "HMAC_SHA512", 64),
    "AS2805_4_1": ("TR31_M0_ISO_16609_MAC_KEY", "TDES_2KEY", 16),
}


def _mac_round_trip(kit: Kit, key: str, attributes: dict[str, Any]) -> Answer:
    message = "0102030405060708" * 4
    mac = kit.data.generate_mac(KeyIdentifier=key, MessageData=message,
                                GenerationAttributes=attributes)["Mac"]
    out = kit.data.verify_mac(KeyIdentifier=key, MessageData=message, Mac=mac,
                              VerificationAttributes=attributes)
    wrong = ("0" if mac[0] != "0" else "1") + mac[1:]
    with pytest.raises(kit.data.exceptions.VerificationFailedException):
        kit.data.verify_mac(KeyIdentifier=key, MessageData=message, Mac=wrong,
                            VerificationAttributes=attributes)
    return dict(out)


@request(("GenerateMac", "GenerationAttributes", "Algorithm"),
         ("VerifyMac", "VerificationAttributes", "Algorithm"))
def _mac_algorithms(kit: Kit) -> Answer:
    """Every MacAlgorithm value, one key each."""
    algorithms = service_enum("payment-cryptography-data", "MacAlgorithm")
    assert set(algorithms) == set(_MAC_KEYS)
    for algorithm, (usage, key_algorithm, size) in _MAC_KEYS.items():
        key = kit.key(f"mac-{algorithm}", os.urandom(size), usage, key_algorithm, "C")
        _mac_round_trip(kit, key, {"Algorithm": algorithm})
    return {}


@request(("GenerateMac", "GenerationAttributes", "EmvMac"),
         ("VerifyMac", "VerificationAttributes", "EmvMac"),
         ("GenerateMac", "GenerationAttributes.EmvMac.SessionKeyDerivationValue",
          "ApplicationTransactionCounter"),
         ("VerifyMac", "VerificationAttributes.EmvMac.SessionKeyDerivationValue",
          "ApplicationTransactionCounter"))
def _emv_mac_atc(kit: Kit) -> Answer:
    return _mac_round_trip(kit, kit.imk("TR31_E2_EMV_MKEY_INTEGRITY"), {"EmvMac": {
        "MajorKeyDerivationMode": "EMV_OPTION_A", "PrimaryAccountNumber": PAN,
        "PanSequenceNumber": "01", "SessionKeyDerivationMode": "EMV_COMMON_SESSION_KEY",
        "SessionKeyDerivationValue": {"ApplicationTransactionCounter": "000B"}}})


@request(("GenerateMac", "GenerationAttributes.EmvMac.SessionKeyDerivationValue",
          "ApplicationCryptogram"),
         ("VerifyMac", "VerificationAttributes.EmvMac.SessionKeyDerivationValue",
          "ApplicationCryptogram"))
def _emv_mac_ac(kit: Kit) -> Answer:
    return _mac_round_trip(kit, kit.imk("TR31_E2_EMV_MKEY_INTEGRITY"), {"EmvMac": {
        "MajorKeyDerivationMode": "EMV_OPTION_A", "PrimaryAccountNumber": PAN,
        "PanSequenceNumber": "01", "SessionKeyDerivationMode": "MASTERCARD_SESSION_KEY",
        "SessionKeyDerivationValue": {"ApplicationCryptogram": "0123456789ABCDEF"}}})


def _dukpt_mac_round_trip(kit: Kit, member: str) -> Answer:
    return _mac_round_trip(kit, kit.bdk(), {member: {"KeySerialNumber": KSN,
                                                     "DukptKeyVariant": "REQUEST"}})


for _dukpt_mac in ("DukptIso9797Algorithm1", "DukptIso9797Algorithm3", "DukptCmac"):
    request(("GenerateMac", "GenerationAttributes", _dukpt_mac),
            ("VerifyMac", "VerificationAttributes", _dukpt_mac))(
        functools.partial(_dukpt_mac_round_trip, member=_dukpt_mac))


# Card validation: generate, then verify what was generated.
_CARD_MEMBERS: dict[str, tuple[Callable[[Kit], str], dict[str, str]]] = {
    "CardVerificationValue1": (
        lambda kit: kit.key("cvk", KEY_2TDES, "TR31_C0_CARD_VERIFICATION_KEY", "TDES_2KEY",
                            MODES_GV),
        {"CardExpiryDate": "1228", "ServiceCode": "101"}),
    "CardVerificationValue2": (
        lambda kit: kit.key("cvk", KEY_2TDES, "TR31_C0_CARD_VERIFICATION_KEY", "TDES_2KEY",
                            MODES_GV),
        {"CardExpiryDate": "1228"}),
    "AmexCardSecurityCodeVersion1": (
        lambda kit: kit.key("cvk", KEY_2TDES, "TR31_C0_CARD_VERIFICATION_KEY", "TDES_2KEY",
                            MODES_GV),
        {"CardExpiryDate": "1228"}),
    "AmexCardSecurityCodeVersion2": (
        lambda kit: kit.key("cvk", KEY_2TDES, "TR31_C0_CARD_VERIFICATION_KEY", "TDES_2KEY",
                            MODES_GV),
        {"CardExpiryDate": "1228", "ServiceCode": "101"}),
    "CardHolderVerificationValue": (
        lambda kit: kit.imk("TR31_E6_EMV_MKEY_OTHER"),
        {"UnpredictableNumber": "1234ABCD", "PanSequenceNumber": "01",
         "ApplicationTransactionCounter": "000B"}),
    "DynamicCardVerificationCode": (
        lambda kit: kit.imk("TR31_E4_EMV_MKEY_DYNAMIC_NUMBERS"),
        {"UnpredictableNumber": "00000899", "PanSequenceNumber": "00",
         "ApplicationTransactionCounter": "005E",
         "TrackData": "5413339000001513D25122010000000000000F"}),
    "DynamicCardVerificationValue": (
        lambda kit: kit.imk("TR31_E6_EMV_MKEY_OTHER"),
        {"PanSequenceNumber": "00", "CardExpiryDate": "1228", "ServiceCode": "101",
         "ApplicationTransactionCounter": "000B"}),
}


def _card_pan(member: str) -> str:
    return AMEX_PAN if member.startswith("Amex") else PAN


def _card_generate(kit: Kit, member: str) -> Answer:
    key, attrs = _CARD_MEMBERS[member]
    out: Answer = kit.data.generate_card_validation_data(
        KeyIdentifier=key(kit), PrimaryAccountNumber=_card_pan(member),
        GenerationAttributes={member: attrs})
    assert out["ValidationData"].isdigit()
    return out


def _card_verify(kit: Kit, member: str) -> Answer:
    key, attrs = _CARD_MEMBERS[member]
    value = _card_generate(kit, member)["ValidationData"]
    out: Answer = kit.data.verify_card_validation_data(
        KeyIdentifier=key(kit), PrimaryAccountNumber=_card_pan(member), ValidationData=value,
        VerificationAttributes={member: attrs})
    wrong = str((int(value[0]) + 1) % 10) + value[1:]
    with pytest.raises(kit.data.exceptions.VerificationFailedException):
        kit.data.verify_card_validation_data(
            KeyIdentifier=key(kit), PrimaryAccountNumber=_card_pan(member), ValidationData=wrong,
            VerificationAttributes={member: attrs})
    return out


for _card in _CARD_MEMBERS:
    if _card != "CardHolderVerificationValue":
        request(("GenerateCardValidationData", "GenerationAttributes", _card))(
            functools.partial(_card_generate, member=_card))
        request(("VerifyCardValidationData", "VerificationAttributes", _card))(
            functools.partial(_card_verify, member=_card))


@request(("GenerateCardValidationData", "GenerationAttributes", "CardHolderVerificationValue"))
def _chvv_generate(kit: Kit) -> Answer:
    _, attrs = _CARD_MEMBERS["CardHolderVerificationValue"]
    out: Answer = kit.data.generate_card_validation_data(
        KeyIdentifier=kit.imk("TR31_E6_EMV_MKEY_OTHER"), PrimaryAccountNumber=PAN,
        GenerationAttributes={"CardHolderVerificationValue": attrs})
    return out


@request(("VerifyCardValidationData", "VerificationAttributes", "CardHolderVerificationValue"))
def _chvv_verify(kit: Kit) -> Answer:
    _, attrs = _CARD_MEMBERS["CardHolderVerificationValue"]
    out: Answer = kit.data.verify_card_validation_data(
        KeyIdentifier=kit.imk("TR31_E6_EMV_MKEY_OTHER"), PrimaryAccountNumber=PAN,
        ValidationData="123", VerificationAttributes={"CardHolderVerificationValue": attrs})
    return out


@request(("VerifyCardValidationData", "VerificationAttributes",
          "DiscoverDynamicCardVerificationCode"))
def _discover_dcvc(kit: Kit) -> Answer:
    out: Answer = kit.data.verify_card_validation_data(
        KeyIdentifier=kit.imk("TR31_E6_EMV_MKEY_OTHER"), PrimaryAccountNumber=PAN,
        ValidationData="123", VerificationAttributes={"DiscoverDynamicCardVerificationCode": {
            "CardExpiryDate": "1228", "UnpredictableNumber": "1234ABCD",
            "ApplicationTransactionCounter": "000B"}})
    return out


# PINs.
def _visa_pvk(kit: Kit) -> str:
    return kit.key("pvk-visa", KEY_2TDES, "TR31_V2_VISA_PIN_VERIFICATION_KEY", "TDES_2KEY",
                   MODES_GV)


def _ibm_pvk(kit: Kit) -> str:
    return kit.key("pvk-ibm", KEY_2TDES, "TR31_V1_IBM3624_PIN_VERIFICATION_KEY", "TDES_2KEY",
                   MODES_GV)


_IBM = {"DecimalizationTable": DECIMALIZATION, "PinValidationDataPadCharacter": "F",
        "PinValidationData": PAN[-12:-1]}


def _generate_pin(kit: Kit, pvk: str, attributes: dict[str, Any], **extra: Any) -> Answer:
    kwargs: dict[str, Any] = {"EncryptionKeyIdentifier": kit.pek()}
    kwargs.update(extra)
    out: Answer = kit.data.generate_pin_data(
        GenerationKeyIdentifier=pvk, GenerationAttributes=attributes, PrimaryAccountNumber=PAN,
        PinBlockFormat="ISO_FORMAT_0", PinDataLength=4, **kwargs)
    assert len(out["EncryptedPinBlock"]) == 16
    return out


@request(("GeneratePinData", "GenerationAttributes", "VisaPin"))
def _visa_pin(kit: Kit) -> Answer:
    return _generate_pin(kit, _visa_pvk(kit), {"VisaPin": {"PinVerificationKeyIndex": 1}})


@request(("GeneratePinData", "GenerationAttributes", "VisaPinVerificationValue"),
         ("VerifyPinData", "VerificationAttributes", "VisaPin"))
def _visa_pvv(kit: Kit) -> Answer:
    out = _generate_pin(kit, _visa_pvk(kit), {"VisaPinVerificationValue": {
        "EncryptedPinBlock": iso0(), "PinVerificationKeyIndex": 1}})
    pvv = out["PinData"]["VerificationValue"]
    verify = {"VisaPin": {"PinVerificationKeyIndex": 1, "VerificationValue": pvv}}
    kit.data.verify_pin_data(
        VerificationKeyIdentifier=_visa_pvk(kit), EncryptionKeyIdentifier=kit.pek(),
        VerificationAttributes=verify, EncryptedPinBlock=iso0(), PrimaryAccountNumber=PAN,
        PinBlockFormat="ISO_FORMAT_0")
    with pytest.raises(kit.data.exceptions.VerificationFailedException):
        kit.data.verify_pin_data(
            VerificationKeyIdentifier=_visa_pvk(kit), EncryptionKeyIdentifier=kit.pek(),
            VerificationAttributes=verify, EncryptedPinBlock=iso0("9876"),
            PrimaryAccountNumber=PAN, PinBlockFormat="ISO_FORMAT_0")
    return out


@request(("GeneratePinData", "GenerationAttributes", "Ibm3624PinOffset"),
         ("VerifyPinData", "VerificationAttributes", "Ibm3624Pin"))
def _ibm_offset(kit: Kit) -> Answer:
    out = _generate_pin(kit, _ibm_pvk(kit), {"Ibm3624PinOffset": {
        **_IBM, "EncryptedPinBlock": iso0()}})
    offset = out["PinData"]["PinOffset"]
    kit.data.verify_pin_data(
        VerificationKeyIdentifier=_ibm_pvk(kit), EncryptionKeyIdentifier=kit.pek(),
        VerificationAttributes={"Ibm3624Pin": {**_IBM, "PinOffset": offset}},
        EncryptedPinBlock=iso0(), PrimaryAccountNumber=PAN, PinBlockFormat="ISO_FORMAT_0")
    return out


@request(("GeneratePinData", "GenerationAttributes", "Ibm3624NaturalPin"))
def _ibm_natural(kit: Kit) -> Answer:
    return _generate_pin(kit, _ibm_pvk(kit), {"Ibm3624NaturalPin": _IBM})


@request(("GeneratePinData", "GenerationAttributes", "Ibm3624RandomPin"))
def _ibm_random(kit: Kit) -> Answer:
    return _generate_pin(kit, _ibm_pvk(kit), {"Ibm3624RandomPin": _IBM})


@request(("GeneratePinData", "GenerationAttributes", "Ibm3624PinFromOffset"))
def _ibm_from_offset(kit: Kit) -> Answer:
    return _generate_pin(kit, _ibm_pvk(kit), {"Ibm3624PinFromOffset": {
        **_IBM, "PinOffset": "0000"}})


@request(("GeneratePinData", "EncryptionWrappedKey.WrappedKeyMaterial", "Tr31KeyBlock"))
def _generate_pin_wrapped_tr31(kit: Kit) -> Answer:
    return _generate_pin(kit, _visa_pvk(kit), {"VisaPin": {"PinVerificationKeyIndex": 1}},
                         EncryptionKeyIdentifier=kit.plane.ensure_kek(),
                         EncryptionWrappedKey=kit.tr31_wrapped(KEY_2TDES, P0, "TDES_2KEY",
                                                               MODES_PEK))


@request(("GeneratePinData", "EncryptionWrappedKey.WrappedKeyMaterial",
          "DiffieHellmanSymmetricKey"))
def _generate_pin_wrapped_ecdh(kit: Kit) -> Answer:
    k3, wrapped = kit.ecdh_key(P0)
    return _generate_pin(kit, _visa_pvk(kit), {"VisaPin": {"PinVerificationKeyIndex": 1}},
                         EncryptionKeyIdentifier=k3, EncryptionWrappedKey=wrapped)


def _verify_visa_with(kit: Kit, pek: str, block: str, **extra: Any) -> Answer:
    pvv = _generate_pin(kit, _visa_pvk(kit), {"VisaPinVerificationValue": {
        "EncryptedPinBlock": iso0(), "PinVerificationKeyIndex": 1}})["PinData"][
        "VerificationValue"]
    out: Answer = kit.data.verify_pin_data(
        VerificationKeyIdentifier=_visa_pvk(kit), EncryptionKeyIdentifier=pek,
        VerificationAttributes={"VisaPin": {"PinVerificationKeyIndex": 1,
                                            "VerificationValue": pvv}},
        EncryptedPinBlock=block, PrimaryAccountNumber=PAN, PinBlockFormat="ISO_FORMAT_0", **extra)
    return out


@request(("VerifyPinData", "EncryptionWrappedKey.WrappedKeyMaterial", "Tr31KeyBlock"))
def _verify_pin_wrapped_tr31(kit: Kit) -> Answer:
    other = os.urandom(16)
    return _verify_visa_with(kit, kit.plane.ensure_kek(), iso0(key=other),
                             EncryptionWrappedKey=kit.tr31_wrapped(other, P0, "TDES_2KEY",
                                                                   MODES_PEK))


@request(("VerifyPinData", "EncryptionWrappedKey.WrappedKeyMaterial",
          "DiffieHellmanSymmetricKey"))
def _verify_pin_wrapped_ecdh(kit: Kit) -> Answer:
    k3, wrapped = kit.ecdh_key(P0)
    block = _generate_pin(kit, _ibm_pvk(kit), {"Ibm3624PinFromOffset": {
        **_IBM, "PinOffset": "0000"}}, EncryptionKeyIdentifier=k3,
        EncryptionWrappedKey=wrapped)  # a PIN block under the derived key
    natural = _generate_pin(kit, _ibm_pvk(kit), {"Ibm3624PinFromOffset": {
        **_IBM, "PinOffset": "0000"}})
    assert natural["EncryptedPinBlock"] != block["EncryptedPinBlock"]
    out: Answer = kit.data.verify_pin_data(
        VerificationKeyIdentifier=_ibm_pvk(kit), EncryptionKeyIdentifier=k3,
        VerificationAttributes={"Ibm3624Pin": {**_IBM, "PinOffset": "0000"}},
        EncryptedPinBlock=block["EncryptedPinBlock"], PrimaryAccountNumber=PAN,
        PinBlockFormat="ISO_FORMAT_0", EncryptionWrappedKey=wrapped)
    return out


_TRANSLATION: dict[str, dict[str, str]] = {
    "IsoFormat0": {"PrimaryAccountNumber": PAN}, "IsoFormat1": {},
    "IsoFormat3": {"PrimaryAccountNumber": PAN}, "IsoFormat4": {"PrimaryAccountNumber": PAN},
    "As2805Format0": {"PrimaryAccountNumber": PAN},
}


def _pek_for(kit: Kit, member: str) -> tuple[str, bytes, bool]:
    if member == "IsoFormat4":
        return kit.aes_pek(), bytes(range(16)), True
    return kit.pek(), KEY_2TDES, False


def _translate(kit: Kit, incoming: str, outgoing: str) -> Answer:
    in_key, in_clear, in_aes = _pek_for(kit, incoming)
    out_key, out_clear, out_aes = _pek_for(kit, outgoing)
    block = pin_block.encrypt_pin_block(in_clear, PIN, pin_block.normalize_format(incoming),
                                        pan=PAN, aes=in_aes).hex().upper()
    out: Answer = kit.data.translate_pin_data(
        IncomingKeyIdentifier=in_key, OutgoingKeyIdentifier=out_key, EncryptedPinBlock=block,
        IncomingTranslationAttributes={incoming: _TRANSLATION[incoming]},
        OutgoingTranslationAttributes={outgoing: _TRANSLATION[outgoing]})
    pin = pin_block.decrypt_pin_block(out_clear, bytes.fromhex(out["PinBlock"]),
                                      pin_block.normalize_format(outgoing), pan=PAN,
                                      aes=out_aes)
    assert pin == PIN
    return out


for _fmt in _TRANSLATION:
    request(("TranslatePinData", "IncomingTranslationAttributes", _fmt))(
        functools.partial(_translate, incoming=_fmt, outgoing="IsoFormat0"))
    request(("TranslatePinData", "OutgoingTranslationAttributes", _fmt))(
        functools.partial(_translate, incoming="IsoFormat0", outgoing=_fmt))


@request(("TranslatePinData", "IncomingWrappedKey.WrappedKeyMaterial", "Tr31KeyBlock"),
         ("TranslatePinData", "OutgoingWrappedKey.WrappedKeyMaterial", "Tr31KeyBlock"))
def _translate_wrapped_tr31(kit: Kit) -> Answer:
    a, b = os.urandom(16), os.urandom(16)
    kek = kit.plane.ensure_kek()
    out: Answer = kit.data.translate_pin_data(
        IncomingKeyIdentifier=kek, OutgoingKeyIdentifier=kek, EncryptedPinBlock=iso0(key=a),
        IncomingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": PAN}},
        OutgoingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": PAN}},
        IncomingWrappedKey=kit.tr31_wrapped(a, P0, "TDES_2KEY", MODES_PEK),
        OutgoingWrappedKey=kit.tr31_wrapped(b, P0, "TDES_2KEY", MODES_PEK))
    assert pin_block.decrypt_pin_block(b, bytes.fromhex(out["PinBlock"]), "ISO_FORMAT_0",
                                       pan=PAN) == PIN
    return out


@request(("TranslatePinData", "IncomingWrappedKey.WrappedKeyMaterial",
          "DiffieHellmanSymmetricKey"),
         ("TranslatePinData", "OutgoingWrappedKey.WrappedKeyMaterial",
          "DiffieHellmanSymmetricKey"))
def _translate_wrapped_ecdh(kit: Kit) -> Answer:
    k3, wrapped = kit.ecdh_key(P0)
    there: Answer = kit.data.translate_pin_data(
        IncomingKeyIdentifier=kit.pek(), OutgoingKeyIdentifier=k3, EncryptedPinBlock=iso0(),
        IncomingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": PAN}},
        OutgoingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": PAN}},
        OutgoingWrappedKey=wrapped)
    back: Answer = kit.data.translate_pin_data(
        IncomingKeyIdentifier=k3, OutgoingKeyIdentifier=kit.pek(),
        EncryptedPinBlock=there["PinBlock"],
        IncomingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": PAN}},
        OutgoingTranslationAttributes={"IsoFormat0": {"PrimaryAccountNumber": PAN}},
        IncomingWrappedKey=wrapped)
    assert pin_block.decrypt_pin_block(KEY_2TDES, bytes.fromhex(back["PinBlock"]),
                                       "ISO_FORMAT_0", pan=PAN) == PIN
    return back


# EMV cryptograms: generate an ARQC (GenerateAuthRequestCryptogram), verify it.
_SESSION: dict[str, dict[str, str]] = {
    "EmvCommon": {"ApplicationTransactionCounter": "000B"},
    "Mastercard": {"ApplicationTransactionCounter": "000B", "UnpredictableNumber": "1234ABCD"},
    "Emv2000": {"ApplicationTransactionCounter": "000B"},
    "Amex": {},
    "Visa": {},
    "UnionPay": {"ApplicationTransactionCounter": "000B"},
}
_TRANSACTION = "000000001000000000000000084000000000000840190101" + "00" * 8


def _arqc(kit: Kit, derivation: str) -> tuple[str, dict[str, Any]]:
    attrs = {derivation: {"PrimaryAccountNumber": PAN, "PanSequenceNumber": "00",
                          **_SESSION[derivation]}}
    out = kit.data.generate_auth_request_cryptogram(
        KeyIdentifier=kit.imk("TR31_E0_EMV_MKEY_APP_CRYPTOGRAMS"), TransactionData=_TRANSACTION,
        MajorKeyDerivationMode="EMV_OPTION_A", SessionKeyDerivationAttributes=attrs)
    assert len(out["AuthRequestCryptogram"]) == 16
    return out["AuthRequestCryptogram"], attrs


def _generate_arqc(kit: Kit, derivation: str) -> Answer:
    return {"AuthRequestCryptogram": _arqc(kit, derivation)[0]}


def _verify_arqc(kit: Kit, derivation: str, **extra: Any) -> Answer:
    arqc, attrs = _arqc(kit, derivation)
    common = {"KeyIdentifier": kit.imk("TR31_E0_EMV_MKEY_APP_CRYPTOGRAMS"),
              "TransactionData": _TRANSACTION, "MajorKeyDerivationMode": "EMV_OPTION_A",
              "SessionKeyDerivationAttributes": attrs}
    out: Answer = kit.data.verify_auth_request_cryptogram(AuthRequestCryptogram=arqc, **common,
                                                          **extra)
    wrong = ("0" if arqc[0] != "0" else "1") + arqc[1:]
    with pytest.raises(kit.data.exceptions.VerificationFailedException):
        kit.data.verify_auth_request_cryptogram(AuthRequestCryptogram=wrong, **common)
    return out


for _derivation in _SESSION:
    request(("GenerateAuthRequestCryptogram", "SessionKeyDerivationAttributes", _derivation))(
        functools.partial(_generate_arqc, derivation=_derivation))
    request(("VerifyAuthRequestCryptogram", "SessionKeyDerivationAttributes", _derivation))(
        functools.partial(_verify_arqc, derivation=_derivation))


@request(("VerifyAuthRequestCryptogram", "AuthResponseAttributes", "ArpcMethod1"))
def _arpc1(kit: Kit) -> Answer:
    out = _verify_arqc(kit, "EmvCommon",
                       AuthResponseAttributes={"ArpcMethod1": {"AuthResponseCode": "3030"}})
    assert len(out["AuthResponseValue"]) == 16
    return out


@request(("VerifyAuthRequestCryptogram", "AuthResponseAttributes", "ArpcMethod2"))
def _arpc2(kit: Kit) -> Answer:
    out = _verify_arqc(kit, "EmvCommon", AuthResponseAttributes={"ArpcMethod2": {
        "CardStatusUpdate": "03000000", "ProprietaryAuthenticationData": "1234"}})
    assert len(out["AuthResponseValue"]) == 8
    return out


_PIN_CHANGE: dict[str, Callable[[Kit], dict[str, Any]]] = {
    "EmvCommon": lambda kit: {"ApplicationCryptogram": "0123456789ABCDEF", "Mode": "CBC",
                              "PinBlockPaddingType": "ISO_IEC_7816_4",
                              "PinBlockLengthPosition": "NONE"},
    "Mastercard": lambda kit: {"ApplicationCryptogram": "0123456789ABCDEF"},
    "Emv2000": lambda kit: {"ApplicationTransactionCounter": "000B"},
    "Visa": lambda kit: {"ApplicationTransactionCounter": "000B",
                         "AuthorizationRequestKeyIdentifier": kit.imk(
                             "TR31_E0_EMV_MKEY_APP_CRYPTOGRAMS")},
    "Amex": lambda kit: {"ApplicationTransactionCounter": "000B",
                         "AuthorizationRequestKeyIdentifier": kit.imk(
                             "TR31_E0_EMV_MKEY_APP_CRYPTOGRAMS")},
}


def _pin_change(kit: Kit, derivation: str) -> Answer:
    attrs = {"MajorKeyDerivationMode": "EMV_OPTION_A", "PrimaryAccountNumber": PAN,
             "PanSequenceNumber": "00", **_PIN_CHANGE[derivation](kit)}
    out: Answer = kit.data.generate_mac_emv_pin_change(
        NewPinPekIdentifier=kit.pek(), NewEncryptedPinBlock=iso0("4321"),
        PinBlockFormat="ISO_FORMAT_0",
        SecureMessagingIntegrityKeyIdentifier=kit.imk("TR31_E2_EMV_MKEY_INTEGRITY"),
        SecureMessagingConfidentialityKeyIdentifier=kit.imk("TR31_E1_EMV_MKEY_CONFIDENTIALITY"),
        MessageData="8424000008000000", DerivationMethodAttributes={derivation: attrs})
    assert out["Mac"] and out["EncryptedPinBlock"]
    return out


for _method in _PIN_CHANGE:
    request(("GenerateMacEmvPinChange", "DerivationMethodAttributes", _method))(
        functools.partial(_pin_change, derivation=_method))


def _as2805_kek(kit: Kit) -> str:
    if "as2805-kek" not in kit.cache:
        kit.cache["as2805-kek"] = kit.plane.control.create_key(
            KeyAttributes={"KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY", "KeyClass": "SYMMETRIC_KEY",
                           "KeyAlgorithm": "TDES_2KEY", "KeyModesOfUse": MODES_PEK},
            KeyCheckValueAlgorithm="ANSI_X9_24", Exportable=True)["Key"]["KeyArn"]
    return kit.cache["as2805-kek"]


@request(("GenerateAs2805KekValidation", "KekValidationType", "KekValidationRequest"),
         ("GenerateAs2805KekValidation", "KekValidationType", "KekValidationResponse"))
def _kek_validation(kit: Kit) -> Answer:
    kek = _as2805_kek(kit)
    asked = kit.data.generate_as2805_kek_validation(
        KeyIdentifier=kek, RandomKeySendVariantMask="VARIANT_MASK_82",
        KekValidationType={"KekValidationRequest": {"DeriveKeyAlgorithm": "TDES_2KEY"}})
    answered: Answer = kit.data.generate_as2805_kek_validation(
        KeyIdentifier=kek, RandomKeySendVariantMask="VARIANT_MASK_82",
        KekValidationType={"KekValidationResponse": {"RandomKeySend": asked["RandomKeySend"]}})
    assert answered["RandomKeyReceive"] == asked["RandomKeyReceive"]
    return answered


def service_enum(service: str, shape: str) -> list[str]:
    model = data_service_model() if service == "payment-cryptography-data" else service_model()
    values: list[str] = model.shape_for(shape).enum
    return values


# --- the test over HTTP --------------------------------------------------------------------


@pytest.mark.parametrize("member", MODEL_MEMBERS, ids=["/".join(m) for m in MODEL_MEMBERS])
def test_member_is_served_or_deliberately_refused(kit: Kit, member: Member) -> None:
    send = REQUESTS[member]
    reason = REFUSED.get(member)
    if reason is None:
        try:
            send(kit)
        except ClientError as exc:
            error = exc.response["Error"]
            pytest.fail(f"{'/'.join(member)} is neither served nor listed as refused: "
                        f"{error.get('Code')}: {error.get('Message')}")
        return
    with pytest.raises(ClientError) as caught:
        send(kit)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException", error
    assert member[2] in error["Message"], error["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


# --- the control plane's key-exchange parameters -------------------------------------------


@pytest.mark.parametrize("algorithm", ["RSA_2048", "RSA_3072", "RSA_4096"])
@pytest.mark.parametrize("material", ["TR34_KEY_BLOCK", "KEY_CRYPTOGRAM"])
def test_parameters_for_import(kit: Kit, material: str, algorithm: str) -> None:
    out = kit.plane.control.get_parameters_for_import(KeyMaterialType=material,
                                                      WrappingKeyAlgorithm=algorithm)
    assert out["ImportToken"].startswith("import-token-")
    assert out["WrappingKeyAlgorithm"] == algorithm
    leaf = x509.load_pem_x509_certificate(base64.b64decode(out["WrappingKeyCertificate"]))
    public_key = leaf.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert public_key.key_size == int(algorithm[4:])
    again = kit.plane.control.get_parameters_for_import(
        KeyMaterialType=material, WrappingKeyAlgorithm=algorithm, ReuseLastGeneratedToken=True)
    assert again["ImportToken"] == out["ImportToken"]


def test_parameters_for_import_refuses_other_materials(kit: Kit) -> None:
    for material in ("TR31_KEY_BLOCK", "ROOT_PUBLIC_KEY_CERTIFICATE",
                     "TRUSTED_PUBLIC_KEY_CERTIFICATE"):
        with pytest.raises(kit.plane.control.exceptions.ValidationException):
            kit.plane.control.get_parameters_for_import(KeyMaterialType=material,
                                                        WrappingKeyAlgorithm="RSA_2048")


def test_parameters_for_export(kit: Kit) -> None:
    out = kit.plane.control.get_parameters_for_export(KeyMaterialType="TR34_KEY_BLOCK",
                                                      SigningKeyAlgorithm="RSA_2048")
    assert out["ExportToken"].startswith("export-token-")
    assert out["SigningKeyAlgorithm"] == "RSA_2048"
    assert out["SigningKeyCertificate"] and out["SigningKeyCertificateChain"]


@pytest.mark.parametrize("algorithm", ["SHA224", "SHA256", "SHA384", "SHA512"])
def test_certificate_signing_request(kit: Kit, algorithm: str) -> None:
    assert service_enum("payment-cryptography", "SigningAlgorithmType") == [
        "SHA224", "SHA256", "SHA384", "SHA512"]
    csr_text = kit.plane.control.get_certificate_signing_request(
        KeyIdentifier=kit.rsa(), SigningAlgorithm=algorithm,
        CertificateSubject={"CommonName": "audit", "Country": "US"})["CertificateSigningRequest"]
    csr = x509.load_pem_x509_csr(base64.b64decode(csr_text))
    assert csr.is_signature_valid
    assert csr.signature_hash_algorithm is not None
    assert csr.signature_hash_algorithm.name == algorithm.lower()
    assert csr.subject.rfc4514_string() == "C=US,CN=audit"


# --- enumerations that select an algorithm -------------------------------------------------

#: (operation, enum path, value) the emulator refuses on purpose, with the reason.
REFUSED_VALUES: dict[Member, str] = {}

#: Model values the emulator fails on by mistake (strict xfail: when one is fixed the test
#: fails until its line here is removed). Each is reported to the module's owner.
KNOWN_DEFECTS: dict[Member, str] = {}

Value = tuple[str, str, str]
VALUE_REQUESTS: dict[Value, Request] = {}


def _register_values(operation: str, path: str, values: list[str],
                     send: Callable[[Kit, str], Answer]) -> None:
    def bind(value: str) -> Request:
        def bound(kit: Kit) -> Answer:
            return send(kit, value)
        return bound

    for value in values:
        VALUE_REQUESTS[(operation, path, value)] = bind(value)


def _enum_at(operation: str, path: str) -> list[str]:
    shape = data_service_model().operation_model(operation).input_shape
    for name in path.split("."):
        shape = shape.members[name]
    values: list[str] = shape.enum
    return values


def _symmetric_mode(kit: Kit, value: str) -> Answer:
    iv = {} if value == "ECB" else {"InitializationVector": "00" * 16}
    return _round_trip(kit, kit.d0(), {"Symmetric": {"Mode": value, **iv}}, "12" * 16)


def _symmetric_mode_tdes(kit: Kit, value: str) -> Answer:
    """TDES for every mode but CFB128 (a 128-bit segment needs a 128-bit block: AES)."""
    if value == "CFB128":
        return _symmetric_mode(kit, value)
    key = kit.key("d0-tdes", KEY_2TDES, D0, "TDES_2KEY", "B")
    iv = {} if value == "ECB" else {"InitializationVector": "00" * 8}
    return _round_trip(kit, key, {"Symmetric": {"Mode": value, **iv}}, "12" * 16)


def _asymmetric_padding(kit: Kit, value: str) -> Answer:
    return _round_trip(kit, kit.rsa(), {"Asymmetric": {"PaddingType": value}}, "21" * 16)


def _dukpt_attributes(kit: Kit, **values: str) -> Answer:
    return _round_trip(kit, kit.bdk(), {"Dukpt": {"KeySerialNumber": KSN, **values}}, "31" * 16)


def _aes_bdk(kit: Kit) -> str:
    return kit.key("bdk-aes", bytes(range(32)), "TR31_B0_BASE_DERIVATION_KEY", "AES_256",
                   {"DeriveKey": True})


def _dukpt_derivation(kit: Kit, value: str) -> Answer:
    if value == "TDES_2KEY":
        return _dukpt_attributes(kit, DukptKeyDerivationType=value, Mode="CBC")
    return _round_trip(kit, _aes_bdk(kit), {"Dukpt": {
        "KeySerialNumber": "123456789012345600000001", "DukptKeyDerivationType": value,
        "Mode": "CBC"}}, "32" * 16)


def _emv_mac_session(kit: Kit, value: str) -> Answer:
    derivation_value = ({"ApplicationCryptogram": "0123456789ABCDEF"}
                        if value == "MASTERCARD_SESSION_KEY"
                        else {"ApplicationTransactionCounter": "000B"})
    return _mac_round_trip(kit, kit.imk("TR31_E2_EMV_MKEY_INTEGRITY"), {"EmvMac": {
        "MajorKeyDerivationMode": "EMV_OPTION_B", "PrimaryAccountNumber": PAN,
        "PanSequenceNumber": "01", "SessionKeyDerivationMode": value,
        "SessionKeyDerivationValue": derivation_value}})


def _pin_data_format(kit: Kit, value: str) -> Answer:
    pek, clear, aes = (kit.aes_pek(), bytes(range(16)), True) if value == "ISO_FORMAT_4" else (
        kit.pek(), KEY_2TDES, False)
    out: Answer = kit.data.generate_pin_data(
        GenerationKeyIdentifier=_ibm_pvk(kit), EncryptionKeyIdentifier=pek,
        GenerationAttributes={"Ibm3624PinFromOffset": {**_IBM, "PinOffset": "0000"}},
        PrimaryAccountNumber=PAN, PinBlockFormat=value, PinDataLength=4)
    pin = pin_block.decrypt_pin_block(clear, bytes.fromhex(out["EncryptedPinBlock"]), value,
                                      pan=PAN, aes=aes)
    kit.data.verify_pin_data(
        VerificationKeyIdentifier=_ibm_pvk(kit), EncryptionKeyIdentifier=pek,
        VerificationAttributes={"Ibm3624Pin": {**_IBM, "PinOffset": "0000"}},
        EncryptedPinBlock=out["EncryptedPinBlock"], PrimaryAccountNumber=PAN,
        PinBlockFormat=value)
    assert len(pin) == 4
    return out


def _pin_change_format(kit: Kit, value: str) -> Answer:
    block = pin_block.encrypt_pin_block(KEY_2TDES, "4321", value, pan=PAN).hex().upper()
    out: Answer = kit.data.generate_mac_emv_pin_change(
        NewPinPekIdentifier=kit.pek(), NewEncryptedPinBlock=block, PinBlockFormat=value,
        SecureMessagingIntegrityKeyIdentifier=kit.imk("TR31_E2_EMV_MKEY_INTEGRITY"),
        SecureMessagingConfidentialityKeyIdentifier=kit.imk("TR31_E1_EMV_MKEY_CONFIDENTIALITY"),
        MessageData="8424000008000000", DerivationMethodAttributes={"Emv2000": {
            "MajorKeyDerivationMode": "EMV_OPTION_A", "PrimaryAccountNumber": PAN,
            "PanSequenceNumber": "00", "ApplicationTransactionCounter": "000B"}})
    return out


def _arqc_option(kit: Kit, value: str) -> Answer:
    attrs = {"EmvCommon": {"PrimaryAccountNumber": PAN, "PanSequenceNumber": "00",
                           "ApplicationTransactionCounter": "000B"}}
    common = {"KeyIdentifier": kit.imk("TR31_E0_EMV_MKEY_APP_CRYPTOGRAMS"),
              "TransactionData": _TRANSACTION, "MajorKeyDerivationMode": value,
              "SessionKeyDerivationAttributes": attrs}
    arqc = kit.data.generate_auth_request_cryptogram(**common)["AuthRequestCryptogram"]
    out: Answer = kit.data.verify_auth_request_cryptogram(AuthRequestCryptogram=arqc, **common)
    return out


def _kek_validation_length(kit: Kit, value: str) -> Answer:
    out: Answer = kit.data.generate_as2805_kek_validation(
        KeyIdentifier=_as2805_kek(kit), RandomKeySendVariantMask="VARIANT_MASK_82C0",
        KekValidationType={"KekValidationRequest": {"DeriveKeyAlgorithm": "TDES_2KEY",
                                                    "RandomKeyMaxLength": value}})
    return out


def _kek_validation_mask(kit: Kit, value: str) -> Answer:
    kek = _as2805_kek(kit)
    asked = kit.data.generate_as2805_kek_validation(
        KeyIdentifier=kek, RandomKeySendVariantMask=value,
        KekValidationType={"KekValidationRequest": {"DeriveKeyAlgorithm": "TDES_2KEY"}})
    answered: Answer = kit.data.generate_as2805_kek_validation(
        KeyIdentifier=kek, RandomKeySendVariantMask=value,
        KekValidationType={"KekValidationResponse": {"RandomKeySend": asked["RandomKeySend"]}})
    assert answered["RandomKeyReceive"] == asked["RandomKeyReceive"]
    return answered


def _ecdh_derivation(kit: Kit, value: str) -> Answer:
    k3, wrapped = kit.ecdh_key(D0)
    material = wrapped["WrappedKeyMaterial"]["DiffieHellmanSymmetricKey"]
    if value in ("NIST_SP800", "ANSI_X963"):
        material["KeyDerivationFunction"] = value
    else:
        material["KeyDerivationHashAlgorithm"] = value
    return _round_trip(kit, k3, _SYMMETRIC_CBC, "41" * 16, WrappedKey=wrapped)


def _wrapped_kcv(kit: Kit, value: str) -> Answer:
    wrapped = (kit.tr31_wrapped(os.urandom(16), D0, "TDES_2KEY", "B") if value == "ANSI_X9_24"
               else kit.tr31_wrapped(os.urandom(16), D0, "AES_128", "B"))
    wrapped["KeyCheckValueAlgorithm"] = value
    out: Answer = kit.data.encrypt_data(KeyIdentifier=kit.plane.ensure_kek(),
                                        PlainText="51" * 16,
                                        EncryptionAttributes={"Symmetric": {"Mode": "ECB"}},
                                        WrappedKey=wrapped)
    assert out["KeyCheckValue"]
    return out


_ENCRYPT = "EncryptData"
_register_values(_ENCRYPT, "EncryptionAttributes.Symmetric.Mode",
                 _enum_at(_ENCRYPT, "EncryptionAttributes.Symmetric.Mode"), _symmetric_mode)
_register_values("DecryptData", "DecryptionAttributes.Symmetric.Mode",
                 _enum_at("DecryptData", "DecryptionAttributes.Symmetric.Mode"),
                 _symmetric_mode_tdes)
_register_values(_ENCRYPT, "EncryptionAttributes.Asymmetric.PaddingType",
                 _enum_at(_ENCRYPT, "EncryptionAttributes.Asymmetric.PaddingType"),
                 _asymmetric_padding)
_register_values(_ENCRYPT, "EncryptionAttributes.Dukpt.Mode",
                 _enum_at(_ENCRYPT, "EncryptionAttributes.Dukpt.Mode"),
                 lambda kit, value: _dukpt_attributes(kit, Mode=value))
_register_values(_ENCRYPT, "EncryptionAttributes.Dukpt.DukptKeyVariant",
                 _enum_at(_ENCRYPT, "EncryptionAttributes.Dukpt.DukptKeyVariant"),
                 lambda kit, value: _dukpt_attributes(kit, DukptKeyVariant=value, Mode="CBC"))
_register_values(_ENCRYPT, "EncryptionAttributes.Dukpt.DukptKeyDerivationType",
                 _enum_at(_ENCRYPT, "EncryptionAttributes.Dukpt.DukptKeyDerivationType"),
                 _dukpt_derivation)
_register_values(_ENCRYPT, "WrappedKey.WrappedKeyMaterial.DiffieHellmanSymmetricKey."
                 "KeyDerivationFunction", ["NIST_SP800", "ANSI_X963"], _ecdh_derivation)
_register_values(_ENCRYPT, "WrappedKey.WrappedKeyMaterial.DiffieHellmanSymmetricKey."
                 "KeyDerivationHashAlgorithm", ["SHA_256", "SHA_384", "SHA_512"],
                 _ecdh_derivation)
_register_values(_ENCRYPT, "WrappedKey.KeyCheckValueAlgorithm", ["CMAC", "ANSI_X9_24"],
                 _wrapped_kcv)
_register_values("GenerateMac", "GenerationAttributes.EmvMac.SessionKeyDerivationMode",
                 _enum_at("GenerateMac", "GenerationAttributes.EmvMac.SessionKeyDerivationMode"),
                 _emv_mac_session)
_register_values("GeneratePinData", "PinBlockFormat",
                 _enum_at("GeneratePinData", "PinBlockFormat"), _pin_data_format)
_register_values("GenerateMacEmvPinChange", "PinBlockFormat",
                 _enum_at("GenerateMacEmvPinChange", "PinBlockFormat"), _pin_change_format)
_register_values("VerifyAuthRequestCryptogram", "MajorKeyDerivationMode",
                 _enum_at("VerifyAuthRequestCryptogram", "MajorKeyDerivationMode"),
                 _arqc_option)
_register_values("GenerateAs2805KekValidation",
                 "KekValidationType.KekValidationRequest.RandomKeyMaxLength",
                 _enum_at("GenerateAs2805KekValidation",
                          "KekValidationType.KekValidationRequest.RandomKeyMaxLength"),
                 _kek_validation_length)
_register_values("GenerateAs2805KekValidation", "RandomKeySendVariantMask",
                 _enum_at("GenerateAs2805KekValidation", "RandomKeySendVariantMask"),
                 _kek_validation_mask)


def _value_params() -> list[Any]:
    return [pytest.param(value, id="/".join(value), marks=[pytest.mark.xfail(
        strict=True, reason=KNOWN_DEFECTS[value])] if value in KNOWN_DEFECTS else [])
        for value in VALUE_REQUESTS]


@pytest.mark.parametrize("value", _value_params())
def test_enum_value_is_served_or_deliberately_refused(kit: Kit, value: Value) -> None:
    send = VALUE_REQUESTS[value]
    if value not in REFUSED_VALUES:
        try:
            send(kit)
        except ClientError as exc:
            error = exc.response["Error"]
            pytest.fail(f"{'/'.join(value)} is neither served nor listed as refused: "
                        f"{error.get('Code')}: {error.get('Message')}")
        return
    with pytest.raises(ClientError) as caught:
        send(kit)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException", error
    assert value[2] in error["Message"], error["Message"]


# --- optional structures that change what an operation does --------------------------------

#: Optional input structures the emulator refuses on purpose (ValidationException naming it).
REFUSED_STRUCTURES: dict[tuple[str, str], str] = {}


def _iso0_attrs() -> dict[str, dict[str, str]]:
    return {"IsoFormat0": {"PrimaryAccountNumber": PAN}}


def _to_dukpt(kit: Kit) -> str:
    out = kit.data.translate_pin_data(
        IncomingKeyIdentifier=kit.pek(), OutgoingKeyIdentifier=kit.bdk(),
        EncryptedPinBlock=iso0(), IncomingTranslationAttributes=_iso0_attrs(),
        OutgoingTranslationAttributes=_iso0_attrs(),
        OutgoingDukptAttributes={"KeySerialNumber": KSN})
    block: str = out["PinBlock"]
    assert block != iso0()
    return block


def _dukpt_pin_round_trip(kit: Kit) -> Answer:
    back: Answer = kit.data.translate_pin_data(
        IncomingKeyIdentifier=kit.bdk(), OutgoingKeyIdentifier=kit.pek(),
        EncryptedPinBlock=_to_dukpt(kit), IncomingTranslationAttributes=_iso0_attrs(),
        OutgoingTranslationAttributes=_iso0_attrs(),
        IncomingDukptAttributes={"KeySerialNumber": KSN})
    assert pin_block.decrypt_pin_block(KEY_2TDES, bytes.fromhex(back["PinBlock"]),
                                       "ISO_FORMAT_0", pan=PAN) == PIN
    return back


def _verify_pin_under_dukpt(kit: Kit) -> Answer:
    return _verify_visa_with(kit, kit.bdk(), _to_dukpt(kit),
                             DukptAttributes={"KeySerialNumber": KSN,
                                              "DukptDerivationType": "TDES_2KEY"})


def _as2805_incoming(kit: Kit) -> Answer:
    kpe = as2805.derive_kpe(KEY_2TDES, "123456", "000000001000")
    out: Answer = kit.data.translate_pin_data(
        IncomingKeyIdentifier=kit.pek(), OutgoingKeyIdentifier=kit.pek(),
        EncryptedPinBlock=iso0(key=kpe), IncomingTranslationAttributes={"As2805Format0": {
            "PrimaryAccountNumber": PAN}}, OutgoingTranslationAttributes=_iso0_attrs(),
        IncomingAs2805Attributes={"SystemTraceAuditNumber": "123456",
                                  "TransactionAmount": "000000001000"})
    assert out["PinBlock"] == iso0()
    return out


STRUCTURE_REQUESTS: dict[tuple[str, str], Request] = {
    ("TranslatePinData", "IncomingDukptAttributes"): _dukpt_pin_round_trip,
    ("TranslatePinData", "OutgoingDukptAttributes"): _dukpt_pin_round_trip,
    ("VerifyPinData", "DukptAttributes"): _verify_pin_under_dukpt,
    ("TranslatePinData", "IncomingAs2805Attributes"): _as2805_incoming,
}


@pytest.mark.parametrize("structure", list(STRUCTURE_REQUESTS),
                         ids=["/".join(s) for s in STRUCTURE_REQUESTS])
def test_optional_structure_is_served_or_deliberately_refused(
        kit: Kit, structure: tuple[str, str]) -> None:
    operation, name = structure
    assert name in data_service_model().operation_model(operation).input_shape.members
    send = STRUCTURE_REQUESTS[structure]
    if structure not in REFUSED_STRUCTURES:
        send(kit)
        return
    with pytest.raises(ClientError) as caught:
        send(kit)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException", error
    assert name in error["Message"], error["Message"]
