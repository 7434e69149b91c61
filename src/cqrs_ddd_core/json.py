"""JSON encoding with pydantic's JSON mode, raising the library's own error."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticSerializationError, from_json, to_json, to_jsonable_python

from cqrs_ddd_core.exceptions import SerializationError

__all__ = ["check_no_nul", "dumps", "round_trip", "to_json_value"]


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


def check_no_nul(encoded: str, *, what: str = "value") -> None:
    """Refuse JSON text holding a NUL character, which PostgreSQL cannot store as JSON.

    ``encoded`` is JSON text as :func:`dumps` writes it. It is decoded and searched
    only when it shows the escape of one (``\\u0000``), so the common case costs one
    substring search.

    Raises:
        SerializationError: a string (or key) inside holds a NUL character.
    """
    if "\\u0000" in encoded and _holds_nul(from_json(encoded)):
        raise SerializationError(
            f"{what} holds a NUL character (\\u0000), which PostgreSQL cannot store in JSON"
        )


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False
