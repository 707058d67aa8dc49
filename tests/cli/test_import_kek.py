"""``apckx import-kek`` end to end against the emulator over HTTP (real crypto both sides)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from apckx._cli import main
from apckx.cli import keyinput
from apckx.crypto.attributes import default_kcv_algorithm
from apckx.crypto.components import combine_components
from apckx.crypto.kcv import compute_kcv
from apckx.emulator.pytest_plugin import make_emulator_client
from apckx.emulator.requestlog import read_request_log, sequential_stages
from apckx.emulator.server import EmulatorConfig, RunningEmulator, parse_fault_spec, start_emulator

KEK_HEX = "7B2A64E1C1D0A7F5396D1E2A0B8C4F3E5D6A7B8C9D0E1F2A3B4C5D6E7F809112"
AES128_HEX = "2B7E151628AED2A6ABF7158809CF4F3C"
AES192_HEX = "8E73B0F7DA0E6452C810F32B809079E562F8EAD2522C6B7B"
TDES2_HEX = "0123456789ABCDEFFEDCBA9876543210"
TDES3_HEX = "0123456789ABCDEFFEDCBA987654321089ABCDEF01234567"


def kcv(key_hex: str, algorithm: str) -> str:
    key = bytes.fromhex(key_hex)
    return compute_kcv(key, default_kcv_algorithm(algorithm), key_algorithm=algorithm)


@dataclass
class Emu:
    running: RunningEmulator
    log_path: Path
    client: Any

    @property
    def url(self) -> str:
        return self.running.url

    def operations(self) -> list[str]:
        if not self.log_path.exists():
            return []
        return [e.operation for e in read_request_log(self.log_path)]

    def clear_log(self) -> None:
        self.log_path.write_text("")


@pytest.fixture
def workdir(aws_env: dict[str, str], tmp_path: Path) -> Path:
    """A clean cwd and an AWS environment that only knows the emulator's test credentials."""
    return tmp_path


def start(tmp_path: Path, *faults: str, latency_ms: float = 0.0) -> Emu:
    log_path = tmp_path / "requests.jsonl"
    running = start_emulator(
        EmulatorConfig(
            request_log_path=log_path,
            faults=tuple(parse_fault_spec(f) for f in faults),
            latency_ms=latency_ms,
        )
    )
    return Emu(running, log_path, make_emulator_client(running.url))


@pytest.fixture
def emu(workdir: Path) -> Iterator[Emu]:
    emulator = start(workdir)
    try:
        yield emulator
    finally:
        emulator.client.close()
        emulator.running.stop()


def kek_cli(emu: Emu, *args: str) -> int:
    return main(["import-kek", "--region", "us-east-1", "--endpoint-url", emu.url, *args])


def run_json(
    emu: Emu, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, Any], str]:
    rc = kek_cli(emu, "--output", "json", *args)
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if rc == 0 else {}), err


