"""The emulator's HTTP server: AWS JSON 1.0 over stdlib ``ThreadingHTTPServer``.

One request goes through these steps, in order, and stops at the first error:

1. The body is read (at most ``max_body_bytes``, with a ``Content-Length``) before anything
   is refused, so a refused request leaves its keep-alive connection clean. The protocol is
   chosen by path (``EmulatorApp._handle``): ``POST /`` is AWS JSON 1.0; any other path is a
   404 JSON error, any other method a 405.
2. SigV4 signature (:mod:`apckx.emulator.auth`), with the protocol's headers signed
   (``x-amz-target`` and ``content-type`` for JSON 1.0); the credential scope gives the
   region.
3. ``X-Amz-Target: PaymentCryptographyControlPlane.<Op>`` naming an implemented operation,
   ``Content-Type: application/x-amz-json-1.0``.
4. The policy file, if any (``AccessDeniedException`` naming the action).
5. The rate limit: one token bucket per region across all operations (``ThrottlingException``).
6. Injected faults (``--fault``), before the operation runs, so they have no side effect.
7. The JSON body (``SerializationException``), then the operation itself.

Every answer carries ``x-amzn-RequestId``; errors are ``{"__type", "message"}`` with the
Smithy model's HTTP status. An unexpected exception becomes a generic
``InternalServerException`` and the server keeps serving.

Against hostile clients: at most ``max_connections`` connections at once (more are answered
503 and closed), an absolute ``request_deadline`` from a request's first byte to its answer
(a client that trickles bytes is cut off), the idle keep-alive timeout, and a back-off when
``accept`` fails for want of descriptors (EMFILE) instead of a busy loop.
"""

from __future__ import annotations

import datetime
import errno
import ipaddress
import json
import logging
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from apckx.emulator import data, responses, rest_json, sts
from apckx.emulator.auth import (
    JSON_RPC_SIGNED_HEADERS,
    REST_JSON_SIGNED_HEADERS,
    Caller,
    EmulatorCredentials,
    Policy,
    verify_request,
)
from apckx.emulator.auth import SERVICE_NAME as SIGNING_NAME
from apckx.emulator.control.account import BackendRegistry
from apckx.emulator.exceptions import (
    ApcServiceException,
    InternalServerException,
    SerializationException,
    ServiceUnavailableException,
    ThrottlingException,
    UnknownOperationException,
)
from apckx.emulator.json_body import parse_json_object
from apckx.emulator.requestlog import RequestLog, RequestLogEntry
from apckx.emulator.state import MemoryStore, SqliteStore, StateStore
from apckx.emulator.validation import service_model
from apckx.errors import ConfigError, InputError

logger = logging.getLogger("apckx.emulator")

TARGET_PREFIX = "PaymentCryptographyControlPlane."
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
DEFAULT_ACCOUNT_ID = "111122223333"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# Idle keep-alive connections are closed after this many seconds.
IDLE_CONNECTION_TIMEOUT = 120.0
DEFAULT_MAX_CONNECTIONS = 256
# From a request's first byte to its answer, whatever the client's pace.
DEFAULT_REQUEST_DEADLINE = 60.0
# accept() failing for want of descriptors or memory: wait before trying again.
_ACCEPT_BACKOFF_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_ACCEPT_BACKOFF_FIRST = 0.05
_ACCEPT_BACKOFF_MAX = 1.0
_TOO_MANY_CONNECTIONS_BODY = (
    b'{"__type":"ServiceUnavailableException","message":"The emulator has too many open '
    b'connections; retry later."}'
)
_TOO_MANY_CONNECTIONS = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/x-amz-json-1.0\r\n"
    b"Connection: close\r\nContent-Length: " + str(len(_TOO_MANY_CONNECTIONS_BODY)).encode()
    + b"\r\n\r\n" + _TOO_MANY_CONNECTIONS_BODY
)
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_INTERNAL_ERROR_MESSAGE = (
    "The emulator hit an internal error; the request had no effect or a partial one. "
    "See the emulator's log."
)

FaultKind = Literal["throttle", "error", "reset"]
# The rate-limit planes, with APC's default quotas per account and region (calls/s).
CONTROL_PLANE = "control-plane"
SYMMETRIC_DATA_PLANE = data.SYMMETRIC_PLANE
ASYMMETRIC_DATA_PLANE = data.ASYMMETRIC_PLANE
FAULT_KINDS: tuple[FaultKind, ...] = ("throttle", "error", "reset")


