"""The FastAPI example (examples/fastapi_app) driven over HTTP with httpx, on both backends.

Each test runs the application's lifespan, so the outbox relay runs beside it as it
would under a server, and checks what the database holds directly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi_app import create_app
from fastapi_app.persistence import OrderModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cqrs_ddd_core.ports.event_store import StoredEvent
from cqrs_ddd_core.ports.outbox import OutboxMessage, OutboxStatus
from cqrs_ddd_persistence_sqlalchemy.core import SQLAlchemyEventStore
from cqrs_ddd_persistence_sqlalchemy.core.models import EventModel
from cqrs_ddd_persistence_sqlalchemy.core.models import OutboxMessage as OutboxRow

DEADLINE = 10.0  # seconds; generous for a loaded CI machine


class RecordingPublisher:
    """Keeps what the relay publishes, and lets a test wait for it."""

    def __init__(self) -> None:
        self.messages: list[OutboxMessage] = []
        self._changed = asyncio.Condition()

    async def publish(self, message: OutboxMessage) -> None:
        async with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    async def wait_for(self, count: int) -> list[OutboxMessage]:
        """Wait until ``count`` messages were published; fail after ``DEADLINE``."""
        async with asyncio.timeout(DEADLINE), self._changed:
            await self._changed.wait_for(lambda: len(self.messages) >= count)
        return list(self.messages)


@dataclass
class Service:
    """The running app's client, and sessions on its database for checking what it wrote."""

    client: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]

    async def rows(self) -> dict[str, int]:
        """How many orders, events and outbox messages the database holds."""
        tables = {"orders": OrderModel, "events": EventModel, "outbox": OutboxRow}
        async with self.sessions() as session:
            return {
                name: await session.scalar(select(func.count()).select_from(model)) or 0
                for name, model in tables.items()
            }

    async def place(self, customer_id: str = "c1", total: float = 10.0) -> dict[str, Any]:
        response = await self.client.post(
            "/orders", json={"customer_id": customer_id, "total": total}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


@asynccontextmanager
async def serving(
    db_url: str, publisher: RecordingPublisher
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan running, and a client that calls it in-process."""
    app = create_app(db_url, publisher=publisher)
    # ASGITransport does not run the lifespan; enter it as a server would.
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://orders.test"
        ) as client,
    ):
        yield app, client


@pytest.fixture
async def service(
    db_url: str, session_factory: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Service]:
    # session_factory comes with an engine whose tables exist and are empty.
    async with serving(db_url, RecordingPublisher()) as (_, client):
        yield Service(client, session_factory)


# -- CRUD ----------------------------------------------------------------------------------


async def test_crud_round_trip(service: Service) -> None:
    client = service.client
    created = await service.place("cust-1", 99.99)
    order_id = created["id"]
    assert created == {
        "id": order_id,
        "customer_id": "cust-1",
        "total": 99.99,
        "status": "pending",
        "version": 1,
    }

    fetched = await client.get(f"/orders/{order_id}")
    assert fetched.status_code == 200
    assert fetched.json() == created

    revised = await client.patch(f"/orders/{order_id}", json={"version": 1, "total": 120.5})
    assert revised.status_code == 200, revised.text
    assert revised.json() == {**created, "total": 120.5, "version": 2}
    assert (await client.get(f"/orders/{order_id}")).json() == revised.json()

    deleted = await client.delete(f"/orders/{order_id}")
    assert deleted.status_code == 204
    gone = await client.get(f"/orders/{order_id}")
    assert gone.status_code == 404
    assert await service.rows() == {"orders": 0, "events": 3, "outbox": 3}


async def test_place_answers_with_the_location_of_the_new_order(service: Service) -> None:
    response = await service.client.post("/orders", json={"customer_id": "c", "total": 5})
    assert response.status_code == 201
    location = response.headers["location"]
    assert location == f"http://orders.test/orders/{response.json()['id']}"
    assert (await service.client.get(location)).json() == response.json()


async def test_missing_order_is_404(service: Service) -> None:
    client = service.client
    responses = [
        await client.get("/orders/nope"),
        await client.patch("/orders/nope", json={"version": 1, "total": 1}),
        await client.post("/orders/nope/ship", json={"version": 1, "carrier": "DHL"}),
        await client.delete("/orders/nope"),
        await client.get("/orders/nope/events"),
        await client.get("/orders/nope/replay"),
    ]
    for response in responses:
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "EntityNotFoundError"
        assert "'nope'" in response.json()["detail"]
    assert await service.rows() == {"orders": 0, "events": 0, "outbox": 0}


async def test_stale_version_is_409_and_changes_nothing(service: Service) -> None:
    client = service.client
    order_id = (await service.place(total=10))["id"]
    first = await client.patch(f"/orders/{order_id}", json={"version": 1, "total": 20})
    assert first.status_code == 200

    stale = await client.patch(f"/orders/{order_id}", json={"version": 1, "total": 30})
    assert stale.status_code == 409
    assert stale.json() == {
        "detail": stale.json()["detail"],
        "error": "OptimisticConcurrencyError",
        "expected_version": 1,
        "actual_version": 2,
    }
    assert "version 2" in stale.json()["detail"]
    stale_ship = await client.post(
        f"/orders/{order_id}/ship", json={"version": 1, "carrier": "DHL"}
    )
    assert stale_ship.status_code == 409

    current = (await client.get(f"/orders/{order_id}")).json()
    assert (current["total"], current["status"], current["version"]) == (20, "pending", 2)
    assert await service.rows() == {"orders": 1, "events": 2, "outbox": 2}


async def test_conflict_in_the_event_stream_rolls_back_the_whole_command(
    service: Service,
) -> None:
    # Another writer appended version 2 of the order's stream without touching its row:
    # the row's UPDATE succeeds, the event append fails, and the unit of work must
    # roll the UPDATE back.
    order_id = (await service.place(total=10))["id"]
    async with service.sessions() as session:
        await SQLAlchemyEventStore(session).append(
            StoredEvent(
                event_type="OrderRevised",
                aggregate_id=order_id,
                aggregate_type="Order",
                version=2,
                payload={"total": 11.0},
            )
        )
        await session.commit()

    response = await service.client.patch(f"/orders/{order_id}", json={"version": 1, "total": 99})
    assert response.status_code == 409
    assert response.json()["error"] == "OptimisticConcurrencyError"

    current = (await service.client.get(f"/orders/{order_id}")).json()
    assert (current["total"], current["version"]) == (10, 1)
    assert await service.rows() == {"orders": 1, "events": 2, "outbox": 1}


async def test_concurrent_revisions_one_wins(service: Service) -> None:
    client = service.client
    order_id = (await service.place(total=10))["id"]
    responses = await asyncio.gather(
        client.patch(f"/orders/{order_id}", json={"version": 1, "total": 21}),
        client.patch(f"/orders/{order_id}", json={"version": 1, "total": 22}),
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    winner = next(r for r in responses if r.status_code == 200).json()
    assert (await client.get(f"/orders/{order_id}")).json() == winner
    events = (await client.get(f"/orders/{order_id}/events")).json()
    assert [e["version"] for e in events] == [1, 2]
    assert events[1]["payload"] == {"total": winner["total"]}


async def test_domain_rule_violation_is_409(service: Service) -> None:
    client = service.client
    order_id = (await service.place())["id"]
    shipped = await client.post(f"/orders/{order_id}/ship", json={"version": 1, "carrier": "DHL"})
    assert shipped.status_code == 200
    assert shipped.json()["status"] == "shipped"

    again = await client.post(f"/orders/{order_id}/ship", json={"version": 2, "carrier": "UPS"})
    assert again.status_code == 409
    assert again.json()["error"] == "DomainError"
    assert "only pending orders can be shipped" in again.json()["detail"]
    revise = await client.patch(f"/orders/{order_id}", json={"version": 2, "total": 1})
    assert revise.status_code == 409
    assert await service.rows() == {"orders": 1, "events": 2, "outbox": 2}


@pytest.mark.parametrize(
    "body",
    [
        {"customer_id": "c1", "total": -5},
        {"customer_id": "", "total": 5},
        {"total": 5},
        {"customer_id": "c1", "total": "lots"},
        {"customer_id": "c1", "total": 10.005},
        {"customer_id": "c1", "total": 1e10},
    ],
    ids=[
        "negative-total",
        "empty-customer",
        "no-customer",
        "text-total",
        "fraction-of-a-cent",
        "too-large",
    ],
)
async def test_invalid_order_is_422_and_writes_nothing(
    service: Service, body: dict[str, Any]
) -> None:
    response = await service.client.post("/orders", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"
    assert await service.rows() == {"orders": 0, "events": 0, "outbox": 0}


# -- search ----------------------------------------------------------------------------------


async def search(service: Service, **params: Any) -> httpx.Response:
    if not isinstance(params.get("spec", ""), str):
        params["spec"] = json.dumps(params["spec"])
    return await service.client.get("/orders", params=params)


def summary(response: httpx.Response) -> list[tuple[str, float, str]]:
    assert response.status_code == 200, response.text
    return [(o["customer_id"], o["total"], o["status"]) for o in response.json()["items"]]


async def test_search_filters_orders_and_pages_in_sql(service: Service) -> None:
    for customer_id, total in [("c1", 10), ("c1", 25), ("c1", 40), ("c1", 55), ("c1", 70)]:
        await service.place(customer_id, total)
    for total in (30, 60):
        await service.place("c2", total)
    ship = await search(service, spec={"field": "total", "op": "eq", "value": 40})
    [forty] = ship.json()["items"]
    shipped = await service.client.post(
        f"/orders/{forty['id']}/ship", json={"version": 1, "carrier": "DHL"}
    )
    assert shipped.status_code == 200

    c1_pending = {
        "and": [
            {"field": "customer_id", "op": "eq", "value": "c1"},
            {"field": "status", "op": "=", "value": "pending"},
        ]
    }
    page = await search(service, spec=c1_pending, order_by="-total", limit=2, offset=1)
    assert summary(page) == [("c1", 55, "pending"), ("c1", 25, "pending")]
    assert (page.json()["limit"], page.json()["offset"]) == (2, 1)
    last = await search(service, spec=c1_pending, order_by="-total", limit=2, offset=3)
    assert summary(last) == [("c1", 10, "pending")]
    past_the_end = await search(service, spec=c1_pending, limit=2, offset=4)
    assert summary(past_the_end) == []

    big_or_c2 = {
        "or": [
            {"field": "total", "op": ">", "value": 50},
            {"field": "customer_id", "op": "in", "value": ["c2"]},
        ]
    }
    two_keys = await search(service, spec=big_or_c2, order_by=["customer_id", "-total"])
    assert summary(two_keys) == [
        ("c1", 70, "pending"),
        ("c1", 55, "pending"),
        ("c2", 60, "pending"),
        ("c2", 30, "pending"),
    ]

    not_pending = await search(
        service, spec={"not": {"field": "status", "op": "eq", "value": "pending"}}
    )
    assert summary(not_pending) == [("c1", 40, "shipped")]

    everything = await search(service, order_by="total", limit=3)
    assert summary(everything) == [
        ("c1", 10, "pending"),
        ("c1", 25, "pending"),
        ("c2", 30, "pending"),
    ]


async def test_search_value_is_bound_not_sql(service: Service) -> None:
    await service.place("c1", 10)
    injection = {"field": "customer_id", "op": "eq", "value": "x' OR '1'='1"}
    assert summary(await search(service, spec=injection)) == []
    assert await service.rows() == {"orders": 1, "events": 1, "outbox": 1}


BAD_SEARCHES: list[tuple[str, dict[str, Any], int, str | None, str]] = [
    # (id, query parameters, status, error class (400s), text the message must contain)
    ("malformed-json", {"spec": '{"field": "status",'}, 422, None, "Invalid JSON"),
    ("not-an-object", {"spec": '["status", "eq", "x"]'}, 422, None, "valid dictionary"),
    (
        "unknown-field",
        {"spec": {"field": "colour", "op": "eq", "value": "red"}},
        400,
        "UnknownFieldError",
        "'colour'",
    ),
    (
        "unknown-operator",
        {"spec": {"field": "status", "op": "resembles", "value": "x"}},
        400,
        "MalformedSpecificationError",
        "unknown operator 'resembles'",
    ),
    (
        "sql-in-field",
        {"spec": {"field": "status = 'x' OR 1=1 --", "op": "eq", "value": "x"}},
        400,
        "MalformedSpecificationError",
        "invalid field",
    ),
    (
        "drop-table-in-field",
        {"spec": {"field": "status; DROP TABLE shop_orders", "op": "is_null"}},
        400,
        "MalformedSpecificationError",
        "invalid field",
    ),
    (
        "operand-of-wrong-type",
        {"spec": {"field": "total", "op": "gt", "value": "lots"}},
        400,
        "InvalidOperandError",
        "'lots'",
    ),
    (
        "text-operator-on-number",
        {"spec": {"field": "total", "op": "contains", "value": "1"}},
        400,
        "UnsupportedOperatorError",
        "not a text column",
    ),
    ("empty-and", {"spec": {"and": []}}, 400, "MalformedSpecificationError", "non-empty list"),
    ("unknown-order-field", {"order_by": "colour"}, 400, "UnknownFieldError", "'colour'"),
    (
        "sql-in-order-by",
        {"order_by": "total; DROP TABLE shop_orders"},
        400,
        "InvalidFieldError",
        "invalid field",
    ),
    ("zero-limit", {"limit": 0}, 422, None, "greater than or equal to 1"),
    ("huge-limit", {"limit": 1000}, 422, None, "less than or equal to 100"),
    ("negative-offset", {"offset": -1}, 422, None, "greater than or equal to 0"),
    ("unknown-parameter", {"sort": "total"}, 422, None, "Extra inputs"),
]


@pytest.mark.parametrize(
    ("params", "status", "error", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_SEARCHES],
)
async def test_bad_search_is_a_client_error_naming_the_problem(
    service: Service, params: dict[str, Any], status: int, error: str | None, fragment: str
) -> None:
    order = await service.place()
    before = await service.rows()

    response = await search(service, **params)

    assert response.status_code == status, response.text
    body = response.json()
    if status == 422:  # FastAPI's request validation: where, and what is wrong
        [problem] = body["detail"]
        assert problem["loc"][0] == "query"
        assert fragment in problem["msg"]
    else:
        assert body["error"] == error
        assert fragment in body["detail"]
    assert await service.rows() == before
    assert (await service.client.get(f"/orders/{order['id']}")).json() == order


# -- event sourcing and the relay ---------------------------------------------------------------


async def test_events_and_replay_after_commands(service: Service) -> None:
    client = service.client
    order = await service.place("c7", 10)
    order_id = order["id"]
    await client.patch(f"/orders/{order_id}", json={"version": 1, "total": 12.5})
    await client.post(f"/orders/{order_id}/ship", json={"version": 2, "carrier": "DHL"})

    events = (await client.get(f"/orders/{order_id}/events")).json()
    assert [(e["event_type"], e["version"], e["payload"]) for e in events] == [
        ("OrderPlaced", 1, {"customer_id": "c7", "total": 10}),
        ("OrderRevised", 2, {"total": 12.5}),
        ("OrderShipped", 3, {"carrier": "DHL"}),
    ]
    positions = [e["position"] for e in events]
    assert positions == sorted(positions)

    stored = (await client.get(f"/orders/{order_id}")).json()
    assert stored == {**order, "total": 12.5, "status": "shipped", "version": 3}
    replayed = await client.get(f"/orders/{order_id}/replay")
    assert replayed.status_code == 200
    assert replayed.json() == stored

    assert (await client.delete(f"/orders/{order_id}")).status_code == 204
    after_delete = (await client.get(f"/orders/{order_id}/events")).json()
    assert [e["event_type"] for e in after_delete] == [
        "OrderPlaced",
        "OrderRevised",
        "OrderShipped",
        "OrderDeleted",
    ]
    assert (await client.get(f"/orders/{order_id}/replay")).json() == {
        **stored,
        "status": "deleted",
        "version": 4,
    }


async def test_relay_beside_the_app_publishes_what_commands_commit(
    db_url: str, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    publisher = RecordingPublisher()
    async with serving(db_url, publisher) as (app, client):
        order = (await client.post("/orders", json={"customer_id": "c9", "total": 42})).json()
        shipped = await client.post(
            f"/orders/{order['id']}/ship", json={"version": 1, "carrier": "DHL"}
        )
        assert shipped.status_code == 200

        published = await publisher.wait_for(2)
        events = (await client.get(f"/orders/{order['id']}/events")).json()
        assert [(m.message_id, m.event_type) for m in published] == [
            (e["event_id"], e["event_type"]) for e in events
        ]
        placed = published[0].payload
        assert (placed["aggregate_id"], placed["customer_id"], placed["total"]) == (
            order["id"],
            "c9",
            42,
        )
        assert published[1].payload["carrier"] == "DHL"

        health = await client.get("/health")
        assert health.status_code == 200
        assert health.json()["relay"] == "running"
        task = app.state.relay_task

    # Leaving the lifespan stopped the relay, after it recorded what it published.
    assert task.done()
    assert task.exception() is None
    assert len(publisher.messages) == 2
    async with session_factory() as session:
        statuses = (await session.scalars(select(OutboxRow.status))).all()
    assert statuses == [OutboxStatus.PUBLISHED, OutboxStatus.PUBLISHED]


async def test_openapi_documents_the_search_parameters(service: Service) -> None:
    response = await service.client.get("/openapi.json")
    assert response.status_code == 200
    parameters = response.json()["paths"]["/orders"]["get"]["parameters"]
    assert {p["name"] for p in parameters} == {"spec", "order_by", "limit", "offset"}
