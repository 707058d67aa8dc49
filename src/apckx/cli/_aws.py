"""The AWS side shared by the sub-commands that call APC: retry options and the service.

One place builds the boto3 client from the parsed options (``--region``, ``--profile``,
``--endpoint-url``, ``--debug`` from ``_cli``; ``--retry-mode``, ``--max-attempts`` from
:func:`add_retry_arguments`). boto3 is imported only when a service is built, so ``--help``
stays light.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apckx.service.apc import ApcService


def add_retry_arguments(parser: argparse.ArgumentParser) -> None:
    """``--retry-mode`` and ``--max-attempts``: botocore's own retries."""
    group = parser.add_argument_group("retries (botocore)")
    group.add_argument(
        "--retry-mode",
        choices=("standard", "adaptive", "legacy"),
        default="standard",
        help="botocore retry mode (default: standard; adaptive also rate-limits the client)",
    )
    group.add_argument(
        "--max-attempts",
        type=int,
        default=5,
        help="attempts per call including the first (default: 5)",
    )


def check_aws_options(args: argparse.Namespace) -> None:
    """Check ``--endpoint-url`` and the retry options before any key is read or call made."""
    from apckx.service.client import check_endpoint_url, check_retry_options

    if args.endpoint_url is not None:
        check_endpoint_url(args.endpoint_url)
    check_retry_options(args.retry_mode, args.max_attempts)


def make_service(
    args: argparse.Namespace,
    *,
    retry_mode: str | None = None,
    max_attempts: int | None = None,
    max_pool_connections: int = 10,
) -> ApcService:
    """Set up ``--debug`` logging and build the APC service from the parsed options.

    ``retry_mode``/``max_attempts`` override ``--retry-mode``/``--max-attempts`` (``migrate``
    paces every attempt itself and wants no botocore retries). An embedder may set
    ``args.credentials`` (access key id, secret) for an embedded emulator; normally it is unset.
    """
    from apckx.cli._output import setup_debug_logging
    from apckx.service.apc import ApcService
    from apckx.service.client import make_client

    setup_debug_logging(args.debug)
    client = make_client(
        region=args.region,
        profile=args.profile,
        endpoint_url=args.endpoint_url,
        retry_mode=args.retry_mode if retry_mode is None else retry_mode,
        max_attempts=args.max_attempts if max_attempts is None else max_attempts,
        debug=args.debug,
        credentials=getattr(args, "credentials", None),
        max_pool_connections=max_pool_connections,
        require_credentials=True,
    )
    return ApcService(client)