# --- errors the HTTP layer answers with (not operations' errors) ----------------------------


class _PathNotFound(UnknownOperationException):
    status = 404


class _MethodNotAllowed(UnknownOperationException):
    status = 405


class _LengthRequired(SerializationException):
    status = 411


class _PayloadTooLarge(SerializationException):
    error_type = "RequestEntityTooLargeException"
    status = 413


class _ConnectionResetError(Exception):
    """Raised by the fault injector: close the connection without answering."""


# --- faults ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultSpec:
    """``OPERATION:KIND:COUNT``: fail the next COUNT calls of OPERATION (``*`` = any)."""

    operation: str
    kind: FaultKind
    count: int | None  # None: always

    def __str__(self) -> str:
        return f"{self.operation}:{self.kind}:{'always' if self.count is None else self.count}"


def parse_fault_spec(text: str) -> FaultSpec:
    """Parse ``--fault OPERATION:KIND:COUNT``; :class:`InputError` says what is wrong."""
    parts = text.split(":")
    if len(parts) != 3:
        raise InputError(
            f"--fault {text!r} must be OPERATION:KIND:COUNT, e.g. CreateKey:throttle:2 "
            f"or *:reset:always"
        )
    operation, kind, count_text = (part.strip() for part in parts)
    if operation != "*" and not (operation.isascii() and operation.isalpha()):
        raise InputError(f"--fault {text!r}: OPERATION must be an operation name or '*'")
    if kind not in FAULT_KINDS:
        raise InputError(f"--fault {text!r}: KIND must be one of {', '.join(FAULT_KINDS)}")
    if count_text == "always":
        count: int | None = None
    else:
        try:
            count = int(count_text)
        except ValueError:
            count = -1
        if count < 1:
            raise InputError(f"--fault {text!r}: COUNT must be a positive number or 'always'")
    return FaultSpec(operation, kind, count)


class FaultInjector:
    """Hands out configured faults; the first spec matching an operation that has some left."""

    def __init__(self, specs: Sequence[FaultSpec]) -> None:
        self._lock = threading.Lock()
        self._specs = list(specs)
        self._remaining: list[int | None] = [spec.count for spec in specs]

    def take(self, operation: str) -> FaultKind | None:
        with self._lock:
            for index, spec in enumerate(self._specs):
                if spec.operation not in ("*", operation):
                    continue
                remaining = self._remaining[index]
                if remaining is None:
                    return spec.kind
                if remaining > 0:
                    self._remaining[index] = remaining - 1
                    return spec.kind
        return None


# --- rate limit -----------------------------------------------------------------------------


class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst`` (starts full). Thread-safe."""

    def __init__(
        self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise InputError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._updated = clock()
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._updated)
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._updated = now
            if self._tokens >= 1.0 - 1e-9:  # a caller exactly at the rate: float rounding
                self._tokens = max(0.0, self._tokens - 1.0)
                return True
            return False


def burst_for_rate(rate: float) -> float:
    """The bucket size for ``--rate-limit``: one second's worth of calls, at least one."""
    return max(1.0, rate)


