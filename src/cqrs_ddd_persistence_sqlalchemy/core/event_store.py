"""The SQLAlchemy event store: per-stream concurrency and a global order that never skips.

Guarantees
==========

1. **Per-stream optimistic concurrency.** ``(aggregate_id, version)`` is unique. An
   append whose version already exists, or whose stream is not at the
   ``expected_version`` given, raises :class:`OptimisticConcurrencyError` from the
   append itself, and nothing of that batch is stored. A duplicate ``event_id`` raises
   :class:`DuplicateEventError` (a subclass). The unit of work stays usable.

2. **A global order that never skips.** ``position`` is assigned by the database,
   unique and increasing. A reader paging with :meth:`get_events_after` that has
   returned position *p* never later finds a newly committed event below *p*.

Why positions need care on PostgreSQL
-------------------------------------
A sequence hands out numbers when rows are inserted, but transactions commit in any
order: writer A draws position 10, writer B draws 11 and commits first, a reader sees
11 and moves its cursor past 10; A commits 10 a moment later and the reader never
sees it. Serialising writers (a table lock until commit) fixes this but makes every
writer wait for every other writer's commit.

This store turns it around: **writers never wait for each other, readers wait for
the writers in flight.** Every position is drawn after the writer takes its own
transaction-level advisory lock (``EVENTS_LOCK_CLASS``, its backend pid), which no
other writer asks for: by ``cqrs_events_next_position()``, the column default, so
every insert path obeys it, or, for the store's batch insert (in
``cqrs_events_append()`` or the ``ON CONFLICT`` statement), by the statement itself,
which takes the lock once and then draws from the sequence; a lock taken in the
function's block passes to the transaction when the block ends. Before reading a
page, a reader calls ``cqrs_events_horizon()``, which reads the sequence's last value
*h* first, then finds the writers holding their lock at that moment (``pg_locks``)
and waits for each to commit or roll back. A position up to *h* was drawn before *h*
was read, by a writer that held its lock then and holds it until it ends: so once
those writers have ended, every position up to *h* is final, and any position drawn
afterwards is above *h*. The page (``position > p AND position <= h``, read in a new
statement, hence a new snapshot) can never be overtaken. The reader waits for each
writer with a *shared* request on that writer's lock, which no other writer queues
behind, so appends arriving while a reader waits go straight through. Readers must
use READ COMMITTED (PostgreSQL's default), so that the page query sees what committed
while the horizon was computed. A horizon stays valid, so
``get_events_from_position`` asks for a new one only once it has read up to the last.

On SQLite a writing transaction holds the database's write lock from its first
insert to its commit, so positions are drawn and committed in the same order and the
horizon is simply the last position.
"""

from __future__ import annotations

import functools
import gc
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from types import GetSetDescriptorType, MemberDescriptorType
from typing import Any, cast

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, from_json, to_json
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Select,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    select,
    text,
    type_coerce,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from cqrs_ddd_core.exceptions import (
    DuplicateEventError,
    OptimisticConcurrencyError,
)
from cqrs_ddd_core.json import check_no_nul, dumps, loads
from cqrs_ddd_core.ports.event_store import (
    ExpectedVersion,
    IEventStore,
    StoredEvent,
    check_batch,
    check_read_argument,
)
from cqrs_ddd_core.ports.unit_of_work import UnitOfWork
from cqrs_ddd_persistence_sqlalchemy.core.models import EventModel, events_batch_insert
from cqrs_ddd_persistence_sqlalchemy.core.query import compile_specification
from cqrs_ddd_persistence_sqlalchemy.core.uow import session_for
from cqrs_ddd_specifications import Specification

__all__ = ["SQLAlchemyEventStore"]

_TABLE = cast("Table", EventModel.__table__)
_C = _TABLE.c


