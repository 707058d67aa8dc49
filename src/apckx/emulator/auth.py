"""Who may call the emulator: SigV4 verification with botocore's signer, and a policy file.

Verification replays the client's signing: it rebuilds an ``AWSRequest`` from the method,
path, the headers the client says it signed, and the body; computes the signature with
``botocore.auth.SigV4Auth`` at the request's own ``X-Amz-Date`` under the credential scope's
region and the service ``payment-cryptography``; and compares in constant time. Errors use
AWS's codes (``MissingAuthenticationTokenException``, ``IncompleteSignatureException``,
``InvalidSignatureException``, ``UnrecognizedClientException``, ``AccessDeniedException``).

The policy file is a small IAM-like allow/deny list of actions; see :class:`Policy`.
"""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials as BotocoreCredentials

from apckx.emulator.exceptions import (
    AccessDeniedException,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from apckx.errors import ConfigError

SERVICE_NAME = "payment-cryptography"
ALGORITHM = "AWS4-HMAC-SHA256"
# AWS refuses a request whose X-Amz-Date is more than 15 minutes off the server's clock.
MAX_CLOCK_SKEW = datetime.timedelta(minutes=15)
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
# The region part of every APC ARN (spec section 2: KeyArn pattern).
_REGION_PATTERN = re.compile(r"[a-z]{2}-[a-z]{1,16}-[0-9]+")
_HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_UNSIGNED_PAYLOADS = frozenset({"UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"})

#: Headers every request must have signed, whatever its protocol.
BASE_SIGNED_HEADERS: tuple[str, ...] = ("host", "x-amz-date")
#: AWS JSON 1.0 (the control plane): the target names the operation and the content type
#: the protocol, so a signature that leaves either out could be replayed as another call
#: (a capture of GetKey signed over host and date only, resent as DeleteKey).
JSON_RPC_SIGNED_HEADERS: tuple[str, ...] = (*BASE_SIGNED_HEADERS, "x-amz-target",
                                            "content-type")
#: REST-JSON (the data plane): the operation is in the signed path, so no target; the body's
#: content type must still be signed.
REST_JSON_SIGNED_HEADERS: tuple[str, ...] = (*BASE_SIGNED_HEADERS, "content-type")


@dataclass(frozen=True)
class EmulatorCredentials:
    """The one set of credentials the emulator accepts. ``repr`` never shows the secret."""

    access_key_id: str = "test"
    secret_access_key: str = field(default="test", repr=False)
    # When set, requests must carry exactly this X-Amz-Security-Token; when None, any
    # token is accepted as long as it is signed.
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Caller:
    """What a verified signature tells us about the caller."""

    access_key_id: str
    region: str


@dataclass(frozen=True)
class _Authorization:
    access_key_id: str
    scope_date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature_hex: str


def _parse_authorization(value: str) -> _Authorization:
    """Split ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(
            f"Unsupported Authorization algorithm {algorithm[:40]!r}; expected {ALGORITHM}"
        )
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, part = item.strip().partition("=")
        if not sep or name in parts:
            raise IncompleteSignatureException(
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                "parameters, each given once as name=value"
            )
        parts[name] = part
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if name not in parts]
    if missing:
        raise IncompleteSignatureException(
            f"Authorization header requires '{missing[0]}' parameter"
        )
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or not all(scope):
        raise IncompleteSignatureException(
            "Credential must have the form <access key id>/<date>/<region>/<service>/aws4_request"
        )
    access_key_id, scope_date, region, service, terminator = scope
    if terminator != "aws4_request":
        raise IncompleteSignatureException("Credential scope must end with 'aws4_request'")
    signed_headers = tuple(parts["SignedHeaders"].split(";"))
    if not all(signed_headers) or list(signed_headers) != sorted(
        {name.lower() for name in signed_headers}
    ):
        raise IncompleteSignatureException(
            "SignedHeaders must list lower-case header names, sorted and separated by ';'"
        )
    return _Authorization(
        access_key_id=access_key_id,
        scope_date=scope_date,
        region=region,
        service=service,
        signed_headers=signed_headers,
        signature_hex=parts["Signature"],
    )


class _ReplaySigV4Auth(SigV4Auth):  # type: ignore[misc]  # botocore is untyped
    """botocore's SigV4 signer, told exactly which headers the client signed.

    The rebuilt request carries only the signed headers, so they are the headers to sign.
    """

    def __init__(self, credentials: BotocoreCredentials, region: str,
                 service: str = SERVICE_NAME) -> None:
        super().__init__(credentials, service, region)

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return request.headers


def _header_lists(headers: Any) -> dict[str, list[str]]:
    """Lower-case name -> every value, in order (``http.server`` keeps repeated headers)."""
    lists: dict[str, list[str]] = {}
    for name, value in headers.items():
        lists.setdefault(str(name).lower(), []).append(str(value))
    return lists


def verify_request(
    *,
    method: str,
    path: str,
    headers: Any,
    body: bytes,
    credentials: EmulatorCredentials,
    now: datetime.datetime,
    required_signed_headers: Sequence[str] = BASE_SIGNED_HEADERS,
    service: str = SERVICE_NAME,
) -> Caller:
    """Check a request's SigV4 signature; return the caller, or raise an AWS auth error.

    ``service`` is the signing name the credential scope must carry: ``payment-cryptography``
    for both APC planes, ``sts`` for the STS calls the emulator answers.

    ``headers`` is the request's header mapping (``http.server`` gives an
    ``email.message.Message``, which keeps repeated headers); ``now`` is timezone-aware UTC.
    ``required_signed_headers`` (lower case, the protocol's choice:
    :data:`JSON_RPC_SIGNED_HEADERS`, :data:`REST_JSON_SIGNED_HEADERS`) must be in
    SignedHeaders whenever the request carries them; ``host`` and ``x-amz-date`` always.
    """
    header_lists = _header_lists(headers)

    def first_value(name: str) -> str | None:
        values = header_lists.get(name)
        return values[0] if values else None

    authorization = first_value("authorization")
    if authorization is None:
        raise MissingAuthenticationTokenException("Missing Authentication Token")
    auth = _parse_authorization(authorization)

    if not hmac.compare_digest(auth.access_key_id.encode(), credentials.access_key_id.encode()):
        raise UnrecognizedClientException("The security token included in the request is invalid.")
    if auth.service != service:
        raise InvalidSignatureException(
            f"Credential should be scoped to correct service: '{service}'."
        )
    if not _REGION_PATTERN.fullmatch(auth.region):
        raise InvalidSignatureException(
            f"Credential should be scoped to a valid region, not '{auth.region[:40]}'."
        )
    for required in BASE_SIGNED_HEADERS:
        if required not in auth.signed_headers:
            raise IncompleteSignatureException(
                f"SignedHeaders must include '{required}' (the request is signed without it)"
            )
    # The protocol's headers, when the request carries them (an absent target or content
    # type is the protocol's own error, answered after the signature).
    for required in required_signed_headers:
        if required in header_lists and required not in auth.signed_headers:
            raise IncompleteSignatureException(
                f"SignedHeaders must include '{required}': the request carries it unsigned, "
                f"so a captured signature could be replayed with another value"
            )
    for name in auth.signed_headers:
        if name not in header_lists:
            raise IncompleteSignatureException(
                f"SignedHeaders names '{name[:60]}', which the request does not carry"
            )

    amz_date = first_value("x-amz-date") or ""
    try:
        signed_at = datetime.datetime.strptime(amz_date, _AMZ_DATE_FORMAT).replace(
            tzinfo=datetime.UTC
        )
    except ValueError:
        raise IncompleteSignatureException(
            "X-Amz-Date must be a basic ISO 8601 UTC timestamp such as 20240101T120000Z"
        ) from None
    if auth.scope_date != amz_date[:8]:
        raise InvalidSignatureException(
            f"Date in Credential scope does not match YYYYMMDD from X-Amz-Date: "
            f"{auth.scope_date[:16]} != {amz_date[:8]}"
        )
    if abs(now - signed_at) > MAX_CLOCK_SKEW:
        earliest = (now - MAX_CLOCK_SKEW).strftime(_AMZ_DATE_FORMAT)
        latest = (now + MAX_CLOCK_SKEW).strftime(_AMZ_DATE_FORMAT)
        raise InvalidSignatureException(
            f"Signature expired: {amz_date} is outside the allowed window "
            f"{earliest} .. {latest} (now {now.strftime(_AMZ_DATE_FORMAT)}, 15 min skew)"
        )

    token = first_value("x-amz-security-token")
    if token is not None:
        if "x-amz-security-token" not in auth.signed_headers:
            raise IncompleteSignatureException("X-Amz-Security-Token must be signed")
        if credentials.session_token is not None and not hmac.compare_digest(
            token.encode(), credentials.session_token.encode()
        ):
            raise UnrecognizedClientException(
                "The security token included in the request is invalid."
            )
    elif credentials.session_token is not None:
        raise UnrecognizedClientException(
            "The request must carry the configured session token (X-Amz-Security-Token)."
        )

    content_sha256 = first_value("x-amz-content-sha256")
    body_sha256_hex = hashlib.sha256(body).hexdigest()
    if content_sha256 is not None and (
        content_sha256 in _UNSIGNED_PAYLOADS
        or not hmac.compare_digest(content_sha256.encode(), body_sha256_hex.encode())
    ):
        raise InvalidSignatureException(
            "X-Amz-Content-SHA256 does not match the SHA-256 of the request body"
        )

    # Only the URL's path and query reach the canonical request; the host is the signed
    # Host header's value, taken as sent.
    request = AWSRequest(method=method, url=f"http://emulator{path}", data=body)
    for name in auth.signed_headers:
        for value in header_lists[name]:
            request.headers[name] = value
    request.context["timestamp"] = amz_date
    signer = _ReplaySigV4Auth(
        BotocoreCredentials(
            credentials.access_key_id, credentials.secret_access_key, credentials.session_token
        ),
        auth.region,
        service,
    )
    canonical_request = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical_request)
    expected_hex = str(signer.signature(string_to_sign, request))
    if not _HEX_SIGNATURE.fullmatch(auth.signature_hex) or not hmac.compare_digest(
        expected_hex.encode(), auth.signature_hex.encode()
    ):
        raise InvalidSignatureException(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
    return Caller(access_key_id=auth.access_key_id, region=auth.region)


# --- policy -----------------------------------------------------------------------------

ACTION_PREFIX = "payment-cryptography:"


def _matches(patterns: Sequence[str], operation: str) -> bool:
    action = (ACTION_PREFIX + operation).lower()
    return any(fnmatch.fnmatchcase(action, pattern.lower()) for pattern in patterns)


@dataclass(frozen=True)
class Policy:
    """Which actions callers may use: ``{"Allow": [patterns], "Deny": [patterns]}``.

    Patterns are IAM-style action names with shell wildcards (``fnmatch``), matched without
    regard to case: ``"payment-cryptography:Get*"``, ``"payment-cryptography:*"``, ``"*"``.
    An action is allowed when it matches an ``Allow`` pattern and no ``Deny`` pattern; an
    explicit deny always wins, as in IAM. Leaving ``Allow`` out allows everything not denied.
    """

    allow: tuple[str, ...] = ("*",)
    deny: tuple[str, ...] = ()

    def is_allowed(self, operation: str) -> bool:
        return not _matches(self.deny, operation) and _matches(self.allow, operation)

    def check(self, operation: str, *, account_id: str, access_key_id: str) -> None:
        """Raise ``AccessDeniedException`` naming the action if the policy refuses it."""
        if not self.is_allowed(operation):
            raise AccessDeniedException(
                f"User: arn:aws:iam::{account_id}:user/{access_key_id} is not authorized to "
                f"perform: {ACTION_PREFIX}{operation} because the emulator's policy "
                f"{'denies' if _matches(self.deny, operation) else 'does not allow'} it"
            )

    @classmethod
    def from_document(cls, document: object, *, source: str = "policy") -> Policy:
        """Build a policy from parsed JSON; :class:`ConfigError` says what is wrong."""
        if not isinstance(document, dict):
            raise ConfigError(f'{source}: must be a JSON object like {{"Allow": [...]}}')
        unknown = sorted(set(document) - {"Allow", "Deny"})
        if unknown:
            raise ConfigError(f"{source}: unknown member {unknown[0]!r}; use 'Allow' and 'Deny'")
        lists: dict[str, tuple[str, ...]] = {}
        for member in ("Allow", "Deny"):
            value = document.get(member, ["*"] if member == "Allow" else [])
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                raise ConfigError(f"{source}: '{member}' must be a list of action patterns")
            for pattern in value:
                if pattern != "*" and not pattern.lower().startswith(ACTION_PREFIX):
                    raise ConfigError(
                        f"{source}: action pattern {pattern!r} must start with "
                        f"'{ACTION_PREFIX}' (or be '*')"
                    )
            lists[member] = tuple(value)
        return cls(allow=lists["Allow"], deny=lists["Deny"])

    @classmethod
    def from_file(cls, path: Path | str) -> Policy:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read policy file {path}: {exc.strerror}") from None
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"policy file {path} is not valid JSON: {exc}") from None
        return cls.from_document(document, source=f"policy file {path}")
