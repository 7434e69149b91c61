"""The repository contract, run on the in-memory, SQLite and PostgreSQL adapters."""

from __future__ import annotations

import pytest
from contract_support import Backend
from sample_domain import Counter, Customer, Order

from cqrs_ddd_core.domain.aggregate import set_version
from cqrs_ddd_core.domain.events import DomainEvent
from cqrs_ddd_core.exceptions import OptimisticConcurrencyError, UnitOfWorkError
from cqrs_ddd_specifications import QueryOptions, SpecificationBuilder


async def _seed_orders(adapter: Backend, count: int) -> list[Order]:
    orders = [
        Order(
            id=f"order-{i:03d}",
            customer_id=f"cust-{i % 3}",
            total=float((i * 7) % 50) + 0.5,
            status=("pending", "shipped", "cancelled")[i % 3],
        )
        for i in range(count)
    ]
    async with adapter.uow() as uow:
        for c in range(3):
            await adapter.customers.add(
                Customer(id=f"cust-{c}", name=f"Customer {c}", email=f"c{c}@example.com"), uow
            )
        for order in orders:
            await adapter.orders.add(order, uow=uow)
    return orders


class Incremented(DomainEvent):
    by: int


def _increment(counter: Counter, *steps: int) -> list[int]:
    """Record one event per step; return the stream versions they were given."""
    versions = []
    for by in steps:
        counter.value += by
        event = counter.add_event(Incremented(by=by))
        assert event.version is not None
        versions.append(event.version)
    return versions


