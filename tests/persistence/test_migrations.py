"""The packaged Alembic migration of ``events`` and ``outbox``, on SQLite and PostgreSQL.

Every test gets fresh databases: SQLite files, or databases created on the
``postgres_url`` server for the test and dropped after it (the role needs CREATEDB).
Alembic runs in-process through ``alembic.command`` with the async ``env.py`` of
``alembic_env/``, configured from Python as ``docs/migrations.md`` shows, and once as
the ``alembic`` command with the documentation's ``alembic.ini``, ``env.py`` and
commands. What the migration builds is compared with what ``create_all`` builds.

The tests are synchronous: the async ``env.py`` runs its own event loop.
"""

from __future__ import annotations

import asyncio
import io
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import coerce_resource_to_filename
from sqlalchemy import Column, Integer, MetaData, String, Table, inspect, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import ClauseElement

from cqrs_ddd_core.ports.event_store import StoredEvent
from cqrs_ddd_core.ports.outbox import OutboxMessage
from cqrs_ddd_persistence_sqlalchemy.core import SQLAlchemyEventStore, SQLAlchemyOutboxStorage
from cqrs_ddd_persistence_sqlalchemy.core.models import NAMING_CONVENTION, OUTBOX_CHANNEL, Base
from cqrs_ddd_persistence_sqlalchemy.core.types import JSONValue, UTCDateTime
from cqrs_ddd_persistence_sqlalchemy.migrations import (
    BRANCH_LABEL,
    LIBRARY_TABLES,
    VERSION_LOCATION,
    include_object,
    versions_path,
)

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "migrations.md"
ENV_DIR = Path(__file__).resolve().parent / "alembic_env"
REVISION = "cqrs_ddd_0001"
LIBRARY = [Base.metadata.tables[name] for name in sorted(LIBRARY_TABLES)]
ALEMBIC_TIMEOUT = 120  # seconds per alembic command


# -- databases -------------------------------------------------------------------------