def _reading(columns: Any, *, postgresql: bool) -> Select[Any]:
    """The columns reads select from ``columns`` (a table's or a subquery's).

    They come in the order _events takes them. Payload and metadata come back as JSON
    text, decoded by pydantic_core's parser, which is several times faster than the
    driver's json.loads (decoding is most of a read's time). On PostgreSQL asyncpg
    already returns ``timestamptz`` as an aware UTC datetime, so the UTCDateTime
    result processor (needed for SQLite, which stores no zone) is left out of the
    hottest loop.
    """
    occurred_at = columns.occurred_at
    return select(
        columns.position,
        columns.event_id,
        columns.event_type,
        columns.aggregate_id,
        columns.aggregate_type,
        columns.version,
        sql_cast(columns.payload, Text),
        sql_cast(columns.metadata, Text),
        type_coerce(occurred_at, DateTime(timezone=True)) if postgresql else occurred_at,
        columns.schema_version,
        columns.correlation_id,
        columns.causation_id,
        columns.tenant_id,
    )


_SELECT = _reading(_C, postgresql=False)
_SELECT_PG = _reading(_C, postgresql=True)


def _page_pg(rows: Select[Any]) -> Select[Any]:
    """A page on PostgreSQL: ``rows`` (see _PAGE_ROWS) read through a subquery."""
    page = rows.subquery("page")
    return _reading(page.c, postgresql=True).order_by(page.c.position)


# The reads without a specification, built once with bound parameters: SQLAlchemy
# then finds their compiled form by a cache key it has already computed.
_AFTER = bindparam("after", type_=BigInteger())
_HORIZON = bindparam("horizon", type_=BigInteger())
_LIMIT = bindparam("limit", type_=BigInteger())
_STREAM = {
    postgresql: _reading(_C, postgresql=postgresql)
    .where(
        _C.aggregate_id == bindparam("aggregate_id", type_=String()),
        _C.version > bindparam("after_version", type_=BigInteger()),
    )
    .order_by(_C.version)
    for postgresql in (False, True)
}
_PAGE_SQLITE = _SELECT.where(_C.position > _AFTER).order_by(_C.position).limit(_LIMIT)
# The rows of a page on PostgreSQL (a specification's condition is added to these).
_PAGE_ROWS = (
    _TABLE.select()
    .where(_C.position > _AFTER, _C.position <= _HORIZON)
    .order_by(_C.position)
    .limit(_LIMIT)
)
_PAGE_PG = _page_pg(_PAGE_ROWS)
_LATEST = select(func.coalesce(func.max(_C.position), 0))
_LATEST_PG = _LATEST.where(_C.position <= _HORIZON)

# StoredEvent field names that differ from the model's attribute names.
_FIELD_ALIASES = {"metadata": "metadata_"}


# A batch on PostgreSQL travels as one JSON document, an array of the events' fields
# (pydantic_core encodes it in one call), which jsonb_to_recordset turns back into
# rows (events_batch_insert): the statement (and its prepared plan) is the same for
# every batch size, and the client encodes no per-column arrays (asyncpg checks every
# element of an array parameter against several abstract base classes; a batch of 100
# spent more client time on that than on its JSON). The statements are sent to the
# driver as they are (exec_driver_sql): nothing to compile.
#
# A batch goes through cqrs_events_append(), which inserts it in a PL/pgSQL block of
# its own: a conflict rolls back the block's subtransaction and the function returns
# NULLs, so the caller's transaction goes on. That is 10-15% faster for a 100-event
# batch than ON CONFLICT DO NOTHING, whose speculative insertion costs the server
# more per row. But every such block takes a subxid, and PostgreSQL caches 64 per
# transaction: past that, every snapshot on the server has to look subtransactions
# up in pg_subtrans, a known cliff for busy servers. So a transaction sends its first
# _SUBTRANSACTIONS batches through the function and the rest through _PG_INSERT,
# which inserts with ON CONFLICT DO NOTHING: what does go in of a conflicting batch
# is deleted again (see append_batch).
_PG_APPEND = "SELECT event_ids, positions FROM cqrs_events_append($1::jsonb)"
_SUBTRANSACTIONS = 32
_SUBTRANSACTION_COUNT = "cqrs_ddd.event_store.subtransactions"
_RETURNING = "\nON CONFLICT DO NOTHING\nRETURNING event_id, position"
_PG_INSERT = events_batch_insert("$1::jsonb") + _RETURNING
# Payload and metadata as strings holding their own JSON text, for the batches the
# document cannot hold (see _pg_statement).
_PG_INSERT_ENCODED = events_batch_insert("$1::jsonb", json_as="text") + _RETURNING

