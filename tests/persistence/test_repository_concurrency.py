"""Optimistic concurrency under real concurrent transactions on PostgreSQL."""

from __future__ import annotations

import asyncio
import random

import pytest
from sample_domain import Counter, CounterModel
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cqrs_ddd_core.exceptions import OptimisticConcurrencyError
from cqrs_ddd_persistence_sqlalchemy.core import SQLAlchemyRepository, SQLAlchemyUnitOfWork

pytestmark = pytest.mark.postgres

WORKERS = 8
INCREMENTS = 10


@pytest.fixture
def backend() -> str:
    # Real concurrent connections need a server: this module runs on PostgreSQL only.
    return "postgres"


async def test_concurrent_increments_lose_no_update(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    counters = SQLAlchemyRepository(entity_cls=Counter, db_model_cls=CounterModel)
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        await counters.add(Counter(id="shared"), uow=uow)

    conflicts = 0
    rng = random.Random(42)

    async def increment() -> None:
        nonlocal conflicts
        while True:
            try:
                async with SQLAlchemyUnitOfWork(session_factory) as uow:
                    counter = await counters.get("shared", uow=uow)
                    assert counter is not None
                    # Widen the window between read and write so that workers collide.
                    await asyncio.sleep(rng.random() * 0.005)
                    counter.value += 1
                    await counters.add(counter, uow=uow)
                return
            except OptimisticConcurrencyError:
                conflicts += 1

    async def worker() -> None:
        for _ in range(INCREMENTS):
            await increment()

    await asyncio.gather(*(worker() for _ in range(WORKERS)))

    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        final = await counters.get("shared", uow=uow)
    assert final is not None
    assert final.value == WORKERS * INCREMENTS
    assert final.version == WORKERS * INCREMENTS + 1
    # The test only proves something if the workers really raced.
    assert conflicts > 0
    assert engine.pool.size() >= 2  # type: ignore[attr-defined]
