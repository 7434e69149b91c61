"""The application factory: engine and relay in the lifespan, errors mapped to HTTP.

Run it with ``uvicorn --factory fastapi_app.app:create_app`` (see the README).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from cqrs_ddd_core import DomainError
from cqrs_ddd_core.ports.outbox import BatchPublisher, MessagePublisher
from cqrs_ddd_persistence_sqlalchemy.core import Base
from cqrs_ddd_persistence_sqlalchemy.core.relay import OutboxRelay
from cqrs_ddd_persistence_sqlalchemy.exceptions import (
    EntityNotFoundError,
    OptimisticConcurrencyError,
)
from cqrs_ddd_persistence_sqlalchemy.publishers import ConsolePublisher
from cqrs_ddd_specifications import SpecificationError

from .api import router
from .persistence import OrderStore

__all__ = ["DEFAULT_DATABASE_URL", "ERROR_STATUS", "create_app"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./orders.db"

#: Library and domain errors a client can cause, and the status that tells it so.
#: ``SpecificationError`` covers every bad search: malformed specification, unknown
#: operator or field, bad ordering, an operand that does not fit its column.
ERROR_STATUS: dict[type[Exception], int] = {
    EntityNotFoundError: status.HTTP_404_NOT_FOUND,
    OptimisticConcurrencyError: status.HTTP_409_CONFLICT,
    DomainError: status.HTTP_409_CONFLICT,
    SpecificationError: status.HTTP_400_BAD_REQUEST,
}


def create_app(
    database_url: str | None = None,
    *,
    publisher: MessagePublisher | BatchPublisher | None = None,
) -> FastAPI:
    """Build the application.

    Args:
        database_url: an async SQLAlchemy URL (``sqlite+aiosqlite://...`` or
            ``postgresql+asyncpg://...``); ``$DATABASE_URL`` or a local SQLite file
            by default.
        publisher: where the outbox relay sends messages; by default they are
            printed as JSON lines.
    """
    url = database_url or os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    relay_publisher = publisher if publisher is not None else ConsolePublisher()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_async_engine(url)
        try:
            # Fine for an example; a real service runs migrations before it starts.
            async with engine.begin() as connection:
                await connection.run_sync(Base.metadata.create_all)
            relay = OutboxRelay(engine, relay_publisher)
            app.state.session_factory = async_sessionmaker(engine, expire_on_commit=False)
            # Waking the relay after each commit publishes new messages at once, also
            # on SQLite, which has no LISTEN/NOTIFY.
            app.state.orders = OrderStore(after_commit=relay.wake)
            app.state.relay = relay
            async with _running(relay) as task:
                app.state.relay_task = task
                yield
        finally:
            await engine.dispose()

    app = FastAPI(title="Orders", lifespan=lifespan)
    app.include_router(router)
    for exc_class, status_code in ERROR_STATUS.items():
        app.add_exception_handler(exc_class, _error_handler(status_code))

    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        """Whether the relay is running, and how many messages wait in the outbox."""
        relay: OutboxRelay = request.app.state.relay
        task: asyncio.Task[None] = request.app.state.relay_task
        stats = await relay.stats()
        body = {
            "relay": "stopped" if task.done() else "running",
            "published": relay.counters.published,
            "outbox": {"pending": stats.pending, "failed": stats.failed, "dead": stats.dead},
        }
        code = status.HTTP_503_SERVICE_UNAVAILABLE if task.done() else status.HTTP_200_OK
        return JSONResponse(body, status_code=code)

    return app


@asynccontextmanager
async def _running(relay: OutboxRelay) -> AsyncIterator[asyncio.Task[None]]:
    """Run the relay in a task; on exit let it finish its batch in flight and stop."""
    task = asyncio.create_task(relay.run(), name="outbox-relay")
    try:
        yield task
    finally:
        relay.stop()
        # Raises here if the relay died, so a broken relay does not go unnoticed.
        await task


def _error_handler(status_code: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        body: dict[str, Any] = {"detail": str(exc), "error": type(exc).__name__}
        if isinstance(exc, OptimisticConcurrencyError):
            body["expected_version"] = exc.expected_version
            body["actual_version"] = exc.actual_version
        return JSONResponse(body, status_code=status_code)

    return handle
