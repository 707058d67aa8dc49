"""``export-key --via tr34|rsa`` end to end over real HTTP: the emulator as TR-34 KDH (1-pass
and 2-pass) and RSA-wrap sender to apckx's own RSA key (opened, KCV compared, components or a
TR-31 block under a named KEK) or relayed to a partner's certificate (written 0600, never
opened); the DUKPT initial key; refusals before the call and after a tampered answer, an
expired or spent export token, a block whose nonce is not ours."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apckx._cli import main
from apckx.ceremonies.export_key import read_component_file
from apckx.crypto import certs, kcv, rsa_wrap, tr31, tr34
from apckx.crypto.components import combine_components
from apckx.crypto.dukpt import derive_initial_key
from apckx.crypto.keys import generate_key
from apckx.emulator.pytest_plugin import make_emulator_client, start_test_emulator
from apckx.emulator.requestlog import read_request_log
from apckx.emulator.server import DEFAULT_ACCOUNT_ID, EmulatorConfig
from apckx.service.apc import ApcService
from support.ceremonies import ceremony_resources

pytestmark = pytest.mark.usefixtures("quiet_apckx_loggers")
MODES_B = {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("tr34x")
    log = base / "requests.jsonl"
    running = start_test_emulator(EmulatorConfig(request_log_path=log))
    apc = ApcService(make_emulator_client(running.url))
    ca_key, ca = certs.new_rsa_sender_ca("RSA_2048", common_name="partner root")
    krd_key, krd = certs.new_rsa_wrapping_leaf(ca_key, ca, "RSA_2048")
    partner = base / "partner"
    partner.mkdir()
    (partner / "ca.pem").write_bytes(certs.certificate_to_pem(ca))
    (partner / "krd.pem").write_bytes(certs.certificate_to_pem(krd))
    _, other = certs.new_rsa_sender_ca("RSA_2048", common_name="someone else")
    (partner / "other-ca.pem").write_bytes(certs.certificate_to_pem(other))
    try:
        yield {"url": running.url, "log": log, "apc": apc, "certs": base / "certs",
               "partner": partner, "krd_key": krd_key, "krd": krd,
               "account": running.registry.backend(DEFAULT_ACCOUNT_ID, "us-east-1")}  # fmt: skip
    finally:
        apc.client.close()
        running.stop()


@pytest.fixture
def env(aws_env: dict[str, str], tmp_path: Path, emulator: dict[str, Any]) -> dict[str, Any]:
    return {**emulator, "tmp": tmp_path, "journals": tmp_path / ".apckx" / "ceremonies",
            "aws": ["--endpoint-url", emulator["url"], "--region", "us-east-1"]}  # fmt: skip


def _create(env: dict[str, Any], algorithm: str, usage: str = "TR31_K0_KEY_ENCRYPTION_KEY",
            modes: dict[str, bool] | None = None) -> dict[str, Any]:  # fmt: skip
    key: dict[str, Any] = env["apc"].create_key(
        key_attributes={"KeyAlgorithm": algorithm, "KeyClass": "SYMMETRIC_KEY",
                        "KeyModesOfUse": modes or MODES_B, "KeyUsage": usage},
        exportable=True,
    )  # fmt: skip
    return key


def _export(env: dict[str, Any], key_arn: str, via: str, *extra: str) -> int:
    return main(["export-key", "--key", key_arn, "--via", via, "--certs-dir", str(env["certs"]),
                 "--journal-dir", str(env["journals"]), "--output", "json", *extra,
                 *env["aws"]])  # fmt: skip


def _log_size(env: dict[str, Any]) -> int:
    return len(read_request_log(env["log"])) if env["log"].exists() else 0


def _ops_since(env: dict[str, Any], count: int) -> list[str]:
    return [e.operation for e in read_request_log(env["log"])[count:]]


@pytest.mark.parametrize(
    ("via", "algorithm", "extra"),
    [
        ("tr34", "AES_128", []),
        ("tr34", "TDES_2KEY", ["--one-pass"]),
        ("rsa", "TDES_3KEY", []),
        ("rsa", "AES_128", ["--wrapping-spec", "RSA_OAEP_SHA_512"]),
    ],
)
def test_export_to_apckx_as_components(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], via: str, algorithm: str,
    extra: list[str],
) -> None:  # fmt: skip
    key = _create(env, algorithm)
    out_dir = env["tmp"] / "parts"
    before = _log_size(env)
    rc = _export(env, key["KeyArn"], via, "--components", "2", "--out-dir", str(out_dir), *extra)
    out, err = capsys.readouterr()
    assert rc == 0, err
    data = json.loads(out)
    parts = [read_component_file(Path(c["path"])) for c in data["components"]]
    combined = combine_components(parts)
    assert kcv.kcv_matches(
        kcv.compute_kcv(combined, data["kcv_algorithm"], key_algorithm=algorithm),
        key["KeyCheckValue"],
    )
    assert all(os.stat(c["path"]).st_mode & 0o777 == 0o600 for c in data["components"])
    ops = _ops_since(env, before)
    assert ops[-1] == "ExportKey" and ops[0] == "GetKey"
    assert ("GetParametersForExport" in ops) == (via == "tr34")
    if via == "tr34":
        assert data["passes"] == (1 if extra else 2)
    journal = json.loads((env["journals"] / f"{data['ceremony_id']}.json").read_text())
    assert journal["kind"] == f"export-{via}" and journal["status"] == "complete"
    assert combined.hex() not in (out + err + json.dumps(journal)).lower()


def test_export_to_apckx_as_tr31_under_a_named_kek(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    kek = generate_key("AES_256")
    kek_file = env["tmp"] / "kek.hex"
    kek_file.write_text(kek.hex())
    kek_file.chmod(0o600)
    # The KEK reaches APC over ECDH (AES_256 cannot travel under RSA).
    assert main(["import-kek", "--kek-file", str(kek_file), "--alias", "alias/x-kek",
                 "--certs-dir", str(env["certs"]), "--journal-dir", str(env["journals"]),
                 "--records-dir", str(env["tmp"] / "rec"), *env["aws"]]) == 0  # fmt: skip
    capsys.readouterr()
    key = _create(env, "AES_128", "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY")
    rc = _export(env, key["KeyArn"], "tr34", "--kek-id", "alias/x-kek", "--kek-file",
                 str(kek_file))  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 0, err
    block = json.loads(out)["key_block"]
    header, opened = tr31.unwrap_key_block(kek, block, kbpk_algorithm="AES_256")
    assert header.key_usage == "D0" and header.mode_of_use == "B"
    assert kcv.kcv_matches(kcv.compute_kcv(opened, "CMAC"), key["KeyCheckValue"])


@pytest.mark.parametrize("via", ["tr34", "rsa"])
def test_relay_to_partner(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], via: str
) -> None:
    key = _create(env, "TDES_2KEY")
    out_file = env["tmp"] / "for-hsm.hex"
    rc = _export(env, key["KeyArn"], via, "--krd-certificate", str(env["partner"] / "krd.pem"),
                 "--krd-ca", str(env["partner"] / "ca.pem"), "--out", str(out_file))  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 0, err
    data = json.loads(out)
    assert data["receiver"] == "partner" and "key_block" not in data
    assert os.stat(out_file).st_mode & 0o777 == 0o600
    text = out_file.read_text().strip()
    if via == "tr34":
        parsed = tr34.parse_key_block(tr34.key_block_from_hex(text))
        assert parsed.recipient.matches(env["krd"])
        assert data["random_nonce"] == parsed.nonce.hex().upper()  # type: ignore[union-attr]
        # apckx checked APC's signature and the nonce; the partner's HSM opens the block.
        opened = _open_as_partner(env, text, parsed)
    else:
        opened = rsa_wrap.unwrap_key(rsa_wrap.cryptogram_from_hex(text), env["krd_key"])
    assert kcv.kcv_matches(kcv.compute_kcv(opened, "ANSI_X9_24"), key["KeyCheckValue"])


def _open_as_partner(env: dict[str, Any], text: str, parsed: Any) -> bytes:
    """The partner's side: decrypt the envelope and the key block with its KRD key."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives import padding as sym_padding
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    content_key = env["krd_key"].decrypt(
        parsed.encrypted_content_key, rsa_wrap.oaep_padding("RSA_OAEP_SHA_256")
    )
    decryptor = Cipher(TripleDES(content_key), modes.CBC(parsed.iv)).decryptor()
    padded = decryptor.update(parsed.encrypted_key_block) + decryptor.finalize()
    unpadder = sym_padding.PKCS7(64).unpadder()
    plain = unpadder.update(padded) + unpadder.finalize()
    from asn1crypto import core

    content = core.Sequence.load(plain)
    key: bytes = content[2].native
    return key


