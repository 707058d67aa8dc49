"""The boto3 client factory: region, profile, endpoint, retries. The one place boto3 is configured.

aws-cli conventions: ``endpoint_url=None`` lets botocore apply
``AWS_ENDPOINT_URL_PAYMENT_CRYPTOGRAPHY`` (and the profile's ``endpoint_url``) itself; AWS
variables are never re-read by hand. Retries use botocore's own ``standard`` or ``adaptive``
mode, which retry ThrottlingException and 5xx answers with jittered backoff.

Building a client is most of a ceremony's local time, so the session gets a data loader
(:func:`make_data_loader`) that does botocore's loading with two costs removed: listing every
service directory (~400, twice) to learn that ``payment-cryptography`` exists, and parsing
the 1.2 MB ``endpoints.json`` into ``OrderedDict`` objects (plain dicts keep the order too).
Search paths, ``AWS_DATA_PATH``/``data_path`` and boto3's own data path are unchanged.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any
from urllib.parse import urlsplit

from apckx.errors import ConfigError, InputError

SERVICE_NAME = "payment-cryptography"
RETRY_MODES = ("standard", "adaptive", "legacy")

_log = logging.getLogger("apckx.service")


def check_endpoint_url(endpoint_url: str) -> str:
    """Return ``endpoint_url`` if it is an absolute http(s) URL with a host, else InputError."""
    text = endpoint_url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise InputError(f"--endpoint-url is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise InputError("--endpoint-url must start with http:// or https://")
    if not parts.hostname:
        raise InputError("--endpoint-url has no host name")
    if port == 0:
        raise InputError("--endpoint-url has port 0")
    if parts.query or parts.fragment:
        raise InputError("--endpoint-url must not carry a query or fragment")
    return text


def check_retry_options(retry_mode: str, max_attempts: int) -> None:
    """Validate the retry settings before any client is built."""
    if retry_mode not in RETRY_MODES:
        raise InputError(f"--retry-mode must be one of {', '.join(RETRY_MODES)}")
    if not 1 <= max_attempts <= 20:
        raise InputError(f"--max-attempts must be between 1 and 20 (got {max_attempts})")


def enable_botocore_debug() -> None:
    """Send botocore's debug log to stderr, as ``aws --debug`` does.

    botocore logs request bodies; apckx only ever sends wrapped key blocks, never cleartext.
    """
    import boto3

    boto3.set_stream_logger("botocore", logging.DEBUG)


def make_data_loader(data_path: str | None = None) -> Any:
    """A ``botocore.loaders.Loader`` for the one service apckx calls (see the module docstring).

    ``data_path``: ``AWS_DATA_PATH``/the profile's ``data_path`` (``os.pathsep``-separated),
    searched before the default paths, as botocore's own ``create_loader`` does.
    """
    import gzip

    import botocore.exceptions
    import botocore.loaders

    class PlainJSONFileLoader(botocore.loaders.JSONFileLoader):  # type: ignore[misc]
        """botocore's ``.json``/``.json.gz`` loading, into plain (ordered) dicts."""

        def load_file(self, file_path: str) -> Any:
            for suffix, opener in ((".json", open), (".json.gz", gzip.open)):
                full_path = file_path + suffix
                if os.path.isfile(full_path):
                    with opener(full_path, "rb") as handle:
                        return json.loads(handle.read().decode("utf-8"))
            return None

    class ServiceLoader(botocore.loaders.Loader):  # type: ignore[misc]
        """Lists only ``payment-cryptography`` (when a search path holds it): no directory scan."""

        FILE_LOADER_CLASS = PlainJSONFileLoader

        @botocore.loaders.instance_cache  # type: ignore[untyped-decorator]
        def list_available_services(self, type_name: str) -> list[str]:
            try:
                self.list_api_versions(SERVICE_NAME, type_name)
            except botocore.exceptions.DataNotFoundError:
                return []
            return [SERVICE_NAME]

    extra_paths = None
    if data_path is not None:  # botocore.loaders.create_loader's parsing
        extra_paths = [
            os.path.expanduser(os.path.expandvars(path)) for path in data_path.split(os.pathsep)
        ]
    return ServiceLoader(extra_search_paths=extra_paths)


def make_client(
    *,
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    retry_mode: str = "standard",
    max_attempts: int = 5,
    debug: bool = False,
    credentials: tuple[str, str] | None = None,
    max_pool_connections: int = 10,
    require_credentials: bool = False,
) -> Any:
    """Build a ``payment-cryptography`` client.

    ``credentials`` (access key id, secret) is for the embedded emulator only; normally the
    profile or environment supplies credentials through botocore's chain.
    With ``require_credentials`` the credential chain is resolved now, so a ceremony without
    credentials stops before it starts a journal or makes a call.
    Raises ConfigError for an unknown profile, a missing region or (with
    ``require_credentials``) missing credentials; InputError for bad options.
    """
    check_retry_options(retry_mode, max_attempts)
    if endpoint_url is not None:
        endpoint_url = check_endpoint_url(endpoint_url)
    import boto3
    import botocore.config
    import botocore.exceptions
    import botocore.session

    del debug  # logging is configured by the CLI (apckx.cli._output.setup_debug_logging)
    botocore_session = botocore.session.Session(profile=profile)
    try:
        botocore_session.get_scoped_config()  # an unknown profile fails here, not later
        botocore_session.register_component(
            "data_loader", make_data_loader(botocore_session.get_config_variable("data_path"))
        )
        session = boto3.Session(
            region_name=region,
            aws_access_key_id=credentials[0] if credentials else None,
            aws_secret_access_key=credentials[1] if credentials else None,
            botocore_session=botocore_session,
        )
        if not session.region_name:
            raise ConfigError("no AWS region: pass --region or set AWS_REGION / a profile region")
        if require_credentials and session.get_credentials() is None:
            raise ConfigError(
                "no AWS credentials: configure a profile (--profile) or the AWS_* variables"
            )
    except botocore.exceptions.ProfileNotFound as exc:
        name = exc.kwargs.get("profile", profile)
        raise ConfigError(f"AWS profile {name!r} not found in the AWS config files") from None
    config = botocore.config.Config(
        retries={"mode": retry_mode, "total_max_attempts": max_attempts},
        max_pool_connections=max_pool_connections,
        user_agent_extra="apckx",
    )
    try:
        client = session.client(SERVICE_NAME, endpoint_url=endpoint_url, config=config)
    except botocore.exceptions.BotoCoreError as exc:
        raise ConfigError(f"cannot build the APC client: {exc}") from None
    _log.debug(
        "client: region=%s endpoint=%s retry_mode=%s max_attempts=%d",
        session.region_name,
        client.meta.endpoint_url,
        retry_mode,
        max_attempts,
    )
    return client
