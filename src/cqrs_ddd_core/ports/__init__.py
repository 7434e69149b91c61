"""Ports: the interfaces that persistence adapters implement."""

from cqrs_ddd_core.ports.event_store import ExpectedVersion as ExpectedVersion
from cqrs_ddd_core.ports.event_store import IEventStore as IEventStore
from cqrs_ddd_core.ports.event_store import StoredEvent as StoredEvent
from cqrs_ddd_core.ports.outbox import IOutboxStorage as IOutboxStorage
from cqrs_ddd_core.ports.outbox import OutboxMessage as OutboxMessage
from cqrs_ddd_core.ports.outbox import OutboxStatus as OutboxStatus
from cqrs_ddd_core.ports.repository import IRepository as IRepository
from cqrs_ddd_core.ports.search_result import SearchResult as SearchResult
from cqrs_ddd_core.ports.unit_of_work import UnitOfWork as UnitOfWork
from cqrs_ddd_core.ports.unit_of_work import UnitOfWorkHooks as UnitOfWorkHooks
from cqrs_ddd_core.ports.unit_of_work import UnitOfWorkState as UnitOfWorkState

__all__ = [
    "ExpectedVersion",
    "IEventStore",
    "IOutboxStorage",
    "IRepository",
    "OutboxMessage",
    "OutboxStatus",
    "SearchResult",
    "StoredEvent",
    "UnitOfWork",
    "UnitOfWorkHooks",
    "UnitOfWorkState",
]
