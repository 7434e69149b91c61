"""The one declarative ``Base`` and the library's own tables.

Every model of an application that uses this library subclasses :class:`Base`, so a
single ``Base.metadata.create_all`` (or one Alembic environment) creates the
application's tables together with the event store's and the outbox's.
"""

from __future__ import annotations

import inspect
import textwrap
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    DDL,
    BigInteger,
    Enum,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Mapper,
    attributes,
    mapped_column,
    object_session,
)

from cqrs_ddd_core.domain.events import utc_now
from cqrs_ddd_core.ports.event_store import EVENT_ID_LENGTH, TEXT_LENGTH
from cqrs_ddd_core.ports.outbox import OutboxStatus
from cqrs_ddd_persistence_sqlalchemy.core.types import JSONValue, UTCDateTime

__all__ = [
    "EVENTS_LOCK_CLASS",
    "NAMING_CONVENTION",
    "OUTBOX_CHANNEL",
    "Base",
    "EventModel",
    "OutboxMessage",
    "OutboxMessageModel",
    "OutboxStatus",
    "events_batch_insert",
]

#: Stable constraint names, so errors can be classified by constraint and
#: migrations can refer to constraints by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of the library's tables and of application models.

    A model with its own table gets, unless it declares them itself:

    * an integer ``version`` column, the ORM's ``version_id_col``, used for
      optimistic concurrency (``__versioned__ = False`` opts out);
    * ``created_at`` and ``updated_at`` UTC timestamps, set on insert and on every
      update (``__timestamps__ = False`` opts out), so that searches can order by
      creation time as the specification's examples do.

    ``Mapped[datetime]`` is a UTC timestamp read back timezone-aware and
    ``Mapped[dict[str, Any]]`` / ``Mapped[list[Any]]`` are JSON (``jsonb`` on
    PostgreSQL) accepting pydantic's JSON-mode values.
    """

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict: JSONValue(),
        dict[str, Any]: JSONValue(),
        list: JSONValue(),
        list[Any]: JSONValue(),
        list[dict[str, Any]]: JSONValue(),
    }

    #: Whether a table of this class gets the automatic ``version`` column.
    __versioned__: ClassVar[bool] = True
    #: Whether a table of this class gets automatic ``created_at``/``updated_at``.
    __timestamps__: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if _owns_table(cls, "__timestamps__"):
            if "created_at" not in cls.__dict__ and "created_at" not in _annotations(cls):
                cls.created_at = mapped_column(
                    "created_at", UTCDateTime(), nullable=False, default=utc_now
                )
            if "updated_at" not in cls.__dict__ and "updated_at" not in _annotations(cls):
                cls.updated_at = mapped_column(
                    "updated_at", UTCDateTime(), nullable=False, default=utc_now, onupdate=utc_now
                )
        if _owns_table(cls, "__versioned__"):
            if "version" not in cls.__dict__:
                # Also when only annotated (``version: Mapped[int]``): the mapper
                # arguments need the column object.
                cls.version = mapped_column("version", Integer, nullable=False)
            mapper_args = dict(cls.__dict__.get("__mapper_args__", {}))
            mapper_args.setdefault("version_id_col", cls.__dict__["version"])
            # The ORM checks the version (UPDATE ... WHERE version = <loaded>) but the
            # new value is set here: by the repository, which stores the version of
            # the aggregate's last event, or by _next_version for plain ORM writes.
            mapper_args.setdefault("version_id_generator", False)
            cls.__mapper_args__ = mapper_args
        super().__init_subclass__(**kwargs)


def _version_key(mapper: Mapper[Any]) -> str | None:
    """The version attribute of a model whose versions this module assigns."""
    if mapper.version_id_col is None or mapper.version_id_generator is not False:
        return None
    return mapper.get_property_by_column(mapper.version_id_col).key


@event.listens_for(Base, "before_insert", propagate=True)
def _first_version(mapper: Mapper[Any], _connection: Any, target: Any) -> None:
    key = _version_key(mapper)
    if key is not None and getattr(target, key, None) is None:
        setattr(target, key, 1)


@event.listens_for(Base, "before_update", propagate=True)
def _next_version(mapper: Mapper[Any], _connection: Any, target: Any) -> None:
    """Plain ORM updates of a versioned model advance its version by one."""
    key = _version_key(mapper)
    if key is None:
        return
    history = attributes.get_history(target, key)
    if history.added:  # set by the application (the repository does)
        return
    session = object_session(target)
    if session is None or not session.is_modified(target, include_collections=False):
        return  # in the flush but with no column changed: no UPDATE of this row
    current = history.unchanged[0] if history.unchanged else 0
    setattr(target, key, current + 1)


def _annotations(cls: type[Any]) -> dict[str, Any]:
    return inspect.get_annotations(cls)


def _owns_table(cls: type[Any], flag: str) -> bool:
    """Whether ``cls`` declares its own table and has not opted out with ``flag``."""
    if "__tablename__" not in cls.__dict__ or not getattr(cls, flag, True):
        return False
    # Only the class that owns the table; subclasses in an inheritance hierarchy
    # share their parent's columns.
    return not any("__mapper__" in vars(base) for base in cls.__mro__[1:])


# -- the event store's table -------------------------------------------------------------

#: The first key of the advisory lock each writer holds on PostgreSQL from drawing a
#: position to its commit; the second is its backend pid (see ``event_store.py``).
EVENTS_LOCK_CLASS = 0x63717273  # "cqrs"


class EventModel(Base):
    """One stored event (the ``events`` table).

    ``position`` is the global order, assigned by the database; ``(aggregate_id,
    version)`` and ``event_id`` are unique. On PostgreSQL the position comes from
    ``cqrs_events_next_position()``, which takes the writer's advisory lock before
    drawing from the sequence.
    """

    __tablename__ = "events"
    __versioned__ = False
    __timestamps__ = False
    __table_args__ = (
        UniqueConstraint("aggregate_id", "version"),
        UniqueConstraint("event_id"),
        Index("ix_events_aggregate_type_position", "aggregate_type", "position"),
    )

    position: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(EVENT_ID_LENGTH))
    event_type: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    aggregate_id: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    aggregate_type: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    version: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONValue())
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONValue())
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    schema_version: Mapped[int] = mapped_column(Integer, default=1)
    correlation_id: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    causation_id: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    tenant_id: Mapped[str | None] = mapped_column(String(TEXT_LENGTH), index=True)


_EVENTS_NEXT_POSITION = f"""
CREATE OR REPLACE FUNCTION cqrs_events_next_position() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- This writer's own lock, taken before the sequence is drawn from and held
    -- until the writing transaction ends; no other writer ever asks for it.
    -- (PL/pgSQL keeps its plans; a SQL function with a FROM clause would be
    -- planned again in every statement.)
    PERFORM pg_advisory_xact_lock({EVENTS_LOCK_CLASS}, pg_backend_pid());
    RETURN nextval('events_position_seq');
