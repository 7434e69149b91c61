"""Aggregate roots and domain events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel, ValidationError

from cqrs_ddd_core import AggregateRoot, DomainError, DomainEvent
from cqrs_ddd_core.domain.aggregate import set_version
from cqrs_ddd_core.domain.ids import new_id, uuid7


class OrderPlaced(DomainEvent):
    total: float


class OrderShipped(DomainEvent):
    carrier: str


class Renamed(DomainEvent):
    name: str


class Touched(DomainEvent):
    pass


class Line(BaseModel):
    sku: str


class Order(AggregateRoot[str]):
    id: str
    name: str = ""
    total: float = 0
    status: str = "new"
    carrier: str = ""
    lines: list[Line]
    tags: dict[str, str]

    def on_order_shipped(self, event: OrderShipped) -> None:
        self.status = "shipped"
        self.carrier = event.carrier


def test_a_new_aggregate_has_version_zero_that_domain_code_cannot_set() -> None:
    order = Order(id="o-1")
    assert order.version == 0
    with pytest.raises(ValidationError, match="frozen"):
        order.version = 3  # type: ignore[misc]
    set_version(order, 3)
    assert order.version == 3


def test_collections_without_a_default_start_empty() -> None:
    order = Order(id="o-1")
    assert (order.lines, order.tags) == ([], {})
    other = Order(id="o-2")
    order.lines.append(Line(sku="a"))
    assert other.lines == []


def test_events_are_stamped_pulled_once_and_frozen() -> None:
    order = Order(id="o-1")
    first = order.add_event(OrderPlaced(total=5))
    second = order.add_event(OrderShipped(carrier="DHL"))
    assert (first.aggregate_id, first.aggregate_type, first.version) == ("o-1", "Order", 1)
    assert second.version == 2
    assert first.event_type == "OrderPlaced"
    assert order.domain_events == (first, second)
    assert order.pull_domain_events() == [first, second]
    assert order.pull_domain_events() == []
    with pytest.raises(ValidationError):
        first.total = 3  # type: ignore[misc]


def test_event_defaults() -> None:
    event = OrderPlaced(total=1)
    assert event.occurred_at.tzinfo is UTC
    assert abs(event.occurred_at - datetime.now(UTC)) < timedelta(seconds=5)
    assert event.event_id != OrderPlaced(total=1).event_id
    eastern = timezone(timedelta(hours=-5))
    shifted = OrderPlaced(total=1, occurred_at=datetime(2024, 1, 1, 7, tzinfo=eastern))
    assert shifted.occurred_at == datetime(2024, 1, 1, 12, tzinfo=UTC)
    naive = OrderPlaced(total=1, occurred_at=datetime(2024, 1, 1, 7))
    assert naive.occurred_at.tzinfo is UTC
    assert OrderPlaced(total=1, event_type="Custom").event_type == "Custom"
    dumped = event.model_dump()
    assert dumped["event_type"] == "OrderPlaced"
    assert OrderPlaced(**dumped) == event


def test_apply_calls_the_handler_or_copies_matching_fields() -> None:
    order = Order(id="o-1")
    order.apply(OrderPlaced(total=9.5))
    assert (order.total, order.version) == (9.5, 1)
    order.apply(OrderShipped(carrier="UPS", version=5))
    assert (order.status, order.carrier, order.version) == ("shipped", "UPS", 5)
    order.apply(Renamed(name="gift"))
    assert (order.name, order.version) == ("gift", 6)
    assert order.domain_events == ()
    with pytest.raises(DomainError, match="on_touched"):
        order.apply(Touched())


def test_ids_are_time_ordered_uuids() -> None:
    ids = [uuid7() for _ in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(i.version == 7 for i in ids)
    assert len(new_id()) == 36


def test_retry_delays_grow_then_cap_without_overflow() -> None:
    from cqrs_ddd_core.ports.outbox import RetryPolicy

    policy = RetryPolicy(max_attempts=2000, base_delay=1.0, max_delay=60.0, jitter=0.0)
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3, 7, 8)] == [1, 2, 4, 60, 60]
    assert policy.delay(1999).total_seconds() == 60
    assert policy.capped_after() == 7
    jittered = RetryPolicy(base_delay=10, max_delay=10, jitter=0.2).delay(1).total_seconds()
    assert 8 <= jittered <= 12
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
