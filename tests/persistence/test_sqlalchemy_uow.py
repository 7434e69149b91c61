"""What is particular to SQLAlchemyUnitOfWork: sessions, ownership and database errors."""

from __future__ import annotations

import asyncio

import pytest
from sample_domain import Counter, CounterModel, Customer, CustomerModel
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import sessionmaker

from cqrs_ddd_core.exceptions import OptimisticConcurrencyError
from cqrs_ddd_persistence_sqlalchemy.core import SQLAlchemyRepository, SQLAlchemyUnitOfWork

customers = SQLAlchemyRepository(entity_cls=Customer, db_model_cls=CustomerModel)
counters = SQLAlchemyRepository(entity_cls=Counter, db_model_cls=CounterModel)


async def _count(session_factory: async_sessionmaker[AsyncSession], model: type) -> int:
    async with session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def test_the_constructor_takes_exactly_one_session_source(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    session = session_factory()
    assert SQLAlchemyUnitOfWork(session_factory).owns_session
    assert SQLAlchemyUnitOfWork(session_factory=session_factory).owns_session
    assert not SQLAlchemyUnitOfWork(session).owns_session
    assert not SQLAlchemyUnitOfWork(session=session).owns_session
    with pytest.raises(TypeError, match="exactly one"):
        SQLAlchemyUnitOfWork()  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="exactly one"):
        SQLAlchemyUnitOfWork(session=session, session_factory=session_factory)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="AsyncSession or a session factory, got int"):
        SQLAlchemyUnitOfWork(42)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="session= must be an AsyncSession"):
        SQLAlchemyUnitOfWork(session="nope")  # type: ignore[call-overload]


async def test_a_factory_returning_something_else_is_refused() -> None:
    uow = SQLAlchemyUnitOfWork(session_factory=lambda: "not a session")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="must return an AsyncSession, got str"):
        async with uow:
            pass


async def test_a_self_managed_session_is_closed_on_exit(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        await counters.add(Counter(id="c-1"), uow=uow)
        session = uow.session
        assert session.in_transaction()
    assert not session.in_transaction()
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_caller_managed_session_stays_open(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session:
        async with SQLAlchemyUnitOfWork(session=session) as uow:
            await counters.add(Counter(id="c-1", value=4), uow=uow)
            await uow.commit()
        # Still usable by its owner after the unit of work is done.
        value = await session.scalar(select(CounterModel.value).where(CounterModel.id == "c-1"))
        assert value == 4


async def test_the_dependency_injector_pattern_with_a_sync_sessionmaker(
    engine: AsyncEngine,
) -> None:
    # Pattern 1 of the specification: sessionmaker(engine, class_=AsyncSession).
    factory = sessionmaker(engine, class_=AsyncSession)  # type: ignore[call-overload]
    async with SQLAlchemyUnitOfWork(session=factory()) as uow:
        await counters.add(Counter(id="c-1", value=1), uow=uow)
        await uow.commit()
    async with SQLAlchemyUnitOfWork(factory) as uow:
        loaded = await counters.get("c-1", uow=uow)
    assert loaded is not None
    assert loaded.value == 1


async def test_a_failed_commit_rolls_back_and_the_unit_of_work_stays_usable(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        await customers.add(Customer(id="a", name="A", email="same@example.com"), uow=uow)
        await uow.commit()
        await customers.add(Customer(id="b", name="B", email="same@example.com"), uow=uow)
        with pytest.raises(IntegrityError):
            await uow.commit()
        # Rolled back, and ready for the next attempt.
        await customers.add(Customer(id="c", name="C", email="other@example.com"), uow=uow)
        await uow.commit()
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        assert [c.id for c in await customers.list_all(uow=uow)] == ["a", "c"]


async def test_a_duplicate_id_is_an_integrity_error_at_commit(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        await counters.add(Counter(id="c-1"), uow=uow)
    with pytest.raises(IntegrityError):
        async with SQLAlchemyUnitOfWork(session_factory) as uow:
            await counters.add(Counter(id="c-1"), uow=uow)
    assert await _count(session_factory, CounterModel) == 1


async def test_a_stale_orm_object_changed_through_the_session_is_a_conflict(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    # Changing models directly through uow.session still gets the version check:
    # the ORM's StaleDataError is translated at commit.
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        await counters.add(Counter(id="c-1"), uow=uow)
    async with SQLAlchemyUnitOfWork(session_factory) as first:
        row = await first.session.get(CounterModel, "c-1")
        assert row is not None
        async with SQLAlchemyUnitOfWork(session_factory) as second:
            counter = await counters.get("c-1", uow=second)
            assert counter is not None
            counter.value = 1
            await counters.add(counter, uow=second)
        row.value = 2
        with pytest.raises(OptimisticConcurrencyError):
            await first.commit()


async def test_plain_orm_writes_of_a_versioned_model_advance_its_version_by_one(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        uow.session.add(CounterModel(id="orm", value=0))  # no version given
        uow.session.add(CounterModel(id="other", value=0))
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        row = await uow.session.get(CounterModel, "orm")
        untouched = await uow.session.get(CounterModel, "other")
        assert row is not None
        assert untouched is not None
        assert (row.version, untouched.version) == (1, 1)
        row.value = 5
        untouched.value = untouched.value  # in the session, no net change
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        loaded = await counters.get("orm", uow=uow)
        other = await counters.get("other", uow=uow)
    assert loaded is not None
    assert other is not None
    assert (loaded.value, loaded.version) == (5, 2)
    assert other.version == 1


async def test_cancellation_still_releases_the_connection(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    started = asyncio.Event()

    async def command() -> None:
        async with SQLAlchemyUnitOfWork(session_factory) as uow:
            await counters.add(Counter(id="c-1"), uow=uow)
            await uow.session.flush()
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(command())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(50):
        if engine.pool.checkedout() == 0:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.01)
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await _count(session_factory, CounterModel) == 0
