"""The outbox contract, run on the in-memory, SQLite and PostgreSQL storages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cqrs_ddd_core.adapters import InMemoryOutbox, InMemoryOutboxStorage
from cqrs_ddd_core.exceptions import ClaimLostError, EntityNotFoundError, SerializationError
from cqrs_ddd_core.ports.outbox import OutboxMessage, OutboxStatus, RetryPolicy
from cqrs_ddd_persistence_sqlalchemy.core import SQLAlchemyOutboxStorage

START = datetime(2024, 1, 1, tzinfo=UTC)


def message(n: int, **fields: Any) -> OutboxMessage:
    values: dict[str, Any] = {
        "message_id": f"m-{n:03d}",
        "event_type": "OrderShipped",
        "payload": {"n": n},
        "created_at": START + timedelta(seconds=n),
    }
    values.update(fields)
    return OutboxMessage(**values)


@dataclass
class Outbox:
    """Storages (one per relay) over one outbox, and how to commit their work."""

    new_storage: Callable[..., Awaitable[Any]]
    commit: Callable[[], Awaitable[None]]


FAST = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0, jitter=0.0)


class OutboxContract:
    """Behaviour every outbox storage shares. Subclasses provide ``env``."""

    @pytest.fixture
    async def env(self) -> Outbox:
        raise NotImplementedError

    async def test_saved_messages_come_back_oldest_first_as_json(self, env: Outbox) -> None:
        storage = await env.new_storage()
        await storage.save_messages(
            [
                message(2),
                message(1, payload={"at": START, "amount": Decimal("1.50")}, metadata={"u": 1}),
            ]
        )
        await env.commit()
        claimed = await storage.get_pending(limit=10)
        assert [m.message_id for m in claimed] == ["m-001", "m-002"]
        first = claimed[0]
        assert first.payload == {"at": "2024-01-01T00:00:00Z", "amount": "1.50"}
        assert first.metadata == {"u": 1}
        assert (first.status, first.retry_count, first.event_type) == (
            OutboxStatus.PENDING,
            0,
            "OrderShipped",
        )
        assert first.created_at == START + timedelta(seconds=1)

    async def test_what_a_caller_does_to_a_message_read_is_its_own(self, env: Outbox) -> None:
        storage = await env.new_storage(retry=FAST)
        await storage.save_messages([message(1, metadata={"u": 1}), message(2)])
        await env.commit()
        for read in (
            (await storage.get_pending(limit=1))[0],
            await storage.get_message("m-001"),
        ):
            assert read is not None
            read.payload["n"] = -1
            read.metadata["u"] = -1
        await storage.mark_failed("m-001", "down")
        await storage.mark_failed("m-001", "down")
        await storage.mark_failed("m-001", "down")
        await env.commit()
        (dead,) = await storage.get_dead()
        dead.payload["n"] = -1
        again = await storage.get_message("m-001")
        assert again is not None
        assert (again.payload, again.metadata) == ({"n": 1}, {"u": 1})

    async def test_claims_are_exclusive_until_the_lease_ends(self, env: Outbox) -> None:
        first = await env.new_storage(lease=timedelta(seconds=30))
        await first.save_messages([message(i) for i in range(5)])
        await env.commit()
        taken = await first.get_pending(limit=3)
        await env.commit()
        second = await env.new_storage()
        rest = await second.get_pending(limit=10)
        await env.commit()
        assert [m.message_id for m in taken] == ["m-000", "m-001", "m-002"]
        assert [m.message_id for m in rest] == ["m-003", "m-004"]
        assert await second.get_pending(limit=10) == []

    async def test_an_expired_lease_makes_the_message_due_again(self, env: Outbox) -> None:
        crashed = await env.new_storage(lease=timedelta(milliseconds=700))
        await crashed.save_messages([message(1)])
        await env.commit()
        assert len(await crashed.get_pending()) == 1
        await env.commit()
        rescuer = await env.new_storage()
        assert await rescuer.get_pending() == []
        await asyncio.sleep(0.8)
        again = await rescuer.get_pending()
        await env.commit()
        assert [m.message_id for m in again] == ["m-001"]
        # The crashed relay's claim is gone: its write-back is refused.
        with pytest.raises(ClaimLostError) as caught:
            await crashed.mark_published(["m-001"])
        assert caught.value.message_ids == ("m-001",)
        await env.commit()
        await rescuer.mark_published(["m-001"])
        await env.commit()
        assert (await rescuer.get_message("m-001")).status is OutboxStatus.PUBLISHED

    async def test_unclaimed_messages_can_be_marked_by_anyone(self, env: Outbox) -> None:
        storage = await env.new_storage()
        await storage.save_messages([message(1), message(2)])
        await env.commit()
        operator = await env.new_storage()
        await operator.mark_published(["m-001"])
        await env.commit()
        published = await operator.get_message("m-001")
        assert published.status is OutboxStatus.PUBLISHED
        assert published.published_at is not None
        assert [m.message_id for m in await storage.get_pending()] == ["m-002"]
        await env.commit()
        with pytest.raises(EntityNotFoundError, match="nope"):
            await operator.mark_published(["nope"])

    async def test_failures_back_off_then_dead_letter_and_requeue(self, env: Outbox) -> None:
        storage = await env.new_storage(retry=FAST)
        await storage.save_messages([message(1)])
        await env.commit()
        for attempt in (1, 2):
            (claimed,) = await storage.get_pending()
            await storage.mark_failed(claimed.message_id, f"broker down {attempt}")
            await env.commit()
            current = await storage.get_message("m-001")
            assert (current.status, current.retry_count) == (OutboxStatus.FAILED, attempt)
            assert current.error == f"broker down {attempt}"
        (claimed,) = await storage.get_pending()
        await storage.mark_failed(claimed.message_id, "broker down 3")
        await env.commit()
        dead = await storage.get_dead()
        assert [(m.message_id, m.status, m.retry_count, m.error) for m in dead] == [
            ("m-001", OutboxStatus.DEAD, 3, "broker down 3")
        ]
        assert await storage.get_pending() == []
        stats = await storage.stats()
        assert (stats.pending, stats.failed, stats.dead) == (0, 0, 1)
        assert await storage.requeue(["m-001", "unknown"]) == 1
        await env.commit()
        assert [m.message_id for m in await storage.get_pending()] == ["m-001"]

    async def test_a_failed_message_waits_for_its_backoff(self, env: Outbox) -> None:
        slow = RetryPolicy(max_attempts=5, base_delay=60, max_delay=60, jitter=0)
        storage = await env.new_storage(retry=slow)
        await storage.save_messages([message(1)])
        await env.commit()
        (claimed,) = await storage.get_pending()
        await storage.mark_failed(claimed.message_id, "timeout")
        await env.commit()
        assert await storage.get_pending() == []
        failed = await storage.get_message("m-001")
        assert failed.next_attempt_at is not None
        assert (
            timedelta(seconds=55)
            < failed.next_attempt_at - datetime.now(UTC)
            <= timedelta(seconds=60)
        )

    async def test_messages_with_one_ordering_key_go_one_at_a_time(self, env: Outbox) -> None:
        storage = await env.new_storage(retry=FAST)
        await storage.save_messages(
            [
                message(1, ordering_key="order-1"),
                message(2, ordering_key="order-2"),
                message(3, ordering_key="order-1"),
                message(4),
            ]
        )
        await env.commit()
        first = await storage.get_pending(limit=10)
        assert [m.message_id for m in first] == ["m-001", "m-002", "m-004"]
        await env.commit()
        # m-003 waits while m-001 is claimed...
        other = await env.new_storage()
        assert await other.get_pending(limit=10) == []
        await env.commit()
        # ...and while m-001 waits for its retry: only m-001 comes back.
        await storage.mark_failed("m-001", "nope")
        await env.commit()
        assert [m.message_id for m in await storage.get_pending(limit=10)] == ["m-001"]
        await env.commit()
        await storage.mark_published(["m-001"])
        await env.commit()
        assert [m.message_id for m in await storage.get_pending(limit=10)] == ["m-003"]

    async def test_release_makes_claims_due_again_at_once(self, env: Outbox) -> None:
        storage = await env.new_storage()
        await storage.save_messages([message(1), message(2)])
        await env.commit()
        claimed = await storage.get_pending()
        await storage.release([m.message_id for m in claimed])
        await env.commit()
        other = await env.new_storage()
        assert [m.message_id for m in await other.get_pending()] == ["m-001", "m-002"]

    async def test_purge_removes_only_old_published_messages(self, env: Outbox) -> None:
        storage = await env.new_storage()
        await storage.save_messages([message(1), message(2)])
        await env.commit()
        await storage.mark_published(["m-001"])
        await env.commit()
        assert await storage.purge_published(timedelta(hours=1)) == 0
        assert await storage.purge_published(datetime.now(UTC) + timedelta(seconds=1)) == 1
        await env.commit()
        assert await storage.get_message("m-001") is None
        assert await storage.get_message("m-002") is not None

    async def test_stats_count_and_age(self, env: Outbox) -> None:
        storage = await env.new_storage()
        empty = await storage.stats()
        assert (empty.pending, empty.oldest_pending_age) == (0, None)
        await storage.save_messages([message(1), message(2)])
        await env.commit()
        stats = await storage.stats()
        assert stats.pending == 2
        assert stats.oldest_pending_age is not None
        assert stats.oldest_pending_age > timedelta(days=300)

    async def test_nan_and_infinities_are_saved_as_null(self, env: Outbox) -> None:
        storage = await env.new_storage()
        odd = {"ratio": [1.5, float("nan")], "top": float("inf")}
        await storage.save_messages([message(1, payload=odd, metadata={"low": float("-inf")})])
        await env.commit()
        (claimed,) = await storage.get_pending(limit=10)
        assert claimed.payload == {"ratio": [1.5, None], "top": None}
        assert claimed.metadata == {"low": None}

    async def test_a_deeply_nested_payload_is_claimed(self, env: Outbox) -> None:
        # Deeper than pydantic_core's parser goes (200 levels).
        deep: dict[str, Any] = {"leaf": 1}
        for _ in range(230):
            deep = {"n": deep}
        storage = await env.new_storage()
        await storage.save_messages([message(1, payload=deep)])
        await env.commit()
        (claimed,) = await storage.get_pending(limit=10)
        assert claimed.payload == deep

    async def test_bad_input_is_refused_before_anything_is_written(self, env: Outbox) -> None:
        storage = await env.new_storage()
        with pytest.raises(SerializationError, match="payload of message 'm-002'"):
            await storage.save_messages([message(1), message(2, payload={"x": object()})])
        with pytest.raises(TypeError, match="OutboxMessage"):
            await storage.save_messages([{"message_id": "x"}])
        with pytest.raises(ValueError, match="limit"):
            await storage.get_pending(limit=0)
        await env.commit()
        assert (await storage.stats()).pending == 0


class TestInMemoryOutbox(OutboxContract):
    pytestmark = pytest.mark.memory

    @pytest.fixture
    async def env(self) -> Outbox:
        outbox = InMemoryOutbox()

        async def new_storage(**options: Any) -> InMemoryOutboxStorage:
            return InMemoryOutboxStorage(outbox, **options)

        async def commit() -> None:
            return None

        return Outbox(new_storage, commit)


class TestSQLAlchemyOutbox(OutboxContract):
    @pytest.fixture
    async def env(self, session_factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[Outbox]:
        sessions: list[AsyncSession] = []

        async def new_storage(**options: Any) -> SQLAlchemyOutboxStorage:
            session = session_factory()
            sessions.append(session)
            return SQLAlchemyOutboxStorage(session, **options)

        async def commit() -> None:
            for session in sessions:
                await session.commit()

        yield Outbox(new_storage, commit)
        for session in sessions:
            await session.close()


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [pytest.param("postgres")])
async def test_a_generic_plan_of_the_claim_still_uses_the_partial_index(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    # Many published rows, a few due ones. A prepared statement may run with a generic
    # plan; it must still find the due rows through ix_outbox_due, not read the table.
    published = 50_000
    async with session_factory() as session:
        await session.execute(
            text(
                "INSERT INTO outbox (event_id, event_type, payload, metadata, status, "
                "retry_count, created_at, next_attempt_at, published_at) "
                "SELECT 'm' || g, 'E', '{}', '{}', "
                "CASE WHEN g > :published THEN 'pending' ELSE 'published' END, 0, "
                "now() - interval '1 day' + g * interval '1 ms', now() - interval '1 day', "
                "now() FROM generate_series(1, :published + 300) g"
            ),
            {"published": published},
        )
        await session.commit()
        await session.execute(text("ANALYZE outbox"))
        await session.commit()

    async def rows_read_by_scans(session: AsyncSession) -> int:
        await session.execute(text("SELECT pg_stat_force_next_flush()"))
        await session.commit()
        await session.execute(text("SELECT pg_stat_clear_snapshot()"))
        return int(
            await session.scalar(
                text("SELECT seq_tup_read FROM pg_stat_user_tables WHERE relname = 'outbox'")
            )
            or 0
        )

    async with session_factory() as session:
        before = await rows_read_by_scans(session)
        await session.execute(text("SET plan_cache_mode = force_generic_plan"))
        storage = SQLAlchemyOutboxStorage(session)
        claimed = [len(await storage.get_pending(100)) for _ in range(3)]
        await session.commit()
        after = await rows_read_by_scans(session)
    assert claimed == [100, 100, 100]
    assert after - before < published, f"the claims scanned {after - before} rows"