# A single event (the common command) as plain VALUES: cheaper to encode and plan
# than twelve one-element arrays. occurred_at travels as ISO 8601 text, as in the
# batch's JSON: asyncpg would send datetime.max and datetime.min as +/-infinity.
_PG_INSERT_ONE = """
    INSERT INTO events (event_id, event_type, aggregate_id, aggregate_type, version,
                        payload, metadata, occurred_at, schema_version,
                        correlation_id, causation_id, tenant_id)
    VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8::text::timestamptz, $9, $10,
            $11, $12)
    ON CONFLICT DO NOTHING
    RETURNING event_id, position
"""
_PG_HORIZON = text("SELECT cqrs_events_horizon()")
_INSERT_COLUMNS = (
    "event_id",
    "event_type",
    "aggregate_id",
    "aggregate_type",
    "version",
    "payload",
    "metadata",
    "occurred_at",
    "schema_version",
    "correlation_id",
    "causation_id",
    "tenant_id",
)
_OCCURRED_AT = _INSERT_COLUMNS.index("occurred_at")
_FIELDS = frozenset(StoredEvent.model_fields)
_SQLITE_MAX_ROWS = 2000  # 12 parameters a row; SQLite allows 32766 per statement


class SQLAlchemyEventStore(IEventStore):
    """Appends and reads events in the ``events`` table through an ``AsyncSession``.

    The store works in its session's transaction and never commits: give it the
    session of the unit of work (``SQLAlchemyEventStore(session)``), or pass ``uow=``
    to any method to use that unit of work's session instead, so events commit
    atomically with the aggregate and the outbox.
    """

    def __init__(self, session: AsyncSession | None = None) -> None:
        if session is not None and not isinstance(session, AsyncSession):
            raise TypeError(
                f"SQLAlchemyEventStore takes an AsyncSession, got {type(session).__name__}"
            )
        self._default_session = session

    def _session(self, uow: UnitOfWork | None) -> AsyncSession:
        return session_for(uow, self._default_session, self)

    # -- appending --------------------------------------------------------------

    async def append(
        self,
        event: StoredEvent,
        *,
        expected_version: ExpectedVersion | None = None,
        uow: UnitOfWork | None = None,
    ) -> StoredEvent:
        """Append one event; return it with its ``position``.

        Raises:
            OptimisticConcurrencyError: the stream already has this version, or is
                not at ``expected_version``.
            DuplicateEventError: an event with this ``event_id`` is already stored.
        """
        return (await self.append_batch([event], expected_version=expected_version, uow=uow))[0]

    async def append_batch(
        self,
        events: Sequence[StoredEvent],
        *,
        expected_version: ExpectedVersion | None = None,
        uow: UnitOfWork | None = None,
    ) -> list[StoredEvent]:
        """Append events atomically in one round-trip; return them with their positions.

        ``expected_version`` is the version each stream must have before the batch (0:
        no events yet): one number for every stream of the batch, or a mapping from
        aggregate id to version. It is checked before anything is written.

        Raises:
            OptimisticConcurrencyError: a stream moved on; nothing of the batch is stored.
            DuplicateEventError: an ``event_id`` is already stored (or twice in the batch).
            InvalidEventError: the batch is inconsistent (e.g. a stream's versions are
                not consecutive, or ``expected_version`` does not fit the batch).
            SerializationError: a payload or metadata value has no JSON form.
        """
        session = self._session(uow)
        batch = list(events)
        if not batch:
            return []
        streams = check_batch(batch, expected_version)
        postgresql = session.get_bind().dialect.name == "postgresql"
        # Encoded before anything is sent: a value with no JSON form writes nothing.
        statement, params = _pg_statement(batch) if postgresql else ("", ())
        rows = [] if postgresql else _rows(batch)
        if expected_version is not None:
            await self._check_expected(session, streams, expected_version)
        if postgresql:
            connection = await session.connection()
            if statement == _PG_APPEND and not _open_subtransaction(connection):
                statement = _PG_INSERT
            result = await connection.exec_driver_sql(statement, params)
            if statement == _PG_APPEND:
                event_ids, positions = cast("tuple[Any, Any]", result.one())
                if event_ids is None:
                    # The function's block was rolled back: nothing of the batch is
                    # stored, the transaction goes on.
                    await self._raise_conflict(session, batch)
                returned = list(zip(event_ids, positions, strict=True))
            else:
                returned = [(row[0], row[1]) for row in cast("Any", result)]
            if len(returned) != len(batch):
                # Something of the batch already existed (ON CONFLICT skipped it): take
                # back what went in, so the batch is all or nothing and the transaction
                # stays usable, then explain.
                inserted = [position for _, position in returned]
                if inserted:
                    await session.execute(delete(_TABLE).where(_C.position.in_(inserted)))
                await self._raise_conflict(session, batch)
        else:
            try:
                returned = await self._insert_sqlite(session, rows)
            except IntegrityError as exc:
                # One multi-row statement: SQLite undid all of it, the transaction
                # goes on.
                if getattr(exc.orig, "sqlite_errorname", None) != "SQLITE_CONSTRAINT_UNIQUE":
                    raise
                await self._raise_conflict(session, batch, cause=exc)
        positions = dict(returned)
        return [
            StoredEvent.from_storage({**event.__dict__, "position": positions[event.event_id]})
            for event in batch
        ]

    async def _insert_sqlite(
        self, session: AsyncSession, rows: list[tuple[Any, ...]]
    ) -> list[tuple[str, int]]:
        connection = await session.connection()
        returned: list[tuple[str, int]] = []
        try:
            for start in range(0, len(rows), _SQLITE_MAX_ROWS):
                chunk = rows[start : start + _SQLITE_MAX_ROWS]
                params = tuple(
                    _sqlite_timestamp(value) if i == _OCCURRED_AT else value
                    for row in chunk
                    for i, value in enumerate(row)
                )
                result = await connection.exec_driver_sql(_sqlite_insert_sql(len(chunk)), params)
                if len(chunk) == 1:
                    # One event: its position is the row id SQLite assigned (``position``
                    # is the table's INTEGER PRIMARY KEY), which the cursor knows without
                    # the fetch, another trip to aiosqlite's thread, that RETURNING costs:
                    # 11% of a single-event transaction (1,960 to 1,745 µs in an A/B).
                    returned.append((chunk[0][0], result.lastrowid))
                else:
                    returned.extend((row[0], row[1]) for row in cast("Any", result))
        except IntegrityError:
            # A batch larger than one statement: SQLite undid the failing statement
            # only. Take back the ones before it, so the batch is all or nothing.
            for start in range(0, len(returned), _SQLITE_MAX_ROWS):
                chunk_positions = [p for _, p in returned[start : start + _SQLITE_MAX_ROWS]]
                await connection.execute(delete(_TABLE).where(_C.position.in_(chunk_positions)))
            raise
        return returned

    async def _check_expected(
        self,
        session: AsyncSession,
        streams: Mapping[str, tuple[int, int]],
        expected: ExpectedVersion,
    ) -> None:
        current = await self._stream_versions(session, streams)
        for aggregate_id in streams:
            want = expected if isinstance(expected, int) else expected.get(aggregate_id)
            if want is None:
                continue
            actual = current.get(aggregate_id, 0)
            if actual != want:
                raise OptimisticConcurrencyError(
                    f"stream {aggregate_id!r} is at version {actual}, expected {want}",
                    aggregate_id=aggregate_id,
                    expected_version=want,
                    actual_version=actual,
                )

    async def _stream_versions(
        self, session: AsyncSession, aggregate_ids: Iterable[str]
    ) -> dict[str, int]:
        stmt = (
            select(_C.aggregate_id, func.max(_C.version))
            .where(_C.aggregate_id.in_(list(aggregate_ids)))
            .group_by(_C.aggregate_id)
        )
        return {row[0]: row[1] for row in await session.execute(stmt)}

    async def _raise_conflict(
        self,
        session: AsyncSession,
        batch: list[StoredEvent],
        cause: BaseException | None = None,
    ) -> None:
        """Find what of ``batch`` is already stored and raise the matching error."""
        existing = set(
            await session.scalars(
                select(_C.event_id).where(_C.event_id.in_([e.event_id for e in batch]))
            )
        )
        duplicates = [e.event_id for e in batch if e.event_id in existing]
        if duplicates:
            raise DuplicateEventError(duplicates, aggregate_id=batch[0].aggregate_id) from cause
        current = await self._stream_versions(session, {e.aggregate_id for e in batch})
        for event in batch:
            actual = current.get(event.aggregate_id, 0)
            if actual >= event.version:
                raise OptimisticConcurrencyError(
                    f"stream {event.aggregate_id!r} already has version {event.version} "
                    f"(it is at version {actual})",
                    aggregate_id=event.aggregate_id,
                    expected_version=event.version - 1,
                    actual_version=actual,
                ) from cause
        # Not explained by what this transaction can see (e.g. a conflicting append
        # that committed between the insert and this check has since been undone).
        raise OptimisticConcurrencyError(
            f"the batch for {batch[0].aggregate_id!r} conflicts with a concurrent append",
            aggregate_id=batch[0].aggregate_id,
        ) from cause

    # -- reading -----------------------------------------------------------------

    @staticmethod
    def _select(session: AsyncSession) -> Select[Any]:
        return _SELECT_PG if session.get_bind().dialect.name == "postgresql" else _SELECT

    def _where(self, session: AsyncSession, stmt: Select[Any], spec: Specification | None) -> Any:
        if spec is None:
            return stmt
        dialect = session.get_bind().dialect.name
        return stmt.where(_compile(spec, dialect))

    async def _fetch(
        self, session: AsyncSession, stmt: Select[Any], params: Mapping[str, Any] | None = None
    ) -> list[StoredEvent]:
        result = await (await session.connection()).execute(stmt, params)
        # Converting a page allocates several objects per event (row, event, its
        # __dict__, fields set, payload, metadata), none of them in a reference cycle,
        # and keeps them all alive: with the cyclic collector running, every ~700 of
        # them trigger a collection that cannot free anything, and its older
        # generations walk the whole heap of the application. Pausing it while the
        # rows are converted (no await, no user code) halved a catch-up's time in a
        # process holding a few hundred thousand objects. The collector is left as it
        # was found (not touched if the application disabled it).
        pause = gc.isenabled()
        if pause:
            gc.disable()
        try:
            rows = result.all()
            try:
                return _events(rows)
            except ValueError:
                # A payload nested deeper than pydantic_core's parser goes (200
                # levels, while its encoder writes about 250): the page again, with
                # the parser that reads whatever was stored.
                return _events(rows, deep=True)
        finally:
            if pause:
                gc.enable()

    async def get_events(
        self,
        aggregate_id: str,
        after_version: int = 0,
        *,
        specification: Specification | None = None,
        uow: UnitOfWork | None = None,
    ) -> list[StoredEvent]:
        """Return the stream of ``aggregate_id`` after ``after_version``, in version order."""
        check_read_argument("after_version", after_version, minimum=0)
        session = self._session(uow)
        stmt = _STREAM[session.get_bind().dialect.name == "postgresql"]
        params = {"aggregate_id": aggregate_id, "after_version": after_version}
        return await self._fetch(session, self._where(session, stmt, specification), params)

    async def get_by_aggregate(
        self,
        aggregate_id: str,
        aggregate_type: str | None = None,
        *,
        specification: Specification | None = None,
        uow: UnitOfWork | None = None,
    ) -> list[StoredEvent]:
        """Return every event of an aggregate (optionally of one type), in version order."""
        session = self._session(uow)
        stmt = self._select(session).where(_C.aggregate_id == aggregate_id)
        if aggregate_type is not None:
            stmt = stmt.where(_C.aggregate_type == aggregate_type)
        stmt = self._where(session, stmt, specification).order_by(_C.version)
        return await self._fetch(session, stmt)

    async def get_all(
        self, *, specification: Specification | None = None, uow: UnitOfWork | None = None
    ) -> list[StoredEvent]:
        """Return every event in global order. Prefer paging for large stores."""
        session = self._session(uow)
        stmt = self._where(session, self._select(session), specification).order_by(_C.position)
        return await self._fetch(session, stmt)

    async def get_events_after(
        self,
        position: int,
        limit: int = 1000,
        *,
        specification: Specification | None = None,
        uow: UnitOfWork | None = None,
    ) -> list[StoredEvent]:
        """Return up to ``limit`` events with a position above ``position``, in order.

        Positions returned are final: no event committed later can appear below
        them (see the module documentation).
        """
        check_read_argument("limit", limit, minimum=1)
        check_read_argument("position", position, minimum=0)
        session = self._session(uow)
        if session.get_bind().dialect.name != "postgresql":
            stmt = self._where(session, _PAGE_SQLITE, specification)
            return await self._fetch(session, stmt, {"after": position, "limit": limit})
        horizon = await self._horizon(session)
        if horizon <= position:
            return []
        return await self._page(session, position, horizon, limit, specification)

    @staticmethod
    async def _horizon(session: AsyncSession) -> int:
        """The highest position below which every position is final (PostgreSQL)."""
        return int((await session.execute(_PG_HORIZON)).scalar_one())

    async def _page(
        self,
        session: AsyncSession,
        position: int,
        horizon: int,
        limit: int,
        specification: Specification | None,
    ) -> list[StoredEvent]:
        """Up to ``limit`` events in ``(position, horizon]`` (PostgreSQL)."""
        # The page is chosen in a subquery and only its rows are converted: the
        # JSON-to-text casts of the outer query run on the ``limit`` rows returned,
        # never on the whole range, even when the planner scans the range and sorts it
        # (a table without statistics yet, a long catch-up range).
        params = {"after": position, "horizon": horizon, "limit": limit}
        if specification is None:
            return await self._fetch(session, _PAGE_PG, params)
        rows = self._where(session, _PAGE_ROWS, specification)
        return await self._fetch(session, _page_pg(rows), params)

    async def get_events_from_position(
        self,
        position: int = 0,
        batch_size: int = 1000,
        *,
        specification: Specification | None = None,
        uow: UnitOfWork | None = None,
    ) -> AsyncIterator[StoredEvent]:
        """Return an async iterator over the events after ``position``.

        It reads ``batch_size`` events at a time, each page as :meth:`get_events_after`
        would return it, so memory stays bounded, and stops at the end of the store
        as it was when the last page was read.
        """
        # Validate now, not on the first iteration.
        check_read_argument("batch_size", batch_size, minimum=1)
        check_read_argument("position", position, minimum=0)
        session = self._session(uow)
        if session.get_bind().dialect.name != "postgresql":
            return self._pages(position, batch_size, specification, uow)
        return self._pages_postgresql(position, batch_size, specification, uow)

    async def _pages(
        self,
        position: int,
        batch_size: int,
        specification: Specification | None,
        uow: UnitOfWork | None,
    ) -> AsyncIterator[StoredEvent]:
        cursor = position
        while True:
            page = await self.get_events_after(
                cursor, batch_size, specification=specification, uow=uow
            )
            for event in page:
                yield event
            if len(page) < batch_size:
                return
            cursor = cast("int", page[-1].position)

    async def _pages_postgresql(
        self,
        position: int,
        batch_size: int,
        specification: Specification | None,
        uow: UnitOfWork | None,
    ) -> AsyncIterator[StoredEvent]:
        # A horizon stays valid: every position up to it is final for good. So the
        # iterator asks for a new one only once it has read up to the last one,
        # instead of once per page (a round trip, a read of pg_locks and a wait for
        # the appends in flight). It ends where get_events_after's paging would:
        # at a short page read under a horizon asked for that page.
        cursor, horizon = position, 0
        while True:
            session = self._session(uow)
            fresh = cursor >= horizon
            if fresh:
                horizon = await self._horizon(session)
                if horizon <= cursor:
                    return
            page = await self._page(session, cursor, horizon, batch_size, specification)
            for event in page:
                yield event
            if len(page) == batch_size:
                cursor = cast("int", page[-1].position)
            elif fresh:
                return
            else:
                # Every matching event up to the horizon has been read.
                cursor = horizon

    async def get_latest_position(self, *, uow: UnitOfWork | None = None) -> int:
        """Return the highest committed position (0 if none).

        Like a page, it is final: no event committed later can appear at or below it,
        so a consumer may start from it. On PostgreSQL it waits, as a page does, for
        the appends in flight, then reads the highest position up to the horizon in a
        new statement (a new snapshot, which sees what they committed).
        """
        session = self._session(uow)
        if session.get_bind().dialect.name != "postgresql":
            return int(await session.scalar(_LATEST) or 0)
        horizon = await self._horizon(session)
        return int(await session.scalar(_LATEST_PG, {"horizon": horizon}) or 0)


