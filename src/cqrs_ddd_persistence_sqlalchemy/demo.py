"""A runnable tour of the library on an embedded SQLite file (or any database URL).

Run it with ``python -m cqrs_ddd_persistence_sqlalchemy demo`` or ``cqrs-ddd demo``.
An order goes through its life (placed, paid, shipped) with every change saved by one
unit of work together with its event (event store) and its message (outbox); then a
stale write is refused, the outbox is relayed to the console and the order is rebuilt
from its events. Importing this module declares the demo's tables on ``Base``; the
package never imports it.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

from sqlalchemy import ForeignKey, Numeric, String, Table, delete, func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Mapped, mapped_column

from cqrs_ddd_core import AggregateRoot, DomainError, DomainEvent, EntityNotFoundError
from cqrs_ddd_core.ports.event_store import StoredEvent
from cqrs_ddd_core.ports.outbox import OutboxMessage
from cqrs_ddd_persistence_sqlalchemy._version import __version__
from cqrs_ddd_persistence_sqlalchemy.core import (
    Base,
    SQLAlchemyEventStore,
    SQLAlchemyOutboxStorage,
    SQLAlchemyRepository,
    SQLAlchemyUnitOfWork,
)
from cqrs_ddd_persistence_sqlalchemy.core.relay import OutboxRelay
from cqrs_ddd_persistence_sqlalchemy.exceptions import OptimisticConcurrencyError
from cqrs_ddd_persistence_sqlalchemy.publishers import ConsolePublisher
from cqrs_ddd_specifications import QueryOptions, SpecificationBuilder

__all__ = [
    "DEFAULT_URL",
    "DemoCustomer",
    "DemoCustomerModel",
    "DemoOrder",
    "DemoOrderModel",
    "DemoRefusedError",
    "OrderCancelled",
    "OrderPaid",
    "OrderPlaced",
    "OrderShipped",
    "main",
    "run_demo",
]

#: An SQLite file in the current directory.
DEFAULT_URL = "sqlite+aiosqlite:///cqrs_ddd_demo.db"


class DemoRefusedError(RuntimeError):
    """The database holds events or outbox messages that are not the demo's.

    The demo relays the whole outbox to the console, so it runs only where the
    event store and the outbox hold nothing but its own rows.
    """


# -- the domain ----------------------------------------------------------------------------


class OrderPlaced(DomainEvent):
    """A customer placed an order."""

    customer_id: str
    total: float


class OrderPaid(DomainEvent):
    """The order was paid."""

    amount: float


class OrderShipped(DomainEvent):
    """The order left the warehouse."""

    carrier: str


class OrderCancelled(DomainEvent):
    """The order was cancelled before shipping."""

    reason: str


_EVENT_TYPES: dict[str, type[DomainEvent]] = {
    cls.__name__: cls for cls in (OrderPlaced, OrderPaid, OrderShipped, OrderCancelled)
}


class DemoCustomer(AggregateRoot[str]):
    """A customer of the demonstration shop (stored as state, without events)."""

    name: str
    email: str


class DemoOrder(AggregateRoot[str]):
    """An order of the demonstration shop.

    Each command checks its rule, records an event and applies it with the same
    ``on_*`` handler that :meth:`AggregateRoot.apply` calls when the order is rebuilt
    from its stored events, so both ways give the same state.
    """

    customer_id: str = ""
    total: float = 0.0
    status: str = "new"
    carrier: str | None = None

    @classmethod
    def place(cls, order_id: str, customer_id: str, total: float) -> Self:
        """Place a new order."""
        order = cls(id=order_id)
        event = OrderPlaced(customer_id=customer_id, total=total)
        order.add_event(event)
        order.on_order_placed(event)
        return order

    def pay(self) -> None:
        """Pay a placed order."""
        self._require("placed", "pay")
        event = OrderPaid(amount=self.total)
        self.add_event(event)
        self.on_order_paid(event)

    def ship(self, carrier: str) -> None:
        """Ship a paid order."""
        self._require("paid", "ship")
        event = OrderShipped(carrier=carrier)
        self.add_event(event)
        self.on_order_shipped(event)

    def cancel(self, reason: str) -> None:
        """Cancel an order that has not been paid."""
        self._require("placed", "cancel")
        event = OrderCancelled(reason=reason)
        self.add_event(event)
        self.on_order_cancelled(event)

    def _require(self, status: str, action: str) -> None:
        if self.status != status:
            raise DomainError(f"cannot {action} order {self.id}: it is {self.status}")

    def on_order_placed(self, event: OrderPlaced) -> None:
        self.customer_id, self.total, self.status = event.customer_id, event.total, "placed"

    def on_order_paid(self, event: OrderPaid) -> None:
        self.status = "paid"

    def on_order_shipped(self, event: OrderShipped) -> None:
        self.status, self.carrier = "shipped", event.carrier

    def on_order_cancelled(self, event: OrderCancelled) -> None:
        self.status = "cancelled"


# -- the tables ----------------------------------------------------------------------------


class DemoCustomerModel(Base):
    __tablename__ = "demo_customers"

    id: Mapped[str] = mapped_column(String(50), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200), unique=True)


class DemoOrderModel(Base):
    __tablename__ = "demo_orders"

    id: Mapped[str] = mapped_column(String(50), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("demo_customers.id"))
    total: Mapped[float] = mapped_column(Numeric(10, 2, asdecimal=False))
    status: Mapped[str] = mapped_column(String(20))
    carrier: Mapped[str | None] = mapped_column(String(50))


_AGGREGATE_TYPES = (DemoCustomer.__name__, DemoOrder.__name__)


# -- events as the event store and the outbox keep them -------------------------------------


def _own_fields(event: DomainEvent) -> dict[str, Any]:
    """The fields a subclass adds to ``DomainEvent``, as JSON values."""
    return event.model_dump(mode="json", exclude=set(DomainEvent.model_fields))


def _stored_event(event: DomainEvent) -> StoredEvent:
    if event.version is None or event.aggregate_type is None:
        raise ValueError(f"{event.event_type} was not recorded by an aggregate")
    return StoredEvent(
        event_id=event.event_id,
        event_type=event.event_type,
        aggregate_id=str(event.aggregate_id),
        aggregate_type=event.aggregate_type,
        version=event.version,
        payload=_own_fields(event),
        occurred_at=event.occurred_at,
    )


def _outbox_message(event: DomainEvent) -> OutboxMessage:
    # The message id is the event id, so consumers can deduplicate by either.
    # Messages of one order share an ordering key: they are published in order.
    return OutboxMessage(
        message_id=event.event_id,
        event_type=event.event_type,
        payload={"order_id": event.aggregate_id, **_own_fields(event)},
        created_at=event.occurred_at,
        ordering_key=str(event.aggregate_id),
    )


def _domain_event(stored: StoredEvent) -> DomainEvent:
    return _EVENT_TYPES[stored.event_type](
        **stored.payload,
        event_id=stored.event_id,
        occurred_at=stored.occurred_at,
        aggregate_id=stored.aggregate_id,
        aggregate_type=stored.aggregate_type,
        version=stored.version,
    )


# -- the application's persistence --------------------------------------------------------


class _Shop:
    """The repositories and stores a command handler of the shop would use."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.customers = SQLAlchemyRepository[DemoCustomer, str](
            entity_cls=DemoCustomer, db_model_cls=DemoCustomerModel
        )
        self.orders = SQLAlchemyRepository[DemoOrder, str](
            entity_cls=DemoOrder, db_model_cls=DemoOrderModel
        )
        self.events = SQLAlchemyEventStore()
        self.outbox = SQLAlchemyOutboxStorage()

    def uow(self) -> SQLAlchemyUnitOfWork:
        return SQLAlchemyUnitOfWork(self.sessions)

    async def save(
        self, orders: Sequence[DemoOrder], uow: SQLAlchemyUnitOfWork
    ) -> list[StoredEvent]:
        """Save orders with their new events and messages, in the unit of work's transaction.

        Returns the events as stored, with their positions.
        """
        events = [event for order in orders for event in order.pull_domain_events()]
        for order in orders:
            # Raises OptimisticConcurrencyError if the order changed since it was loaded.
            await self.orders.add(order, uow=uow)
        # The stream's unique (aggregate_id, version) would refuse a stale write too.
        stored = await self.events.append_batch([_stored_event(e) for e in events], uow=uow)
        await self.outbox.save_messages([_outbox_message(e) for e in events], uow=uow)
        return stored

    async def change(
        self, order_id: str, command: Callable[[DemoOrder], None]
    ) -> tuple[DemoOrder, list[StoredEvent]]:
        """A command handler: load the order, run the command, save it with its events."""
        async with self.uow() as uow:
            order = await self.orders.get(order_id, uow=uow)
            if order is None:
                raise EntityNotFoundError(f"no order {order_id}")
            command(order)
            return order, await self.save([order], uow)

    async def rebuild(self, order_id: str) -> tuple[DemoOrder, list[StoredEvent]]:
        """Rebuild an order from its events alone."""
        async with self.uow() as uow:
            history = await self.events.get_events(order_id, uow=uow)
        order = DemoOrder(id=order_id)
        for stored in history:
            order.apply(_domain_event(stored))
        return order, history