def test_ipek_relayed_to_partner(env: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    bdk = generate_key("TDES_2KEY")
    bdk_file = env["tmp"] / "bdk.hex"
    bdk_file.write_text(bdk.hex())
    bdk_file.chmod(0o600)
    assert main(["import-key", "--via", "rsa", "--key-file", str(bdk_file), "--key-usage", "B0",
                 "--key-algorithm", "TDES_2KEY", "--wrapping-key-algorithm", "RSA_2048",
                 "--alias", "alias/bdk-ipek", "--journal-dir", str(env["journals"]),
                 *env["aws"]]) == 0  # fmt: skip
    capsys.readouterr()
    ksn = "FFFF9876543210E00001"
    out_file = env["tmp"] / "ipek.hex"
    rc = _export(env, "alias/bdk-ipek", "rsa", "--ipek", "--ksn", ksn, "--krd-certificate",
                 str(env["partner"] / "krd.pem"), "--krd-ca", str(env["partner"] / "ca.pem"),
                 "--out", str(out_file))  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 0, err
    opened = rsa_wrap.unwrap_key(
        rsa_wrap.cryptogram_from_hex(out_file.read_text().strip()), env["krd_key"]
    )
    assert opened == derive_initial_key(bdk, bytes.fromhex(ksn), "TDES_2KEY")
    assert json.loads(out)["ipek_ksn"] == ksn


def test_krd_certificate_not_under_named_ca_refused_before_any_call(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    before = _log_size(env)
    rc = _export(env, "alias/whatever", "tr34", "--krd-certificate",
                 str(env["partner"] / "krd.pem"), "--krd-ca", str(env["partner"] / "other-ca.pem"),
                 "--out", str(env["tmp"] / "never.hex"))  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "does not verify under --krd-ca" in err
    assert _log_size(env) == before and not (env["tmp"] / "never.hex").exists()


def test_aes128_to_partner_rsa2048_refused_before_export(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    key = _create(env, "AES_128")
    before = _log_size(env)
    partner = env["partner"]
    rc = _export(env, key["KeyArn"], "tr34", "--krd-certificate", str(partner / "krd.pem"),
                 "--krd-ca", str(partner / "ca.pem"), "--out", str(env["tmp"] / "n"))  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "RSA_2048 carries TDES keys only" in err
    assert _ops_since(env, before) == ["GetKey"]


def test_tampered_tr34_answer_refused_nothing_written(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = _create(env, "TDES_2KEY")
    original = ApcService.export_key

    def tampered(self: ApcService, **kwargs: Any) -> dict[str, Any]:
        wrapped = original(self, **kwargs)
        material = wrapped["KeyMaterial"]
        flipped = material[:-8] + ("0" if material[-8] != "0" else "1") + material[-7:]
        return {**wrapped, "KeyMaterial": flipped}

    monkeypatch.setattr(ApcService, "export_key", tampered)
    out_dir = env["tmp"] / "parts"
    rc = _export(env, key["KeyArn"], "tr34", "--components", "2", "--out-dir", str(out_dir))
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "signature verification failed" in err
    assert not out_dir.exists()
    cid = err.split("ceremony ")[1].split()[0]
    journal = json.loads((env["journals"] / f"{cid}.json").read_text())
    assert journal["status"] == "failed"


@pytest.mark.parametrize("via", ["tr34", "rsa"])
def test_ipek_to_apckx_as_components(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], via: str
) -> None:
    bdk = generate_key("AES_128")
    bdk_file = env["tmp"] / "bdk.hex"
    bdk_file.write_text(bdk.hex())
    bdk_file.chmod(0o600)
    alias = f"alias/bdk-aes-{via}"
    assert main(["import-key", "--via", "rsa", "--key-file", str(bdk_file), "--key-usage", "B0",
                 "--key-algorithm", "AES_128", "--alias", alias, "--journal-dir",
                 str(env["journals"]), *env["aws"]]) == 0  # fmt: skip
    capsys.readouterr()
    ksn = "123456789012345600000001"
    rc = _export(env, alias, via, "--ipek", "--ksn", ksn, "--components", "2", "--out-dir",
                 str(env["tmp"] / "ipek-parts"))  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 0, err
    data = json.loads(out)
    parts = [read_component_file(Path(c["path"])) for c in data["components"]]
    assert combine_components(parts) == derive_initial_key(bdk, bytes.fromhex(ksn), "AES_128")
    if via == "tr34":
        assert data["header"].startswith("D9999B1AX")


def _assert_refused_after_export_call(
    env: dict[str, Any], rc: int, err: str, message: str, written: Path
) -> None:
    """One line naming ``message``, exit 1, nothing written; the journal failed and lists
    every key and alias the ceremony left in APC (the root of a new certs dir), which cleanup
    rolls back."""
    assert rc == 1 and err.count("\n") == 1, err
    assert message in err
    assert not written.exists()
    cid = err.split("ceremony ")[1].split()[0]
    journal = json.loads((env["journals"] / f"{cid}.json").read_text())
    assert journal["status"] == "failed" and message in journal["error"]
    keys, aliases = ceremony_resources(env["apc"], cid)
    journaled = journal["resources"]
    assert keys and keys == {r["arn"] for r in journaled if r["kind"] == "key" and r["created"]}
    assert aliases == {r["alias"] for r in journaled if r["kind"] == "alias"}
    assert f"apckx cleanup --ceremony {cid}" in err
    assert main(["cleanup", "--ceremony", cid, "--journal-dir", str(env["journals"]),
                 *env["aws"]]) == 0  # fmt: skip
    apc: ApcService = env["apc"]
    assert all(apc.get_key(arn)["KeyState"] == "DELETE_PENDING" for arn in keys)


def test_export_token_expired_before_export_key_refused(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator's clock passes the token's 30 days between GetParametersForExport and
    ExportKey: APC refuses the token, apckx says so in one line, exit 1, journal complete."""
    import time

    from apckx.service import key_exchange

    key = _create(env, "TDES_2KEY")
    account = env["account"]
    original = key_exchange.get_parameters_for_export

    def then_expire(apc: ApcService, **kwargs: Any) -> dict[str, Any]:
        params = original(apc, **kwargs)
        account.clock = lambda: time.time() + 31 * 86400
        return params

    monkeypatch.setattr(key_exchange, "get_parameters_for_export", then_expire)
    out_dir = env["tmp"] / "parts"
    try:
        rc = _export(env, key["KeyArn"], "tr34", "--components", "2", "--out-dir",
                     str(out_dir), "--certs-dir", str(env["tmp"] / "certs-expired"))  # fmt: skip
    finally:
        account.clock = time.time
    err = capsys.readouterr().err
    _assert_refused_after_export_call(env, rc, err, "has expired", out_dir)
    assert "ExportKey failed: ValidationException" in err


def test_export_token_already_spent_refused(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GetParametersForExport answers with a token an earlier export already spent (a
    replayed answer): APC refuses it; one line, exit 1, journal complete."""
    from apckx.service import key_exchange

    original = key_exchange.get_parameters_for_export
    answers: list[dict[str, Any]] = []

    def replay(apc: ApcService, **kwargs: Any) -> dict[str, Any]:
        if not answers:
            answers.append(original(apc, **kwargs))
        return answers[0]

    monkeypatch.setattr(key_exchange, "get_parameters_for_export", replay)
    first = _create(env, "TDES_2KEY")
    rc = _export(env, first["KeyArn"], "tr34", "--components", "2", "--out-dir",
                 str(env["tmp"] / "first"))  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    key = _create(env, "TDES_2KEY")
    out_dir = env["tmp"] / "parts"
    before = _log_size(env)
    rc = _export(env, key["KeyArn"], "tr34", "--components", "2", "--out-dir", str(out_dir),
                 "--certs-dir", str(env["tmp"] / "certs-spent"))  # fmt: skip
    err = capsys.readouterr().err
    _assert_refused_after_export_call(env, rc, err, "already been used", out_dir)
    assert "ExportKey failed: ValidationException" in err
    assert "GetParametersForExport" not in _ops_since(env, before)  # the answer was replayed


@pytest.mark.parametrize(
    ("answer", "relay"),
    [("another nonce", False), ("another nonce", True), ("1-pass", False), ("2-pass", True)],
)
def test_exported_block_without_our_nonce_refused(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    answer: str, relay: bool,
) -> None:  # fmt: skip
    """APC's block (validly signed by APC) does not carry the nonce apckx sent: another nonce
    (a replayed or substituted block), no nonce (a 1-pass block for a 2-pass request), or a
    nonce when apckx asked 1-pass. Refused after the call, before the block is opened or
    relayed: one line, exit 1, nothing written, journal complete."""
    key = _create(env, "TDES_2KEY")
    original = ApcService.export_key
    sent: list[str | None] = []

    def substituted(self: ApcService, **kwargs: Any) -> dict[str, Any]:
        member = dict(kwargs["key_material"]["Tr34KeyBlock"])
        sent.append(member.pop("RandomNonce", None))
        if answer != "1-pass":
            member["RandomNonce"] = os.urandom(8).hex().upper()
        return original(self, **{**kwargs, "key_material": {"Tr34KeyBlock": member}})

    monkeypatch.setattr(ApcService, "export_key", substituted)
    out = env["tmp"] / ("for-hsm.hex" if relay else "parts")
    extra = ["--certs-dir", str(env["tmp"] / "certs-nonce")]
    if answer == "2-pass":
        extra.append("--one-pass")
    if relay:
        ca = certs.load_certificates_pem((env["partner"] / "ca.pem").read_bytes())[0]
        alias = f"alias/nonce-krd-{certs.fingerprint_sha256(ca)[:8].lower()}-{answer[0]}"
        partner = env["partner"]
        extra += ["--krd-certificate", str(partner / "krd.pem"), "--krd-ca",
                  str(partner / "ca.pem"), "--out", str(out), "--root-alias", alias]  # fmt: skip
    else:
        extra += ["--components", "2", "--out-dir", str(out)]
    rc = _export(env, key["KeyArn"], "tr34", *extra)
    err = capsys.readouterr().err
    assert len(sent) == 1 and (sent[0] is None) == (answer == "2-pass"), err
    _assert_refused_after_export_call(
        env, rc, err, "does not carry the random nonce apckx sent", out
    )


@pytest.mark.parametrize("failure", ["empty answer", "unexpected error"])
def test_export_answer_unusable_journal_finished(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:  # fmt: skip
    """An ExportKey answer without KeyMaterial is refused (exit 1, not 2: it is APC's answer,
    not the caller's input); an unexpected error still finishes the journal as failed."""
    key = _create(env, "TDES_2KEY")

    def broken(self: ApcService, **kwargs: Any) -> dict[str, Any]:
        if failure == "unexpected error":
            raise RuntimeError("boom")
        return {}

    monkeypatch.setattr(ApcService, "export_key", broken)
    out_dir = env["tmp"] / "parts"
    rc = _export(env, key["KeyArn"], "tr34", "--components", "2", "--out-dir", str(out_dir),
                 "--certs-dir", str(env["tmp"] / "certs-broken"))  # fmt: skip
    err = capsys.readouterr().err
    message = "APC's answer is refused" if failure == "empty answer" else "RuntimeError"
    _assert_refused_after_export_call(env, rc, err, message, out_dir)
