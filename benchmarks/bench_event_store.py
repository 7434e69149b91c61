"""SQLAlchemyEventStore against raw asyncpg, hand-written SQLAlchemy Core and ``eventsourcing``.

Benchmark-only packages (not dependencies of the library)::

    eventsourcing>=9.5     # its PostgreSQL and SQLite recorders, the third-party baseline
    psycopg[binary]>=3.2   # the driver eventsourcing's PostgreSQL recorder uses
    psycopg-pool>=3.2
    asyncpg>=0.29          # also in the ``postgres``/``dev`` extras

Every side writes and reads the same events: time-ordered ids (``new_id()``, UUIDv7),
an 8-field payload (strings, an int, a float, a nested dict, an ISO datetime string)
and a 3-field metadata dict, JSON encoded on the way in and decoded on the way out
inside the timed code of every side.

Sides:

* **ours**: ``SQLAlchemyEventStore(session)`` in an ``AsyncSession`` from an
  ``async_sessionmaker`` (SQLAlchemy's default pool); the caller commits.
* **asyncpg**: raw asyncpg on a pool (``asyncpg.create_pool``, 5 connections, a JSON
  codec for ``jsonb`` set in ``init`` as its documentation shows), into
  ``events_baseline``: the same columns, types, unique constraints and indexes as
  ``events``, with a plain ``bigserial`` position and no ordering lock. Writes use
  ``executemany`` (W1) or ``fetchval(INSERT ... RETURNING position)``; W1 also with
  ``copy_records_to_table``. "reset off" is the same pool with ``reset=`` a no-op
  coroutine: the default pool runs ``Connection.reset()``'s query (``pg_advisory_unlock_all();
  CLOSE ALL; UNLISTEN *; RESET ALL``) on every release.
* **Core**: hand-written SQLAlchemy Core on the same engine into ``events_baseline``:
  ``conn.execute(insert(t), rows)``, ``insert(t).returning(t.c.position)`` and
  ``select()`` statements, in ``engine.begin()``/``engine.connect()``. For single-event
  writes (W2, W5) also "in an AsyncSession": the same insert run with
  ``session.execute`` in ``async_sessionmaker.begin()``, as ours runs, which shows what
  the session itself costs.
* **eventsourcing**: ``PostgresApplicationRecorder`` / ``SQLiteApplicationRecorder``
  (eventsourcing 9.x) constructed directly on their datastores, on their own table
  (``originator_id`` text, ``originator_version``, ``topic``, ``state`` bytes; the
  other fields travel JSON encoded in ``state``). Its API is synchronous; W5 runs it
  in 4 threads. Its SQLite datastore switches its own database file to WAL.

Workloads (counts multiplied by ``--scale``):

* W1: 20,000 events appended in transactions of 100 (10 new streams of 10 events each);
* W2: 2,000 single-event transactions;
* W3: reading one 1,000-event stream 50 times, a session/connection each time;
* W4: catch-up over all events of a 20,000-event store, in pages of 1,000;
* W5 (PostgreSQL): 4 concurrent writers, 500 single-event transactions each;
* peak RSS growth of a 100,000-event ``get_events_from_position(0, batch_size=1000)``
  scan, in a fresh interpreter per side (``VmHWM`` reset through ``/proc/self/clear_refs``).

Writes start from an emptied table each run. The sides run one after the other in a
rotating order, ``--rounds`` times after an untimed warm-up. A ratio is **ours /
baseline in throughput**: > 1 means ours is faster. It is the median over rounds of
baseline time / ours time within the round; "CPU" is the same for this process's CPU
time (``time.process_time``, all threads), i.e. the client-side work.

Usage::

    python benchmarks/bench_event_store.py [--backend postgres|sqlite|both]
                                           [--scale 1.0] [--rounds 5]

PostgreSQL is ``CQRS_DDD_BENCH_POSTGRES_URL`` when set (the tables ``events``,
``events_baseline`` and ``es_events`` are dropped and created there), otherwise a
throwaway server with PostgreSQL's default durability (see ``_support.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import gc
import json
import os
import platform
import random
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import _support
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as create_engine

from cqrs_ddd_core.domain.ids import new_id
from cqrs_ddd_core.ports.event_store import StoredEvent
from cqrs_ddd_persistence_sqlalchemy.core import Base, SQLAlchemyEventStore

COUNTS = {
    "w1": 20_000,
    "w2": 2_000,
    "w3_reads": 50,
    "w3_stream": 1_000,
    "w4": 20_000,
    "w5_each": 500,
    "scan": 100_000,
}
W1_BATCH = 100
W1_STREAMS_PER_BATCH = 10
PAGE = 1_000
WRITERS = 4
POOL_SIZE = 5  # SQLAlchemy's default pool_size; the other pools are sized to match
EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
CITIES = ("Lisbon", "Athens", "Oslo", "Lyon", "Turin", "Ghent", "Porto", "Split")
NOTES = ("", "leave at the door", "gift wrap", "call on arrival", "fragile: glass inside")

# (workload, baseline side) -> minimum ours/baseline throughput ratio.
PG_TARGETS = {
    ("W1", "asyncpg"): 0.8,
    ("W4", "asyncpg"): 0.8,
    ("W2", "core"): 0.8,
    ("W3", "core"): 0.8,
    ("W5", "asyncpg"): 0.7,
    **{(w, "es"): 1.5 for w in ("W1", "W2", "W3", "W4", "W5")},
}
SQLITE_TARGETS = {(w, "core"): 0.9 for w in ("W1", "W2", "W3", "W4")}

SIDE_NAMES = {
    "ours": "ours",
    "asyncpg": "raw asyncpg",
    "asyncpg_noreset": "raw asyncpg, pool reset off",
    "asyncpg_copy": "raw asyncpg copy_records_to_table",
    "core": "hand-written SQLAlchemy Core",
    "core_session": "Core in an AsyncSession",
    "es": "eventsourcing recorder",
}

# -- the events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ev:
    """One event, as plain values every side converts from."""

    event_id: str
    event_type: str
    aggregate_id: str
    aggregate_type: str
    version: int
    payload: dict[str, Any]
    metadata: dict[str, Any]
    occurred_at: dt.datetime
    schema_version: int
    correlation_id: str | None
    causation_id: str | None
    tenant_id: str | None

    def stored(self) -> StoredEvent:
        return StoredEvent(
            event_id=self.event_id,
            event_type=self.event_type,
            aggregate_id=self.aggregate_id,
            aggregate_type=self.aggregate_type,
            version=self.version,
            payload=self.payload,
            metadata=self.metadata,
            occurred_at=self.occurred_at,
            schema_version=self.schema_version,
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
            tenant_id=self.tenant_id,
        )

    def row(self) -> tuple[Any, ...]:
        """The insert parameters in ``INSERT_COLUMNS`` order, JSON not yet encoded."""
        return (
            self.event_id,
            self.event_type,
            self.aggregate_id,
            self.aggregate_type,
            self.version,
            self.payload,
            self.metadata,
            self.occurred_at,
            self.schema_version,
            self.correlation_id,
            self.causation_id,
            self.tenant_id,
        )

    def values(self) -> dict[str, Any]:
        return dict(zip(INSERT_COLUMNS, self.row(), strict=True))


@dataclass(slots=True)
class Inputs:
    """An event list in the form each side takes (built before timing)."""

    events: list[Ev]
    stored: list[StoredEvent]
    rows: list[tuple[Any, ...]]
    values: list[dict[str, Any]]

    @classmethod
    def of(cls, events: list[Ev]) -> Inputs:
        return cls(
            events,
            [e.stored() for e in events],
            [e.row() for e in events],
            [e.values() for e in events],
        )

    def batches(self, size: int) -> list[Inputs]:
        return [
            Inputs(
                self.events[i : i + size],
                self.stored[i : i + size],
                self.rows[i : i + size],
                self.values[i : i + size],
            )
            for i in range(0, len(self.events), size)
        ]


def make_event(rng: random.Random, aggregate_id: str, version: int, n: int) -> Ev:
    placed = EPOCH + dt.timedelta(seconds=rng.randrange(365 * 86_400))
    return Ev(
        event_id=new_id(),
        event_type="OrderPlaced" if version == 1 else "OrderChanged",
        aggregate_id=aggregate_id,
        aggregate_type="Order",
        version=version,
        payload={
            "order_id": f"ord-{n:09d}",
            "customer_id": f"cus-{rng.randrange(100_000):06d}",
            "quantity": rng.randint(1, 20),
            "unit_price": round(rng.uniform(1, 500), 2),
            "currency": rng.choice(("EUR", "USD", "GBP")),
            "placed_at": placed.isoformat(),
            "shipping": {
                "street": f"{rng.randint(1, 400)} Harbour Road",
                "city": rng.choice(CITIES),
                "postcode": f"{rng.randrange(10_000, 99_999)}",
                "express": rng.random() < 0.2,
            },
            "note": rng.choice(NOTES),
        },
        metadata={
            "user_id": f"usr-{rng.randrange(10_000):05d}",
            "request_id": new_id(),
            "source": "api",
        },
        occurred_at=placed + dt.timedelta(milliseconds=rng.randrange(1_000)),
        schema_version=1,
        correlation_id=new_id(),
        causation_id=None,
        tenant_id=None,
    )


def make_streams(count: int, per_stream: int, *, seed: int, prefix: str) -> list[Ev]:
    """``count`` events in new streams of ``per_stream`` consecutive versions."""
    rng = random.Random(seed)
    return [
        make_event(rng, f"{prefix}-{n // per_stream:07d}", n % per_stream + 1, n)
        for n in range(count)
    ]


def make_read_store(count: int, stream_length: int, *, seed: int) -> list[Ev]:
    """``count`` events: one stream of ``stream_length`` spread evenly among 10-event streams."""
    rng = random.Random(seed)
    stride = max(1, count // max(1, stream_length))
    events: list[Ev] = []
    big_version = small = 0
    for n in range(count):
        if n % stride == 0 and big_version < stream_length:
            big_version += 1
            events.append(make_event(rng, READ_STREAM, big_version, n))
        else:
            events.append(make_event(rng, f"r-{small // 10:07d}", small % 10 + 1, n))
            small += 1
    return events


READ_STREAM = "read-stream-0000001"


# -- the baseline table and statements -----------------------------------------------------

INSERT_COLUMNS = (
    "event_id",
    "event_type",
    "aggregate_id",
    "aggregate_type",
    "version",
    "payload",
    "metadata",
    "occurred_at",
    "schema_version",
    "correlation_id",
    "causation_id",
    "tenant_id",
)
READ_COLUMNS = ("position", *INSERT_COLUMNS)

_JSON = JSON().with_variant(JSONB(), "postgresql")
BASELINE = Table(
    "events_baseline",
    MetaData(),
    Column(
        "position",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("aggregate_id", String(200), nullable=False),
    Column("aggregate_type", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("payload", _JSON, nullable=False),
    Column("metadata", _JSON, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("correlation_id", String(200)),
    Column("causation_id", String(200)),
    Column("tenant_id", String(200)),
    UniqueConstraint("aggregate_id", "version", name="uq_events_baseline_aggregate_id_version"),
    UniqueConstraint("event_id", name="uq_events_baseline_event_id"),
    Index("ix_events_baseline_aggregate_type_position", "aggregate_type", "position"),
    Index("ix_events_baseline_tenant_id", "tenant_id"),
)
EVENTS = Base.metadata.tables["events"]
_B = BASELINE.c
CORE_STREAM = select(*(_B[c] for c in READ_COLUMNS)).order_by(_B.version)
CORE_PAGE = select(*(_B[c] for c in READ_COLUMNS)).order_by(_B.position)

_COLS = ", ".join(INSERT_COLUMNS)
_PARAMS = ", ".join(f"${i}" for i in range(1, len(INSERT_COLUMNS) + 1))
PG_INSERT = f"INSERT INTO events_baseline ({_COLS}) VALUES ({_PARAMS})"
PG_INSERT_RETURNING = PG_INSERT + " RETURNING position"
PG_STREAM = (
    f"SELECT {', '.join(READ_COLUMNS)} FROM events_baseline "
    "WHERE aggregate_id = $1 ORDER BY version"
)
PG_PAGE = (
    f"SELECT {', '.join(READ_COLUMNS)} FROM events_baseline "
    "WHERE position > $1 ORDER BY position LIMIT $2"
)
ES_TABLE = "es_events"


# -- PostgreSQL: raw asyncpg -----------------------------------------------------------------


def _jsonb_encode(value: Any) -> bytes:
    return b"\x01" + json.dumps(value).encode()  # jsonb's binary format: version 1, then text


def _jsonb_decode(data: bytes) -> Any:
    return json.loads(data[1:].decode())


async def _jsonb_codec(conn: Any) -> None:
    """The JSON codec set on each pooled connection, in the binary format COPY needs."""
    await conn.set_type_codec(
        "jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode, schema="pg_catalog", format="binary"
    )


async def _no_reset(_conn: Any) -> None:
    """A pool ``reset`` that runs no query (asyncpg still rolls back an open transaction)."""


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def asyncpg_pool(url: str, *, reset: bool = True) -> Any:
    import asyncpg

    return await asyncpg.create_pool(
        asyncpg_dsn(url),
        min_size=POOL_SIZE,
        max_size=POOL_SIZE,
        init=_jsonb_codec,
        reset=None if reset else _no_reset,
    )


class RawAsyncpg:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def append_batches(self, batches: list[Inputs]) -> None:
        for batch in batches:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.executemany(PG_INSERT, batch.rows)

    async def copy_batches(self, batches: list[Inputs]) -> None:
        for batch in batches:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.copy_records_to_table(
                    "events_baseline", records=batch.rows, columns=INSERT_COLUMNS
                )

    async def append_each(self, events: Inputs) -> None:
        for row in events.rows:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.fetchval(PG_INSERT_RETURNING, *row)

    async def read_stream(self, aggregate_id: str, times: int) -> int:
        count = 0
        for _ in range(times):
            async with self.pool.acquire() as conn:
                count += len(await conn.fetch(PG_STREAM, aggregate_id))
        return count

    async def catch_up(self, limit: int | None = None) -> int:
        count, cursor = 0, 0
        async with self.pool.acquire() as conn:
            while True:
                page = await conn.fetch(PG_PAGE, cursor, PAGE)
                count += len(page)
                if len(page) < PAGE or (limit is not None and count >= limit):
                    return count
                cursor = page[-1]["position"]


# -- hand-written SQLAlchemy Core --------------------------------------------------------------


class Core:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def append_batches(self, batches: list[Inputs]) -> None:
        for batch in batches:
            async with self.engine.begin() as conn:
                await conn.execute(insert(BASELINE), batch.values)

    async def append_each(self, events: Inputs) -> None:
        stmt = insert(BASELINE).returning(_B.position)
        for values in events.values:
            async with self.engine.begin() as conn:
                (await conn.execute(stmt, values)).scalar_one()

    async def append_each_in_session(self, events: Inputs) -> None:
        """The same statement in an ``AsyncSession`` per transaction, as ours runs in."""
        stmt = insert(BASELINE).returning(_B.position)
        sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        for values in events.values:
            async with sessions.begin() as session:
                (await session.execute(stmt, values)).scalar_one()

    async def read_stream(self, aggregate_id: str, times: int) -> int:
        count = 0
        for _ in range(times):
            async with self.engine.connect() as conn:
                result = await conn.execute(CORE_STREAM.where(_B.aggregate_id == aggregate_id))
                count += len(result.all())
        return count

    async def catch_up(self, limit: int | None = None) -> int:
        count, cursor = 0, 0
        async with self.engine.connect() as conn:
            while True:
                stmt = CORE_PAGE.where(_B.position > cursor).limit(PAGE)
                page = (await conn.execute(stmt)).all()
                count += len(page)
                if len(page) < PAGE or (limit is not None and count >= limit):
                    return count
                cursor = page[-1].position


# -- ours ----------------------------------------------------------------------------------------


class Ours:
    def __init__(self, engine: AsyncEngine) -> None:
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def append_batches(self, batches: list[Inputs]) -> None:
        for batch in batches:
            async with self.sessions.begin() as session:
                await SQLAlchemyEventStore(session).append_batch(batch.stored)

    async def append_each(self, events: Inputs) -> None:
        for event in events.stored:
            async with self.sessions.begin() as session:
                await SQLAlchemyEventStore(session).append(event)

    async def read_stream(self, aggregate_id: str, times: int) -> int:
        count = 0
        for _ in range(times):
            async with self.sessions() as session:
                count += len(await SQLAlchemyEventStore(session).get_events(aggregate_id))
        return count

    async def catch_up(self, limit: int | None = None) -> int:
        count = 0
        async with self.sessions() as session:
            store = SQLAlchemyEventStore(session)
            async for _event in await store.get_events_from_position(0, batch_size=PAGE):
                count += 1
                if limit is not None and count >= limit:
                    break
        return count


# -- eventsourcing -------------------------------------------------------------------------------


class EventSourcing:
    """eventsourcing's application recorder (synchronous), with JSON-encoded state."""

    def __init__(self, recorder: Any, datastore: Any) -> None:
        from eventsourcing.persistence import StoredEvent as EsStoredEvent

        self.recorder = recorder
        self.datastore = datastore
        self._stored_event = EsStoredEvent

    def _encode(self, event: Ev) -> Any:
        state = {
            "event_id": event.event_id,
            "aggregate_type": event.aggregate_type,
            "payload": event.payload,
            "metadata": event.metadata,
            "occurred_at": event.occurred_at.isoformat(),
            "schema_version": event.schema_version,
            "correlation_id": event.correlation_id,
            "causation_id": event.causation_id,
            "tenant_id": event.tenant_id,
        }
        return self._stored_event(
            originator_id=event.aggregate_id,
            originator_version=event.version,
            topic=event.event_type,
            state=json.dumps(state).encode(),
        )

    def append_batches(self, batches: list[Inputs]) -> None:
        for batch in batches:
            self.recorder.insert_events([self._encode(e) for e in batch.events])

    def append_each(self, events: Inputs) -> None:
        for event in events.events:
            self.recorder.insert_events([self._encode(event)])

    def read_stream(self, aggregate_id: str, times: int) -> int:
        count = 0
        for _ in range(times):
            events = self.recorder.select_events(aggregate_id)
            count += len([json.loads(e.state) for e in events])
        return count

    def catch_up(self, limit: int | None = None) -> int:
        count, cursor = 0, 0
        while True:
            page = self.recorder.select_notifications(cursor, PAGE, inclusive_of_start=False)
            count += len([json.loads(n.state) for n in page])
            if len(page) < PAGE or (limit is not None and count >= limit):
                return count
            cursor = page[-1].id