# --- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything ``apckx emulator serve`` can set; the defaults suit tests."""

    host: str = "127.0.0.1"
    port: int = 0
    allow_remote: bool = False
    credentials: EmulatorCredentials = field(default_factory=EmulatorCredentials)
    account_id: str = DEFAULT_ACCOUNT_ID
    policy: Policy | None = None
    rate_limit: float | None = None  # control-plane calls per second per region; None: off
    # Data-plane calls per second per region, symmetric and asymmetric (APC counts them
    # apart: 500 and 20 by default); None: off.
    data_rate_limit: float | None = None
    asymmetric_rate_limit: float | None = None
    latency_ms: float = 0.0
    faults: tuple[FaultSpec, ...] = ()
    key_quota: int = 2000
    alias_quota: int = 2000
    state_path: Path | None = None
    request_log_path: Path | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    request_deadline: float = DEFAULT_REQUEST_DEADLINE  # seconds

    def check(self) -> None:
        """Raise :class:`ConfigError` for settings the emulator must not start with."""
        if not self.allow_remote and not _is_loopback(self.host):
            raise ConfigError(
                f"--host {self.host} is not a loopback address; the emulator is for rehearsal "
                f"and tests, so listening elsewhere needs --allow-remote"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be 0..65535 (got {self.port})")
        if not (len(self.account_id) == 12 and self.account_id.isdigit()):
            raise ConfigError(f"--account-id must be 12 digits (got {self.account_id!r})")
        if not self.credentials.access_key_id or not self.credentials.secret_access_key:
            raise ConfigError("--access-key-id and --secret-access-key must not be empty")
        for rate in (self.rate_limit, self.data_rate_limit, self.asymmetric_rate_limit):
            if rate is not None and not rate > 0:
                raise ConfigError(f"--rate-limit must be a positive number (got {rate})")
        if not self.latency_ms >= 0:
            raise ConfigError(f"--latency-ms must be 0 or more (got {self.latency_ms})")
        if self.key_quota < 0 or self.alias_quota < 0:
            raise ConfigError("--key-quota and --alias-quota must be 0 or more")
        if self.max_body_bytes < 1:
            raise ConfigError("max_body_bytes must be positive")
        if self.max_connections < 1:
            raise ConfigError(f"--max-connections must be 1 or more (got {self.max_connections})")
        if not self.request_deadline > 0:
            raise ConfigError(
                f"--request-deadline must be a positive number of seconds "
                f"(got {self.request_deadline})"
            )
        for fault in self.faults:
            served = responses.IMPLEMENTED_OPERATIONS | data.IMPLEMENTED_OPERATIONS
            if fault.operation != "*" and fault.operation not in served:
                raise ConfigError(
                    f"--fault {fault}: {fault.operation} is not an operation the emulator "
                    f"serves ({', '.join(sorted(served))})"
                )

    def plane_rate(self, plane: str) -> float | None:
        """The rate limit of one plane (control-plane, symmetric or asymmetric data plane)."""
        if plane == SYMMETRIC_DATA_PLANE:
            return self.data_rate_limit
        if plane == ASYMMETRIC_DATA_PLANE:
            return self.asymmetric_rate_limit
        return self.rate_limit


def _shown_path(raw_request_line: bytes) -> str:
    """The path of a (maybe garbled) request line, printable and short, for the log."""
    words = raw_request_line.split()
    path = words[1] if len(words) >= 2 else b""
    text = path[:200].decode("latin-1")
    return "".join(char if char.isprintable() else "?" for char in text)


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def model_operation_names() -> frozenset[str]:
    """Every operation in botocore's payment-cryptography model (loaded once)."""
    return frozenset(service_model().operation_names)


# --- the request pipeline (HTTP-agnostic) ---------------------------------------------------


@dataclass
class _Answer:
    status: int
    body: bytes
    error_type: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_CONTENT_TYPE
    operation: str | None = None  # for the request log, once the pipeline knows it
    request_id: str | None = None  # when the body already names one (STS's XML)


def _error_answer(error: ApcServiceException) -> _Answer:
    body = json.dumps(error.to_body(), separators=(",", ":")).encode()
    return _Answer(error.status, body, error.error_type)


class EmulatorApp:
    """The emulator minus HTTP: checks, quotas, faults, dispatch. Shared by handler threads."""

    def __init__(
        self, config: EmulatorConfig, registry: BackendRegistry, store: StateStore
    ) -> None:
        self.config = config
        self.registry = registry
        self.store = store
        self._dispatch: Callable[..., dict[str, Any]] = responses.dispatch
        self._implemented: frozenset[str] = frozenset(responses.IMPLEMENTED_OPERATIONS)
        self._faults = FaultInjector(config.faults)
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._buckets_lock = threading.Lock()
        self.request_log = RequestLog(config.request_log_path) if config.request_log_path else None

    def _bucket(self, region: str, plane: str = CONTROL_PLANE) -> TokenBucket | None:
        rate = self.config.plane_rate(plane)
        if rate is None:
            return None
        with self._buckets_lock:
            bucket = self._buckets.get((plane, region))
            if bucket is None:
                bucket = self._buckets[(plane, region)] = TokenBucket(rate, burst_for_rate(rate))
            return bucket

    @staticmethod
    def operation_from_target(target: str | None) -> str | None:
        if target is None or not target.startswith(TARGET_PREFIX):
            return None
        return target[len(TARGET_PREFIX) :]

    def _resolve_operation(self, target: str | None) -> str:
        operation = self.operation_from_target(target)
        if operation is None:
            shown = "none" if target is None else repr(target[:120])
            raise UnknownOperationException(
                f"X-Amz-Target must be {TARGET_PREFIX}<Operation> (got {shown})"
            )
        if operation not in self._implemented:
            if operation in model_operation_names():
                raise UnknownOperationException(
                    f"Operation {operation} is not implemented by the apckx emulator"
                )
            raise UnknownOperationException(f"Unknown operation {operation[:120]!r}")
        return operation

    def handle(self, *, method: str, path: str, headers: Any, body: bytes) -> _Answer:
        """Answer one POST; raises :class:`_ConnectionResetError` for an injected reset.

        The protocol is chosen from the request: a form-encoded ``POST /`` is STS (query),
        any other ``POST /`` the control plane (JSON 1.0), any other path the data plane
        (rest-json). Each answers its errors in its own form.
        """
        if sts.is_sts_request(path, headers.get("Content-Type")):
            return self._handle_sts(method=method, path=path, headers=headers, body=body)
        if path.split("?", 1)[0] != "/":
            return self._handle_data(method=method, path=path, headers=headers, body=body)
        try:
            return self._handle(method=method, path=path, headers=headers, body=body)
        except ApcServiceException as error:
            return _error_answer(error)
        except _ConnectionResetError:
            raise
        except Exception as exc:  # a bug outside dispatch: still one generic JSON answer
            logger.error("internal error handling a request: %s", type(exc).__name__)
            return _error_answer(InternalServerException(_INTERNAL_ERROR_MESSAGE))

    def _verify(self, method: str, path: str, headers: Any, body: bytes, *,
                required_signed_headers: Sequence[str],
                service: str = SIGNING_NAME) -> Caller:
        """SigV4, with the protocol's own signed-header rule (:mod:`apckx.emulator.auth`)."""
        return verify_request(
            method=method, path=path, headers=headers, body=body,
            credentials=self.config.credentials, now=datetime.datetime.now(datetime.UTC),
            required_signed_headers=required_signed_headers, service=service,
        )

    def _admit(self, operation: str, caller: Caller, plane: str) -> None:
        """Policy, the plane's rate limit, then injected faults (in that order)."""
        config = self.config
        if config.policy is not None:
            config.policy.check(
                operation, account_id=config.account_id, access_key_id=caller.access_key_id
            )
        bucket = self._bucket(caller.region, plane)
        if bucket is not None and not bucket.try_acquire():
            raise ThrottlingException(
                f"Rate exceeded: the emulator allows {bucket.rate:g} {plane} "
                f"requests per second in {caller.region}"
            )
        fault = self._faults.take(operation)
        if fault == "throttle":
            raise ThrottlingException(f"Rate exceeded (injected fault for {operation})")
        if fault == "error":
            raise InternalServerException(f"Injected internal error for {operation}")
        if fault == "reset":
            raise _ConnectionResetError

    def _handle_data(self, *, method: str, path: str, headers: Any, body: bytes) -> _Answer:
        """One data-plane (rest-json) call: the control plane's checks, then the operation."""
        matched = rest_json.match_route(method, path)
        operation = None if matched is None else matched[0].operation
        try:
            if matched is None:  # before the signature: no operation to authorize
                raise _PathNotFound(
                    f"No such path {path[:120]!r}: data-plane paths are the "
                    f"payment-cryptography-data model's, control-plane calls POST /"
                )
            caller = self._verify(method, path, headers, body,
                                  required_signed_headers=REST_JSON_SIGNED_HEADERS)
            route, path_values = matched
            if route.operation not in data.IMPLEMENTED_OPERATIONS:
                raise UnknownOperationException(
                    f"Operation {route.operation} is not implemented by the apckx emulator"
                )
            request = rest_json.read_request(path_values, body)
            self._admit(route.operation, caller, data.plane_of(route.operation, request))
            params = rest_json.validate_request(route, request)
            result = data.dispatch(
                self.registry, route.operation, params,
                account_id=self.config.account_id, region=caller.region,
            )
            return _Answer(HTTPStatus.OK, rest_json.serialize_output(result),
                           content_type=rest_json.CONTENT_TYPE, operation=operation)
        except ApcServiceException as error:
            return self._rest_json_error(error, operation)
        except _ConnectionResetError:
            raise
        except Exception as exc:
            # Name the type only: an exception's text could quote request data.
            logger.error("internal error in %s: %s", operation or "-", type(exc).__name__)
            return self._rest_json_error(
                InternalServerException(_INTERNAL_ERROR_MESSAGE), operation
            )

    @staticmethod
    def _rest_json_error(error: ApcServiceException, operation: str | None) -> _Answer:
        headers, payload = rest_json.serialize_error(error)
        return _Answer(error.status, payload, error.error_type, headers,
                       content_type=rest_json.CONTENT_TYPE, operation=operation)

    def _handle_sts(self, *, method: str, path: str, headers: Any, body: bytes) -> _Answer:
        """STS GetCallerIdentity (query protocol, XML); signed for ``sts``; no policy or
        rate limit (AWS needs no permission for it)."""
        request_id = str(uuid.uuid4())
        operation: str | None = None
        try:
            caller = self._verify(method, path, headers, body,
                                  required_signed_headers=REST_JSON_SIGNED_HEADERS,
                                  service=sts.SIGNING_NAME)
            operation = sts.parse_action(body)
            payload = sts.caller_identity_xml(
                account_id=self.config.account_id, access_key_id=caller.access_key_id,
                request_id=request_id,
            )
            answer = _Answer(HTTPStatus.OK, payload, content_type=sts.CONTENT_TYPE,
                             operation=operation)
        except ApcServiceException as error:
            answer = _Answer(error.status, sts.error_xml(error, request_id), error.error_type,
                             content_type=sts.CONTENT_TYPE, operation=operation)
        answer.request_id = request_id
        return answer

    def _handle(self, *, method: str, path: str, headers: Any, body: bytes) -> _Answer:
        config = self.config
        caller = self._verify(method, path, headers, body,
                              required_signed_headers=JSON_RPC_SIGNED_HEADERS)
        operation = self._resolve_operation(headers.get("X-Amz-Target"))
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != JSON_CONTENT_TYPE:
            raise SerializationException(
                f"Content-Type must be {JSON_CONTENT_TYPE} (got {content_type[:80] or 'none'!r})"
            )
        self._admit(operation, caller, CONTROL_PLANE)
        request = parse_json_object(body)
        try:
            result = self._dispatch(
                self.registry,
                operation,
                request,
                account_id=config.account_id,
                region=caller.region,
            )
            payload = json.dumps(result, separators=(",", ":")).encode()
        except ApcServiceException:
            raise
        except Exception as exc:
            # Name the type only: an exception's text could quote request data.
            logger.error("internal error in %s: %s", operation, type(exc).__name__)
            raise InternalServerException(_INTERNAL_ERROR_MESSAGE) from None
        return _Answer(HTTPStatus.OK, payload)

    def log_request(self, entry: RequestLogEntry) -> None:
        if self.request_log is not None:
            self.request_log.write(entry)

    def close(self) -> None:
        if self.request_log is not None:
            self.request_log.close()
        self.store.close()


# --- HTTP -----------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "apckx-emulator"
    sys_version = ""
    timeout = IDLE_CONNECTION_TIMEOUT
    # Buffer each answer and send it in one go (flushed after every request), and disable
    # Nagle: a status line and body sent apart would otherwise wait out delayed ACKs (40 ms).
    wbufsize = -1
    disable_nagle_algorithm = True
    server: _EmulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log (``--request-log``) is the record of requests."""

    _request_start: float | None = None

    def _peek_first_byte(self) -> bytes:
        reader = self.rfile
        peek = getattr(reader, "peek", None)  # a BufferedReader (rbufsize -1) has it
        return bytes(peek(1)) if peek is not None else b"?"

    def _raw_request_line(self) -> bytes:
        line = getattr(self, "raw_requestline", b"")
        return line if isinstance(line, bytes) else b""

    def handle_one_request(self) -> None:
        """Wait (idle timeout) for a request's first byte, then serve it under the absolute
        request deadline: the server cuts the connection once it passes."""
        try:
            first = self._peek_first_byte()
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        if not first:
            self.close_connection = True
            return
        self._request_start = time.time()
        self.server.arm_deadline(self.connection)
        try:
            super().handle_one_request()
        finally:
            self.server.disarm_deadline(self.connection)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed request lines and unknown methods: a JSON error, not stdlib's HTML."""
        if self.request_version == "HTTP/0.9":  # an unparsable request line: answer as 1.1
            self.request_version = self.protocol_version
        error = SerializationException(message or HTTPStatus(code).phrase)
        error.status = code
        self.close_connection = True
        request_id = str(uuid.uuid4())
        start = self._request_start or time.time()
        self.server.app.log_request(RequestLogEntry(
            request_id, "-", start, time.time(), code, error.error_type,
            path=_shown_path(self._raw_request_line()),
        ))
        self._send_answer(_error_answer(error), request_id)

    def handle_expect_100(self) -> bool:
        """Send ``100 Continue`` at once (the write buffer would otherwise hold it back)."""
        proceed = super().handle_expect_100()
        self.wfile.flush()
        return proceed

    def _send_answer(self, answer: _Answer, request_id: str) -> None:
        self.send_response(answer.status)
        self.send_header("x-amzn-RequestId", request_id)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.extra_headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)
        self.wfile.flush()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise _LengthRequired("Send the request body with a Content-Length, not chunked")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise SerializationException("Content-Length is not a valid number") from None
        limit = self.server.app.config.max_body_bytes
        if length > limit:
            self.close_connection = True  # the unread body would poison the connection
            raise _PayloadTooLarge(
                f"Request body is {length} bytes; the emulator accepts at most {limit}"
            )
        body = self.rfile.read(length)
        if len(body) < length:  # the client hung up mid-body
            self.close_connection = True
            raise SerializationException(
                f"Request body ended after {len(body)} of {length} bytes (Content-Length)"
            )
        return body

    def _reset_connection(self) -> None:
        """Abort with a TCP RST (SO_LINGER 0), answering nothing."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def do_POST(self) -> None:
        app = self.server.app
        request_id = str(uuid.uuid4())
        start = time.time()
        operation = (app.operation_from_target(self.headers.get("X-Amz-Target"))
                     or rest_json.operation_name(self.command, self.path) or "-")
        path = _shown_path(self._raw_request_line())
        if not self.server.enter_request():
            self.close_connection = True
            self._send_answer(
                _error_answer(ServiceUnavailableException("The emulator is shutting down")),
                request_id,
            )
            return
        try:
            try:
                # Read (drain) the body before anything can refuse the request, so the next
                # request on this keep-alive connection starts where it should.
                body = self._read_body()
                answer = app.handle(
                    method=self.command, path=self.path, headers=self.headers, body=body
                )
            except ApcServiceException as error:
                answer = _error_answer(error)
            except _ConnectionResetError:
                app.log_request(RequestLogEntry(
                    request_id, operation, start, time.time(), 0, "ConnectionReset", path=path
                ))
                self._reset_connection()
                return
            request_id = answer.request_id or request_id
            if app.config.latency_ms:
                time.sleep(app.config.latency_ms / 1000.0)
            # Logged before the answer goes out, so a client holding the answer finds the line.
            app.log_request(RequestLogEntry(
                request_id, answer.operation or operation, start, time.time(), answer.status,
                answer.error_type, path=path,
            ))
            self._send_answer(answer, request_id)
        finally:
            self.server.leave_request()

    def _refuse_method(self) -> None:
        request_id = str(uuid.uuid4())
        start = time.time()
        error = _MethodNotAllowed(
            f"{self.command} is not supported: the emulator answers POST / with X-Amz-Target"
        )
        try:
            self._read_body()  # drained, so the connection stays usable
        except ApcServiceException:
            self.close_connection = True  # too large or chunked: closed instead
        answer = _error_answer(error)
        answer.extra_headers["Allow"] = "POST"
        self.server.app.log_request(RequestLogEntry(
            request_id, "-", start, time.time(), error.status, error.error_type,
            path=_shown_path(self._raw_request_line()),
        ))
        self._send_answer(answer, request_id)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _refuse_method  # noqa: N815


class _EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # listen backlog: socketserver's 5 overflows with many clients

    def __init__(self, address: tuple[str, int], app: EmulatorApp, family: int) -> None:
        self.address_family = family
        self.app = app
        self._connections: set[socket.socket] = set()
        self._deadlines: dict[socket.socket, float] = {}
        self._accept_backoff = 0.0
        self._in_flight = 0
        self._stopping = False
        self._idle = threading.Condition()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A handler thread failed outside the request pipeline: log the type, not a traceback
        (a client that hung up mid-answer is routine and not logged)."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            logger.error("connection handler failed: %s", type(error).__name__)

    def get_request(self) -> tuple[socket.socket, Any]:
        """``accept``, backing off when descriptors (or buffers) run out: the listening socket
        stays readable then, and retrying at once would spin a core."""
        try:
            accepted: tuple[socket.socket, Any] = super().get_request()
        except OSError as exc:
            if exc.errno in _ACCEPT_BACKOFF_ERRNOS:
                if self._accept_backoff == 0.0:
                    logger.warning("accept failed (%s); backing off", errno.errorcode.get(
                        exc.errno or 0, "error"))
                self._accept_backoff = min(
                    _ACCEPT_BACKOFF_MAX, max(_ACCEPT_BACKOFF_FIRST, self._accept_backoff * 2))
                time.sleep(self._accept_backoff)
            raise
        self._accept_backoff = 0.0
        return accepted

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._idle:
            full = len(self._connections) >= self.app.config.max_connections
            if not full:
                self._connections.add(request)
        if full:
            # Answered without a thread: one non-blocking send, then closed.
            try:
                request.setblocking(False)
                request.send(_TOO_MANY_CONNECTIONS)
            except OSError:
                pass
            self.app.log_request(RequestLogEntry(
                str(uuid.uuid4()), "-", time.time(), time.time(), 503,
                "ServiceUnavailableException", path=None,
            ))
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def arm_deadline(self, connection: socket.socket) -> None:
        """Start a request's absolute deadline on ``connection``."""
        config = self.app.config
        limit = config.request_deadline + config.latency_ms / 1000.0
        with self._idle:
            self._deadlines[connection] = time.monotonic() + limit

    def disarm_deadline(self, connection: socket.socket) -> None:
        with self._idle:
            self._deadlines.pop(connection, None)

    def service_actions(self) -> None:
        """Between polls of the listening socket: cut connections past their deadline (the
        handler's blocked read or write then fails, and its thread ends)."""
        now = time.monotonic()
        with self._idle:
            overdue = [conn for conn, due in self._deadlines.items() if now >= due]
            for connection in overdue:
                del self._deadlines[connection]
        for connection in overdue:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def shutdown_request(self, request: Any) -> None:
        with self._idle:
            self._connections.discard(request)
            self._deadlines.pop(request, None)
        super().shutdown_request(request)

    def enter_request(self) -> bool:
        """Count a call in flight; False once the server is stopping (answer 503)."""
        with self._idle:
            if self._stopping:
                return False
            self._in_flight += 1
            return True

    def leave_request(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def close_connections(self, wait_seconds: float) -> None:
        """Refuse new calls, wake idle keep-alive handlers, wait for calls in flight."""
        with self._idle:
            self._stopping = True
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=wait_seconds)


