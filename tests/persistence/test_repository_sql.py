"""What is particular to SQLAlchemyRepository: batching, SQL errors and search arguments."""

from __future__ import annotations

from typing import Any

import pytest
from sample_domain import Counter, CounterModel
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cqrs_ddd_persistence_sqlalchemy.core import SQLAlchemyRepository, SQLAlchemyUnitOfWork
from cqrs_ddd_persistence_sqlalchemy.exceptions import UnknownFieldError
from cqrs_ddd_specifications import QueryOptions, SpecificationBuilder

counters = SQLAlchemyRepository(entity_cls=Counter, db_model_cls=CounterModel)


class StatementLog:
    """Records the SQL statements an engine sends, for round-trip counting."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statements: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)
        self.engine = engine

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def matching(self, prefix: str) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith(prefix)]

    def close(self) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self._record)


async def test_many_inserts_are_sent_in_batches(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    log = StatementLog(engine)
    try:
        async with SQLAlchemyUnitOfWork(session_factory) as uow:
            for i in range(500):
                await counters.add(Counter(id=f"c-{i:04d}", value=i), uow=uow)
            assert log.statements == []  # nothing sent before the flush
    finally:
        log.close()
    inserts = log.matching("INSERT")
    assert 1 <= len(inserts) <= 5, f"{len(inserts)} INSERT statements for 500 rows"
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        assert len(await counters.list_all(uow=uow)) == 500


async def test_an_update_is_one_statement(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        await counters.add(Counter(id="c-1"), uow=uow)
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        counter = await counters.get("c-1", uow=uow)
        assert counter is not None
        log = StatementLog(engine)
        try:
            counter.value = 2
            await counters.add(counter, uow=uow)
        finally:
            log.close()
    assert len(log.statements) == 1
    assert log.statements[0].lstrip().upper().startswith("UPDATE")


async def test_search_checks_fields_before_any_sql(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    spec = SpecificationBuilder().where("colour", "eq", "red").build()
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        log = StatementLog(engine)
        try:
            with pytest.raises(UnknownFieldError, match="'colour'"):
                await counters.search(spec, uow=uow)
            with pytest.raises(UnknownFieldError, match="cannot order CounterModel by 'colour'"):
                await counters.search(QueryOptions().with_ordering("colour"), uow=uow)
            with pytest.raises(TypeError, match="got dict"):
                await counters.search({"field": "value"}, uow=uow)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="pass uow="):
                await counters.search(spec)
        finally:
            log.close()
    assert log.statements == []


async def test_a_page_is_exactly_the_page_asked_for(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        for i in range(23):
            await counters.add(Counter(id=f"c-{i:02d}", value=i % 5), uow=uow)
    spec = SpecificationBuilder().where("value", ">=", 2).build()
    pages: list[list[str]] = []
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        for offset in range(0, 20, 5):
            options = (
                QueryOptions()
                .with_specification(spec)
                .with_ordering("-value")
                .with_pagination(limit=5, offset=offset)
            )
            pages.append([c.id for c in await (await counters.search(options, uow=uow))])
    flat = [cid for page in pages for cid in page]
    matching = sorted((c for c in range(23) if c % 5 >= 2), key=lambda c: (-(c % 5), f"c-{c:02d}"))
    assert [len(p) for p in pages] == [5, 5, 3, 0]
    assert flat == [f"c-{c:02d}" for c in matching]
