"""SQLAlchemy adapters of the CQRS/DDD persistence ports."""

from cqrs_ddd_persistence_sqlalchemy.core.event_store import (
    SQLAlchemyEventStore as SQLAlchemyEventStore,
)
from cqrs_ddd_persistence_sqlalchemy.core.model_mapper import FieldTransformer as FieldTransformer
from cqrs_ddd_persistence_sqlalchemy.core.model_mapper import ModelMapper as ModelMapper
from cqrs_ddd_persistence_sqlalchemy.core.models import Base as Base
from cqrs_ddd_persistence_sqlalchemy.core.models import OutboxMessageModel as OutboxMessageModel
from cqrs_ddd_persistence_sqlalchemy.core.outbox import (
    SQLAlchemyOutboxStorage as SQLAlchemyOutboxStorage,
)
from cqrs_ddd_persistence_sqlalchemy.core.repository import (
    SQLAlchemyRepository as SQLAlchemyRepository,
)
from cqrs_ddd_persistence_sqlalchemy.core.uow import SQLAlchemyUnitOfWork as SQLAlchemyUnitOfWork

__all__ = [
    "Base",
    "FieldTransformer",
    "ModelMapper",
    "OutboxMessageModel",
    "SQLAlchemyEventStore",
    "SQLAlchemyOutboxStorage",
    "SQLAlchemyRepository",
    "SQLAlchemyUnitOfWork",
]
