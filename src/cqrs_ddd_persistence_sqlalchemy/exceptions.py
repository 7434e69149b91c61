"""Exceptions raised by the SQLAlchemy adapters.

Every error of the library derives from :class:`PersistenceError`. The classes
shared with the in-memory adapters are defined in ``cqrs_ddd_core.exceptions`` and
re-exported here, so ``except OptimisticConcurrencyError`` catches a conflict from
either. The tree::

    PersistenceError
    ├── OptimisticConcurrencyError   stale aggregate version, or an event stream that moved on
    ├── EntityNotFoundError          (also LookupError)
    ├── UnitOfWorkError              (also RuntimeError) unit of work used outside its lifecycle
    ├── PostCommitError              committed, but post-commit hooks or callbacks failed
    ├── SerializationError           (also ValueError) a value has no JSON form
    ├── MappingError                 (also ValueError) an entity and a model do not map
    └── QueryCompileError            (also SpecificationError, ValueError) a specification
        │                            or ordering cannot be compiled for this model
        ├── UnknownFieldError        the field is not a mapped column, JSON path or relationship
        └── UnsupportedOperatorError the operator cannot apply to that column

Database errors that carry no extra meaning for the library, such as a unique
violation on an application table, propagate as SQLAlchemy's own exceptions
(``sqlalchemy.exc.IntegrityError``, with the driver error as ``.orig``).
"""

from __future__ import annotations

from typing import Any

from cqrs_ddd_core.exceptions import EntityNotFoundError as EntityNotFoundError
from cqrs_ddd_core.exceptions import OptimisticConcurrencyError as OptimisticConcurrencyError
from cqrs_ddd_core.exceptions import PersistenceError as PersistenceError
from cqrs_ddd_core.exceptions import PostCommitError as PostCommitError
from cqrs_ddd_core.exceptions import SerializationError as SerializationError
from cqrs_ddd_core.exceptions import UnitOfWorkError as UnitOfWorkError
from cqrs_ddd_specifications.exceptions import SpecificationError

__all__ = [
    "EntityNotFoundError",
    "MappingError",
    "OptimisticConcurrencyError",
    "PersistenceError",
    "PostCommitError",
    "QueryCompileError",
    "SerializationError",
    "UnitOfWorkError",
    "UnknownFieldError",
    "UnsupportedOperatorError",
]


class MappingError(PersistenceError, ValueError):
    """An entity cannot be built from a model, or a model from an entity.

    Attributes:
        field: the field that failed, when one did.
        source: the class converted from.
        target: the class converted to.
    """

    def __init__(
        self, message: str, *, field: str | None = None, source: Any = None, target: Any = None
    ) -> None:
        self.field = field
        self.source = source
        self.target = target
        super().__init__(message)


class QueryCompileError(PersistenceError, SpecificationError):
    """A specification or an ordering cannot be compiled to SQL for a model.

    Attributes:
        field: the offending field path.
        model: the mapped class the query was compiled for.
    """

    def __init__(self, message: str, *, field: str | None = None, model: Any = None) -> None:
        self.field = field
        self.model = model
        super().__init__(message)


class UnknownFieldError(QueryCompileError):
    """The field is not a mapped column, a path into a JSON column or a relationship."""


class UnsupportedOperatorError(QueryCompileError):
    """The operator is not supported for the field's column type (or not at all in SQL)."""
