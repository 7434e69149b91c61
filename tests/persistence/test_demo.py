"""The demonstration runs end to end on both backends, in process and as a command."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cqrs_ddd_core.ports.event_store import StoredEvent
from cqrs_ddd_core.ports.outbox import OutboxMessage, OutboxStatus
from cqrs_ddd_persistence_sqlalchemy.core import (
    OutboxMessageModel,
    SQLAlchemyEventStore,
    SQLAlchemyOutboxStorage,
)
from cqrs_ddd_persistence_sqlalchemy.demo import DemoOrderModel, DemoRefusedError, run_demo

ORDER_1_EVENTS = [("OrderPlaced", 1), ("OrderPaid", 2), ("OrderShipped", 3)]
ORDER_2_EVENTS = [("OrderPlaced", 1), ("OrderPaid", 2)]


async def demo_output(db_url: str) -> str:
    lines: list[str] = []
    await run_demo(db_url, out=lines.append)
    return "\n".join(lines)


def assert_tour_told(text: str) -> None:
    for expected in (
        "1. Create the tables",
        "event OrderPlaced appended to stream order-1 at version 1, position",
        "order-1 paid:    version 2, event OrderPaid at position",
        "order-1 shipped: version 3, event OrderShipped at position",
        "order-4  total 120.00  placed\n   order-3  total  75.50  placed",
        "B cancels it, based on version 1: OptimisticConcurrencyError",
        "DemoOrder 'order-2' was modified concurrently: expected version 1, found version 2",
        "order-2 is paid, its events are OrderPlaced, OrderPaid",
        "9 messages pending",
        "published 9 messages in 3 rounds",
        "version 3: the same as the stored row",
        "orders     6 stored: 1 paid, 4 placed, 1 shipped",
        "outbox     9 messages: 9 published",
        "conflicts  1 caught: OptimisticConcurrencyError",
    ):
        assert expected in text, expected
    # The console publisher's lines: one per message, order-1's in order.
    printed = [line for line in text.splitlines() if line.startswith("   {")]
    assert len(printed) == 9
    order_1 = [line for line in printed if '"order_id": "order-1"' in line]
    assert [line.split('"event_type": "')[1].split('"')[0] for line in order_1] == [
        "OrderPlaced",
        "OrderPaid",
        "OrderShipped",
    ]


async def assert_database_left(session_factory: async_sessionmaker[AsyncSession]) -> None:
    async with session_factory() as session:
        events = await SQLAlchemyEventStore(session).get_all()
        statuses = select(OutboxMessageModel.event_id, OutboxMessageModel.status)
        messages = {row[0]: row[1] for row in await session.execute(statuses)}
        rows = select(DemoOrderModel.id, DemoOrderModel.status)
        orders = {row[0]: row[1] for row in await session.execute(rows)}
    positions = [e.position for e in events]
    assert all(isinstance(p, int) for p in positions)
    assert positions == sorted(positions)
    assert len(set(positions)) == 9

    def stream(order_id: str) -> list[tuple[str, int]]:
        return [(e.event_type, e.version) for e in events if e.aggregate_id == order_id]

    assert stream("order-1") == ORDER_1_EVENTS
    # Writer B's cancellation was rolled back with everything else of its unit of work.
    assert stream("order-2") == ORDER_2_EVENTS
    assert "OrderCancelled" not in {e.event_type for e in events}
    # One outbox message per event, saved in the same transactions, all published.
    assert set(messages) == {e.event_id for e in events}
    assert set(messages.values()) == {OutboxStatus.PUBLISHED}
    assert orders == {
        "order-1": "shipped",
        "order-2": "paid",
        "order-3": "placed",
        "order-4": "placed",
        "order-5": "placed",
        "order-6": "placed",
    }


async def test_the_demo_runs_on_the_backend(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    assert_tour_told(await demo_output(db_url))
    await assert_database_left(session_factory)
    # Running it again starts over instead of failing on what the first run left.
    assert_tour_told(await demo_output(db_url))
    await assert_database_left(session_factory)


async def test_the_demo_refuses_a_database_whose_outbox_it_would_publish(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    async with session_factory() as session:
        await SQLAlchemyEventStore(session).append(
            StoredEvent(
                event_type="Invoiced", aggregate_id="inv-1", aggregate_type="Invoice", version=1
            )
        )
        await SQLAlchemyOutboxStorage(session).save_messages([OutboxMessage(event_type="Invoiced")])
        await session.commit()
    with pytest.raises(DemoRefusedError, match=r"\(1 events, 1 outbox messages\)"):
        await demo_output(db_url)
    async with session_factory() as session:
        assert [e.aggregate_id for e in await SQLAlchemyEventStore(session).get_all()] == ["inv-1"]
        assert (await SQLAlchemyOutboxStorage(session).stats()).pending == 1


def demo_command(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cqrs_ddd_persistence_sqlalchemy", "demo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_python_m_runs_the_demo_on_the_database_given(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    result = demo_command("--db", db_url)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert_tour_told(result.stdout)
    await assert_database_left(session_factory)


@pytest.mark.sqlite
def test_the_console_command_runs_the_demo_on_an_sqlite_file_here(tmp_path: Path) -> None:
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "cqrs-ddd"]
    assert script.value == "cqrs_ddd_persistence_sqlalchemy.__main__:main"
    command = Path(sys.executable).with_name("cqrs-ddd")
    for _ in range(2):  # the second run starts over in the same file
        result = subprocess.run(
            [str(command), "demo"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert_tour_told(result.stdout)
    database = (tmp_path / "cqrs_ddd_demo.db").resolve()
    assert database.exists()
    assert f"a tour on SQLite file {database}" in result.stdout


@pytest.mark.sqlite
def test_the_command_reports_a_bad_url_without_a_traceback(tmp_path: Path) -> None:
    result = demo_command("--db", "not a url", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("demo: ")
    assert "Traceback" not in result.stderr