def _compile(spec: Specification, dialect: str) -> ColumnElement[bool]:
    return compile_specification(spec, EventModel, dialect, aliases=_FIELD_ALIASES)


def _slot_setter(name: str) -> Callable[[object, object], None]:
    """A setter for the attribute ``name`` of pydantic's BaseModel instances.

    BaseModel keeps ``__dict__`` and its private state in slots; calling their
    descriptor's ``__set__`` is what ``object.__setattr__`` ends up doing, without
    the attribute lookup (a tenth of the time of building an event on a read). Any
    other layout falls back to ``object.__setattr__``.
    """
    descriptor = vars(BaseModel).get(name)
    if isinstance(descriptor, (MemberDescriptorType, GetSetDescriptorType)):
        return cast("Callable[[object, object], None]", descriptor.__set__)

    def set_(instance: object, value: object) -> None:  # pragma: no cover
        object.__setattr__(instance, name, value)

    return set_  # pragma: no cover


_set_dict = _slot_setter("__dict__")
_set_fields_set = _slot_setter("__pydantic_fields_set__")
_set_extra = _slot_setter("__pydantic_extra__")
_set_private = _slot_setter("__pydantic_private__")


def _events(rows: Iterable[Sequence[Any]], *, deep: bool = False) -> list[StoredEvent]:
    """Events from selected rows (``_SELECT``'s columns), without validation.

    StoredEvent.from_storage, inlined: the values are what this store wrote. Each
    event gets its own fields set, as a validated one does. Payload and metadata are
    parsed by pydantic_core, caching dict keys only (the same few keys recur in every
    event; values seldom do, and caching them cost more than it saved), or, if
    ``deep``, by the standard library's parser, which reads the values nested deeper
    than pydantic_core goes.
    """
    new = StoredEvent.__new__
    set_dict, set_fields_set, set_extra, set_private = (
        _set_dict,
        _set_fields_set,
        _set_extra,
        _set_private,
    )
    fields_set = set(_FIELDS)
    copy_fields = fields_set.copy
    events: list[StoredEvent] = []
    append = events.append
    for (
        position,
        event_id,
        event_type,
        aggregate_id,
        aggregate_type,
        version,
        payload,
        metadata,
        occurred_at,
        schema_version,
        correlation_id,
        causation_id,
        tenant_id,
    ) in rows:
        event = new(StoredEvent)
        set_dict(
            event,
            {  # in the model's field order, as validation would leave them
                "event_id": event_id,
                "event_type": event_type,
                "aggregate_id": aggregate_id,
                "aggregate_type": aggregate_type,
                "version": version,
                "payload": loads(payload) if deep else from_json(payload, cache_strings="keys"),
                "metadata": loads(metadata) if deep else from_json(metadata, cache_strings="keys"),
                "occurred_at": occurred_at,
                "schema_version": schema_version,
                "correlation_id": correlation_id,
                "causation_id": causation_id,
                "tenant_id": tenant_id,
                "position": position,
            },
        )
        set_fields_set(event, copy_fields())
        set_extra(event, None)
        set_private(event, None)
        append(event)
    return events


