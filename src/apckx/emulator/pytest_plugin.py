"""pytest plugin (entry point ``apckx_emulator``): the ``apc_emulator`` fixture.

Any project with apckx installed gets, in its tests::

    def test_my_ceremony(apc_emulator):
        apc_emulator.client.create_key(...)        # a ready boto3 client
        run_my_tool(endpoint_url=apc_emulator.url)  # or the URL for your own client

Each test gets a fresh in-memory emulator on 127.0.0.1 (a free port), credentials
``test``/``test``, region ``us-east-1``, botocore ``standard`` retries. The client is built
from explicit arguments in an isolated botocore session: no ``AWS_*`` variable, profile or
config file of the machine running the tests leaks into it, and the fixture changes no
environment variable.

``apc_emulator_factory`` starts emulators with other settings (``EmulatorConfig``) and stops
them after the test. Importing this module costs nothing: boto3 and the emulator load when a
test asks.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from apckx.emulator.server import EmulatorConfig, RunningEmulator

DEFAULT_REGION = "us-east-1"


_SESSION_LOCK = threading.Lock()


@functools.cache
def _isolated_session() -> Any:
    """One boto3 session shared by the clients made here (the model loads once).

    No profile and empty config files, whatever AWS_PROFILE or AWS_CONFIG_FILE say; the rest
    (credentials, region, endpoint, retries) is passed explicitly to each client.
    """
    import boto3.session
    import botocore.session
    from botocore.configprovider import ConstantProvider

    core = botocore.session.Session()
    config_store = core.get_component("config_store")
    config_store.set_config_provider("profile", ConstantProvider(None))
    config_store.set_config_provider("config_file", ConstantProvider(os.devnull))
    config_store.set_config_provider("credentials_file", ConstantProvider(os.devnull))
    return boto3.session.Session(botocore_session=core)


def make_emulator_client(
    url: str,
    *,
    region: str = DEFAULT_REGION,
    access_key_id: str = "test",
    secret_access_key: str = "test",  # noqa: S107 (the emulator's published test secret)
    max_attempts: int = 3,
    retry_mode: str = "standard",
    service: str = "payment-cryptography",
) -> Any:
    """A boto3 client for the emulator at ``url``: ``payment-cryptography`` (the control
    plane) by default, or ``service="payment-cryptography-data"`` (the data plane) or
    ``"sts"``; one URL serves all three.

    Built in an isolated botocore session (no profile, no config or credentials file, no
    AWS_* variables consulted for what it sets), so the caller's environment cannot change
    it and it changes nothing in the caller's environment.
    """
    from botocore.config import Config

    with _SESSION_LOCK:
        return _isolated_session().client(
            service,
            endpoint_url=url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            aws_session_token=None,
            config=Config(
                retries={"mode": retry_mode, "total_max_attempts": max_attempts},
                connect_timeout=5,
                read_timeout=30,
                use_fips_endpoint=False,
                use_dualstack_endpoint=False,
            ),
        )


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def sign_request(
    url: str,
    operation: str | None,
    body: bytes | Mapping[str, Any],
    *,
    region: str = DEFAULT_REGION,
    access_key_id: str = "test",
    secret_access_key: str = "test",  # noqa: S107 (the emulator's published test secret)
    session_token: str | None = None,
    headers: Mapping[str, str] | None = None,
    when: datetime.datetime | None = None,
) -> tuple[dict[str, str], bytes]:
    """Headers and body of an AWS JSON 1.0 request signed with botocore's SigV4 signer.

    ``when`` (UTC) signs as of another time, e.g. to test the 15-minute clock-skew window.
    """
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request_headers = {"Content-Type": "application/x-amz-json-1.0"}
    if operation is not None:
        request_headers["X-Amz-Target"] = f"PaymentCryptographyControlPlane.{operation}"
    request_headers.update(headers or {})
    request = AWSRequest(
        method="POST", url=url.rstrip("/") + "/", data=data, headers=request_headers
    )
    signer = SigV4Auth(
        Credentials(access_key_id, secret_access_key, session_token),
        "payment-cryptography",
        region,
    )
    stamp = (when or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%SZ")
    request.context["timestamp"] = stamp
    request.headers["X-Amz-Date"] = stamp
    if session_token is not None:
        request.headers["X-Amz-Security-Token"] = session_token
    canonical_request = signer.canonical_request(request)
    signature_hex = signer.signature(signer.string_to_sign(request, canonical_request), request)
    signed = signer.signed_headers(signer.headers_to_sign(request))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, SignedHeaders={signed}, "
        f"Signature={signature_hex}"
    )
    return {name: str(value) for name, value in request.headers.items()}, data


def post_raw(
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    method: str = "POST",
    path: str = "/",
    timeout: float = 10.0,
) -> RawAnswer:
    """Send one HTTP request with urllib; 4xx/5xx answers are returned, not raised."""
    request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 only)
        url.rstrip("/") + path,
        data=body if method != "GET" else None,
        method=method,
        headers=dict(headers),
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return RawAnswer(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return RawAnswer(error.code, dict(error.headers.items()), error.read())


def call_raw(
    url: str, operation: str | None, body: bytes | Mapping[str, Any], **sign_options: Any
) -> RawAnswer:
    """Sign (:func:`sign_request`) and send one AWS JSON request."""
    headers, data = sign_request(url, operation, body, **sign_options)
    return post_raw(url, headers, data)


@dataclass
class EmulatorFixture:
    """What ``apc_emulator`` gives a test."""

    url: str
    client: Any
    emulator: RunningEmulator
    region: str = DEFAULT_REGION
    account_id: str = "111122223333"


def start_test_emulator(config: EmulatorConfig | None = None) -> RunningEmulator:
    """Start an in-process emulator (a fresh in-memory one by default)."""
    from apckx.emulator.server import start_emulator

    return start_emulator(config)


@pytest.fixture
def apc_emulator() -> Iterator[EmulatorFixture]:
    """A fresh emulator for one test: ``.url``, ``.client`` (boto3), ``.emulator``."""
    emulator = start_test_emulator()
    try:
        client = make_emulator_client(emulator.url)
        try:
            yield EmulatorFixture(
                url=emulator.url,
                client=client,
                emulator=emulator,
                account_id=emulator.config.account_id,
            )
        finally:
            client.close()
    finally:
        emulator.stop()


@pytest.fixture
def apc_emulator_factory() -> Iterator[Callable[..., RunningEmulator]]:
    """Start emulators with your own settings; all are stopped after the test::

    def test_throttled(apc_emulator_factory):
        emulator = apc_emulator_factory(EmulatorConfig(rate_limit=5))
        client = make_emulator_client(emulator.url)
    """
    started: list[RunningEmulator] = []

    def start(config: EmulatorConfig | None = None) -> RunningEmulator:
        emulator = start_test_emulator(config)
        started.append(emulator)
        return emulator

    try:
        yield start
    finally:
        for emulator in reversed(started):
            emulator.stop()
