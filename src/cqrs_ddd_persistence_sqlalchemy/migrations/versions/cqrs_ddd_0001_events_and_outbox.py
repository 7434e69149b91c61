"""The event store's and the outbox's tables.

Creates ``events`` and ``outbox`` as ``Base.metadata.create_all`` does, with the
constraint names of the naming convention and, on PostgreSQL, the functions that give
events their positions and the trigger that notifies relays of new outbox messages.
Like every revision, this one is frozen: it does not import the models, so a later
change to them comes with a revision of its own.

Revision ID: cqrs_ddd_0001
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "cqrs_ddd_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("cqrs_ddd",)
depends_on: str | Sequence[str] | None = None

# The types the models' column types render as: ``UTCDateTime`` and ``JSONValue``.
_TIMESTAMP = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# ``EVENTS_LOCK_CLASS`` and ``OUTBOX_CHANNEL`` of ``core/models.py``.
_EVENTS_LOCK_CLASS = 0x63717273  # "cqrs"
_OUTBOX_CHANNEL = "cqrs_outbox"

_DUE = "status IN ('pending', 'failed')"
_ORDERED_DUE = "ordering_key IS NOT NULL AND status IN ('pending', 'failed')"
_PUBLISHED = "status = 'published'"

# PostgreSQL only, one statement each (asyncpg prepares each, and a prepared statement
# holds one). The same text as the DDL the models attach to their tables.
_EVENTS_NEXT_POSITION = f"""
CREATE OR REPLACE FUNCTION cqrs_events_next_position() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- This writer's own lock, taken before the sequence is drawn from and held
    -- until the writing transaction ends; no other writer ever asks for it.
    -- (PL/pgSQL keeps its plans; a SQL function with a FROM clause would be
    -- planned again in every statement.)
    PERFORM pg_advisory_xact_lock({_EVENTS_LOCK_CLASS}, pg_backend_pid());
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
         WHERE locktype = 'advisory' AND classid = {_EVENTS_LOCK_CLASS}::oid AND objsubid = 2
           AND mode = 'ExclusiveLock' AND granted
           AND pid IS DISTINCT FROM pg_backend_pid()  -- NULL: a prepared transaction
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    LOOP
        BEGIN
            PERFORM pg_advisory_xact_lock_shared({_EVENTS_LOCK_CLASS}, writer);
            RAISE SQLSTATE 'CQ001';
        EXCEPTION WHEN SQLSTATE 'CQ001' THEN
            NULL;
        END;
    END LOOP;
    RETURN coalesce(last, 0);
END
$$
"""

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
        INSERT INTO events (position, event_id, event_type, aggregate_id, aggregate_type, version,
                            payload, metadata, occurred_at, schema_version, correlation_id,
                            causation_id, tenant_id)
        SELECT nextval('events_position_seq'), event_id, event_type, aggregate_id, aggregate_type,
               version, payload::jsonb, metadata::jsonb, occurred_at, schema_version,
               correlation_id, causation_id, tenant_id
        FROM jsonb_to_recordset(document)
             AS batch(event_id text, event_type text, aggregate_id text, aggregate_type text,
                      version int, payload jsonb, metadata jsonb, occurred_at timestamptz,
                      schema_version int, correlation_id text, causation_id text, tenant_id text)
        WHERE (SELECT pg_advisory_xact_lock({_EVENTS_LOCK_CLASS}, pg_backend_pid())) IS NOT NULL
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

_EVENTS_DEFAULT = "ALTER TABLE events ALTER COLUMN position SET DEFAULT cqrs_events_next_position()"

_OUTBOX_NOTIFY = f"""
CREATE OR REPLACE FUNCTION cqrs_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Delivered when the saving transaction commits, never before.
    PERFORM pg_notify('{_OUTBOX_CHANNEL}', '');
    RETURN NULL;
END
$$
"""

_OUTBOX_TRIGGER = (
    "CREATE TRIGGER cqrs_outbox_notify AFTER INSERT ON outbox "
    "FOR EACH STATEMENT EXECUTE FUNCTION cqrs_outbox_notify()"
)


def _on_postgresql() -> bool:
    # From the migration context, so that offline (``--sql``) runs decide the same way.
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    """Create ``events`` and ``outbox``, and on PostgreSQL their functions and trigger."""
    op.create_table(
        "events",
        sa.Column(
            "position",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("aggregate_id", sa.String(length=200), nullable=False),
        sa.Column("aggregate_type", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("metadata", _JSON, nullable=False),
        sa.Column("occurred_at", _TIMESTAMP, nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column("causation_id", sa.String(length=200), nullable=True),
        sa.Column("tenant_id", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("position", name="pk_events"),
        sa.UniqueConstraint("aggregate_id", "version", name="uq_events_aggregate_id_version"),
        sa.UniqueConstraint("event_id", name="uq_events_event_id"),
    )
    op.create_index("ix_events_tenant_id", "events", ["tenant_id"])
    op.create_index("ix_events_aggregate_type_position", "events", ["aggregate_type", "position"])

    op.create_table(
        "outbox",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("metadata", _JSON, nullable=False),
        # OutboxStatus values, stored as strings (a non-native enum without a CHECK).
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("published_at", _TIMESTAMP, nullable=True),
        sa.Column("next_attempt_at", _TIMESTAMP, nullable=False),
        sa.Column("ordering_key", sa.String(length=200), nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_until", _TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("event_id", name="pk_outbox"),
        # Room on every page so that a claim is a HOT update (see core/models.py).
        postgresql_with={"fillfactor": 70},
    )
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["created_at", "event_id"],
        postgresql_where=sa.text(_DUE),
        sqlite_where=sa.text(_DUE),
    )
    op.create_index(
        "ix_outbox_ordering_key",
        "outbox",
        ["ordering_key", "created_at"],
        postgresql_where=sa.text(_ORDERED_DUE),
        sqlite_where=sa.text(_ORDERED_DUE),
    )
    op.create_index(
        "ix_outbox_published_at",
        "outbox",
        ["published_at"],
        postgresql_where=sa.text(_PUBLISHED),
        sqlite_where=sa.text(_PUBLISHED),
    )

    if _on_postgresql():
        for statement in (
            _EVENTS_NEXT_POSITION,
            _EVENTS_HORIZON,
            _EVENTS_APPEND,
            _EVENTS_DEFAULT,
            _OUTBOX_NOTIFY,
            _OUTBOX_TRIGGER,
        ):
            op.execute(statement)


def downgrade() -> None:
    """Drop ``events`` and ``outbox``, and on PostgreSQL their functions and trigger."""
    if _on_postgresql():
        op.execute("DROP TRIGGER cqrs_outbox_notify ON outbox")
    op.drop_index("ix_outbox_published_at", table_name="outbox")
    op.drop_index("ix_outbox_ordering_key", table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_events_aggregate_type_position", table_name="events")
    op.drop_index("ix_events_tenant_id", table_name="events")
    # Drops the position sequence too, which the column owns.
    op.drop_table("events")
    if _on_postgresql():
        # After the table: the position's default depends on the first function.
        for function in (
            "cqrs_outbox_notify()",
            "cqrs_events_append(jsonb)",
            "cqrs_events_horizon()",
            "cqrs_events_next_position()",
        ):
            op.execute(f"DROP FUNCTION {function}")
