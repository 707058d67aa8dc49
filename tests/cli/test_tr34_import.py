"""``import-kek --via tr34`` and ``import-key --via tr34|rsa`` end to end over real HTTP:
apckx as TR-34 KDH (1-pass and 2-pass) and RSA-wrap sender into the emulator, KCVs equal,
the sender root reused, the calls as the emulator's request log saw them; refusals before
any call (strength), after the call (a tampered answer, an expired or spent import token, a
nonce mismatch), journals complete, cleanup."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apckx._cli import main
from apckx.ceremonies.import_key import compute_key_kcv
from apckx.crypto.keys import generate_key
from apckx.emulator.pytest_plugin import make_emulator_client, start_test_emulator
from apckx.emulator.requestlog import read_request_log
from apckx.emulator.server import DEFAULT_ACCOUNT_ID, EmulatorConfig
from apckx.service.apc import ApcService
from support.ceremonies import ceremony_resources

pytestmark = pytest.mark.usefixtures("quiet_apckx_loggers")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("tr34")
    log = base / "requests.jsonl"
    running = start_test_emulator(EmulatorConfig(request_log_path=log))
    apc = ApcService(make_emulator_client(running.url))
    try:
        yield {
            "url": running.url,
            "log": log,
            "apc": apc,
            "certs": base / "certs",
            "account": running.registry.backend(DEFAULT_ACCOUNT_ID, "us-east-1"),
        }
    finally:
        apc.client.close()
        running.stop()


@pytest.fixture
def env(aws_env: dict[str, str], tmp_path: Path, emulator: dict[str, Any]) -> dict[str, Any]:
    return {**emulator, "tmp": tmp_path, "journals": tmp_path / ".apckx" / "ceremonies",
            "aws": ["--endpoint-url", emulator["url"], "--region", "us-east-1"]}  # fmt: skip


def _key_file(tmp: Path, key: bytes, name: str = "key.hex") -> Path:
    path = tmp / name
    path.write_text(key.hex())
    path.chmod(0o600)
    return path


def _operations_since(log: Path, count: int) -> list[str]:
    return [entry.operation for entry in read_request_log(log)[count:]]


def _log_size(log: Path) -> int:
    return len(read_request_log(log)) if log.exists() else 0


def _journal(env: dict[str, Any], cid: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((env["journals"] / f"{cid}.json").read_text())
    return data


def _import_key(env: dict[str, Any], key: bytes, via: str, *extra: str) -> int:
    return main(
        ["import-key", "--via", via, "--key-file", str(_key_file(env["tmp"], key)),
         "--certs-dir", str(env["certs"]), "--journal-dir", str(env["journals"]),
         "--output", "json", *extra, *env["aws"]]
    )  # fmt: skip


def test_import_kek_over_tr34_two_pass_then_root_reused(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    kek = generate_key("AES_128")
    kek_file = _key_file(env["tmp"], kek, "kek.hex")
    before = _log_size(env["log"])
    argv = ["import-kek", "--via", "tr34", "--kek-file", str(kek_file), "--certs-dir",
            str(env["certs"]), "--journal-dir", str(env["journals"]), "--records-dir",
            str(env["tmp"] / "records"), "--output", "json", *env["aws"]]  # fmt: skip
    rc = main([*argv, "--alias", "alias/tr34-kek"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    data = json.loads(out)
    assert data["kcv"] == data["local_kcv"] == compute_key_kcv(kek, "AES_128")
    assert data["passes"] == 2 and len(data["random_nonce"]) == 16
    assert data["wrapping_key_algorithm"] == "RSA_3072" and data["header"] == "D9999K0AB00E0000"
    assert data["root_reused"] is False
    ops = _operations_since(env["log"], before)
    assert ops[-3:] == ["GetParametersForImport", "ImportKey", "CreateAlias"]
    assert ops.count("ImportKey") == 2  # the root, then the KEK
    apc: ApcService = env["apc"]
    key = apc.get_key("alias/tr34-kek")
    assert key["KeyArn"] == data["key_arn"] and key["KeyAttributes"]["KeyAlgorithm"] == "AES_128"
    journal = _journal(env, data["ceremony_id"])
    assert journal["kind"] == "kek-tr34" and journal["status"] == "complete"
    roles = {(r["kind"], r["role"]) for r in journal["resources"]}
    assert roles == {("key", "tr34-root"), ("alias", "tr34-root"), ("key", "kek"),
                     ("alias", "kek")}  # fmt: skip
    assert kek.hex() not in json.dumps(journal).lower() and kek.hex() not in (out + err).lower()
    key_modes = os.stat(env["certs"] / "rsa_signing_key.pem").st_mode & 0o777
    assert key_modes == 0o600
    # A second ceremony from the same certs dir reuses the root (tag = CA fingerprint).
    before = _log_size(env["log"])
    rc = main([*argv, "--alias", "alias/tr34-kek-2"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    again = json.loads(out)
    assert again["root_reused"] is True and again["root_key_arn"] == data["root_key_arn"]
    assert _operations_since(env["log"], before) == [
        "GetKey", "GetKey", "ListTagsForResource", "GetParametersForImport", "ImportKey",
        "CreateAlias",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("via", "algorithm", "extra"),
    [
        ("tr34", "TDES_2KEY", ["--one-pass", "--wrapping-key-algorithm", "RSA_2048"]),
        ("tr34", "TDES_3KEY", []),
        ("rsa", "TDES_3KEY", ["--wrapping-key-algorithm", "RSA_2048"]),
        ("rsa", "AES_128", ["--wrapping-spec", "RSA_OAEP_SHA_512"]),
        ("rsa", "AES_128", ["--wrapping-key-algorithm", "RSA_4096"]),
    ],
)
def test_import_key_over_tr34_and_rsa(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], via: str, algorithm: str,
    extra: list[str],
) -> None:  # fmt: skip
    key = generate_key(algorithm)
    alias = f"alias/{via}-{algorithm.lower()}-{'-'.join(extra).lower()}"
    before = _log_size(env["log"])
    rc = _import_key(env, key, via, "--key-usage", "D0", "--key-algorithm", algorithm,
                     "--alias", alias, *extra)  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 0, err
    data = json.loads(out)
    assert data["kcv"] == compute_key_kcv(key, algorithm) == data["local_kcv"]
    ops = _operations_since(env["log"], before)
    got = env["apc"].get_key(alias)
    assert got["KeyAttributes"]["KeyUsage"] == "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY"
    assert got["KeyAttributes"]["KeyAlgorithm"] == algorithm
    assert ops[-3:] == ["GetParametersForImport", "ImportKey", "CreateAlias"]
    journal = _journal(env, data["ceremony_id"])
    assert journal["kind"] == f"key-{via}" and journal["status"] == "complete"
    if via == "tr34":
        assert data["passes"] == (1 if "--one-pass" in extra else 2)
    else:
        assert data["wrapping_spec"] == (
            "RSA_OAEP_SHA_512" if "RSA_OAEP_SHA_512" in extra else "RSA_OAEP_SHA_256"
        )
        assert ops == ["GetKey", "GetParametersForImport", "ImportKey", "CreateAlias"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--via", "tr34", "--key-algorithm", "AES_128", "--wrapping-key-algorithm", "RSA_2048"],
            "RSA_2048 carries TDES keys only",
        ),
        (["--via", "rsa", "--key-algorithm", "AES_256"], "cannot be carried under RSA"),
        (["--via", "rsa", "--key-algorithm", "TDES_2KEY", "--one-pass"], "--one-pass is for"),
        (["--via", "tr34", "--key-algorithm", "TDES_2KEY", "--shared-info", "0011"], "ECDH option"),
        (
            ["--via", "ecdh", "--key-algorithm", "AES_128", "--wrapping-key-algorithm", "RSA_3072"],
            "is for --via tr34 or rsa",
        ),
    ],
)
def test_refused_before_any_call(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    before = _log_size(env["log"])
    rc = main(["import-key", "--key-file", str(_key_file(env["tmp"], generate_key("TDES_2KEY"))),
               "--key-usage", "D0", "--alias", "alias/never", "--certs-dir", str(env["certs"]),
               "--journal-dir", str(env["journals"]), *extra, *env["aws"]])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err and err.count("\n") == 1
    assert _log_size(env["log"]) == before
    assert not env["journals"].exists() or not list(env["journals"].iterdir())


def test_import_kek_aes128_under_rsa2048_refused_before_any_call(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    before = _log_size(env["log"])
    rc = main(["import-kek", "--via", "tr34", "--kek-file",
               str(_key_file(env["tmp"], generate_key("AES_128"))), "--wrapping-key-algorithm",
               "RSA_2048", "--certs-dir", str(env["certs"]), *env["aws"]])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "AES_128 key needs RSA_3072 or RSA_4096" in err and err.count("\n") == 1
    assert _log_size(env["log"]) == before


def test_tampered_kcv_answer_refused_after_the_call_and_rolled_back(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = ApcService.import_key

    def tampered(self: ApcService, **kwargs: Any) -> Any:
        key = original(self, **kwargs)
        if "Tr34KeyBlock" in kwargs["key_material"]:
            key = {**key, "KeyCheckValue": "000000"}
        return key

    monkeypatch.setattr(ApcService, "import_key", tampered)
    rc = _import_key(env, generate_key("TDES_2KEY"), "tr34", "--key-usage", "D0",
                     "--key-algorithm", "TDES_2KEY", "--alias", "alias/tampered")  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "does not match the local KCV" in err
    cid = err.split("ceremony ")[1].split()[0]
    journal = _journal(env, cid)
    assert journal["status"] == "failed"
    imported = [r for r in journal["resources"] if r["role"] == "working"]
    assert [r["kind"] for r in imported] == ["key"]  # no alias was pointed at it
    monkeypatch.setattr(ApcService, "import_key", original)
    assert main(["cleanup", "--ceremony", cid, "--journal-dir", str(env["journals"]),
                 *env["aws"]]) == 0  # fmt: skip
    capsys.readouterr()
    assert env["apc"].get_key(imported[0]["arn"])["KeyState"] == "DELETE_PENDING"


def test_wrapping_certificate_not_under_apc_chain_refused(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from apckx.crypto import certs
    from apckx.service import key_exchange

    original = key_exchange.get_parameters_for_import
    ca_key, ca = certs.new_rsa_sender_ca("RSA_2048", common_name="not APC")

    def swapped(apc: ApcService, **kwargs: Any) -> dict[str, Any]:
        params = original(apc, **kwargs)
        _, leaf = certs.new_rsa_wrapping_leaf(ca_key, ca, "RSA_2048")
        return {**params, "WrappingKeyCertificate": certs.certificate_to_apc(leaf)}

    monkeypatch.setattr(key_exchange, "get_parameters_for_import", swapped)
    before = _log_size(env["log"])
    rc = _import_key(env, generate_key("TDES_2KEY"), "rsa", "--key-usage", "D0",
                     "--key-algorithm", "TDES_2KEY", "--wrapping-key-algorithm", "RSA_2048",
                     "--alias", "alias/swapped")  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "not by the CA given" in err
    assert "ImportKey" not in _operations_since(env["log"], before)
    cid = err.split("ceremony ")[1].split()[0]
    assert _journal(env, cid)["status"] == "failed"


def test_nonce_mismatch_refused_by_apc_one_line_journal_failed(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block built with another nonce than the RandomNonce sent: APC refuses the import
    (ValidationException); apckx says so in one line, exit 1, journal failed."""
    from apckx.crypto import tr34

    original = tr34.build_key_block

    def other_nonce(*args: Any, **kwargs: Any) -> bytes:
        kwargs["nonce"] = bytes(8)
        return original(*args, **kwargs)

    monkeypatch.setattr(tr34, "build_key_block", other_nonce)
    rc = _import_key(env, generate_key("TDES_2KEY"), "tr34", "--key-usage", "D0",
                     "--key-algorithm", "TDES_2KEY", "--alias", "alias/bad-nonce")  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1
    assert "ImportKey failed: ValidationException" in err
    cid = err.split("ceremony ")[1].split()[0]
    journal = _journal(env, cid)
    assert journal["status"] == "failed"
    assert not [r for r in journal["resources"] if r["role"] == "working"]
    assert env["apc"].find_key("alias/bad-nonce") is None


