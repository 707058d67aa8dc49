"""Server-side input validation against the botocore service model (spec sections 1 and 9).

botocore validates only required members, types, ``min`` and union cardinality on the client
side; a real service also enforces ``max``, ``pattern`` and ``enum``. This module walks the
botocore ``Shape`` objects generically (no retyped model) and reports every violation in one
``ValidationException``, worded like AWS's ("N validation errors detected: ...").

Choices (documented in ``docs/EMULATOR.md``):

* Unknown members are ignored, as AWS JSON services do, so newer clients keep working.
* A JSON ``null`` counts as an absent member.
* Values of shapes marked ``sensitive`` in the model, and long values, are never echoed.
* Patterns are the model's with the outer anchors restored and matched with ``fullmatch``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from apckx.emulator.exceptions import UnknownOperationException, ValidationException

SERVICE_NAME = "payment-cryptography"
API_VERSION = "2021-09-14"
DATA_SERVICE_NAME = "payment-cryptography-data"
DATA_API_VERSION = "2022-02-03"
_ECHO_LIMIT = 128


@functools.lru_cache(maxsize=2)
def _load_service_model(name: str, api_version: str) -> Any:
    import botocore.loaders
    import botocore.model

    loader = botocore.loaders.create_loader()
    model_data = loader.load_service_model(name, "service-2", api_version)
    return botocore.model.ServiceModel(model_data, service_name=name)


def service_model() -> Any:
    """The control plane's botocore ``ServiceModel`` shipped with botocore, loaded once."""
    return _load_service_model(SERVICE_NAME, API_VERSION)


def data_service_model() -> Any:
    """The data plane's (``payment-cryptography-data``, rest-json) ``ServiceModel``."""
    return _load_service_model(DATA_SERVICE_NAME, DATA_API_VERSION)


def operation_model(operation: str) -> Any:
    """The botocore ``OperationModel`` for an operation, or UnknownOperationException."""
    model = service_model()
    if operation not in model.operation_names:
        raise UnknownOperationException(f"{operation} is not an operation of {SERVICE_NAME}")
    return model.operation_model(operation)


@functools.lru_cache(maxsize=256)
def _compiled_pattern(pattern: str) -> re.Pattern[str]:
    # botocore's copy of the Smithy pattern drops the outer ^ and $; fullmatch restores them.
    return re.compile(f"(?:{pattern})")


def validate_input(operation: str, body: Mapping[str, Any]) -> None:
    """Raise ``ValidationException`` listing every violation of the operation's input shape."""
    validate_shape(operation_model(operation).input_shape, body)


def validate_shape(input_shape: Any, body: Mapping[str, Any]) -> None:
    """:func:`validate_input` for an input shape of any model (the data plane's too)."""
    if input_shape is None:
        return
    problems = check_value(input_shape, body, "")
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise ValidationException(f"{count} validation {noun} detected: " + "; ".join(problems))


