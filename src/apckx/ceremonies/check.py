"""``apckx check``: prove that a key in APC does what its usage says, on the data plane.

One recipe per key usage (:data:`CHECKS`), each a short run of data-plane calls:

- D0: EncryptData then DecryptData (CBC, zero IV) gives the plaintext back.
- M0/M1/M3/M6/M7: GenerateMac, VerifyMac of that MAC, and VerifyMac of an altered MAC fails
  (M0 with AS2805_4_1, M1 ISO9797_ALGORITHM1, M3 ISO9797_ALGORITHM3, M6 CMAC, M7 HMAC).
- C0: GenerateCardValidationData (CVV) for a test card, VerifyCardValidationData of it, and of
  a wrong one fails.
- P0: TranslatePinData of a PIN block under the key, from and to the same key (ISO format 0
  for TDES, 4 for AES): the PIN survives.
- B0: DUKPT EncryptData/DecryptData round trip for a KSN, and a DUKPT PIN block translated
  from and to the same BDK and KSN.
- V1/V2: VerifyPinData of a PIN block under a PEK you name, with the IBM 3624 offset or Visa
  PVV you give (or compute from the cleartext), and a wrong one fails.
- E0: VerifyAuthRequestCryptogram of an ARQC you give (or compute); an altered one fails.
- E1: EMV EncryptData/DecryptData round trip under the card's session key.
- E2: EMV MAC generate and verify. E4: CVC3 generate and verify. E6: dCVV generate and verify
  (compared with jPOS's dCVV form, the emulator's, when the cleartext is known).

Every answer is compared with a local computation through :mod:`apckx.crypto` when the
cleartext key is known, and with the values you expect (``expects``) when it is not. A
mismatch, a verification that fails or one that passes when it must not is a ``mismatch``
step; an APC error is a ``failed`` step. Nothing secret is recorded: steps say what matched,
never the values (MACs, CVVs, PIN blocks) or the key.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apckx.errors import ApckxError, InputError, ServiceError
from apckx.service.apc import ApcService, Key
from apckx.service.data import ApcDataService

OK = "ok"
MISMATCH = "mismatch"
FAILED = "failed"
SKIPPED = "skipped"

_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")
_DIGITS = re.compile(r"^[0-9]+$")


def _digits(low: int, high: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if _DIGITS.match(value) and low <= len(value) <= high:
            return None
        return f"{low}..{high} digits" if low != high else f"{low} digits"

    return check


def _hex(low: int, high: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if _HEX.match(value) and low <= len(value) <= high:
            return None
        return f"{low}..{high} hex characters (whole bytes)"

    return check


def _pattern(regex: str, description: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if re.fullmatch(regex, value) else description

    return check


def _choice(*names: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in names else "one of " + ", ".join(names)

    return check


def _text(value: str) -> str | None:
    return None if 7 <= len(value) <= 322 and " " not in value else "a key ARN or alias"


#: ``--input NAME=VALUE``: the test data a check uses, with defaults.
INPUTS: dict[str, tuple[Callable[[str], str | None], str | None, str]] = {
    "pan": (_digits(12, 19), "4111111111111111", "test card PAN"),
    "expiry": (_digits(4, 4), "2912", "card expiry date (as your issuer uses it)"),
    "service-code": (_digits(3, 3), "101", "service code"),
    "psn": (_digits(2, 2), "00", "PAN sequence number"),
    "atc": (_hex(4, 4), "0001", "application transaction counter (hex)"),
    "un": (_hex(8, 8), "12345678", "unpredictable number (hex)"),
    "track-data": (_hex(2, 160), None, "track data for CVC3 (hex; default from PAN/expiry)"),
    "pin": (_digits(4, 12), "1234", "test PIN"),
    "pvki": (_choice(*"0123456"), "1", "Visa PVKI (0..6)"),
    "ksn": (_hex(16, 24), None, "DUKPT KSN (default FFFF9876543210E00001 / ...E000000001)"),
    "message": (_hex(2, 8192), "4150434B5820636865636B2074657374", "message to MAC (hex)"),
    "plaintext": (_hex(16, 4096), "0123456789ABCDEFFEDCBA9876543210", "data to encrypt (hex)"),
    "transaction-data": (_hex(2, 1024), None, "ARQC transaction data (hex, padded)"),
    "session-key-derivation": (
        _choice("EmvCommon", "Mastercard", "Emv2000", "Amex", "Visa"),
        "EmvCommon",
        "ARQC session-key derivation",
    ),
    "key-derivation": (_choice("EMV_OPTION_A", "EMV_OPTION_B"), "EMV_OPTION_A", "ICC MK option"),
    "pin-block": (_hex(16, 32), None, "a PIN block encrypted under the key (or the PEK)"),
    "pek": (_text, None, "the PEK (ARN or alias) a V1/V2 check's PIN block is under"),
    "decimalization-table": (_digits(16, 16), "0123456789012345", "IBM 3624 table"),
    "pin-validation-data": (
        _pattern(r"[0-9A-F]{4,16}", "4..16 hex characters"),
        None,
        "IBM 3624 validation data (default: the PAN's rightmost 12 digits)",
    ),
    "pad-character": (_choice(*"0123456789ABCDEF"), "F", "IBM 3624 pad character"),
}

#: ``--expect NAME=VALUE``: values your HSM produced for the same inputs.
EXPECTS: dict[str, tuple[Callable[[str], str | None], str]] = {
    "ciphertext": (_hex(16, 4224), "D0: EncryptData's answer"),
    "mac": (_hex(8, 128), "M*/E2: the MAC (its leftmost bytes are compared)"),
    "cvv": (_digits(3, 5), "C0: CVV for PAN/expiry/service code"),
    "cvv2": (_digits(3, 5), "C0: CVV2 for PAN/expiry"),
    "pvv": (_digits(4, 4), "V2: Visa PVV of the PIN"),
    "offset": (_digits(4, 12), "V1: IBM 3624 offset of the PIN"),
    "arqc": (_hex(16, 16), "E0: the ARQC for the transaction data"),
    "cvc3": (_digits(3, 5), "E4: CVC3 (rightmost digits)"),
    "dcvv": (_digits(3, 5), "E6: dCVV"),
}

DEFAULT_TDES_KSN = "FFFF9876543210E00001"
DEFAULT_AES_KSN = "FFFF9876543210E000000001"


def parse_pairs(values: Sequence[str], *, flag: str, allowed: Mapping[str, Any]) -> dict[str, str]:
    """``NAME=VALUE`` pairs, each name known and each value in its form (InputError, exit 2)."""
    pairs: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            raise InputError(f"{flag} takes NAME=VALUE (an item has no '=')")
        if name not in allowed:
            shown = repr(name) if re.fullmatch(r"[a-z][a-z0-9-]{0,29}", name) else "(a value?)"
            raise InputError(f"{flag}: unknown name {shown}; known: {', '.join(allowed)}")
        if name in pairs:
            raise InputError(f"{flag} {name} is given twice")
        value = value.strip()
        if name not in _CASE_KEPT:
            value = value.upper()
        problem = allowed[name][0](value)
        if problem is not None:
            raise InputError(f"{flag} {name} must be {problem}")
        pairs[name] = value
    return pairs


_CASE_KEPT = frozenset({"pek", "session-key-derivation"})


@dataclass(frozen=True)
class CheckStep:
    """One thing checked: what, the APC operations it used, and how it came out."""

    check: str
    operations: tuple[str, ...]
    outcome: str
    detail: str

    def to_record(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "operations": list(self.operations),
            "outcome": self.outcome,
            "detail": self.detail,
        }


@dataclass
class KeyCheck:
    """The outcome of ``apckx check`` for one key."""

    key_arn: str
    key_usage: str
    key_algorithm: str
    key_check_value: str
    compared_with: str
    steps: list[CheckStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return any(s.outcome == OK for s in self.steps) and all(
            s.outcome in (OK, SKIPPED) for s in self.steps
        )

    @property
    def outcome(self) -> str:
        if any(s.outcome == FAILED for s in self.steps):
            return FAILED
        return OK if self.ok else MISMATCH

    def to_record(self) -> dict[str, Any]:
        return {
            "KeyArn": self.key_arn,
            "KeyUsage": self.key_usage,
            "KeyAlgorithm": self.key_algorithm,
            "KeyCheckValue": self.key_check_value,
            "ComparedWith": self.compared_with,
            "Outcome": self.outcome,
            "Steps": [s.to_record() for s in self.steps],
        }


class _Context:
    """What a recipe works with: the key, its cleartext (or None), inputs, expects, pacing."""

    def __init__(
        self,
        data: ApcDataService,
        apc: ApcService,
        key: Key,
        cleartext: bytes | None,
        inputs: Mapping[str, str],
        expects: Mapping[str, str],
        pace: Callable[[], None] | None,
    ) -> None:
        self.data = data
        self.apc = apc
        self.key = key
        self.arn = str(key["KeyArn"])
        attributes = key["KeyAttributes"]
        self.usage = str(attributes["KeyUsage"])
        self.algorithm = str(attributes["KeyAlgorithm"])
        self.modes: Mapping[str, bool] = attributes.get("KeyModesOfUse", {})
        self.cleartext = cleartext
        self.inputs = inputs
        self.expects = expects
        self.pace = pace
        self.steps: list[CheckStep] = []

    def value(self, name: str) -> str:
        given = self.inputs.get(name)
        if given is not None:
            return given
        default = INPUTS[name][1]
        if default is None:
            raise InputError(f"this check needs --input {name}=... ({INPUTS[name][2]})")
        return default

    def allows(self, *modes: str) -> bool:
        """The key's modes allow ``modes``; for EMV master keys (E*), DeriveKey is what
        generating and verifying take."""
        if self.modes.get("NoRestrictions"):
            return True
        if self.usage.startswith("TR31_E") and set(modes) <= {"Generate", "Verify"}:
            return bool(self.modes.get("DeriveKey"))
        return all(self.modes.get(m) for m in modes)

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.pace is not None:
            self.pace()
        return function(*args, **kwargs)

    def add(self, check: str, operations: Sequence[str], outcome: str, detail: str) -> None:
        self.steps.append(CheckStep(check, tuple(operations), outcome, detail))

    def compare(
        self,
        check: str,
        operations: Sequence[str],
        got: str,
        name: str,
        local: Callable[[], str] | None,
        *,
        prefix: bool = False,
    ) -> None:
        """Compare APC's answer with the local computation and the expected value."""
        compared = False
        if local is not None and self.cleartext is not None:
            mine = _quietly(local).upper()
            compared = True
            if not _same(got.upper(), mine, prefix=prefix):
                self.add(
                    check,
                    operations,
                    MISMATCH,
                    f"APC's {name} differs from the one computed locally from the cleartext",
                )
                return
        expected = self.expects.get(name.lower())
        if expected is not None:
            compared = True
            if not _same(got.upper(), expected.upper(), prefix=prefix):
                self.add(
                    check,
                    operations,
                    MISMATCH,
                    f"APC's {name} differs from the expected value (--expect)",
                )
                return
        if compared:
            self.add(check, operations, OK, f"APC's {name} matches")
        else:
            self.add(
                check,
                operations,
                OK,
                f"{name} generated (no cleartext or --expect {name.lower()} to compare)",
            )


