"""Outbox benchmark: end-to-end throughput, commit-to-publish latency, cost of saving.

    python benchmarks/bench_outbox.py [--backend postgres|sqlite|both] [--scale 1.0]

Workloads:

* **throughput**: messages saved in aggregate transactions (one aggregate update and
  ``MESSAGES_PER_COMMAND`` messages per unit of work) by a producer while relays drain
  them to a no-op publisher, until every message is published; messages/s end to end,
  with 1 and 4 relays on PostgreSQL (4 relays as 4 processes, 1 relay as 1 process)
  and 1 on SQLite.
* **latency**: one message committed every 20 ms; the time from the commit returning
  to the publisher receiving it, p50 and p99, with LISTEN/NOTIFY and with polling
  (every 100 ms, no NOTIFY).
* **save cost**: a unit of work that updates an aggregate, with and without
  ``save_messages`` of one message; the ratio of their times (lower is better).

Targets: 4 relays >= 1.5x one relay; p99 < 100 ms with LISTEN/NOTIFY.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import String, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Mapped, mapped_column

sys.path.insert(0, str(Path(__file__).parent))
from _support import postgres_url

from cqrs_ddd_core import AggregateRoot
from cqrs_ddd_core.ports.outbox import OutboxMessage
from cqrs_ddd_persistence_sqlalchemy.core import (
    Base,
    SQLAlchemyOutboxStorage,
    SQLAlchemyRepository,
    SQLAlchemyUnitOfWork,
)
from cqrs_ddd_persistence_sqlalchemy.core.models import OutboxMessage as OutboxRow
from cqrs_ddd_persistence_sqlalchemy.core.relay import OutboxRelay

MESSAGES_PER_COMMAND = 5


class Account(AggregateRoot[str]):
    id: str
    balance: int = 0


class AccountModel(Base):
    __tablename__ = "bench_accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    balance: Mapped[int]


accounts = SQLAlchemyRepository(entity_cls=Account, db_model_cls=AccountModel)


class NoOpPublisher:
    def __init__(self) -> None:
        self.count = 0
        self.received: dict[str, float] = {}
        self.record = False

    async def publish(self, message: OutboxMessage) -> None:
        self.count += 1
        if self.record:
            self.received[message.message_id] = time.perf_counter()


def _payload(i: int) -> dict[str, object]:
    return {
        "account_id": f"acc-{i % 100}",
        "amount": i % 997,
        "currency": "EUR",
        "reference": f"ref-{i:08d}",
        "at": datetime.now(UTC),
    }


async def _reset(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM outbox"))
        await conn.execute(text("DELETE FROM bench_accounts"))
    async with SQLAlchemyUnitOfWork(async_sessionmaker(engine)) as uow:
        for i in range(100):
            await accounts.add(Account(id=f"acc-{i}"), uow=uow)


async def _command(
    factory: async_sessionmaker, outbox: SQLAlchemyOutboxStorage, n: int, messages: int
) -> float:
    """One unit of work: update an account, save ``messages`` messages; return commit time."""
    async with SQLAlchemyUnitOfWork(factory) as uow:
        account = await accounts.get(f"acc-{n % 100}", uow=uow)
        assert account is not None
        account.balance += 1
        await accounts.add(account, uow=uow)
        if messages:
            await outbox.save_messages(
                [
                    OutboxMessage(event_type="Deposited", payload=_payload(n * 10 + k))
                    for k in range(messages)
                ],
                uow=uow,
            )
    return time.perf_counter()


async def _pending(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.status.in_(("pending", "failed")))
            )
            or 0
        )


# -- throughput -----------------------------------------------------------------------------


def _relay_process(url: str, ready: Any, go: Any, stop: Any) -> None:
    """A relay in its own process, from ``go`` until ``stop`` is set."""

    async def main() -> None:
        engine = create_async_engine(url, pool_size=4)
        relay = OutboxRelay(
            engine, NoOpPublisher(), batch_size=100, poll_interval=0.005, max_poll_interval=0.05
        )
        async with engine.connect() as conn:  # warm the pool before the clock starts
            await conn.execute(text("SELECT 1"))
        ready.set()
        await asyncio.to_thread(go.wait)
        running = asyncio.create_task(relay.run())
        await asyncio.to_thread(stop.wait)
        relay.stop()
        await running
        await engine.dispose()

    asyncio.run(main())


async def throughput(url: str, relays: int, commands: int, *, prefill: bool) -> float:
    """Messages/s until every message is published.

    With ``prefill`` the commands are committed first and the clock measures the
    relays draining them; otherwise it runs from the first commit, producers and
    relays working at once (end to end).
    """
    engine = create_async_engine(url, pool_size=10)
    factory = async_sessionmaker(engine, expire_on_commit=False)
    await _reset(engine)
    outbox = SQLAlchemyOutboxStorage()
    total = commands * MESSAGES_PER_COMMAND
    if engine.dialect.name == "sqlite":
        # One relay beside one producer: SQLite has one writer at a time.
        publisher = NoOpPublisher()
        relay = OutboxRelay(
            engine, publisher, batch_size=100, poll_interval=0.005, max_poll_interval=0.05
        )
        running = asyncio.create_task(relay.run())
        start = time.perf_counter()
        await _produce(factory, outbox, range(commands))
        while publisher.count < total:  # noqa: ASYNC110 - polling the relay's progress
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - start
        relay.stop()
        await running
    else:
        # Relays run as separate processes, as they would be deployed; four producer
        # tasks commit commands meanwhile.
        context = multiprocessing.get_context("spawn")
        go, stop = context.Event(), context.Event()
        readies = [context.Event() for _ in range(relays)]
        processes = [
            context.Process(target=_relay_process, args=(url, ready, go, stop)) for ready in readies
        ]
        for process in processes:
            process.start()
        for ready in readies:
            await asyncio.to_thread(ready.wait, 60)
        producers = 4
        work = [_produce(factory, outbox, range(p, commands, producers)) for p in range(producers)]
        if prefill:
            await asyncio.gather(*work)
        go.set()
        start = time.perf_counter()
        if not prefill:
            await asyncio.gather(*work)
        while await _pending(engine) > 0:  # noqa: ASYNC110 - the relays are other processes
            await asyncio.sleep(0.02)  # an index-only count, 50 times a second
        elapsed = time.perf_counter() - start
        stop.set()
        for process in processes:
            await asyncio.to_thread(process.join, 30)
    await engine.dispose()
    return total / elapsed


async def _produce(factory: async_sessionmaker, outbox: SQLAlchemyOutboxStorage, ns: range) -> None:
    for n in ns:
        await _command(factory, outbox, n, MESSAGES_PER_COMMAND)


# -- latency ----------------------------------------------------------------------------


async def latency(url: str, listen: bool, count: int) -> tuple[float, float]:
    engine = create_async_engine(url)
    factory = async_sessionmaker(engine, expire_on_commit=False)
    await _reset(engine)
    outbox = SQLAlchemyOutboxStorage()
    publisher = NoOpPublisher()
    publisher.record = True
    relay = OutboxRelay(
        engine,
        publisher,
        listen=listen,
        poll_interval=0.1 if not listen else 1.0,
        max_poll_interval=0.1 if not listen else 1.0,
    )
    running = asyncio.create_task(relay.run())
    await asyncio.sleep(0.5)
    committed: dict[str, float] = {}
    for n in range(count):
        message = OutboxMessage(event_type="Ping", payload={"n": n})
        async with SQLAlchemyUnitOfWork(factory) as uow:
            await outbox.save_messages([message], uow=uow)
        committed[message.message_id] = time.perf_counter()
        await asyncio.sleep(0.02)
    while len(publisher.received) < count:  # noqa: ASYNC110 - polling the relay's progress
        await asyncio.sleep(0.01)
    relay.stop()
    await running
    await engine.dispose()
    delays = sorted(publisher.received[i] - t for i, t in committed.items())
    p50 = statistics.median(delays)
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    return p50 * 1000, p99 * 1000


# -- save cost ------------------------------------------------------------------------------


async def save_cost(url: str, commands: int, rounds: int) -> tuple[float, float, float]:
    engine = create_async_engine(url)
    factory = async_sessionmaker(engine, expire_on_commit=False)
    await _reset(engine)
    outbox = SQLAlchemyOutboxStorage()
    ratios, without_times, with_times = [], [], []
    for r in range(rounds):
        times = {}
        for messages in (0, 1) if r % 2 == 0 else (1, 0):
            start = time.perf_counter()
            for n in range(commands):
                await _command(factory, outbox, n, messages)
            times[messages] = time.perf_counter() - start
        ratios.append(times[1] / times[0])
        without_times.append(times[0])
        with_times.append(times[1])
    await engine.dispose()
    per_cmd = lambda xs: statistics.median(xs) / commands * 1000  # noqa: E731
    return statistics.median(ratios), per_cmd(without_times), per_cmd(with_times)


# -- main -------------------------------------------------------------------------------------


async def run_backend(name: str, url: str, scale: float, rounds: int) -> list[str]:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()
    commands = max(20, int(2000 * scale))
    rows = []
    if name == "postgres":
        for prefill, label in ((True, "drain"), (False, "end to end")):
            one = statistics.median(
                [await throughput(url, 1, commands, prefill=prefill) for _ in range(rounds)]
            )
            four = statistics.median(
                [await throughput(url, 4, commands, prefill=prefill) for _ in range(rounds)]
            )
            ratio = four / one
            target = f"{'PASS' if ratio >= 1.5 else 'MISS'} (>= 1.5x)" if prefill else ""
            rows.append(f"| postgres | {label}, 1 relay | {one:,.0f} msg/s | | |")
            rows.append(
                f"| postgres | {label}, 4 relays | {four:,.0f} msg/s | {ratio:.2f}x one relay "
                f"| {target} |"
            )
        count = max(20, int(300 * scale))
        p50, p99 = await latency(url, True, count)
        rows.append(
            f"| postgres | latency, LISTEN/NOTIFY | p50 {p50:.1f} ms, p99 {p99:.1f} ms | | "
            f"{'PASS' if p99 < 100 else 'MISS'} (p99 < 100 ms) |"
        )
        p50, p99 = await latency(url, False, count)
        rows.append(
            f"| postgres | latency, polling every 100 ms | p50 {p50:.1f} ms, p99 {p99:.1f} ms | | |"
        )
    else:
        one = statistics.median(
            [await throughput(url, 1, commands, prefill=False) for _ in range(rounds)]
        )
        rows.append(f"| sqlite | end to end, 1 relay | {one:,.0f} msg/s | | |")
    ratio, without, with_ = await save_cost(url, max(20, int(500 * scale)), rounds)
    rows.append(
        f"| {name} | unit of work with save_messages(1) vs without | "
        f"{with_:.2f} vs {without:.2f} ms | {ratio:.2f}x | |"
    )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("postgres", "sqlite", "both"), default="both")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    command = "python benchmarks/bench_outbox.py " + " ".join(sys.argv[1:])
    rows: list[str] = []

    async def go() -> None:
        if args.backend in ("sqlite", "both"):
            with tempfile.TemporaryDirectory() as directory:
                url = f"sqlite+aiosqlite:///{directory}/bench_outbox.db"
                rows.extend(await run_backend("sqlite", url, args.scale, args.rounds))
        if args.backend in ("postgres", "both"):
            with postgres_url() as url:
                rows.extend(await run_backend("postgres", url, args.scale, args.rounds))

    asyncio.run(go())
    print(
        f"\n`{command.strip()}` on {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
        "PostgreSQL default durability\n"
    )
    print("| backend | workload | result | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