END
$$
"""

_EVENTS_HORIZON = f"""
CREATE OR REPLACE FUNCTION cqrs_events_horizon() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    last bigint;
    writer int;
BEGIN
    -- Every position up to the sequence's last value was drawn by a writer that
    -- held its lock (this class, its backend pid) when it drew, and holds it until
    -- it commits or rolls back. So: read the last value first, then wait for each
    -- writer holding its lock now (pg_locks is live) to end, this session
    -- excepted. Each wait asks for the writer's lock shared, which no other writer
    -- queues behind, in a block whose subtransaction the RAISE rolls back: that
    -- releases it at once, as a cancelled call's rollback would.
    last := pg_sequence_last_value('events_position_seq');
    FOR writer IN
        SELECT objid::bigint::bit(32)::int FROM pg_locks
         WHERE locktype = 'advisory' AND classid = {EVENTS_LOCK_CLASS}::oid AND objsubid = 2
           AND mode = 'ExclusiveLock' AND granted
           AND pid IS DISTINCT FROM pg_backend_pid()  -- NULL: a prepared transaction
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    LOOP
        BEGIN
            PERFORM pg_advisory_xact_lock_shared({EVENTS_LOCK_CLASS}, writer);
            RAISE SQLSTATE 'CQ001';
        EXCEPTION WHEN SQLSTATE 'CQ001' THEN
            NULL;
        END;
    END LOOP;
    RETURN coalesce(last, 0);
END
$$
"""

_EVENTS_DEFAULT = "ALTER TABLE events ALTER COLUMN position SET DEFAULT cqrs_events_next_position()"


def events_batch_insert(document: str, *, json_as: str = "jsonb") -> str:
    """The INSERT of a batch of events on PostgreSQL, without its RETURNING clause.

    The rows come from ``document`` (SQL for a jsonb array of the events' fields), and
    the statement does what the column default does for each row once for the batch:
    the writer's advisory lock first, then positions from the sequence. The lock is an
    uncorrelated condition, which PostgreSQL evaluates as a one-time filter gating the
    plan, before any row is produced, so before the first ``nextval()``. ``json_as``
    is how payload and metadata arrive: as JSON inside the document (``"jsonb"``), or
    as strings holding their own JSON text (``"text"``).
    """
    return f"""\
INSERT INTO events (position, event_id, event_type, aggregate_id, aggregate_type, version,
                    payload, metadata, occurred_at, schema_version, correlation_id,
                    causation_id, tenant_id)
SELECT nextval('events_position_seq'), event_id, event_type, aggregate_id, aggregate_type,
       version, payload::jsonb, metadata::jsonb, occurred_at, schema_version,
       correlation_id, causation_id, tenant_id
FROM jsonb_to_recordset({document})
     AS batch(event_id text, event_type text, aggregate_id text, aggregate_type text,
              version int, payload {json_as}, metadata {json_as}, occurred_at timestamptz,
              schema_version int, correlation_id text, causation_id text, tenant_id text)
WHERE (SELECT pg_advisory_xact_lock({EVENTS_LOCK_CLASS}, pg_backend_pid())) IS NOT NULL"""


_EVENTS_APPEND = f"""
CREATE OR REPLACE FUNCTION cqrs_events_append(
    document jsonb, OUT event_ids text[], OUT positions bigint[]
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- The batch in one statement, in a block of its own. A unique violation (a
    -- version or an event id already stored, or appended meanwhile by a transaction
    -- that has since committed) rolls back the block's subtransaction: nothing of
    -- the batch stays, the caller's transaction goes on, and NULLs tell the caller.
    -- Per row this costs less than ON CONFLICT's speculative insertion. The arrays
    -- are built before anything is returned, so a failed batch returns no rows of it.
    WITH appended AS (
{textwrap.indent(events_batch_insert("document"), " " * 8)}
        RETURNING event_id, position
    )
    SELECT array_agg(appended.event_id), array_agg(appended.position)
      INTO event_ids, positions
      FROM appended;
EXCEPTION WHEN unique_violation THEN
    event_ids := NULL;
    positions := NULL;
END
$$
"""

# One statement per DDL: asyncpg prepares each, and a prepared statement holds one.
for _statement in (_EVENTS_NEXT_POSITION, _EVENTS_HORIZON, _EVENTS_APPEND, _EVENTS_DEFAULT):
    event.listen(
        EventModel.__table__,
        "after_create",
        DDL(_statement).execute_if(dialect="postgresql"),  # type: ignore[no-untyped-call]
    )
# drop_all removes the functions with the table, so it leaves nothing behind.
for _function in (
    "cqrs_events_next_position()",
    "cqrs_events_horizon()",
    "cqrs_events_append(jsonb)",
):
    event.listen(
        EventModel.__table__,
        "after_drop",
        DDL(f"DROP FUNCTION IF EXISTS {_function}").execute_if(dialect="postgresql"),  # type: ignore[no-untyped-call]
    )


# -- the outbox's table ------------------------------------------------------------------

#: The channel a PostgreSQL trigger notifies when messages are saved to the outbox.
OUTBOX_CHANNEL = "cqrs_outbox"

_DUE_STATES = ("pending", "failed")


class OutboxMessage(Base):
    """One outbox message (the ``outbox`` table); also exported as ``OutboxMessageModel``.

    ``event_id`` holds the message id. A relay's claim is ``claimed_by`` plus a lease
    ending at ``claimed_until``; ``next_attempt_at`` says when a pending or failed
    message is due.
    """

    __tablename__ = "outbox"
    __versioned__ = False
    __timestamps__ = False

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONValue())
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONValue(), default=dict)
    status: Mapped[OutboxStatus] = mapped_column(
        Enum(
            OutboxStatus,
            native_enum=False,
            length=20,
            values_callable=lambda statuses: [s.value for s in statuses],
        ),
        default=OutboxStatus.PENDING,
    )
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    ordering_key: Mapped[str | None] = mapped_column(String(200))
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        # What get_pending scans, in its ORDER BY order so that a claim reads only
        # about as many rows as it takes: messages still to publish, so millions of
        # published rows cost nothing.
        Index(
            "ix_outbox_due",
            "created_at",
            "event_id",
            postgresql_where=text("status IN ('pending', 'failed')"),
            sqlite_where=text("status IN ('pending', 'failed')"),
        ),
        Index(
            "ix_outbox_ordering_key",
            "ordering_key",
            "created_at",
            postgresql_where=text("ordering_key IS NOT NULL AND status IN ('pending', 'failed')"),
            sqlite_where=text("ordering_key IS NOT NULL AND status IN ('pending', 'failed')"),
        ),
        Index(
            "ix_outbox_published_at",
            "published_at",
            postgresql_where=text("status = 'published'"),
            sqlite_where=text("status = 'published'"),
        ),
        # Room on every page so that a claim (claimed_by, claimed_until: in no index)
        # is a HOT update, without new index entries.
        {"postgresql_with": {"fillfactor": 70}},
    )


#: The ORM model of the outbox, under a name that cannot be confused with the port's.
OutboxMessageModel = OutboxMessage

_OUTBOX_NOTIFY = f"""
CREATE OR REPLACE FUNCTION cqrs_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Delivered when the saving transaction commits, never before.
    PERFORM pg_notify('{OUTBOX_CHANNEL}', '');
    RETURN NULL;
END
$$
"""
_OUTBOX_TRIGGER = (
    "CREATE TRIGGER cqrs_outbox_notify AFTER INSERT ON outbox "
    "FOR EACH STATEMENT EXECUTE FUNCTION cqrs_outbox_notify()"
)
for _statement in (_OUTBOX_NOTIFY, _OUTBOX_TRIGGER):
    event.listen(
        OutboxMessage.__table__,
        "after_create",
        DDL(_statement).execute_if(dialect="postgresql"),  # type: ignore[no-untyped-call]
    )
event.listen(
    OutboxMessage.__table__,
    "after_drop",
    DDL("DROP FUNCTION IF EXISTS cqrs_outbox_notify()").execute_if(dialect="postgresql"),  # type: ignore[no-untyped-call]
)