# -- the tour --------------------------------------------------------------------------------

_Out = Callable[[str], None]


async def run_demo(url: str = DEFAULT_URL, out: Callable[[str], None] = print) -> None:
    """Run the tour on the database at ``url``, writing what happens with ``out``.

    Raises:
        DemoRefusedError: the database's event store or outbox holds other rows.
    """
    engine = create_async_engine(url)
    try:
        out(f"cqrs-ddd-persistence-sqlalchemy {__version__}: a tour on {_describe(engine.url)}")
        out("(each run starts over: the demo replaces its own tables and rows, nothing else)")
        out("\n1. Create the tables")
        await _prepare(engine)
        out("   events, outbox: the library's event store and outbox")
        out("   demo_customers, demo_orders: the demo's aggregates")
        shop = _Shop(engine)
        await _place_pay_ship(shop, out)
        await _place_more_and_search(shop, out)
        await _refuse_a_stale_write(shop, out)
        await _relay(shop, engine, out)
        await _rebuild(shop, out)
        await _summary(shop, out)
    finally:
        await engine.dispose()


async def _place_pay_ship(shop: _Shop, out: _Out) -> None:
    out("\n2. Place an order: one unit of work saves the order, its event and its message")
    async with shop.uow() as uow:
        customer = DemoCustomer(id="cust-1", name="Ada Lovelace", email="ada@example.com")
        await shop.customers.add(customer, uow=uow)
        order = DemoOrder.place("order-1", customer_id=customer.id, total=42.50)
        (placed,) = await shop.save([order], uow)
    out(f"   customer {customer.id} ({customer.name}) saved at version {customer.version}")
    out(f"   {order.id} placed: total {order.total:.2f}, version {order.version}")
    out(
        f"   event {placed.event_type} appended to stream {placed.aggregate_id} "
        f"at version {placed.version}, position {placed.position}"
    )
    out(f"   outbox message {placed.event_type} saved, pending")
    out("   one commit: the four rows are stored together or not at all")

    out("\n3. Pay and ship it: load, change, save, one unit of work each")
    order, (paid,) = await shop.change(order.id, DemoOrder.pay)
    out(f"   {order.id} paid:    {_saved(order, paid)}")
    order, (shipped,) = await shop.change(order.id, lambda o: o.ship("DHL"))
    out(f"   {order.id} shipped: {_saved(order, shipped)}")


