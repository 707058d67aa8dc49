"""A hostile or broken endpoint (issue 13 items 12, 13, 15): a stub APC on 127.0.0.1 that
answers what a test tells it to.

* malformed answers (a missing member) are one line and exit 1, never a KeyError traceback,
  and the ceremony's journal is finished as failed;
* server text is printed without control characters (no terminal escapes);
* paging stops on a repeated NextToken and at a page bound;
* receiver chains that do not look like a receiver's (no keyAgreement, a CA as the leaf, an
  issuer without keyCertSign, a weak RSA root) are refused when no root is pinned, before the
  key is sent; a pinned root accepts what it pins.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import io
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from apckx._cli import main
from apckx.crypto.certs import fingerprint_sha256
from apckx.emulator.pytest_plugin import make_emulator_client
from apckx.errors import ServiceError
from apckx.service import apc as apc_module
from apckx.service.apc import ApcService

ARN = "arn:aws:payment-cryptography:us-east-1:111122223333:key/"
KEK_HEX = "6A0E5C3D9B1F27486C5D4E3F2A1B0C9D"

Answer = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


@dataclass
class Stub:
    url: str
    answers: dict[str, Answer] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def operations(self) -> list[str]:
        return [op for op, _ in self.calls]


@pytest.fixture
def stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stub]:
    for var in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(var)
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                        "HOSTILE_KEK": KEK_HEX, "HOSTILE_KEY": KEK_HEX[::-1]}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("APCKX_TRUST_APC_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    state = Stub(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            operation = str(self.headers.get("X-Amz-Target", "")).rpartition(".")[2]
            state.calls.append((operation, body))
            answer = state.answers.get(operation)
            status, data = (400, {"__type": "UnknownOperationException"}) if answer is None \
                else answer(body)  # fmt: skip
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def aws(stub: Stub) -> list[str]:
    return ["--region", "us-east-1", "--endpoint-url", stub.url, "--max-attempts", "1"]


def key(name: str, usage: str, algorithm: str, key_class: str = "SYMMETRIC_KEY") -> dict[str, Any]:
    return {
        "KeyArn": ARN + name, "Enabled": True, "Exportable": True, "KeyState": "CREATE_COMPLETE",
        "KeyAttributes": {"KeyUsage": usage, "KeyClass": key_class, "KeyAlgorithm": algorithm,
                          "KeyModesOfUse": {"DeriveKey": True, "Wrap": True, "Unwrap": True}},
        "KeyCheckValue": "ABCDEF", "KeyCheckValueAlgorithm": "CMAC", "KeyOrigin": "EXTERNAL",
        "CreateTimestamp": 0, "DeriveKeyUsage": "TR31_K1_KEY_BLOCK_PROTECTION_KEY",
    }  # fmt: skip


def fixed(status: int, data: dict[str, Any]) -> Answer:
    return lambda _body: (status, data)


def one_error_line(err: str) -> str:
    assert "Traceback" not in err and "KeyError" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("apckx: error")]
    assert len(lines) == 1, err
    return lines[0]


# -- malformed answers --------------------------------------------------------------------


def test_a_missing_member_is_one_line_not_a_key_error(stub: Stub) -> None:
    stub.answers["GetKey"] = fixed(200, {"Key": {"KeyArn": ARN + "kek"}})  # no KeyAttributes
    rc, _, err = run(["import-key", *aws(stub), "--kek-id", "alias/kek", "--kek-env",
                      "HOSTILE_KEK", "--key-env", "HOSTILE_KEY", "--key-usage", "D0",
                      "--key-algorithm", "AES_128"])  # fmt: skip
    assert rc == 1
    line = one_error_line(err)
    assert "GetKey failed: MalformedResponse" in line and "KeyAttributes" in line


def test_server_text_is_printed_without_control_characters(stub: Stub) -> None:
    evil = "no\x1b[2J\x1b]0;owned\x07 such key\u202e\r\nsecond line"
    stub.answers["GetKey"] = fixed(400, {"__type": "ValidationException\x1b[31m", "message": evil})
    rc, _, err = run(["import-key", *aws(stub), "--kek-id", "alias/kek", "--kek-env",
                      "HOSTILE_KEK", "--key-env", "HOSTILE_KEY", "--key-usage", "D0",
                      "--key-algorithm", "AES_128"])  # fmt: skip
    assert rc == 1
    line = one_error_line(err)
    assert "such key" in line and "second line" not in err
    assert not any(ch in err for ch in "\x1b\x07\u202e\r")


def test_a_ceremony_stopped_by_a_malformed_answer_is_journaled_failed(stub: Stub) -> None:
    stub.answers["CreateKey"] = fixed(200, {"Key": key("recv", "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_"
                                                        "AGREEMENT", "ECC_NIST_P256",
                                                        "ASYMMETRIC_KEY_PAIR")})  # fmt: skip
    stub.answers["GetPublicKeyCertificate"] = fixed(200, {"KeyCertificate": "x"})  # no chain
    stub.answers["ImportKey"] = fixed(200, {"Key": key("root", "TR31_S0_ASYMMETRIC_KEY_FOR_"
                                                       "DIGITAL_SIGNATURE", "ECC_NIST_P256",
                                                       "PUBLIC_KEY")})  # fmt: skip
    stub.answers["CreateAlias"] = fixed(200, {})  # no Alias member
    rc, _, err = run(["import-kek", *aws(stub), "--kek-env", "HOSTILE_KEK", "--curve", "P256",
                      "--key-algorithm", "AES_128"])  # fmt: skip
    assert rc == 1
    assert "MalformedResponse" in one_error_line(err)
    journals = list(Path(".apckx/ceremonies").glob("*.json"))
    assert len(journals) == 1
    assert json.loads(journals[0].read_text())["status"] == "failed"


def bounded(call: Callable[[], object], seconds: float = 20) -> BaseException | None:
    """Run ``call`` in a thread; its exception, or fail if it is still paging after
    ``seconds`` (an unbounded loop must fail the test, not hang it)."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "paging did not stop"
    return raised[0] if raised else None