def _quietly(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A local computation with psec/pyemv's TDES deprecation warnings silenced."""
    from apckx.crypto._quiet import quiet_tdes

    with quiet_tdes():
        return function(*args, **kwargs)


def _need(key: bytes | None) -> bytes:
    if key is None:  # the recipes only call their local computation with a cleartext
        raise InputError("this comparison needs the cleartext key")
    return key


def _same(got: str, expected: str, *, prefix: bool) -> bool:
    if prefix:
        length = min(len(got), len(expected))
        if length < 8:
            return False
        return hmac.compare_digest(got[:length].encode(), expected[:length].encode())
    return hmac.compare_digest(got.encode(), expected.encode())


def _altered(hex_text: str) -> str:
    """The same value with its last nibble changed (a value that must not verify)."""
    last = int(hex_text[-1], 16)
    return hex_text[:-1] + format(last ^ 0x1, "X")


def _altered_digits(text: str) -> str:
    return text[:-1] + str((int(text[-1]) + 1) % 10)


def _family(algorithm: str) -> str:
    return "TDES" if algorithm.startswith("TDES") else "AES"


# --- recipes -------------------------------------------------------------------------------


def _check_encryption(ctx: _Context) -> None:
    if not ctx.allows("Encrypt", "Decrypt"):
        raise InputError("a D0 check needs a key with Encrypt and Decrypt (or NoRestrictions)")
    block = 8 if _family(ctx.algorithm) == "TDES" else 16
    plaintext = ctx.value("plaintext")
    if (len(plaintext) // 2) % block:
        raise InputError(f"--input plaintext must be whole {block}-byte blocks for this key")
    attributes = {"Symmetric": {"Mode": "CBC", "InitializationVector": "00" * block}}
    ciphertext = ctx.call(ctx.data.encrypt_data, ctx.arn, plaintext, attributes)
    cleartext = ctx.cleartext
    family = _family(ctx.algorithm)

    def local() -> str:
        from apckx.crypto import cipher

        data = bytes.fromhex(plaintext)
        return cipher.encrypt_symmetric(_need(cleartext), family, "CBC", data).hex().upper()

    ctx.compare("encrypt", ["EncryptData"], ciphertext, "ciphertext", local)
    back = ctx.call(ctx.data.decrypt_data, ctx.arn, ciphertext, attributes)
    if hmac.compare_digest(back.upper().encode(), plaintext.upper().encode()):
        ctx.add("decrypt round trip", ["DecryptData"], OK, "the plaintext came back")
    else:
        ctx.add(
            "decrypt round trip",
            ["DecryptData"],
            MISMATCH,
            "DecryptData did not give the plaintext back",
        )


#: The MacAlgorithm each MAC key usage is checked with. M0 is AS2805_4_1: the user guide's
#: crypto-ops-mac page gives "AS2805.4.1 MAC: denoted by KeyUsage of TR31_M0_ISO_16609_MAC_KEY"
#: and its valid-keys table lists ISO9797_ALGORITHM1 for M1 only.
_MAC_ALGORITHM = {
    "TR31_M0_ISO_16609_MAC_KEY": "AS2805_4_1",
    "TR31_M1_ISO_9797_1_MAC_KEY": "ISO9797_ALGORITHM1",
    "TR31_M3_ISO_9797_3_MAC_KEY": "ISO9797_ALGORITHM3",
    "TR31_M6_ISO_9797_5_CMAC_KEY": "CMAC",
    "TR31_M7_HMAC_KEY": "HMAC",
}


def _mac_round(
    ctx: _Context, attributes: Mapping[str, Any], message: str, local: Callable[[], str] | None
) -> None:
    if ctx.allows("Generate"):
        mac_hex = ctx.call(ctx.data.generate_mac, ctx.arn, message, attributes)
        ctx.compare("generate MAC", ["GenerateMac"], mac_hex, "MAC", local, prefix=True)
    else:
        mac_hex = ctx.expects.get("mac") or (local() if local and ctx.cleartext else "")
        if not mac_hex:
            raise InputError("this key cannot Generate: give --expect mac=HEX to verify")
    if not ctx.allows("Verify"):
        ctx.add("verify MAC", [], SKIPPED, "the key's modes do not include Verify")
        return
    # MacLength is 4..16 bytes; a full HMAC (up to 64 bytes) is verified without it.
    length = len(mac_hex) // 2 if len(mac_hex) // 2 <= 16 else None
    ok = ctx.call(ctx.data.verify_mac, ctx.arn, message, mac_hex, attributes, mac_length=length)
    ctx.add(
        "verify MAC",
        ["VerifyMac"],
        OK if ok else MISMATCH,
        "APC verifies the MAC" if ok else "APC does not verify its own MAC",
    )
    bad = ctx.call(
        ctx.data.verify_mac, ctx.arn, message, _altered(mac_hex), attributes, mac_length=length
    )
    ctx.add(
        "verify altered MAC",
        ["VerifyMac"],
        MISMATCH if bad else OK,
        "APC accepted an altered MAC" if bad else "an altered MAC is refused",
    )


def _check_mac(ctx: _Context) -> None:
    from apckx.crypto import mac as macs

    algorithm = _MAC_ALGORITHM[ctx.usage]
    if algorithm == "HMAC":
        algorithm = ctx.algorithm  # HMAC_SHA256 ...
    message = ctx.value("message")
    block = 8 if _family(ctx.algorithm) == "TDES" else 16
    if algorithm.startswith("ISO9797") and (len(message) // 2) % block:
        raise InputError(f"--input message must be whole {block}-byte blocks for {algorithm}")
    attributes = {"Algorithm": algorithm}
    cleartext = ctx.cleartext

    def local() -> str:
        full = macs.MAC_ALGORITHMS[algorithm](
            _need(cleartext), bytes.fromhex(message), ctx.algorithm
        )
        return full.hex().upper()

    _mac_round(ctx, attributes, message, local)


def _card_round(
    ctx: _Context,
    check: str,
    attributes: Mapping[str, Any],
    name: str,
    local: Callable[[], str] | None,
) -> None:
    pan = ctx.value("pan")
    expected = ctx.expects.get(name.lower())
    length = len(expected) if expected else None
    if ctx.allows("Generate"):
        value = ctx.call(
            ctx.data.generate_card_validation_data,
            ctx.arn,
            pan,
            attributes,
            validation_data_length=length,
        )
        ctx.compare(f"generate {check}", ["GenerateCardValidationData"], value, name, local)
    else:
        value = expected or (local() if local and ctx.cleartext else "")
        if not value:
            raise InputError(f"this key cannot Generate: give --expect {name.lower()}=... ")
    if not ctx.allows("Verify"):
        ctx.add(f"verify {check}", [], SKIPPED, "the key's modes do not include Verify")
        return
    ok = ctx.call(ctx.data.verify_card_validation_data, ctx.arn, pan, value, attributes)
    ctx.add(
        f"verify {check}",
        ["VerifyCardValidationData"],
        OK if ok else MISMATCH,
        f"APC verifies the {name}" if ok else f"APC does not verify the {name}",
    )
    bad = ctx.call(
        ctx.data.verify_card_validation_data, ctx.arn, pan, _altered_digits(value), attributes
    )
    ctx.add(
        f"verify wrong {check}",
        ["VerifyCardValidationData"],
        MISMATCH if bad else OK,
        f"APC accepted a wrong {name}" if bad else f"a wrong {name} is refused",
    )


def _check_card_verification(ctx: _Context) -> None:
    from apckx.crypto import card_validation as cv

    pan, expiry, service_code = ctx.value("pan"), ctx.value("expiry"), ctx.value("service-code")
    key = ctx.cleartext
    length = len(ctx.expects["cvv"]) if "cvv" in ctx.expects else 3

    def local_cvv() -> str:
        return cv.generate_cvv(_need(key), pan, expiry, service_code, length)

    _card_round(
        ctx,
        "CVV",
        {"CardVerificationValue1": {"CardExpiryDate": expiry, "ServiceCode": service_code}},
        "CVV",
        local_cvv,
    )
    if "cvv2" in ctx.expects:
        length2 = len(ctx.expects["cvv2"])

        def local_cvv2() -> str:
            return cv.generate_cvv2(_need(key), pan, expiry, length2)

        _card_round(
            ctx, "CVV2", {"CardVerificationValue2": {"CardExpiryDate": expiry}}, "CVV2", local_cvv2
        )


def _pin_format(algorithm: str) -> tuple[str, str]:
    return (
        ("ISO_FORMAT_4", "IsoFormat4")
        if _family(algorithm) == "AES"
        else ("ISO_FORMAT_0", "IsoFormat0")
    )


def _pin_translation(
    ctx: _Context, check: str, pin_key: bytes | None, aes: bool, dukpt: Mapping[str, Any] | None
) -> None:
    """Translate a PIN block from the key to the key itself and check the PIN survives."""
    from apckx.crypto import pin_block

    pan, pin = ctx.value("pan"), ctx.value("pin")
    fmt, member = _pin_format(ctx.algorithm if dukpt is None else ("AES" if aes else "TDES"))
    given = ctx.inputs.get("pin-block")
    if pin_key is not None:
        block_hex = (
            _quietly(pin_block.encrypt_pin_block, pin_key, pin, fmt, pan=pan, aes=aes).hex().upper()
        )
    elif given is not None:
        block_hex = given
    else:
        raise InputError(
            f"a {check} check needs the cleartext key (--key-file, --prompt, --components) or "
            "--input pin-block=HEX (the test PIN's block under it)"
        )
    translation = {member: {"PrimaryAccountNumber": pan}}
    out = ctx.call(
        ctx.data.translate_pin_data,
        incoming_key_identifier=ctx.arn,
        outgoing_key_identifier=ctx.arn,
        incoming_attributes=translation,
        outgoing_attributes=translation,
        encrypted_pin_block=block_hex,
        incoming_dukpt=dukpt,
        outgoing_dukpt=dukpt,
    )
    operations = ["TranslatePinData"]
    if pin_key is not None:
        decoded = _quietly(
            pin_block.decrypt_pin_block, pin_key, bytes.fromhex(out), fmt, pan=pan, aes=aes
        )
        same = pin_block.pins_equal(decoded, pin)
        ctx.add(
            check,
            operations,
            OK if same else MISMATCH,
            "the PIN survives the translation (checked locally)"
            if same
            else "the translated block does not hold the PIN",
        )
    elif fmt == "ISO_FORMAT_0":
        same = hmac.compare_digest(out.upper().encode(), block_hex.upper().encode())
        ctx.add(
            check,
            operations,
            OK if same else MISMATCH,
            "the block translates to itself"
            if same
            else "the block does not translate to itself: wrong key or wrong PIN block",
        )
    else:
        ctx.add(
            check,
            operations,
            OK,
            "translated (format 4 output is random: give the cleartext to check the PIN)",
        )


def _check_pin_encryption(ctx: _Context) -> None:
    aes = _family(ctx.algorithm) == "AES"
    _pin_translation(ctx, "PIN translation", ctx.cleartext, aes, None)


def _default_ksn(ctx: _Context) -> str:
    return ctx.inputs.get("ksn") or (
        DEFAULT_AES_KSN if _family(ctx.algorithm) == "AES" else DEFAULT_TDES_KSN
    )


def _check_bdk(ctx: _Context) -> None:
    from apckx.crypto import dukpt

    ksn_hex = _default_ksn(ctx)
    ksn = dukpt.parse_ksn_hex(ksn_hex, ctx.algorithm)
    aes = _family(ctx.algorithm) == "AES"
    plaintext = ctx.value("plaintext")
    block = 16 if aes else 8
    if (len(plaintext) // 2) % block:
        raise InputError(f"--input plaintext must be whole {block}-byte blocks for this BDK")
    attributes: dict[str, Any] = {"KeySerialNumber": ksn_hex, "Mode": "CBC"}
    if aes:
        attributes["DukptKeyDerivationType"] = ctx.algorithm
    ciphertext = ctx.call(ctx.data.encrypt_data, ctx.arn, plaintext, {"Dukpt": attributes})
    if ctx.cleartext is not None:
        from apckx.crypto import cipher

        data_key = dukpt.derive_working_key(
            ctx.cleartext, ksn, ctx.algorithm, "DATA", key_algorithm=ctx.algorithm if aes else None
        )
        mine = cipher.encrypt_symmetric(
            data_key, "AES" if aes else "TDES", "CBC", bytes.fromhex(plaintext)
        )
        same = hmac.compare_digest(mine.hex().upper().encode(), ciphertext.upper().encode())
        ctx.add("DUKPT encrypt", ["EncryptData"], OK if same else MISMATCH,
                "APC's ciphertext matches the local DUKPT data key's" if same
                else "APC's ciphertext differs from the local DUKPT data key's")  # fmt: skip
    back = ctx.call(ctx.data.decrypt_data, ctx.arn, ciphertext, {"Dukpt": attributes})
    same = hmac.compare_digest(back.upper().encode(), plaintext.upper().encode())
    ctx.add(
        "DUKPT data round trip",
        ["EncryptData", "DecryptData"],
        OK if same else MISMATCH,
        "the plaintext came back" if same else "DecryptData did not give the plaintext back",
    )
    pin_key = None
    if ctx.cleartext is not None:
        pin_key = dukpt.derive_working_key(
            ctx.cleartext, ksn, ctx.algorithm, "PIN", key_algorithm=ctx.algorithm if aes else None
        )
    dukpt_attributes = {"KeySerialNumber": ksn_hex}
    if aes:
        dukpt_attributes["DukptKeyDerivationType"] = ctx.algorithm
    if pin_key is None and "pin-block" not in ctx.inputs:
        ctx.add(
            "DUKPT PIN translation",
            [],
            SKIPPED,
            "needs the cleartext BDK or --input pin-block=HEX (and --input ksn)",
        )
        return
    _pin_translation(ctx, "DUKPT PIN translation", pin_key, aes, dukpt_attributes)


def _check_pin_verification(ctx: _Context) -> None:
    from apckx.crypto import pin_verification as pv

    pek = ctx.inputs.get("pek")
    if pek is None or "pin-block" not in ctx.inputs:
        raise InputError(
            "a V1/V2 check needs --input pek=ALIAS|ARN and --input pin-block=HEX (the test "
            "PIN's ISO format 0 block under that PEK)"
        )
    pan, pin = ctx.value("pan"), ctx.value("pin")
    visa = ctx.usage == "TR31_V2_VISA_PIN_VERIFICATION_KEY"
    name = "pvv" if visa else "offset"
    value = ctx.expects.get(name)
    local: str | None = None
    if ctx.cleartext is not None:
        if visa:
            local = _quietly(pv.generate_visa_pvv, ctx.cleartext, pan, int(ctx.value("pvki")), pin)
        else:
            local = _quietly(
                pv.generate_ibm3624_offset,
                ctx.cleartext,
                ctx.value("decimalization-table"),
                ctx.inputs.get("pin-validation-data", pan[-12:]),
                ctx.value("pad-character"),
                pin,
            )
        if value is not None and not hmac.compare_digest(local.encode(), value.encode()):
            ctx.add(
                f"local {name}",
                [],
                MISMATCH,
                f"the {name} computed from the cleartext differs from --expect {name}",
            )
            return
    value = value or local
    if value is None:
        raise InputError(f"give --expect {name}=... or the cleartext key to compute it")
    if visa:
        attributes: dict[str, Any] = {
            "VisaPin": {
                "PinVerificationKeyIndex": int(ctx.value("pvki")),
                "VerificationValue": value,
            }
        }
        wrong: dict[str, Any] = {
            "VisaPin": {
                "PinVerificationKeyIndex": int(ctx.value("pvki")),
                "VerificationValue": _altered_digits(value),
            }
        }
    else:
        common = {
            "DecimalizationTable": ctx.value("decimalization-table"),
            "PinValidationDataPadCharacter": ctx.value("pad-character"),
            "PinValidationData": ctx.inputs.get("pin-validation-data", pan[-12:]),
        }
        attributes = {"Ibm3624Pin": {**common, "PinOffset": value}}
        wrong = {"Ibm3624Pin": {**common, "PinOffset": _altered_digits(value)}}
    kwargs = {
        "verification_key_identifier": ctx.arn,
        "encryption_key_identifier": pek,
        "encrypted_pin_block": ctx.inputs["pin-block"],
        "pin_block_format": "ISO_FORMAT_0",
        "pan": pan,
    }
    ok = ctx.call(ctx.data.verify_pin_data, attributes=attributes, **kwargs)
    ctx.add(
        f"verify PIN ({name})",
        ["VerifyPinData"],
        OK if ok else MISMATCH,
        "APC verifies the PIN" if ok else f"APC does not verify the PIN with this {name}",
    )
    bad = ctx.call(ctx.data.verify_pin_data, attributes=wrong, **kwargs)
    ctx.add(
        f"verify PIN (wrong {name})",
        ["VerifyPinData"],
        MISMATCH if bad else OK,
        f"APC accepted a wrong {name}" if bad else f"a wrong {name} is refused",
    )


def _session_attributes(ctx: _Context) -> dict[str, Any]:
    derivation = ctx.value("session-key-derivation")
    body: dict[str, Any] = {
        "PrimaryAccountNumber": ctx.value("pan"),
        "PanSequenceNumber": ctx.value("psn"),
    }
    if derivation in ("EmvCommon", "Mastercard", "Emv2000"):
        body["ApplicationTransactionCounter"] = ctx.value("atc")
    if derivation == "Mastercard":
        body["UnpredictableNumber"] = ctx.value("un")
    return {derivation: body}


def _check_arqc(ctx: _Context) -> None:
    from apckx.crypto import emv

    data = ctx.inputs.get("transaction-data")
    if data is None:
        raise InputError("an E0 check needs --input transaction-data=HEX (the ARQC's data)")
    derivation = ctx.value("session-key-derivation")
    expected = ctx.expects.get("arqc")
    local: str | None = None
    if ctx.cleartext is not None:
        icc = _quietly(
            emv.derive_icc_master_key,
            ctx.cleartext,
            ctx.value("pan"),
            ctx.value("psn"),
            mode=ctx.value("key-derivation"),
        )
        extra: dict[str, bytes] = {}
        if derivation in ("EmvCommon", "Mastercard", "Emv2000"):
            extra["atc"] = bytes.fromhex(ctx.value("atc"))
        if derivation == "Mastercard":
            extra["unpredictable_number"] = bytes.fromhex(ctx.value("un"))
        session = _quietly(emv.derive_session_key, icc, derivation, **extra)
        local = _quietly(emv.generate_arqc, session, bytes.fromhex(data)).hex().upper()
        if expected is not None and not hmac.compare_digest(local.encode(), expected.encode()):
            ctx.add(
                "local ARQC",
                [],
                MISMATCH,
                "the ARQC computed from the cleartext differs from --expect arqc",
            )
            return
    arqc = expected or local
    if arqc is None:
        raise InputError("give --expect arqc=HEX or the cleartext key to compute it")
    kwargs = {
        "transaction_data": data,
        "major_key_derivation_mode": ctx.value("key-derivation"),
        "session_key_derivation": _session_attributes(ctx),
    }
    ok = ctx.call(ctx.data.verify_auth_request_cryptogram, ctx.arn, cryptogram=arqc, **kwargs)
    ctx.add(
        "verify ARQC",
        ["VerifyAuthRequestCryptogram"],
        OK if ok else MISMATCH,
        "APC verifies the ARQC" if ok else "APC does not verify the ARQC",
    )
    bad = ctx.call(
        ctx.data.verify_auth_request_cryptogram, ctx.arn, cryptogram=_altered(arqc), **kwargs
    )
    ctx.add(
        "verify altered ARQC",
        ["VerifyAuthRequestCryptogram"],
        MISMATCH if bad else OK,
        "APC accepted an altered ARQC" if bad else "an altered ARQC is refused",
    )


def _check_emv_encryption(ctx: _Context) -> None:
    """E1: EMV EncryptData/DecryptData round trip under the card's session key (R = ATC and
    zeros), compared with the local derivation and TDES-CBC."""
    from apckx.crypto import cipher, emv

    pan, psn, mode = ctx.value("pan"), ctx.value("psn"), ctx.value("key-derivation")
    plaintext = ctx.value("plaintext")
    if (len(plaintext) // 2) % 8:
        raise InputError("--input plaintext must be whole 8-byte blocks for an E1 key")
    derivation_data = ctx.value("atc") + "0" * 12
    attributes = {"Emv": {
        "MajorKeyDerivationMode": mode, "PrimaryAccountNumber": pan, "PanSequenceNumber": psn,
        "SessionDerivationData": derivation_data, "Mode": "CBC"}}  # fmt: skip
    ciphertext = ctx.call(ctx.data.encrypt_data, ctx.arn, plaintext, attributes)
    cleartext = ctx.cleartext

    def local() -> str:
        icc = _quietly(emv.derive_icc_master_key, _need(cleartext), pan, psn, mode=mode)
        session = _quietly(
            emv.derive_session_key,
            icc,
            "EMV_COMMON_SESSION_KEY",
            application_cryptogram=bytes.fromhex(derivation_data),
        )
        data = bytes.fromhex(plaintext)
        return cipher.encrypt_symmetric(session, "TDES", "CBC", data).hex().upper()

    ctx.compare("EMV encrypt", ["EncryptData"], ciphertext, "ciphertext", local)
    back = ctx.call(ctx.data.decrypt_data, ctx.arn, ciphertext, attributes)
    same = hmac.compare_digest(back.upper().encode(), plaintext.upper().encode())
    ctx.add(
        "EMV decrypt round trip",
        ["DecryptData"],
        OK if same else MISMATCH,
        "the plaintext came back" if same else "DecryptData did not give the plaintext back",
    )


def _check_emv_mac(ctx: _Context) -> None:
    from apckx.crypto import mac as macs

    message = ctx.value("message")
    pan, psn, atc = ctx.value("pan"), ctx.value("psn"), ctx.value("atc")
    mode = ctx.value("key-derivation")
    attributes = {
        "EmvMac": {
            "MajorKeyDerivationMode": mode,
            "PrimaryAccountNumber": pan,
            "PanSequenceNumber": psn,
            "SessionKeyDerivationMode": "EMV_COMMON_SESSION_KEY",
            "SessionKeyDerivationValue": {"ApplicationTransactionCounter": atc},
        }
    }
    key = ctx.cleartext

    def local() -> str:
        return (
            macs.generate_emv_mac(
                _need(key),
                bytes.fromhex(message),
                pan=pan,
                pan_sequence_number=psn,
                major_key_derivation_mode=mode,
                session_key_derivation_mode="EMV_COMMON_SESSION_KEY",
                atc=bytes.fromhex(atc),
            )
            .hex()
            .upper()
        )

    _mac_round(ctx, attributes, message, local)


def _check_cvc3(ctx: _Context) -> None:
    from apckx.crypto import card_validation as cv

    pan, psn, atc, un = ctx.value("pan"), ctx.value("psn"), ctx.value("atc"), ctx.value("un")
    track = ctx.inputs.get("track-data") or _default_track(
        pan, ctx.value("expiry"), ctx.value("service-code")
    )
    length = len(ctx.expects["cvc3"]) if "cvc3" in ctx.expects else 3
    key = ctx.cleartext

    def local() -> str:
        return cv.generate_cvc3(_need(key), pan, psn, bytes.fromhex(track), atc, un, length)

    attributes = {
        "DynamicCardVerificationCode": {
            "UnpredictableNumber": un,
            "PanSequenceNumber": psn,
            "ApplicationTransactionCounter": atc,
            "TrackData": track,
        }
    }
    _card_round(ctx, "CVC3", attributes, "CVC3", local)


def _default_track(pan: str, expiry: str, service_code: str) -> str:
    track = f"{pan}D{expiry}{service_code}0000000000"
    return track + "F" if len(track) % 2 else track


def _check_dcvv(ctx: _Context) -> None:
    from apckx.crypto import card_validation as cv

    pan, psn, atc = ctx.value("pan"), ctx.value("psn"), ctx.value("atc")
    expiry, service_code = ctx.value("expiry"), ctx.value("service-code")
    length = len(ctx.expects["dcvv"]) if "dcvv" in ctx.expects else 3
    key = ctx.cleartext

    def local() -> str:
        # jPOS's dCVV (the emulator's; docs/EMULATOR.md): AWS does not publish its own.
        return cv.generate_dcvv(_need(key), pan, psn, expiry, service_code, atc, length)

    attributes = {
        "DynamicCardVerificationValue": {
            "PanSequenceNumber": psn,
            "CardExpiryDate": expiry,
            "ServiceCode": service_code,
            "ApplicationTransactionCounter": atc,
        }
    }
    _card_round(ctx, "dCVV", attributes, "dCVV", local)


Recipe = Callable[[_Context], None]

#: KeyUsage -> recipe.
CHECKS: dict[str, Recipe] = {
    "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY": _check_encryption,
    "TR31_M0_ISO_16609_MAC_KEY": _check_mac,
    "TR31_M1_ISO_9797_1_MAC_KEY": _check_mac,
    "TR31_M3_ISO_9797_3_MAC_KEY": _check_mac,
    "TR31_M6_ISO_9797_5_CMAC_KEY": _check_mac,
    "TR31_M7_HMAC_KEY": _check_mac,
    "TR31_C0_CARD_VERIFICATION_KEY": _check_card_verification,
    "TR31_P0_PIN_ENCRYPTION_KEY": _check_pin_encryption,
    "TR31_B0_BASE_DERIVATION_KEY": _check_bdk,
    "TR31_V1_IBM3624_PIN_VERIFICATION_KEY": _check_pin_verification,
    "TR31_V2_VISA_PIN_VERIFICATION_KEY": _check_pin_verification,
    "TR31_E0_EMV_MKEY_APP_CRYPTOGRAMS": _check_arqc,
    "TR31_E1_EMV_MKEY_CONFIDENTIALITY": _check_emv_encryption,
    "TR31_E2_EMV_MKEY_INTEGRITY": _check_emv_mac,
    "TR31_E4_EMV_MKEY_DYNAMIC_NUMBERS": _check_cvc3,
    "TR31_E6_EMV_MKEY_OTHER": _check_dcvv,
}

#: Usages whose recipe is written but not yet proven against the emulator (see the report):
#: refused with one line rather than run untested.
NOT_SUPPORTED_YET: frozenset[str] = frozenset()


def check_usage_supported(usage: str) -> None:
    """InputError (exit 2) for a usage ``apckx check`` has no recipe for."""
    if usage in NOT_SUPPORTED_YET:
        raise InputError(f"apckx check: {usage} keys are not supported yet")
    if usage not in CHECKS:
        raise InputError(
            f"apckx check has no data-plane check for {usage} keys (it checks D0, M0/M1/M3/M6/"
            "M7, C0, P0, B0, V1, V2, E0, E1, E2, E4 and E6 keys)"
        )


def check_key(
    apc: ApcService,
    data: ApcDataService,
    key: Key,
    *,
    cleartext: bytes | None = None,
    inputs: Mapping[str, str] | None = None,
    expects: Mapping[str, str] | None = None,
    pace: Callable[[], None] | None = None,
) -> KeyCheck:
    """Run the recipe for ``key`` (a GetKey answer) and return what each step showed.

    ``cleartext``: the key itself, when the caller holds it (its KCV is compared with APC's
    first). ``pace``: called before every data-plane call (migrate's token bucket).
    Raises InputError for missing or unusable inputs before the first data-plane call of the
    recipe's step that needs them; APC errors become a ``failed`` step.
    """
    ctx = _Context(data, apc, key, cleartext, inputs or {}, expects or {}, pace)
    check_usage_supported(ctx.usage)
    compared = (
        "cleartext"
        if cleartext is not None
        else "expected values"
        if expects
        else "APC only (round trips)"
    )
    result = KeyCheck(
        ctx.arn, ctx.usage, ctx.algorithm, str(key.get("KeyCheckValue", "")), compared
    )
    if cleartext is not None:
        _check_kcv(ctx, key)
    if any(s.outcome == MISMATCH for s in ctx.steps):
        result.steps = ctx.steps
        return result
    try:
        CHECKS[ctx.usage](ctx)
    except InputError:
        raise
    except ServiceError as exc:
        ctx.add("data-plane call", [exc.operation], FAILED, str(exc))
    except ApckxError as exc:
        ctx.add("local computation", [], FAILED, str(exc))
    result.steps = ctx.steps
    return result


def _check_kcv(ctx: _Context, key: Key) -> None:
    from apckx.crypto.kcv import compute_kcv, kcv_matches

    apc_kcv = str(key.get("KeyCheckValue", ""))
    algorithm = str(key.get("KeyCheckValueAlgorithm") or "")
    if not apc_kcv or not algorithm:
        ctx.add("KCV", [], SKIPPED, "APC reports no key check value")
        return
    mine = compute_kcv(_need(ctx.cleartext), algorithm, key_algorithm=ctx.algorithm)
    if kcv_matches(mine[: len(apc_kcv)], apc_kcv):
        ctx.add("KCV", ["GetKey"], OK, "the cleartext's KCV matches APC's")
    else:
        ctx.add(
            "KCV", ["GetKey"], MISMATCH, "the cleartext's KCV differs from APC's: not the same key"
        )


def describe_outcome(result: KeyCheck) -> str:
    """One line for a summary table: ``ok``, or the outcome and the first step that failed."""
    if result.ok:
        return OK
    bad = next((s for s in result.steps if s.outcome not in (OK, SKIPPED)), None)
    return f"{result.outcome}: {bad.check}" if bad else result.outcome


def make_migration_check(
    apc: ApcService, data: ApcDataService
) -> Callable[[Any, Any, Callable[[], Any]], str]:
    """``migrate --check``'s hook: after each key is in place, run :func:`check_key` on it with
    the row's ``check_input`` / ``expect`` columns (and its cleartext for ``key_hex`` rows),
    paced by ``pace``. Returns one line; never raises (a check cannot fail the import)."""

    def check(row: Any, outcome: Any, pace: Callable[[], Any]) -> str:
        try:
            pace()
            key = apc.get_key(str(outcome.key_arn))
            usage = str(key["KeyAttributes"]["KeyUsage"])
            if usage not in CHECKS or usage in NOT_SUPPORTED_YET:
                return f"skipped: no data-plane check for {usage}"
            result = check_key(
                apc, data, key, cleartext=row.key, inputs=dict(row.check_inputs),
                expects=dict(row.expects), pace=lambda: pace(),
            )  # fmt: skip
        except InputError as exc:
            return f"skipped: {exc}"
        except ApckxError as exc:
            return f"failed: {exc}"
        return describe_outcome(result)

    return check