def prune_input(operation: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a validated body with only the model's members and no nulls, so handlers
    see absent members as absent (``"Tr31KeyBlock" in material``) and never meet unknowns."""
    return prune_shape(operation_model(operation).input_shape, body)


def prune_shape(input_shape: Any, body: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`prune_input` for an input shape of any model."""
    if input_shape is None:
        return {}
    pruned: dict[str, Any] = _prune(input_shape, body)
    return pruned


def _prune(shape: Any, value: Any) -> Any:
    if shape.type_name == "structure" and isinstance(value, Mapping):
        return {name: _prune(member, value[name]) for name, member in shape.members.items()
                if value.get(name) is not None}
    if shape.type_name == "list" and isinstance(value, list):
        return [_prune(shape.member, item) for item in value]
    if shape.type_name == "map" and isinstance(value, Mapping):
        return {key: _prune(shape.value, item) for key, item in value.items()}
    return value


def check_value(shape: Any, value: Any, path: str) -> list[str]:
    """Every constraint of ``shape`` that ``value`` violates, as AWS-style sentences."""
    checker = _CHECKERS.get(shape.type_name)
    if checker is None:  # a type this service does not use: accept rather than 500
        return []
    problems: list[str] = checker(shape, value, path)
    return problems


def _where(path: str) -> str:
    return f"'{path}'" if path else "the request body"


def _value_text(shape: Any, value: Any) -> str:
    if shape.metadata.get("sensitive") or not isinstance(value, str | int | float | bool):
        return "Value"
    text = str(value)
    if len(text) > _ECHO_LIMIT:
        return "Value"
    return f"Value '{text}'"


def _type_problem(path: str, expected: str, value: Any) -> list[str]:
    got = "null" if value is None else type(value).__name__
    return [f"Value at {_where(path)} failed to satisfy constraint: Member must be {expected} "
            f"(got {got})"]


def _check_structure(shape: Any, value: Any, path: str) -> list[str]:
    if not isinstance(value, Mapping):
        return _type_problem(path, "a JSON object", value)
    problems: list[str] = []
    prefix = f"{path}." if path else ""
    for name in shape.required_members:
        if value.get(name) is None:
            problems.append(f"Value null at '{prefix}{name}' failed to satisfy constraint: "
                            "Member must not be null")
    present = [name for name in shape.members if value.get(name) is not None]
    if getattr(shape, "is_tagged_union", False) and len(present) != 1:
        choices = ", ".join(shape.members)
        problems.append(f"Value at {_where(path)} failed to satisfy constraint: exactly one "
                        f"member must be set ({len(present)} given; one of {choices})")
    for name in present:
        problems.extend(check_value(shape.members[name], value[name], f"{prefix}{name}"))
    return problems


def _check_bounds(shape: Any, number: int, path: str, what: str, subject: str) -> list[str]:
    """The model's ``min``/``max`` on a length or a value, in AWS's wording."""
    low = shape.metadata.get("min")
    high = shape.metadata.get("max")
    if low is not None and number < low:
        return [f"{subject} at '{path}' failed to satisfy constraint: Member must have {what} "
                f"greater than or equal to {low}"]
    if high is not None and number > high:
        return [f"{subject} at '{path}' failed to satisfy constraint: Member must have {what} "
                f"less than or equal to {high}"]
    return []


def _check_length(shape: Any, size: int, path: str, what: str) -> list[str]:
    return _check_bounds(shape, size, path, what, "Value")


def _check_list(shape: Any, value: Any, path: str) -> list[str]:
    if not isinstance(value, list):
        return _type_problem(path, "a list", value)
    problems = _check_length(shape, len(value), path, "length")
    for index, item in enumerate(value):
        if item is None:
            problems.append(f"Value null at '{path}.{index + 1}' failed to satisfy constraint: "
                            "Member must not be null")
            continue
        problems.extend(check_value(shape.member, item, f"{path}.{index + 1}"))
    return problems


def _check_map(shape: Any, value: Any, path: str) -> list[str]:
    if not isinstance(value, Mapping):
        return _type_problem(path, "a map", value)
    problems = _check_length(shape, len(value), path, "length")
    for key, item in value.items():
        problems.extend(check_value(shape.key, key, f"{path}.{key}(key)"))
        if item is None:
            problems.append(f"Value null at '{path}.{key}' failed to satisfy constraint: "
                            "Member must not be null")
            continue
        problems.extend(check_value(shape.value, item, f"{path}.{key}"))
    return problems


def _check_string(shape: Any, value: Any, path: str) -> list[str]:
    if not isinstance(value, str):
        return _type_problem(path, "a string", value)
    enum = shape.enum
    if enum and value not in enum:
        return [f"{_value_text(shape, value)} at '{path}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(enum)}]"]
    problems = _check_length(shape, len(value), path, "length")
    pattern = shape.metadata.get("pattern")
    if not problems and pattern and not _compiled_pattern(pattern).fullmatch(value):
        problems.append(f"{_value_text(shape, value)} at '{path}' failed to satisfy "
                        f"constraint: Member must satisfy regular expression pattern: "
                        f"^{pattern}$")
    return problems


def _check_integer(shape: Any, value: Any, path: str) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int):
        return _type_problem(path, "an integer", value)
    return _check_bounds(shape, value, path, "value", _value_text(shape, value))


def _check_boolean(shape: Any, value: Any, path: str) -> list[str]:
    if not isinstance(value, bool):
        return _type_problem(path, "a boolean", value)
    return []


def _check_number(shape: Any, value: Any, path: str) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _type_problem(path, "a number", value)
    return []


def _check_timestamp(shape: Any, value: Any, path: str) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return _type_problem(path, "a timestamp (epoch seconds)", value)
    return []


def _check_blob(shape: Any, value: Any, path: str) -> list[str]:
    if not isinstance(value, str):
        return _type_problem(path, "a base64 string", value)
    return []


_CHECKERS: dict[str, Any] = {
    "structure": _check_structure,
    "list": _check_list,
    "map": _check_map,
    "string": _check_string,
    "integer": _check_integer,
    "long": _check_integer,
    "boolean": _check_boolean,
    "float": _check_number,
    "double": _check_number,
    "timestamp": _check_timestamp,
    "blob": _check_blob,
}
