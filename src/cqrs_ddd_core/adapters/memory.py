"""In-memory repository and unit of work with the semantics of the SQL adapters.

An :class:`InMemoryStore` plays the database: several units of work share it, each
sees the committed state plus its own uncommitted writes, and a commit applies the
writes atomically after checking that no other unit of work committed a newer
version of the same aggregates in the meantime. Entities are copied on the way in
and out, so mutating an object after ``add`` or after ``get`` changes nothing
stored, exactly as with a database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any, Generic, TypeVar

from cqrs_ddd_core.domain.aggregate import AggregateRoot, saved_version, set_version
from cqrs_ddd_core.exceptions import OptimisticConcurrencyError
from cqrs_ddd_core.ports.repository import IRepository
from cqrs_ddd_core.ports.search_result import SearchResult
from cqrs_ddd_core.ports.unit_of_work import UnitOfWork, UnitOfWorkHooks

__all__ = ["InMemoryRepository", "InMemoryStore", "InMemoryUnitOfWork"]

T = TypeVar("T", bound=AggregateRoot[Any])
ID = TypeVar("ID")

_DELETED = object()


class InMemoryStore:
    """The committed state: one table of aggregates per repository name."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Any, AggregateRoot[Any]]] = {}
        self.lock = asyncio.Lock()

    def table(self, name: str) -> dict[Any, AggregateRoot[Any]]:
        """The committed rows of one table (created empty on first use)."""
        return self.tables.setdefault(name, {})


class InMemoryUnitOfWork(UnitOfWork):
    """A unit of work over an :class:`InMemoryStore`, with the SQL adapters' lifecycle."""

    def __init__(
        self,
        store: InMemoryStore | None = None,
        *,
        hooks: UnitOfWorkHooks | Sequence[UnitOfWorkHooks] | None = None,
    ) -> None:
        super().__init__(hooks=hooks)
        self.store = store if store is not None else InMemoryStore()
        # (table, id) -> (staged copy or _DELETED, version it was based on or None)
        self._staged: dict[tuple[str, Any], tuple[Any, int | None]] = {}

    async def _begin(self) -> None:
        self._staged.clear()

    def _has_pending_work(self) -> bool:
        return bool(self._staged)

    async def _commit(self) -> None:
        async with self.store.lock:
            for (table, entity_id), (_, base) in self._staged.items():
                current = self.store.table(table).get(entity_id)
                actual = None if current is None else current.version
                if base is not None and actual != base:
                    raise OptimisticConcurrencyError(
                        aggregate_id=entity_id, expected_version=base, actual_version=actual
                    )
                if base is None and current is not None:
                    raise OptimisticConcurrencyError(
                        f"{entity_id!r} already exists",
                        aggregate_id=entity_id,
                        expected_version=0,
                        actual_version=actual,
                    )
            for (table, entity_id), (value, _) in self._staged.items():
                rows = self.store.table(table)
                if value is _DELETED:
                    rows.pop(entity_id, None)
                else:
                    rows[entity_id] = value
            self._staged.clear()

    async def _rollback(self) -> None:
        self._staged.clear()

    async def _close(self) -> None:
        self._staged.clear()

    # -- used by InMemoryRepository ----------------------------------------------

    def read(self, table: str, entity_id: Any) -> AggregateRoot[Any] | None:
        """The row as this unit of work sees it (its own writes first)."""
        self.ensure_active()
        staged = self._staged.get((table, entity_id))
        if staged is not None:
            value = staged[0]
            return None if value is _DELETED else value
        return self.store.table(table).get(entity_id)

    def rows(self, table: str) -> list[AggregateRoot[Any]]:
        """Every row of a table as this unit of work sees it."""
        self.ensure_active()
        merged: dict[Any, Any] = dict(self.store.table(table))
        for (name, entity_id), (value, _) in self._staged.items():
            if name != table:
                continue
            if value is _DELETED:
                merged.pop(entity_id, None)
            else:
                merged[entity_id] = value
        return list(merged.values())

    def write(self, table: str, entity_id: Any, value: Any, base_version: int | None) -> None:
        """Stage a write; ``base_version`` is the committed version it was based on."""
        self.ensure_active()
        key = (table, entity_id)
        if key in self._staged:
            base_version = self._staged[key][1]
        self._staged[key] = (value, base_version)