async def _admin(server_url: str, statement: str) -> None:
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
def new_database(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[], str]]:
    """Makes fresh, empty databases of this test's backend; returns their URLs."""
    names: list[str] = []

    def sqlite() -> str:
        names.append(f"db{len(names)}.db")
        return f"sqlite+aiosqlite:///{tmp_path / names[-1]}"

    if backend == "sqlite":
        yield sqlite
        return
    server_url: str = request.getfixturevalue("postgres_url")

    def postgres() -> str:
        name = f"cqrs_migrations_{uuid.uuid4().hex[:12]}"
        asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
        names.append(name)
        return make_url(server_url).set(database=name).render_as_string(hide_password=False)

    try:
        yield postgres
    finally:
        for name in names:
            asyncio.run(_admin(server_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


def run_on(url: str, work: Callable[[Connection], T]) -> T:
    """Run ``work`` on a connection to ``url`` in one transaction, committed."""

    async def run() -> T:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                return await conn.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def create_library_tables(conn: Connection) -> None:
    Base.metadata.create_all(conn, tables=LIBRARY)


def table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _plain(value: Any) -> Any:
    """Reflected values made comparable: SQL expressions become their text."""
    if isinstance(value, ClauseElement):
        return str(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def library_schema(conn: Connection) -> dict[str, Any]:
    """What the inspector sees of the library's tables: columns, constraints, indexes."""
    inspector = inspect(conn)

    def by_name(items: list[Any]) -> list[Any]:
        return sorted((_plain(item) for item in items), key=lambda item: str(item["name"]))

    return {
        table: {
            "columns": [
                {**_plain(column), "type": str(column["type"])}
                for column in inspector.get_columns(table)
            ],
            "primary_key": _plain(inspector.get_pk_constraint(table)),
            "unique": by_name(inspector.get_unique_constraints(table)),
            "checks": by_name(inspector.get_check_constraints(table)),
            "foreign_keys": by_name(inspector.get_foreign_keys(table)),
            "indexes": by_name(inspector.get_indexes(table)),
        }
        for table in sorted(LIBRARY_TABLES)
        if inspector.has_table(table)
    }


# PostgreSQL objects the inspector does not see: functions, triggers, sequences (with
# the column owning them) and column defaults.
_POSTGRES_OBJECTS = """
SELECT 'function', p.proname::text, pg_get_functiondef(p.oid)
  FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace
UNION ALL
SELECT 'trigger', t.tgname::text, pg_get_triggerdef(t.oid)
  FROM pg_trigger t WHERE NOT t.tgisinternal
UNION ALL
SELECT 'sequence', s.relname::text, coalesce(d.refobjid::regclass::text || '.' || a.attname, '')
  FROM pg_class s
  LEFT JOIN pg_depend d
    ON d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.deptype = 'a'
  LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
 WHERE s.relkind = 'S' AND s.relnamespace = current_schema()::regnamespace
UNION ALL
SELECT 'default', table_name || '.' || column_name, column_default
  FROM information_schema.columns
 WHERE table_schema = current_schema() AND column_default IS NOT NULL
UNION ALL
SELECT 'storage', c.relname::text, array_to_string(c.reloptions, ',')
  FROM pg_class c
 WHERE c.relkind = 'r' AND c.reloptions IS NOT NULL
   AND c.relnamespace = current_schema()::regnamespace
ORDER BY 1, 2
"""


def postgres_objects(conn: Connection) -> list[tuple[str, str, str]]:
    return [
        (kind, name, definition) for kind, name, definition in conn.execute(text(_POSTGRES_OBJECTS))
    ]


# -- Alembic ---------------------------------------------------------------------------


def alembic_config(url: str, project: Path, **attributes: Any) -> Config:
    """A configuration as docs/migrations.md builds it from Python.

    ``project/versions`` stands for the application's own revisions, beside the
    library's; ``attributes`` reach ``alembic_env/env.py`` (``target_metadata``,
    ``include_object``).
    """
    (project / "versions").mkdir(parents=True, exist_ok=True)
    config = Config()
    config.set_main_option("script_location", str(ENV_DIR))
    config.set_main_option("path_separator", "newline")
    config.set_main_option("version_locations", f"{project / 'versions'}\n{versions_path()}")
    # A ConfigParser value: a "%" (in a password, say) must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes.update(attributes)
    return config


def only_library_tables(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    return type_ != "table" or name in LIBRARY_TABLES


def autogenerate_diffs(conn: Connection, **opts: Any) -> list[Any]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True, **opts}
    )
    return list(compare_metadata(context, Base.metadata))


# -- the revision, on every backend ----------------------------------------------------


def test_upgrade_builds_what_create_all_builds(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    migrated, reference = new_database(), new_database()
    command.upgrade(alembic_config(migrated, tmp_path), "heads")
    run_on(reference, create_library_tables)

    built = run_on(migrated, library_schema)
    assert built == run_on(reference, library_schema)
    assert set(built) == LIBRARY_TABLES
    # Where the dialect reflects it, the WHERE clause of a partial index is compared too.
    due = next(index for index in built["outbox"]["indexes"] if index["name"] == "ix_outbox_due")
    assert any(key.endswith("_where") for key in due.get("dialect_options", {}))
    assert run_on(migrated, table_names) == {"alembic_version", *LIBRARY_TABLES}


def test_autogenerate_finds_no_difference_in_the_library_tables(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database()
    command.upgrade(alembic_config(url, tmp_path), f"{BRANCH_LABEL}@head")

    assert (
        run_on(url, lambda conn: autogenerate_diffs(conn, include_object=only_library_tables)) == []
    )


def test_the_migrated_tables_serve_the_event_store_and_the_outbox(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database()
    command.upgrade(alembic_config(url, tmp_path), "heads")

    async def use() -> tuple[list[int | None], int, list[str]]:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with AsyncSession(engine, expire_on_commit=False) as session:
                events = SQLAlchemyEventStore(session)
                stored = await events.append_batch(
                    [
                        StoredEvent(
                            event_type="OrderPlaced",
                            aggregate_id="order-1",
                            aggregate_type="Order",
                            version=version,
                            payload={"version": version},
                        )
                        for version in (1, 2)
                    ]
                )
                outbox = SQLAlchemyOutboxStorage(session)
                await outbox.save_messages([OutboxMessage(message_id="m-1", event_type="Sent")])
                await session.commit()
                latest = await events.get_latest_position()
                claimed = await outbox.get_pending()
                await session.commit()
        finally:
            await engine.dispose()
        return [event.position for event in stored], latest, [m.message_id for m in claimed]

    assert asyncio.run(use()) == ([1, 2], 2, ["m-1"])


def test_downgrade_removes_the_library_tables(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database()
    config = alembic_config(url, tmp_path)
    command.upgrade(config, "heads")
    command.downgrade(config, f"{BRANCH_LABEL}@base")

    assert run_on(url, table_names) == {"alembic_version"}
    assert run_on(url, library_schema) == {}
    # And it can be built again.
    command.upgrade(config, "heads")
    assert run_on(url, table_names) == {"alembic_version", *LIBRARY_TABLES}


def application_metadata() -> MetaData:
    """An application's ``Base.metadata`` in small: the library's tables and one of its own."""
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    for table in LIBRARY:
        table.to_metadata(metadata)
    Table(
        "app_orders",
        metadata,
        Column("id", String(36), primary_key=True),
        Column("placed_at", UTCDateTime(), nullable=False),
        Column("lines", JSONValue(), nullable=False),
        Column("version", Integer, nullable=False),
    )
    return metadata


def test_an_application_branch_beside_the_library_branch(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database()
    config = alembic_config(url, tmp_path, target_metadata=application_metadata())
    command.upgrade(config, "heads")

    script = command.revision(
        config,
        "create app tables",
        autogenerate=True,
        head="base",
        branch_label="app",
        version_path=str(tmp_path / "versions"),
    )
    assert script is not None
    assert not isinstance(script, list)
    assert Path(script.path).parent == tmp_path / "versions"
    source = Path(script.path).read_text()
    assert "op.create_table('app_orders'" in source
    assert "'events'" not in source
    assert "'outbox'" not in source
    # render_item: the library's types as plain SQLAlchemy, importable.
    assert "sa.DateTime(timezone=True)" in source
    assert "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')" in source
    assert "from sqlalchemy.dialects import postgresql" in source
    assert "cqrs_ddd_persistence_sqlalchemy" not in source

    command.upgrade(config, "heads")
    assert run_on(url, table_names) == {"alembic_version", "app_orders", *LIBRARY_TABLES}
    command.check(config)  # raises AutogenerateDiffsDetected on any difference
    config.attributes["include_object"] = None
    command.check(config)  # the library's tables match even when compared

    command.downgrade(config, "app@base")
    assert run_on(url, table_names) == {"alembic_version", *LIBRARY_TABLES}
    command.downgrade(config, "base")
    assert run_on(url, table_names) == {"alembic_version"}


def test_include_object_keeps_autogenerate_off_the_library_tables(
    new_database: Callable[[], str],
) -> None:
    url = new_database()  # empty: no library tables yet

    def proposed_tables(conn: Connection, **opts: Any) -> set[str]:
        return {diff[1].name for diff in autogenerate_diffs(conn, **opts) if diff[0] == "add_table"}

    assert run_on(url, proposed_tables) >= LIBRARY_TABLES
    assert not LIBRARY_TABLES & run_on(
        url, lambda conn: proposed_tables(conn, include_object=include_object)
    )


# -- the documentation's project, with the alembic command -----------------------------

_LOGGING = """
[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""

_MODELS = """
from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from cqrs_ddd_persistence_sqlalchemy.core.models import Base


class OrderModel(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    placed_at: Mapped[datetime]
    lines: Mapped[dict[str, Any]]
"""


def _docs_block(language: str, first_line: str) -> str:
    """The fenced block of docs/migrations.md in ``language`` starting with ``first_line``."""
    for match in re.finditer(rf"^```{language}\n(.*?)^```$", DOCS.read_text(), re.M | re.S):
        if match[1].startswith(first_line):
            return match[1]
    raise AssertionError(f"docs/migrations.md has no {language} block starting {first_line!r}")


def _docs_commands() -> list[list[str]]:
    """The ``$ alembic ...`` commands of docs/migrations.md, in order, without comments."""
    return [
        shlex.split(line.removeprefix("$ alembic "), comments=True)
        for line in DOCS.read_text().splitlines()
        if line.startswith("$ alembic ") and " init " not in line
    ]


def test_the_documented_project_with_the_alembic_command(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database()
    project = tmp_path / "project"
    (project / "migrations" / "versions").mkdir(parents=True)
    (project / "myapp").mkdir()
    ini = _docs_block("ini", "[alembic]")
    ini = re.sub(r"^sqlalchemy\.url = .*$", lambda _: f"sqlalchemy.url = {url}", ini, flags=re.M)
    (project / "alembic.ini").write_text(ini + _LOGGING)
    (project / "migrations" / "env.py").write_text(_docs_block("python", "# migrations/env.py"))
    shutil.copy(ENV_DIR / "script.py.mako", project / "migrations")
    (project / "myapp" / "__init__.py").write_text("")
    (project / "myapp" / "models.py").write_text(_MODELS)

    def alembic(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-W", "error", "-m", "alembic", *args],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=ALEMBIC_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, f"alembic {shlex.join(args)}:\n{result.stderr}"
        return result.stdout

    commands = _docs_commands()
    upgrades, later, downgrades = commands[:3], commands[3:5], commands[5:]
    assert [c[0] for c in upgrades] == ["upgrade", "revision", "upgrade"]
    assert [c[0] for c in later] == ["revision", "upgrade"]
    assert all(c[0] == "downgrade" for c in downgrades)
    assert downgrades[-1] == ["downgrade", "base"]

    for args in upgrades:
        alembic(*args)
    assert run_on(url, table_names) == {"alembic_version", "orders", *LIBRARY_TABLES}
    alembic("check")
    # The application's next change.
    models = project / "myapp" / "models.py"
    models.write_text(
        models.read_text() + "    note: Mapped[str | None] = mapped_column(String(200))\n"
    )
    for args in later:
        alembic(*args)
    alembic("check")
    assert "note" in {
        column["name"] for column in run_on(url, lambda c: inspect(c).get_columns("orders"))
    }
    revisions = sorted(path.name for path in (project / "migrations" / "versions").glob("*.py"))
    assert len(revisions) == 2, revisions

    for args in downgrades:
        alembic(*args)
    assert run_on(url, table_names) == {"alembic_version"}
    alembic("stamp", f"{BRANCH_LABEL}@head")
    assert alembic("current").split() == [REVISION, "(head)"]


# -- PostgreSQL: functions, trigger, sequence -------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
def test_postgres_functions_trigger_and_sequence_match_create_all(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    migrated, reference = new_database(), new_database()
    command.upgrade(alembic_config(migrated, tmp_path), "heads")
    run_on(reference, create_library_tables)

    objects = run_on(migrated, postgres_objects)
    assert objects == run_on(reference, postgres_objects)
    assert [(kind, name) for kind, name, _ in objects] == [
        ("default", "events.position"),
        ("function", "cqrs_events_append"),
        ("function", "cqrs_events_horizon"),
        ("function", "cqrs_events_next_position"),
        ("function", "cqrs_outbox_notify"),
        ("sequence", "events_position_seq"),
        ("storage", "outbox"),
        ("trigger", "cqrs_outbox_notify"),
    ]
    assert ("default", "events.position", "cqrs_events_next_position()") in objects
    assert ("storage", "outbox", "fillfactor=70") in objects
    assert ("sequence", "events_position_seq", "events.position") in objects


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
def test_postgres_downgrade_drops_the_functions_and_the_trigger(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database()
    config = alembic_config(url, tmp_path)
    command.upgrade(config, "heads")
    command.downgrade(config, "base")

    assert run_on(url, postgres_objects) == []


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
def test_postgres_drop_all_removes_the_functions_create_all_made(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    run_on(url, create_library_tables)
    assert {name for _, name, _ in run_on(url, postgres_objects)} >= {
        "cqrs_events_next_position",
        "cqrs_events_horizon",
        "cqrs_events_append",
        "cqrs_outbox_notify",
    }
    run_on(url, lambda conn: Base.metadata.drop_all(conn, tables=LIBRARY))
    assert run_on(url, postgres_objects) == []


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
def test_postgres_positions_come_from_the_functions_and_the_outbox_notifies(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database()
    command.upgrade(alembic_config(url, tmp_path), "heads")

    async def use() -> tuple[list[int], int, list[str]]:
        engine = create_async_engine(url, poolclass=NullPool)
        notified: asyncio.Queue[str] = asyncio.Queue()
        try:
            async with engine.connect() as listening:
                raw = (await listening.get_raw_connection()).driver_connection
                assert raw is not None
                await raw.add_listener(OUTBOX_CHANNEL, lambda *args: notified.put_nowait(args[2]))
                async with engine.begin() as conn:
                    inserted = await conn.execute(
                        text(
                            "INSERT INTO events (event_id, event_type, aggregate_id,"
                            " aggregate_type, version, payload, metadata, occurred_at,"
                            " schema_version) SELECT 'e-' || v, 'Placed', 'a-1', 'Order', v,"
                            " '{}', '{}', now(), 1 FROM generate_series(1, 3) AS v"
                            " RETURNING position"
                        )
                    )
                    positions = sorted(inserted.scalars())
                    await conn.execute(
                        text(
                            "INSERT INTO outbox (event_id, event_type, payload, metadata,"
                            " status, retry_count, created_at, next_attempt_at)"
                            " VALUES ('m-1', 'Sent', '{}', '{}', 'pending', 0, now(), now())"
                        )
                    )
                async with engine.connect() as conn:
                    horizon = (
                        await conn.execute(text("SELECT cqrs_events_horizon()"))
                    ).scalar_one()
                channel = await asyncio.wait_for(notified.get(), timeout=10)
        finally:
            await engine.dispose()
        return positions, horizon, [channel]

    assert asyncio.run(use()) == ([1, 2, 3], 3, [OUTBOX_CHANNEL])


# -- without a database -----------------------------------------------------------------


def _offline_sql(url: str, tmp_path: Path, *revisions: str) -> str:
    config = alembic_config(url, tmp_path)
    config.output_buffer = buffer = io.StringIO()
    command.upgrade(config, revisions[0], sql=True)
    for revision in revisions[1:]:
        command.downgrade(config, revision, sql=True)
    return buffer.getvalue()


def test_offline_sql_for_postgresql_has_the_functions_and_the_trigger(tmp_path: Path) -> None:
    sql = _offline_sql("postgresql+asyncpg://app@localhost/app", tmp_path, "heads")

    assert "CREATE TABLE events" in sql
    assert "CREATE TABLE outbox" in sql
    assert "WHERE status IN ('pending', 'failed')" in sql
    for name in ("cqrs_events_next_position", "cqrs_events_horizon", "cqrs_outbox_notify"):
        assert f"CREATE OR REPLACE FUNCTION {name}()" in sql
    assert "CREATE OR REPLACE FUNCTION cqrs_events_append(" in sql
    assert "CREATE TRIGGER cqrs_outbox_notify AFTER INSERT ON outbox" in sql
    assert "SET DEFAULT cqrs_events_next_position()" in sql


def test_offline_sql_for_sqlite_has_only_the_tables(tmp_path: Path) -> None:
    sql = _offline_sql(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}", tmp_path, "heads")

    assert "CREATE TABLE events" in sql
    assert "CREATE TABLE outbox" in sql
    assert "WHERE status IN ('pending', 'failed')" in sql
    assert "FUNCTION" not in sql
    assert "TRIGGER" not in sql


def test_the_package_location_holds_one_labelled_base_revision() -> None:
    assert coerce_resource_to_filename(VERSION_LOCATION).resolve() == Path(versions_path())
    scripts = ScriptDirectory(str(ENV_DIR), version_locations=[VERSION_LOCATION])

    assert [script.revision for script in scripts.walk_revisions()] == [REVISION]
    revision = scripts.get_revision(f"{BRANCH_LABEL}@head")
    assert revision is not None
    assert revision.revision == REVISION
    assert revision.branch_labels == {BRANCH_LABEL}
    assert revision.down_revision is None
    assert revision.is_base


def test_importing_the_package_does_not_import_alembic() -> None:
    code = textwrap.dedent(
        """
        import sys
        import cqrs_ddd_persistence_sqlalchemy
        import cqrs_ddd_persistence_sqlalchemy.core
        import cqrs_ddd_persistence_sqlalchemy.migrations
        assert "alembic" not in sys.modules, sorted(m for m in sys.modules if "alembic" in m)
        """
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
