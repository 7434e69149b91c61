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
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
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

POSTGRES_URL_ENV = "CQRS_DDD_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "CQRS_DDD_REQUIRE_POSTGRES"
TEST_DATABASE = "cqrs_ddd_test"

# Durability buys nothing for a database that is thrown away after the session.
_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
}


def _find_postgres_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: newest Debian install, then PATH."""

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    return None


def _unprivileged_account() -> pwd.struct_passwd | None:
    """The account to run the server as: ``initdb`` and ``postgres`` refuse to run as root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    pytest.fail("running as root, and neither a 'postgres' nor a 'nobody' user exists")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _PostgresServer:
    """A PostgreSQL cluster living in a temporary directory, owned by this process."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.account = _unprivileged_account()
        self.root = Path(tempfile.mkdtemp(prefix="cqrs-ddd-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self._started = False
        self._removed = False
        if self.account is not None:
            os.chown(self.root, self.account.pw_uid, self.account.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{TEST_DATABASE}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        user = self.account
        return subprocess.run(
            command,
            cwd=self.root,  # the server's user may not be allowed into the caller's cwd
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )

    def _fail(self, step: str, result: subprocess.CompletedProcess[str]) -> None:
        log_tail = ""
        if self.log.exists():
            log_tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])
        pytest.fail(
            f"PostgreSQL {step} failed (exit {result.returncode}) using {self.bindir}\n"
            f"--- output ---\n{result.stdout}{result.stderr}\n"
            f"--- server log tail ({self.log}) ---\n{log_tail}",
            pytrace=False,
        )

    def start(self) -> None:
        result = self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip
        if result.returncode != 0:
            self._fail("initdb", result)
        settings = {**_SERVER_SETTINGS, "port": str(self.port)}
        settings["unix_socket_directories"] = f"'{self.root}'"
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        result = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start"
        )
        self._started = result.returncode == 0 or (self.data / "postmaster.pid").exists()
        if result.returncode != 0:
            self._fail("start", result)
        result = self._run(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", TEST_DATABASE
        )
        if result.returncode != 0:
            self._fail("createdb", result)

    def stop(self) -> None:
        """Stop the server and remove its directory; safe to call more than once."""
        if self._removed:
            return
        if self._started:
            result = self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            if result.returncode != 0:
                self._kill_postmaster()
            self._started = False
        shutil.rmtree(self.root, ignore_errors=True)
        self._removed = True

    def _kill_postmaster(self) -> None:
        # pg_ctl could not stop it: signal the postmaster this session started, by its pid.
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGQUIT)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of an empty PostgreSQL database for this session (see the module docstring)."""
    if url := os.environ.get(POSTGRES_URL_ENV):
        yield url
        return
    bindir = _find_postgres_bindir()
    if bindir is None:
        reason = (
            "PostgreSQL binaries not found (no initdb/pg_ctl under /usr/lib/postgresql/*/bin "
            f"or on PATH); set {POSTGRES_URL_ENV} or install postgresql-15"
        )
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_POSTGRES_ENV}=1)", pytrace=False)
        pytest.skip(reason)
    server = _PostgresServer(bindir)
    # atexit covers an interrupted session that never reaches the fixture's teardown.
    atexit.register(server.stop)
    try:
        server.start()  # a half-started server is stopped and removed too
        yield server.url
    finally:
        server.stop()


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
    bindir = _find_postgres_bindir()
    return [f"postgres: {'throwaway server from ' + str(bindir) if bindir else 'no binaries'}"]
