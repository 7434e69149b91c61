"""In-memory adapters of every port, for unit tests of application code."""

from cqrs_ddd_core.adapters.memory import InMemoryRepository as InMemoryRepository
from cqrs_ddd_core.adapters.memory import InMemoryStore as InMemoryStore
from cqrs_ddd_core.adapters.memory import InMemoryUnitOfWork as InMemoryUnitOfWork
from cqrs_ddd_core.adapters.memory_event_store import InMemoryEventStore as InMemoryEventStore

__all__ = ["InMemoryEventStore", "InMemoryRepository", "InMemoryStore", "InMemoryUnitOfWork"]
