"""The event store contract, run on the in-memory, SQLite and PostgreSQL stores."""

from __future__ import annotations

import enum
import pickle
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cqrs_ddd_core.adapters import InMemoryEventStore
from cqrs_ddd_core.exceptions import (
    DuplicateEventError,
    InvalidEventError,
    OptimisticConcurrencyError,
    SerializationError,
)
from cqrs_ddd_core.ports.event_store import IEventStore, StoredEvent
from cqrs_ddd_persistence_sqlalchemy.core import SQLAlchemyEventStore
from cqrs_ddd_specifications import SpecificationBuilder


@dataclass
class Store:
    """An event store under test and how to make its writes durable."""

    store: IEventStore
    commit: Callable[[], Awaitable[None]]


def event(aggregate_id: str, version: int, **fields: Any) -> StoredEvent:
    values: dict[str, Any] = {
        "event_type": "OrderCreated" if version == 1 else "OrderChanged",
        "aggregate_id": aggregate_id,
        "aggregate_type": "Order",
        "version": version,
        "payload": {"n": version},
    }
    values.update(fields)
    return StoredEvent(**values)


async def append_all(store: IEventStore, events: list[StoredEvent], *, in_batch: bool) -> None:
    """Append ``events`` in one batch, or one ``append`` each."""
    if in_batch:
        await store.append_batch(events)
    else:
        for one in events:
            await store.append(one)


class Colour(enum.Enum):
    RED = "red"


class Money(BaseModel):
    amount: Decimal
    currency: str