def _saved(order: DemoOrder, event: StoredEvent) -> str:
    return f"version {order.version}, event {event.event_type} at position {event.position}"


async def _place_more_and_search(shop: _Shop, out: _Out) -> None:
    out("\n4. Place five more orders in one unit of work, then search them in SQL")
    totals = (18.00, 75.50, 120.00, 64.25, 33.90)
    orders = [
        DemoOrder.place(f"order-{n}", customer_id="cust-1", total=total)
        for n, total in enumerate(totals, start=2)
    ]
    async with shop.uow() as uow:
        await shop.save(orders, uow)
    out(f"   order-2 to order-6 placed, totals {', '.join(f'{t:.2f}' for t in totals)}")
    spec = SpecificationBuilder().where("status", "eq", "placed").where("total", ">", 50).build()
    options = (
        QueryOptions().with_specification(spec).with_ordering("-total").with_pagination(limit=2)
    )
    async with shop.uow() as uow:
        page = await (await shop.orders.search(options, uow=uow))
    out("   status = placed and total > 50, highest total first, first page of 2:")
    for found in page:
        out(f"   {found.id}  total {found.total:6.2f}  {found.status}")


async def _refuse_a_stale_write(shop: _Shop, out: _Out) -> None:
    out("\n5. Two writers change one order: the stale write is refused")
    async with shop.uow() as uow:
        writer_a = await shop.orders.get("order-2", uow=uow)
    async with shop.uow() as uow:
        writer_b = await shop.orders.get("order-2", uow=uow)
    assert writer_a is not None
    assert writer_b is not None
    out(f"   writers A and B both load order-2 at version {writer_b.version}")
    async with shop.uow() as uow:
        writer_a.pay()
        await shop.save([writer_a], uow)
    out(f"   A pays it: committed, version {writer_a.version}")
    try:
        async with shop.uow() as uow:
            writer_b.cancel("changed my mind")
            await shop.save([writer_b], uow)
    except OptimisticConcurrencyError as exc:
        out(f"   B cancels it, based on version {exc.expected_version}: OptimisticConcurrencyError")
        out(f"     {exc}")
    else:
        raise AssertionError("the stale write was accepted")
    current, history = await shop.rebuild("order-2")
    out(
        f"   B's unit of work rolled back: order-2 is {current.status}, "
        f"its events are {', '.join(e.event_type for e in history)}"
    )
    out("   (a real handler would reload the order and decide again, or report the conflict)")


