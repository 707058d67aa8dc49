"""Typed wrappers over the APC control plane (``payment-cryptography``).

Every botocore error becomes :class:`apckx.errors.ServiceError` (AWS error code kept in
``.code``); connection and credential problems become :class:`ConfigError`. Every call is
timed and recorded in :attr:`ApcService.calls` (operation, start, duration, outcome): the
audit record and the round-trip tests read it. Parameters are never logged: ImportKey carries
only wrapped key blocks, but a wrapper that logs nothing cannot leak anything.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from apckx.errors import ConfigError, InputError, ServiceError

_log = logging.getLogger("apckx.service")

Key = dict[str, Any]
"""APC's ``Key`` structure as boto3 returns it (KeyArn, KeyAttributes, KeyState, ...)."""

CEREMONY_TAG = "apckx:ceremony"


@dataclass(frozen=True)
class ApiCall:
    """One APC call as made: no parameters, so nothing secret."""

    operation: str
    started: float  # time.time()
    duration_ms: float
    error_code: str | None = None
    thread: str = ""

    def to_record(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "started": round(self.started, 3),
            "duration_ms": round(self.duration_ms, 1),
            "error_code": self.error_code,
        }


def tags_to_list(tags: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in (tags or {}).items()]


# -- keeping wrapped key blocks out of --debug ------------------------------------------------
# botocore's debug log (``--debug``, like ``aws --debug``) carries request and response bodies.
# A wrapped key block is not cleartext, but it is key material in transit (it is written 0600
# on export): the body members that hold one are redacted at the loggers that log bodies,
# whatever handler (stderr, a file, the root logger) the records then go to.
_BLOCK_MEMBER_RE = re.compile(
    r"""(["'](?:WrappedKeyBlock|KeyMaterial|WrappedKeyMaterial)["']\s*:\s*["'])([^"'\\]+)"""
)
# A TR-31 header (version, 4-digit length, usage, algorithm, mode, version, exportability,
# block count, reserved) followed by hex: any key block anywhere else in a message.
_BLOCK_RE = re.compile(
    r"\b[ABCD][0-9]{4}[0-9A-Z]{2}[A-Z][0-9A-Z]{3}[ENS][0-9]{2}[0-9A-Z]{2}[0-9A-Za-z]*?[0-9A-F]{32,}\b"
)
BODY_LOGGERS = (
    "botocore.endpoint",
    "botocore.parsers",
    "botocore.awsrequest",
    "botocore.hooks",
    "botocore.client",
    "botocore.retryhandler",
)


def redact_key_blocks(text: str) -> str:
    """``text`` with every wrapped key block replaced by its length."""
    text = _BLOCK_MEMBER_RE.sub(lambda m: f"{m.group(1)}<redacted: {len(m.group(2))} chars>", text)
    return _BLOCK_RE.sub(lambda m: f"<redacted key block: {len(m.group(0))} chars>", text)


class KeyBlockRedactor(logging.Filter):
    """A logging filter that rewrites each record's message with :func:`redact_key_blocks`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return True
        redacted = redact_key_blocks(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACTOR = KeyBlockRedactor()


def install_key_block_redaction() -> None:
    """Attach the redactor to botocore's body-logging loggers (idempotent)."""
    for name in BODY_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


