"""A runnable tour of the library on an embedded SQLite file (or any database URL).

Run it with ``python -m cqrs_ddd_persistence_sqlalchemy demo``. Importing this module
declares the demonstration's tables on ``Base``; the package never imports it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import ForeignKey, Numeric, String, Table
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import Mapped, mapped_column

from cqrs_ddd_core import AggregateRoot, DomainError, DomainEvent
from cqrs_ddd_persistence_sqlalchemy.core import Base, SQLAlchemyRepository, SQLAlchemyUnitOfWork
from cqrs_ddd_persistence_sqlalchemy.exceptions import OptimisticConcurrencyError
from cqrs_ddd_specifications import QueryOptions, SpecificationBuilder

__all__ = [
    "DEFAULT_URL",
    "DemoCustomer",
    "DemoCustomerModel",
    "DemoOrder",
    "DemoOrderModel",
    "OrderShipped",
    "main",
    "run_demo",
]

DEFAULT_URL = "sqlite+aiosqlite:///cqrs_ddd_demo.db"


class OrderShipped(DomainEvent):
    """The order left the warehouse."""

    carrier: str


class DemoCustomer(AggregateRoot[str]):
    """A customer of the demonstration shop."""

    id: str
    name: str
    email: str


class DemoOrder(AggregateRoot[str]):
    """An order of the demonstration shop."""

    id: str
    customer_id: str
    total: float
    status: str = "pending"

    def ship(self, carrier: str) -> None:
        """Ship a pending order."""
        if self.status != "pending":
            raise DomainError(f"order {self.id} is {self.status}, only pending orders ship")
        self.status = "shipped"
        self.add_event(OrderShipped(carrier=carrier))


class DemoCustomerModel(Base):
    __tablename__ = "demo_customers"

    id: Mapped[str] = mapped_column(String(50), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200), unique=True)


class DemoOrderModel(Base):
    __tablename__ = "demo_orders"

    id: Mapped[str] = mapped_column(String(50), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("demo_customers.id"))
    total: Mapped[float] = mapped_column(Numeric(10, 2))
    status: Mapped[str] = mapped_column(String(50))


async def run_demo(url: str = DEFAULT_URL, out: Callable[[str], None] = print) -> None:
    """Create the tables, run an order's life through the library and print what happens."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            # Only the demo's own tables: metadata.drop_all(tables=...) would also drop
            # every native enum type of the application's models.
            for table in _demo_tables():
                await conn.run_sync(table.drop, checkfirst=True)
            await conn.run_sync(Base.metadata.create_all)
        session_factory = async_sessionmaker(engine, expire_on_commit=False)
        customers = SQLAlchemyRepository(entity_cls=DemoCustomer, db_model_cls=DemoCustomerModel)
        orders = SQLAlchemyRepository(entity_cls=DemoOrder, db_model_cls=DemoOrderModel)
        out(f"database: {engine.url.render_as_string(hide_password=True)}")

        out("\n1. Create a customer and 12 orders in one unit of work (one transaction)")
        async with SQLAlchemyUnitOfWork(session_factory) as uow:
            await customers.add(
                DemoCustomer(id="cust-1", name="Ada", email="ada@example.com"), uow=uow
            )
            for i in range(1, 13):
                order = DemoOrder(id=f"order-{i:02d}", customer_id="cust-1", total=12.5 * i)
                await orders.add(order, uow=uow)
        out("   committed: version of each new order is now 1")

        out("\n2. Load an order, ship it, save it: the version moves to 2")
        async with SQLAlchemyUnitOfWork(session_factory) as uow:
            loaded = await orders.get("order-03", uow=uow)
            assert loaded is not None
            order = loaded
            order.ship(carrier="DHL")
            await orders.add(order, uow=uow)
            events = order.pull_domain_events()
        out(f"   {order.id}: status={order.status} version={order.version}")
        out(f"   domain events: {[f'{e.event_type}(carrier={e.carrier})' for e in events]}")  # type: ignore[attr-defined]

        out("\n3. Search with a specification, compiled to SQL, one page of 3")
        spec = (
            SpecificationBuilder().where("status", "eq", "pending").where("total", ">", 50).build()
        )
        options = (
            QueryOptions()
            .with_specification(spec)
            .with_ordering("-total")
            .with_pagination(limit=3, offset=0)
        )
        async with SQLAlchemyUnitOfWork(session_factory) as uow:
            page = await (await orders.search(options, uow=uow))
        out(f"   specification: {spec.to_dict()}")
        for found in page:
            out(f"   {found.id}  total={found.total:7.2f}  status={found.status}")

        out("\n4. Two writers change the same order: the second one is refused")
        async with SQLAlchemyUnitOfWork(session_factory) as uow:
            first = await orders.get("order-05", uow=uow)
        async with SQLAlchemyUnitOfWork(session_factory) as uow:
            second = await orders.get("order-05", uow=uow)
        assert first is not None
        assert second is not None
        async with SQLAlchemyUnitOfWork(session_factory) as uow:
            first.total = 1.0
            await orders.add(first, uow=uow)
        try:
            async with SQLAlchemyUnitOfWork(session_factory) as uow:
                second.total = 2.0
                await orders.add(second, uow=uow)
        except OptimisticConcurrencyError as exc:
            out(f"   OptimisticConcurrencyError: {exc}")

        async with SQLAlchemyUnitOfWork(session_factory) as uow:
            everything = await orders.list_all(uow=uow)
        shipped = sum(1 for o in everything if o.status == "shipped")
        out(f"\nSummary: {len(everything)} orders stored, {shipped} shipped, 1 conflict caught.")
    finally:
        await engine.dispose()


def _demo_tables() -> list[Table]:
    return [Base.metadata.tables["demo_orders"], Base.metadata.tables["demo_customers"]]


def main(url: str = DEFAULT_URL) -> None:
    """Run the demonstration (blocking)."""
    asyncio.run(run_demo(url))
