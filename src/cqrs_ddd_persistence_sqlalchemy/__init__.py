"""Async SQLAlchemy persistence for CQRS/DDD services."""

from cqrs_ddd_persistence_sqlalchemy._version import __version__ as __version__
from cqrs_ddd_persistence_sqlalchemy.core import Base as Base
from cqrs_ddd_persistence_sqlalchemy.core import FieldTransformer as FieldTransformer
from cqrs_ddd_persistence_sqlalchemy.core import ModelMapper as ModelMapper
from cqrs_ddd_persistence_sqlalchemy.core import OutboxMessageModel as OutboxMessageModel
from cqrs_ddd_persistence_sqlalchemy.core import SQLAlchemyEventStore as SQLAlchemyEventStore
from cqrs_ddd_persistence_sqlalchemy.core import (
    SQLAlchemyOutboxStorage as SQLAlchemyOutboxStorage,
)
from cqrs_ddd_persistence_sqlalchemy.core import SQLAlchemyRepository as SQLAlchemyRepository
from cqrs_ddd_persistence_sqlalchemy.core import SQLAlchemyUnitOfWork as SQLAlchemyUnitOfWork
from cqrs_ddd_persistence_sqlalchemy.exceptions import MappingError as MappingError
from cqrs_ddd_persistence_sqlalchemy.exceptions import (
    OptimisticConcurrencyError as OptimisticConcurrencyError,
)
from cqrs_ddd_persistence_sqlalchemy.exceptions import PersistenceError as PersistenceError
from cqrs_ddd_persistence_sqlalchemy.exceptions import QueryCompileError as QueryCompileError

__all__ = [
    "Base",
    "FieldTransformer",
    "MappingError",
    "ModelMapper",
    "OptimisticConcurrencyError",
    "OutboxMessageModel",
    "PersistenceError",
    "QueryCompileError",
    "SQLAlchemyEventStore",
    "SQLAlchemyOutboxStorage",
    "SQLAlchemyRepository",
    "SQLAlchemyUnitOfWork",
    "__version__",
]