def test_paging_stops_on_a_repeated_token(stub: Stub) -> None:
    stub.answers["ListAliases"] = fixed(200, {"Aliases": [], "NextToken": "again"})
    service = ApcService(make_emulator_client(stub.url, max_attempts=1))
    error = bounded(service.list_aliases)
    assert isinstance(error, ServiceError) and "NextToken came back twice" in str(error)
    assert stub.operations() == ["ListAliases", "ListAliases"]


def test_a_list_entry_without_its_identifier_is_one_error(stub: Stub) -> None:
    stub.answers["ListKeys"] = fixed(200, {"Keys": [{"KeyState": "CREATE_COMPLETE"}]})
    service = ApcService(make_emulator_client(stub.url, max_attempts=1))
    with pytest.raises(ServiceError, match=r"has no Keys\[\]\.KeyArn"):
        service.list_keys()


def test_paging_stops_at_the_page_bound(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apc_module, "MAX_PAGES", 5)
    counter = iter(range(1000))
    stub.answers["ListKeys"] = lambda _b: (200, {"Keys": [], "NextToken": f"t{next(counter)}"})
    service = ApcService(make_emulator_client(stub.url, max_attempts=1))
    error = bounded(service.list_keys)
    assert isinstance(error, ServiceError) and "more than 5 pages" in str(error)
    assert len(stub.calls) == 5


# -- crafted receiver chains --------------------------------------------------------------

NOW = dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _usage(*, agreement: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=False, data_encipherment=False,
                         key_agreement=agreement, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         encipher_only=False, decipher_only=False)  # fmt: skip


def _cert(subject: str, issuer: str, public: Any, signer: Any, *, ca: bool,
          usage: x509.KeyUsage | None) -> x509.Certificate:  # fmt: skip
    builder = (
        x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
        .public_key(public).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )  # fmt: skip
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    return builder.sign(signer, hashes.SHA256())


