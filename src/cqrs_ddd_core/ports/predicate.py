"""What in-memory adapters need of a specification: a predicate over objects."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["Predicate"]


@runtime_checkable
class Predicate(Protocol):
    """Anything with ``is_satisfied_by(obj) -> bool``, such as a specification."""

    def is_satisfied_by(self, obj: Any) -> bool:
        """Whether ``obj`` matches."""
        ...
