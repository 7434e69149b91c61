"""Domain primitives: aggregate roots, domain events and ids."""

from cqrs_ddd_core.domain.aggregate import AggregateRoot as AggregateRoot
from cqrs_ddd_core.domain.events import DomainEvent as DomainEvent
from cqrs_ddd_core.domain.ids import new_id as new_id
from cqrs_ddd_core.domain.ids import uuid7 as uuid7

__all__ = ["AggregateRoot", "DomainEvent", "new_id", "uuid7"]
