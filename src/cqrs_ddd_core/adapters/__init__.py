"""In-memory adapters of every port, for unit tests of application code."""

from cqrs_ddd_core.adapters.memory import InMemoryRepository as InMemoryRepository
from cqrs_ddd_core.adapters.memory import InMemoryStore as InMemoryStore
from cqrs_ddd_core.adapters.memory import InMemoryUnitOfWork as InMemoryUnitOfWork
from cqrs_ddd_core.adapters.memory_event_store import InMemoryEventStore as InMemoryEventStore
from cqrs_ddd_core.adapters.memory_outbox import InMemoryOutbox as InMemoryOutbox
from cqrs_ddd_core.adapters.memory_outbox import InMemoryOutboxStorage as InMemoryOutboxStorage

__all__ = [
    "InMemoryEventStore",
    "InMemoryOutbox",
    "InMemoryOutboxStorage",
    "InMemoryRepository",
    "InMemoryStore",
    "InMemoryUnitOfWork",
]