class RepositoryContract:
    """Behaviour every repository adapter shares. Subclasses provide ``adapter``."""

    @pytest.fixture
    def adapter(self) -> Backend:
        raise NotImplementedError

    async def test_add_then_get_round_trips(self, adapter: Backend) -> None:
        counter = Counter(id="c-1", value=3)
        assert counter.version == 0
        async with adapter.uow() as uow:
            returned = await adapter.counters.add(counter, uow=uow)
            assert returned is counter
            assert counter.version == 1
        async with adapter.uow() as uow:
            loaded = await adapter.counters.get("c-1", uow=uow)
        assert loaded == counter
        assert loaded is not counter
        assert loaded.version == 1

    async def test_add_all_adds_new_and_updates_existing(self, adapter: Backend) -> None:
        async with adapter.uow() as uow:
            await adapter.counters.add(Counter(id="c-0", value=1), uow=uow)
        async with adapter.uow() as uow:
            existing = await adapter.counters.get("c-0", uow=uow)
            assert existing is not None
            existing.value = 5
            batch = [existing, Counter(id="c-1"), Counter(id="c-2", value=2)]
            assert await adapter.counters.add_all(batch, uow) == batch
            assert [c.version for c in batch] == [2, 1, 1]
        async with adapter.uow() as uow:
            stored = await adapter.counters.list_all(uow=uow)
        assert [(c.id, c.value, c.version) for c in stored] == [
            ("c-0", 5, 2),
            ("c-1", 0, 1),
            ("c-2", 2, 1),
        ]

    async def test_add_all_changes_no_version_when_an_entity_is_refused(
        self, adapter: Backend
    ) -> None:
        good = Counter(id="c-1")
        async with adapter.uow() as uow:
            with pytest.raises(TypeError, match="Counter"):
                await adapter.counters.add_all(
                    [good, Customer(id="x", name="n", email="e")],  # type: ignore[list-item]
                    uow,
                )
            await uow.rollback()
        assert good.version == 0

    async def test_get_of_a_missing_id_is_none(self, adapter: Backend) -> None:
        async with adapter.uow() as uow:
            assert await adapter.counters.get("nope", uow=uow) is None

    async def test_every_update_increments_the_version(self, adapter: Backend) -> None:
        async with adapter.uow() as uow:
            await adapter.counters.add(Counter(id="c-1"), uow=uow)
        for expected in (2, 3, 4):
            async with adapter.uow() as uow:
                counter = await adapter.counters.get("c-1", uow=uow)
                assert counter is not None
                counter.value += 1
                await adapter.counters.add(counter, uow=uow)
                assert counter.version == expected
        async with adapter.uow() as uow:
            final = await adapter.counters.get("c-1", uow=uow)
        assert final is not None
        assert (final.value, final.version) == (3, 4)

    async def test_a_stale_version_is_refused_and_changes_nothing(self, adapter: Backend) -> None:
        async with adapter.uow() as uow:
            await adapter.counters.add(Counter(id="c-1", value=0), uow=uow)
        async with adapter.uow() as uow:
            stale = await adapter.counters.get("c-1", uow=uow)
        async with adapter.uow() as uow:
            fresh = await adapter.counters.get("c-1", uow=uow)
            assert fresh is not None
            fresh.value = 10
            await adapter.counters.add(fresh, uow=uow)

        assert stale is not None
        stale.value = 99
        async with adapter.uow() as uow:
            with pytest.raises(OptimisticConcurrencyError) as caught:
                await adapter.counters.add(stale, uow=uow)
            assert caught.value.aggregate_id == "c-1"
            assert caught.value.expected_version == 1
            assert caught.value.actual_version == 2
            assert stale.version == 1
            # The unit of work stays usable: reload and retry, as the specification does.
            reloaded = await adapter.counters.get("c-1", uow=uow)
            assert reloaded is not None
            assert (reloaded.value, reloaded.version) == (10, 2)
            reloaded.value += 1
            await adapter.counters.add(reloaded, uow=uow)
        async with adapter.uow() as uow:
            final = await adapter.counters.get("c-1", uow=uow)
        assert final is not None
        assert (final.value, final.version) == (11, 3)

    async def test_updating_a_deleted_aggregate_is_a_conflict(self, adapter: Backend) -> None:
        async with adapter.uow() as uow:
            await adapter.counters.add(Counter(id="c-1"), uow=uow)
        async with adapter.uow() as uow:
            counter = await adapter.counters.get("c-1", uow=uow)
        async with adapter.uow() as uow:
            assert await adapter.counters.delete("c-1", uow=uow) is True
        assert counter is not None
        async with adapter.uow() as uow:
            with pytest.raises(OptimisticConcurrencyError) as caught:
                await adapter.counters.add(counter, uow=uow)
        assert caught.value.actual_version is None

    async def test_delete_reports_whether_a_row_existed(self, adapter: Backend) -> None:
        async with adapter.uow() as uow:
            await adapter.counters.add(Counter(id="c-1"), uow=uow)
        async with adapter.uow() as uow:
            assert await adapter.counters.delete("c-1", uow=uow) is True
            assert await adapter.counters.get("c-1", uow=uow) is None
            assert await adapter.counters.delete("c-1", uow=uow) is False
        async with adapter.uow() as uow:
            assert await adapter.counters.get("c-1", uow=uow) is None

    async def test_list_all_returns_everything_or_the_ids_asked_for(self, adapter: Backend) -> None:
        async with adapter.uow() as uow:
            for i in (3, 1, 2):
                await adapter.counters.add(Counter(id=f"c-{i}", value=i), uow=uow)
        async with adapter.uow() as uow:
            everything = await adapter.counters.list_all(uow=uow)
            chosen = await adapter.counters.list_all(["c-2", "missing", "c-1"], uow=uow)
        assert [c.id for c in everything] == ["c-1", "c-2", "c-3"]
        assert [(c.id, c.value) for c in chosen] == [("c-2", 2), ("c-1", 1)]

    async def test_rollback_discards_the_writes(self, adapter: Backend) -> None:
        class BoomError(Exception):
            pass

        with pytest.raises(BoomError):
            async with adapter.uow() as uow:
                await adapter.counters.add(Counter(id="c-1"), uow=uow)
                raise BoomError
        async with adapter.uow() as uow:
            assert await adapter.counters.get("c-1", uow=uow) is None

    async def test_changes_after_add_are_not_stored(self, adapter: Backend) -> None:
        counter = Counter(id="c-1", value=1)
        async with adapter.uow() as uow:
            await adapter.counters.add(counter, uow=uow)
            counter.value = 500
        async with adapter.uow() as uow:
            loaded = await adapter.counters.get("c-1", uow=uow)
        assert loaded is not None
        assert loaded.value == 1

    async def test_search_filters_orders_and_pages(self, adapter: Backend) -> None:
        orders = await _seed_orders(adapter, 40)
        spec = (
            SpecificationBuilder().where("status", "eq", "pending").where("total", ">", 10).build()
        )
        options = (
            QueryOptions()
            .with_specification(spec)
            .with_ordering("-total")
            .with_pagination(limit=4, offset=2)
        )
        expected = options.apply(sorted(orders, key=lambda o: o.id))
        assert len(expected) == 4
        async with adapter.uow() as uow:
            result = await adapter.orders.search(options=options, uow=uow)
            found = await result
            streamed = [o async for o in result.stream(batch_size=3)]
        assert [o.id for o in found] == [o.id for o in expected]
        assert [o.id for o in streamed] == [o.id for o in expected]

    async def test_search_takes_a_bare_specification_or_nothing(self, adapter: Backend) -> None:
        orders = await _seed_orders(adapter, 12)
        spec = SpecificationBuilder().where("status", "in", ["shipped", "cancelled"]).build()
        async with adapter.uow() as uow:
            matching = await (await adapter.orders.search(spec, uow=uow))
            everything = await (await adapter.orders.search(uow=uow))
        assert {o.id for o in matching} == {o.id for o in orders if o.status != "pending"}
        assert [o.id for o in everything] == sorted(o.id for o in orders)

    async def test_stream_yields_every_match_in_order(self, adapter: Backend) -> None:
        orders = await _seed_orders(adapter, 25)
        options = QueryOptions().with_ordering("customer_id", "-total")
        async with adapter.uow() as uow:
            streamed = [o async for o in (await adapter.orders.search(options, uow=uow)).stream(4)]
        assert [o.id for o in streamed] == [o.id for o in options.apply(orders)]

    async def test_a_unit_of_work_that_was_not_entered_is_refused(self, adapter: Backend) -> None:
        uow = adapter.uow()
        with pytest.raises(UnitOfWorkError, match="not been entered"):
            await adapter.counters.add(Counter(id="c-1"), uow=uow)
        with pytest.raises(UnitOfWorkError, match="not been entered"):
            await adapter.counters.get("c-1", uow=uow)

    async def test_a_closed_unit_of_work_is_refused(self, adapter: Backend) -> None:
        async with adapter.uow() as uow:
            pass
        with pytest.raises(UnitOfWorkError, match="closed"):
            await adapter.counters.get("c-1", uow=uow)

    async def test_adding_another_type_is_a_type_error(self, adapter: Backend) -> None:
        async with adapter.uow() as uow:
            with pytest.raises(TypeError, match="Counter"):
                await adapter.counters.add(
                    Customer(id="x", name="n", email="e"),  # type: ignore[arg-type]
                    uow=uow,
                )

    async def test_the_stored_version_is_that_of_the_last_event_recorded(
        self, adapter: Backend
    ) -> None:
        counter = Counter(id="c-ev")
        assert _increment(counter, 1, 2) == [1, 2]
        async with adapter.uow() as uow:
            await adapter.counters.add(counter, uow=uow)
        assert counter.version == 2
        assert [e.version for e in counter.pull_domain_events()] == [1, 2]

        # The next command numbers its events after the stored ones, whether the
        # events are pulled before or after the save.
        async with adapter.uow() as uow:
            loaded = await adapter.counters.get("c-ev", uow=uow)
            assert loaded is not None
            assert loaded.version == 2
            assert _increment(loaded, 10, 20, 30) == [3, 4, 5]
            assert [e.version for e in loaded.pull_domain_events()] == [3, 4, 5]
            await adapter.counters.add(loaded, uow=uow)
            assert loaded.version == 5
        async with adapter.uow() as uow:
            again = await adapter.counters.get("c-ev", uow=uow)
            assert again is not None
            assert (again.value, again.version) == (63, 5)
            # A save without events still moves the version on by one.
            again.value = 0
            await adapter.counters.add(again, uow=uow)
            assert again.version == 6
            assert _increment(again, 1) == [7]

        stale = Counter(id="c-ev", value=1)
        stale_version = 5
        set_version(stale, stale_version)
        _increment(stale, 1, 1)
        async with adapter.uow() as uow:
            with pytest.raises(OptimisticConcurrencyError):
                await adapter.counters.add(stale, uow=uow)
            assert stale.version == stale_version


class TestInMemoryRepository(RepositoryContract):
    pytestmark = pytest.mark.memory

    @pytest.fixture
    def adapter(self, memory_backend: Backend) -> Backend:
        return memory_backend


class TestSQLAlchemyRepository(RepositoryContract):
    @pytest.fixture
    def adapter(self, sql_backend: Backend) -> Backend:
        return sql_backend