def es_postgres(url: str) -> EventSourcing:
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    parts = make_url(url)
    datastore = PostgresDatastore(
        dbname=parts.database or "",
        host=parts.host or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password or "",
        pool_size=POOL_SIZE,
        originator_id_type="text",
    )
    recorder = PostgresApplicationRecorder(datastore, events_table_name=ES_TABLE)
    recorder.create_table()
    return EventSourcing(recorder, datastore)


def es_sqlite(path: Path) -> EventSourcing:
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

    datastore = SQLiteDatastore(str(path), originator_id_type="text")
    recorder = SQLiteApplicationRecorder(datastore, events_table_name=ES_TABLE)
    recorder.create_table()
    return EventSourcing(recorder, datastore)


# -- timing --------------------------------------------------------------------------------------


@dataclass
class Timings:
    """Wall and CPU seconds per side, one value per round."""

    workload: str
    events: int
    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def median(self, side: str) -> float:
        return statistics.median(self.wall[side])

    def ratio(self, side: str, *, cpu: bool = False) -> float:
        """Ours / baseline throughput: the median over rounds of baseline / ours time."""
        times = self.cpu if cpu else self.wall
        return statistics.median(b / o for b, o in zip(times[side], times["ours"], strict=True))


async def time_sides(
    workload: str,
    events: int,
    sides: dict[str, Callable[[], Awaitable[object]]],
    *,
    rounds: int,
    before_each: Callable[[str], Awaitable[object]] | None = None,
    after_each: Callable[[str], Awaitable[object]] | None = None,
) -> Timings:
    """Run every side once per round, in an order that rotates between rounds."""
    timings = Timings(workload, events)
    names = list(sides)
    for name in names:
        timings.wall[name], timings.cpu[name] = [], []
    print(f"  {workload} ...", end="", flush=True)
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            if before_each is not None:
                await before_each(name)
            gc.collect()
            start, start_cpu = time.perf_counter(), time.process_time()
            await sides[name]()
            timings.wall[name].append(time.perf_counter() - start)
            timings.cpu[name].append(time.process_time() - start_cpu)
            if after_each is not None:
                await after_each(name)
    summary = ", ".join(f"{n} {timings.ratio(n):.2f}x" for n in names if n != "ours")
    print(f" ours {events / timings.median('ours'):,.0f} ev/s; {summary}", flush=True)
    return timings


