"""The dict form of specifications: ``to_dict`` and ``from_dict``.

The format (JSON-friendly; tuples are written as lists)::

    {"field": "status", "op": "eq", "value": "pending"}   a condition
    {"field": "deleted_at", "op": "is_null"}               "value" omitted when None
    {"and": [<spec>, ...]}                                 non-empty list
    {"or": [<spec>, ...]}                                  non-empty list
    {"not": <spec>}
    {"all": true}                                          matches everything

``"op"`` may be a name or a symbol (``"="``); ``to_dict`` always writes the canonical
name. Operand values that are not JSON-native (``datetime``, ``Decimal``, ``UUID``)
are written as they are: encode with pydantic (``pydantic_core.to_jsonable_python``) if
you need JSON text. ``from_dict`` takes values as given, so an ISO string stays a
string; the SQL side casts it to the column type and in-memory evaluation converts it
to the type of the attribute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .exceptions import (
    InvalidFieldError,
    InvalidOperandError,
    MalformedSpecificationError,
    UnknownOperatorError,
)
from .operators import OperatorRegistry
from .specification import (
    AndSpecification,
    AttributeSpecification,
    NotSpecification,
    OrSpecification,
    Specification,
    TrueSpecification,
)

__all__ = ["from_dict", "to_dict"]

_LOGICAL = ("and", "or", "not", "all")
_CONDITION = ("field", "op", "value")
_MAX_DEPTH = 100


def to_dict(spec: Specification) -> dict[str, Any]:
    """Return the dict form of ``spec`` (same as ``spec.to_dict()``)."""
    if not isinstance(spec, Specification):
        raise TypeError(f"expected a Specification, got {type(spec).__name__}")
    return spec.to_dict()


def from_dict(data: Mapping[str, Any], registry: OperatorRegistry | None = None) -> Specification:
    """Parse the dict form; operators are resolved through ``registry`` (default if None).

    Raises:
        MalformedSpecificationError: anything wrong, with ``path`` saying where
            (``"and[1].op"``); a bad field, operator or operand is the ``__cause__``
            (``InvalidFieldError``, ``UnknownOperatorError``, ``InvalidOperandError``).
    """
    return _parse(data, "", registry, 0)


def _key(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _names(keys: Iterable[object]) -> str:
    return ", ".join(sorted(repr(key) for key in keys))


def _parse(data: object, path: str, registry: OperatorRegistry | None, depth: int) -> Specification:
    here = path or "<root>"
    if depth > _MAX_DEPTH:
        raise MalformedSpecificationError(f"nested more than {_MAX_DEPTH} levels deep", path=here)
    if not isinstance(data, Mapping):
        raise MalformedSpecificationError(
            f"expected an object (dict), got {type(data).__name__}", path=here
        )
    if not data:
        raise MalformedSpecificationError(
            "empty object; expected a condition ('field', 'op', 'value') "
            "or one of 'and', 'or', 'not', 'all'",
            path=here,
        )
    logical = [key for key in _LOGICAL if key in data]
    if logical:
        if len(data) != 1:
            others = [key for key in data if key != logical[0]]
            raise MalformedSpecificationError(
                f"a {logical[0]!r} node takes no other key, got {_names(others)}", path=here
            )
        return _parse_logical(logical[0], data[logical[0]], path, registry, depth)
    if "field" in data or "op" in data:
        return _parse_condition(data, path, registry)
    raise MalformedSpecificationError(
        f"unknown key(s) {_names(data)}; expected a condition ('field', 'op', 'value') "
        "or one of 'and', 'or', 'not', 'all'",
        path=here,
    )


def _parse_logical(
    kind: str, body: object, path: str, registry: OperatorRegistry | None, depth: int
) -> Specification:
    where = _key(path, kind)
    if kind == "all":
        if body is not True:
            raise MalformedSpecificationError(f"expected true, got {body!r}", path=where)
        return TrueSpecification()
    if kind == "not":
        return NotSpecification(_parse(body, where, registry, depth + 1))
    if not isinstance(body, list | tuple):
        raise MalformedSpecificationError(
            f"expected a list of specifications, got {type(body).__name__}", path=where
        )
    if not body:
        raise MalformedSpecificationError("expected a non-empty list", path=where)
    specs = tuple(
        _parse(item, f"{where}[{index}]", registry, depth + 1) for index, item in enumerate(body)
    )
    return AndSpecification(specs) if kind == "and" else OrSpecification(specs)


def _parse_condition(
    data: Mapping[Any, Any], path: str, registry: OperatorRegistry | None
) -> Specification:
    unknown = [key for key in data if key not in _CONDITION]
    if unknown:
        raise MalformedSpecificationError(
            f"unknown key(s) {_names(unknown)}; a condition has 'field', 'op' and "
            "optionally 'value'",
            path=path or "<root>",
        )
    for key in ("field", "op"):
        if key not in data:
            raise MalformedSpecificationError("missing", path=_key(path, key))
        if not isinstance(data[key], str):
            raise MalformedSpecificationError(
                f"expected a string, got {type(data[key]).__name__}", path=_key(path, key)
            )
    try:
        return AttributeSpecification(
            data["field"], data["op"], data.get("value"), registry=registry
        )
    except InvalidFieldError as exc:
        raise MalformedSpecificationError(str(exc), path=_key(path, "field")) from exc
    except UnknownOperatorError as exc:
        raise MalformedSpecificationError(str(exc), path=_key(path, "op")) from exc
    except InvalidOperandError as exc:
        raise MalformedSpecificationError(str(exc), path=_key(path, "value")) from exc
