"""The examples of section 4 of the specification (outbox), and the integration patterns."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timezone

import pytest
from sample_domain import Customer, CustomerModel
from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from cqrs_ddd_core import AggregateRoot, DomainEvent
from cqrs_ddd_core.ports.outbox import OutboxMessage
from cqrs_ddd_persistence_sqlalchemy.core import (
    Base,
    SQLAlchemyOutboxStorage,
    SQLAlchemyRepository,
    SQLAlchemyUnitOfWork,
)
from cqrs_ddd_persistence_sqlalchemy.core.models import OutboxStatus


class OrderShipped(DomainEvent):
    carrier: str = "DHL"


class ShippableOrder(AggregateRoot[str]):
    id: str
    status: str = "pending"

    def ship(self) -> None:
        self.status = "shipped"
        self.add_event(OrderShipped())


class ShippableOrderModel(Base):
    __tablename__ = "shippable_orders"

    id: Mapped[str] = mapped_column(String(50), primary_key=True)
    status: Mapped[str] = mapped_column(String(50))


order_repo = SQLAlchemyRepository(entity_cls=ShippableOrder, db_model_cls=ShippableOrderModel)


async def _order(session_factory: async_sessionmaker[AsyncSession]) -> ShippableOrder:
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        order = ShippableOrder(id="o-1")
        await order_repo.add(order, uow=uow)
    return order


async def test_section_4_save_in_the_aggregates_transaction(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    order = await _order(session_factory)
    async with session_factory() as session:
        outbox = SQLAlchemyOutboxStorage(session)

        # Save events in same transaction as aggregate
        async with SQLAlchemyUnitOfWork(session_factory) as uow:
            # Modify aggregate
            order.ship()
            await order_repo.add(order, uow=uow)

            # Save domain events to outbox
            domain_events = order.pull_domain_events()
            outbox_messages = [
                OutboxMessage(
                    message_id=event.event_id,
                    event_type=event.event_type,
                    payload=event.model_dump(),
                    created_at=datetime.now(timezone.utc),  # noqa: UP017 - as written
                )
                for event in domain_events
            ]
            await outbox.save_messages(outbox_messages, uow=uow)

            # Both aggregate and outbox committed atomically
            await uow.commit()

        pending = await outbox.get_pending(limit=100)
    assert [m.message_id for m in pending] == [e.event_id for e in domain_events]
    assert pending[0].payload["carrier"] == "DHL"
    assert pending[0].payload["aggregate_id"] == "o-1"


async def test_section_4_rolled_back_with_the_aggregate(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    order = await _order(session_factory)
    outbox = SQLAlchemyOutboxStorage()
    with pytest.raises(RuntimeError):
        async with SQLAlchemyUnitOfWork(session_factory) as uow:
            order.ship()
            await order_repo.add(order, uow=uow)
            await outbox.save_messages(
                [
                    OutboxMessage(message_id=e.event_id, event_type=e.event_type)
                    for e in order.pull_domain_events()
                ],
                uow=uow,
            )
            raise RuntimeError("payment declined")
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        assert (await outbox.stats(uow=uow)).pending == 0
        stored = await order_repo.get("o-1", uow=uow)
    assert stored is not None
    assert stored.status == "pending"


async def test_section_4_background_worker(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    sent: list[tuple[str, str]] = []
    attempts: dict[str, int] = {}

    class KafkaProducer:
        async def send(self, topic: str, key: str, value: dict[str, object]) -> None:
            attempts[key] = attempts.get(key, 0) + 1
            if key == "m-2" and attempts[key] == 1:
                raise ConnectionError("broker unreachable")
            sent.append((topic, key))

    kafka_producer = KafkaProducer()
    async with session_factory() as session:
        await SQLAlchemyOutboxStorage(session).save_messages(
            [
                OutboxMessage(message_id="m-1", event_type="OrderShipped", payload={"n": 1}),
                OutboxMessage(message_id="m-2", event_type="OrderPaid", payload={"n": 2}),
            ]
        )
        await session.commit()

    async with session_factory() as session:
        outbox = SQLAlchemyOutboxStorage(session)

        # Background worker (separate process)
        async def outbox_publisher() -> None:
            while True:
                # Get pending messages
                messages = await outbox.get_pending(limit=100)

                for msg in messages:
                    try:
                        # Publish to message broker
                        await kafka_producer.send(
                            topic=f"domain.{msg.event_type}",
                            key=msg.message_id,
                            value=msg.payload,
                        )

                        # Mark as published
                        await outbox.mark_published([msg.message_id])

                    except Exception as e:  # noqa: BLE001 - as the specification writes it
                        # Mark as failed (will be retried)
                        await outbox.mark_failed(msg.message_id, str(e))

                await asyncio.sleep(1)

        worker = asyncio.create_task(outbox_publisher())
        await asyncio.sleep(0.3)
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        await session.commit()
        failed = await outbox.get_message("m-2")

    assert sent == [("domain.OrderShipped", "m-1")]
    assert failed is not None
    assert (failed.status, failed.retry_count) == (OutboxStatus.FAILED, 1)
    assert failed.error == "broker unreachable"


async def test_pattern_2_event_sourcing_with_outbox(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    class CreateCustomerCommand:
        id = "c-9"
        name = "Ann"
        email = "ann@example.com"

    class CustomerRegistered(DomainEvent):
        name: str

    customers = SQLAlchemyRepository(entity_cls=Customer, db_model_cls=CustomerModel)
    outbox = SQLAlchemyOutboxStorage()

    async def create_customer_handler(cmd: CreateCustomerCommand) -> None:
        """Command handler with event sourcing and outbox."""
        async with SQLAlchemyUnitOfWork(session_factory) as uow:
            customer = Customer(id=cmd.id, name=cmd.name, email=cmd.email)
            customer.add_event(CustomerRegistered(name=cmd.name))
            await customers.add(customer, uow=uow)
            events = customer.pull_domain_events()
            await outbox.save_messages(
                [
                    OutboxMessage(
                        message_id=e.event_id,
                        event_type=e.event_type,
                        payload=e.model_dump(),
                        created_at=datetime.now(timezone.utc),  # noqa: UP017 - as written
                    )
                    for e in events
                ],
                uow=uow,
            )
            # Atomic commit
            await uow.commit()

    await create_customer_handler(CreateCustomerCommand())
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        (message,) = await outbox.get_pending(uow=uow)
        assert await customers.get("c-9", uow=uow) is not None
    assert message.event_type == "CustomerRegistered"
    assert message.payload["name"] == "Ann"
