"""Leak scan: every command run with ``--debug`` and botocore's debug logging on; its stdout,
stderr, a root-logger log file, the emulator's request log, journals, records, key logs and
every other file it wrote are searched for every secret of the run: KEKs, working keys,
components (typed in and written out), derived keys (each ECDH KBPK, recomputed here from the
sender key, APC's certificate and the SharedInformation the command reported, and the TR-31
KBEK/KBAK under every wrapping key), and the private keys (scalar and PEM body). Each in hex
(upper, lower) and base64 (padded, unpadded). Expected: zero hits. Files that hold a private
key or a component are the only ones allowed to, and must be 0600.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from apckx import keystore
from apckx._cli import main
from apckx.ceremonies.import_key import WorkingKeySpec, build_working_key_block, resolve_key_usage
from apckx.cli import keyinput
from apckx.crypto.certs import certificate_from_apc
from apckx.crypto.components import split_key
from apckx.crypto.ecdh import derive_kbpk
from apckx.crypto.tr31 import derive_block_keys
from apckx.emulator.pytest_plugin import make_emulator_client
from apckx.emulator.server import EmulatorConfig, start_emulator
from apckx.keystore import load_private_key

REGION = "us-east-1"
KEK = bytes.fromhex("5D2E8A7B19C4F6033E0B7A6C5D4E3F2A1B0C9D8E7F6A5B4C3D2E1F0A9B8C7D6E")
KEK2 = bytes.fromhex("A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F91")
KEK2_COMPONENTS = split_key(KEK2, 3)
WORK = bytes.fromhex("7E3A9C1B5D2F4A6E8C0B1D3F5A7C9E2B")
WORK_ECDH = bytes.fromhex("2B4D6F8A1C3E5A7C9E1B3D5F7A9C2E4B6D8F1A3C5E7B9D2F4A6C8E1B3D5F7A9C")
MIGRATE_KEYS = [bytes.fromhex(f"{i:02X}" * 4 + "9E8D7C6B5A4F3E2D1C0B0A09") for i in (3, 5)]
BLOCK_KEY = bytes.fromhex("1F2E3D4C5B6A79880716253443526170")
TR34_KEK = bytes.fromhex("3C5A7E9B1D2F4A6C8E0B2D4F6A8C1E3B")
RSA_WORK = bytes.fromhex("4E6A8C2B1D3F5E7A9C0B2D4F6E8A1C3B5D7F9E2A4C6B8D1F")


@dataclass
class Run:
    label: str
    argv: list[str]
    rc: int = 0
    out: str = ""
    err: str = ""


@dataclass
class Session:
    work: Path
    runs: list[Run] = field(default_factory=list)
    secrets: dict[str, bytes] = field(default_factory=dict)
    secret_files: list[Path] = field(default_factory=list)
    leaves: list[Any] = field(default_factory=list)  # every ephemeral ECDH leaf (key, cert)

    def run(self, label: str, *argv: str, expect_rc: int = 0) -> Run:
        run = Run(label, list(argv))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            run.rc = main(run.argv)
        run.out, run.err = out.getvalue(), err.getvalue()
        self.runs.append(run)
        assert run.rc == expect_rc, (label, run.err[-2000:])
        return run


def secret_forms(secret: bytes) -> set[str]:
    """Hex (upper, lower, and in 4-digit groups as component files show it) and base64."""
    b64 = base64.b64encode(secret).decode()
    grouped = " ".join(secret.hex()[i : i + 4] for i in range(0, 2 * len(secret), 4))
    return {secret.hex().upper(), secret.hex().lower(), grouped, grouped.upper(), b64,
            b64.rstrip("=")}  # fmt: skip


def ecdh_kbpk(session: Session, receiver_arn: str, shared_info_hex: str, url: str) -> bytes:
    """The KBPK both sides derived: our ECDH leaf's private key x APC's receiver certificate."""
    client = make_emulator_client(url)
    try:
        leaf_text = client.get_public_key_certificate(KeyIdentifier=receiver_arn)[
            "KeyCertificate"
        ]
    finally:
        client.close()
    leaf_key = session.leaves[-1][0]  # the command's ephemeral ECDH key (never on disk)
    return derive_kbpk(
        leaf_key,  # type: ignore[arg-type]
        certificate_from_apc(leaf_text).public_key(),  # type: ignore[arg-type]
        kdf="NIST_SP800",
        hash_algorithm="SHA_256",
        key_algorithm="AES_256",
        shared_info=bytes.fromhex(shared_info_hex),
    )


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    import boto3

    work = tmp_path_factory.mktemp("leak")
    saved_env, saved_cwd, saved_io = dict(os.environ), Path.cwd(), keyinput.DEFAULT_IO
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(
        AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
        AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        LEAK_KEK=KEK.hex(), LEAK_WORK=WORK.hex().upper(), LEAK_WORK_ECDH=WORK_ECDH.hex(),
        LEAK_TR34_KEK=TR34_KEK.hex(), LEAK_RSA_WORK=RSA_WORK.hex(),
    )  # fmt: skip
    os.chdir(work)
    # Components typed at masked prompts, in order.
    typed = iter([c.hex() for c in KEK2_COMPONENTS])
    keyinput.DEFAULT_IO = keyinput.KeyInputIO(getpass=lambda prompt: next(typed))
    # Every log record of every logger, at DEBUG, into a file; botocore's stream logger too.
    root = logging.getLogger()
    file_handler = logging.FileHandler(work / "debug.log", encoding="utf-8")
    file_handler.setLevel(logging.DEBUG)
    saved_root_level = root.level
    root.addHandler(file_handler)
    root.setLevel(logging.DEBUG)
    botocore_logger = logging.getLogger("botocore")
    saved_handlers = list(botocore_logger.handlers)
    stream = io.StringIO()
    boto3.set_stream_logger("botocore", logging.DEBUG)
    for handler in botocore_logger.handlers:
        if isinstance(handler, logging.StreamHandler) and handler not in saved_handlers:
            handler.setStream(stream)  # type: ignore[type-var]
    emulator = start_emulator(EmulatorConfig(request_log_path=work / "requests.jsonl"))
    session = Session(work)
    issue_leaf = keystore.new_ecdh_leaf

    def recording_leaf(*args: Any, **kwargs: Any) -> Any:
        session.leaves.append(issue_leaf(*args, **kwargs))
        return session.leaves[-1]

    keystore.new_ecdh_leaf = recording_leaf  # type: ignore[assignment]
    try:
        _run_everything(session, emulator.url)
        session.runs.append(Run("botocore stream log", [], out=stream.getvalue()))
        yield session
    finally:
        keystore.new_ecdh_leaf = issue_leaf  # type: ignore[assignment]
        emulator.stop()
        root.removeHandler(file_handler)
        file_handler.close()
        root.setLevel(saved_root_level)
        botocore_logger.handlers[:] = saved_handlers
        botocore_logger.setLevel(logging.NOTSET)
        for name in ("apckx", "botocore"):
            logging.getLogger(name).setLevel(logging.NOTSET)
        keyinput.DEFAULT_IO = saved_io
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _run_everything(session: Session, url: str) -> None:
    aws = ["--region", REGION, "--endpoint-url", url, "--debug"]
    s = session.secrets
    s.update(kek=KEK, kek2=KEK2, work=WORK, work_ecdh=WORK_ECDH, block_key=BLOCK_KEY)
    for index, component in enumerate(KEK2_COMPONENTS):
        s[f"kek2 component {index}"] = component
    for index, key in enumerate(MIGRATE_KEYS):
        s[f"migrate key {index}"] = key

    # 1. The KEK ceremony, twice: from an environment variable, then from 3 components.
    first = json.loads(session.run("import-kek (env)", "import-kek", *aws, "--kek-env",
                                   "LEAK_KEK", "--output", "json").out)  # fmt: skip
    s["import-kek KBPK"] = ecdh_kbpk(
        session, first["receiver_key_arn"], first["shared_info_hex"], url
    )
    second = json.loads(session.run("import-kek (components)", "import-kek", *aws,
                                    "--components", "3", "--alias", "alias/leak-kek2",
                                    "--output", "json").out)  # fmt: skip
    s["import-kek components KBPK"] = ecdh_kbpk(
        session, second["receiver_key_arn"], second["shared_info_hex"], url
    )
    kek_alias = first["alias"]
    # 2. A working key under the KEK, and one over ECDH.
    session.run("import-key (kek)", "import-key", *aws, "--kek-id", kek_alias, "--kek-env",
                "LEAK_KEK", "--key-env", "LEAK_WORK", "--key-usage", "D0", "--key-algorithm",
                "AES_128", "--alias", "alias/leak-work")  # fmt: skip
    ecdh = json.loads(session.run("import-key (ecdh)", "import-key", *aws, "--via", "ecdh",
                                  "--key-env", "LEAK_WORK_ECDH", "--key-usage", "D0",
                                  "--key-algorithm", "AES_256", "--alias", "alias/leak-ecdh",
                                  "--output", "json").out)  # fmt: skip
    s["import-key ecdh KBPK"] = ecdh_kbpk(
        session, ecdh["receiver_key_arn"], ecdh["shared_info_hex"], url
    )
    # 3. A key block made elsewhere, imported as is (text output shows its header).
    block = build_working_key_block(
        KEK, "AES_256", BLOCK_KEY, WorkingKeySpec(resolve_key_usage("D0"), "AES_128")
    )
    session.run("import-key (block)", "import-key", *aws, "--kek-id", kek_alias,
                "--key-block", block, "--alias", "alias/leak-block")  # fmt: skip
    session.run("tr31 inspect", "tr31", "inspect", block)
    # 4. Exports: a block to a file, components to files, and over ECDH.
    Path("out").mkdir()
    session.run("export-key (kek)", "export-key", *aws, "--key", "alias/leak-work", "--kek-id",
                kek_alias, "--kek-env", "LEAK_KEK", "--out", "out/work.tr31")  # fmt: skip
    session.run("export-key (components)", "export-key", *aws, "--key", "alias/leak-work",
                "--kek-id", kek_alias, "--kek-env", "LEAK_KEK", "--components", "3",
                "--out-dir", "components")  # fmt: skip
    for index, path in enumerate(sorted(Path("components").iterdir())):
        session.secret_files.append(path)
        for line in path.read_text().splitlines():
            if line.startswith("value:"):
                s[f"exported component {index}"] = bytes.fromhex(line.split(":", 1)[1])
    exported = json.loads(session.run("export-key (ecdh)", "export-key", *aws, "--key",
                                      "alias/leak-ecdh", "--via", "ecdh", "--out",
                                      "out/ecdh.tr31", "--output", "json").out)  # fmt: skip
    s["export-key ecdh KBPK"] = ecdh_kbpk(
        session, exported["receiver_key_arn"], exported["shared_info_hex"], url
    )
    # 5. migrate: rehearsal rows (cleartext in the manifest) and a block row.
    Path("m.csv").write_text(
        "alias,key_hex,key_usage,key_algorithm,key_block\n"
        + "".join(f"alias/leak-mig-{i},{k.hex()},D0,AES_128,\n" for i, k in enumerate(MIGRATE_KEYS))
        + f"alias/leak-mig-block,,,,{build_working_key_block(KEK, 'AES_256', BLOCK_KEY[::-1], WorkingKeySpec(resolve_key_usage('D0'), 'AES_128'))}\n"  # noqa: E501
    )
    s["migrate block key"] = BLOCK_KEY[::-1]
    session.secret_files.append(Path("m.csv"))  # the rehearsal manifest holds cleartext
    session.run("migrate", "migrate", "m.csv", *aws[:4], "--debug", "--kek-id", kek_alias,
                "--kek-env", "LEAK_KEK", "--rate", "100")  # fmt: skip
    # 5b. Keys where they do not belong: refused, and the refusal echoes none of them.
    Path("wrong.csv").write_text(
        "alias,key_hex,key_usage,key_algorithm,tags\n"
        f"alias/w1,{MIGRATE_KEYS[0].hex()},D0,{KEK.hex()},\n"
        f"{KEK2.hex()},{MIGRATE_KEYS[1].hex()},{WORK.hex()},AES_128,k={WORK_ECDH.hex()}\n"
    )
    session.secret_files.append(Path("wrong.csv"))
    session.run("migrate (keys in the wrong columns)", "migrate", "wrong.csv", *aws[:4],
                "--kek-id", kek_alias, "--kek-env", "LEAK_KEK", expect_rc=2)  # fmt: skip
    session.run("tr31 inspect (a lower-case key)", "tr31", "inspect", KEK.hex(), expect_rc=2)
    session.run("import-key (a key as --key-block)", "import-key", *aws, "--kek-id", kek_alias,
                "--key-block", KEK2.hex(), expect_rc=2)  # fmt: skip
    _run_tr34_and_rsa(session, aws)
    # 6. Check values and cleanup.
    session.run("kcv", "kcv", "--key-env", "LEAK_WORK")
    session.run("cleanup", "cleanup", "--ceremony", first["ceremony_id"], *aws)
    # Derived keys of every TR-31 wrapping: the block keys under each KEK and KBPK.
    for name in [n for n in s if n.startswith(("kek", "import-kek", "import-key", "export"))]:
        if len(s[name]) == 32 and "component" not in name:
            kbek, kbak = derive_block_keys(s[name], "D")
            s[f"{name} KBEK"], s[f"{name} KBAK"] = kbek, kbak
    # Private keys: scalars and the base64 lines of the PEM files.
    path = Path("certs") / "sender_ca_key.pem"
    session.secret_files.append(path)
    ca_key: Any = load_private_key(path)
    size = (ca_key.curve.key_size + 7) // 8
    s["sender_ca_key.pem scalar"] = ca_key.private_numbers().private_value.to_bytes(size, "big")
    assert not (Path("certs") / "sender_key.pem").exists()  # ephemeral leaves only
    for index, (leaf_key, _cert) in enumerate(session.leaves):
        size = (leaf_key.curve.key_size + 7) // 8
        s[f"sender leaf {index} scalar"] = leaf_key.private_numbers().private_value.to_bytes(
            size, "big"
        )


def _run_tr34_and_rsa(session: Session, aws: list[str]) -> None:
    """7. TR-34 and RSA wrap: in as KDH and RSA-wrap sender, out to apckx's own RSA key (as
    components) and relayed to a partner; the relayed block inspected."""
    from apckx.crypto import certs

    s = session.secrets
    s.update(tr34_kek=TR34_KEK, rsa_work=RSA_WORK)
    session.run("import-kek (tr34)", "import-kek", *aws, "--via", "tr34", "--kek-env",
                "LEAK_TR34_KEK", "--alias", "alias/leak-tr34-kek")  # fmt: skip
    session.run("import-key (rsa)", "import-key", *aws, "--via", "rsa", "--key-env",
                "LEAK_RSA_WORK", "--key-usage", "D0", "--key-algorithm", "TDES_3KEY",
                "--alias", "alias/leak-rsa-work")  # fmt: skip
    session.run("export-key (tr34 components)", "export-key", *aws, "--key",
                "alias/leak-tr34-kek", "--via", "tr34", "--components", "2", "--out-dir",
                "tr34-components")  # fmt: skip
    for index, path in enumerate(sorted(Path("tr34-components").iterdir())):
        session.secret_files.append(path)
        for line in path.read_text().splitlines():
            if line.startswith("value:"):
                s[f"tr34 exported component {index}"] = bytes.fromhex(line.split(":", 1)[1])
    partner_key, partner_ca = certs.new_rsa_sender_ca("RSA_2048", common_name="leak partner")
    krd_key, krd = certs.new_rsa_wrapping_leaf(partner_key, partner_ca, "RSA_2048")
    Path("partner-ca.pem").write_bytes(certs.certificate_to_pem(partner_ca))
    Path("partner-krd.pem").write_bytes(certs.certificate_to_pem(krd))
    session.run("export-key (rsa relay)", "export-key", *aws, "--key", "alias/leak-rsa-work",
                "--via", "rsa", "--krd-certificate", "partner-krd.pem", "--krd-ca",
                "partner-ca.pem", "--out", "out/relayed.hex")  # fmt: skip
    session.run("export-key (tr34 relay)", "export-key", *aws, "--key", "alias/leak-rsa-work",
                "--via", "tr34", "--krd-certificate", "partner-krd.pem", "--krd-ca",
                "partner-ca.pem", "--out", "out/relayed.tr34")  # fmt: skip
    session.run("tr34 inspect", "tr34", "inspect", "@out/relayed.tr34")
    for name in ("rsa_sender_ca_key.pem", "rsa_signing_key.pem", "rsa_wrapping_key.pem"):
        path = Path("certs") / name
        session.secret_files.append(path)
        key: Any = certs.load_rsa_private_key_pem(path.read_bytes())
        size = (key.key_size + 7) // 8
        s[f"{name} d"] = key.private_numbers().d.to_bytes(size, "big")
    s["partner krd d"] = krd_key.private_numbers().d.to_bytes(256, "big")


def _forms(session: Session) -> dict[str, str]:
    forms: dict[str, str] = {}
    for name, secret in session.secrets.items():
        for form in secret_forms(secret):
            forms[form] = name
    for path in session.secret_files:
        if path.suffix == ".pem":
            for line in path.read_text().splitlines():
                if line and not line.startswith("-----") and len(line) >= 16:
                    forms[line] = f"{path.name} PEM body"
    return forms


def test_secrets_were_collected(session: Session) -> None:
    assert len(session.secrets) >= 30, sorted(session.secrets)
    assert sum(n.startswith("exported component") for n in session.secrets) == 3
    assert any("KBPK" in name for name in session.secrets)
    assert any(name.startswith("exported component") for name in session.secrets)


@pytest.mark.parametrize(
    "label",
    ["import-kek (env)", "import-kek (components)", "import-key (kek)", "import-key (ecdh)",
     "import-key (block)", "tr31 inspect", "export-key (kek)", "export-key (components)",
     "export-key (ecdh)", "migrate", "kcv", "cleanup", "botocore stream log",
     "migrate (keys in the wrong columns)", "tr31 inspect (a lower-case key)",
     "import-key (a key as --key-block)", "import-kek (tr34)", "import-key (rsa)",
     "export-key (tr34 components)", "export-key (rsa relay)", "export-key (tr34 relay)",
     "tr34 inspect"],
)  # fmt: skip
def test_no_secret_in_command_output(session: Session, label: str) -> None:
    run = next(r for r in session.runs if r.label == label)
    if label != "botocore stream log" and run.rc == 0:
        assert "DEBUG" in run.err or label in ("tr31 inspect", "tr34 inspect", "kcv"), (
            "debug log not on"
        )
    forms = _forms(session)
    for where, text in (("stdout", run.out), ("stderr", run.err)):
        hits = sorted({name for form, name in forms.items() if form in text})
        assert not hits, f"{label}: {where} holds {hits}"


def test_no_secret_in_any_written_file(session: Session) -> None:
    forms = _forms(session)
    secret_files = {p.resolve() for p in session.secret_files}
    scanned = 0
    for path in sorted(session.work.rglob("*")):
        if not path.is_file() or path.resolve() in secret_files:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        scanned += 1
        hits = sorted({name for form, name in forms.items() if form in text})
        assert not hits, f"{path.relative_to(session.work)} holds {hits}"
    names = {p.name for p in session.work.rglob("*") if p.is_file()}
    assert "debug.log" in names and "requests.jsonl" in names
    assert any(n.startswith("kek-") for n in names)  # journals and records were scanned
    assert scanned >= 10


def test_debug_log_file_really_logged(session: Session) -> None:
    text = (session.work / "debug.log").read_text()
    assert "ImportKey" in text and "ExportKey" in text  # botocore logged the calls


def test_files_with_secrets_are_0600(session: Session) -> None:
    for path in session.secret_files:
        if path.name in ("m.csv", "wrong.csv"):  # the test wrote these
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, f"{path} is {oct(mode)}"


@pytest.mark.parametrize("secret_name", ["kek", "import-kek KBPK", "exported component 0",
                                         "sender leaf 0 scalar"])  # fmt: skip
def test_the_scan_finds_a_planted_secret(session: Session, secret_name: str) -> None:
    """The scan is not vacuous: each form of a secret, planted in text, is found."""
    forms = _forms(session)
    for form in secret_forms(session.secrets[secret_name]):
        text = f"some log line ... {form} ... more"
        assert {name for f, name in forms.items() if f in text} >= {secret_name}
