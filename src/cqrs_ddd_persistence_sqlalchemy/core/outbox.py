"""The SQLAlchemy transactional outbox: atomic saves, leased claims, retries, dead letters.

Claims
======
``get_pending`` claims due messages for this storage's *owner* (one per relay) for a
lease, in one statement: ``UPDATE outbox ... WHERE event_id = ANY(SELECT
array_agg(...) FROM (SELECT ... ORDER BY created_at LIMIT n FOR UPDATE SKIP LOCKED))``.
``SKIP LOCKED`` (PostgreSQL) makes concurrent relays take disjoint sets without
waiting for each other; the claimed ids are looked up through the primary key as one
array. A claim only exists once the caller commits it, and a claim whose holder
vanished ends with its lease, after which any relay may claim the message again:
delivery is at-least-once, and only the batch of a crashed relay can be delivered
twice.

Write-backs (``mark_published``, ``mark_failed``, ``release``) apply to messages that
are unclaimed, claimed by this owner, or whose lease has ended; a message that
another relay's live claim holds is refused with :class:`ClaimLostError`.

Ordering
========
Messages with an ``ordering_key`` are claimed one at a time per key, oldest first:
a message is not due while an older one with the same key is pending, claimed or
waiting for a retry. Messages without a key are unordered.

SQLite has no ``SKIP LOCKED``: its single writer lock serialises claims, so run one
relay per SQLite database.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    String,
    Table,
    Text,
    Update,
    and_,
    any_,
    bindparam,
    case,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from cqrs_ddd_core.domain.events import utc_now
from cqrs_ddd_core.domain.ids import new_id
from cqrs_ddd_core.exceptions import ClaimLostError, EntityNotFoundError
from cqrs_ddd_core.json import dumps, loads
from cqrs_ddd_core.ports.outbox import (
    IOutboxStorage,
    OutboxMessage,
    OutboxStats,
    OutboxStatus,
    RetryPolicy,
)
from cqrs_ddd_core.ports.unit_of_work import UnitOfWork
from cqrs_ddd_persistence_sqlalchemy.core.models import OutboxMessage as OutboxRow
from cqrs_ddd_persistence_sqlalchemy.core.types import UTCDateTime
from cqrs_ddd_persistence_sqlalchemy.core.uow import session_for

__all__ = ["SQLAlchemyOutboxStorage"]

_TABLE = cast("Table", OutboxRow.__table__)
_C = _TABLE.c
_DUE = (OutboxStatus.PENDING, OutboxStatus.FAILED)

# Saving is an executemany of one small statement; payloads arrive as JSON text
# (encoded, and so checked, before anything is sent).
_INSERT = text(
    "INSERT INTO outbox (event_id, event_type, payload, metadata, status, retry_count, "
    "created_at, next_attempt_at, ordering_key) VALUES (:event_id, :event_type, :payload, "
    ":metadata, 'pending', 0, :created_at, :created_at, :ordering_key)"
).bindparams(bindparam("created_at", type_=UTCDateTime()))

_ROW_COLUMNS = (
    _C.event_id,
    _C.event_type,
    # JSON as text, decoded by pydantic_core (faster than the driver's json.loads).
    sql_cast(_C.payload, Text),
    sql_cast(_C.metadata, Text),
    _C.created_at,
    _C.ordering_key,
    _C.status,
    _C.retry_count,
    _C.error,
    _C.published_at,
    _C.next_attempt_at,
)


def _message(row: Any) -> OutboxMessage:
    return OutboxMessage.from_storage(
        {
            "message_id": row[0],
            "event_type": row[1],
            "payload": loads(row[2]),
            "metadata": loads(row[3]) if row[3] is not None else {},
            "created_at": row[4],
            "ordering_key": row[5],
            "status": OutboxStatus(row[6]),
            "retry_count": row[7],
            "error": row[8],
            "published_at": row[9],
            "next_attempt_at": row[10],
        }
    )


def _is_due(status: ColumnElement[Any]) -> ColumnElement[bool]:
    """``status IN ('pending', 'failed')``, with the values written into the SQL.

    The partial indexes have this predicate; with the values as parameters a generic
    plan (which PostgreSQL may choose for a prepared statement) could not prove the
    index applies and would scan every published row.
    """
    return status.in_([literal_column(f"'{value.value}'") for value in _DUE])


@functools.cache
def _claim_statement(dialect: str) -> Update:
    """The claim (built once per dialect; parameters ``now``, ``claim_limit``,
    ``owner``, ``claimed_until``): the oldest due messages with no live claim and no
    older message of their ``ordering_key`` still to publish, given this owner's lease.
    """
    now = bindparam("now", type_=UTCDateTime())
    earlier = aliased(_TABLE)
    blocked_by_older = (
        select(literal(1))
        .where(
            earlier.c.ordering_key == _C.ordering_key,
            _is_due(earlier.c.status),
            or_(
                earlier.c.created_at < _C.created_at,
                and_(
                    earlier.c.created_at == _C.created_at,
                    earlier.c.event_id < _C.event_id,
                ),
            ),
        )
        .exists()
    )
    candidates = (
        select(_C.event_id)
        .where(
            _is_due(_C.status),
            _C.next_attempt_at <= now,
            or_(_C.claimed_until.is_(None), _C.claimed_until < now),
            or_(_C.ordering_key.is_(None), ~blocked_by_older),
        )
        .order_by(_C.created_at, _C.event_id)
        .limit(bindparam("claim_limit", type_=Integer))
    )
    if dialect == "postgresql":
        # The claimed ids become one array (an InitPlan), looked up through the
        # primary key; joined or IN'd instead, the planner may scan the table.
        locked = candidates.with_for_update(skip_locked=True).subquery("claimed")
        ids = select(func.array_agg(locked.c.event_id)).scalar_subquery()
        # The cast makes ANY take one array value rather than a subquery's rows.
        claimed = _C.event_id == any_(sql_cast(ids, ARRAY(String)))
    else:
        claimed = _C.event_id.in_(candidates.scalar_subquery())
    return (
        update(_TABLE)
        .where(claimed)
        .values(
            claimed_by=bindparam("owner", type_=String()),
            claimed_until=bindparam("claimed_until", type_=UTCDateTime()),
        )
        .returning(*_ROW_COLUMNS)
    )


def _ids_match(session: AsyncSession, ids: list[str]) -> ColumnElement[bool]:
    """``event_id`` is one of ``ids``.

    On PostgreSQL one array parameter (``= ANY($1)``): the same SQL for any number of
    ids, so the driver's prepared statement is reused and no per-id parameter is
    rendered. Elsewhere an expanding ``IN``.
    """
    if session.get_bind().dialect.name == "postgresql":
        return _C.event_id == any_(bindparam("ids", ids, type_=ARRAY(String)))
    return _C.event_id.in_(ids)


def _default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[-12:]}"


class SQLAlchemyOutboxStorage(IOutboxStorage):
    """The outbox in the ``outbox`` table, worked on in the caller's transaction.

    ``SQLAlchemyOutboxStorage(session)`` works in that session; every method also
    takes ``uow=`` to work in a unit of work's session instead, so that
    ``save_messages(messages, uow=uow)`` commits or rolls back with the aggregate.
    The storage never commits.

    Args:
        session: the default session.
        lease: how long a claim lasts without an outcome.
        retry: when failed messages are retried and when they are dead-lettered.
        owner: this storage's claim identity (one per relay); unique by default.
    """

    def __init__(
        self,
        session: AsyncSession | None = None,
        *,
        lease: timedelta = timedelta(seconds=30),
        retry: RetryPolicy | None = None,
        owner: str | None = None,
    ) -> None:
        if session is not None and not isinstance(session, AsyncSession):
            raise TypeError(
                f"SQLAlchemyOutboxStorage takes an AsyncSession, got {type(session).__name__}"
            )
        if lease <= timedelta(0):
            raise ValueError("lease must be positive")
        self._default_session = session
        self.lease = lease
        self.retry = retry or RetryPolicy()
        self.owner = owner or _default_owner()

    def _session(self, uow: UnitOfWork | None) -> AsyncSession:
        return session_for(uow, self._default_session, self)

    def _writable(self, now: datetime) -> Any:
        """Rows this owner may write back: unclaimed, its own, or with an ended lease."""
        return or_(_C.claimed_by.is_(None), _C.claimed_by == self.owner, _C.claimed_until < now)

    # -- writing -----------------------------------------------------------------

    async def save_messages(
        self, messages: Sequence[OutboxMessage], *, uow: UnitOfWork | None = None
    ) -> None:
        """Save messages in the current transaction, in one round-trip.

        Raises:
            SerializationError: a payload or metadata value has no JSON form;
                nothing is written.
        """
        session = self._session(uow)
        rows = []
        for message in messages:
            if not isinstance(message, OutboxMessage):
                raise TypeError(
                    f"save_messages takes OutboxMessage objects (cqrs_ddd_core.ports.outbox), "
                    f"got {type(message).__name__}"
                )
            what = f"message {message.message_id!r}"
            rows.append(
                {
                    "event_id": message.message_id,
                    "event_type": message.event_type,
                    "payload": dumps(message.payload, what=f"payload of {what}"),
                    "metadata": dumps(message.metadata, what=f"metadata of {what}"),
                    "created_at": message.created_at,
                    "ordering_key": message.ordering_key,
                }
            )
        if rows:
            await session.execute(_INSERT, rows)

    async def get_pending(
        self, limit: int = 100, *, uow: UnitOfWork | None = None
    ) -> list[OutboxMessage]:
        """Claim up to ``limit`` due messages for this owner's lease; oldest first.

        The claim takes effect when the caller commits. Claimed messages stay
        ``pending`` (or ``failed``) with this owner's lease on them.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        session = self._session(uow)
        now = utc_now()
        stmt = _claim_statement(session.get_bind().dialect.name)
        params = {
            "now": now,
            "claim_limit": limit,
            "owner": self.owner,
            "claimed_until": now + self.lease,
        }
        rows = (await session.execute(stmt, params)).all()
        messages = [_message(row) for row in rows]
        messages.sort(key=lambda m: (m.created_at, m.message_id))
        return messages

    async def _write_back(
        self, session: AsyncSession, ids: list[str], values: dict[str, Any], now: datetime
    ) -> dict[str, str]:
        """Apply ``values`` to the writable ones of ``ids``; return their new statuses."""
        stmt = (
            update(_TABLE)
            .where(_ids_match(session, ids), self._writable(now))
            .values(values)
            .returning(_C.event_id, _C.status)
        )
        written = {row[0]: row[1] for row in await session.execute(stmt)}
        if len(written) == len(set(ids)):
            return written
        missing = [i for i in dict.fromkeys(ids) if i not in written]
        existing = set(await session.scalars(select(_C.event_id).where(_C.event_id.in_(missing))))
        unknown = [i for i in missing if i not in existing]
        if unknown:
            raise EntityNotFoundError(
                f"no outbox message with id {', '.join(map(repr, unknown))}",
                entity_id=unknown[0],
            )
        raise ClaimLostError([i for i in missing if i in existing])

    async def mark_published(
        self, message_ids: Sequence[str], *, uow: UnitOfWork | None = None
    ) -> None:
        """Record that the messages reached the broker.

        Raises:
            ClaimLostError: another relay's live claim holds some of them (the others
                are marked).
            EntityNotFoundError: no message has one of the ids.
        """
        ids = list(message_ids)
        if not ids:
            return
        now = utc_now()
        await self._write_back(
            self._session(uow),
            ids,
            {
                "status": OutboxStatus.PUBLISHED,
                "published_at": now,
                "error": None,
                "claimed_by": None,
                "claimed_until": None,
            },
            now,
        )

    async def mark_failed(
        self, message_id: str, error: str, *, uow: UnitOfWork | None = None
    ) -> OutboxStatus:
        """Record a failed attempt: retried after a backoff, or dead after ``max_attempts``.

        Returns the message's new status, ``FAILED`` or ``DEAD``.

        Raises:
            ClaimLostError: another relay's live claim holds the message.
            EntityNotFoundError: no message has this id.
        """
        now = utc_now()
        policy = self.retry
        # Each possible attempt count gets its own (jittered) due time, so one
        # statement can count the attempt and schedule the next one.
        # (Only up to where delays reach max_delay: the rest share the last branch.)
        capped = policy.capped_after()
        next_attempt: Any = now + policy.delay(capped)
        if capped > 1:
            next_attempt = case(
                *(
                    (_C.retry_count == failures - 1, now + policy.delay(failures))
                    for failures in range(1, capped)
                ),
                else_=next_attempt,
            )
        written = await self._write_back(
            self._session(uow),
            [message_id],
            {
                "retry_count": _C.retry_count + 1,
                "error": error,
                "status": case(
                    (_C.retry_count + 1 >= policy.max_attempts, OutboxStatus.DEAD.value),
                    else_=OutboxStatus.FAILED.value,
                ),
                "next_attempt_at": next_attempt,
                "claimed_by": None,
                "claimed_until": None,
            },
            now,
        )
        return OutboxStatus(written[message_id])

    async def release(self, message_ids: Sequence[str], *, uow: UnitOfWork | None = None) -> None:
        """End this owner's claims without an outcome; the messages are due again now."""
        ids = list(message_ids)
        if not ids:
            return
        session = self._session(uow)
        await session.execute(
            update(_TABLE)
            .where(_ids_match(session, ids), _C.claimed_by == self.owner)
            .values(claimed_by=None, claimed_until=None)
        )

    async def requeue(self, message_ids: Sequence[str], *, uow: UnitOfWork | None = None) -> int:
        """Make dead or failed messages pending and due now, with a fresh attempt count."""
        ids = list(message_ids)
        if not ids:
            return 0
        session = self._session(uow)
        result = await session.execute(
            update(_TABLE)
            .where(
                _C.event_id.in_(ids),
                _C.status.in_((OutboxStatus.DEAD, OutboxStatus.FAILED)),
            )
            .values(
                status=OutboxStatus.PENDING,
                retry_count=0,
                next_attempt_at=utc_now(),
                claimed_by=None,
                claimed_until=None,
            )
        )
        return int(cast("Any", result).rowcount)

    # -- reading and housekeeping ---------------------------------------------------

    async def get_dead(
        self, limit: int = 100, *, uow: UnitOfWork | None = None
    ) -> list[OutboxMessage]:
        """Return dead-lettered messages, oldest first, with their last error."""
        session = self._session(uow)
        rows = await session.execute(
            select(*_ROW_COLUMNS)
            .where(_C.status == OutboxStatus.DEAD)
            .order_by(_C.created_at, _C.event_id)
            .limit(limit)
        )
        return [_message(row) for row in rows]

    async def get_message(
        self, message_id: str, *, uow: UnitOfWork | None = None
    ) -> OutboxMessage | None:
        """Return one message in its current state, or ``None``."""
        session = self._session(uow)
        row = (
            await session.execute(select(*_ROW_COLUMNS).where(_C.event_id == message_id))
        ).first()
        return None if row is None else _message(row)

    async def purge_published(
        self, older_than: timedelta | datetime, *, uow: UnitOfWork | None = None
    ) -> int:
        """Delete published messages older than a duration (or published before a time)."""
        cutoff = utc_now() - older_than if isinstance(older_than, timedelta) else older_than
        session = self._session(uow)
        result = await session.execute(
            delete(_TABLE).where(_C.status == OutboxStatus.PUBLISHED, _C.published_at < cutoff)
        )
        return int(cast("Any", result).rowcount)

    async def stats(self, *, uow: UnitOfWork | None = None) -> OutboxStats:
        """Count pending, failed and dead messages; age of the oldest pending one."""
        session = self._session(uow)
        counts: dict[str, int] = dict(
            (
                await session.execute(
                    select(_C.status, func.count())
                    .where(_C.status != OutboxStatus.PUBLISHED)
                    .group_by(_C.status)
                )
            ).all()
        )
        oldest = await session.scalar(select(func.min(_C.created_at)).where(_is_due(_C.status)))
        return OutboxStats(
            pending=int(counts.get(OutboxStatus.PENDING, 0)),
            failed=int(counts.get(OutboxStatus.FAILED, 0)),
            dead=int(counts.get(OutboxStatus.DEAD, 0)),
            oldest_pending_age=None if oldest is None else utc_now() - oldest,
        )
