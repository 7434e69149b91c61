"""The order aggregate and the events it records.

Every command method changes the order and records one event. The stored version of
an aggregate is that of its last event (the library counts versions in events), so
the order's row and its event stream move in step: an order at version 3 has events
1 to 3, and :meth:`Order.from_history` rebuilds it exactly.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from cqrs_ddd_core import AggregateRoot, DomainError, DomainEvent
from cqrs_ddd_core.domain.ids import new_id

__all__ = [
    "EVENT_TYPES",
    "Order",
    "OrderDeleted",
    "OrderPlaced",
    "OrderRevised",
    "OrderShipped",
    "OrderStatus",
]


class OrderStatus(enum.StrEnum):
    """Where an order is in its life."""

    PENDING = "pending"
    SHIPPED = "shipped"
    DELETED = "deleted"  # only ever seen when rebuilding a deleted order from its events


class OrderPlaced(DomainEvent):
    """A customer placed an order."""

    customer_id: str
    total: float


class OrderRevised(DomainEvent):
    """The total of a pending order changed."""

    total: float


class OrderShipped(DomainEvent):
    """The order left the warehouse."""

    carrier: str


class OrderDeleted(DomainEvent):
    """The order was deleted; its events remain."""


#: Event classes by ``event_type``, to turn stored events back into domain events.
EVENT_TYPES: dict[str, type[DomainEvent]] = {
    cls.__name__: cls for cls in (OrderPlaced, OrderRevised, OrderShipped, OrderDeleted)
}


class Order(AggregateRoot[str]):
    """An order of a customer."""

    id: str
    customer_id: str
    total: float
    status: OrderStatus = OrderStatus.PENDING

    @classmethod
    def place(cls, customer_id: str, total: float) -> Order:
        """Place a new order (not stored yet: its version is 0)."""
        order = cls(id=new_id(), customer_id=customer_id, total=total)
        order.add_event(OrderPlaced(customer_id=customer_id, total=total))
        return order

    def revise(self, total: float) -> None:
        """Change the total of a pending order."""
        self._require(OrderStatus.PENDING, "revised")
        self.total = total
        self.add_event(OrderRevised(total=total))

    def ship(self, carrier: str) -> None:
        """Ship a pending order."""
        self._require(OrderStatus.PENDING, "shipped")
        self.status = OrderStatus.SHIPPED
        self.add_event(OrderShipped(carrier=carrier))

    def delete(self) -> None:
        """Record that the order is deleted (the repository removes its row)."""
        self.add_event(OrderDeleted())

    def _require(self, status: OrderStatus, action: str) -> None:
        if self.status is not status:
            raise DomainError(
                f"order {self.id} is {self.status.value}; only {status.value} orders can be "
                f"{action}"
            )

    # -- event sourcing --------------------------------------------------------------

    @classmethod
    def from_history(cls, events: Iterable[DomainEvent]) -> Order:
        """Rebuild an order by replaying its events, oldest first.

        Raises:
            DomainError: the history is empty or does not start with ``OrderPlaced``.
        """
        history = list(events)
        placed = history[0] if history else None
        if not isinstance(placed, OrderPlaced):
            raise DomainError("an order's history must start with OrderPlaced")
        order = cls(
            id=placed.aggregate_id,
            customer_id=placed.customer_id,
            total=placed.total,
            version=placed.version or 1,
        )
        for event in history[1:]:
            # OrderRevised needs no handler: apply() copies its ``total`` onto the order.
            order.apply(event)
        return order

    def on_order_shipped(self, event: OrderShipped) -> None:
        """Replay ``OrderShipped``."""
        self.status = OrderStatus.SHIPPED

    def on_order_deleted(self, event: OrderDeleted) -> None:
        """Replay ``OrderDeleted``."""
        self.status = OrderStatus.DELETED
