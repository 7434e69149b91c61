"""The generic SQLAlchemy repository of aggregates."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar, Generic, cast

from sqlalchemy import Column, Select, Table, delete, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper
from typing_extensions import TypeVar

from cqrs_ddd_core.domain.aggregate import AggregateRoot, saved_version, set_version
from cqrs_ddd_core.ports.repository import IRepository
from cqrs_ddd_core.ports.search_result import SearchResult
from cqrs_ddd_core.ports.unit_of_work import UnitOfWork
from cqrs_ddd_persistence_sqlalchemy.core.model_mapper import ModelMapper
from cqrs_ddd_persistence_sqlalchemy.core.query import compile_ordering, compile_specification
from cqrs_ddd_persistence_sqlalchemy.core.uow import SQLAlchemyUnitOfWork
from cqrs_ddd_persistence_sqlalchemy.exceptions import OptimisticConcurrencyError
from cqrs_ddd_specifications import QueryOptions, Specification, TrueSpecification

__all__ = ["SQLAlchemyRepository"]

T = TypeVar("T", bound=AggregateRoot[Any])
# Defaults to Any so that SQLAlchemyRepository(entity_cls=..., db_model_cls=...) needs
# no explicit parameters under mypy --strict.
ID = TypeVar("ID", default=Any)

# asyncpg accepts at most 32767 bind parameters per statement.
_IN_CHUNK = 10_000


class SQLAlchemyRepository(IRepository[T, ID], Generic[T, ID]):
    """Loads and saves one aggregate type through a mapped SQLAlchemy model.

    ``add`` inserts an aggregate whose ``version`` is 0 (sent as one batched INSERT
    per table when the unit of work flushes) and otherwise updates it with
    ``UPDATE ... WHERE id = :id AND version = :version``, raising
    :class:`OptimisticConcurrencyError` at once if another transaction got there
    first. Models without a version column (not on this library's ``Base``) are
    saved with ``session.merge``: the last writer wins.

    Override :meth:`to_model` and :meth:`from_model` for custom mapping; subclasses
    may set ``entity_cls`` and ``db_model_cls`` as class attributes instead of
    passing them.

    Repositories never commit; the unit of work does.
    """

    entity_cls: ClassVar[type[Any] | None] = None
    db_model_cls: ClassVar[type[Any] | None] = None

    def __init__(
        self,
        entity_cls: type[T] | None = None,
        db_model_cls: type[Any] | None = None,
        *,
        relationship_depth: int = 0,
        mapper: ModelMapper[T, Any] | None = None,
    ) -> None:
        entity_cls = entity_cls or cast("type[T] | None", type(self).entity_cls)
        db_model_cls = db_model_cls or type(self).db_model_cls
        if mapper is not None:
            entity_cls, db_model_cls = mapper.entity_cls, mapper.model_cls
        if entity_cls is None or db_model_cls is None:
            raise TypeError(
                f"{type(self).__name__} needs entity_cls= and db_model_cls= "
                "(or class attributes of those names, or mapper=)"
            )
        self._entity_cls: type[T] = entity_cls
        self._model_cls: type[Any] = db_model_cls
        self._depth = relationship_depth
        self._mapper = mapper
        self._sa_mapper = cast("Mapper[Any]", inspect(db_model_cls))
        primary_key = self._sa_mapper.primary_key
        if len(primary_key) != 1:
            raise TypeError(
                f"{db_model_cls.__name__} must have a single-column primary key "
                f"to be used by a repository, it has {len(primary_key)}"
            )
        self._pk = cast("Column[Any]", primary_key[0])
        self._table = cast("Table", self._sa_mapper.local_table)
        version_col = self._sa_mapper.version_id_col
        self._version_col: Column[Any] | None = cast("Column[Any] | None", version_col)

    @property
    def mapper(self) -> ModelMapper[T, Any]:
        """The entity ↔ model mapper (built on first use, shared per class pair)."""
        if self._mapper is None:
            self._mapper = ModelMapper.for_classes(self._entity_cls, self._model_cls, self._depth)
        return self._mapper

    @property
    def model_cls(self) -> type[Any]:
        """The mapped SQLAlchemy class."""
        return self._model_cls

    # -- mapping -----------------------------------------------------------------

    def to_model(self, entity: T) -> Any:
        """Build a model instance from an entity. Override for custom mapping."""
        return self.mapper.to_model(entity)

    def from_model(self, model: Any) -> T:
        """Build an entity from a model instance. Override for custom mapping."""
        return self.mapper.from_model(model)

    # -- helpers -----------------------------------------------------------------

    def _session(self, uow: UnitOfWork | None) -> AsyncSession:
        if uow is None:
            raise TypeError(f"{type(self).__name__} needs a unit of work: pass uow=")
        if not isinstance(uow, SQLAlchemyUnitOfWork):
            raise TypeError(
                f"{type(self).__name__} needs a SQLAlchemyUnitOfWork, got {type(uow).__name__}"
            )
        return uow.session

    def _forget(self, session: AsyncSession, entity_id: Any) -> None:
        # A row changed behind the ORM's back: drop the stale instance from the
        # identity map so the next read in this session goes to the database.
        key = self._sa_mapper.identity_key_from_primary_key((entity_id,))
        instance = session.sync_session.identity_map.get(key)
        if instance is not None:
            session.expunge(instance)

    def _select(self) -> Select[Any]:
        return select(self._model_cls).options(*self.mapper.loader_options())

    # -- IRepository -------------------------------------------------------------

    async def add(self, entity: T, uow: UnitOfWork) -> T:
        """Insert (``version == 0``) or update the entity; its version is then the stored one.

        Raises:
            OptimisticConcurrencyError: the stored version is not ``entity.version``;
                nothing was written.
            MappingError: a required column is left empty by the mapping.
        """
        session = self._session(uow)
        mapper = self.mapper
        model = self._checked_model(entity, mapper)
        if self._version_col is None or mapper.version_attr is None:
            await session.merge(model)
            return entity
        if entity.version == 0:
            version = self._first_version(entity)
            setattr(model, mapper.version_attr, version)
            session.add(model)
            set_version(entity, version)
            return entity
        await self._update(session, entity, model)
        return entity

    async def add_all(self, entities: Sequence[T], uow: UnitOfWork) -> list[T]:
        """Add several entities: :meth:`add` for each, with the new ones handed to the
        session in one call. Inserts are sent in batches at flush either way; this
        only saves Python work per entity.
        """
        session = self._session(uow)
        mapper = self.mapper
        if self._version_col is None or mapper.version_attr is None:
            for entity in entities:
                await self.add(entity, uow)
            return list(entities)
        version_attr = mapper.version_attr
        new: list[tuple[T, Any]] = []
        for entity in entities:
            if entity.version != 0:
                await self.add(entity, uow)
                continue
            model = self._checked_model(entity, mapper)
            setattr(model, version_attr, self._first_version(entity))
            new.append((entity, model))
        # Versions change only once every new entity mapped without error.
        session.add_all([model for _, model in new])
        for entity, model in new:
            set_version(entity, getattr(model, version_attr))
        return list(entities)

    def _first_version(self, entity: T) -> int:
        # The ORM's own version generator (a model not on this library's Base) always
        # inserts version 1; otherwise the version of the last recorded event.
        return saved_version(entity) if self._sa_mapper.version_id_generator is False else 1

    def _checked_model(self, entity: T, mapper: ModelMapper[T, Any]) -> Any:
        if not isinstance(entity, self._entity_cls):
            raise TypeError(
                f"{type(self).__name__} stores {self._entity_cls.__name__}, "
                f"got {type(entity).__name__}"
            )
        model = self.to_model(entity)
        mapper.check_required(model)
        return model

    async def _update(self, session: AsyncSession, entity: T, model: Any) -> None:
        assert self._version_col is not None
        expected = entity.version
        entity_id = getattr(model, self._sa_mapper.get_property_by_column(self._pk).key)
        state = model.__dict__
        values: dict[Any, Any] = {}
        for prop in self._sa_mapper.column_attrs:
            column = prop.columns[0]
            if column is self._pk or column is self._version_col or prop.key not in state:
                continue
            values[column] = state[prop.key]
        version = saved_version(entity)
        values[self._version_col] = version
        stmt = (
            update(self._table)
            .where(self._pk == entity_id, self._version_col == expected)
            .values(values)
        )
        result = await session.execute(stmt)
        self._forget(session, entity_id)
        if cast("Any", result).rowcount != 1:
            actual = await session.scalar(select(self._version_col).where(self._pk == entity_id))
            raise OptimisticConcurrencyError(
                f"{self._entity_cls.__name__} {entity_id!r} was modified concurrently: "
                f"expected version {expected}, found "
                f"{'no row' if actual is None else f'version {actual}'}",
                aggregate_id=entity_id,
                expected_version=expected,
                actual_version=actual,
            )
        set_version(entity, version)
        if self.mapper.loader_options():
            # Related rows (collections, many-to-one) go through the ORM's cascades;
            # the root row is already current, so merge only touches the children.
            version_attr = self.mapper.version_attr
            assert version_attr is not None
            setattr(model, version_attr, version)
            await session.merge(model, options=self.mapper.loader_options())
            await session.flush()

    async def get(self, entity_id: ID, uow: UnitOfWork) -> T | None:
        """Return the entity with that id, or ``None``."""
        session = self._session(uow)
        model = await session.get(self._model_cls, entity_id, options=self.mapper.loader_options())
        return None if model is None else self.from_model(model)

    async def delete(self, entity_id: ID, uow: UnitOfWork) -> bool:
        """Delete the entity with that id; return whether a row was deleted."""
        session = self._session(uow)
        if self.mapper.loader_options():
            # Let the ORM apply the relationships' delete cascades.
            model = await session.get(
                self._model_cls, entity_id, options=self.mapper.loader_options()
            )
            if model is None:
                return False
            await session.delete(model)
            await session.flush()
            return True
        result = await session.execute(delete(self._table).where(self._pk == entity_id))
        self._forget(session, entity_id)
        return bool(cast("Any", result).rowcount)

    async def list_all(
        self, entity_ids: Sequence[ID] | None = None, uow: UnitOfWork | None = None
    ) -> list[T]:
        """Return every entity ordered by id, or those with the given ids in that order."""
        session = self._session(uow)
        pk_attr = getattr(self._model_cls, self._sa_mapper.get_property_by_column(self._pk).key)
        if entity_ids is None:
            models = await session.scalars(self._select().order_by(pk_attr))
            return [self.from_model(m) for m in models]
        ids = list(dict.fromkeys(entity_ids))
        found: dict[Any, T] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            for model in await session.scalars(self._select().where(pk_attr.in_(chunk))):
                entity = self.from_model(model)
                found[entity.id] = entity
        return [found[i] for i in ids if i in found]

    async def search(
        self,
        options: QueryOptions | Specification | None = None,
        uow: UnitOfWork | None = None,
    ) -> SearchResult[T]:
        """Search with a specification, ordering and page, all applied in SQL.

        ``options`` is a ``QueryOptions``, a bare ``Specification`` or ``None``.
        The query is compiled here, so an unknown field or an operator that does not
        fit a column raises now; it runs when the result is awaited or streamed.
        Rows are ordered by the requested fields, then by primary key, so pages are
        stable.

        Raises:
            UnknownFieldError: a field is not a mapped column (or JSON path or
                relationship path).
            UnsupportedOperatorError: an operator does not fit the column.
        """
        session = self._session(uow)
        options = QueryOptions.of(options)
        stmt = self._select()
        spec = options.specification
        if spec is not None and not isinstance(spec, TrueSpecification):
            dialect = session.get_bind().dialect.name
            stmt = stmt.where(compile_specification(spec, self._model_cls, dialect))
        order = compile_ordering(options.ordering, self._model_cls)
        pk_key = self._sa_mapper.get_property_by_column(self._pk).key
        if all(o.field != pk_key for o in options.ordering):
            order.append(getattr(self._model_cls, pk_key).asc())
        stmt = stmt.order_by(*order)
        if options.offset:
            stmt = stmt.offset(options.offset)
        if options.limit is not None:
            stmt = stmt.limit(options.limit)

        async def fetch() -> list[T]:
            models = await session.scalars(stmt)
            return [self.from_model(m) for m in models]

        async def stream(batch_size: int) -> AsyncIterator[T]:
            result = await session.stream_scalars(stmt.execution_options(yield_per=batch_size))
            try:
                async for partition in result.partitions():
                    for model in partition:
                        yield self.from_model(model)
            finally:
                await result.close()

        return SearchResult(fetch, stream)
