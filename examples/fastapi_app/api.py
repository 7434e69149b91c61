"""The HTTP API: request and response schemas, dependencies and routes.

Commands load an order, call the domain, save it through :class:`OrderStore` and
commit before answering, so a response never claims what the database did not
keep. Errors are not caught here: the handlers in ``app.py`` turn the library's
exceptions into 400, 404 and 409 responses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, Json

from cqrs_ddd_core.ports.event_store import StoredEvent
from cqrs_ddd_persistence_sqlalchemy.core import SQLAlchemyUnitOfWork
from cqrs_ddd_persistence_sqlalchemy.exceptions import EntityNotFoundError
from cqrs_ddd_specifications import QueryOptions

from .domain import Order, OrderStatus
from .persistence import OrderStore, to_domain_event

__all__ = ["get_orders", "get_uow", "router"]


# -- dependencies ------------------------------------------------------------------------


async def get_uow(request: Request) -> AsyncIterator[SQLAlchemyUnitOfWork]:
    """One unit of work per request: rolled back if the endpoint raises, else committed."""
    async with SQLAlchemyUnitOfWork(session_factory=request.app.state.session_factory) as uow:
        yield uow


def get_orders(request: Request) -> OrderStore:
    """The application's order store."""
    orders: OrderStore = request.app.state.orders
    return orders


# scope="function": the unit of work ends (rollback, connection back to the pool)
# before the response is sent, not after.
UnitOfWorkDep = Annotated[SQLAlchemyUnitOfWork, Depends(get_uow, scope="function")]
OrdersDep = Annotated[OrderStore, Depends(get_orders)]


# -- schemas -----------------------------------------------------------------------------


# What the ``Numeric(10, 2)`` column can hold, so the stored total is the one sent.
Money = Annotated[Decimal, Field(gt=0, max_digits=10, decimal_places=2)]


class PlaceOrder(BaseModel):
    """Body of ``POST /orders``."""

    customer_id: str = Field(min_length=1, max_length=100)
    total: Money


class ReviseOrder(BaseModel):
    """Body of ``PATCH /orders/{id}``: the new total and the version the client read."""

    version: int = Field(ge=1)
    total: Money


class ShipOrder(BaseModel):
    """Body of ``POST /orders/{id}/ship``."""

    version: int = Field(ge=1)
    carrier: str = Field(min_length=1, max_length=100)


class OrderOut(BaseModel):
    """An order as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    total: float
    status: OrderStatus
    version: int


class OrderPage(BaseModel):
    """One page of a search."""

    items: list[OrderOut]
    limit: int
    offset: int


class EventOut(BaseModel):
    """A stored event of an order."""

    model_config = ConfigDict(from_attributes=True)

    position: int | None
    event_id: str
    event_type: str
    version: int
    occurred_at: datetime
    payload: dict[str, Any]


class SearchParams(BaseModel):
    """Query string of ``GET /orders``.

    ``spec`` is a specification in the dict form of ``cqrs_ddd_specifications``
    (``{"field": "status", "op": "eq", "value": "pending"}``, ``{"and": [...]}``,
    ``{"or": [...]}``, ``{"not": ...}``), as JSON; ``order_by`` may repeat, ``-``
    for descending.
    """

    model_config = ConfigDict(extra="forbid")

    spec: Json[dict[str, Any]] | None = None
    order_by: list[str] = []
    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0)


# -- routes ------------------------------------------------------------------------------

router = APIRouter(prefix="/orders", tags=["orders"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def place_order(
    body: PlaceOrder, request: Request, response: Response, uow: UnitOfWorkDep, orders: OrdersDep
) -> OrderOut:
    """Place an order."""
    order = Order.place(body.customer_id, float(body.total))
    await orders.save(order, uow)
    await uow.commit()
    response.headers["Location"] = str(request.url_for("get_order", order_id=order.id))
    return OrderOut.model_validate(order)


@router.get("")
async def search_orders(
    params: Annotated[SearchParams, Query()], uow: UnitOfWorkDep, orders: OrdersDep
) -> OrderPage:
    """Search orders with a specification; one page, filtered and sorted by the database."""
    options = (
        QueryOptions()
        .with_specification(params.spec)
        .with_ordering(params.order_by)
        .with_pagination(limit=params.limit, offset=params.offset)
    )
    found = await orders.search(options, uow)
    return OrderPage(
        items=[OrderOut.model_validate(o) for o in found], limit=params.limit, offset=params.offset
    )


@router.get("/{order_id}")
async def get_order(order_id: str, uow: UnitOfWorkDep, orders: OrdersDep) -> OrderOut:
    """Read an order's current state."""
    return OrderOut.model_validate(await orders.get(order_id, uow))


@router.patch("/{order_id}")
async def revise_order(
    order_id: str, body: ReviseOrder, uow: UnitOfWorkDep, orders: OrdersDep
) -> OrderOut:
    """Change an order's total; 409 if it changed since the client read ``version``."""
    order = await orders.get(order_id, uow, expected_version=body.version)
    order.revise(float(body.total))
    await orders.save(order, uow)
    await uow.commit()
    return OrderOut.model_validate(order)


@router.post("/{order_id}/ship")
async def ship_order(
    order_id: str, body: ShipOrder, uow: UnitOfWorkDep, orders: OrdersDep
) -> OrderOut:
    """Ship a pending order."""
    order = await orders.get(order_id, uow, expected_version=body.version)
    order.ship(body.carrier)
    await orders.save(order, uow)
    await uow.commit()
    return OrderOut.model_validate(order)


@router.delete("/{order_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_order(order_id: str, uow: UnitOfWorkDep, orders: OrdersDep) -> None:
    """Delete an order; its events stay readable."""
    order = await orders.get(order_id, uow)
    order.delete()
    await orders.delete(order, uow)
    await uow.commit()


@router.get("/{order_id}/events")
async def order_events(order_id: str, uow: UnitOfWorkDep, orders: OrdersDep) -> list[EventOut]:
    """The order's events, oldest first."""
    events = await _history(order_id, uow, orders)
    return [EventOut.model_validate(e) for e in events]


@router.get("/{order_id}/replay")
async def replay_order(order_id: str, uow: UnitOfWorkDep, orders: OrdersDep) -> OrderOut:
    """The order rebuilt from its events alone (it matches the stored state)."""
    events = await _history(order_id, uow, orders)
    return OrderOut.model_validate(Order.from_history(to_domain_event(e) for e in events))


async def _history(
    order_id: str, uow: SQLAlchemyUnitOfWork, orders: OrderStore
) -> list[StoredEvent]:
    events = list(await orders.history(order_id, uow))
    if not events:
        raise EntityNotFoundError(f"order {order_id!r} has no events", entity_id=order_id)
    return events
