"""Generate/VerifyCardValidationData over HTTP through boto3: every card_validation.json
vector byte for byte (the CVK imported as a TR-31 block under a KEK), lengths, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from psec import cvv as psec_cvv
from pyemv import kd as pyemv_kd

from apckx.crypto import card_validation
from apckx.crypto._quiet import quiet_tdes

from .conftest import DataPlane

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "vectors" / "dataplane"
                      / "card_validation.json").read_text())
C0 = "TR31_C0_CARD_VERIFICATION_KEY"


def attributes_for(entry: dict[str, Any]) -> dict[str, Any]:
    if entry["algorithm"] == "CVV2":
        return {"CardVerificationValue2": {"CardExpiryDate": entry["card_expiry_date"]}}
    if entry["algorithm"] in ("CVV", "ICVV"):
        return {"CardVerificationValue1": {"CardExpiryDate": entry["card_expiry_date"],
                                           "ServiceCode": entry["service_code"]}}
    return {"DynamicCardVerificationCode": {
        "UnpredictableNumber": entry["unpredictable_number"],
        "PanSequenceNumber": entry["pan_sequence_number"],
        "ApplicationTransactionCounter": entry["application_transaction_counter"],
        "TrackData": entry["track_data"]}}


@pytest.mark.parametrize("entry", VECTORS, ids=[e["id"] for e in VECTORS])
def test_card_validation_vectors(data_plane: DataPlane, entry: dict[str, Any]) -> None:
    if entry["algorithm"] == "MASTERCARD_CVC3":
        key = data_plane.import_key(bytes.fromhex(entry["imk_cvc3"]),
                                    "TR31_E4_EMV_MKEY_DYNAMIC_NUMBERS", "TDES_2KEY", "X")
        expected = entry["validation_data_3"]
    else:
        key = data_plane.import_key(bytes.fromhex(entry["cvk"]), C0, "TDES_2KEY", "C")
        expected = entry["validation_data"]
    attributes = attributes_for(entry)
    answer = data_plane.data.generate_card_validation_data(
        KeyIdentifier=key, PrimaryAccountNumber=entry["pan"], GenerationAttributes=attributes)
    assert answer["ValidationData"] == expected
    data_plane.data.verify_card_validation_data(
        KeyIdentifier=key, PrimaryAccountNumber=entry["pan"], ValidationData=expected,
        VerificationAttributes=attributes)
    wrong = str((int(expected[0]) + 1) % 10) + expected[1:]
    with pytest.raises(data_plane.data.exceptions.VerificationFailedException) as caught:
        data_plane.data.verify_card_validation_data(
            KeyIdentifier=key, PrimaryAccountNumber=entry["pan"], ValidationData=wrong,
            VerificationAttributes=attributes)
    assert caught.value.response["Reason"] == "INVALID_VALIDATION_DATA"


def test_dcvv_over_http_is_the_cvv_of_the_atc_altered_pan(data_plane: DataPlane) -> None:
    # jPOS's dCVV vectors (tests/vectors/dataplane/dcvv_jpos.json, checked byte for byte in
    # tests/crypto) use an IMK whose halves are equal, which ImportKey refuses as APC does; so
    # over HTTP the answer is checked against a second implementation of the same form: psec's
    # CVV, under pyemv's Option A ICC key, over the PAN with its first 4 digits replaced by the
    # ATC.
    imk = os.urandom(8) + os.urandom(8)
    key = data_plane.import_key(imk, "TR31_E6_EMV_MKEY_OTHER", "TDES_2KEY", "X")
    pan, psn, expiry, service_code, atc = "4761739001010010", "01", "2212", "201", "0127"
    with quiet_tdes():
        icc = pyemv_kd.derive_icc_mk_a(imk, pan, psn)
        expected = psec_cvv.generate_cvv(icc, atc + pan[4:], expiry, service_code)
    attributes = {"DynamicCardVerificationValue": {
        "PanSequenceNumber": psn, "CardExpiryDate": expiry, "ServiceCode": service_code,
        "ApplicationTransactionCounter": atc}}
    answer = data_plane.data.generate_card_validation_data(
        KeyIdentifier=key, PrimaryAccountNumber=pan, GenerationAttributes=attributes)
    assert answer["ValidationData"] == expected
    data_plane.data.verify_card_validation_data(
        KeyIdentifier=key, PrimaryAccountNumber=pan, ValidationData=expected,
        VerificationAttributes=attributes)
    errors = data_plane.data.exceptions
    next_atc = {"DynamicCardVerificationValue": {
        **attributes["DynamicCardVerificationValue"], "ApplicationTransactionCounter": "0128"}}
    wrong = str((int(expected[0]) + 1) % 10) + expected[1:]
    for wrong_value, wrong_attributes in ((wrong, attributes), (expected, next_atc)):
        if wrong_attributes is next_atc and card_validation.generate_dcvv(
                imk, pan, psn, expiry, service_code, "0128") == expected:
            continue  # one chance in a thousand: the next ATC's dCVV is the same
        with pytest.raises(errors.VerificationFailedException) as caught:
            data_plane.data.verify_card_validation_data(
                KeyIdentifier=key, PrimaryAccountNumber=pan, ValidationData=wrong_value,
                VerificationAttributes=wrong_attributes)
        assert caught.value.response["Reason"] == "INVALID_VALIDATION_DATA"


def test_lengths_amex_dcvv_and_refusals(data_plane: DataPlane) -> None:
    cvk = os.urandom(16)
    generate_only = data_plane.import_key(cvk, C0, "TDES_2KEY", "G")
    cvv1 = {"CardVerificationValue1": {"CardExpiryDate": "1230", "ServiceCode": "101"}}
    five = data_plane.data.generate_card_validation_data(
        KeyIdentifier=generate_only, PrimaryAccountNumber="4123456789012345",
        GenerationAttributes=cvv1, ValidationDataLength=5)["ValidationData"]
    assert five == card_validation.generate_cvv(cvk, "4123456789012345", "1230", "101", 5)
    errors = data_plane.data.exceptions
    with pytest.raises(errors.ValidationException, match="must include Verify"):
        data_plane.data.verify_card_validation_data(
            KeyIdentifier=generate_only, PrimaryAccountNumber="4123456789012345",
            ValidationData=five, VerificationAttributes=cvv1)
    amex_key = data_plane.import_key(cvk, C0, "TDES_2KEY", "C")
    amex = {"AmexCardSecurityCodeVersion2": {"CardExpiryDate": "1230", "ServiceCode": "201"}}
    csc = data_plane.data.generate_card_validation_data(
        KeyIdentifier=amex_key, PrimaryAccountNumber="371449635398431",
        GenerationAttributes=amex, ValidationDataLength=4)["ValidationData"]
    assert csc == card_validation.generate_amex_csc(cvk, "371449635398431", "1230", version=2,
                                                    service_code="201", length=4)
    imk = os.urandom(16)
    e6 = data_plane.import_key(imk, "TR31_E6_EMV_MKEY_OTHER", "TDES_2KEY", "X")
    dcvv = {"DynamicCardVerificationValue": {"PanSequenceNumber": "00",
                                             "CardExpiryDate": "1230", "ServiceCode": "101",
                                             "ApplicationTransactionCounter": "0012"}}
    value = data_plane.data.generate_card_validation_data(
        KeyIdentifier=e6, PrimaryAccountNumber="4123456789012345",
        GenerationAttributes=dcvv)["ValidationData"]
    assert value == card_validation.generate_dcvv(imk, "4123456789012345", "00", "1230",
                                                  "101", "0012")
    with pytest.raises(errors.ValidationException,
                       match=r"GenerateCardValidationData: CardHolderVerificationValue is not "
                             r"supported by apckx: .* no public specification"):
        data_plane.data.generate_card_validation_data(
            KeyIdentifier=e6, PrimaryAccountNumber="4123456789012345",
            GenerationAttributes={"CardHolderVerificationValue": {
                "UnpredictableNumber": "1234ABCD", "PanSequenceNumber": "01",
                "ApplicationTransactionCounter": "000B"}})
    with pytest.raises(errors.ValidationException,
                       match="DiscoverDynamicCardVerificationCode is not supported by apckx: "
                             "Discover's dCVC"):
        data_plane.data.verify_card_validation_data(
            KeyIdentifier=e6, PrimaryAccountNumber="4123456789012345", ValidationData="123",
            VerificationAttributes={"DiscoverDynamicCardVerificationCode": {
                "CardExpiryDate": "1230", "UnpredictableNumber": "1234",
                "ApplicationTransactionCounter": "0012"}})
    with pytest.raises(errors.ValidationException, match="KeyUsage"):
        data_plane.data.generate_card_validation_data(
            KeyIdentifier=e6, PrimaryAccountNumber="4123456789012345", GenerationAttributes=cvv1)
