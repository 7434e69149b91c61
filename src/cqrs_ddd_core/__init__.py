"""Domain primitives, persistence ports and in-memory adapters for CQRS/DDD services."""

from cqrs_ddd_core.domain.aggregate import AggregateRoot as AggregateRoot
from cqrs_ddd_core.domain.events import DomainEvent as DomainEvent
from cqrs_ddd_core.exceptions import CqrsDddError as CqrsDddError
from cqrs_ddd_core.exceptions import DomainError as DomainError
from cqrs_ddd_core.exceptions import EntityNotFoundError as EntityNotFoundError
from cqrs_ddd_core.exceptions import OptimisticConcurrencyError as OptimisticConcurrencyError
from cqrs_ddd_core.exceptions import PersistenceError as PersistenceError
from cqrs_ddd_core.exceptions import PostCommitError as PostCommitError
from cqrs_ddd_core.exceptions import SerializationError as SerializationError
from cqrs_ddd_core.exceptions import UnitOfWorkError as UnitOfWorkError
from cqrs_ddd_core.ports.event_store import IEventStore as IEventStore
from cqrs_ddd_core.ports.event_store import StoredEvent as StoredEvent
from cqrs_ddd_core.ports.outbox import IOutboxStorage as IOutboxStorage
from cqrs_ddd_core.ports.outbox import OutboxMessage as OutboxMessage
from cqrs_ddd_core.ports.outbox import OutboxStatus as OutboxStatus
from cqrs_ddd_core.ports.repository import IRepository as IRepository
from cqrs_ddd_core.ports.search_result import SearchResult as SearchResult
from cqrs_ddd_core.ports.unit_of_work import UnitOfWork as UnitOfWork
from cqrs_ddd_core.ports.unit_of_work import UnitOfWorkHooks as UnitOfWorkHooks

__all__ = [
    "AggregateRoot",
    "CqrsDddError",
    "DomainError",
    "DomainEvent",
    "EntityNotFoundError",
    "IEventStore",
    "IOutboxStorage",
    "IRepository",
    "OptimisticConcurrencyError",
    "OutboxMessage",
    "OutboxStatus",
    "PersistenceError",
    "PostCommitError",
    "SearchResult",
    "SerializationError",
    "StoredEvent",
    "UnitOfWork",
    "UnitOfWorkHooks",
]
