"""Exceptions raised by the specification package.

The tree::

    CqrsDddError                          (cqrs_ddd_core.exceptions)
    └── SpecificationError                (also ValueError) base of this package
        ├── UnknownOperatorError          an operator name or symbol is not registered
        ├── InvalidFieldError             a field path is not a dotted identifier
        ├── InvalidOperandError           an operand has the wrong shape for its operator
        ├── MalformedSpecificationError   a dict given to ``from_dict`` is not a specification
        ├── InvalidQueryOptionsError      bad ordering or pagination for ``QueryOptions``
        └── SpecificationEvaluationError  (also TypeError) in-memory evaluation compared
                                          values that cannot be compared

``from_dict`` always raises ``MalformedSpecificationError``; when the cause is a bad
operator, field or operand, the more specific error is its ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cqrs_ddd_core.exceptions import CqrsDddError

__all__ = [
    "InvalidFieldError",
    "InvalidOperandError",
    "InvalidQueryOptionsError",
    "MalformedSpecificationError",
    "SpecificationError",
    "SpecificationEvaluationError",
    "UnknownOperatorError",
]


class SpecificationError(CqrsDddError, ValueError):
    """Base class of every error raised by ``cqrs_ddd_specifications``."""


class UnknownOperatorError(SpecificationError):
    """No operator is registered under the given name or symbol.

    Attributes:
        operator: the name or symbol that was looked up.
        known: the canonical names of the registered operators, sorted.
    """

    def __init__(self, operator: object, known: Iterable[str] = ()) -> None:
        self.operator = operator
        self.known: tuple[str, ...] = tuple(sorted(known))
        message = f"unknown operator {operator!r}"
        if self.known:
            message += f"; known operators: {', '.join(self.known)}"
        super().__init__(message)


class InvalidFieldError(SpecificationError):
    """A field path is not a dotted sequence of identifiers.

    Attributes:
        field: the rejected path.
    """

    def __init__(self, field: object, reason: str | None = None) -> None:
        self.field = field
        detail = reason or "expected a dotted path of identifiers such as 'customer.address.city'"
        super().__init__(f"invalid field {field!r}: {detail}")


class InvalidOperandError(SpecificationError):
    """An operand does not have the shape its operator requires.

    Attributes:
        field: the field the condition is on.
        operator: the canonical name of the operator.
        value: the operand that was given.
        expected: a description of what the operator accepts.
    """

    def __init__(self, *, field: str, operator: str, value: Any, expected: str) -> None:
        self.field = field
        self.operator = operator
        self.value = value
        self.expected = expected
        super().__init__(
            f"invalid value for operator {operator!r} on field {field!r}: "
            f"expected {expected}, got {value!r}"
        )


class MalformedSpecificationError(SpecificationError):
    """A dict given to ``from_dict`` does not describe a specification.

    Attributes:
        path: where in the structure the problem is, e.g. ``"and[1].op"``;
            ``"<root>"`` for the top-level object.
    """

    def __init__(self, message: str, *, path: str = "<root>") -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class InvalidQueryOptionsError(SpecificationError):
    """Ordering or pagination given to ``QueryOptions`` is invalid."""


class SpecificationEvaluationError(SpecificationError, TypeError):
    """In-memory evaluation met values that cannot be compared (e.g. ``str`` with ``int``).

    Attributes:
        field: the field being evaluated.
        operator: the canonical operator name, or ``None`` when sorting.
    """

    def __init__(self, message: str, *, field: str, operator: str | None) -> None:
        self.field = field
        self.operator = operator
        super().__init__(message)
