"""The boto3 client factory: region, profile, endpoint, retries. The one place boto3 is configured.

aws-cli conventions: ``endpoint_url=None`` lets botocore apply
``AWS_ENDPOINT_URL_PAYMENT_CRYPTOGRAPHY`` (and the profile's ``endpoint_url``) itself; AWS
variables are never re-read by hand. Retries use botocore's own ``standard`` or ``adaptive``
mode, which retry ThrottlingException and 5xx answers with jittered backoff.
"""

from __future__ import annotations

import logging
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

    del debug  # logging is configured by the CLI (apckx.cli._output.setup_debug_logging)
    try:
        session = boto3.Session(
            profile_name=profile,
            region_name=region,
            aws_access_key_id=credentials[0] if credentials else None,
            aws_secret_access_key=credentials[1] if credentials else None,
        )
    except botocore.exceptions.ProfileNotFound:
        raise ConfigError(f"AWS profile {profile!r} not found in the AWS config files") from None
    if not session.region_name:
        raise ConfigError("no AWS region: pass --region or set AWS_REGION / a profile region")
    if require_credentials and session.get_credentials() is None:
        raise ConfigError(
            "no AWS credentials: configure a profile (--profile) or the AWS_* variables"
        )
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