# --- running it -----------------------------------------------------------------------------


class RunningEmulator:
    """A started emulator: ``url``, ``stop()``, and a context manager that stops it."""

    def __init__(self, server: _EmulatorHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self._stopped = False
        self._stop_lock = threading.Lock()
        host, port = server.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{self.port}"

    @property
    def config(self) -> EmulatorConfig:
        return self._server.app.config

    @property
    def registry(self) -> BackendRegistry:
        return self._server.app.registry

    def stop(self) -> None:
        """Stop serving, let calls in flight finish (up to 5 s), close state and log."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self._server.shutdown()
        self._thread.join()
        self._server.close_connections(wait_seconds=5.0)
        self._server.server_close()
        self._server.app.close()

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def open_store(state_path: Path | None) -> StateStore:
    return MemoryStore() if state_path is None else SqliteStore(state_path)


def start_emulator(config: EmulatorConfig | None = None) -> RunningEmulator:
    """Start an emulator in background threads of this process and return it, serving."""
    config = config or EmulatorConfig()
    config.check()
    store = open_store(config.state_path)
    app: EmulatorApp | None = None
    try:
        registry = BackendRegistry(
            store, key_quota=config.key_quota, alias_quota=config.alias_quota
        )
        app = EmulatorApp(config, registry, store)
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        server = _EmulatorHTTPServer((config.host, config.port), app, family)
    except OSError as exc:
        if app is not None:
            app.close()
        else:
            store.close()
        raise ConfigError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
        ) from None
    except BaseException:
        if app is not None:
            app.close()
        else:
            store.close()
        raise
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"apckx-emulator:{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return RunningEmulator(server, thread)