def aio(function: Callable[..., object]) -> Callable[..., Awaitable[object]]:
    """A side whose API is synchronous, run on the event loop's thread like the others."""

    async def run(*args: Any) -> object:
        return function(*args)

    return run


def threaded(function: Callable[[Inputs], object], chunks: list[Inputs]) -> Callable[..., Any]:
    """A synchronous side run by one thread per chunk, concurrently."""

    async def run() -> None:
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            list(pool.map(function, chunks))

    return run


def concurrently(
    function: Callable[[Inputs], Awaitable[object]], chunks: list[Inputs]
) -> Callable[[], Awaitable[object]]:
    async def run() -> None:
        await asyncio.gather(*(function(chunk) for chunk in chunks))

    return run


# -- the report -----------------------------------------------------------------------------------


@dataclass
class Row:
    backend: str
    workload: str
    baseline: str
    ours: str
    theirs: str
    ratio: str
    cpu: str
    target: str
    result: str


def rows_for(
    backend: str, timings: Timings, targets: dict[tuple[str, str], float], label: str
) -> list[Row]:
    key = timings.workload
    ours_rate = timings.events / timings.median("ours")
    rows = []
    for side in timings.wall:
        if side == "ours":
            continue
        ratio = timings.ratio(side)
        target = targets.get((key, side))
        rows.append(
            Row(
                backend,
                f"{key} {label}",
                SIDE_NAMES[side],
                f"{ours_rate:,.0f}/s",
                f"{timings.events / timings.median(side):,.0f}/s",
                f"{ratio:.2f}x",
                f"{timings.ratio(side, cpu=True):.2f}x",
                "—" if target is None else f"≥ {target:.1f}x",
                "info" if target is None else ("PASS" if ratio >= target else "MISS"),
            )
        )
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| backend | workload | baseline | ours | baseline | ours/baseline | CPU | target "
        "| result |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    lines += [
        f"| {r.backend} | {r.workload} | {r.baseline} | {r.ours} | {r.theirs} | {r.ratio} "
        f"| {r.cpu} | {r.target} | {r.result} |"
        for r in rows
    ]
    return "\n".join(lines)


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


def library_state() -> str:
    """The commit the library was measured at, ``+changes`` when its sources differ from it."""
    root = Path(__file__).resolve().parent.parent

    def git(*command: str) -> str:
        done = subprocess.run(
            ["git", *command], cwd=root, capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown commit"
    changed = git("status", "--porcelain", "--", "src")
    return f"commit {commit}" + (" + uncommitted changes in src/" if changed else "")


def header(args: argparse.Namespace, descriptions: list[str]) -> str:
    command = "python benchmarks/bench_event_store.py " + shlex.join(sys.argv[1:])
    machine = (
        f"{_support.cpu_model()}, {len(os.sched_getaffinity(0))} CPUs, "
        f"{platform.system()} {platform.release()}"
    )
    packages = ("SQLAlchemy", "asyncpg", "aiosqlite", "pydantic", "eventsourcing", "psycopg")
    software = ", ".join(
        [f"Python {platform.python_version()}"] + [f"{p} {_version(p)}" for p in packages]
    )
    lines = [
        f"Command: `{command.strip()}` ({args.rounds} rounds, medians)",
        f"Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"Machine: {machine}; {software}",
        f"Library: {library_state()}",
        *(f"Database: {d}" for d in descriptions),
    ]
    return "\n".join(f"{line}  " for line in lines)


# -- setup helpers ---------------------------------------------------------------------------------


async def describe(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            server = await conn.scalar(text("SHOW server_version"))
            names = ("fsync", "synchronous_commit", "full_page_writes")
            settings = {name: await conn.scalar(text(f"SHOW {name}")) for name in names}
            durability = ", ".join(f"{k}={v}" for k, v in settings.items())
            return f"PostgreSQL {server} ({durability}, i.e. default durability)"
        server = await conn.scalar(text("SELECT sqlite_version()"))
        journal = await conn.scalar(text("PRAGMA journal_mode"))
        synchronous = await conn.scalar(text("PRAGMA synchronous"))
        level = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(synchronous, synchronous)
        return (
            f"SQLite {server} file, ours and Core: journal_mode={journal}, synchronous={level} "
            "(the driver's defaults); eventsourcing: its own file, which it switches to WAL"
        )


async def create_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all, tables=[EVENTS])
        await conn.run_sync(BASELINE.metadata.drop_all)
        if engine.dialect.name == "postgresql":
            await conn.execute(text(f"DROP TABLE IF EXISTS {ES_TABLE}"))
        await conn.run_sync(Base.metadata.create_all, tables=[EVENTS])
        await conn.run_sync(BASELINE.metadata.create_all)


async def drop_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all, tables=[EVENTS])
        await conn.run_sync(BASELINE.metadata.drop_all)
        if engine.dialect.name == "postgresql":
            await conn.execute(text(f"DROP TABLE IF EXISTS {ES_TABLE}"))


async def empty(engine: AsyncEngine, table_name: str) -> None:
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text(f"TRUNCATE {table_name}"))
        else:
            await conn.execute(text(f"DELETE FROM {table_name}"))


async def analyze(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
        else:
            await conn.execute(text("ANALYZE"))
            await conn.commit()


async def seed(engine: AsyncEngine, es: EventSourcing, events: list[Ev]) -> None:
    """Append ``events`` through ours, copy them to the baseline table, and to eventsourcing."""
    ours = Ours(engine)
    inputs = Inputs.of(events)
    await ours.append_batches(inputs.batches(1_000))
    async with engine.begin() as conn:
        columns = ", ".join(READ_COLUMNS)
        await conn.execute(
            text(f"INSERT INTO events_baseline ({columns}) SELECT {columns} FROM events")
        )
    es.append_batches(inputs.batches(1_000))
    await analyze(engine)


async def check_reads(ours: Ours, others: dict[str, Any], reads: int, events: int) -> None:
    """Every side must read the same number of events, or the comparison means nothing."""

    async def call(side: Any, name: str, *args: Any) -> int:
        result = getattr(side, name)(*args)
        return int(await result if asyncio.iscoroutine(result) else result)

    for name, side in {"ours": ours, **others}.items():
        got = await call(side, "read_stream", READ_STREAM, 1)
        if got != reads:
            raise AssertionError(f"{name}: read {got} events of the stream, expected {reads}")
        got = await call(side, "catch_up")
        if got != events:
            raise AssertionError(f"{name}: caught up over {got} events, expected {events}")


# -- one backend -----------------------------------------------------------------------------------


async def run_backend(
    backend: str, url: str, es: EventSourcing, args: argparse.Namespace
) -> tuple[str, list[Row]]:
    counts = {key: max(1, round(n * args.scale)) for key, n in COUNTS.items()}
    counts["w3_stream"] = min(counts["w3_stream"], counts["w4"])
    is_pg = backend == "PostgreSQL"
    targets = PG_TARGETS if is_pg else SQLITE_TARGETS
    engine = create_engine(url)
    ours, core = Ours(engine), Core(engine)
    pools: list[Any] = []
    rows: list[Row] = []
    tables = {"ours": "events", "es": ES_TABLE}

    async def empty_side(side: str) -> None:
        if side == "es" and not is_pg:
            with sqlite3.connect(es.datastore.pool.db_name) as conn:
                conn.execute(f"DELETE FROM {ES_TABLE}")
            return
        await empty(engine, tables.get(side, "events_baseline"))

    def expect_rows(expected: int) -> Callable[[str], Awaitable[None]]:
        """An ``after_each`` check: the side's table holds ``expected`` events."""

        async def check(side: str) -> None:
            table_name = tables.get(side, "events_baseline")
            if side == "es" and not is_pg:
                with sqlite3.connect(es.datastore.pool.db_name) as conn:
                    count = conn.execute(f"SELECT count(*) FROM {ES_TABLE}").fetchone()[0]
            else:
                async with engine.connect() as conn:
                    count = await conn.scalar(text(f"SELECT count(*) FROM {table_name}"))
            if count != expected:
                raise AssertionError(f"{side}: {count} events stored, expected {expected}")

        return check

    try:
        await create_tables(engine)  # drops an old es_events table too
        es.recorder.create_table()
        description = await describe(engine)
        print(f"{backend}: {description}", flush=True)
        raw = raw_noreset = None
        if is_pg:
            pools.append(await asyncpg_pool(url))
            pools.append(await asyncpg_pool(url, reset=False))
            raw, raw_noreset = RawAsyncpg(pools[0]), RawAsyncpg(pools[1])

        # W1: batches of 100 events (10 new streams of 10 events), W2: single-event txns.
        per_stream = W1_BATCH // W1_STREAMS_PER_BATCH
        w1 = Inputs.of(make_streams(counts["w1"], per_stream, seed=1, prefix="w1"))
        w2 = Inputs.of(make_streams(counts["w2"], 1, seed=2, prefix="w2"))
        batch_writers: dict[str, Callable[[list[Inputs]], Awaitable[object]]] = {
            "ours": ours.append_batches
        }
        writers: dict[str, Callable[[Inputs], Awaitable[object]]] = {"ours": ours.append_each}
        if raw is not None and raw_noreset is not None:
            batch_writers["asyncpg"] = raw.append_batches
            batch_writers["asyncpg_copy"] = raw.copy_batches
            writers["asyncpg"] = raw.append_each
            writers["asyncpg_noreset"] = raw_noreset.append_each
        batch_writers["core"] = core.append_batches
        writers["core"] = core.append_each
        writers["core_session"] = core.append_each_in_session
        batch_writers["es"] = aio(es.append_batches)
        writers["es"] = aio(es.append_each)

        w1_batches = w1.batches(W1_BATCH)
        for name, write_batches in batch_writers.items():  # warm-up
            await empty_side(name)
            await write_batches(w1_batches[:10])
        timings = await time_sides(
            "W1",
            len(w1.events),
            {name: functools.partial(write, w1_batches) for name, write in batch_writers.items()},
            rounds=args.rounds,
            before_each=empty_side,
            after_each=expect_rows(len(w1.events)),
        )
        label = f"append {len(w1.events):,} in txns of {W1_BATCH}"
        rows += rows_for(backend, timings, targets, label)

        warm = Inputs.of(w2.events[: max(1, len(w2.events) // 10)])
        for name, write in writers.items():  # warm-up
            await empty_side(name)
            await write(warm)
        timings = await time_sides(
            "W2",
            len(w2.events),
            {name: functools.partial(write, w2) for name, write in writers.items()},
            rounds=args.rounds,
            before_each=empty_side,
            after_each=expect_rows(len(w2.events)),
        )
        rows += rows_for(backend, timings, targets, f"{len(w2.events):,} single-event txns")

        # W5: concurrent single-event writers (PostgreSQL).
        if raw is not None and raw_noreset is not None:
            w5 = Inputs.of(make_streams(counts["w5_each"] * WRITERS, 1, seed=5, prefix="w5"))
            size = counts["w5_each"]
            chunks = [Inputs.of(w5.events[i * size : (i + 1) * size]) for i in range(WRITERS)]
            sides = {
                "ours": concurrently(ours.append_each, chunks),
                "asyncpg": concurrently(raw.append_each, chunks),
                "asyncpg_noreset": concurrently(raw_noreset.append_each, chunks),
                "core": concurrently(core.append_each, chunks),
                "core_session": concurrently(core.append_each_in_session, chunks),
                "es": threaded(es.append_each, chunks),
            }
            for name, run in sides.items():  # warm-up: fill the pools
                await empty_side(name)
                await run()
            timings = await time_sides(
                "W5",
                len(w5.events),
                sides,
                rounds=args.rounds,
                before_each=empty_side,
                after_each=expect_rows(len(w5.events)),
            )
            label = f"{WRITERS} concurrent writers, each {size:,} single-event txns"
            rows += rows_for(backend, timings, targets, label)

        # Reads: a store of W4's size holding one long stream.
        for name in ("ours", "core", "es"):
            await empty_side(name)
        store = make_read_store(counts["w4"], counts["w3_stream"], seed=4)
        await seed(engine, es, store)
        others: dict[str, Any] = {"core": core, "es": es}
        if raw is not None:
            others["asyncpg"] = raw
        await check_reads(ours, others, counts["w3_stream"], len(store))

        reads = counts["w3_reads"]
        sides = {"ours": lambda: ours.read_stream(READ_STREAM, reads)}
        if raw is not None and raw_noreset is not None:
            sides["asyncpg"] = lambda: raw.read_stream(READ_STREAM, reads)
            sides["asyncpg_noreset"] = lambda: raw_noreset.read_stream(READ_STREAM, reads)
        sides["core"] = lambda: core.read_stream(READ_STREAM, reads)
        sides["es"] = functools.partial(aio(es.read_stream), READ_STREAM, reads)
        for run in sides.values():
            await run()
        timings = await time_sides("W3", reads * counts["w3_stream"], sides, rounds=args.rounds)
        label = f"read a {counts['w3_stream']:,}-event stream {reads} times"
        rows += rows_for(backend, timings, targets, label)

        sides = {"ours": ours.catch_up}
        if raw is not None:
            sides["asyncpg"] = raw.catch_up
        sides["core"] = core.catch_up
        sides["es"] = aio(es.catch_up)
        timings = await time_sides("W4", len(store), sides, rounds=args.rounds)
        rows += rows_for(
            backend, timings, targets, f"catch up over {len(store):,} in pages of {PAGE:,}"
        )

        # Peak RSS of a full scan, in a fresh interpreter per side.
        extra = counts["scan"] - len(store)
        if extra > 0:
            await empty(engine, "events_baseline")
            await empty_side("es")  # the scan reads ours and one baseline only
            more = make_streams(extra, 10, seed=6, prefix="scan")
            await Ours(engine).append_batches(Inputs.of(more).batches(1_000))
            async with engine.begin() as conn:
                columns = ", ".join(READ_COLUMNS)
                await conn.execute(
                    text(f"INSERT INTO events_baseline ({columns}) SELECT {columns} FROM events")
                )
            await analyze(engine)
        total = max(counts["scan"], len(store))
        print("  scan memory (a fresh process per side) ...", end="", flush=True)
        baseline_side = "asyncpg" if is_pg else "core"
        memory = {side: scan_memory(url, side, total) for side in ("ours", baseline_side)}
        growth = {side: m["growth_kib"] / 1024 for side, m in memory.items()}
        rate = {side: total / m["seconds"] for side, m in memory.items()}
        rows.append(
            Row(
                backend,
                f"peak RSS growth, {total:,}-event scan ({memory['ours']['method']})",
                SIDE_NAMES[baseline_side],
                f"{growth['ours']:.1f} MB ({rate['ours']:,.0f}/s)",
                f"{growth[baseline_side]:.1f} MB ({rate[baseline_side]:,.0f}/s)",
                "—",
                "—",
                "—",
                "info",
            )
        )
        print(f" ours {growth['ours']:.1f} MB, {baseline_side} {growth[baseline_side]:.1f} MB")
        await drop_tables(engine)
        return description, rows
    finally:
        for pool in pools:
            await pool.close()
        await engine.dispose()


# -- the scan-memory worker (a fresh process per side) ---------------------------------------------


def scan_memory(url: str, side: str, events: int) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--scan-worker", side, "--url", url, "--events", str(events)
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1_800)
    if done.returncode != 0:
        raise RuntimeError(f"scan worker {side} failed:\n{done.stdout}{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def scan_worker(side: str, url: str, events: int) -> dict[str, Any]:
    engine = create_engine(url)
    pool = await asyncpg_pool(url) if side == "asyncpg" else None
    runner: Any = {"ours": Ours(engine), "core": Core(engine)}.get(side) or RawAsyncpg(pool)
    try:
        await runner.catch_up(limit=5 * PAGE)  # imports, connections, compiled statements
        gc.collect()
        reset = _support.reset_peak_rss()
        before = _support.rss_kib()
        start = time.perf_counter()
        count = await runner.catch_up()
        seconds = time.perf_counter() - start
        peak = _support.peak_rss_kib()
    finally:
        if pool is not None:
            await pool.close()
        await engine.dispose()
    if count != events:
        raise AssertionError(f"scanned {count} events, expected {events}")
    return {
        "seconds": seconds,
        "growth_kib": peak - before,
        "method": "VmHWM after reset" if reset else "VmHWM since start",
    }


# -- main ------------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    backends = ["postgres", "sqlite"] if args.backend == "both" else [args.backend]
    descriptions: list[str] = []
    rows: list[Row] = []
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="cqrs-ddd-bench-es-") as tmp:
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
                es = es_sqlite(Path(tmp) / "eventsourcing.db")
                try:
                    description, backend_rows = await run_backend("SQLite", url, es, args)
                finally:
                    es.datastore.close()
        else:
            with _support.postgres_url() as url:
                es = es_postgres(url)
                try:
                    description, backend_rows = await run_backend("PostgreSQL", url, es, args)
                finally:
                    es.datastore.close()
        descriptions.append(description)
        rows.extend(backend_rows)
    print()
    print(header(args, descriptions))
    print()
    print(table(rows))
    print()
    print(
        "ours/baseline: throughput ratio (> 1: ours is faster), the median over rounds of "
        "baseline time / ours time; CPU: the same for this process's CPU time (client-side "
        "work). Rates are events per second, medians over rounds."
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("postgres", "sqlite", "both"), default="both")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every count (0.05 for a smoke run)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="timed runs per side")
    parser.add_argument(
        "--scan-worker", choices=("ours", "asyncpg", "core"), help=argparse.SUPPRESS
    )
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale <= 0 or args.rounds < 1:
        parser.error("--scale must be > 0 and --rounds >= 1")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.scan_worker:
        outcome = asyncio.run(scan_worker(arguments.scan_worker, arguments.url, arguments.events))
        print(json.dumps(outcome))
    else:
        asyncio.run(main(arguments))