class InMemoryRepository(IRepository[T, ID], Generic[T, ID]):
    """A repository over an :class:`InMemoryUnitOfWork`, for tests of application code.

    Same contract as ``SQLAlchemyRepository``: ``add`` inserts at version 0 and
    otherwise checks the version, raising :class:`OptimisticConcurrencyError`; the
    check is repeated at commit against what other units of work committed.
    Search uses ``QueryOptions.apply`` (same semantics as the SQL compiler).
    """

    def __init__(self, entity_cls: type[T], *, table: str | None = None) -> None:
        self.entity_cls = entity_cls
        self.table = table or entity_cls.__name__

    def _uow(self, uow: UnitOfWork | None) -> InMemoryUnitOfWork:
        if uow is None:
            raise TypeError(f"{type(self).__name__} needs a unit of work: pass uow=")
        if not isinstance(uow, InMemoryUnitOfWork):
            raise TypeError(
                f"{type(self).__name__} needs an InMemoryUnitOfWork, got {type(uow).__name__}"
            )
        uow.ensure_active()
        return uow

    def _copy(self, entity: T) -> T:
        copy = entity.model_copy(deep=True)
        # Domain events are not state: they are never stored.
        copy.pull_domain_events()
        return copy

    async def add(self, entity: T, uow: UnitOfWork) -> T:
        """Insert (version 0) or update with a version check; see the class docstring."""
        work = self._uow(uow)
        self._check_type(entity)
        current = work.read(self.table, entity.id)
        actual = None if current is None else current.version
        if entity.version == 0:
            if current is not None:
                raise OptimisticConcurrencyError(
                    f"{self.entity_cls.__name__} {entity.id!r} already exists",
                    aggregate_id=entity.id,
                    expected_version=0,
                    actual_version=actual,
                )
            base = None
        elif actual != entity.version:
            raise OptimisticConcurrencyError(
                f"{self.entity_cls.__name__} {entity.id!r} was modified concurrently: "
                f"expected version {entity.version}, found "
                f"{'no row' if actual is None else f'version {actual}'}",
                aggregate_id=entity.id,
                expected_version=entity.version,
                actual_version=actual,
            )
        else:
            committed = work.store.table(self.table).get(entity.id)
            base = None if committed is None else committed.version
        stored = self._copy(entity)
        version = saved_version(entity)
        set_version(stored, version)
        work.write(self.table, entity.id, stored, base)
        set_version(entity, version)
        return entity

    async def add_all(self, entities: Sequence[T], uow: UnitOfWork) -> list[T]:
        """Add several entities; none is added if one is of the wrong type."""
        for entity in entities:
            self._check_type(entity)
        return [await self.add(entity, uow) for entity in entities]

    def _check_type(self, entity: Any) -> None:
        if not isinstance(entity, self.entity_cls):
            raise TypeError(
                f"{type(self).__name__} stores {self.entity_cls.__name__}, "
                f"got {type(entity).__name__}"
            )

    async def get(self, entity_id: ID, uow: UnitOfWork) -> T | None:
        """Return a copy of the entity with that id, or ``None``."""
        row = self._uow(uow).read(self.table, entity_id)
        return None if row is None else self._copy(row)  # type: ignore[arg-type]

    async def delete(self, entity_id: ID, uow: UnitOfWork) -> bool:
        """Delete the entity with that id; return whether it existed."""
        work = self._uow(uow)
        if work.read(self.table, entity_id) is None:
            return False
        committed = work.store.table(self.table).get(entity_id)
        work.write(
            self.table, entity_id, _DELETED, None if committed is None else committed.version
        )
        return True

    async def list_all(
        self, entity_ids: Sequence[ID] | None = None, uow: UnitOfWork | None = None
    ) -> list[T]:
        """Every entity ordered by id, or those with the given ids in that order."""
        work = self._uow(uow)
        if entity_ids is None:
            rows = sorted(work.rows(self.table), key=lambda e: e.id)
            return [self._copy(row) for row in rows]  # type: ignore[arg-type]
        result: list[T] = []
        for entity_id in dict.fromkeys(entity_ids):
            row = work.read(self.table, entity_id)
            if row is not None:
                result.append(self._copy(row))  # type: ignore[arg-type]
        return result

    async def search(self, options: Any = None, uow: UnitOfWork | None = None) -> SearchResult[T]:
        """Search with ``QueryOptions`` (or a bare specification), evaluated in memory."""
        # Imported here: cqrs_ddd_core depends on nothing but pydantic at import time.
        from cqrs_ddd_specifications import OrderBy, QueryOptions

        work = self._uow(uow)
        options = QueryOptions.of(options)
        # Ties are broken by id, as the SQL repository does.
        if all(order.field != "id" for order in options.ordering):
            options = options.with_ordering(*options.ordering, OrderBy("id"))

        async def fetch() -> list[T]:
            rows = options.apply(work.rows(self.table))
            return [self._copy(row) for row in rows]

        async def stream(batch_size: int) -> AsyncIterator[T]:
            for row in await fetch():
                yield row

        return SearchResult(fetch, stream)