def _apc(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()


def chain(kind: str) -> tuple[x509.Certificate, x509.Certificate]:
    """(leaf, root) of a receiver chain, crafted as ``kind`` says."""
    root_key: Any = (rsa.generate_private_key(65537, 1024)  # noqa: S505 - the point
                     if kind == "weak rsa root"
                     else ec.generate_private_key(ec.SECP256R1()))  # fmt: skip
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert("root", "root", root_key.public_key(), root_key, ca=True,
                 usage=_usage(cert_sign=kind != "issuer without keyCertSign"))  # fmt: skip
    leaf_usage = None if kind == "no key usage" else _usage(agreement=kind != "no keyAgreement")
    leaf = _cert("leaf", "root", leaf_key.public_key(), root_key, ca=kind == "CA leaf",
                 usage=leaf_usage)  # fmt: skip
    return leaf, root


def serve_receiver(stub: Stub, leaf: x509.Certificate, root: x509.Certificate) -> None:
    k3 = key("recv", "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT", "ECC_NIST_P256",
             "ASYMMETRIC_KEY_PAIR")  # fmt: skip
    s0 = key("root", "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE", "ECC_NIST_P256",
             "PUBLIC_KEY")  # fmt: skip
    kek = key("kek", "TR31_K0_KEY_ENCRYPTION_KEY", "AES_128")
    missing = fixed(400, {"__type": "ResourceNotFoundException", "message": "not found"})
    for lookup in ("GetKey", "GetAlias", "ListTagsForResource"):
        stub.answers[lookup] = missing  # nothing exists yet: every alias is free
    stub.answers["CreateKey"] = fixed(200, {"Key": k3})
    stub.answers["GetPublicKeyCertificate"] = fixed(
        200, {"KeyCertificate": _apc(leaf), "KeyCertificateChain": _apc(root)}
    )
    stub.answers["ImportKey"] = lambda body: (
        200, {"Key": kek if "DiffieHellmanTr31KeyBlock" in body["KeyMaterial"] else s0}
    )  # fmt: skip
    stub.answers["CreateAlias"] = lambda body: (
        200, {"Alias": {"AliasName": body["AliasName"], "KeyArn": body.get("KeyArn")}}
    )  # fmt: skip


def key_was_sent(stub: Stub) -> bool:
    return any(op == "ImportKey" and "DiffieHellmanTr31KeyBlock" in body["KeyMaterial"]
               for op, body in stub.calls)  # fmt: skip


KEK_ARGS = ["--kek-env", "HOSTILE_KEK", "--curve", "P256", "--key-algorithm", "AES_128"]


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("no keyAgreement", "keyAgreement"), ("no key usage", "keyAgreement"),
     ("CA leaf", "is a CA"), ("issuer without keyCertSign", "keyCertSign"),
     ("weak rsa root", "1024-bit RSA")],
)  # fmt: skip
def test_crafted_receiver_chains_are_refused_before_the_key_is_sent(
    stub: Stub, kind: str, reason: str
) -> None:
    serve_receiver(stub, *chain(kind))
    rc, _, err = run(["import-kek", *aws(stub), *KEK_ARGS])
    assert rc != 0
    line = one_error_line(err)
    assert reason in line and "--trust-apc-root" in line
    assert not key_was_sent(stub)


def test_a_well_formed_chain_reaches_the_import_and_says_trust_on_first_use(stub: Stub) -> None:
    leaf, root = chain("good")
    serve_receiver(stub, leaf, root)
    _rc, _, err = run(["import-kek", *aws(stub), *KEK_ARGS])
    assert key_was_sent(stub)  # (the stub's KCV then does not match: that is not the point)
    assert "trusting APC's certificate on first use" in err and fingerprint_sha256(root) in err
    journal = next(Path(".apckx/ceremonies").glob("*.json")).read_text()
    assert fingerprint_sha256(root) in journal and '"first use"' in journal  # recorded


