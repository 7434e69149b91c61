"""JSON encoding with pydantic's JSON mode, raising the library's own error."""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import PydanticSerializationError, from_json, to_json, to_jsonable_python

from cqrs_ddd_core.exceptions import SerializationError

__all__ = ["check_no_nul", "dumps", "loads", "round_trip", "to_json_value"]


def dumps(value: Any, *, what: str = "value") -> str:
    """Encode ``value`` as JSON text the way pydantic's JSON mode does.

    datetime, date, UUID, Decimal, Enum, sets, tuples and pydantic models are accepted.
    A float NaN or infinity becomes ``null``, as in pydantic's ``model_dump_json()``
    (JSON has no such numbers; PostgreSQL refuses ``NaN`` in a document).

    Raises:
        SerializationError: the value (or something inside it) has no JSON form.
    """
    try:
        return to_json(value, inf_nan_mode="null").decode()
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise SerializationError(f"{what} cannot be encoded as JSON: {exc}") from exc


def to_json_value(value: Any, *, what: str = "value") -> Any:
    """Convert ``value`` to the plain JSON data it would be read back as.

    Raises:
        SerializationError: the value (or something inside it) has no JSON form.
    """
    try:
        return to_jsonable_python(value, inf_nan_mode="null")
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise SerializationError(f"{what} cannot be encoded as JSON: {exc}") from exc


def loads(text: str | bytes) -> Any:
    """Decode JSON text, nested as deeply as :func:`dumps` can write it.

    pydantic_core's parser (fast) stops at 200 levels of nesting, while its encoder
    writes up to about 250: text it refuses is decoded again by the standard library's
    parser, so whatever was stored can be read back.
    """
    try:
        return from_json(text)
    except ValueError:
        return json.loads(text)


def round_trip(value: Any, *, what: str = "value") -> Any:
    """What storing ``value`` as JSON and reading it back gives."""
    return loads(dumps(value, what=what))


def check_no_nul(encoded: str, *, what: str = "value") -> None:
    """Refuse JSON text holding a NUL character, which PostgreSQL cannot store as JSON.

    ``encoded`` is JSON text as :func:`dumps` writes it. It is decoded and searched
    only when it shows the escape of one (``\\u0000``), so the common case costs one
    substring search.

    Raises:
        SerializationError: a string (or key) inside holds a NUL character.
    """
    if "\\u0000" in encoded and _holds_nul(loads(encoded)):
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
