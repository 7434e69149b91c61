"""The examples of sections 1, 2 and 5 of the specification, run as written.

The domain and model classes of the examples (``Order``, ``OrderModel`` with its
foreign key to ``customers``) live in ``sample_domain``; each test body is the
example's code with only the set-up it leaves implicit (a customer row for the
foreign key, a session factory).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import BaseModel
from sample_domain import Customer, CustomerModel, Order, OrderModel
from sqlalchemy import JSON, Float, ForeignKey, Integer, Numeric, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Mapped, mapped_column

from cqrs_ddd_core.ports.unit_of_work import UnitOfWork, UnitOfWorkHooks
from cqrs_ddd_persistence_sqlalchemy.core import Base, SQLAlchemyRepository
from cqrs_ddd_persistence_sqlalchemy.core.uow import SQLAlchemyUnitOfWork
from cqrs_ddd_persistence_sqlalchemy.exceptions import OptimisticConcurrencyError
from cqrs_ddd_specifications import QueryOptions, SpecificationBuilder, build_default_registry

logger = logging.getLogger("spec-examples")


async def _customer(session_factory: async_sessionmaker[AsyncSession], cid: str) -> None:
    repo = SQLAlchemyRepository(entity_cls=Customer, db_model_cls=CustomerModel)
    async with SQLAlchemyUnitOfWork(session_factory=session_factory) as uow:
        await repo.add(Customer(id=cid, name=cid, email=f"{cid}@example.com"), uow=uow)


async def test_section_1_usage(session_factory: async_sessionmaker[AsyncSession]) -> None:
    await _customer(session_factory, "customer-456")

    # Repository setup
    order_repo = SQLAlchemyRepository(
        entity_cls=Order,
        db_model_cls=OrderModel,
    )

    # Usage with Unit of Work
    async with SQLAlchemyUnitOfWork(session_factory=session_factory) as uow:
        # Create new order
        order = Order(
            id="order-123",
            customer_id="customer-456",
            total=99.99,
            status="pending",
        )
        await order_repo.add(order, uow=uow)
        await uow.commit()

    # Retrieve order
    async with SQLAlchemyUnitOfWork(session_factory=session_factory) as uow:
        order = await order_repo.get("order-123", uow=uow)
        assert order.status == "pending"
    assert order.total == 99.99
    assert order.version == 1


async def test_section_1_search_with_specifications(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await _customer(session_factory, "c")
    order_repo = SQLAlchemyRepository(entity_cls=Order, db_model_cls=OrderModel)
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        for i in range(30):
            status = "pending" if i % 2 else "shipped"
            await order_repo.add(
                Order(id=f"o-{i:02d}", customer_id="c", total=i, status=status), uow
            )
    processed: list[Order] = []

    def process(order: Order) -> None:
        processed.append(order)

    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        # Build specification
        registry = build_default_registry()
        builder = SpecificationBuilder()
        spec = builder.where("status", "eq", "pending").build()

        # Search with QueryOptions
        options = (
            QueryOptions()
            .with_specification(spec, registry=registry)
            .with_ordering("-created_at")
            .with_pagination(limit=20, offset=0)
        )

        result = await order_repo.search(options=options, uow=uow)
        orders = await result  # List[Order]

        # Or stream for large datasets
        async for order in (await order_repo.search(options=options, uow=uow)).stream():
            process(order)

    assert len(orders) == 15
    assert all(o.status == "pending" for o in orders)
    assert [o.id for o in processed] == [o.id for o in orders]


async def test_section_1_model_mapping() -> None:
    repo = SQLAlchemyRepository(entity_cls=Order, db_model_cls=OrderModel)
    entity = Order(id="o", customer_id="c", total=1.5, status="new")
    # Automatic conversion
    model = repo.to_model(entity)  # Order → OrderModel
    entity = repo.from_model(model)  # OrderModel → Order
    assert isinstance(model, OrderModel)
    assert entity == Order(id="o", customer_id="c", total=1.5, status="new")


class Item(BaseModel):
    sku: str
    quantity: int


class RichOrder(Order):
    items: list[Item]


class RichOrderModel(Base):
    __tablename__ = "rich_orders"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String, ForeignKey("customers.id"))
    total: Mapped[float] = mapped_column(Numeric(10, 2))
    status: Mapped[str] = mapped_column(String(50))
    items: Mapped[list[Any]] = mapped_column(JSON)
    total_items: Mapped[int] = mapped_column(Integer)
    discounted_total: Mapped[float] = mapped_column(Float)


async def test_sections_1_and_5_custom_mapping(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    class OrderRepository(SQLAlchemyRepository[RichOrder, str]):
        def to_model(self, entity: RichOrder) -> RichOrderModel:
            """Custom mapping with computed fields."""
            model = super().to_model(entity)
            # Custom mapping logic
            model.items = [item.model_dump() for item in entity.items]
            # Add computed fields
            model.total_items = len(entity.items)
            model.discounted_total = entity.total * 0.9  # 10% discount
            return model

        def from_model(self, model: RichOrderModel) -> RichOrder:
            """Custom mapping with derived fields."""
            entity = super().from_model(model)
            # Reconstruct derived fields
            entity._total_items = model.total_items
            return entity

    await _customer(session_factory, "c")
    repo = OrderRepository(entity_cls=RichOrder, db_model_cls=RichOrderModel)
    order = RichOrder(id="r-1", customer_id="c", total=100.0, items=[Item(sku="a", quantity=2)])
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        await repo.add(order, uow=uow)
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        loaded = await repo.get("r-1", uow=uow)
        row = await uow.session.get(RichOrderModel, "r-1")
    assert loaded is not None
    assert row is not None
    assert loaded.items == [Item(sku="a", quantity=2)]
    assert loaded._total_items == 1
    assert (row.total_items, row.discounted_total) == (1, 90.0)


async def test_section_2_self_managed_and_error_handling(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await _customer(session_factory, "c")
    order_repo = SQLAlchemyRepository(entity_cls=Order, db_model_cls=OrderModel)
    payment_repo = SQLAlchemyRepository(entity_cls=Customer, db_model_cls=CustomerModel)
    order = Order(id="o-1", customer_id="c", total=5, status="pending")
    payment = Customer(id="p", name="dup", email="c@example.com")  # duplicate e-mail

    with pytest.raises(IntegrityError):
        async with SQLAlchemyUnitOfWork(session_factory) as uow:
            try:
                await order_repo.add(order, uow=uow)
                await payment_repo.add(payment, uow=uow)
                await uow.commit()  # Both succeed or both fail
            except IntegrityError as e:
                # Automatic rollback on exception
                # Session closed if self-managed
                logger.error(f"Transaction failed: {e}")
                raise
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        assert await order_repo.get("o-1", uow=uow) is None


async def test_section_2_hooks(
    session_factory: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    class LoggingHooks(UnitOfWorkHooks):
        async def pre_commit(self, uow: UnitOfWork) -> None:
            logger.info("About to commit transaction")

        async def post_commit(self, uow: UnitOfWork) -> None:
            logger.info("Transaction committed successfully")

        async def pre_rollback(self, uow: UnitOfWork) -> None:
            logger.warning("Rolling back transaction")

        async def post_rollback(self, uow: UnitOfWork) -> None:
            logger.info("Transaction rolled back")

    await _customer(session_factory, "c")
    order_repo = SQLAlchemyRepository(entity_cls=Order, db_model_cls=OrderModel)
    order = Order(id="o-1", customer_id="c", total=5, status="pending")
    caplog.set_level(logging.INFO, logger="spec-examples")
    # Usage
    async with SQLAlchemyUnitOfWork(session_factory, hooks=LoggingHooks()) as uow:
        await order_repo.add(order, uow=uow)
        await uow.commit()  # Hooks fire automatically
    assert [r.getMessage() for r in caplog.records] == [
        "About to commit transaction",
        "Transaction committed successfully",
    ]


async def test_optimistic_concurrency_example(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await _customer(session_factory, "c")
    order_repo = SQLAlchemyRepository(entity_cls=Order, db_model_cls=OrderModel)
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        await order_repo.add(Order(id="o", customer_id="c", total=1, status="new"), uow)
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        order = await order_repo.get("o", uow=uow)
    async with SQLAlchemyUnitOfWork(session_factory) as other:
        fresher = await order_repo.get("o", uow=other)
        fresher.status = "paid"
        await order_repo.add(fresher, uow=other)

    caught = False
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        order.status = "shipped"
        try:
            await order_repo.add(order, uow=uow)
            await uow.commit()
        except OptimisticConcurrencyError as e:
            caught = True
            # Handle concurrent modification
            logger.warning(f"Concurrent update detected: {e}")
            # Reload and retry
            order = await order_repo.get(order.id, uow=uow)
            order.status = "shipped"
            await order_repo.add(order, uow=uow)
    assert caught
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        final = await order_repo.get("o", uow=uow)
    assert (final.status, final.version) == ("shipped", 3)


# -- the specification's "Testing" section, verbatim ------------------------------------

order_repo = SQLAlchemyRepository(entity_cls=Order, db_model_cls=OrderModel)


@pytest.fixture
async def memory_engine():  # type: ignore[no-untyped-def]
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def memory_uow(memory_engine):  # type: ignore[no-untyped-def]
    session_factory = async_sessionmaker(memory_engine, expire_on_commit=False)
    async with SQLAlchemyUnitOfWork(session_factory=session_factory) as uow:
        yield uow


@pytest.mark.sqlite
async def test_repository_add(memory_uow: SQLAlchemyUnitOfWork) -> None:
    """Test adding entity to repository."""
    uow = memory_uow
    order = Order(id="order-1", customer_id="cust-1", total=99.99)
    await order_repo.add(order, uow=uow)
    await uow.commit()

    # Verify
    loaded = await order_repo.get("order-1", uow=uow)
    assert loaded.id == "order-1"
    assert loaded.total == 99.99
