"""Request bodies as JSON objects, for both JSON protocols (AWS JSON 1.0 and rest-json).

A body that is not JSON, not an object, or nested deeper than any AWS request is a 400
``SerializationException``, never a 500 (a deeply nested body used to reach the recursion
limit of the parser or of the model walker).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from apckx.emulator.exceptions import SerializationException

#: Deeper JSON than this is refused: AWS request bodies are a few levels deep.
MAX_JSON_DEPTH = 32


def json_depth(value: object) -> int:
    """How deeply a parsed JSON value nests (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Sequence[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_json_object(body: bytes) -> dict[str, Any]:
    """``body`` as a JSON object (an empty body is ``{}``), or ``SerializationException``."""
    try:
        request = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise SerializationException("Request body is not valid JSON") from None
    except RecursionError:
        raise SerializationException(
            "Request body nests JSON too deeply; AWS request bodies are a few levels deep"
        ) from None
    if not isinstance(request, dict):
        raise SerializationException("Request body must be a JSON object")
    if json_depth(request) > MAX_JSON_DEPTH:
        raise SerializationException(
            f"Request body nests JSON more than {MAX_JSON_DEPTH} levels deep; AWS request "
            "bodies are a few levels deep"
        )
    return request
