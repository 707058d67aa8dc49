"""The data plane's wire protocol: AWS rest-json, routed and checked from botocore's model.

``payment-cryptography-data`` is rest-json: every operation is ``POST <requestUri>`` with
path parameters (``/keys/{KeyIdentifier}/encrypt``) and a JSON body; answers are plain
JSON; errors carry ``x-amzn-ErrorType`` and a JSON body with the error shape's members. This
module is protocol only: the router is built from the model's ``http.method`` and
``requestUri`` (no path is typed here), requests become the operation's input dict
(URL-decoded path parameters merged into the body, validated and pruned against the data
plane's input shape), and outputs and errors are serialized. The operations themselves live
in :mod:`apckx.emulator.data`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from apckx.emulator.exceptions import ApcServiceException
from apckx.emulator.json_body import parse_json_object
from apckx.emulator.validation import data_service_model, prune_shape, validate_shape

CONTENT_TYPE = "application/json"
ERROR_TYPE_HEADER = "x-amzn-ErrorType"
_LABEL = re.compile(r"\{([A-Za-z0-9_]+)(\+?)\}")


@dataclass(frozen=True)
class Route:
    """One operation's ``http`` trait: method, compiled ``requestUri``, URI members."""

    operation: str
    method: str
    pattern: re.Pattern[str]
    #: regex group (the template label) -> input member name
    uri_members: tuple[tuple[str, str], ...]


def _compile_uri(template: str) -> re.Pattern[str]:
    """``/keys/{KeyIdentifier}/encrypt`` -> ``/keys/(?P<KeyIdentifier>[^/]+)/encrypt``;
    a greedy label (``{Key+}``) may span slashes."""
    parts: list[str] = []
    position = 0
    for match in _LABEL.finditer(template):
        parts.append(re.escape(template[position:match.start()]))
        body = ".+" if match.group(2) else "[^/]+"
        parts.append(f"(?P<{match.group(1)}>{body})")
        position = match.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts))


@functools.lru_cache(maxsize=1)
def routes() -> tuple[Route, ...]:
    """Every data-plane operation's route, from botocore's model (built once)."""
    model = data_service_model()
    built: list[Route] = []
    for name in model.operation_names:
        operation = model.operation_model(name)
        http = operation.http
        uri_members: list[tuple[str, str]] = []
        input_shape = operation.input_shape
        if input_shape is not None:
            for member_name, member in input_shape.members.items():
                if member.serialization.get("location") == "uri":
                    label = member.serialization.get("name", member_name)
                    uri_members.append((label, member_name))
        built.append(Route(
            operation=name,
            method=str(http.get("method", "POST")).upper(),
            pattern=_compile_uri(str(http["requestUri"]).split("?")[0]),
            uri_members=tuple(uri_members),
        ))
    return tuple(built)


def match_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route a request's method and path (query string ignored) select, and its
    URL-decoded path parameters by member name; None if no operation has this method and
    path (every data-plane operation is a POST; the server refuses other methods first).
    """
    matched = _match_path(method.upper(), path.split("?", 1)[0])
    return None if matched is None else (matched[0], dict(matched[1]))


@functools.lru_cache(maxsize=4096)
def _match_path(method: str, raw_path: str
                ) -> tuple[Route, tuple[tuple[str, str], ...]] | None:
    # Cached: a client sends the same few paths (its keys' ARNs) over and over.
    for route in routes():
        if route.method != method:
            continue
        found = route.pattern.fullmatch(raw_path)
        if found is None:
            continue
        return route, tuple((member, unquote(found.group(label)))
                            for label, member in route.uri_members)
    return None


def operation_name(method: str, path: str) -> str | None:
    """The data-plane operation a request path names (for the request log), or None."""
    matched = match_route(method, path)
    return None if matched is None else matched[0].operation


def read_request(path_values: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The JSON body (``SerializationException`` if it is not a JSON object) with the path
    parameters merged in (the URI wins over a body member of the same name); not validated."""
    request = parse_json_object(body)
    request.update(path_values)
    return request


def validate_request(route: Route, request: Mapping[str, Any]) -> dict[str, Any]:
    """The operation's input: ``request`` validated against the data plane's input shape
    (one ``ValidationException`` listing every problem) and pruned to the model's members."""
    input_shape = data_service_model().operation_model(route.operation).input_shape
    validate_shape(input_shape, request)
    return prune_shape(input_shape, request)


def parse_request(route: Route, path_values: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """:func:`read_request` then :func:`validate_request`."""
    return validate_request(route, read_request(path_values, body))


def serialize_output(result: Mapping[str, Any]) -> bytes:
    """An operation's output as the JSON body (every output member is a body member)."""
    return json.dumps(result, separators=(",", ":")).encode()


@functools.lru_cache(maxsize=32)
def _message_member(error_type: str) -> str:
    """The member the data model's error shape names its message with (``message`` for
    ValidationException, ``Message`` for the others); ``message`` for unmodeled errors."""
    shapes = data_service_model().shape_names
    if error_type not in shapes:
        return "message"
    members = data_service_model().shape_for(error_type).members
    return "Message" if "Message" in members else "message"


def serialize_error(error: ApcServiceException) -> tuple[dict[str, str], bytes]:
    """Headers and body of a rest-json error: ``x-amzn-ErrorType`` names the error (botocore
    reads it first), the body repeats it as ``__type`` and carries the message under the
    model's member name plus the modeled extras (``Reason``, ``ResourceId``), which botocore
    parses into the exception's response."""
    body: dict[str, str] = {"__type": error.error_type,
                            _message_member(error.error_type): error.message, **error.extra}
    return {ERROR_TYPE_HEADER: error.error_type}, json.dumps(body, separators=(",", ":")).encode()