@pytest.mark.parametrize("source", ["flag", "env"])
def test_a_pinned_root_accepts_what_it_pins(
    stub: Stub, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaf, root = chain("no keyAgreement")
    serve_receiver(stub, leaf, root)
    pin = fingerprint_sha256(root)
    extra = ["--trust-apc-root", pin] if source == "flag" else []
    if source == "env":
        monkeypatch.setenv("APCKX_TRUST_APC_ROOT", pin)
    _rc, _, err = run(["import-kek", *aws(stub), *KEK_ARGS, *extra])
    assert key_was_sent(stub), err
    assert "first use" not in err


def test_a_malformed_pin_in_the_environment_stops_before_any_call(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APCKX_TRUST_APC_ROOT", "not-a-fingerprint")
    rc, _, err = run(["import-kek", *aws(stub), *KEK_ARGS])
    assert rc == 2 and "APCKX_TRUST_APC_ROOT" in one_error_line(err)
    assert stub.calls == []
    assert not Path(".apckx/ceremonies").exists() or not list(Path(".apckx/ceremonies").iterdir())


def test_plain_http_to_another_host_is_warned(monkeypatch: pytest.MonkeyPatch) -> None:
    from apckx.ceremonies.ecdh_session import EcdhSession

    warnings: list[str] = []

    class Meta:
        endpoint_url = "http://apc.example.net:8080"

    class Client:
        meta = Meta()

    journal: Any = type("J", (), {"ceremony_id": "kek-x"})()
    EcdhSession(ApcService(Client()), journal, curve="P256", receiver_alias="alias/r",
                root_alias="alias/s", warn=warnings.append)  # fmt: skip
    assert warnings and "plain http to another host" in warnings[0]
    Meta.endpoint_url = "http://127.0.0.1:8080"
    warnings.clear()
    EcdhSession(ApcService(Client()), journal, curve="P256", receiver_alias="alias/r",
                root_alias="alias/s", warn=warnings.append)  # fmt: skip
    assert warnings == []


# -- every bad input before any call (item 14) ----------------------------------------------

IMPORT = ["import-key", "--kek-id", "alias/kek", "--key-usage", "D0", "--key-algorithm", "AES_128"]
EXPORT = ["export-key", "--key", "alias/work", "--kek-id", "alias/kek"]


@pytest.mark.parametrize(
    ("argv", "files", "expected"),
    [
        ([*IMPORT, "--kek-file", "missing.hex", "--key-env", "HOSTILE_KEY"], {}, "no such file"),
        ([*IMPORT, "--kek-file", "kek.hex", "--key-env", "HOSTILE_KEY"], {"kek.hex": "zz" * 16},
         "hex digits"),
        ([*IMPORT, "--kek-file", "kek.hex", "--key-env", "HOSTILE_KEY"], {"kek.hex": "AB" * 5},
         "expected one of 32, 48, 64"),
        ([*IMPORT, "--kek-env", "HOSTILE_KEK", "--key-file", "/dev/zero"], {},
         "not a regular file"),
        ([*IMPORT, "--kek-env", "HOSTILE_KEK", "--key-file", "key.hex"], {"key.hex": "AB" * 24},
         "expected one of 32"),
        ([*EXPORT, "--kek-file", "missing.hex", "--out", "x.tr31"], {}, "no such file"),
        ([*EXPORT, "--out", "x.tr31"], {}, "needs the KEK's cleartext"),
    ],
)  # fmt: skip
def test_bad_key_files_stop_before_get_key(
    stub: Stub, argv: list[str], files: dict[str, str], expected: str
) -> None:
    for name, text in files.items():
        Path(name).write_text(text)
        os.chmod(name, 0o600)
    rc, _, err = run([*argv, *aws(stub)])
    assert rc == 2, err
    assert expected in one_error_line(err)
    assert stub.calls == []
