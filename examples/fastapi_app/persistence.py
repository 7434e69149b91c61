"""Where orders live: a state table, an event stream per order and the outbox.

:class:`OrderStore` writes all three through the request's unit of work, so a
command's new state, its events and the messages announcing them commit together or
not at all. The relay publishes the messages after the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from cqrs_ddd_core import DomainEvent
from cqrs_ddd_core.ports.event_store import StoredEvent
from cqrs_ddd_core.ports.outbox import OutboxMessage
from cqrs_ddd_persistence_sqlalchemy.core import (
    Base,
    SQLAlchemyEventStore,
    SQLAlchemyOutboxStorage,
    SQLAlchemyRepository,
    SQLAlchemyUnitOfWork,
)
from cqrs_ddd_persistence_sqlalchemy.exceptions import (
    EntityNotFoundError,
    OptimisticConcurrencyError,
)
from cqrs_ddd_specifications import QueryOptions

from .domain import EVENT_TYPES, Order

__all__ = ["OrderModel", "OrderStore", "to_domain_event", "to_outbox_message", "to_stored_event"]

# Fields every DomainEvent has; the stored payload holds only an event's own fields.
_ENVELOPE = set(DomainEvent.model_fields)


class OrderModel(Base):
    """The current state of each order.

    On the library's ``Base``: it gets ``version`` (optimistic concurrency) and
    ``created_at``/``updated_at`` columns, and one ``Base.metadata.create_all`` also
    creates the ``events`` and ``outbox`` tables.
    """

    __tablename__ = "shop_orders"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100), index=True)
    total: Mapped[float] = mapped_column(Numeric(10, 2))
    status: Mapped[str] = mapped_column(String(20))


def to_stored_event(event: DomainEvent) -> StoredEvent:
    """The event store's record of a domain event recorded by an aggregate."""
    if event.aggregate_id is None or event.aggregate_type is None or event.version is None:
        raise ValueError(f"{event.event_type} was not recorded with an aggregate's add_event")
    return StoredEvent(
        event_id=event.event_id,
        event_type=event.event_type,
        aggregate_id=event.aggregate_id,
        aggregate_type=event.aggregate_type,
        version=event.version,
        payload=event.model_dump(mode="json", exclude=_ENVELOPE),
        occurred_at=event.occurred_at,
    )


def to_domain_event(stored: StoredEvent) -> DomainEvent:
    """The domain event a stored event records.

    Raises:
        KeyError: the event type is not one of the order's events.
    """
    return EVENT_TYPES[stored.event_type].model_validate(
        {
            **stored.payload,
            "event_id": stored.event_id,
            "event_type": stored.event_type,
            "occurred_at": stored.occurred_at,
            "aggregate_id": stored.aggregate_id,
            "aggregate_type": stored.aggregate_type,
            "version": stored.version,
        }
    )


def to_outbox_message(event: DomainEvent) -> OutboxMessage:
    """The message that announces a domain event to other services."""
    return OutboxMessage(
        message_id=event.event_id,
        event_type=event.event_type,
        payload=event.model_dump(mode="json"),
        created_at=event.occurred_at,
        # One order's messages are published one at a time, in the order they happened.
        ordering_key=str(event.aggregate_id),
    )


class OrderStore:
    """Loads and saves orders; saving also appends their events and outbox messages.

    Args:
        after_commit: called after every commit that saved outbox messages, e.g. the
            relay's ``wake`` so that they are published at once.
    """

    def __init__(self, *, after_commit: Callable[[], None] | None = None) -> None:
        self.repository = SQLAlchemyRepository(entity_cls=Order, db_model_cls=OrderModel)
        self.event_store = SQLAlchemyEventStore()
        self.outbox = SQLAlchemyOutboxStorage()
        self._after_commit = after_commit

    async def get(
        self, order_id: str, uow: SQLAlchemyUnitOfWork, *, expected_version: int | None = None
    ) -> Order:
        """Load an order, at ``expected_version`` if given (what the client last saw).

        Raises:
            EntityNotFoundError: there is no such order.
            OptimisticConcurrencyError: the order is not at ``expected_version``.
        """
        order = await self.repository.get(order_id, uow=uow)
        if order is None:
            raise EntityNotFoundError(f"order {order_id!r} not found", entity_id=order_id)
        if expected_version is not None and order.version != expected_version:
            raise OptimisticConcurrencyError(
                f"order {order_id!r} is at version {order.version}, not {expected_version}: "
                "it changed since it was read",
                aggregate_id=order_id,
                expected_version=expected_version,
                actual_version=order.version,
            )
        return order

    async def save(self, order: Order, uow: SQLAlchemyUnitOfWork) -> None:
        """Insert or update the order and record its new events.

        Raises:
            OptimisticConcurrencyError: another request changed the order (its row or
                its event stream) first.
        """
        await self.repository.add(order, uow=uow)
        await self._record(order, uow)

    async def delete(self, order: Order, uow: SQLAlchemyUnitOfWork) -> None:
        """Delete the order's row and record its new events (the stream stays)."""
        await self.repository.delete(order.id, uow=uow)
        await self._record(order, uow)

    async def _record(self, order: Order, uow: SQLAlchemyUnitOfWork) -> None:
        events = order.pull_domain_events()
        if not events:
            return
        # A unique (aggregate_id, version) in the event store makes a concurrent
        # writer of the same order fail here, even one that bypassed the row's version.
        await self.event_store.append_batch([to_stored_event(e) for e in events], uow=uow)
        await self.outbox.save_messages([to_outbox_message(e) for e in events], uow=uow)
        if self._after_commit is not None:
            uow.on_commit(self._after_commit)

    async def search(self, options: QueryOptions, uow: SQLAlchemyUnitOfWork) -> list[Order]:
        """The orders matching ``options``, one page, filtered and sorted in SQL."""
        result = await self.repository.search(options, uow=uow)
        return await result

    async def history(self, order_id: str, uow: SQLAlchemyUnitOfWork) -> Sequence[StoredEvent]:
        """The order's stored events, oldest first (also after it was deleted)."""
        return await self.event_store.get_events(order_id, uow=uow)
