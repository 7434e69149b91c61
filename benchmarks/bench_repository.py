"""SQLAlchemyRepository against hand-written SQLAlchemy ORM code, on SQLite and PostgreSQL.

Both sides use the same engine, the same model, the same domain class and the same
rows, and both return domain objects. The baseline is what a team writes without
the library: ``session.add_all`` of model instances, ``session.get``, a ``select()``
with ``where``/``order_by``/``limit``/``offset``, and ``stream_scalars`` with
``yield_per``, each model turned into the aggregate by its constructor.

Workloads (counts are multiplied by ``--scale``):

* add 10,000 new aggregates in one unit of work (the table is emptied before each run);
* get 2,000 aggregates by id, in one unit of work;
* 1,000 searches for a page of 50: two conditions (``status = ?`` and ``total > ?``),
  newest first, the specification and options built per search as a request
  handler would;
* stream 100,000 rows in batches of 1,000, consuming each aggregate and dropping it.
  Peak RSS growth is measured in a fresh process per side (``VmHWM`` reset with
  ``/proc/self/clear_refs`` after a warm-up).

The two sides alternate, ``--rounds`` times each after an untimed warm-up; the ratio
is ours / baseline (lower is better), the median of the per-round ratios, for wall
time and for this process's CPU time (the client-side work alone). Targets are
reported, not asserted: every wall-time ratio <= 1.15 on PostgreSQL and stream
memory growth under 50 MB.

Usage::

    python benchmarks/bench_repository.py [--backend sqlite|postgres|both]
                                          [--scale 1.0] [--rounds 7]

PostgreSQL is ``CQRS_DDD_BENCH_POSTGRES_URL`` when set (only the ``bench_orders``
table is dropped and created there), otherwise a throwaway server with the default
durability settings.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import platform
import random
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

import _support
from sqlalchemy import Index, Numeric, String, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as create_engine
from sqlalchemy.orm import Mapped, mapped_column

from cqrs_ddd_core import AggregateRoot
from cqrs_ddd_persistence_sqlalchemy.core import Base, SQLAlchemyRepository, SQLAlchemyUnitOfWork
from cqrs_ddd_specifications import QueryOptions, SpecificationBuilder

RATIO_TARGET = 1.15
STREAM_GROWTH_TARGET_MB = 50.0
STREAM_BATCH = 1_000
PAGE = 50
COUNTS = {"add": 10_000, "get": 2_000, "search": 1_000, "stream": 100_000}
STATUSES = ("pending", "paid", "shipped", "cancelled")
CHANNELS = ("web", "app", "store")
EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
WORKER_URL_ENV = "CQRS_DDD_BENCH_WORKER_URL"


class BenchOrder(AggregateRoot[str]):
    id: str
    customer_id: str
    total: float
    status: str
    placed_at: dt.datetime
    details: dict[str, Any]


class BenchOrderModel(Base):
    __tablename__ = "bench_orders"
    __table_args__ = (Index("ix_bench_orders_status_placed_at", "status", "placed_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32))
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    status: Mapped[str] = mapped_column(String(20))
    placed_at: Mapped[dt.datetime]
    details: Mapped[dict[str, Any]]


TABLE = BenchOrderModel.__table__


def make_orders(count: int, *, seed: int, prefix: str = "o") -> list[BenchOrder]:
    """``count`` new aggregates (version 0) with deterministic, varied values."""
    rng = random.Random(seed)
    return [
        BenchOrder(
            id=f"{prefix}{i:09d}",
            customer_id=f"c{rng.randrange(5_000):06d}",
            total=round(rng.uniform(1, 1_000), 2),
            status=rng.choice(STATUSES),
            placed_at=EPOCH + dt.timedelta(seconds=rng.randrange(365 * 86_400)),
            details={"channel": rng.choice(CHANNELS), "items": rng.randint(1, 9)},
        )
        for i in range(count)
    ]


# -- the baseline: hand-written ORM code -------------------------------------------------


def to_row(order: BenchOrder) -> BenchOrderModel:
    return BenchOrderModel(
        id=order.id,
        customer_id=order.customer_id,
        total=order.total,
        status=order.status,
        placed_at=order.placed_at,
        details=order.details,
        version=1,
    )


def to_domain(row: BenchOrderModel) -> BenchOrder:
    return BenchOrder(
        id=row.id,
        customer_id=row.customer_id,
        total=row.total,
        status=row.status,
        placed_at=row.placed_at,
        details=row.details,
        version=row.version,
    )


class Baseline:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def add(self, orders: list[BenchOrder]) -> None:
        async with self.sessions() as session, session.begin():
            session.add_all([to_row(o) for o in orders])

    async def get(self, ids: list[str]) -> list[BenchOrder]:
        found = []
        async with self.sessions() as session, session.begin():
            for order_id in ids:
                row = await session.get(BenchOrderModel, order_id)
                if row is not None:
                    found.append(to_domain(row))
        return found

    async def get_each(self, ids: list[str]) -> None:
        for order_id in ids:
            async with self.sessions() as session, session.begin():
                row = await session.get(BenchOrderModel, order_id)
                if row is not None:
                    to_domain(row)

    async def search(self, queries: list[Query]) -> list[list[BenchOrder]]:
        pages = []
        async with self.sessions() as session, session.begin():
            for query in queries:
                stmt = (
                    select(BenchOrderModel)
                    .where(
                        BenchOrderModel.status == query.status,
                        BenchOrderModel.total > query.min_total,
                    )
                    .order_by(BenchOrderModel.placed_at.desc(), BenchOrderModel.id)
                    .limit(PAGE)
                    .offset(query.offset)
                )
                pages.append([to_domain(row) for row in await session.scalars(stmt)])
        return pages

    async def stream(self, limit: int | None = None) -> int:
        count = 0
        stmt = select(BenchOrderModel).order_by(BenchOrderModel.id).limit(limit)
        async with self.sessions() as session, session.begin():
            result = await session.stream_scalars(stmt.execution_options(yield_per=STREAM_BATCH))
            # One await per batch: `async for row in result` would cost one await
            # (a greenlet switch) per row, and a competent baseline avoids that.
            async for rows in result.partitions():
                for row in rows:
                    to_domain(row)
                    count += 1
        return count


# -- our side: the repository --------------------------------------------------------------


class Ours:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.repo = SQLAlchemyRepository(BenchOrder, BenchOrderModel)

    async def add(self, orders: list[BenchOrder]) -> None:
        async with SQLAlchemyUnitOfWork(self.sessions) as uow:
            for order in orders:
                await self.repo.add(order, uow)

    async def get(self, ids: list[str]) -> list[BenchOrder]:
        found = []
        async with SQLAlchemyUnitOfWork(self.sessions) as uow:
            for order_id in ids:
                order = await self.repo.get(order_id, uow)
                if order is not None:
                    found.append(order)
        return found

    async def get_each(self, ids: list[str]) -> None:
        for order_id in ids:
            async with SQLAlchemyUnitOfWork(self.sessions) as uow:
                await self.repo.get(order_id, uow)

    async def search(self, queries: list[Query]) -> list[list[BenchOrder]]:
        pages = []
        async with SQLAlchemyUnitOfWork(self.sessions) as uow:
            for query in queries:
                spec = (
                    SpecificationBuilder()
                    .where("status", "eq", query.status)
                    .where("total", "gt", query.min_total)
                    .build()
                )
                options = (
                    QueryOptions()
                    .with_specification(spec)
                    .with_ordering("-placed_at")
                    .with_pagination(limit=PAGE, offset=query.offset)
                )
                pages.append(await (await self.repo.search(options, uow)))
        return pages

    async def stream(self, limit: int | None = None) -> int:
        count = 0
        options = QueryOptions().with_pagination(limit=limit)
        async with SQLAlchemyUnitOfWork(self.sessions) as uow:
            async for _order in (await self.repo.search(options, uow)).stream(STREAM_BATCH):
                count += 1
        return count


# -- one backend ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    status: str
    min_total: int
    offset: int


@dataclass
class Row:
    """One line of the results table."""

    backend: str
    workload: str
    ours: str
    baseline: str
    ratio: str
    cpu_ratio: str
    target: str
    result: str


def make_queries(count: int, *, rows: int, seed: int) -> list[Query]:
    """Searches whose pages are full: at least 1/8 of the rows match each of them."""
    rng = random.Random(seed)
    pages = max(1, min(10, rows // 2_000))
    return [
        Query(rng.choice(STATUSES), rng.choice((100, 250, 500)), PAGE * rng.randrange(pages))
        for _ in range(count)
    ]


async def reset_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all, tables=[TABLE])
        await conn.run_sync(Base.metadata.create_all, tables=[TABLE])


async def empty_table(engine: AsyncEngine) -> None:
    statement = "TRUNCATE bench_orders" if engine.dialect.name == "postgresql" else None
    async with engine.begin() as conn:
        await conn.execute(text(statement or "DELETE FROM bench_orders"))


async def seed(engine: AsyncEngine, count: int) -> list[str]:
    """Insert ``count`` rows with Core executemany (fast, outside any measurement)."""
    ids: list[str] = []
    chunk = 10_000
    for start in range(0, count, chunk):
        orders = make_orders(min(chunk, count - start), seed=start, prefix=f"s{start:07d}-")
        rows = [{**o.model_dump(exclude={"version"}), "version": 1} for o in orders]
        async with engine.begin() as conn:
            await conn.execute(insert(TABLE), rows)
        ids.extend(o.id for o in orders)
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE bench_orders"))
    return ids


async def describe(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            server = await conn.scalar(text("SHOW server_version"))
            settings = {
                name: await conn.scalar(text(f"SHOW {name}"))
                for name in ("fsync", "synchronous_commit", "full_page_writes")
            }
            durability = ", ".join(f"{k}={v}" for k, v in settings.items())
            return f"PostgreSQL {server} ({durability})"
        server = await conn.scalar(text("SELECT sqlite_version()"))
        journal = await conn.scalar(text("PRAGMA journal_mode"))
        synchronous = await conn.scalar(text("PRAGMA synchronous"))
        names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        return (
            f"SQLite {server} file (journal_mode={journal}, "
            f"synchronous={names.get(synchronous, synchronous)})"
        )


async def check_same_results(ours: Ours, baseline: Baseline, ids: list[str]) -> None:
    """Both sides must return the same aggregates, or the comparison means nothing."""
    sample, queries = ids[:50], make_queries(20, rows=len(ids), seed=99)
    if await ours.get(sample) != await baseline.get(sample):
        raise AssertionError("get: the repository and the baseline disagree")
    if await ours.search(queries) != await baseline.search(queries):
        raise AssertionError("search: the repository and the baseline disagree")
    if any(len(page) != PAGE for page in await ours.search(queries)):
        raise AssertionError("search: a page is short; seed more rows")
    if (await ours.stream(), await baseline.stream()) != (len(ids), len(ids)):
        raise AssertionError("stream: the repository and the baseline disagree")


def stream_memory(url: str, side: str, rows: int) -> dict[str, Any]:
    """Stream ``rows`` rows in a fresh interpreter; return its timing and RSS growth."""
    command = [sys.executable, __file__, "--stream-worker", side, "--rows", str(rows)]
    env = {**os.environ, WORKER_URL_ENV: url}  # not in argv, where `ps` would show a password
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False, timeout=1_800
    )
    if done.returncode != 0:
        raise RuntimeError(f"stream worker {side} failed:\n{done.stdout}{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def fmt_time(seconds: float, ops: int) -> str:
    return f"{seconds * 1e3:,.0f} ms ({seconds / ops * 1e6:,.0f} µs/op)"


async def run_backend(name: str, url: str, args: argparse.Namespace) -> tuple[str, list[Row]]:
    counts = {key: max(1, round(n * args.scale)) for key, n in COUNTS.items()}
    engine = create_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    ours, baseline = Ours(sessions), Baseline(sessions)
    rows: list[Row] = []
    is_postgres = engine.dialect.name == "postgresql"

    def row(workload: str, comparison: _support.Comparison) -> Row:
        ratio = comparison.ratio
        target, result = ("—", "info")
        if is_postgres:
            target = f"≤ {RATIO_TARGET:.2f}"
            result = "PASS" if ratio <= RATIO_TARGET else "MISS"
        return Row(
            name,
            workload,
            fmt_time(comparison.ours_median, comparison.ops),
            fmt_time(comparison.baseline_median, comparison.ops),
            f"{ratio:.2f}",
            f"{comparison.cpu_ratio:.2f}",
            target,
            result,
        )

    async def measure(
        workload: str,
        ops: int,
        run_ours: Callable[[], Awaitable[object]],
        run_baseline: Callable[[], Awaitable[object]],
        before_each: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        print(f"  {workload} ...", end="", flush=True)
        comparison = await _support.compare(
            workload, ops, run_ours, run_baseline, rounds=args.rounds, before_each=before_each
        )
        rows.append(row(workload, comparison))
        print(f" ratio {comparison.ratio:.2f} (CPU {comparison.cpu_ratio:.2f})", flush=True)

    try:
        await reset_schema(engine)
        description = await describe(engine)
        print(f"{name}: {description}", flush=True)

        # add: a fresh batch of new aggregates for every run, on an empty table.
        n_add = counts["add"]
        batch: list[BenchOrder] = []

        async def fresh_batch(size: int = n_add) -> None:
            nonlocal batch
            await empty_table(engine)
            batch = make_orders(size, seed=size)

        for side in (ours, baseline):  # warm-up
            await fresh_batch(max(1, n_add // 10))
            await side.add(batch)
        await measure(
            f"add {n_add:,} in one unit of work",
            n_add,
            lambda: ours.add(batch),
            lambda: baseline.add(batch),
            before_each=fresh_batch,
        )
        await empty_table(engine)

        # get, search and stream read the same seeded rows.
        ids = await seed(engine, counts["stream"])
        await check_same_results(ours, baseline, ids)
        get_ids = random.Random(1).sample(ids, min(counts["get"], len(ids)))
        queries = make_queries(counts["search"], rows=len(ids), seed=2)
        for side in (ours, baseline):  # warm-up
            await side.get(get_ids[:100])
            await side.get_each(get_ids[:100])
            await side.search(queries[:100])
            await side.stream(limit=10 * STREAM_BATCH)

        await measure(
            f"get {len(get_ids):,} by id, one unit of work",
            len(get_ids),
            lambda: ours.get(get_ids),
            lambda: baseline.get(get_ids),
        )
        await measure(
            f"get {len(get_ids):,} by id, a unit of work each (extra)",
            len(get_ids),
            lambda: ours.get_each(get_ids),
            lambda: baseline.get_each(get_ids),
        )
        await measure(
            f"search {len(queries):,} pages of {PAGE} (2 conditions, ordered)",
            len(queries),
            lambda: ours.search(queries),
            lambda: baseline.search(queries),
        )
        await measure(
            f"stream {len(ids):,} rows (batches of {STREAM_BATCH:,})",
            len(ids),
            ours.stream,
            baseline.stream,
        )

        print("  stream memory (a fresh process per side) ...", end="", flush=True)
        memory = {side: stream_memory(url, side, len(ids)) for side in ("ours", "baseline")}
        growth = {side: m["growth_kib"] / 1024 for side, m in memory.items()}
        method = memory["ours"]["method"]
        rows.append(
            Row(
                name,
                f"stream {len(ids):,} rows: peak RSS growth ({method})",
                f"{growth['ours']:.1f} MB",
                f"{growth['baseline']:.1f} MB",
                "—",
                "—",
                f"< {STREAM_GROWTH_TARGET_MB:.0f} MB",
                "PASS" if growth["ours"] < STREAM_GROWTH_TARGET_MB else "MISS",
            )
        )
        print(f" ours {growth['ours']:.1f} MB, baseline {growth['baseline']:.1f} MB", flush=True)
        await reset_schema(engine)
        return description, rows
    finally:
        await engine.dispose()


# -- the stream-memory worker (a fresh process per side) -----------------------------------


async def stream_worker(side: str, url: str, rows: int) -> dict[str, Any]:
    engine = create_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    runner = Ours(sessions) if side == "ours" else Baseline(sessions)
    try:
        await runner.stream(limit=5 * STREAM_BATCH)  # imports, connection, compiled SQL
        gc.collect()
        reset = _support.reset_peak_rss()
        before = _support.rss_kib()
        start = time.perf_counter()
        count = await runner.stream()
        seconds = time.perf_counter() - start
        peak = _support.peak_rss_kib()
    finally:
        await engine.dispose()
    if count != rows:
        raise AssertionError(f"streamed {count} rows, expected {rows}")
    # Without a VmHWM reset the peak covers the process's whole life (an upper bound).
    return {
        "seconds": seconds,
        "growth_kib": peak - before,
        "method": "VmHWM after reset" if reset else "VmHWM since start",
    }


# -- the report ------------------------------------------------------------------------------


def header(args: argparse.Namespace, descriptions: list[str], load: str) -> str:
    command = "python benchmarks/bench_repository.py " + shlex.join(sys.argv[1:])
    machine = (
        f"{_support.cpu_model()}, {len(os.sched_getaffinity(0))} CPUs, "
        f"{platform.system()} {platform.release()}"
    )
    software = ", ".join(
        [f"Python {platform.python_version()}"]
        + [f"{p} {version(p)}" for p in ("SQLAlchemy", "pydantic", "asyncpg", "aiosqlite")]
    )
    lines = [
        f"Command: `{command.strip()}` ({args.rounds} rounds per side, median)",
        f"Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"Machine: {machine}; {software}",
        f"Load average (1 min) at start and end: {load}",
        *(f"Database: {d}" for d in descriptions),
    ]
    return "\n".join(f"{line}  " for line in lines)


def table(rows: list[Row]) -> str:
    lines = [
        "| backend | workload | ours | baseline | ratio | CPU ratio | target | result |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    lines += [
        f"| {r.backend} | {r.workload} | {r.ours} | {r.baseline} | {r.ratio} "
        f"| {r.cpu_ratio} | {r.target} | {r.result} |"
        for r in rows
    ]
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    descriptions: list[str] = []
    rows: list[Row] = []
    load_at_start = os.getloadavg()[0]
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="cqrs-ddd-bench-") as tmp:
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
                description, backend_rows = await run_backend("SQLite", url, args)
        else:
            with _support.postgres_url() as url:
                description, backend_rows = await run_backend("PostgreSQL", url, args)
        descriptions.append(description)
        rows.extend(backend_rows)
    print()
    load = f"{load_at_start:.2f}, {os.getloadavg()[0]:.2f}"
    print(header(args, descriptions, load))
    print()
    print(table(rows))
    print()
    print(
        "ratio: wall time, ours / baseline (lower is better), the median of the per-round "
        "ratios; CPU ratio: the same for this process's CPU time (the database server's "
        "work excluded). Times are medians."
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every count (0.05 for a smoke run)"
    )
    parser.add_argument("--rounds", type=int, default=7, help="timed runs per side")
    parser.add_argument("--stream-worker", choices=("ours", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale <= 0 or args.rounds < 1:
        parser.error("--scale must be > 0 and --rounds >= 1")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.stream_worker:
        url = os.environ[WORKER_URL_ENV]
        outcome = asyncio.run(stream_worker(arguments.stream_worker, url, arguments.rows))
        print(json.dumps(outcome))
    else:
        asyncio.run(main(arguments))
