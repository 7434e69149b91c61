"""What is particular to SQLAlchemyEventStore: transactions, and concurrency on PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from sample_domain import Counter, CounterModel
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cqrs_ddd_core.exceptions import OptimisticConcurrencyError, UnitOfWorkError
from cqrs_ddd_core.ports.event_store import StoredEvent
from cqrs_ddd_persistence_sqlalchemy.core import (
    SQLAlchemyEventStore,
    SQLAlchemyRepository,
    SQLAlchemyUnitOfWork,
)
from cqrs_ddd_specifications import SpecificationBuilder

counters = SQLAlchemyRepository(entity_cls=Counter, db_model_cls=CounterModel)


def event(aggregate_id: str, version: int) -> StoredEvent:
    return StoredEvent(
        event_type="Incremented",
        aggregate_id=aggregate_id,
        aggregate_type="Counter",
        version=version,
        payload={"by": 1},
    )


async def test_events_commit_and_roll_back_with_the_aggregate(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    store = SQLAlchemyEventStore()

    class AbortError(Exception):
        pass

    with pytest.raises(AbortError):
        async with SQLAlchemyUnitOfWork(session_factory) as uow:
            await counters.add(Counter(id="c-1"), uow=uow)
            await store.append(event("c-1", 1), uow=uow)
            raise AbortError
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        assert await store.get_all(uow=uow) == []
        assert await counters.get("c-1", uow=uow) is None

    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        await counters.add(Counter(id="c-1"), uow=uow)
        await store.append(event("c-1", 1), uow=uow)
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        assert [e.version for e in await store.get_events("c-1", uow=uow)] == [1]
        assert await counters.get("c-1", uow=uow) is not None


async def test_the_store_needs_a_session_or_a_live_unit_of_work(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(TypeError, match="pass uow="):
        await SQLAlchemyEventStore().get_all()
    with pytest.raises(TypeError, match="AsyncSession"):
        SQLAlchemyEventStore("not a session")  # type: ignore[arg-type]
    with pytest.raises(UnitOfWorkError, match="not been entered"):
        await SQLAlchemyEventStore().get_all(uow=SQLAlchemyUnitOfWork(session_factory))


async def test_writes_are_invisible_to_others_until_committed(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as writer, session_factory() as reader:
        await SQLAlchemyEventStore(writer).append(event("a", 1))
        assert await SQLAlchemyEventStore(reader).get_all() == []
        await reader.rollback()
        await writer.commit()
        assert len(await SQLAlchemyEventStore(reader).get_all()) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
@pytest.mark.parametrize(
    "racing_batch",
    [
        pytest.param([("a", 3)], id="one event"),  # ON CONFLICT DO NOTHING
        pytest.param([("b", 1), ("a", 2), ("a", 3)], id="a batch"),  # the function's block
    ],
)
async def test_a_concurrent_append_of_the_same_version_is_a_conflict(
    session_factory: async_sessionmaker[AsyncSession], racing_batch: list[tuple[str, int]]
) -> None:
    async with session_factory() as first, session_factory() as second:
        await SQLAlchemyEventStore(first).append_batch([event("a", v) for v in range(1, 4)])
        # The second append waits for the first transaction to finish...
        racing = asyncio.create_task(
            SQLAlchemyEventStore(second).append_batch([event(a, v) for a, v in racing_batch])
        )
        await asyncio.sleep(0.2)
        assert not racing.done()
        await first.commit()
        # ...and then finds the version taken.
        with pytest.raises(OptimisticConcurrencyError) as caught:
            await racing
        assert caught.value.actual_version == 3
        # Nothing of its batch went in, and its transaction is still usable.
        await SQLAlchemyEventStore(second).append(event("a", 4))
        await second.commit()
    async with session_factory() as session:
        store = SQLAlchemyEventStore(session)
        assert [e.version for e in await store.get_events("a")] == [1, 2, 3, 4]
        assert await store.get_events("b") == []


WRITERS = 4
TRANSACTIONS = 40


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
@pytest.mark.parametrize("reading_with", ["pages", "iterator"])
async def test_a_reader_never_skips_an_event_committed_late(
    session_factory: async_sessionmaker[AsyncSession], reading_with: str
) -> None:
    """4 writers commit small batches in random order; a paging reader sees each once.

    The reader pages with get_events_after, or runs get_events_from_position (which
    keeps a horizon across pages) to its end again and again.
    """
    rng = random.Random()
    written: list[str] = []
    done = asyncio.Event()

    async def writer(w: int) -> None:
        for t in range(TRANSACTIONS):
            async with session_factory() as session:
                size = rng.randint(1, 3)
                batch = [event(f"w{w}-t{t}", v) for v in range(1, size + 1)]
                await SQLAlchemyEventStore(session).append_batch(batch)
                # Hold the drawn positions uncommitted for a while, so that later
                # positions of other writers commit first.
                await asyncio.sleep(rng.random() * 0.01)
                await session.commit()
                written.extend(e.event_id for e in batch)

    seen: list[StoredEvent] = []

    async def read(store: SQLAlchemyEventStore, position: int) -> list[StoredEvent]:
        if reading_with == "pages":
            return await store.get_events_after(position, limit=7)
        return [e async for e in await store.get_events_from_position(position, batch_size=7)]

    async def reader() -> None:
        position = 0
        async with session_factory() as session:
            store = SQLAlchemyEventStore(session)
            while True:
                finished = done.is_set()
                page = await read(store, position)
                await session.rollback()  # end the read transaction between pages
                seen.extend(page)
                if page:
                    position = page[-1].position or 0
                elif finished:
                    return
                else:
                    await asyncio.sleep(0.001)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(w) for w in range(WRITERS)))
    done.set()
    await reading

    positions = [e.position for e in seen]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
    assert sorted(e.event_id for e in seen) == sorted(written)
    assert len(written) >= WRITERS * TRANSACTIONS


async def test_the_iterator_reads_what_commits_while_it_runs(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session:
        first = await SQLAlchemyEventStore(session).append_batch(
            [event("a", v) for v in range(1, 11)]
        )
        await session.commit()
    async with session_factory() as reader, session_factory() as writer:
        seen: list[StoredEvent] = []
        async for item in await SQLAlchemyEventStore(reader).get_events_from_position(
            0, batch_size=4
        ):
            seen.append(item)
            if len(seen) == 1:  # the first page has been read
                later = await SQLAlchemyEventStore(writer).append_batch(
                    [event("b", v) for v in range(1, 4)]
                )
                await writer.commit()
    # Pages of 4, 4, 2 reach the end as it was first seen; the iterator looks again
    # and reads the 3 committed meanwhile, then stops at a short page.
    assert [e.event_id for e in seen] == [e.event_id for e in [*first, *later]]
    positions = [e.position for e in seen]
    assert positions == sorted(positions)


async def test_the_iterator_pages_a_sparse_filter_to_the_end(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    batch = [
        event("a", v).model_copy(update={"tenant_id": "t1" if v % 4 == 1 else "t2"})
        for v in range(1, 13)
    ]
    async with session_factory() as session:
        stored = await SQLAlchemyEventStore(session).append_batch(batch)
        await session.commit()
    wanted = [e.event_id for e in stored if e.tenant_id == "t1"]
    assert len(wanted) == 3
    tenant = SpecificationBuilder().where("tenant_id", "eq", "t1").build()
    async with session_factory() as session:
        store = SQLAlchemyEventStore(session)
        for batch_size in (1, 2, 3, 4):
            seen = [
                e.event_id
                async for e in await store.get_events_from_position(
                    0, batch_size=batch_size, specification=tenant
                )
            ]
            assert seen == wanted, batch_size
        after_first = stored[0].position or 0
        rest = [
            e.event_id
            async for e in await store.get_events_from_position(
                after_first, batch_size=2, specification=tenant
            )
        ]
        assert rest == wanted[1:]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
@pytest.mark.parametrize("size", [1, 3])
async def test_a_horizon_waits_for_an_uncommitted_append(
    session_factory: async_sessionmaker[AsyncSession], size: int
) -> None:
    """Single events (column default) and batches (one statement) both take the lock."""
    async with session_factory() as writer, session_factory() as reader:
        appended = await SQLAlchemyEventStore(writer).append_batch(
            [event("a", v) for v in range(1, size + 1)]
        )
        waiting = asyncio.create_task(SQLAlchemyEventStore(reader).get_events_after(0))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await writer.commit()
        page = await waiting
    assert [e.event_id for e in page] == [e.event_id for e in appended]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
async def test_the_latest_position_is_a_cursor_that_never_skips(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """An append in flight below a committed one is waited for, not left behind."""
    async with (
        session_factory() as slow,
        session_factory() as fast,
        session_factory() as reader,
    ):
        first = await SQLAlchemyEventStore(slow).append(event("a", 1))
        second = await SQLAlchemyEventStore(fast).append(event("b", 1))
        await fast.commit()
        assert second.position is not None
        assert first.position is not None
        assert first.position < second.position
        waiting = asyncio.create_task(SQLAlchemyEventStore(reader).get_latest_position())
        await asyncio.sleep(0.2)
        assert not waiting.done()  # max(position) alone would say `second` already
        await slow.commit()
        latest = await waiting
        assert latest == second.position
        # A consumer starting there gets what comes next, and nothing was before it
        # that it could miss.
        await reader.rollback()
        assert await SQLAlchemyEventStore(reader).get_events_after(latest) == []
        third = await SQLAlchemyEventStore(fast).append(event("c", 1))
        await fast.commit()
        page = await SQLAlchemyEventStore(reader).get_events_after(latest)
        assert [e.event_id for e in page] == [third.event_id]


ADVISORY_LOCKS = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
async def test_writers_do_not_queue_behind_a_waiting_reader(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """A reader waits for the appends in flight; appends arriving meanwhile go through."""
    async with (
        session_factory() as slow,
        session_factory() as fast,
        session_factory() as reader,
    ):
        first = await SQLAlchemyEventStore(slow).append(event("a", 1))
        waiting = asyncio.create_task(SQLAlchemyEventStore(reader).get_events_after(0))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        # An exclusive lock request of the reader's would make this wait for `slow`.
        second = await asyncio.wait_for(SQLAlchemyEventStore(fast).append(event("b", 1)), 2)
        await asyncio.wait_for(fast.commit(), 2)
        assert not waiting.done()
        await slow.commit()
        page = await waiting
        # The reader's horizon was read before `fast` drew its position.
        assert [e.event_id for e in page] == [first.event_id]
        await reader.rollback()
        page = await SQLAlchemyEventStore(reader).get_events_after(0)
        assert [e.event_id for e in page] == [first.event_id, second.event_id]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
async def test_a_reader_cancelled_while_it_waits_leaves_no_lock_behind(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """The horizon's waits end with the call, even when a statement timeout ends it."""
    async with (
        session_factory() as slow,
        session_factory() as fast,
        session_factory() as reader,
    ):
        first = await SQLAlchemyEventStore(slow).append(event("a", 1))
        assert await reader.scalar(ADVISORY_LOCKS) == 1  # the writer's own
        await reader.execute(text("SET LOCAL statement_timeout = '200ms'"))
        with pytest.raises(DBAPIError, match="statement timeout"):
            await SQLAlchemyEventStore(reader).get_events_after(0)
        await reader.rollback()
        assert await fast.scalar(ADVISORY_LOCKS) == 1
        second = await asyncio.wait_for(SQLAlchemyEventStore(fast).append(event("b", 1)), 2)
        await fast.commit()
        await slow.commit()
        page = await asyncio.wait_for(SQLAlchemyEventStore(reader).get_events_after(0), 2)
        assert [e.event_id for e in page] == [first.event_id, second.event_id]
        assert await reader.scalar(ADVISORY_LOCKS) == 0


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
async def test_a_reader_waits_for_a_prepared_writer(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """A prepared transaction keeps its writer's lock (with no backend): it is waited for."""
    async with session_factory() as probe:
        if int(await probe.scalar(text("SHOW max_prepared_transactions")) or 0) == 0:
            pytest.skip("the server has two-phase commit turned off")
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with session_factory() as fast, session_factory() as reader:
        prepared = session_factory()
        first = await SQLAlchemyEventStore(prepared).append(event("a", 1))
        await prepared.execute(text("PREPARE TRANSACTION 'cqrs_ddd_test'"))
        await prepared.invalidate()  # its connection is no longer in the transaction
        try:
            second = await SQLAlchemyEventStore(fast).append(event("b", 1))
            await fast.commit()
            await reader.execute(text("SET LOCAL statement_timeout = '300ms'"))
            with pytest.raises(DBAPIError, match="statement timeout"):
                await SQLAlchemyEventStore(reader).get_events_after(0)
            await reader.rollback()
        finally:
            async with autocommit.connect() as conn:
                await conn.execute(text("COMMIT PREPARED 'cqrs_ddd_test'"))
        page = await SQLAlchemyEventStore(reader).get_events_after(0)
        assert [e.event_id for e in page] == [first.event_id, second.event_id]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
async def test_a_foreign_lock_in_the_writers_class_does_not_break_readers(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """A second key beyond a pid's range (-1 shows as 4294967295 in pg_locks) is waited for."""
    from cqrs_ddd_persistence_sqlalchemy.core.models import EVENTS_LOCK_CLASS

    async with session_factory() as other, session_factory() as reader:
        await other.execute(text(f"SELECT pg_advisory_xact_lock({EVENTS_LOCK_CLASS}, -1)"))
        waiting = asyncio.create_task(SQLAlchemyEventStore(reader).get_events_after(0))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await other.rollback()
        assert await asyncio.wait_for(waiting, 2) == []


def assert_lock_gates_nextval(plan: list[str]) -> None:
    """The node that calls nextval() is gated by the lock, in a VERBOSE text plan (costs or not).

    It is a Result node whose one-time filter (the InitPlan taking the lock) runs
    before it produces a row.
    """
    text = "\n".join(plan)
    draw = next(i for i, line in enumerate(plan) if "Output: nextval(" in line)
    gate = next(i for i, line in enumerate(plan) if "One-Time Filter" in line)
    assert draw < gate, text
    assert not any("->" in line for line in plan[draw:gate]), text  # the same node
    assert plan[draw - 1].strip().split("  (cost=")[0] == "->  Result", text
    initplan = plan[gate + 1 : gate + 4]
    assert any("pg_advisory_xact_lock(" in line for line in initplan), text


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
async def test_a_batch_takes_the_lock_before_drawing_positions(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """In the batch statement that appends with ON CONFLICT."""
    from cqrs_ddd_persistence_sqlalchemy.core import event_store

    async with session_factory() as session:
        conn = await session.connection()
        explained = await conn.exec_driver_sql(
            "EXPLAIN (VERBOSE, COSTS OFF) " + event_store._PG_INSERT, ("[]",)
        )
        assert_lock_gates_nextval([line for (line,) in explained])


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
async def test_the_append_function_takes_the_lock_before_drawing_positions(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """In cqrs_events_append(): its statement's plan, as auto_explain logs it."""
    async with session_factory() as session:
        if await session.scalar(text("SHOW is_superuser")) != "on":
            pytest.skip("loading auto_explain takes a superuser")
        conn = await session.connection()
        logged: list[str] = []
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None

        def listen(_conn: Any, message: Any) -> None:
            logged.append(message.message)

        raw.add_log_listener(listen)
        try:
            for setting in (
                "LOAD 'auto_explain'",
                "SET auto_explain.log_min_duration = 0",
                "SET auto_explain.log_nested_statements = on",
                "SET auto_explain.log_verbose = on",
                "SET client_min_messages = log",
            ):
                await conn.exec_driver_sql(setting)
            await SQLAlchemyEventStore(session).append_batch([event("a", 1), event("a", 2)])
        finally:
            await session.rollback()  # the settings go with the transaction
            raw.remove_log_listener(listen)
    plans = [m.splitlines() for m in logged if "Insert on public.events" in m]
    assert len(plans) == 1, logged
    assert "cqrs_events_append" in "\n".join(logged)
    assert_lock_gates_nextval(plans[0])


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
async def test_a_transaction_opens_a_bounded_number_of_subtransactions(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Past the first batches, a transaction appends with ON CONFLICT instead; both hold."""
    from sqlalchemy import event as sa_event

    from cqrs_ddd_persistence_sqlalchemy.core.event_store import _SUBTRANSACTIONS

    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "INSERT INTO events" in statement or "cqrs_events_append" in statement:
            sent.append("function" if "cqrs_events_append" in statement else "on conflict")

    async def conflict_keeps_the_transaction(store: SQLAlchemyEventStore, version: int) -> None:
        with pytest.raises(OptimisticConcurrencyError):
            await store.append_batch([event("new", 1), event("s", version - 1)])
        assert await store.get_events("new") == []

    async with session_factory() as session:
        engine = session.get_bind()
        sa_event.listen(engine, "before_cursor_execute", record)
        try:
            store = SQLAlchemyEventStore(session)
            for version in range(1, 2 * (_SUBTRANSACTIONS + 2), 2):
                await store.append_batch([event("s", version), event("s", version + 1)])
            await conflict_keeps_the_transaction(store, version)  # through ON CONFLICT
            await session.commit()
            assert sent == ["function"] * _SUBTRANSACTIONS + ["on conflict"] * 3
            # A new transaction starts counting again.
            sent.clear()
            await conflict_keeps_the_transaction(store, version)  # through the function
            await store.append_batch([event("s", version + 2), event("s", version + 3)])
            await session.commit()
            assert sent == ["function", "function"]
        finally:
            sa_event.remove(engine, "before_cursor_execute", record)
    async with session_factory() as session:
        stored = await SQLAlchemyEventStore(session).get_events("s")
    assert [e.version for e in stored] == list(range(1, version + 4))


class AnnotatedEvent(StoredEvent):
    """A subclass with a field the store does not keep, and that has no JSON form."""

    note: Any = None


@pytest.mark.parametrize(
    "note",
    # A number jsonb cannot hold (numeric keeps at most 131,072 digits): the subclass's
    # own fields are not sent at all.
    [pytest.param(object(), id="no_json_form"), pytest.param(10**140_000, id="huge_number")],
)
async def test_a_batch_of_subclassed_events_stores_the_event_fields(
    session_factory: async_sessionmaker[AsyncSession], note: object
) -> None:
    batch = [
        AnnotatedEvent(**event("a", v).model_dump(exclude={"position"}), note=note)
        for v in (1, 2, 3)
    ]
    async with session_factory() as session:
        appended = await SQLAlchemyEventStore(session).append_batch(batch)
        await session.commit()
    assert [e.position for e in appended] == sorted(e.position for e in appended)
    async with session_factory() as session:
        stored = await SQLAlchemyEventStore(session).get_events("a")
    assert [e.model_dump() for e in stored] == [
        StoredEvent(**e.model_dump(exclude={"note"})).model_dump() for e in appended
    ]
