"""The unit-of-work contract, run on the in-memory, SQLite and PostgreSQL adapters."""

from __future__ import annotations

import pytest
from contract_support import Backend
from sample_domain import Counter

from cqrs_ddd_core.exceptions import PostCommitError, UnitOfWorkError
from cqrs_ddd_core.ports.unit_of_work import UnitOfWork, UnitOfWorkHooks, UnitOfWorkState


class Recorder(UnitOfWorkHooks):
    """Hooks that append what happened to a shared log, optionally failing."""

    def __init__(self, log: list[str], name: str = "h", fail_on: str | None = None) -> None:
        self.log = log
        self.name = name
        self.fail_on = fail_on

    async def _record(self, what: str) -> None:
        self.log.append(f"{self.name}.{what}")
        if what == self.fail_on:
            raise RuntimeError(f"{self.name} failed in {what}")

    async def pre_commit(self, uow: UnitOfWork) -> None:
        await self._record("pre_commit")

    async def post_commit(self, uow: UnitOfWork) -> None:
        await self._record("post_commit")

    async def pre_rollback(self, uow: UnitOfWork) -> None:
        await self._record("pre_rollback")

    async def post_rollback(self, uow: UnitOfWork) -> None:
        await self._record("post_rollback")


async def _value(adapter: Backend, counter_id: str = "c-1") -> int | None:
    async with adapter.uow() as uow:
        counter = await adapter.counters.get(counter_id, uow=uow)
    return None if counter is None else counter.value


class UnitOfWorkContract:
    """Lifecycle, hooks and callbacks shared by every unit of work. Subclasses give ``adapter``."""

    @pytest.fixture
    def adapter(self) -> Backend:
        raise NotImplementedError

    async def test_a_clean_exit_commits(self, adapter: Backend) -> None:
        async with adapter.uow() as uow:
            await adapter.counters.add(Counter(id="c-1", value=7), uow=uow)
        assert await _value(adapter) == 7

    async def test_an_exception_rolls_back_and_propagates_unchanged(self, adapter: Backend) -> None:
        error = LookupError("domain rule broken")
        with pytest.raises(LookupError) as caught:
            async with adapter.uow() as uow:
                await adapter.counters.add(Counter(id="c-1"), uow=uow)
                raise error
        assert caught.value is error
        assert await _value(adapter) is None

    async def test_commit_can_be_called_repeatedly(self, adapter: Backend) -> None:
        async with adapter.uow() as uow:
            await adapter.counters.add(Counter(id="c-1", value=1), uow=uow)
            await uow.commit()
            counter = await adapter.counters.get("c-1", uow=uow)
            assert counter is not None
            counter.value = 2
            await adapter.counters.add(counter, uow=uow)
            await uow.commit()
            await uow.commit()
            assert uow.state is UnitOfWorkState.ACTIVE
        assert await _value(adapter) == 2

    async def test_explicit_rollback_discards_and_stays_usable(self, adapter: Backend) -> None:
        async with adapter.uow() as uow:
            await adapter.counters.add(Counter(id="c-1", value=1), uow=uow)
            await uow.rollback()
            assert await adapter.counters.get("c-1", uow=uow) is None
            await adapter.counters.add(Counter(id="c-2", value=2), uow=uow)
        assert await _value(adapter, "c-1") is None
        assert await _value(adapter, "c-2") == 2

    async def test_hooks_run_in_order_around_commit_and_rollback(self, adapter: Backend) -> None:
        log: list[str] = []
        async with adapter.uow(hooks=[Recorder(log, "a"), Recorder(log, "b")]) as uow:
            await adapter.counters.add(Counter(id="c-1"), uow=uow)
            uow.on_commit(lambda: log.append("callback"))
            await uow.commit()
            assert log == [
                "a.pre_commit",
                "b.pre_commit",
                "a.post_commit",
                "b.post_commit",
                "callback",
            ]
            log.clear()
            await adapter.counters.add(Counter(id="c-2"), uow=uow)
            await uow.rollback()
            assert log == ["a.pre_rollback", "b.pre_rollback", "a.post_rollback", "b.post_rollback"]

    async def test_a_failing_pre_commit_hook_aborts_the_commit(self, adapter: Backend) -> None:
        log: list[str] = []
        with pytest.raises(RuntimeError, match="failed in pre_commit"):
            async with adapter.uow(hooks=Recorder(log, fail_on="pre_commit")) as uow:
                await adapter.counters.add(Counter(id="c-1"), uow=uow)
                uow.on_commit(lambda: log.append("callback"))
                await uow.commit()
        assert "callback" not in log
        assert "h.post_commit" not in log
        assert "h.pre_rollback" in log
        assert await _value(adapter) is None

    async def test_post_commit_failures_are_reported_after_everything_ran(
        self, adapter: Backend
    ) -> None:
        log: list[str] = []

        async def async_callback() -> None:
            log.append("async callback")

        def failing_callback() -> None:
            log.append("failing callback")
            raise ValueError("callback broke")

        hooks = [Recorder(log, "a", fail_on="post_commit"), Recorder(log, "b")]
        async with adapter.uow(hooks=hooks) as uow:
            await adapter.counters.add(Counter(id="c-1", value=5), uow=uow)
            uow.on_commit(failing_callback)
            uow.on_commit(async_callback)
            with pytest.raises(PostCommitError, match="the commit succeeded") as caught:
                await uow.commit()
        assert [type(e) for e in caught.value.errors] == [RuntimeError, ValueError]
        assert isinstance(caught.value.__cause__, RuntimeError)
        assert log == [
            "a.pre_commit",
            "b.pre_commit",
            "a.post_commit",
            "b.post_commit",
            "failing callback",
            "async callback",
        ]
        assert await _value(adapter) == 5  # the commit stands

    async def test_callbacks_are_discarded_by_a_rollback(self, adapter: Backend) -> None:
        log: list[str] = []
        async with adapter.uow() as uow:
            await adapter.counters.add(Counter(id="c-1"), uow=uow)
            uow.on_commit(lambda: log.append("first"))
            await uow.rollback()
            uow.on_commit(lambda: log.append("second"))
        assert log == ["second"]

    async def test_lifecycle_misuse_is_refused_with_a_clear_message(self, adapter: Backend) -> None:
        uow = adapter.uow()
        assert uow.state is UnitOfWorkState.NEW
        with pytest.raises(UnitOfWorkError, match="async with"):
            await uow.commit()
        with pytest.raises(UnitOfWorkError, match="async with"):
            uow.on_commit(lambda: None)
        async with uow:
            with pytest.raises(UnitOfWorkError, match="more than once"):
                async with uow:
                    pass
        assert uow.state is UnitOfWorkState.CLOSED
        with pytest.raises(UnitOfWorkError, match="closed"):
            await uow.commit()
        with pytest.raises(UnitOfWorkError, match="closed"):
            await uow.rollback()

    def test_hooks_must_be_hook_objects(self, adapter: Backend) -> None:
        with pytest.raises(TypeError, match="UnitOfWorkHooks"):
            adapter.uow(hooks=[object()])  # type: ignore[list-item]


class TestInMemoryUnitOfWork(UnitOfWorkContract):
    pytestmark = pytest.mark.memory

    @pytest.fixture
    def adapter(self, memory_backend: Backend) -> Backend:
        return memory_backend


class TestSQLAlchemyUnitOfWork(UnitOfWorkContract):
    @pytest.fixture
    def adapter(self, sql_backend: Backend) -> Backend:
        return sql_backend