async def _relay(shop: _Shop, engine: AsyncEngine, out: _Out) -> None:
    out("\n6. Relay the outbox to the console publisher")
    async with shop.uow() as uow:
        stats = await shop.outbox.stats(uow=uow)
    out(f"   {stats.pending} messages pending; those of one order go out one at a time, in order")
    out("   the console publisher prints each message as one JSON line:")
    # Into a buffer, to show its lines indented.
    printed = io.StringIO()
    relay = OutboxRelay(engine, ConsolePublisher(printed))
    while await relay.run_once():
        pass
    for line in printed.getvalue().splitlines():
        out(f"   {line}")
    out(f"   published {relay.counters.published} messages in {relay.counters.rounds} rounds")


async def _rebuild(shop: _Shop, out: _Out) -> None:
    out("\n7. Rebuild order-1 from its events alone")
    rebuilt, history = await shop.rebuild("order-1")
    for stored in history:
        fields = " ".join(f"{key}={value}" for key, value in sorted(stored.payload.items()))
        where = f"position {stored.position}  version {stored.version}"
        out(f"   {where}  {stored.event_type:13} {fields}")
    async with shop.uow() as uow:
        saved = await shop.orders.get("order-1", uow=uow)
    same = saved is not None and rebuilt.model_dump() == saved.model_dump()
    out(
        f"   rebuilt: {rebuilt.status}, total {rebuilt.total:.2f}, carrier {rebuilt.carrier}, "
        f"version {rebuilt.version}: {'the same as' if same else 'NOT the same as'} the stored row"
    )


async def _summary(shop: _Shop, out: _Out) -> None:
    outbox = Base.metadata.tables["outbox"]
    async with shop.uow() as uow:
        orders = await shop.orders.list_all(uow=uow)
        events = await shop.events.get_all(uow=uow)
        states = await uow.session.execute(
            select(outbox.c.status, func.count()).group_by(outbox.c.status)
        )
        messages = {str(status): count for status, count in states}
    by_status: dict[str, int] = {}
    for order in orders:
        by_status[order.status] = by_status.get(order.status, 0) + 1
    out("\nSummary")
    out(f"   orders     {len(orders)} stored: {_counts(by_status)}")
    out(
        f"   events     {len(events)} stored, positions "
        f"{events[0].position} to {events[-1].position}"
    )
    out(f"   outbox     {sum(messages.values())} messages: {_counts(messages)}")
    out("   conflicts  1 caught: OptimisticConcurrencyError")
    out("\nThe rows stay in the database for you to look at.")


def _counts(by_name: dict[str, int]) -> str:
    return ", ".join(f"{count} {name}" for name, count in sorted(by_name.items()))


def _describe(url: URL) -> str:
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return f"SQLite file {Path(url.database).resolve()}"
    return url.render_as_string(hide_password=True)


def _demo_tables() -> list[Table]:
    # Referencing tables first, so they can be dropped in this order.
    return [Base.metadata.tables["demo_orders"], Base.metadata.tables["demo_customers"]]


async def _prepare(engine: AsyncEngine) -> None:
    """Create the tables and remove what an earlier run left, and nothing else.

    Raises:
        DemoRefusedError: the event store or the outbox holds rows of something else.
    """
    events, outbox = Base.metadata.tables["events"], Base.metadata.tables["outbox"]
    demo_events = events.c.aggregate_type.in_(_AGGREGATE_TYPES)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all, tables=[events, outbox])
        others = await conn.scalar(select(func.count()).select_from(events).where(~demo_events))
        other_messages = await conn.scalar(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.event_id.not_in(select(events.c.event_id).where(demo_events)))
        )
        if others or other_messages:
            raise DemoRefusedError(
                f"the event store and outbox of {_describe(engine.url)} hold rows that are "
                f"not the demo's ({others} events, {other_messages} outbox messages); the demo "
                "relays the whole outbox to the console, so give it a database of its own"
            )
        await conn.execute(
            delete(outbox).where(
                outbox.c.event_id.in_(select(events.c.event_id).where(demo_events))
            )
        )
        await conn.execute(delete(events).where(demo_events))
        # Dropped one by one: metadata.drop_all(tables=...) would also drop every
        # native enum type of the application's models.
        for table in _demo_tables():
            await conn.run_sync(table.drop, checkfirst=True)
        await conn.run_sync(Base.metadata.create_all, tables=_demo_tables())


def main(url: str = DEFAULT_URL) -> None:
    """Run the demonstration (blocking)."""
    asyncio.run(run_demo(url))
