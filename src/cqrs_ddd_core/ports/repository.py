"""The repository port: load and save aggregates by id, or search them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from cqrs_ddd_core.domain.aggregate import AggregateRoot
from cqrs_ddd_core.ports.search_result import SearchResult
from cqrs_ddd_core.ports.unit_of_work import UnitOfWork

__all__ = ["IRepository"]

T = TypeVar("T", bound=AggregateRoot[Any])
ID = TypeVar("ID")


class IRepository(ABC, Generic[T, ID]):
    """Loads and saves aggregates of one type inside a unit of work.

    Repositories never commit: the unit of work does.
    """

    @abstractmethod
    async def add(self, entity: T, uow: UnitOfWork) -> T:
        """Insert ``entity`` (version 0) or update it, checking its version.

        Raises:
            OptimisticConcurrencyError: the stored version differs from ``entity.version``.
        """

    async def add_all(self, entities: Sequence[T], uow: UnitOfWork) -> list[T]:
        """Add several entities, as :meth:`add` does each; adapters may batch the work."""
        return [await self.add(entity, uow) for entity in entities]

    @abstractmethod
    async def get(self, entity_id: ID, uow: UnitOfWork) -> T | None:
        """Return the entity with that id, or ``None``."""

    @abstractmethod
    async def delete(self, entity_id: ID, uow: UnitOfWork) -> bool:
        """Delete the entity with that id; return whether it existed."""

    @abstractmethod
    async def list_all(
        self, entity_ids: Sequence[ID] | None = None, uow: UnitOfWork | None = None
    ) -> list[T]:
        """Return every entity, or those with the given ids (missing ids are skipped)."""

    @abstractmethod
    async def search(self, options: Any = None, uow: UnitOfWork | None = None) -> SearchResult[T]:
        """Search by specification, ordering and page.

        ``options`` is a ``cqrs_ddd_specifications.QueryOptions``, a bare
        ``Specification`` or ``None`` (everything). Await the result for a list, or
        iterate over ``result.stream(batch_size=...)``.
        """