# -- the sample's invocation and defaults ------------------------------------------------------
def test_sample_invocation_defaults(
    emu: Emu, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("aws-config").write_text("[default]\nregion = eu-west-1\n")
    Path("aws-credentials").write_text(
        "[default]\naws_access_key_id = test\naws_secret_access_key = test\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", "aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "aws-credentials")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    # The AWS sample's command line, plus the emulator's endpoint.
    rc = kek_cli(emu, "--profile", "default", "--kek", KEK_HEX)
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "warning: --kek puts the key on the command line" in err
    assert f"{kcv(KEK_HEX, 'AES_256')} (APC) = {kcv(KEK_HEX, 'AES_256')} (local)" in out
    assert "alias/import-kek-ecdh-result" in out
    # APC agrees: the alias points at an AES_256 K0 key with the right KCV.
    key = emu.client.get_key(KeyIdentifier="alias/import-kek-ecdh-result")["Key"]
    assert key["KeyAttributes"]["KeyAlgorithm"] == "AES_256"
    assert key["KeyAttributes"]["KeyUsage"] == "TR31_K0_KEY_ENCRYPTION_KEY"
    assert key["KeyCheckValue"] == kcv(KEK_HEX, "AES_256")
    receiver = emu.client.get_key(KeyIdentifier="alias/import-kek-ecdh-receiver")["Key"]
    assert receiver["KeyAttributes"]["KeyAlgorithm"] == "ECC_NIST_P521"
    assert receiver["DeriveKeyUsage"] == "TR31_K1_KEY_BLOCK_PROTECTION_KEY"
    root = emu.client.get_key(KeyIdentifier="alias/import-kek-ecdh-sender-root")["Key"]
    assert root["KeyAttributes"]["KeyClass"] == "PUBLIC_KEY"
    # Credentials as the sample lays them out, private keys 0600.
    certs = Path("certs")
    for name in ("sender_ca_key.pem", "sender_ca_cert.pem"):
        assert (certs / name).is_file()
    assert not (certs / "sender_key.pem").exists()  # the ECDH leaf is ephemeral, in memory
    assert stat.S_IMODE((certs / "sender_ca_key.pem").stat().st_mode) == 0o600
    # Every created key is tagged with the ceremony id.
    journal_files = list(Path(".apckx/ceremonies").glob("*.json"))
    assert len(journal_files) == 1
    journal = json.loads(journal_files[0].read_text())
    assert journal["status"] == "complete"
    for resource in journal["resources"]:
        if resource["kind"] == "key":
            tags = emu.client.list_tags_for_resource(ResourceArn=resource["arn"])["Tags"]
            assert {"Key": "apckx:ceremony", "Value": journal["ceremony_id"]} in tags
    record = json.loads(Path(f".apckx/records/{journal['ceremony_id']}.json").read_text())
    assert record["who"] and record["host"]
    assert [c["operation"] for c in record["api_calls"]].count("ImportKey") == 2


def test_json_output_fields(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    rc, data, _ = run_json(emu, capsys, "--kek", KEK_HEX)
    assert rc == 0
    for field in (
        "ceremony_id",
        "key_arn",
        "alias",
        "kcv",
        "receiver_key_arn",
        "root_key_arn",
    ):
        assert data[field]
    assert data["kcv"] == data["local_kcv"] == kcv(KEK_HEX, "AES_256")
    assert data["header"].startswith("D") and data["header"][5:] == "K0AB00E0000"
    assert len(data["shared_info_hex"]) == 32  # fresh random 16 bytes by default


def test_sample_shared_info_reproduced(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    # The sample's "0123456789" is 10 hex digits: 5 bytes, no zero byte; sent as is.
    rc, data, _ = run_json(emu, capsys, "--kek", KEK_HEX, "--shared-info", "0123456789")
    assert rc == 0
    assert data["shared_info_hex"] == "0123456789"


def test_fresh_shared_info_each_ceremony(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    _, first, _ = run_json(emu, capsys, "--kek", KEK_HEX)
    _, second, _ = run_json(emu, capsys, "--kek", KEK_HEX)
    assert first["shared_info_hex"] != second["shared_info_hex"]


# -- option groups ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "key_hex", "algorithm", "usage", "curve"),
    [
        (["--curve", "P256", "--key-algorithm", "AES_128"], AES128_HEX, "AES_128", "K0", "P256"),
        (["--curve", "P-384", "--key-algorithm", "AES_192"], AES192_HEX, "AES_192", "K0", "P384"),
        (
            ["--curve", "P256", "--key-algorithm", "TDES_2KEY"],
            TDES2_HEX,
            "TDES_2KEY",
            "K0",
            "P256",
        ),
        (
            ["--curve", "P256", "--key-algorithm", "TDES_3KEY", "--kdf", "ANSI_X963"],
            TDES3_HEX,
            "TDES_3KEY",
            "K0",
            "P256",
        ),
        (["--kdf", "ANSI_X963", "--kdf-hash", "SHA_512"], KEK_HEX, "AES_256", "K0", "P521"),
        (["--kdf-hash", "SHA_384"], KEK_HEX, "AES_256", "K0", "P521"),
        (["--key-usage", "K1"], KEK_HEX, "AES_256", "K1", "P521"),
        (
            ["--key-algorithm", "AES_128", "--derive-key-algorithm", "AES_128"],
            AES128_HEX,
            "AES_128",
            "K0",
            "P521",
        ),
        (
            [
                "--curve",
                "P384",
                "--key-algorithm",
                "TDES_3KEY",
                "--derive-key-algorithm",
                "TDES_3KEY",
            ],
            TDES3_HEX,
            "TDES_3KEY",
            "K0",
            "P384",
        ),
        (["--header", "D0000K1AB00E0000"], KEK_HEX, "AES_256", "K1", "P521"),
    ],
)
def test_option_groups(
    emu: Emu,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    key_hex: str,
    algorithm: str,
    usage: str,
    curve: str,
) -> None:
    rc, data, err = run_json(emu, capsys, "--kek", key_hex, *options)
    assert rc == 0, err
    key = emu.client.get_key(KeyIdentifier=data["key_arn"])["Key"]
    assert key["KeyAttributes"]["KeyAlgorithm"] == algorithm
    assert key["KeyAttributes"]["KeyUsage"].startswith(f"TR31_{usage}_")
    assert key["KeyCheckValue"] == kcv(key_hex, algorithm)
    receiver = emu.client.get_key(KeyIdentifier=data["receiver_key_arn"])["Key"]
    assert receiver["KeyAttributes"]["KeyAlgorithm"] == f"ECC_NIST_{curve}"
    # TR-31 version follows the derived key: B under TDES, D under AES.
    expected_version = "B" if data["derive_key_algorithm"].startswith("TDES") else "D"
    assert data["header"][0] == expected_version


def test_mode_of_use_and_exportability(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    rc, data, err = run_json(
        emu, capsys, "--kek", KEK_HEX, "--mode-of-use", "E", "--exportability", "N"
    )
    assert rc == 0, err
    key = emu.client.get_key(KeyIdentifier=data["key_arn"])["Key"]
    modes = key["KeyAttributes"]["KeyModesOfUse"]
    assert modes["Encrypt"] and modes["Wrap"] and not modes["Decrypt"] and not modes["Unwrap"]
    assert key["Exportable"] is False


def test_sample_short_flags(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    # The AWS sample's -t/-m/-e flags are accepted too.
    rc, data, err = run_json(emu, capsys, "--kek", KEK_HEX, "-t", "K1", "-m", "D", "-e", "S")
    assert rc == 0, err
    assert data["header"][5:] == "K1AD00S0000"


# -- reuse -----------------------------------------------------------------------------------
def test_second_run_reuses_receiver_and_root(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    _, first, _ = run_json(emu, capsys, "--kek", KEK_HEX)
    emu.clear_log()
    rc, second, _ = run_json(emu, capsys, "--kek", AES128_HEX * 2, "--replace")
    assert rc == 0
    assert second["replaced_key_arn"] == first["key_arn"]  # moved explicitly, and said so
    assert second["receiver_reused"] and second["root_reused"]
    assert second["receiver_key_arn"] == first["receiver_key_arn"]
    assert second["root_key_arn"] == first["root_key_arn"]
    operations = emu.operations()
    assert "CreateKey" not in operations
    assert operations.count("ImportKey") == 1  # the KEK only: the root is reused
    alias = emu.client.get_alias(AliasName="alias/import-kek-ecdh-result")["Alias"]
    assert alias["KeyArn"] == second["key_arn"]


def test_new_receiver_key_forces_create(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    _, first, _ = run_json(emu, capsys, "--kek", KEK_HEX)
    emu.clear_log()
    rc, second, _ = run_json(
        emu, capsys, "--kek", AES128_HEX * 2, "--new-receiver-key", "--replace"
    )
    assert rc == 0
    assert emu.operations().count("CreateKey") == 1
    assert second["receiver_key_arn"] != first["receiver_key_arn"]
    alias = emu.client.get_alias(AliasName="alias/import-kek-ecdh-receiver")["Alias"]
    assert alias["KeyArn"] == second["receiver_key_arn"]


def test_receiver_alias_on_unusable_key_not_reused(
    emu: Emu, capsys: pytest.CaptureFixture[str]
) -> None:
    _, first, _ = run_json(emu, capsys, "--kek", KEK_HEX)
    # Someone points the receiver alias at a P-256 pair without DeriveKeyUsage K1.
    other = emu.client.create_key(
        Exportable=True,
        KeyAttributes={
            "KeyAlgorithm": "ECC_NIST_P256",
            "KeyClass": "ASYMMETRIC_KEY_PAIR",
            "KeyModesOfUse": {"DeriveKey": True},
            "KeyUsage": "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT",
        },
    )["Key"]["KeyArn"]
    emu.client.update_alias(AliasName="alias/import-kek-ecdh-receiver", KeyArn=other)
    emu.clear_log()
    rc, second, err = run_json(emu, capsys, "--kek", AES128_HEX * 2, "--replace")
    assert rc == 0, err
    assert not second["receiver_reused"]
    assert second["receiver_key_arn"] not in (other, first["receiver_key_arn"])
    assert emu.operations().count("CreateKey") == 1
    assert "not reusing alias/import-kek-ecdh-receiver: algorithm ECC_NIST_P256" in err
    alias = emu.client.get_alias(AliasName="alias/import-kek-ecdh-receiver")["Alias"]
    assert alias["KeyArn"] == second["receiver_key_arn"]


# -- key input -------------------------------------------------------------------------------
def test_components_via_injected_prompts(
    emu: Emu, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    components = [
        "1111111111111111111111111111111111111111111111111111111111111111",
        "2222222222222222222222222222222222222222222222222222222222222223",
        "4444444444444444444444444444444444444444444444444444444444444448",
    ]
    answers = iter(components)
    prompts: list[str] = []

    def fake_getpass(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(keyinput, "DEFAULT_IO", keyinput.KeyInputIO(getpass=fake_getpass))
    rc, data, err = run_json(emu, capsys, "--components", "3")
    assert rc == 0, err
    combined = combine_components([bytes.fromhex(c) for c in components])
    expected = kcv(combined.hex(), "AES_256")
    assert data["kcv"] == expected
    assert len(prompts) == 3 and "component 2 of 3" in prompts[1]
    for component in components:
        assert f"KCV: {kcv(component, 'AES_256')}" in err
    assert f"(combined) KCV: {expected}" in err


def test_prompt_and_expect_kcv(
    emu: Emu, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    io = keyinput.KeyInputIO(getpass=lambda _prompt: KEK_HEX.lower())
    monkeypatch.setattr(keyinput, "DEFAULT_IO", io)
    rc, data, err = run_json(emu, capsys, "--prompt", "--expect-kcv", kcv(KEK_HEX, "AES_256"))
    assert rc == 0, err
    assert data["kcv"] == kcv(KEK_HEX, "AES_256")


def test_expect_kcv_mismatch_calls_nothing(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    rc = kek_cli(emu, "--kek", KEK_HEX, "--expect-kcv", "000000")
    _, err = capsys.readouterr()
    assert rc == 2
    assert "not 000000" in err and "nothing was sent to APC" in err
    assert emu.operations() == []
    assert not Path(".apckx").exists()


def test_kek_file_stdin_and_env(
    emu: Emu, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = Path("kek.hex")
    key_file.write_text(" ".join([KEK_HEX[i : i + 8] for i in range(0, 64, 8)]) + "\n")
    key_file.chmod(0o600)
    rc, data, err = run_json(emu, capsys, "--kek-file", str(key_file))
    assert rc == 0, err
    assert "readable by other users" not in err
    assert data["kcv"] == kcv(KEK_HEX, "AES_256")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(AES128_HEX * 2))
    rc, data, _ = run_json(emu, capsys, "--kek-file", "-", "--replace")
    assert rc == 0
    assert data["kcv"] == kcv(AES128_HEX * 2, "AES_256")
    monkeypatch.setenv("MY_KEK", KEK_HEX)
    rc, data, err = run_json(emu, capsys, "--kek-env", "MY_KEK", "--replace")
    assert rc == 0
    assert "warning" not in err


def test_world_readable_key_file_warns(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = Path("kek.hex")
    key_file.write_text(KEK_HEX)
    key_file.chmod(0o644)
    rc, _, err = run_json(emu, capsys, "--kek-file", str(key_file))
    assert rc == 0
    assert "readable by other users" in err


# -- trust -----------------------------------------------------------------------------------
def test_trust_apc_root_pin(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    _, first, _ = run_json(emu, capsys, "--kek", KEK_HEX)
    fingerprint = first["apc_root_fingerprint"]
    colons = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).lower()
    rc, _, err = run_json(emu, capsys, "--kek", KEK_HEX, "--trust-apc-root", colons)
    assert rc == 0, err
    emu.clear_log()
    rc, _, err = run_json(emu, capsys, "--kek", KEK_HEX, "--trust-apc-root", "AB" * 32)
    assert rc == 1
    assert "not the one --trust-apc-root pins" in err
    assert "ImportKey" not in emu.operations()  # refused before anything was sent


# -- KCV mismatch ----------------------------------------------------------------------------
def test_kcv_mismatch_fails_and_alias_untouched(
    emu: Emu, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from apckx.service.apc import ApcService

    real_import_key = ApcService.import_key

    def lying_import_key(self: ApcService, **kwargs: Any) -> dict[str, Any]:
        key = real_import_key(self, **kwargs)
        if "DiffieHellmanTr31KeyBlock" in kwargs["key_material"]:
            key["KeyCheckValue"] = "FFFFFF"  # APC answers with another KCV
        return key

    monkeypatch.setattr(ApcService, "import_key", lying_import_key)
    rc = kek_cli(emu, "--kek", KEK_HEX)
    _, err = capsys.readouterr()
    assert rc == 1
    assert "KCV FFFFFF for" in err and "does not match the local KCV" in err
    assert "apckx cleanup --ceremony" in err
    with pytest.raises(emu.client.exceptions.ResourceNotFoundException):
        emu.client.get_alias(AliasName="alias/import-kek-ecdh-result")
    journal = json.loads(next(Path(".apckx/ceremonies").glob("*.json")).read_text())
    assert journal["status"] == "failed"
    assert [r["role"] for r in journal["resources"] if r["kind"] == "key"].count("kek") == 1


# -- console script --------------------------------------------------------------------------
def test_console_script_subprocess(emu: Emu, workdir: Path) -> None:
    import shutil
    import subprocess
    import sys

    script = Path(sys.executable).parent / "apckx"
    if not script.exists():  # pragma: no cover - installed without the script
        script = Path(shutil.which("apckx") or "apckx")
    env = dict(os.environ, THE_KEK=KEK_HEX)
    proc = subprocess.run(
        [
            str(script),
            "import-kek",
            "--region",
            "us-east-1",
            "--endpoint-url",
            emu.url,
            "--kek-env",
            "THE_KEK",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["kcv"] == kcv(KEK_HEX, "AES_256")
    assert KEK_HEX not in proc.stdout + proc.stderr


# -- faults at each API step -----------------------------------------------------------------
FAULT_STEPS = ["CreateKey", "ImportKey", "GetPublicKeyCertificate", "CreateAlias"]


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retries as configured, with its jittered sleeps shortened to 10 ms."""
    import botocore.retries.standard

    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda _self, _ctx: 0.01
    )


@pytest.mark.parametrize("operation", FAULT_STEPS)
@pytest.mark.usefixtures("quick_backoff")
def test_throttling_is_absorbed_by_retries(
    workdir: Path, capsys: pytest.CaptureFixture[str], operation: str
) -> None:
    emulator = start(workdir, f"{operation}:throttle:2")
    try:
        rc, data, err = run_json(emulator, capsys, "--kek", KEK_HEX)
        assert rc == 0, err
        log = read_request_log(emulator.log_path)
        throttled = [e for e in log if e.error == "ThrottlingException"]
        assert len(throttled) == 2 and {e.operation for e in throttled} == {operation}
        assert data["kcv"] == kcv(KEK_HEX, "AES_256")
    finally:
        emulator.running.stop()


def _assert_rolled_back(emulator: Emu, journal: dict[str, Any]) -> None:
    aliases = emulator.client.list_aliases()["Aliases"]
    assert aliases == []
    keys = emulator.client.list_keys()["Keys"]
    assert keys, "the ceremony created something to roll back"
    assert {k["KeyState"] for k in keys} == {"DELETE_PENDING"}
    created = {r["arn"] for r in journal["resources"] if r["kind"] == "key" and r["created"]}
    assert created == {k["KeyArn"] for k in keys}


@pytest.mark.parametrize("operation", FAULT_STEPS)
@pytest.mark.usefixtures("quick_backoff")
def test_hard_failure_journal_and_cleanup(
    workdir: Path, capsys: pytest.CaptureFixture[str], operation: str
) -> None:
    emulator = start(workdir, f"{operation}:error:always")
    try:
        rc = kek_cli(emulator, "--kek", KEK_HEX, "--max-attempts", "2")
        _, err = capsys.readouterr()
        assert rc == 1
        lines = err.strip().splitlines()
        assert lines[-1].startswith("apckx: error: ceremony kek-")
        assert f"{operation} failed: InternalServerException" in lines[-1]
        assert "Traceback" not in err
        journal_path = next(Path(".apckx/ceremonies").glob("*.json"))
        journal = json.loads(journal_path.read_text())
        assert journal["status"] == "failed"
        assert operation in journal["error"]
        cid = journal["ceremony_id"]
        assert f"--resume {cid}" in lines[-1]
        record = json.loads(Path(f".apckx/records/{cid}.json").read_text())
        assert record["status"] == "failed"
        failed_calls = [
            c for c in record["api_calls"]
            if c["error_code"] and c["error_code"] != "ResourceNotFoundException"
        ]  # fmt: skip  (the KEK alias lookup finds no alias: not a failure)
        assert {c["operation"] for c in failed_calls} == {operation}
        # Everything APC confirmed is in the journal.
        keys = emulator.client.list_keys()["Keys"]
        journaled = {r["arn"] for r in journal["resources"] if r["kind"] == "key"}
        assert {k["KeyArn"] for k in keys} == journaled
        rc = main(
            ["cleanup", "--ceremony", cid, "--region", "us-east-1", "--endpoint-url", emulator.url]
        )
        _, err = capsys.readouterr()
        assert rc == 0, err
        if keys:
            _assert_rolled_back(emulator, journal)
        assert json.loads(journal_path.read_text())["status"] == "rolled_back"
    finally:
        emulator.running.stop()


@pytest.mark.usefixtures("quick_backoff")
def test_resume_after_failure_reuses_journal_resources(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GetPublicKeyCertificate fails both attempts: the receiver and the root exist by then.
    emulator = start(workdir, "GetPublicKeyCertificate:error:2")
    try:
        rc = kek_cli(emulator, "--kek", KEK_HEX, "--max-attempts", "2")
        _, err = capsys.readouterr()
        assert rc == 1
        journal_path = next(Path(".apckx/ceremonies").glob("*.json"))
        cid = json.loads(journal_path.read_text())["ceremony_id"]
        emulator.clear_log()
        rc, data, err = run_json(emulator, capsys, "--kek", KEK_HEX, "--resume", cid)
        assert rc == 0, err
        assert data["ceremony_id"] == cid
        assert data["receiver_reused"] and data["root_reused"]
        assert "CreateKey" not in emulator.operations()
        journal = json.loads(journal_path.read_text())
        assert journal["status"] == "complete"
        # Completed ceremonies cannot be resumed again.
        rc = kek_cli(emulator, "--kek", KEK_HEX, "--resume", cid)
        assert rc == 2
        assert "already completed" in capsys.readouterr().err
    finally:
        emulator.running.stop()


# -- bad inputs: one line, exit 2, no API call --------------------------------------------------
BAD_INPUTS: list[tuple[list[str], str]] = [
    (["--kek", "ZZ" * 32], "hex"),
    (["--kek", KEK_HEX[:62]], "64"),
    (["--kek", "00" * 32], "zero"),
    (["--kek", TDES2_HEX[:16] * 2, "--curve", "P256", "--key-algorithm", "TDES_2KEY"], ""),
    (["--kek-file", "missing.hex"], "no such file"),
    (["--kek-file", "."], "not a regular file"),
    (["--kek-file", "empty.hex"], "empty"),
    (["--kek-file", "text.hex"], "hex"),
    (["--kek-env", "APCKX_UNSET_VARIABLE"], "not set"),
    (["--kek-env", "1BAD"], "environment variable name"),
    (["--components", "1"], "between 2 and 9"),
    (["--components", "10"], "between 2 and 9"),
    (["--kek", KEK_HEX, "--curve", "P999"], "curve"),
    (["--kek", KEK_HEX, "--curve", "P256"], "P256"),
    (["--kek", KEK_HEX, "--curve", "P384"], "P384"),
    (["--kek", KEK_HEX, "--derive-key-algorithm", "AES_128"], "AES_128"),
    (["--kek", KEK_HEX, "--shared-info", "012"], "shared information"),
    (["--kek", KEK_HEX, "--shared-info", "0100"], "zero byte"),
    (["--kek", KEK_HEX, "--shared-info", "zz"], "shared information"),
    (["--kek", KEK_HEX, "--alias", "not-an-alias"], "--alias"),
    (["--kek", KEK_HEX, "--receiver-alias", "alias/has space"], "--receiver-alias"),
    (["--kek", KEK_HEX, "--root-alias", "alias/import-kek-ecdh-result"], "different"),
    (["--kek", KEK_HEX, "--header", "D0000K0TB00E0000"], "does not match"),
    (["--kek", KEK_HEX, "--header", "B0000K0AB00E0000"], "version"),
    (["--kek", KEK_HEX, "--header", "XYZ"], "header"),
    (["--kek", KEK_HEX, "--header", "D0000P0AB00E0000"], "KEK usage"),
    (["--kek", KEK_HEX, "--key-usage", "K3"], "K0 or K1"),
    (["--kek", KEK_HEX, "--mode-of-use", "Q"], "mode"),
    (["--kek", KEK_HEX, "--endpoint-url", "ftp://127.0.0.1:1"], "http"),
    (["--kek", KEK_HEX, "--endpoint-url", "http://"], "host"),
    (["--kek", KEK_HEX, "--trust-apc-root", "abc"], "fingerprint"),
    (["--kek", KEK_HEX, "--resume", "../../etc/passwd"], "ceremony id"),
    (["--kek", KEK_HEX, "--resume", "kek-20260101T120000Z-1a2b3c4d"], "no journal"),
    (["--kek", KEK_HEX, "--expect-kcv", "XYZ"], "--expect-kcv"),
    (["--kek", KEK_HEX, "--max-attempts", "0"], "--max-attempts"),
    ([], "no KEK given"),
]


@pytest.mark.parametrize(("args", "expected"), BAD_INPUTS)
def test_bad_input_one_line_exit_2_no_call(
    emu: Emu, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    Path("empty.hex").write_text("  \n")
    Path("text.hex").write_text("this is not hex at all, it is prose\n")
    endpoint = [] if "--endpoint-url" in args else ["--endpoint-url", emu.url]
    rc = main(["import-kek", "--region", "us-east-1", *endpoint, *args])
    out, err = capsys.readouterr()
    assert rc == 2, err
    assert out == ""
    errors = [line for line in err.splitlines() if not line.startswith("apckx: warning:")]
    assert len(errors) == 1, err
    assert errors[0].startswith("apckx: error: ")
    assert expected.lower() in errors[0].lower()
    assert "Traceback" not in err
    for secret in (KEK_HEX, KEK_HEX[:62], "00" * 32):
        assert secret not in err
    assert emu.operations() == []


# -- round trips ------------------------------------------------------------------------------
def test_fresh_and_repeat_ceremonies_take_at_most_4_stages(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from apckx.ceremonies.import_kek import longest_call_chain

    # 80 ms per call, so that calls made at once visibly overlap on a busy machine.
    emulator = start(workdir, latency_ms=80)
    try:
        for run in ("fresh", "repeat"):
            emulator.clear_log()
            rc, data, err = run_json(emulator, capsys, "--kek", KEK_HEX)
            assert rc == 0, err
            log = read_request_log(emulator.log_path)
            chain = longest_call_chain([(e.start, e.end) for e in log])
            assert chain <= 4, (run, [(e.operation, e.start, e.end) for e in log])
            assert sequential_stages(log) <= 4  # the emulator's own count (overlap groups)
            assert data["sequential_calls"] <= 4
            if run == "fresh":
                ops = [e.operation for e in log]
                assert sorted(ops) == sorted(
                    ["CreateKey", "ImportKey", "ImportKey", "GetPublicKeyCertificate"]
                    + ["CreateAlias"] * 3
                    + ["GetKey"]  # where the KEK alias points, in flight with CreateKey
                )
                # CreateKey and the root import ran at the same time.
                create = next(e for e in log if e.operation == "CreateKey")
                root = min((e for e in log if e.operation == "ImportKey"), key=lambda e: e.start)
                assert root.start < create.end and create.start < root.end
    finally:
        emulator.running.stop()


# -- leaks -----------------------------------------------------------------------------------
def _secret_forms(secret: bytes) -> list[str]:
    import base64

    return [
        secret.hex().upper(),
        secret.hex().lower(),
        base64.b64encode(secret).decode(),
        base64.b64encode(secret).decode().rstrip("="),
    ]


def test_debug_run_leaks_no_secret(
    emu: Emu,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import logging

    import boto3

    import apckx.keystore
    from apckx.crypto.certs import certificate_from_apc
    from apckx.crypto.ecdh import derive_kbpk
    from apckx.keystore import load_private_key

    leaves: list[Any] = []
    issue_leaf = apckx.keystore.new_ecdh_leaf

    def recording_leaf(*args: Any, **kwargs: Any) -> Any:
        leaves.append(issue_leaf(*args, **kwargs))
        return leaves[-1]

    monkeypatch.setattr(apckx.keystore, "new_ecdh_leaf", recording_leaf)
    caplog.set_level(logging.DEBUG)
    boto3.set_stream_logger("botocore", logging.DEBUG)
    try:
        monkeypatch.setenv("THE_KEK", KEK_HEX)
        rc = kek_cli(emu, "--kek-env", "THE_KEK", "--debug", "--output", "json")
        out, err = capsys.readouterr()
    finally:
        from apckx.cli._output import reset_debug_logging

        reset_debug_logging()
        botocore_logger = logging.getLogger("botocore")
        for handler in list(botocore_logger.handlers):
            if type(handler) is logging.StreamHandler:
                botocore_logger.removeHandler(handler)
        botocore_logger.setLevel(logging.NOTSET)
    assert rc == 0, err
    data = json.loads(out)
    assert "ImportKey" in caplog.text or "ImportKey" in err  # the debug log really ran
    assert "DiffieHellmanTr31KeyBlock" in caplog.text + err  # botocore logged the bodies
    # Rebuild every secret the ceremony touched.
    kek = bytes.fromhex(KEK_HEX)
    leaf_key = leaves[-1][0]  # the ceremony's ephemeral ECDH key (never on disk)
    ca_key = load_private_key(Path("certs/sender_ca_key.pem"))
    apc_leaf = certificate_from_apc(
        emu.client.get_public_key_certificate(KeyIdentifier=data["receiver_key_arn"])[
            "KeyCertificate"
        ]
    )
    kbpk = derive_kbpk(
        leaf_key,
        apc_leaf.public_key(),
        kdf="NIST_SP800",
        hash_algorithm="SHA_256",
        key_algorithm="AES_256",
        shared_info=bytes.fromhex(data["shared_info_hex"]),
    )
    secrets_forms: list[str] = []
    for secret in (kek, kbpk):
        secrets_forms += _secret_forms(secret)
    for key in (leaf_key, ca_key):
        scalar = key.private_numbers().private_value  # type: ignore[union-attr]
        size = (key.curve.key_size + 7) // 8  # type: ignore[union-attr]
        secrets_forms += _secret_forms(scalar.to_bytes(size, "big"))
    for pem_name in ("certs/sender_ca_key.pem",):
        body = [
            line
            for line in Path(pem_name).read_text().splitlines()
            if line and not line.startswith("-----")
        ]
        secrets_forms += body
    journal = next(Path(".apckx/ceremonies").glob("*.json")).read_text()
    record = next(Path(".apckx/records").glob("*.json")).read_text()
    haystacks = {
        "stdout": out,
        "stderr": err,
        "log": caplog.text,
        "journal": journal,
        "record": record,
    }
    for where, text in haystacks.items():
        for form in secrets_forms:
            assert form not in text, f"secret material in {where}"


def test_unusable_certs_dir_stops_before_any_call(
    emu: Emu, capsys: pytest.CaptureFixture[str]
) -> None:
    # The AWS sample leaves certs/sender_key.pem and certs/sender_cert.pem only.
    Path("certs").mkdir()
    Path("certs/sender_key.pem").write_text("x")
    Path("certs/sender_cert.pem").write_text("x")
    rc = kek_cli(emu, "--kek", KEK_HEX)
    err = capsys.readouterr().err
    assert rc == 2
    assert "only part of the sender credentials" in err.strip().splitlines()[-1]
    # Credentials on another curve than asked for.
    run_json(emu, capsys, "--kek", KEK_HEX, "--certs-dir", "p521")
    emu.clear_log()
    rc = kek_cli(
        emu,
        "--kek",
        AES128_HEX,
        "--curve",
        "P256",
        "--key-algorithm",
        "AES_128",
        "--certs-dir",
        "p521",
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert "not P256" in err
    assert emu.operations() == []


@pytest.mark.parametrize("forgery", ["foreign_root", "wrong_curve", "garbage"])
def test_apc_certificate_that_does_not_verify_is_refused(
    emu: Emu, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, forgery: str
) -> None:
    from apckx.crypto.certs import certificate_to_apc, new_ecdh_leaf, new_sender_ca
    from apckx.service.apc import ApcService

    real = ApcService.get_public_key_certificate

    def forged(self: ApcService, key_identifier: str) -> tuple[str, str]:
        leaf, chain = real(self, key_identifier)
        if forgery == "foreign_root":  # the leaf is not signed by this root
            return leaf, certificate_to_apc(new_sender_ca("P521")[1])
        if forgery == "wrong_curve":  # a valid chain, but a P-384 leaf for a P-521 key
            ca_key, ca_cert = new_sender_ca("P384")
            return certificate_to_apc(new_ecdh_leaf(ca_key, ca_cert, "P384")[1]), (
                certificate_to_apc(ca_cert)
            )
        return "bm90IGEgY2VydGlmaWNhdGU=", chain

    monkeypatch.setattr(ApcService, "get_public_key_certificate", forged)
    rc = kek_cli(emu, "--kek", KEK_HEX)
    err = capsys.readouterr().err
    assert rc == 1
    assert "Traceback" not in err
    assert emu.operations().count("ImportKey") == 1  # the root only: no KEK was sent