class EventStoreContract:
    """Behaviour every event store shares. Subclasses provide ``env``."""

    @pytest.fixture
    async def env(self) -> Store:
        raise NotImplementedError

    async def test_append_assigns_increasing_positions(self, env: Store) -> None:
        first = await env.store.append(event("a", 1))
        batch = await env.store.append_batch([event("b", 1), event("a", 2), event("b", 2)])
        await env.commit()
        positions = [first.position, *(e.position for e in batch)]
        assert all(isinstance(p, int) for p in positions)
        assert positions == sorted(positions)
        assert len(set(positions)) == 4
        assert await env.store.get_latest_position() == positions[-1]
        stored = await env.store.get_all()
        assert [e.event_id for e in stored] == [first.event_id, *(e.event_id for e in batch)]
        assert [e.position for e in stored] == positions

    async def test_streams_are_read_in_version_order(self, env: Store) -> None:
        await env.store.append_batch([event("a", 1), event("b", 1)])
        await env.store.append_batch([event("a", 2), event("a", 3)])
        await env.commit()
        assert [e.version for e in await env.store.get_events("a")] == [1, 2, 3]
        assert [e.version for e in await env.store.get_events("a", after_version=1)] == [2, 3]
        assert await env.store.get_events("a", after_version=3) == []
        assert await env.store.get_events("nobody") == []

    async def test_get_by_aggregate_filters_on_the_type(self, env: Store) -> None:
        await env.store.append_batch(
            [event("x", 1, aggregate_type="Order"), event("x", 2, aggregate_type="Order")]
        )
        await env.commit()
        assert len(await env.store.get_by_aggregate("x")) == 2
        assert len(await env.store.get_by_aggregate("x", aggregate_type="Order")) == 2
        assert await env.store.get_by_aggregate("x", aggregate_type="Invoice") == []

    async def test_an_existing_version_is_a_conflict_and_nothing_of_the_batch_is_stored(
        self, env: Store
    ) -> None:
        await env.store.append_batch([event("a", 1), event("a", 2)])
        await env.commit()
        with pytest.raises(OptimisticConcurrencyError) as caught:
            await env.store.append_batch([event("b", 1), event("a", 2), event("a", 3)])
        assert caught.value.aggregate_id == "a"
        assert caught.value.actual_version == 2
        # The store is still usable and holds nothing of the failed batch.
        await env.store.append(event("c", 1))
        await env.commit()
        assert await env.store.get_events("b") == []
        assert [e.version for e in await env.store.get_events("a")] == [1, 2]
        assert [e.aggregate_id for e in await env.store.get_all()] == ["a", "a", "c"]

    async def test_a_duplicate_event_id_is_rejected_never_dropped(self, env: Store) -> None:
        original = await env.store.append(event("a", 1))
        await env.commit()
        with pytest.raises(DuplicateEventError) as caught:
            await env.store.append_batch([event("b", 1), event("c", 1, event_id=original.event_id)])
        assert caught.value.event_ids == (original.event_id,)
        assert isinstance(caught.value, OptimisticConcurrencyError)
        with pytest.raises(DuplicateEventError):
            await env.store.append_batch([event("d", 1, event_id="x"), event("e", 1, event_id="x")])
        await env.commit()
        assert [e.aggregate_id for e in await env.store.get_all()] == ["a"]

    async def test_a_batch_too_large_for_one_statement_is_all_or_nothing(self, env: Store) -> None:
        # SQLite takes at most 2,000 events per statement; the 2,401st event repeats a
        # stored id, so the statement that fails is not the first of the batch.
        original = await env.store.append(event("a", 1))
        await env.commit()
        batch = [event("big", i + 1) for i in range(2_500)]
        batch[2_400] = event("big", 2_401, event_id=original.event_id)
        with pytest.raises(DuplicateEventError) as caught:
            await env.store.append_batch(batch)
        assert caught.value.event_ids == (original.event_id,)
        await env.store.append(event("c", 1))
        await env.commit()
        assert await env.store.get_events("big") == []
        assert [e.aggregate_id for e in await env.store.get_all()] == ["a", "c"]
        stored = await env.store.append_batch([*batch[:2_400], event("big", 2_401)])
        await env.commit()
        assert [e.version for e in await env.store.get_events("big")] == list(range(1, 2_402))
        assert [e.position for e in stored] == sorted({e.position for e in stored})

    async def test_appends_return_the_positions_stored(self, env: Store) -> None:
        # 2,001 events are two statements on SQLite, the second of a single event.
        alone = await env.store.append(event("a", 1))
        batch = await env.store.append_batch([event("big", i + 1) for i in range(2_001)])
        again = await env.store.append(event("a", 2))
        await env.commit()
        returned = [alone, *batch, again]
        stored = {e.event_id: e.position for e in await env.store.get_all()}
        assert [stored[e.event_id] for e in returned] == [e.position for e in returned]
        assert [e.position for e in returned] == sorted({e.position for e in returned})

    async def test_expected_version_is_checked_before_anything_is_written(self, env: Store) -> None:
        await env.store.append(event("a", 1), expected_version=0)
        await env.store.append_batch([event("a", 2), event("a", 3)], expected_version=1)
        await env.store.append_batch(
            [event("a", 4), event("b", 1)], expected_version={"a": 3, "b": 0}
        )
        await env.commit()
        with pytest.raises(OptimisticConcurrencyError) as caught:
            await env.store.append(event("b", 1, event_id="b-again"), expected_version=0)
        assert (caught.value.aggregate_id, caught.value.expected_version) == ("b", 0)
        assert caught.value.actual_version == 1
        with pytest.raises(OptimisticConcurrencyError):
            await env.store.append_batch(
                [event("c", 1), event("a", 4, event_id="a4-again")],
                expected_version={"a": 3, "c": 0},
            )
        await env.commit()
        assert await env.store.get_events("c") == []
        assert [e.version for e in await env.store.get_events("a")] == [1, 2, 3, 4]

    async def test_inconsistent_batches_are_refused(self, env: Store) -> None:
        with pytest.raises(InvalidEventError, match="consecutive"):
            await env.store.append_batch([event("a", 1), event("a", 3)])
        with pytest.raises(InvalidEventError, match="must start at version 3"):
            await env.store.append(event("a", 1), expected_version=2)
        with pytest.raises(TypeError, match="StoredEvent"):
            await env.store.append_batch([{"aggregate_id": "a"}])  # type: ignore[list-item]
        await env.commit()
        assert await env.store.get_all() == []

    async def test_paging_after_a_position(self, env: Store) -> None:
        appended = await env.store.append_batch([event(f"s{i}", 1) for i in range(25)])
        await env.commit()
        seen: list[StoredEvent] = []
        position = 0
        while True:
            batch = await env.store.get_events_after(position, limit=10)
            if not batch:
                break
            seen.extend(batch)
            position = batch[-1].position or 0
        assert [e.event_id for e in seen] == [e.event_id for e in appended]
        streamed = [e async for e in await env.store.get_events_from_position(0, batch_size=7)]
        assert [e.event_id for e in streamed] == [e.event_id for e in appended]
        middle = appended[11].position or 0
        rest = [e async for e in await env.store.get_events_from_position(middle, batch_size=5)]
        assert [e.event_id for e in rest] == [e.event_id for e in appended[12:]]

    async def test_bad_paging_arguments_are_refused(self, env: Store) -> None:
        with pytest.raises(ValueError, match="limit"):
            await env.store.get_events_after(0, limit=0)
        with pytest.raises(ValueError, match="position"):
            await env.store.get_events_after(-1)
        with pytest.raises(ValueError, match="batch_size"):
            await env.store.get_events_from_position(0, batch_size=0)
        with pytest.raises(ValueError, match="position"):
            await env.store.get_events_from_position(-1)

    async def test_reads_take_a_specification(self, env: Store) -> None:
        await env.store.append_batch(
            [
                event("a", 1, tenant_id="t1"),
                event("a", 2, tenant_id="t2"),
                event("b", 1, tenant_id="t1"),
            ]
        )
        await env.commit()
        tenant = SpecificationBuilder().where("tenant_id", "eq", "t1").build()
        assert [
            (e.aggregate_id, e.version) for e in await env.store.get_all(specification=tenant)
        ] == [
            ("a", 1),
            ("b", 1),
        ]
        assert [e.version for e in await env.store.get_events("a", specification=tenant)] == [1]
        after = await env.store.get_events_after(0, specification=tenant)
        assert [e.aggregate_id for e in after] == ["a", "b"]
        by_user = SpecificationBuilder().where("metadata.user", "eq", "ann").build()
        await env.store.append(event("c", 1, metadata={"user": "ann"}))
        await env.commit()
        assert [e.aggregate_id for e in await env.store.get_all(specification=by_user)] == ["c"]

    @pytest.mark.parametrize("in_batch", [False, True], ids=["alone", "in_a_batch"])
    async def test_values_round_trip_faithfully(self, env: Store, in_batch: bool) -> None:
        eastern = timezone(timedelta(hours=-5))
        occurred = datetime(2024, 3, 1, 7, 30, 15, 123456, tzinfo=eastern)
        ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
        original = event(
            "a",
            1,
            payload={
                "when": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
                "day": date(2024, 1, 2),
                "id": ident,
                "amount": Decimal("12.50"),
                "colour": Colour.RED,
                "price": Money(amount=Decimal("9.99"), currency="EUR"),
                "tags": ("x", "y"),
                "nested": {"deep": [1, 2.5, None, True]},
            },
            metadata={"user_id": "user-123", "ip": "10.0.0.1"},
            occurred_at=occurred,
            schema_version=3,
            correlation_id="corr-1",
            causation_id="cause-1",
            tenant_id="tenant-9",
        )
        awkward = event(
            "b\\\"'",
            1,
            event_type='Quoted "type" \\ with\nnewline',
            aggregate_type="Ünïcödé 🚀",
            payload={"big": 2**63 + 1, "tiny": 1e-300, "text": 'a\\b"c\u00e9\t', "🔑": []},
            metadata={},
            correlation_id="😀",
            causation_id=None,
            tenant_id=None,
        )
        await append_all(env.store, [original, awkward], in_batch=in_batch)
        await env.commit()
        (back,) = await env.store.get_events(awkward.aggregate_id)
        assert back.model_dump(exclude={"position"}) == awkward.model_dump(exclude={"position"})
        (stored,) = await env.store.get_events("a")
        assert stored.occurred_at == occurred
        assert stored.occurred_at.tzinfo is not None
        assert stored.occurred_at.utcoffset() == timedelta(0)
        assert stored.payload == {
            "when": "2024-01-02T03:04:05Z",
            "day": "2024-01-02",
            "id": str(ident),
            "amount": "12.50",
            "colour": "red",
            "price": {"amount": "9.99", "currency": "EUR"},
            "tags": ["x", "y"],
            "nested": {"deep": [1, 2.5, None, True]},
        }
        assert stored.metadata == {"user_id": "user-123", "ip": "10.0.0.1"}
        assert (stored.schema_version, stored.correlation_id, stored.causation_id) == (
            3,
            "corr-1",
            "cause-1",
        )
        assert (stored.tenant_id, stored.event_type, stored.aggregate_type) == (
            "tenant-9",
            "OrderCreated",
            "Order",
        )

    async def test_an_unencodable_payload_is_refused_and_nothing_is_written(
        self, env: Store
    ) -> None:
        with pytest.raises(SerializationError, match="payload of event"):
            await env.store.append_batch([event("a", 1), event("b", 1, payload={"x": object()})])
        bad = event("c", 1, metadata={"when": {1, object()}})
        with pytest.raises(SerializationError, match=f"metadata of event {bad.event_id!r}"):
            await env.store.append(bad)
        with pytest.raises(SerializationError, match=f"metadata of event {bad.event_id!r}"):
            await env.store.append_batch([event("d", 1), event("d", 2), bad])
        await env.commit()
        assert await env.store.get_all() == []

    @pytest.mark.parametrize("text", ["lone \ud800 surrogate", "a NUL \x00 inside"])
    @pytest.mark.parametrize("field", ["event_type", "aggregate_type", "tenant_id"])
    async def test_text_a_database_cannot_store_is_refused(
        self, env: Store, field: str, text: str
    ) -> None:
        bad = event("b", 1, **{field: text})
        with pytest.raises(InvalidEventError, match=f"{field} of event {bad.event_id!r}"):
            await env.store.append(bad)
        with pytest.raises(InvalidEventError, match=field):
            await env.store.append_batch([event("a", 1), bad])
        await env.store.append(event("c", 1, **{field: "non-ASCII is fine: é 🚀"}))
        await env.commit()
        assert [e.aggregate_id for e in await env.store.get_all()] == ["c"]

    @pytest.mark.parametrize("where", ["payload", "metadata"])
    async def test_json_holding_a_nul_is_refused(self, env: Store, where: str) -> None:
        bad = event("b", 1, **{where: {"note": ["fine", {"deep": "x\x00y"}]}})
        with pytest.raises(SerializationError, match=f"{where} of event {bad.event_id!r}"):
            await env.store.append(bad)
        with pytest.raises(SerializationError, match=f"{where} of event {bad.event_id!r}"):
            await env.store.append_batch([event("a", 1), bad])
        # A backslash followed by "u0000" is ordinary text.
        fine = event("c", 1, **{where: {"path": "C:\\u0000dir", "\\u0000": 1}})
        await env.store.append_batch([fine, event("c", 2)])
        await env.commit()
        stored = await env.store.get_all()
        assert [e.aggregate_id for e in stored] == ["c", "c"]
        assert getattr(stored[0], where) == {"path": "C:\\u0000dir", "\\u0000": 1}

    @pytest.mark.parametrize(
        ("field", "limit"),
        [("event_id", 64), ("aggregate_type", 200), ("event_type", 200), ("tenant_id", 200)],
    )
    async def test_text_longer_than_its_column_is_refused(
        self, env: Store, field: str, limit: int
    ) -> None:
        bad = event("b", 1, **{field: "x" * (limit + 1)})
        with pytest.raises(InvalidEventError, match=f"{field} of event .* at most {limit}"):
            await env.store.append(bad)
        with pytest.raises(InvalidEventError, match=f"{field} of event"):
            await env.store.append_batch([event("a", 1), bad])
        with pytest.raises(InvalidEventError, match=r"aggregate_id of event .* at most 200"):
            await env.store.append(event("z" * 201, 1))
        # The transaction goes on, and a value at the limit is kept whole.
        fits = event("c", 1, **{field: "y" * limit})
        await env.store.append(fits)
        await env.commit()
        (stored,) = await env.store.get_all()
        assert getattr(stored, field) == "y" * limit

    @pytest.mark.parametrize("field", ["version", "schema_version"])
    async def test_versions_beyond_32_bits_are_refused(self, env: Store, field: str) -> None:
        values = {"version": 1, "schema_version": 1} | {field: 2**31}
        bad = event("b", values["version"], schema_version=values["schema_version"])
        with pytest.raises(InvalidEventError, match=f"{field} of event .* at most {2**31 - 1}"):
            await env.store.append(bad)
        top = event("c", 2**31 - 1, schema_version=2**31 - 1)
        await env.store.append(top)
        await env.commit()
        assert [(e.version, e.schema_version) for e in await env.store.get_all()] == [
            (2**31 - 1, 2**31 - 1)
        ]
        assert await env.store.get_events("c", after_version=2**31) == []

    @pytest.mark.parametrize("in_batch", [False, True], ids=["alone", "in_a_batch"])
    async def test_nan_and_infinities_are_stored_as_null(self, env: Store, in_batch: bool) -> None:
        # As pydantic's model_dump_json() writes them: JSON has no such numbers, and
        # PostgreSQL refuses NaN in a document.
        odd = {"ratio": [1.5, {"x": float("nan")}], "top": float("inf"), "low": float("-inf")}
        words = {"NaN": "NaN", "note": "-Infinity and beyond"}
        given = [event("a", 1, payload=odd, metadata=odd), event("b", 1, payload=words)]
        await append_all(env.store, given, in_batch=in_batch)
        await env.commit()
        first, second = await env.store.get_all()
        nulls = {"ratio": [1.5, {"x": None}], "top": None, "low": None}
        assert (first.payload, first.metadata) == (nulls, nulls)
        assert second.payload == words

    @pytest.mark.parametrize("in_batch", [False, True], ids=["alone", "in_a_batch"])
    async def test_a_payload_nested_as_deep_as_json_encoding_goes_reads_back(
        self, env: Store, in_batch: bool
    ) -> None:
        # 254 levels: pydantic_core encodes it (not one level more) but parses only
        # 200, and inside a batch's document it is two levels deeper still.
        def nested(levels: int) -> dict[str, Any]:
            value: dict[str, Any] = {"leaf": 1}
            for _ in range(levels - 1):
                value = {"n": value}
            return value

        deep = nested(254)
        given = [event("a", 1, payload=deep), event("a", 2, metadata=deep)]
        await append_all(env.store, given, in_batch=in_batch)
        with pytest.raises(SerializationError, match="payload of event"):
            await env.store.append_batch([event("b", 1), event("b", 2, payload=nested(255))])
        await env.commit()
        first, second = await env.store.get_events("a")
        assert (first.payload, second.metadata) == (deep, deep)
        assert [e.version for e in await env.store.get_events_after(0)] == [1, 2]
        assert [e.aggregate_id for e in await env.store.get_all()] == ["a", "a"]

    @pytest.mark.parametrize("in_batch", [False, True], ids=["alone", "in_a_batch"])
    async def test_the_first_and_last_instants_python_has_are_kept(
        self, env: Store, in_batch: bool
    ) -> None:
        # asyncpg sends datetime.max and datetime.min as PostgreSQL's +/-infinity.
        extremes = [datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)]
        given = [event("a", i + 1, occurred_at=at) for i, at in enumerate(extremes)]
        await append_all(env.store, given, in_batch=in_batch)
        await env.commit()
        assert [e.occurred_at for e in await env.store.get_all()] == extremes
        last = SpecificationBuilder().where("occurred_at", "gt", datetime(9999, 1, 1, tzinfo=UTC))
        assert [e.version for e in await env.store.get_all(specification=last.build())] == [2]

    @pytest.mark.parametrize("in_batch", [False, True], ids=["alone", "in_a_batch"])
    async def test_an_occurred_at_set_without_validation_is_kept_as_its_instant(
        self, env: Store, in_batch: bool
    ) -> None:
        # model_copy(update=) does not validate: the value keeps its offset, here one
        # with seconds (pydantic's JSON encoder drops those).
        at = datetime(2020, 1, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=5, seconds=15)))
        given = [event("a", v).model_copy(update={"occurred_at": at}) for v in (1, 2)]
        await append_all(env.store, given, in_batch=in_batch)
        await env.commit()
        stored = await env.store.get_all()
        assert [e.occurred_at for e in stored] == [at, at]
        assert stored[0].occurred_at.isoformat() == "2020-01-01T06:59:45.123456+00:00"

    @pytest.mark.parametrize(
        ("at", "problem"),
        [
            (datetime(2020, 1, 1), "must be an aware datetime"),
            ("2020-01-01", "must be an aware datetime"),
            (datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))), "out of range in UTC"),
        ],
        ids=["naive", "text", "beyond_utc"],
    )
    async def test_an_occurred_at_no_store_can_keep_is_refused(
        self, env: Store, at: Any, problem: str
    ) -> None:
        bad = event("b", 1).model_copy(update={"occurred_at": at})
        with pytest.raises(
            InvalidEventError, match=f"occurred_at of event {bad.event_id!r} .*{problem}"
        ):
            await env.store.append(bad)
        with pytest.raises(InvalidEventError, match=problem):
            await env.store.append_batch([event("a", 1), bad])
        await env.store.append(event("c", 1))
        await env.commit()
        assert [e.aggregate_id for e in await env.store.get_all()] == ["c"]

    async def test_dates_before_the_year_1000_keep_their_order(self, env: Store) -> None:
        early = [datetime(1, 1, 1, tzinfo=UTC), datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC)]
        later = datetime(2024, 1, 1, tzinfo=UTC)
        await env.store.append_batch(
            [event("a", i + 1, occurred_at=at) for i, at in enumerate([*early, later])]
        )
        await env.commit()
        assert [e.occurred_at for e in await env.store.get_all()] == [*early, later]
        before = SpecificationBuilder().where("occurred_at", "lt", datetime(1500, 1, 1, tzinfo=UTC))
        assert [e.version for e in await env.store.get_all(specification=before.build())] == [1, 2]

    @pytest.mark.parametrize("expected", [1.0, True, -1, "1", {"a": "1"}, {"a": None}])
    async def test_a_malformed_expected_version_is_refused(self, env: Store, expected: Any) -> None:
        with pytest.raises(InvalidEventError, match="expected_version must be an int >= 0"):
            await env.store.append(event("a", 1), expected_version=expected)
        await env.commit()
        assert await env.store.get_all() == []

    async def test_read_arguments_beyond_64_bits_are_refused(self, env: Store) -> None:
        await env.store.append(event("a", 1))
        await env.commit()
        top = 2**63 - 1
        assert await env.store.get_events_after(top) == []
        assert [e.version for e in await env.store.get_events_after(0, limit=top)] == [1]
        assert [e async for e in await env.store.get_events_from_position(0, top)] != []
        assert await env.store.get_events("a", after_version=top) == []
        for call in (
            lambda: env.store.get_events_after(top + 1),
            lambda: env.store.get_events_after(0, limit=top + 1),
            lambda: env.store.get_events_from_position(top + 1),
            lambda: env.store.get_events_from_position(0, batch_size=top + 1),
            lambda: env.store.get_events("a", after_version=top + 1),
            lambda: env.store.get_events("a", after_version=-1),
            lambda: env.store.get_events("a", after_version=True),
        ):
            with pytest.raises(ValueError, match="must be an int from"):
                await call()

    async def test_a_stale_expected_version_is_reported_before_a_duplicate_id(
        self, env: Store
    ) -> None:
        original = await env.store.append(event("a", 1))
        await env.commit()
        with pytest.raises(OptimisticConcurrencyError) as caught:
            await env.store.append(event("b", 4, event_id=original.event_id), expected_version=3)
        assert not isinstance(caught.value, DuplicateEventError)
        assert (caught.value.expected_version, caught.value.actual_version) == (3, 0)

    async def test_append_returns_the_events_given_with_their_positions(self, env: Store) -> None:
        given = event("a", 1, payload={"amount": Decimal("1.50")})
        (appended,) = await env.store.append_batch([given])
        assert appended.position is not None
        assert appended.model_dump(exclude={"position"}) == given.model_dump(exclude={"position"})
        await env.commit()
        (stored,) = await env.store.get_all()
        assert stored.payload == {"amount": "1.50"}
        assert stored.position == appended.position

    async def test_events_read_back_behave_as_validated_models(self, env: Store) -> None:
        await env.store.append_batch([event("a", 1), event("a", 2), event("b", 1)])
        await env.commit()
        pages = [e async for e in await env.store.get_events_from_position(0, batch_size=2)]
        for read in (await env.store.get_events("a"), await env.store.get_all(), pages):
            first, second = read[0], read[1]
            assert first == StoredEvent.model_validate(first.model_dump())
            assert first.model_fields_set == set(StoredEvent.model_fields)
            assert pickle.loads(pickle.dumps(first)) == first
            assert StoredEvent.model_validate_json(first.model_dump_json()) == first
            assert repr(first) == repr(StoredEvent.model_validate(first.model_dump()))
            assert list(first.model_dump()) == list(StoredEvent.model_fields)
            with pytest.raises(ValidationError):
                first.tenant_id = "t"  # type: ignore[misc]
            # Each event has its own state: changing one's copy leaves the others be.
            copy = first.model_copy(update={"tenant_id": "t"})
            copy.model_fields_set.add("extra")
            first.model_fields_set.add("other")
            assert "extra" not in first.model_fields_set | second.model_fields_set
            assert "other" not in second.model_fields_set
            assert (copy.tenant_id, first.tenant_id) == ("t", None)
            first.payload["n"] = -1  # what a caller does to a value read is its own
        assert [e.payload["n"] for e in await env.store.get_events("a")] == [1, 2]


class TestInMemoryEventStore(EventStoreContract):
    pytestmark = pytest.mark.memory

    @pytest.fixture
    async def env(self) -> Store:
        async def commit() -> None:
            return None

        return Store(InMemoryEventStore(), commit)


class TestSQLAlchemyEventStore(EventStoreContract):
    @pytest.fixture
    async def env(self, session_factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[Store]:
        async with session_factory() as session:
            yield Store(SQLAlchemyEventStore(session), session.commit)