class ApcService:
    """The APC operations apckx uses, one method each, named after botocore's."""

    def __init__(self, client: Any) -> None:
        install_key_block_redaction()
        self.client = client
        self.calls: list[ApiCall] = []
        self._lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------------------
    def _call(self, operation: str, method: str, **params: Any) -> dict[str, Any]:
        import botocore.exceptions

        started = time.time()
        t0 = time.perf_counter()
        error_code: str | None = None
        try:
            response: dict[str, Any] = getattr(self.client, method)(**params)
            return response
        except botocore.exceptions.ClientError as exc:
            err = exc.response.get("Error", {})
            error_code = clean_server_text(str(err.get("Code") or "Unknown"), limit=80)
            _raise_if_sign_in_failed(exc, self.client)
            message = clean_server_text(str(err.get("Message") or err.get("ResourceId") or ""))
            raise ServiceError(operation, error_code, message) from None
        except botocore.exceptions.ParamValidationError as exc:
            error_code = "ParamValidation"
            raise InputError(f"{operation}: invalid parameters: {_one_line(exc)}") from None
        except botocore.exceptions.NoCredentialsError:
            error_code = "NoCredentials"
            raise ConfigError(
                "no AWS credentials: configure a profile (--profile) or the AWS_* variables"
            ) from None
        except (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ReadTimeoutError,
            botocore.exceptions.ConnectTimeoutError,
        ) as exc:
            error_code = "Connection"
            raise ServiceError(operation, "ConnectionError", _one_line(exc)) from None
        except botocore.exceptions.BotoCoreError as exc:
            error_code = type(exc).__name__
            _raise_if_sign_in_failed(exc, self.client)
            raise ServiceError(operation, error_code, _one_line(exc)) from None
        finally:
            duration_ms = (time.perf_counter() - t0) * 1000.0
            call = ApiCall(
                operation, started, duration_ms, error_code, threading.current_thread().name
            )
            with self._lock:
                self.calls.append(call)
            _log.debug("%s %s in %.0f ms", operation, error_code or "ok", duration_ms)

    def _pages(
        self,
        operation: str,
        method: str,
        items: str,
        *,
        required: str | None = None,
        **params: Any,
    ) -> Iterator[dict[str, Any]]:
        """Every entry of every page; ``required``: a text member each entry must have."""
        token: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            page_params = dict(params)
            if token:
                page_params["NextToken"] = token
            page = self._call(operation, method, **page_params)
            entries = page.get(items, [])
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise _malformed(operation, f"{items} is not a list of objects")
            if required is not None:
                for entry in entries:
                    _text_member(entry, operation, required, where=f"{items}[].")
            yield from entries
            token = page.get("NextToken")
            if not token:
                return
            if token in seen:
                raise _malformed(operation, "the same NextToken came back twice (paging loop)")
            seen.add(token)
        raise _malformed(operation, f"more than {MAX_PAGES} pages: stopped paging")

    # -- keys -----------------------------------------------------------------------------
    def create_key(
        self,
        *,
        key_attributes: Mapping[str, Any],
        exportable: bool,
        enabled: bool = True,
        key_check_value_algorithm: str | None = None,
        derive_key_usage: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Key:
        params: dict[str, Any] = {
            "KeyAttributes": dict(key_attributes),
            "Exportable": exportable,
            "Enabled": enabled,
        }
        if key_check_value_algorithm:
            params["KeyCheckValueAlgorithm"] = key_check_value_algorithm
        if derive_key_usage:
            params["DeriveKeyUsage"] = derive_key_usage
        if tags:
            params["Tags"] = tags_to_list(tags)
        return _key(self._call("CreateKey", "create_key", **params), "CreateKey")

    def get_key(self, key_identifier: str) -> Key:
        return _key(self._call("GetKey", "get_key", KeyIdentifier=key_identifier), "GetKey")

    def list_keys(self, *, key_state: str | None = None, page_size: int = 100) -> list[Key]:
        """Every key summary, all pages."""
        params: dict[str, Any] = {"MaxResults": page_size}
        if key_state:
            params["KeyState"] = key_state
        return list(self._pages("ListKeys", "list_keys", "Keys", required="KeyArn", **params))

    def delete_key(self, key_identifier: str, *, delete_key_in_days: int = 7) -> Key:
        response = self._call(
            "DeleteKey",
            "delete_key",
            KeyIdentifier=key_identifier,
            DeleteKeyInDays=delete_key_in_days,
        )
        return _key(response, "DeleteKey")

    def restore_key(self, key_identifier: str) -> Key:
        response = self._call("RestoreKey", "restore_key", KeyIdentifier=key_identifier)
        return _key(response, "RestoreKey")

    def start_key_usage(self, key_identifier: str) -> Key:
        response = self._call("StartKeyUsage", "start_key_usage", KeyIdentifier=key_identifier)
        return _key(response, "StartKeyUsage")

    def stop_key_usage(self, key_identifier: str) -> Key:
        response = self._call("StopKeyUsage", "stop_key_usage", KeyIdentifier=key_identifier)
        return _key(response, "StopKeyUsage")

    def get_public_key_certificate(self, key_identifier: str) -> tuple[str, str]:
        """(KeyCertificate, KeyCertificateChain): both base64 of PEM, as APC sends them."""
        response = self._call(
            "GetPublicKeyCertificate", "get_public_key_certificate", KeyIdentifier=key_identifier
        )
        return (
            _text_member(response, "GetPublicKeyCertificate", "KeyCertificate"),
            _text_member(response, "GetPublicKeyCertificate", "KeyCertificateChain"),
        )

    def import_key(
        self,
        *,
        key_material: Mapping[str, Any],
        key_check_value_algorithm: str | None = None,
        enabled: bool = True,
        tags: Mapping[str, str] | None = None,
    ) -> Key:
        """ImportKey; ``key_material`` is the union: ``{"DiffieHellmanTr31KeyBlock": {...}}``."""
        params: dict[str, Any] = {"KeyMaterial": dict(key_material), "Enabled": enabled}
        if key_check_value_algorithm:
            params["KeyCheckValueAlgorithm"] = key_check_value_algorithm
        if tags:
            params["Tags"] = tags_to_list(tags)
        return _key(self._call("ImportKey", "import_key", **params), "ImportKey")

    def export_key(
        self,
        *,
        export_key_identifier: str,
        key_material: Mapping[str, Any],
        export_attributes: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """ExportKey; returns ``WrappedKey`` (KeyMaterial, KeyCheckValue, ...)."""
        params: dict[str, Any] = {
            "ExportKeyIdentifier": export_key_identifier,
            "KeyMaterial": dict(key_material),
        }
        if export_attributes:
            params["ExportAttributes"] = dict(export_attributes)
        wrapped = _object_member(self._call("ExportKey", "export_key", **params), "ExportKey",
                                 "WrappedKey")  # fmt: skip
        _text_member(wrapped, "ExportKey", "KeyMaterial", where="WrappedKey.")
        return wrapped

    # -- aliases --------------------------------------------------------------------------
    def create_alias(self, alias_name: str, key_arn: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"AliasName": alias_name}
        if key_arn:
            params["KeyArn"] = key_arn
        return _alias(self._call("CreateAlias", "create_alias", **params), "CreateAlias")

    def get_alias(self, alias_name: str) -> dict[str, Any]:
        return _alias(self._call("GetAlias", "get_alias", AliasName=alias_name), "GetAlias")

    def update_alias(self, alias_name: str, key_arn: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"AliasName": alias_name}
        if key_arn:
            params["KeyArn"] = key_arn
        return _alias(self._call("UpdateAlias", "update_alias", **params), "UpdateAlias")

    def delete_alias(self, alias_name: str) -> None:
        self._call("DeleteAlias", "delete_alias", AliasName=alias_name)

    def list_aliases(
        self, *, key_arn: str | None = None, page_size: int = 100
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"MaxResults": page_size}
        if key_arn:
            params["KeyArn"] = key_arn
        return list(
            self._pages("ListAliases", "list_aliases", "Aliases", required="AliasName", **params)
        )

    def set_alias(self, alias_name: str, key_arn: str, *, probably_exists: bool = False) -> bool:
        """Point ``alias_name`` at ``key_arn``: one call in the expected case.

        CreateAlias carrying the KeyArn, and UpdateAlias on ConflictException (it exists);
        with ``probably_exists`` the other way round (UpdateAlias, then CreateAlias on
        ResourceNotFoundException). Returns True when the alias was created.
        """
        if probably_exists:
            try:
                self.update_alias(alias_name, key_arn)
                return False
            except ServiceError as exc:
                if exc.code != "ResourceNotFoundException":
                    raise
        try:
            self.create_alias(alias_name, key_arn)
            return True
        except ServiceError as exc:
            if exc.code != "ConflictException":
                raise
        self.update_alias(alias_name, key_arn)
        return False

    # -- tags -----------------------------------------------------------------------------
    def tag_resource(self, resource_arn: str, tags: Mapping[str, str]) -> None:
        self._call("TagResource", "tag_resource", ResourceArn=resource_arn, Tags=tags_to_list(tags))

    def untag_resource(self, resource_arn: str, tag_keys: Sequence[str]) -> None:
        self._call(
            "UntagResource", "untag_resource", ResourceArn=resource_arn, TagKeys=list(tag_keys)
        )

    def list_tags_for_resource(self, resource_arn: str) -> dict[str, str]:
        """All tags of a key, all pages, as a dict."""
        return {
            str(tag.get("Key", "")): str(tag.get("Value", ""))
            for tag in self._pages(
                "ListTagsForResource",
                "list_tags_for_resource",
                "Tags",
                required="Key",
                ResourceArn=resource_arn,
            )
        }

    # -- helpers --------------------------------------------------------------------------
    def find_key(self, key_identifier: str) -> Key | None:
        """GetKey, or ``None`` when the key or alias does not exist (or has no key)."""
        try:
            return self.get_key(key_identifier)
        except ServiceError as exc:
            if exc.code == "ResourceNotFoundException":
                return None
            raise

    def calls_since(self, index: int) -> list[ApiCall]:
        with self._lock:
            return list(self.calls[index:])


def _one_line(exc: BaseException) -> str:
    text = clean_server_text(str(exc))
    return text or type(exc).__name__


def _raise_if_sign_in_failed(exc: BaseException, client: Any) -> None:
    """A call that failed refreshing its credentials (SSO expired mid-run, ...) is a
    ConfigError naming the profile and what to do, not an APC error (service/client.py)."""
    from apckx.service.client import describe_call_credential_error

    message = describe_call_credential_error(exc, client)
    if message is not None:
        raise ConfigError(message) from None


# -- answers we do not trust --------------------------------------------------------------------
MAX_PAGES = 1000
"""List calls stop here (100 000 entries at the page size apckx asks for)."""
_MAX_TEXT = 300
_ALIAS_RE = re.compile(r"alias/[a-zA-Z0-9/_-]{1,250}")
_ARN_RE = re.compile(r"arn:[a-z0-9-]+:payment-cryptography:[a-z0-9-]*:[0-9]*:key/[A-Za-z0-9]+")


def clean_server_text(text: str, *, limit: int = _MAX_TEXT) -> str:
    """Server-supplied text made safe to print: its first line, without control or format
    characters (no terminal escapes, no bidi overrides), at most ``limit`` characters."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    cleaned = "".join(ch if ch == " " or ch.isprintable() else "?" for ch in first)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def _malformed(operation: str, detail: str) -> ServiceError:
    return ServiceError(operation, "MalformedResponse", f"APC's answer {detail}; nothing more "
                        "was done with it (check --endpoint-url)")  # fmt: skip


def _object_member(
    response: Mapping[str, Any], operation: str, name: str, *, where: str = ""
) -> dict[str, Any]:
    value = response.get(name)
    if not isinstance(value, dict):
        raise _malformed(operation, f"has no {where}{name}")
    return value


def _text_member(response: Mapping[str, Any], operation: str, name: str, *, where: str = "") -> str:
    value = response.get(name)
    if not isinstance(value, str) or not value:
        raise _malformed(operation, f"has no {where}{name}")
    return value


def _key(response: Mapping[str, Any], operation: str) -> Key:
    """The ``Key`` member, with what apckx reads from it: an ARN that looks like one, and
    KeyAttributes naming usage, class and algorithm."""
    key = _object_member(response, operation, "Key")
    arn = key.get("KeyArn")
    if not isinstance(arn, str) or not _ARN_RE.fullmatch(arn):
        raise _malformed(operation, "has no Key.KeyArn in the form arn:...:key/ID")
    attributes = _object_member(key, operation, "KeyAttributes", where="Key.")
    for name in ("KeyUsage", "KeyClass", "KeyAlgorithm"):
        _text_member(attributes, operation, name, where="Key.KeyAttributes.")
    return key


def _alias(response: Mapping[str, Any], operation: str) -> dict[str, Any]:
    alias = _object_member(response, operation, "Alias")
    if not _ALIAS_RE.fullmatch(_text_member(alias, operation, "AliasName", where="Alias.")):
        raise _malformed(operation, "has an Alias.AliasName that is not alias/NAME")
    arn = alias.get("KeyArn")
    if arn is not None and not (isinstance(arn, str) and _ARN_RE.fullmatch(arn)):
        raise _malformed(operation, "has an Alias.KeyArn that is not a key ARN")
    return alias
