"""The relay as a process: the console command, SIGTERM, and a SIGKILL mid-batch."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cqrs_ddd_core.ports.outbox import OutboxMessage
from cqrs_ddd_persistence_sqlalchemy.core import SQLAlchemyOutboxStorage
from cqrs_ddd_persistence_sqlalchemy.core.relay import OutboxRelay

HERE = Path(__file__).parent


def relay_command(db_url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "cqrs_ddd_persistence_sqlalchemy", "relay", "--db", db_url, *args]


async def save(session_factory: async_sessionmaker[AsyncSession], count: int) -> list[str]:
    ids = [f"m-{i:04d}" for i in range(count)]
    async with session_factory() as session:
        await SQLAlchemyOutboxStorage(session).save_messages(
            [OutboxMessage(message_id=i, event_type="Evt", payload={"id": i}) for i in ids]
        )
        await session.commit()
    return ids


async def wait_for(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_the_relay_command_prints_messages_and_stops_on_sigterm(
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
    db_url: str,
    tmp_path: Path,
) -> None:
    ids = await save(session_factory, 5)
    out = tmp_path / "out.jsonl"
    with out.open("w") as stdout:
        process = subprocess.Popen(
            relay_command(db_url, "--publisher", "console", "--poll-interval", "0.05"),
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            await wait_for(lambda: len(out.read_text().splitlines()) >= 5, timeout=30)
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["message_id"] for line in lines] == ids
    assert lines[0]["payload"] == {"id": ids[0]}
    assert "stopped" in stderr


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
async def test_a_relay_killed_mid_batch_loses_nothing(
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
    db_url: str,
    tmp_path: Path,
) -> None:
    ids = await save(session_factory, 60)
    delivered = tmp_path / "delivered.txt"
    delivered.touch()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "SLOW_PUBLISHER_FILE": str(delivered),
        "SLOW_PUBLISHER_DELAY": "0.05",
    }
    process = subprocess.Popen(
        relay_command(
            db_url,
            "--publisher",
            "slow_publisher:SlowFilePublisher",
            "--batch-size",
            "20",
            "--lease",
            "2",
        ),
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Kill it in the middle of its second batch: 20 published and marked, some of
        # the next 20 published but not marked.
        await wait_for(lambda: len(delivered.read_text().splitlines()) >= 25, timeout=60)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    before = delivered.read_text().splitlines()

    class FileAppender:
        async def publish(self, message: OutboxMessage) -> None:
            with delivered.open("a") as out:
                out.write(message.message_id + "\n")

    rescuer = OutboxRelay(engine, FileAppender(), batch_size=20, lease=timedelta(seconds=2))
    await asyncio.sleep(2.2)  # the killed relay's lease ends
    while await rescuer.run_once():
        pass

    counts = Counter(delivered.read_text().splitlines())
    assert set(counts) == set(ids), "every message delivered"
    twice = sorted(i for i, n in counts.items() if n > 1)
    assert all(n <= 2 for n in counts.values())
    # Only messages of the batch in flight when the relay died came twice: ids
    # 20..39, of which those it had published before dying.
    assert set(twice) <= set(ids[20:40])
    assert set(twice) == set(before) - set(ids[:20])