def _rows(batch: list[StoredEvent]) -> list[tuple[Any, ...]]:
    """The batch as insert parameters, in ``_INSERT_COLUMNS`` order, JSON encoded.

    Raises:
        SerializationError: a payload or metadata value has no JSON form.
    """
    try:
        rows = [
            (
                event.event_id,
                event.event_type,
                event.aggregate_id,
                event.aggregate_type,
                event.version,
                to_json(event.payload, inf_nan_mode="null").decode(),
                to_json(event.metadata, inf_nan_mode="null").decode(),
                event.occurred_at,
                event.schema_version,
                event.correlation_id,
                event.causation_id,
                event.tenant_id,
            )
            for event in batch
        ]
    except (PydanticSerializationError, TypeError, ValueError):
        # Find the culprit again, for an error that names it (kept off the fast path).
        for event in batch:
            dumps(event.payload, what=f"payload of event {event.event_id!r}")
            dumps(event.metadata, what=f"metadata of event {event.event_id!r}")
        raise
    for event, row in zip(batch, rows, strict=True):
        if "\\u0000" in row[5] or "\\u0000" in row[6]:
            check_no_nul(row[5], what=f"payload of event {event.event_id!r}")
            check_no_nul(row[6], what=f"metadata of event {event.event_id!r}")
    return rows


