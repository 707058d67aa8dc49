"""``apckx emulator serve``: run the local APC emulator until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import stat
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from apckx.errors import ConfigError, InputError

if TYPE_CHECKING:  # the server (and boto/crypto) load only when the command runs
    from apckx.emulator.server import EmulatorConfig

SECRET_ENV = "APCKX_EMULATOR_SECRET_ACCESS_KEY"  # noqa: S105 (a variable name)
TOKEN_ENV = "APCKX_EMULATOR_SESSION_TOKEN"  # noqa: S105 (a variable name)
_SECRET_FILE_MAX_BYTES = 4096

BANNER = (
    "apckx APC emulator: for rehearsal and tests only. It is not secure storage: never "
    "put production keys into it."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="emulator_command", metavar="COMMAND", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve the APC control plane on 127.0.0.1 until interrupted",
        description="Serve the AWS Payment Cryptography control plane (AWS JSON 1.0, SigV4) "
        "locally, with real cryptography. Prints the URL on its own line, then runs until "
        "SIGINT or SIGTERM. " + BANNER,
    )
    net = serve.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    net.add_argument("--port", default="0", help="port to bind; 0 picks a free one (default 0)")
    net.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other than loopback (the emulator is never for production keys)",
    )
    auth = serve.add_argument_group("authentication")
    auth.add_argument("--access-key-id", default="test", help="accepted access key id (test)")
    auth.add_argument(
        "--secret-access-key",
        help=f"secret that signatures must use (default: ${SECRET_ENV}, else 'test'); "
        "visible to other users in ps: prefer --secret-access-key-file or the variable",
    )
    auth.add_argument(
        "--secret-access-key-file",
        metavar="FILE",
        help="read the secret from the first line of FILE (mode 0600)",
    )
    auth.add_argument(
        "--session-token",
        help=f"require this X-Amz-Security-Token (default: ${TOKEN_ENV}, else accept any "
        "signed token, or none); visible in ps: prefer --session-token-file",
    )
    auth.add_argument(
        "--session-token-file",
        metavar="FILE",
        help="read the required session token from the first line of FILE (mode 0600)",
    )
    auth.add_argument(
        "--account-id", default="111122223333", help="account id in ARNs (111122223333)"
    )
    auth.add_argument(
        "--policy",
        metavar="FILE",
        help='JSON {"Allow": [...], "Deny": [...]} of actions such as '
        '"payment-cryptography:Get*"; others get AccessDeniedException',
    )
    quotas = serve.add_argument_group("quotas and faults")
    quotas.add_argument(
        "--rate-limit",
        metavar="TPS|apc|PLANE=TPS,...",
        help="calls per second per region, burst of one second's worth; ThrottlingException "
        "above it (default: off). A number limits the control plane (APC's default quota is "
        "5); 'apc' applies APC's quotas to all three planes (control 5, data 500, "
        "asymmetric 20); or give PLANE=TPS pairs, e.g. control=5,data=500",
    )
    quotas.add_argument("--latency-ms", metavar="N", default="0", help="delay every answer")
    quotas.add_argument(
        "--fault",
        metavar="OPERATION:KIND:COUNT",
        action="append",
        default=[],
        help="fail the next COUNT calls (a number or 'always') of OPERATION ('*' for any) "
        "with KIND: throttle (429 ThrottlingException), error (500 InternalServerException) "
        "or reset (TCP reset, no answer); repeatable",
    )
    quotas.add_argument("--key-quota", metavar="N", default="2000", help="keys per region")
    quotas.add_argument(
        "--max-connections",
        metavar="N",
        default="256",
        help="connections served at once; more get 503 and are closed (default 256)",
    )
    quotas.add_argument(
        "--request-deadline",
        metavar="SECONDS",
        default="60",
        help="from a request's first byte to its answer, whatever the client's pace; "
        "a slower client is disconnected (default 60)",
    )
    quotas.add_argument("--alias-quota", metavar="N", default="2000", help="aliases per region")
    files = serve.add_argument_group("state and logs")
    files.add_argument(
        "--state",
        metavar="FILE",
        help="keep state in this SQLite file across restarts, encrypted under FILE.key "
        "(0600, created on first start); default: in memory",
    )
    files.add_argument(
        "--request-log",
        metavar="FILE",
        help="append one JSON line per request (operation, start, end, status; no bodies)",
    )


def _parse_number(option: str, text: str, *, minimum: float, integer: bool) -> float:
    try:
        value = float(int(text)) if integer else float(text)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise InputError(f"{option} must be {kind} (got {text!r})") from None
    if not value >= minimum or value == float("inf"):
        raise InputError(f"{option} must be at least {minimum:g} (got {text!r})")
    return value


def _read_secret_file(option: str, path_text: str) -> str:
    """The first line of a secret file that only its owner may read."""
    path = Path(path_text)
    if path.is_dir():
        raise ConfigError(f"{option} {path} is not a regular file")
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ConfigError(f"{option} {path} is not a regular file")
            if stat.S_IMODE(info.st_mode) & 0o077:
                raise ConfigError(
                    f"{option} {path} has mode {stat.S_IMODE(info.st_mode):04o}; it must be "
                    f"readable by its owner only (run: chmod 600 {path})"
                )
            data = handle.read(_SECRET_FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {option} {path}: {exc.strerror}") from None
    if len(data) > _SECRET_FILE_MAX_BYTES:
        raise InputError(f"{option} {path} is over {_SECRET_FILE_MAX_BYTES} bytes; "
                         "it must hold the secret on one line")
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{option} {path} is not UTF-8 text") from None
    secret = lines[0].strip() if lines else ""
    if not secret:
        raise InputError(f"{option} {path} is empty; put the secret on its first line")
    return secret


def _secret(args: argparse.Namespace, name: str, env: str) -> str | None:
    """A secret from its option, its ``-file`` option or the environment, in that order;
    a value on the command line is visible in ``ps``, so it gets a warning."""
    flag = "--" + name.replace("_", "-")
    value: str | None = getattr(args, name)
    file_value: str | None = getattr(args, name + "_file")
    if value is not None and file_value is not None:
        raise InputError(f"give {flag} or {flag}-file, not both")
    if value is not None:
        print(
            f"apckx: warning: {flag} on the command line is visible to other users (ps); "
            f"prefer {flag}-file FILE or ${env}",
            file=sys.stderr,
        )
        return value
    if file_value is not None:
        return _read_secret_file(f"{flag}-file", file_value)
    from_env = os.environ.get(env)
    return from_env if from_env else None


def build_config(args: argparse.Namespace) -> EmulatorConfig:
    """Turn parsed options into an :class:`EmulatorConfig`; InputError/ConfigError if bad."""
    from apckx.emulator.auth import EmulatorCredentials, Policy
    from apckx.emulator.quotas import RateLimits, parse_plane_rates
    from apckx.emulator.server import EmulatorConfig, parse_fault_spec

    rates = RateLimits()
    if args.rate_limit is not None and ("=" in args.rate_limit
                                        or args.rate_limit.strip().lower() == "apc"):
        rates = parse_plane_rates(args.rate_limit)
    elif args.rate_limit is not None:
        rate_limit = _parse_number("--rate-limit", args.rate_limit, minimum=0, integer=False)
        if rate_limit == 0:
            raise InputError("--rate-limit must be greater than 0 (leave it out for no limit)")
        rates = RateLimits(control=rate_limit)
    port = int(_parse_number("--port", args.port, minimum=0, integer=True))
    if port > 65535:
        raise InputError(f"--port must be 0..65535 (got {port})")
    return EmulatorConfig(
        host=args.host,
        port=port,
        allow_remote=args.allow_remote,
        credentials=EmulatorCredentials(
            args.access_key_id,
            _secret(args, "secret_access_key", SECRET_ENV) or "test",
            _secret(args, "session_token", TOKEN_ENV),
        ),
        account_id=args.account_id,
        policy=Policy.from_file(args.policy) if args.policy else None,
        rate_limit=rates.control,
        data_rate_limit=rates.data,
        asymmetric_rate_limit=rates.asymmetric,
        latency_ms=_parse_number("--latency-ms", args.latency_ms, minimum=0, integer=False),
        faults=tuple(parse_fault_spec(spec) for spec in args.fault),
        key_quota=int(_parse_number("--key-quota", args.key_quota, minimum=0, integer=True)),
        alias_quota=int(_parse_number("--alias-quota", args.alias_quota, minimum=0, integer=True)),
        state_path=Path(args.state) if args.state else None,
        request_log_path=Path(args.request_log) if args.request_log else None,
        max_connections=int(
            _parse_number("--max-connections", args.max_connections, minimum=1, integer=True)
        ),
        request_deadline=_parse_number(
            "--request-deadline", args.request_deadline, minimum=0.001, integer=False
        ),
    )


def _describe(config: EmulatorConfig) -> str:
    settings = [
        f"account {config.account_id}",
        f"access key id {config.credentials.access_key_id}",
        f"state {config.state_path or 'in memory'}",
    ]
    if config.rate_limit is not None:
        settings.append(f"rate limit {config.rate_limit:g}/s per region")
    if config.data_rate_limit is not None:
        settings.append(f"data-plane rate limit {config.data_rate_limit:g}/s per region")
    if config.asymmetric_rate_limit is not None:
        settings.append(f"asymmetric rate limit {config.asymmetric_rate_limit:g}/s per region")
    if config.latency_ms:
        settings.append(f"latency {config.latency_ms:g} ms")
    if config.faults:
        settings.append("faults " + ", ".join(str(fault) for fault in config.faults))
    if config.policy is not None:
        settings.append("policy on")
    if config.request_log_path is not None:
        settings.append(f"request log {config.request_log_path}")
    return "; ".join(settings)


def run(args: argparse.Namespace) -> int:
    from apckx.emulator.server import start_emulator

    if args.emulator_command != "serve":  # pragma: no cover (argparse requires one)
        raise ConfigError(f"unknown emulator command {args.emulator_command!r}")
    config = build_config(args)

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {
        signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        emulator = start_emulator(config)
        try:
            print(BANNER, file=sys.stderr)
            print(_describe(config), file=sys.stderr, flush=True)
            print(emulator.url, flush=True)
            while not stop.wait(0.5):
                pass
        finally:
            emulator.stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("apckx emulator stopped", file=sys.stderr, flush=True)
    return 0
