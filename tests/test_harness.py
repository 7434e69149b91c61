"""Tests of the test harness itself (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import ForeignKey, String, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Mapped, mapped_column

from cqrs_ddd_persistence_sqlalchemy.core.models import Base


class HarnessParent(Base):
    __tablename__ = "harness_parent"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(50))


class HarnessChild(Base):
    __tablename__ = "harness_child"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("harness_parent.id"))


@pytest.mark.postgres
async def test_postgres_url_reaches_postgresql_15(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+asyncpg://")
    engine = create_async_engine(postgres_url)
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(text("select version()"))).scalar_one()
    finally:
        await engine.dispose()
    assert "PostgreSQL 15" in version


@pytest.mark.parametrize("backend", [pytest.param("sqlite", marks=pytest.mark.sqlite)])
def test_sqlite_database_is_a_file_per_test(db_url: str, tmp_path: Path) -> None:
    assert db_url == f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.mark.parametrize("backend", [pytest.param("sqlite", marks=pytest.mark.sqlite)])
async def test_sqlite_file_is_shared_by_connections(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as writer, session_factory() as reader:
        writer_conn = await writer.connection()
        reader_conn = await reader.connection()
        assert writer_conn.sync_connection is not None
        assert reader_conn.sync_connection is not None
        assert (
            writer_conn.sync_connection.connection.dbapi_connection
            is not reader_conn.sync_connection.connection.dbapi_connection
        )
        writer.add(HarnessParent(name="shared"))
        await writer.commit()
        assert (await reader.scalars(select(HarnessParent.name))).all() == ["shared"]


@pytest.mark.parametrize("round_", [1, 2])
async def test_every_test_starts_from_empty_tables(
    session_factory: async_sessionmaker[AsyncSession], round_: int
) -> None:
    # Both rounds write the same rows; whichever runs second sees the first's data if
    # the harness does not isolate tests, and a generated id past 1 if identities leak.
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(HarnessParent)) == 0
        parent = HarnessParent(name=f"round {round_}")
        session.add(parent)
        await session.commit()
        assert parent.id == 1


async def test_foreign_keys_are_enforced(session_factory: async_sessionmaker[AsyncSession]) -> None:
    async with session_factory() as session:
        session.add(HarnessChild(parent_id=404))
        with pytest.raises(IntegrityError):
            await session.commit()


def test_backend_instance_carries_its_marker(backend: str, request: pytest.FixtureRequest) -> None:
    backend_markers = {marker.name for marker in request.node.iter_markers()} & {
        "sqlite",
        "postgres",
    }
    assert backend_markers == {backend}