def _pg_statement(batch: list[StoredEvent]) -> tuple[str, tuple[Any, ...]]:
    """The statement that appends ``batch`` on PostgreSQL, and its parameters."""
    if len(batch) == 1:
        row = _rows(batch)[0]
        at = row[_OCCURRED_AT].isoformat()
        return _PG_INSERT_ONE, (*row[:_OCCURRED_AT], at, *row[_OCCURRED_AT + 1 :])
    try:
        # The fields of the events, as pydantic's JSON mode encodes them (occurred_at
        # as ISO 8601); jsonb_to_recordset takes the ones it names. A validated
        # StoredEvent goes as it is. A subclass's own fields are left out (the whole
        # document is parsed as jsonb, which refuses some values json would carry
        # through), and an occurred_at not in UTC (set without validation) is
        # converted, since the encoder drops the seconds of an offset.
        document = to_json(
            [
                event.__dict__
                if type(event) is StoredEvent and event.occurred_at.tzinfo is UTC
                else _stored_fields(event)
                for event in batch
            ],
            inf_nan_mode="null",
        ).decode()
    except (PydanticSerializationError, TypeError, ValueError):
        # A payload nested too deep for the encoder two levels down in the document.
        # Encode payload and metadata on their own (SerializationError, naming the
        # event, if they cannot be) and send them as text.
        rows = _rows(batch)
        fields = [dict(zip(_INSERT_COLUMNS, row, strict=True)) for row in rows]
        for field in fields:
            field["occurred_at"] = field["occurred_at"].astimezone(UTC)
        return _PG_INSERT_ENCODED, (to_json(fields).decode(),)
    if "\\u0000" in document:
        _rows(batch)  # raises SerializationError if a payload or metadata holds a NUL
    return _PG_APPEND, (document,)


def _stored_fields(event: StoredEvent) -> dict[str, Any]:
    """The fields the store keeps of ``event``, ``occurred_at`` in UTC."""
    fields = event.__dict__
    stored = {name: fields[name] for name in _INSERT_COLUMNS}
    stored["occurred_at"] = stored["occurred_at"].astimezone(UTC)
    return stored


def _open_subtransaction(connection: AsyncConnection) -> bool:
    """Whether the transaction may append one more batch through cqrs_events_append().

    Counts the batches that do (at most _SUBTRANSACTIONS) in the connection's ``info``,
    against the transaction they belong to.
    """
    sync = connection.sync_connection
    transaction = sync.get_transaction() if sync is not None else None
    if transaction is None:
        return True
    owner, count = connection.info.get(_SUBTRANSACTION_COUNT, (None, 0))
    if owner is None or owner() is not transaction:
        count = 0
    if count >= _SUBTRANSACTIONS:
        return False
    connection.info[_SUBTRANSACTION_COUNT] = (weakref.ref(transaction), count + 1)
    return True


def _sqlite_timestamp(value: datetime) -> str:
    # The text form SQLAlchemy's DateTime uses on SQLite, in UTC (see UTCDateTime).
    # isoformat, not strftime: "%Y" does not pad years before 1000 to four digits.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


@functools.lru_cache(maxsize=64)
def _sqlite_insert_sql(rows: int) -> str:
    """The insert of ``rows`` events on SQLite; RETURNING their positions if more than one."""
    values = ", ".join(["(" + ", ".join(["?"] * len(_INSERT_COLUMNS)) + ")"] * rows)
    returning = " RETURNING event_id, position" if rows > 1 else ""
    return f"INSERT INTO events ({', '.join(_INSERT_COLUMNS)}) VALUES {values}{returning}"
