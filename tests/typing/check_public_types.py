"""What the type checker infers from the public API, pinned with ``assert_type``.

Checked by ``mypy --strict tests/typing`` (``test_typing.py`` runs it); never executed.
A ``# type: ignore[...]`` here asserts that mypy rejects the line: under ``--strict`` an
ignore that is not needed is itself an error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, assert_type

from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from cqrs_ddd_core import AggregateRoot, DomainEvent, SearchResult, StoredEvent
from cqrs_ddd_core.adapters import (
    InMemoryEventStore,
    InMemoryOutboxStorage,
    InMemoryRepository,
    InMemoryStore,
    InMemoryUnitOfWork,
)
from cqrs_ddd_core.ports.event_store import IEventStore
from cqrs_ddd_core.ports.outbox import IOutboxStorage, OutboxMessage, OutboxStats, OutboxStatus
from cqrs_ddd_core.ports.repository import IRepository
from cqrs_ddd_core.ports.unit_of_work import UnitOfWork, UnitOfWorkState
from cqrs_ddd_persistence_sqlalchemy import (
    Base,
    ModelMapper,
    OptimisticConcurrencyError,
    SQLAlchemyEventStore,
    SQLAlchemyOutboxStorage,
    SQLAlchemyRepository,
    SQLAlchemyUnitOfWork,
)
from cqrs_ddd_persistence_sqlalchemy.core.relay import OutboxRelay, RelayCounters
from cqrs_ddd_persistence_sqlalchemy.publishers import ConsolePublisher
from cqrs_ddd_specifications import (
    OperatorRegistry,
    QueryOptions,
    Specification,
    SpecificationBuilder,
    build_default_registry,
)


class OrderPlaced(DomainEvent):
    total: float


class Order(AggregateRoot[str]):
    status: str = "pending"
    total: float = 0.0


class OrderModel(Base):
    __tablename__ = "typing_orders"

    id: Mapped[str] = mapped_column(String(50), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    total: Mapped[float]


class OrderRepository(SQLAlchemyRepository[Order, str]):
    entity_cls = Order
    db_model_cls = OrderModel


# -- domain ---------------------------------------------------------------------------------


def domain(order: Order) -> None:
    assert_type(order.id, str)
    assert_type(order.version, int)
    assert_type(order.pull_domain_events(), list[DomainEvent])
    assert_type(order.domain_events, tuple[DomainEvent, ...])
    placed = OrderPlaced(total=1.0)
    assert_type(order.add_event(placed), OrderPlaced)
    assert_type(placed.version, int | None)


# -- repository -----------------------------------------------------------------------------


async def repository(
    repo: SQLAlchemyRepository[Order, str], order: Order, uow: SQLAlchemyUnitOfWork
) -> None:
    assert_type(await repo.get("o-1", uow=uow), Order | None)
    assert_type(await repo.add(order, uow=uow), Order)
    assert_type(await repo.add_all([order], uow=uow), list[Order])
    assert_type(await repo.delete("o-1", uow=uow), bool)
    assert_type(await repo.list_all(uow=uow), list[Order])
    assert_type(await repo.list_all(["o-1", "o-2"], uow=uow), list[Order])
    assert_type(repo.from_model(OrderModel()), Order)
    assert_type(repo.mapper, ModelMapper[Order, Any])
    await repo.get(1, uow=uow)  # type: ignore[arg-type]
    await repo.add(OrderPlaced(total=1.0), uow=uow)  # type: ignore[arg-type]
    port: IRepository[Order, str] = repo
    assert_type(await port.get("o-1", uow), Order | None)


async def search(repo: SQLAlchemyRepository[Order, str], uow: SQLAlchemyUnitOfWork) -> None:
    spec = SpecificationBuilder().where("status", "eq", "pending").build()
    options = QueryOptions().with_specification(spec).with_ordering("-total")
    result = await repo.search(options, uow=uow)
    assert_type(result, SearchResult[Order])
    assert_type(await result, list[Order])
    assert_type(await (await repo.search(spec, uow=uow)), list[Order])
    assert_type(await (await repo.search(uow=uow)), list[Order])
    assert_type(await (await repo.search(options=options, uow=uow)), list[Order])
    await repo.search("status = 'pending'", uow=uow)  # type: ignore[arg-type]
    stream = result.stream(batch_size=50)
    assert_type(stream, AsyncIterator[Order])
    async for found in stream:
        assert_type(found, Order)


def constructed(engine: AsyncEngine) -> None:
    # Without explicit parameters the id type defaults to Any.
    inferred = SQLAlchemyRepository(entity_cls=Order, db_model_cls=OrderModel)
    assert_type(inferred, SQLAlchemyRepository[Order, Any])
    explicit = SQLAlchemyRepository[Order, str](entity_cls=Order, db_model_cls=OrderModel)
    assert_type(explicit, SQLAlchemyRepository[Order, str])
    subclassed: SQLAlchemyRepository[Order, str] = OrderRepository()
    assert_type(subclassed.model_cls, type[Any])
    mapper = ModelMapper(Order, OrderModel)
    assert_type(mapper, ModelMapper[Order, OrderModel])
    assert_type(mapper.to_model(Order(id="o-1")), OrderModel)
    assert_type(mapper.from_model(OrderModel()), Order)
    SQLAlchemyRepository(entity_cls=Order, db_model_cls=OrderModel, mapper=mapper)
    SQLAlchemyRepository(entity_cls=OrderPlaced, db_model_cls=OrderModel)  # type: ignore[type-var]


# -- unit of work ---------------------------------------------------------------------------


async def unit_of_work(factory: async_sessionmaker[AsyncSession], session: AsyncSession) -> None:
    async with SQLAlchemyUnitOfWork(factory) as uow:
        assert_type(uow, SQLAlchemyUnitOfWork)
        assert_type(uow.session, AsyncSession)
        assert_type(uow.state, UnitOfWorkState)
        assert_type(await uow.commit(), None)
        assert_type(await uow.rollback(), None)
        uow.on_commit(lambda: None)
    async with SQLAlchemyUnitOfWork(session_factory=factory) as uow:
        assert_type(uow, SQLAlchemyUnitOfWork)
    async with SQLAlchemyUnitOfWork(session=session) as uow:
        assert_type(uow.owns_session, bool)
    port: UnitOfWork = SQLAlchemyUnitOfWork(session)
    async with port as entered:
        assert_type(entered, UnitOfWork)
    SQLAlchemyUnitOfWork(session=session, session_factory=factory)  # type: ignore[call-overload]
    SQLAlchemyUnitOfWork(42)  # type: ignore[call-overload]


# -- event store ----------------------------------------------------------------------------


async def event_store(session: AsyncSession, uow: SQLAlchemyUnitOfWork) -> None:
    store = SQLAlchemyEventStore(session)
    event = StoredEvent(
        event_type="OrderPlaced", aggregate_id="o-1", aggregate_type="Order", version=1
    )
    appended = await store.append(event, expected_version=0)
    assert_type(appended, StoredEvent)
    assert_type(appended.position, int | None)
    assert_type(appended.payload, dict[str, Any])
    assert_type(await store.append_batch([event], uow=uow), list[StoredEvent])
    assert_type(await store.get_events("o-1", after_version=1), list[StoredEvent])
    assert_type(await store.get_by_aggregate("o-1", "Order"), list[StoredEvent])
    assert_type(await store.get_all(uow=uow), list[StoredEvent])
    assert_type(await store.get_events_after(0, limit=100), list[StoredEvent])
    assert_type(await store.get_latest_position(), int)
    await store.append(OutboxMessage(event_type="OrderPlaced"))  # type: ignore[arg-type]
    async for read in await store.get_events_from_position(0, batch_size=100):
        assert_type(read, StoredEvent)
    port: IEventStore = store
    assert_type(await port.get_events("o-1"), list[StoredEvent])


def event_for_outbox() -> StoredEvent:
    return StoredEvent(event_type="E", aggregate_id="a", aggregate_type="A", version=1)


# -- outbox and relay -----------------------------------------------------------------------


async def outbox(session: AsyncSession, uow: SQLAlchemyUnitOfWork, engine: AsyncEngine) -> None:
    storage = SQLAlchemyOutboxStorage(session)
    message = OutboxMessage(event_type="OrderPlaced", payload={"total": 1.0})
    assert_type(await storage.save_messages([message], uow=uow), None)
    pending = await storage.get_pending(limit=10)
    assert_type(pending, list[OutboxMessage])
    assert_type(pending[0].status, OutboxStatus)
    assert_type(await storage.mark_published([m.message_id for m in pending]), None)
    assert_type(await storage.mark_failed("m-1", "broker down"), OutboxStatus)
    assert_type(await storage.requeue(["m-1"]), int)
    assert_type(await storage.get_dead(), list[OutboxMessage])
    assert_type(await storage.stats(), OutboxStats)
    await storage.save_messages([event_for_outbox()])  # type: ignore[list-item]
    port: IOutboxStorage = storage
    assert_type(await port.get_pending(), list[OutboxMessage])

    relay = OutboxRelay(engine, ConsolePublisher(), batch_size=10)
    assert_type(await relay.run_once(), int)
    assert_type(relay.counters, RelayCounters)
    assert_type(await relay.stats(), OutboxStats)
    OutboxRelay(engine, object())  # type: ignore[arg-type]


# -- specifications -------------------------------------------------------------------------


def specifications(order: Order) -> None:
    builder = SpecificationBuilder().where("status", "eq", "pending").or_where("total", ">", 10)
    assert_type(builder, SpecificationBuilder)
    spec = builder.build()
    assert_type(spec, Specification)
    assert_type(spec & spec, Specification)
    assert_type(spec | spec, Specification)
    assert_type(~spec, Specification)
    assert_type(spec.is_satisfied_by(order), bool)
    assert_type(spec.to_dict(), dict[str, Any])
    assert_type(Specification.from_dict(spec.to_dict()), Specification)
    registry = build_default_registry()
    assert_type(registry, OperatorRegistry)
    options = QueryOptions().with_specification(spec, registry=registry).with_pagination(limit=5)
    assert_type(options, QueryOptions)
    assert_type(options.apply([order]), list[Order])


# -- in-memory adapters ---------------------------------------------------------------------


async def in_memory(order: Order) -> None:
    repo = InMemoryRepository[Order, str](Order)
    async with InMemoryUnitOfWork(InMemoryStore()) as uow:
        assert_type(uow, InMemoryUnitOfWork)
        assert_type(await repo.get("o-1", uow=uow), Order | None)
        assert_type(await repo.add(order, uow=uow), Order)
        assert_type(await repo.list_all(uow=uow), list[Order])
        assert_type(await (await repo.search(uow=uow)), list[Order])
        async for found in (await repo.search(uow=uow)).stream():
            assert_type(found, Order)
    events = InMemoryEventStore()
    assert_type(await events.get_all(), list[StoredEvent])
    assert_type(await events.get_events("o-1"), list[StoredEvent])
    messages = InMemoryOutboxStorage()
    assert_type(await messages.get_pending(limit=10), list[OutboxMessage])
    assert_type(await messages.stats(), OutboxStats)


def errors(exc: OptimisticConcurrencyError) -> None:
    assert_type(exc.expected_version, int | None)
    assert_type(exc.actual_version, int | None)
