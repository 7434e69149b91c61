"""JSON encoding with pydantic's JSON mode, raising the library's own error."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticSerializationError, from_json, to_json, to_jsonable_python

from cqrs_ddd_core.exceptions import SerializationError

__all__ = ["dumps", "round_trip", "to_json_value"]


def dumps(value: Any, *, what: str = "value") -> str:
    """Encode ``value`` as JSON text the way pydantic's JSON mode does.

    datetime, date, UUID, Decimal, Enum, sets, tuples and pydantic models are accepted.

    Raises:
        SerializationError: the value (or something inside it) has no JSON form.
    """
    try:
        return to_json(value).decode()
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise SerializationError(f"{what} cannot be encoded as JSON: {exc}") from exc


def to_json_value(value: Any, *, what: str = "value") -> Any:
    """Convert ``value`` to the plain JSON data it would be read back as.

    Raises:
        SerializationError: the value (or something inside it) has no JSON form.
    """
    try:
        return to_jsonable_python(value)
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise SerializationError(f"{what} cannot be encoded as JSON: {exc}") from exc


def round_trip(value: Any, *, what: str = "value") -> Any:
    """What storing ``value`` as JSON and reading it back gives."""
    return from_json(dumps(value, what=what))