def test_pinned_apc_root_mismatch_refused_before_import(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    before = _log_size(env["log"])
    rc = _import_key(env, generate_key("TDES_2KEY"), "rsa", "--key-usage", "D0",
                     "--key-algorithm", "TDES_2KEY", "--wrapping-key-algorithm", "RSA_2048",
                     "--alias", "alias/pinned", "--trust-apc-root", "AB" * 32)  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "--trust-apc-root pins" in err
    assert "ImportKey" not in _operations_since(env["log"], before)


def test_cleanup_rolls_back_a_tr34_kek_ceremony(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A ceremony from a new certs dir (a new CA, imported as a root) is rolled back whole:
    the KEK, the root and both aliases."""
    certs_dir = env["tmp"] / "certs-new"
    rc = main(["import-kek", "--via", "tr34", "--kek-file",
               str(_key_file(env["tmp"], generate_key("TDES_3KEY"))), "--key-algorithm",
               "TDES_3KEY", "--alias", "alias/kek-rollback", "--root-alias",
               "alias/root-rollback", "--certs-dir", str(certs_dir), "--journal-dir",
               str(env["journals"]), "--records-dir", str(env["tmp"] / "records"),
               "--output", "json", *env["aws"]])  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 0, err
    data = json.loads(out)
    assert data["root_reused"] is False
    rc = main(["cleanup", "--ceremony", data["ceremony_id"], "--journal-dir",
               str(env["journals"]), *env["aws"]])  # fmt: skip
    capsys.readouterr()
    assert rc == 0
    apc: ApcService = env["apc"]
    assert apc.get_key(data["key_arn"])["KeyState"] == "DELETE_PENDING"
    assert apc.get_key(data["root_key_arn"])["KeyState"] == "DELETE_PENDING"
    names = {a["AliasName"] for a in apc.list_aliases()}
    assert not names & {"alias/kek-rollback", "alias/root-rollback"}
    assert _journal(env, data["ceremony_id"])["status"] == "rolled_back"


def _assert_failed_journal_complete(env: dict[str, Any], err: str) -> dict[str, Any]:
    """The journal says failed and lists every key and alias the ceremony left in APC (a
    TR-34 ceremony from a new certs dir imports its root; RSA wrap creates nothing before
    ImportKey); cleanup rolls them back."""
    cid = err.split("ceremony ")[1].split()[0]
    journal = _journal(env, cid)
    assert journal["status"] == "failed" and journal["error"]
    keys, aliases = ceremony_resources(env["apc"], cid)
    journaled = journal["resources"]
    assert keys == {r["arn"] for r in journaled if r["kind"] == "key" and r["created"]}
    assert aliases == {r["alias"] for r in journaled if r["kind"] == "alias"}
    assert (f"apckx cleanup --ceremony {cid}" in err) == bool(keys)
    if keys:
        assert main(["cleanup", "--ceremony", cid, "--journal-dir", str(env["journals"]),
                     *env["aws"]]) == 0  # fmt: skip
    apc: ApcService = env["apc"]
    assert all(apc.get_key(arn)["KeyState"] == "DELETE_PENDING" for arn in keys)
    return journal


@pytest.mark.parametrize("via", ["tr34", "rsa"])
def test_import_token_expired_before_import_key_refused(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    via: str,
) -> None:  # fmt: skip
    """The emulator's clock passes the token's 30 days between GetParametersForImport and
    ImportKey: APC refuses the token; apckx says so in one line, exit 1, journal complete."""
    import time

    from apckx.service import key_exchange

    account = env["account"]
    original = key_exchange.get_parameters_for_import

    def then_expire(apc: ApcService, **kwargs: Any) -> dict[str, Any]:
        params = original(apc, **kwargs)
        account.clock = lambda: time.time() + 31 * 86400
        return params

    monkeypatch.setattr(key_exchange, "get_parameters_for_import", then_expire)
    try:
        rc = _import_key(env, generate_key("TDES_2KEY"), via, "--key-usage", "D0",
                         "--key-algorithm", "TDES_2KEY", "--wrapping-key-algorithm", "RSA_2048",
                         "--certs-dir", str(env["tmp"] / "certs-expired"),
                         "--alias", f"alias/expired-{via}")  # fmt: skip
    finally:
        account.clock = time.time
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1, err
    assert "ImportKey failed: ValidationException" in err and "has expired" in err
    journal = _assert_failed_journal_complete(env, err)
    assert not [r for r in journal["resources"] if r["role"] == "working"]
    assert env["apc"].find_key(f"alias/expired-{via}") is None


@pytest.mark.parametrize("via", ["tr34", "rsa"])
def test_import_token_already_spent_refused(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    via: str,
) -> None:  # fmt: skip
    """GetParametersForImport answers with a token an earlier import already spent (a
    replayed answer): APC refuses it; apckx says so in one line, exit 1, journal complete."""
    from apckx.service import key_exchange

    original = key_exchange.get_parameters_for_import
    answers: list[dict[str, Any]] = []

    def replay(apc: ApcService, **kwargs: Any) -> dict[str, Any]:
        if not answers:
            answers.append(original(apc, **kwargs))
        return answers[0]

    monkeypatch.setattr(key_exchange, "get_parameters_for_import", replay)
    common = ["--key-usage", "D0", "--key-algorithm", "TDES_2KEY", "--wrapping-key-algorithm",
              "RSA_2048"]  # fmt: skip
    rc = _import_key(env, generate_key("TDES_2KEY"), via, *common,
                     "--alias", f"alias/spent-first-{via}")  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    before = _log_size(env["log"])
    rc = _import_key(env, generate_key("TDES_2KEY"), via, *common,
                     "--certs-dir", str(env["tmp"] / "certs-spent"),
                     "--alias", f"alias/spent-again-{via}")  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1, err
    assert "ImportKey failed: ValidationException" in err and "already been used" in err
    assert "GetParametersForImport" not in _operations_since(env["log"], before)  # replayed
    journal = _assert_failed_journal_complete(env, err)
    assert not [r for r in journal["resources"] if r["role"] == "working"]
    assert env["apc"].find_key(f"alias/spent-again-{via}") is None
