"""RabbitMQPublisher against a real broker, end to end through the relay on PostgreSQL.

The broker is a throwaway ``rabbitmq-server`` node started once for this module (see
``rabbitmq_support``), or ``CQRS_DDD_TEST_RABBITMQ_URL``. Without either the broker
tests skip, unless ``CQRS_DDD_REQUIRE_RABBITMQ=1``, which makes that a failure.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

import aio_pika
import pytest
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage
from rabbitmq_support import (
    RABBITMQ_URL_ENV,
    REQUIRE_RABBITMQ_ENV,
    Broker,
    ExternalBroker,
    RabbitMQBroker,
    find_rabbitmq_server,
    free_port,
    read_queue,
    topology,
)
from sample_domain import Counter, CounterModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cqrs_ddd_core.ports.outbox import OutboxMessage, OutboxStatus, RetryPolicy
from cqrs_ddd_persistence_sqlalchemy.core import (
    SQLAlchemyOutboxStorage,
    SQLAlchemyRepository,
    SQLAlchemyUnitOfWork,
)
from cqrs_ddd_persistence_sqlalchemy.core.models import OutboxMessage as OutboxRow
from cqrs_ddd_persistence_sqlalchemy.core.relay import OutboxRelay
from cqrs_ddd_persistence_sqlalchemy.publishers import load_publisher
from cqrs_ddd_persistence_sqlalchemy.rabbitmq import (
    ConfirmTimeoutError,
    RabbitMQPublisher,
    UnroutableMessageError,
)

F = TypeVar("F", bound=Callable[..., Any])


def needs_broker(test: F) -> F:
    """Marks a test that needs the broker, and runs it on PostgreSQL (``-m postgres``).

    Every broker test is in the PostgreSQL run, so that only that run starts a broker.
    """
    if "engine" in inspect.signature(test).parameters:
        test = pytest.mark.parametrize("backend", [pytest.param("postgres")])(test)
    test = pytest.mark.postgres(test)
    marked: F = pytest.mark.rabbitmq(test)
    return marked


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    """The broker of this module: external, or a throwaway node stopped at the end."""
    if url := os.environ.get(RABBITMQ_URL_ENV):
        yield ExternalBroker(url)
        return
    server = find_rabbitmq_server()
    if server is None:
        reason = (
            "no rabbitmq-server (looked in /usr/lib/rabbitmq and on PATH); install it "
            f"(apt-get install rabbitmq-server) or set {RABBITMQ_URL_ENV}"
        )
        if os.environ.get(REQUIRE_RABBITMQ_ENV) == "1":
            pytest.fail(
                f"RabbitMQ tests FAILED ({REQUIRE_RABBITMQ_ENV}=1): {reason}", pytrace=False
            )
        pytest.skip(f"RabbitMQ tests SKIPPED: {reason}")
    node = RabbitMQBroker(server)
    # atexit covers an interrupted session that never reaches the fixture's teardown.
    atexit.register(node.close)
    try:
        node.start()  # a half-started node is stopped and removed too
        yield node
    finally:
        node.close()


def controlled(broker: Broker) -> RabbitMQBroker:
    """The broker, if this session started it (so it may be stopped or alarmed)."""
    if not isinstance(broker, RabbitMQBroker):
        pytest.skip(f"{RABBITMQ_URL_ENV} is an external broker; tests must not stop or alarm it")
    return broker


def message(i: int, *, event_type: str | None = None) -> OutboxMessage:
    return OutboxMessage(
        message_id=f"m{i:04d}",
        event_type=event_type or ("Counter.Created" if i % 2 else "Counter.Renamed"),
        payload={"i": i, "name": f"zähler {i}", "tags": ["a", "b"], "ratio": i / 4},
        metadata={"correlation_id": f"c{i}", "tenant": "acme"},
    )


async def commit(
    session_factory: async_sessionmaker[AsyncSession], messages: Sequence[OutboxMessage]
) -> None:
    """Save an aggregate and its messages in one unit of work, per message."""
    counters = SQLAlchemyRepository(entity_cls=Counter, db_model_cls=CounterModel)
    outbox = SQLAlchemyOutboxStorage()
    async with SQLAlchemyUnitOfWork(session_factory) as uow:
        for m in messages:
            await counters.add(Counter(id=m.message_id), uow=uow)
        await outbox.save_messages(messages, uow=uow)


async def statuses(session_factory: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    async with session_factory() as session:
        rows = await session.execute(select(OutboxRow.event_id, OutboxRow.status))
        return {row[0]: row[1] for row in rows}


async def drain(relay: OutboxRelay) -> None:
    while await relay.run_once():
        pass


def check_delivered(delivered: AbstractIncomingMessage, sent: OutboxMessage) -> None:
    assert delivered.message_id == sent.message_id
    assert delivered.routing_key == sent.event_type
    assert json.loads(delivered.body.decode("utf-8")) == sent.payload
    assert delivered.content_type == "application/json"
    assert delivered.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert delivered.type == sent.event_type
    headers = delivered.headers
    assert headers["event_type"] == sent.event_type
    assert headers["metadata"] == sent.metadata
    assert isinstance(headers["created_at"], str)
    assert datetime.fromisoformat(headers["created_at"]) == sent.created_at


# -- through the relay ---------------------------------------------------------------


@needs_broker
async def test_committed_messages_arrive_exactly_once(
    broker: Broker, engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    sent = [message(i) for i in range(120)]
    for start in range(0, len(sent), 10):
        await commit(session_factory, sent[start : start + 10])
    with pytest.raises(RuntimeError, match="abandoned"):
        async with SQLAlchemyUnitOfWork(session_factory) as uow:
            await SQLAlchemyOutboxStorage().save_messages([message(999)], uow=uow)
            raise RuntimeError("abandoned")  # rolled back: m0999 is never published

    async with topology(broker.url) as where:
        # Two relays with a publisher (a connection) each compete for the batches.
        publishers = [RabbitMQPublisher(broker.url, exchange=where.exchange) for _ in range(2)]
        try:
            relays = [OutboxRelay(engine, p, batch_size=25) for p in publishers]
            await asyncio.gather(*(drain(r) for r in relays))
        finally:
            for publisher in publishers:
                await publisher.close()
        delivered = await read_queue(broker.url, where.queue, at_least=len(sent))

    tally = Tally(d.message_id for d in delivered)
    assert set(tally) == {m.message_id for m in sent}
    assert set(tally.values()) == {1}, "a message arrived twice"
    by_id = {m.message_id: m for m in sent}
    for d in delivered:
        check_delivered(d, by_id[str(d.message_id)])
    assert set((await statuses(session_factory)).values()) == {OutboxStatus.PUBLISHED}
    assert sum(r.counters.published for r in relays) == len(sent)
    assert all(r.counters.published for r in relays), "both relays took part"


@needs_broker
async def test_an_unroutable_message_is_an_error_outcome(
    broker: Broker, engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    routed = message(1, event_type="Order.Placed")
    lost = message(2, event_type="Audit.Logged")
    async with topology(broker.url, binding_key="Order.*") as where:
        async with RabbitMQPublisher(broker.url, exchange=where.exchange) as publisher:
            outcomes = await publisher.publish_batch([routed, lost])
            assert outcomes[0] is None
            error = outcomes[1]
            assert isinstance(error, UnroutableMessageError)
            assert (error.message_id, error.routing_key) == ("m0002", "Audit.Logged")
            assert (error.reply_code, error.reply_text) == (312, "NO_ROUTE")
            with pytest.raises(UnroutableMessageError, match="no queue is bound"):
                await publisher.publish(lost)

            await commit(session_factory, [routed, lost])
            relay = OutboxRelay(engine, publisher)
            assert await relay.run_once() == 2
        # Without mandatory the broker confirms the message and drops it.
        async with RabbitMQPublisher(
            broker.url, exchange=where.exchange, mandatory=False
        ) as careless:
            assert await careless.publish_batch([lost]) == [None]
        delivered = await read_queue(broker.url, where.queue, at_least=2)

    assert [d.message_id for d in delivered] == ["m0001", "m0001"]
    assert await statuses(session_factory) == {"m0001": "published", "m0002": "failed"}
    async with session_factory() as session:
        failed = await session.get(OutboxRow, "m0002")
        assert failed is not None
        assert failed.error is not None
        assert failed.error.startswith("UnroutableMessageError: RabbitMQ returned message 'm0002'")


@needs_broker
async def test_the_default_exchange_routes_by_queue_name(broker: Broker) -> None:
    async with topology(broker.url) as where:
        publisher = RabbitMQPublisher(broker.url, exchange="", routing_key=lambda _: where.queue)
        async with publisher:
            assert await publisher.publish_batch([message(1), message(2)]) == [None, None]
        delivered = await read_queue(broker.url, where.queue, at_least=2)
    assert [(d.message_id, d.routing_key) for d in delivered] == [
        ("m0001", where.queue),
        ("m0002", where.queue),
    ]


@needs_broker
async def test_a_missing_confirm_is_a_timeout_outcome(
    broker: Broker, engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    node = controlled(broker)
    await commit(session_factory, [message(1), message(2)])
    async with topology(node.url) as where:
        publisher = RabbitMQPublisher(node.url, exchange=where.exchange, confirm_timeout=0.5)
        async with publisher:
            await publisher.publish(message(0))  # connected and declared before the alarm
            # A memory alarm makes the broker stop reading from publishing connections,
            # so the publishes below get no answer at all.
            await asyncio.to_thread(node.ctl, "set_vm_memory_high_watermark", "0")
            try:
                started = time.monotonic()
                relay = OutboxRelay(engine, publisher)
                assert await relay.run_once() == 2
                assert time.monotonic() - started < 5
            finally:
                await asyncio.to_thread(node.ctl, "set_vm_memory_high_watermark", "0.4")
    assert relay.counters.failed == 2
    assert await statuses(session_factory) == {"m0001": "failed", "m0002": "failed"}
    async with session_factory() as session:
        errors = set(await session.scalars(select(OutboxRow.error)))
    assert {e.split(":")[0] for e in errors if e} == {ConfirmTimeoutError.__name__}


@needs_broker
async def test_a_broker_restart_leads_to_retries_not_losses(
    broker: Broker, engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    node = controlled(broker)
    committed: list[OutboxMessage] = []
    producing = True

    async def produce() -> None:
        i = 0
        while producing:
            batch = [message(n) for n in range(i, i + 5)]
            await commit(session_factory, batch)
            committed.extend(batch)
            i += 5
            await asyncio.sleep(0.05)

    async with topology(node.url) as where:
        publisher = RabbitMQPublisher(
            f"{node.url}?reconnect_interval=0.3", exchange=where.exchange, confirm_timeout=5
        )
        retry = RetryPolicy(max_attempts=100, base_delay=0.05, max_delay=0.5, jitter=0.0)
        relay = OutboxRelay(
            engine, publisher, batch_size=20, retry=retry, poll_interval=0.05, max_poll_interval=0.2
        )
        running = asyncio.create_task(relay.run())
        producer = asyncio.create_task(produce())
        try:
            await wait_for(lambda: relay.counters.published >= 50, timeout=20)
            await asyncio.to_thread(node.stop)  # the relay keeps running: it fails rounds
            await wait_for(lambda: relay.counters.failed >= 10, timeout=20)
            await asyncio.to_thread(node.start)
            published = relay.counters.published
            await wait_for(lambda: relay.counters.published > published + 20, timeout=30)
            producing = False
            await producer
            await wait_for_empty_outbox(relay, timeout=30)
        finally:
            producing = False
            if not node.running:  # the test failed during the outage
                await asyncio.to_thread(node.start)
            relay.stop()
            await asyncio.wait_for(running, timeout=30)
            await publisher.close()
            if not producer.done():
                producer.cancel()
        delivered = await read_queue(node.url, where.queue, at_least=len(committed))

    stats = await relay.stats()
    assert (stats.pending, stats.failed, stats.dead) == (0, 0, 0)
    assert relay.counters.failed >= 10
    assert relay.counters.dead_lettered == 0
    tally = Tally(str(d.message_id) for d in delivered)
    assert set(tally) == {m.message_id for m in committed}, "a message was lost"
    # At least once: only the batch in flight when the broker stopped can come twice.
    assert sum(tally.values()) - len(tally) <= relay.batch_size


async def wait_for(condition: Callable[[], bool], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def wait_for_empty_outbox(relay: OutboxRelay, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        stats = await relay.stats()
        if stats.pending == stats.failed == 0:
            return
        assert time.monotonic() < deadline, f"the outbox did not empty: {stats}"
        await asyncio.sleep(0.1)


@needs_broker
async def test_the_relay_command_publishes_to_rabbitmq_by_name(
    broker: Broker,
    postgres_url: str,
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    sent = [message(i) for i in range(30)]
    await commit(session_factory, sent)
    async with topology(broker.url) as where:
        env = {
            **os.environ,
            "CQRS_DDD_RABBITMQ_URL": broker.url,
            "CQRS_DDD_RABBITMQ_EXCHANGE": where.exchange,
        }
        command = [sys.executable, "-m", "cqrs_ddd_persistence_sqlalchemy", "relay"]
        options = ["--db", postgres_url, "--publisher", "rabbitmq", "--poll-interval", "0.05"]
        process = subprocess.Popen(
            [*command, *options],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            delivered = await read_queue(broker.url, where.queue, at_least=len(sent), timeout=30)
            process.send_signal(signal.SIGTERM)
            _, err = await asyncio.to_thread(process.communicate, timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        delivered += await read_queue(broker.url, where.queue)

    assert process.returncode == 0, err
    assert sorted(str(d.message_id) for d in delivered) == [m.message_id for m in sent]
    assert "stopped: RelayCounters(published=30" in err
    assert set((await statuses(session_factory)).values()) == {OutboxStatus.PUBLISHED}


# -- without a broker -------------------------------------------------------------------


async def test_a_broker_that_is_down_fails_every_message_of_the_batch() -> None:
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    async with RabbitMQPublisher(url, connect_timeout=5) as publisher:
        outcomes = await publisher.publish_batch([message(1), message(2), message(3)])
        assert len(outcomes) == 3
        assert all(isinstance(error, ConnectionError) for error in outcomes)
        with pytest.raises(ConnectionError):
            await publisher.publish(message(1))
        assert await publisher.publish_batch([]) == []
    with pytest.raises(RuntimeError, match="closed RabbitMQPublisher"):
        await publisher.publish_batch([message(1)])
    await publisher.close()  # closing twice is fine


def test_the_publisher_is_configured_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CQRS_DDD_RABBITMQ_URL", raising=False)
    monkeypatch.delenv("CQRS_DDD_RABBITMQ_EXCHANGE", raising=False)
    default = RabbitMQPublisher.from_environment()
    assert (default.url, default.exchange_name) == (
        "amqp://guest:guest@127.0.0.1:5672/",
        "domain-events",
    )
    monkeypatch.setenv("CQRS_DDD_RABBITMQ_URL", "amqp://app:secret@mq.internal:5673/prod")
    monkeypatch.setenv("CQRS_DDD_RABBITMQ_EXCHANGE", "orders")
    named = load_publisher("rabbitmq")  # no connection is opened yet
    assert isinstance(named, RabbitMQPublisher)
    assert (named.url, named.exchange_name) == ("amqp://app:secret@mq.internal:5673/prod", "orders")
    assert "secret" not in repr(named)
    assert named.routing_key(message(1)) == "Counter.Created"
    assert named.message_id(message(1)) == "m0001"
    with pytest.raises(ValueError, match="positive"):
        RabbitMQPublisher(confirm_timeout=0)


class ScriptedPublisher(RabbitMQPublisher):
    """No broker: each message's publish does what ``script`` says for its id."""

    def __init__(self, script: dict[str, Callable[[], Awaitable[None]]]) -> None:
        super().__init__()
        self.script = script

    async def _open_exchange(self) -> AbstractExchange:
        return cast("AbstractExchange", None)

    async def _publish_to(self, exchange: AbstractExchange, message: OutboxMessage) -> None:
        await self.script[message.message_id]()


async def test_a_confirm_cancelled_by_the_client_is_that_messages_failure() -> None:
    async def confirmed() -> None:
        await asyncio.sleep(0.01)

    async def confirm_cancelled() -> None:
        # What awaiting a confirm raises when aio-pika cancels it as the channel closes.
        raise asyncio.CancelledError

    publisher = ScriptedPublisher({"m0001": confirmed, "m0002": confirm_cancelled})
    outcomes = await publisher.publish_batch([message(1), message(2)])
    assert outcomes[0] is None
    assert isinstance(outcomes[1], ConnectionError)


async def test_cancelling_a_batch_cancels_it_rather_than_failing_messages() -> None:
    async def slow() -> None:
        await asyncio.sleep(10)

    publisher = ScriptedPublisher({"m0001": slow, "m0002": slow})
    batch = asyncio.create_task(publisher.publish_batch([message(1), message(2)]))
    await asyncio.sleep(0.05)
    batch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch
