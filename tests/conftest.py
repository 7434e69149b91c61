"""Root fixtures: a throwaway PostgreSQL server and one parametrized database backend.

Fixtures other conftests and tests depend on:

``postgres_url`` (session)
    ``postgresql+asyncpg://`` URL of an empty database. ``CQRS_DDD_TEST_POSTGRES_URL``
    is used as is when set; otherwise a private server is initialised in a temporary
    directory, started on a free port of 127.0.0.1 and removed at the end of the session.
``backend``
    ``"sqlite"`` or ``"postgres"``; each parameter carries the marker of the same name,
    so ``pytest -m postgres`` runs only the PostgreSQL instances.
``db_url``
    A fresh SQLite *file* database per test, or ``postgres_url``.
``engine``
    An ``AsyncEngine`` on ``db_url`` with the tables of ``Base.metadata`` present and
    empty, disposed after the test.
``session_factory``
    ``async_sessionmaker(engine, expire_on_commit=False)``.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Sequence as SQLSequence
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from pg_server import PostgresServer, PostgresServerError, find_postgres_bindir

POSTGRES_URL_ENV = "CQRS_DDD_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "CQRS_DDD_REQUIRE_POSTGRES"
TEST_DATABASE = "cqrs_ddd_test"

# Durability buys nothing for a database that is thrown away after the session.
_SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    # Two-phase commit is off by default; the event store's tests prepare a writer.
    "max_prepared_transactions": "10",
}


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of an empty PostgreSQL database for this session (see the module docstring)."""
    if url := os.environ.get(POSTGRES_URL_ENV):
        yield url
        return
    bindir = find_postgres_bindir()
    if bindir is None:
        reason = (
            "PostgreSQL binaries not found (no initdb/pg_ctl under /usr/lib/postgresql/*/bin "
            f"or on PATH); set {POSTGRES_URL_ENV} or install postgresql-15"
        )
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_POSTGRES_ENV}=1)", pytrace=False)
        pytest.skip(reason)
    try:
        server = PostgresServer(bindir, database=TEST_DATABASE, settings=_SERVER_SETTINGS)
    except PostgresServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    # atexit covers an interrupted session that never reaches the fixture's teardown.
    atexit.register(server.stop, "immediate")
    try:
        server.start()  # a half-started server is stopped and removed too
        yield server.url
    except PostgresServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        server.stop("immediate")


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite, id="sqlite"),
        pytest.param("postgres", marks=pytest.mark.postgres, id="postgres"),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of this test instance: ``"sqlite"`` or ``"postgres"``."""
    name: str = request.param
    return name


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """SQLAlchemy URL of this test's database; SQLite is a file so connections share it."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    if backend == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    raise ValueError(f"unknown backend {backend!r}")


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# Tables already created per PostgreSQL URL in this session. The schema is created once
# (test modules, and so their models, are all imported at collection) and only topped up
# if a table appears later.
_postgres_tables: dict[str, set[str]] = {}


def _column_sequences(tables: Sequence[Any]) -> list[SQLSequence]:
    # Standalone sequences used as column defaults are not owned by their column, so
    # TRUNCATE ... RESTART IDENTITY leaves them alone; they are restarted explicitly.
    return [
        column.default
        for table in tables
        for column in table.columns
        if isinstance(column.default, SQLSequence)
    ]


async def _reset_postgres(engine: AsyncEngine, url: str) -> None:
    from cqrs_ddd_persistence_sqlalchemy.core.models import Base

    metadata = Base.metadata
    tables = metadata.sorted_tables
    created = _postgres_tables.get(url)
    if created is None or not {t.key for t in tables} <= created:
        async with engine.begin() as conn:
            if created is None:
                # A reused database (CQRS_DDD_TEST_POSTGRES_URL) may hold an older schema.
                await conn.run_sync(metadata.drop_all)
            await conn.run_sync(metadata.create_all)
        _postgres_tables[url] = {t.key for t in tables}
    if not tables:
        return
    preparer = engine.dialect.identifier_preparer
    names = ", ".join(preparer.format_table(t) for t in tables)
    async with engine.begin() as conn:
        # A connection leaked by an earlier test would block TRUNCATE forever; fail instead.
        await conn.execute(text("SET LOCAL lock_timeout = '10s'"))
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        for sequence in _column_sequences(tables):
            await conn.execute(text(f"ALTER SEQUENCE {preparer.format_sequence(sequence)} RESTART"))


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on ``db_url`` whose ``Base.metadata`` tables exist and are empty."""
    from cqrs_ddd_persistence_sqlalchemy.core.models import Base

    async_engine = create_async_engine(db_url)
    try:
        if async_engine.dialect.name == "sqlite":
            event.listen(async_engine.sync_engine, "connect", _enable_sqlite_foreign_keys)
            async with async_engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
        else:
            await _reset_postgres(async_engine, db_url)
        yield async_engine
    finally:
        await async_engine.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine`` that keep attribute values after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def pytest_report_header() -> list[str]:
    """Say where PostgreSQL comes from, so a skipped or failed run is easy to explain."""
    if os.environ.get(POSTGRES_URL_ENV):
        return [f"postgres: {POSTGRES_URL_ENV} is set"]
    bindir = find_postgres_bindir()
    return [f"postgres: {'throwaway server from ' + str(bindir) if bindir else 'no binaries'}"]
