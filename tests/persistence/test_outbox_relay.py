"""The outbox relay: publishing, retries, stopping, wake-ups and competing relays."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from cqrs_ddd_core.ports.outbox import OutboxMessage, OutboxStatus, RetryPolicy
from cqrs_ddd_persistence_sqlalchemy.core import SQLAlchemyOutboxStorage
from cqrs_ddd_persistence_sqlalchemy.core.models import OutboxMessage as OutboxRow
from cqrs_ddd_persistence_sqlalchemy.core.relay import OutboxRelay
from cqrs_ddd_persistence_sqlalchemy.publishers import ConsolePublisher, load_publisher


class Recorder:
    """Remembers what it published; fails the messages whose id is in ``fail``."""

    def __init__(self, fail: Sequence[str] = (), delay: float = 0.0) -> None:
        self.published: list[str] = []
        self.times: dict[str, float] = {}
        self.fail = set(fail)
        self.delay = delay

    async def publish(self, message: OutboxMessage) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if message.message_id in self.fail:
            raise ConnectionError("broker unreachable")
        self.published.append(message.message_id)
        self.times[message.message_id] = time.monotonic()


async def save(
    session_factory: async_sessionmaker[AsyncSession], ids: Sequence[str], **fields: object
) -> None:
    async with session_factory() as session:
        await SQLAlchemyOutboxStorage(session).save_messages(
            [OutboxMessage(message_id=i, event_type="Evt", payload={"i": i}, **fields) for i in ids]
        )
        await session.commit()


async def statuses(session_factory: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    async with session_factory() as session:
        rows = await session.execute(select(OutboxRow.event_id, OutboxRow.status))
        return {row[0]: row[1] for row in rows}


async def test_run_once_publishes_and_marks(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await save(session_factory, ["a", "b", "c"])
    publisher = Recorder()
    relay = OutboxRelay(engine, publisher, batch_size=2)
    assert await relay.run_once() == 2
    assert await relay.run_once() == 1
    assert await relay.run_once() == 0
    assert publisher.published == ["a", "b", "c"]
    assert set((await statuses(session_factory)).values()) == {OutboxStatus.PUBLISHED}
    assert relay.counters.published == 3
    assert relay.counters.by_type == {"Evt": 3}


async def test_a_failing_publisher_leads_to_retries_then_a_dead_letter(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await save(session_factory, ["ok", "bad"])
    retry = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0, jitter=0.0)
    relay = OutboxRelay(engine, Recorder(fail=["bad"]), retry=retry)
    for _ in range(3):
        await relay.run_once()
    assert await relay.run_once() == 0
    assert relay.counters.published == 1
    assert (relay.counters.failed, relay.counters.dead_lettered) == (2, 1)
    async with session_factory() as session:
        (dead,) = await SQLAlchemyOutboxStorage(session).get_dead()
    assert (dead.message_id, dead.retry_count) == ("bad", 3)
    assert dead.error == "ConnectionError: broker unreachable"
    stats = await relay.stats()
    assert (stats.pending, stats.dead) == (0, 1)


async def test_a_batch_publisher_reports_per_message(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    class Batch:
        async def publish_batch(
            self, messages: Sequence[OutboxMessage]
        ) -> list[BaseException | None]:
            return [None if m.message_id != "b" else RuntimeError("nack") for m in messages]

    await save(session_factory, ["a", "b"])
    relay = OutboxRelay(engine, Batch())
    assert await relay.run_once() == 2
    assert await statuses(session_factory) == {"a": "published", "b": "failed"}


def test_a_publisher_is_checked(engine: AsyncEngine) -> None:
    with pytest.raises(TypeError, match="publish"):
        OutboxRelay(engine, object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        OutboxRelay(engine, Recorder(), batch_size=0)


async def test_stop_finishes_the_batch_in_flight_and_leaves_no_claim(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await save(session_factory, [f"m{i}" for i in range(6)])
    publisher = Recorder(delay=0.05)
    relay = OutboxRelay(engine, publisher, batch_size=3, poll_interval=0.01)
    running = asyncio.create_task(relay.run())
    while not publisher.published:  # noqa: ASYNC110 - polling what another task does
        await asyncio.sleep(0.005)
    relay.stop()
    await asyncio.wait_for(running, timeout=5)
    assert len(publisher.published) in (3, 6)
    async with session_factory() as session:
        claimed = await session.scalar(
            select(func.count()).where(OutboxRow.claimed_by.is_not(None))
        )
    assert claimed == 0


async def test_cancelling_a_relay_releases_its_claims(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await save(session_factory, ["a", "b"])
    publisher = Recorder(delay=10)
    relay = OutboxRelay(engine, publisher, lease=timedelta(minutes=5))
    task = asyncio.create_task(relay.run_once())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    other = OutboxRelay(engine, Recorder())
    assert await other.run_once() == 2  # no need to wait five minutes


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
async def test_notify_wakes_a_sleeping_relay_within_milliseconds(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    publisher = Recorder()
    relay = OutboxRelay(engine, publisher, poll_interval=5.0, max_poll_interval=5.0)
    running = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.3)  # the relay found nothing and sleeps for 5 s
        latencies = []
        for i in range(5):
            committed = time.monotonic()
            await save(session_factory, [f"n{i}"])
            while f"n{i}" not in publisher.times:
                await asyncio.sleep(0.001)
                assert time.monotonic() - committed < 2, "not woken by NOTIFY"
            latencies.append(publisher.times[f"n{i}"] - committed)
        assert max(latencies) < 0.5
    finally:
        relay.stop()
        await asyncio.wait_for(running, timeout=5)


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
async def test_four_relays_publish_ten_thousand_messages_exactly_once(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    total = 10_000
    async with session_factory() as session:
        storage = SQLAlchemyOutboxStorage(session)
        for start in range(0, total, 1000):
            await storage.save_messages(
                [
                    OutboxMessage(message_id=f"m{i:05d}", event_type="Evt", payload={"i": i})
                    for i in range(start, start + 1000)
                ]
            )
        await session.commit()
    publishers = [Recorder() for _ in range(4)]
    relays = [OutboxRelay(engine, p, batch_size=100, poll_interval=0.01) for p in publishers]

    async def drain(relay: OutboxRelay) -> None:
        while await relay.run_once():
            pass

    await asyncio.gather(*(drain(r) for r in relays))
    counts = Counter(i for p in publishers for i in p.published)
    assert len(counts) == total
    assert set(counts.values()) == {1}
    assert all(p.published for p in publishers), "every relay took part"
    assert set((await statuses(session_factory)).values()) == {OutboxStatus.PUBLISHED}


async def test_the_console_publisher_writes_one_json_line_per_message() -> None:
    stream = io.StringIO()
    message = OutboxMessage(
        message_id="m-1",
        event_type="Shipped",
        payload={"amount": Decimal("1.50"), "ratio": float("nan")},
        metadata={"low": float("-inf")},
    )
    await ConsolePublisher(stream).publish(message)
    line = stream.getvalue()
    assert line.endswith("\n")
    assert line.count("\n") == 1
    assert json.loads(line, parse_constant=lambda word: pytest.fail(f"not JSON: {word}")) == {
        "message_id": "m-1",
        "event_type": "Shipped",
        "payload": {"amount": "1.50", "ratio": None},
        "metadata": {"low": None},
        "created_at": message.created_at.isoformat(),
    }


async def test_publishers_load_by_name_or_path() -> None:
    assert isinstance(load_publisher("console"), ConsolePublisher)
    assert isinstance(
        load_publisher("cqrs_ddd_persistence_sqlalchemy.publishers:ConsolePublisher"),
        ConsolePublisher,
    )
    with pytest.raises(ValueError, match="module:attribute"):
        load_publisher("nonsense")
    with pytest.raises(ValueError, match="not a publisher"):
        load_publisher("json:JSONDecoder")


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
async def test_a_relay_survives_losing_its_database_connections(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    relay_engine = create_async_engine(
        db_url, connect_args={"server_settings": {"application_name": "relay-under-test"}}
    )
    publisher = Recorder()
    relay = OutboxRelay(relay_engine, publisher, poll_interval=0.02, max_poll_interval=0.2)
    running = asyncio.create_task(relay.run())

    async def published(ids: set[str]) -> None:
        deadline = time.monotonic() + 10
        while not ids <= set(publisher.published):
            assert not running.done(), running.exception()
            assert time.monotonic() < deadline, f"not published: {ids - set(publisher.published)}"
            await asyncio.sleep(0.01)

    try:
        await save(session_factory, ["before"])
        await published({"before"})
        for round_ in range(2):
            async with engine.connect() as conn:
                killed = await conn.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = 'relay-under-test'"
                    )
                )
            assert killed, "the relay had no connection to lose"
            ids = {f"after-{round_}-{i}" for i in range(3)}
            await save(session_factory, sorted(ids))
            await published(ids)
        assert relay.counters.database_errors >= 1
    finally:
        relay.stop()
        await asyncio.wait_for(running, timeout=5)
        await relay_engine.dispose()
    assert Counter(publisher.published) == Counter(
        ["before", *(f"after-{r}-{i}" for r in range(2) for i in range(3))]
    )
    assert set((await statuses(session_factory)).values()) == {OutboxStatus.PUBLISHED}


async def test_a_relay_stops_on_a_database_error_that_waiting_cannot_fix(
    session_factory: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    # A database without the outbox table: a deployment error, not a blip.
    empty = create_async_engine(db_url.replace("test.db", "empty.db"))
    if empty.dialect.name == "postgresql":
        await empty.dispose()
        empty = create_async_engine(
            db_url, connect_args={"server_settings": {"search_path": "pg_catalog"}}
        )
    relay = OutboxRelay(empty, Recorder(), poll_interval=0.01, max_poll_interval=0.05)
    try:
        with pytest.raises(DBAPIError):
            await asyncio.wait_for(relay.run(), timeout=10)
    finally:
        await empty.dispose()
    assert relay.counters.database_errors == 0


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
@pytest.mark.parametrize("durable", [False, True])
async def test_the_relays_own_transactions_commit_asynchronously_unless_durable(
    engine: AsyncEngine, db_url: str, durable: bool
) -> None:
    # Every connection of this engine starts with a setting that is not "off".
    synchronous = create_async_engine(
        db_url, connect_args={"server_settings": {"synchronous_commit": "remote_apply"}}
    )
    relay = OutboxRelay(synchronous, Recorder(), durable_commits=durable)
    try:
        async with relay._transaction() as session:
            inside = await session.scalar(text("SHOW synchronous_commit"))
        async with synchronous.connect() as conn:
            after = await conn.scalar(text("SHOW synchronous_commit"))
    finally:
        await synchronous.dispose()
    assert inside == ("remote_apply" if durable else "off")
    assert after == "remote_apply"  # SET LOCAL: that transaction only


class BrokenBatchPublisher:
    """Breaks the batch protocol by raising instead of returning outcomes."""

    async def publish_batch(self, messages: Sequence[OutboxMessage]) -> list[None]:
        raise ConnectionError("broker down")


async def test_a_publisher_error_is_not_taken_for_a_database_error(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await save(session_factory, ["x", "y"])
    relay = OutboxRelay(engine, BrokenBatchPublisher(), poll_interval=0.01)
    with pytest.raises(ConnectionError, match="broker down"):
        await asyncio.wait_for(relay.run(), timeout=10)
    assert relay.counters.database_errors == 0
    # The claims were given back: the messages are due again at once.
    async with session_factory() as session:
        due = await SQLAlchemyOutboxStorage(session).get_pending(10)
    assert sorted(m.message_id for m in due) == ["x", "y"]
