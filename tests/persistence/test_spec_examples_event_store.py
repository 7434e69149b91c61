"""The examples of section 3 of the specification (event store), run as written."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cqrs_ddd_core import AggregateRoot, DomainEvent
from cqrs_ddd_core.ports.event_store import StoredEvent
from cqrs_ddd_persistence_sqlalchemy.core import SQLAlchemyEventStore


class OrderCreated(DomainEvent):
    customer_id: str
    total: float


class OrderShipped(DomainEvent):
    carrier: str


class Order(AggregateRoot[str]):
    id: str
    customer_id: str = ""
    total: float = 0.0
    status: str = "new"

    def on_order_shipped(self, event: OrderShipped) -> None:
        self.status = "shipped"


def _event(version: int) -> StoredEvent:
    return StoredEvent(
        event_type="OrderShipped",
        aggregate_id="order-456",
        aggregate_type="Order",
        version=version,
        payload={"carrier": f"carrier-{version}"},
    )


async def test_section_3_usage(session_factory: async_sessionmaker[AsyncSession]) -> None:
    processed: list[StoredEvent] = []

    async def process_event(event: StoredEvent) -> None:
        processed.append(event)

    async with session_factory() as session:
        event_store = SQLAlchemyEventStore(session)

        # Append single event
        event = StoredEvent(
            event_id="evt-123",
            event_type="OrderCreated",
            aggregate_id="order-456",
            aggregate_type="Order",
            version=1,
            payload={"customer_id": "cust-789", "total": 99.99},
            metadata={"user_id": "user-123"},
            occurred_at=datetime.now(timezone.utc),  # noqa: UP017 - as the specification writes it
        )
        await event_store.append(event)

        # Append batch (atomic)
        event1, event2, event3 = _event(2), _event(3), _event(4)
        events = [event1, event2, event3]
        await event_store.append_batch(events)
        await event_store.append_batch([_event(v) for v in range(5, 9)])
        await session.commit()

        # Get events for aggregate
        events = await event_store.get_events("order-456")
        assert [e.version for e in events] == list(range(1, 9))

        # Get events after version (for reconstitution)
        events = await event_store.get_events("order-456", after_version=5)
        assert [e.version for e in events] == [6, 7, 8]

        # Cursor-based pagination
        position = 0
        while True:
            batch = await event_store.get_events_after(position, limit=1000)
            if not batch:
                break
            for event in batch:
                await process_event(event)
                position = event.position
        assert [e.version for e in processed] == list(range(1, 9))

        # Streaming (memory-efficient)
        processed.clear()
        async for event in await event_store.get_events_from_position(0):
            await process_event(event)
        assert [e.version for e in processed] == list(range(1, 9))

        # Performance section: paginated loading.
        position = 0
        seen = 0
        while True:
            events = await event_store.get_events_after(position, limit=1000)
            if not events:
                break
            for event in events:
                seen += 1
                position = event.position
        assert seen == 8
        assert len(await event_store.get_all()) == 8


async def test_section_3_event_reconstitution(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async def reconstitute_order(order_id: str, event_store: SQLAlchemyEventStore) -> Order:
        """Rebuild order from event history."""
        # Get all events for aggregate
        events = await event_store.get_events(order_id)

        # Start with empty order
        order = Order(id=order_id)

        # Apply each event
        for event in events:
            if event.event_type == "OrderCreated":
                order.apply(OrderCreated(**event.payload))
            elif event.event_type == "OrderShipped":
                order.apply(OrderShipped(**event.payload))
            # ... more event handlers

        return order

    async with session_factory() as session:
        store = SQLAlchemyEventStore(session)
        await store.append_batch(
            [
                StoredEvent(
                    event_type="OrderCreated",
                    aggregate_id="o-1",
                    aggregate_type="Order",
                    version=1,
                    payload={"customer_id": "cust-789", "total": 99.99},
                ),
                StoredEvent(
                    event_type="OrderShipped",
                    aggregate_id="o-1",
                    aggregate_type="Order",
                    version=2,
                    payload={"carrier": "DHL"},
                ),
            ]
        )
        await session.commit()
        order = await reconstitute_order("o-1", store)
    assert (order.customer_id, order.total, order.status) == ("cust-789", 99.99, "shipped")
    assert order.version == 2
