"""Field paths: validation and in-memory lookup."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .exceptions import InvalidFieldError

__all__ = ["resolve_field", "validate_field"]

_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MISSING = object()


def validate_field(field: object) -> str:
    """Return ``field`` if it is a dotted path of identifiers, else raise ``InvalidFieldError``.

    Each segment must match ``[A-Za-z_][A-Za-z0-9_]*``: ``"status"``,
    ``"customer.address.city"``. Anything else (spaces, quotes, SQL) is rejected, so a
    path can never smuggle text into generated SQL.
    """
    if not isinstance(field, str):
        raise InvalidFieldError(field, f"expected a string, got {type(field).__name__}")
    for segment in field.split("."):
        if _SEGMENT.fullmatch(segment) is None:
            raise InvalidFieldError(field)
    return field


def resolve_field(obj: Any, field: str) -> Any:
    """Look a dotted path up on ``obj``; a missing key or attribute gives ``None``.

    Each step uses the key for a ``Mapping`` and ``getattr`` for anything else.
    ``None`` stands for SQL NULL, so a missing value makes comparisons unknown.
    """
    current = obj
    for segment in field.split("."):
        if current is None:
            return None
        if isinstance(current, Mapping):
            current = current.get(segment)
        else:
            current = getattr(current, segment, _MISSING)
            if current is _MISSING:
                return None
    return current
