"""An in-memory outbox with the SQL outbox's claims, leases, retries and dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cqrs_ddd_core.domain.events import utc_now
from cqrs_ddd_core.domain.ids import new_id
from cqrs_ddd_core.exceptions import ClaimLostError, EntityNotFoundError
from cqrs_ddd_core.json import round_trip
from cqrs_ddd_core.ports.outbox import (
    IOutboxStorage,
    OutboxMessage,
    OutboxStats,
    OutboxStatus,
    RetryPolicy,
)

__all__ = ["InMemoryOutbox", "InMemoryOutboxStorage"]

_DUE = (OutboxStatus.PENDING, OutboxStatus.FAILED)


@dataclass(slots=True)
class _Row:
    message: OutboxMessage
    claimed_by: str | None = None
    claimed_until: datetime | None = None


class InMemoryOutbox:
    """The messages, shared by the storages (one per relay) that work on them."""

    def __init__(self) -> None:
        self.rows: dict[str, _Row] = {}


class InMemoryOutboxStorage(IOutboxStorage):
    """An outbox in memory, for tests of application code and relays.

    Same rules as ``SQLAlchemyOutboxStorage`` (claims per owner under a lease,
    per-key ordering, retries with backoff, dead letters); changes take effect at
    once, as there is no transaction. Storages sharing one :class:`InMemoryOutbox`
    behave like relays sharing one database.
    """

    def __init__(
        self,
        outbox: InMemoryOutbox | None = None,
        *,
        lease: timedelta = timedelta(seconds=30),
        retry: RetryPolicy | None = None,
        owner: str | None = None,
    ) -> None:
        self.outbox = outbox if outbox is not None else InMemoryOutbox()
        self.lease = lease
        self.retry = retry or RetryPolicy()
        self.owner = owner or new_id()

    def _rows(self) -> list[_Row]:
        return sorted(
            self.outbox.rows.values(),
            key=lambda r: (r.message.created_at, r.message.message_id),
        )

    async def save_messages(self, messages: Sequence[OutboxMessage], *, uow: Any = None) -> None:
        """Save messages (payloads stored as JSON, so they read back as JSON values)."""
        staged = []
        for message in messages:
            if not isinstance(message, OutboxMessage):
                raise TypeError(
                    f"save_messages takes OutboxMessage objects, got {type(message).__name__}"
                )
            what = f"message {message.message_id!r}"
            staged.append(
                message.model_copy(
                    update={
                        "payload": round_trip(message.payload, what=f"payload of {what}"),
                        "metadata": round_trip(message.metadata, what=f"metadata of {what}"),
                        "status": OutboxStatus.PENDING,
                        "retry_count": 0,
                        "next_attempt_at": message.created_at,
                    }
                )
            )
        for message in staged:
            if message.message_id in self.outbox.rows:
                raise ValueError(f"outbox message {message.message_id!r} already exists")
        for message in staged:
            self.outbox.rows[message.message_id] = _Row(message)

    async def get_pending(self, limit: int = 100, *, uow: Any = None) -> list[OutboxMessage]:
        """Claim up to ``limit`` due messages for this owner's lease, oldest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        now = utc_now()
        blocked_keys: set[str] = set()
        claimed: list[OutboxMessage] = []
        for row in self._rows():
            message = row.message
            if message.status not in _DUE:
                continue
            key = message.ordering_key
            due = (message.next_attempt_at or message.created_at) <= now and (
                row.claimed_until is None or row.claimed_until < now
            )
            if key is not None:
                if key in blocked_keys:
                    continue
                blocked_keys.add(key)  # later messages of this key wait for this one
            if due and len(claimed) < limit:
                row.claimed_by, row.claimed_until = self.owner, now + self.lease
                claimed.append(_read(message))
        return claimed

    def _writable(self, ids: Sequence[str], now: datetime) -> tuple[list[_Row], list[str]]:
        """Rows this owner may write back, and the ids another live claim holds."""
        rows, lost, unknown = [], [], []
        for message_id in dict.fromkeys(ids):
            row = self.outbox.rows.get(message_id)
            if row is None:
                unknown.append(message_id)
            elif row.claimed_by in (None, self.owner) or (
                row.claimed_until is not None and row.claimed_until < now
            ):
                rows.append(row)
            else:
                lost.append(message_id)
        if unknown:
            raise EntityNotFoundError(
                f"no outbox message with id {', '.join(map(repr, unknown))}",
                entity_id=unknown[0],
            )
        return rows, lost

    async def mark_published(self, message_ids: Sequence[str], *, uow: Any = None) -> None:
        """Record that the messages reached the broker (as the SQL storage does)."""
        now = utc_now()
        rows, lost = self._writable(message_ids, now)
        self._publish(rows, now)
        if lost:
            raise ClaimLostError(lost)

    @staticmethod
    def _publish(rows: list[_Row], now: datetime) -> None:
        for row in rows:
            row.message = row.message.model_copy(
                update={"status": OutboxStatus.PUBLISHED, "published_at": now, "error": None}
            )
            row.claimed_by = row.claimed_until = None

    async def mark_failed(self, message_id: str, error: str, *, uow: Any = None) -> OutboxStatus:
        """Record a failed attempt: retried after a backoff, or dead after ``max_attempts``."""
        now = utc_now()
        rows, lost = self._writable([message_id], now)
        if lost:
            raise ClaimLostError(lost)
        (row,) = rows
        failures = row.message.retry_count + 1
        dead = failures >= self.retry.max_attempts
        row.message = row.message.model_copy(
            update={
                "retry_count": failures,
                "error": error,
                "status": OutboxStatus.DEAD if dead else OutboxStatus.FAILED,
                "next_attempt_at": now + self.retry.delay(failures),
            }
        )
        row.claimed_by = row.claimed_until = None
        return row.message.status

    async def release(self, message_ids: Sequence[str], *, uow: Any = None) -> None:
        """End this owner's claims without an outcome."""
        for message_id in message_ids:
            row = self.outbox.rows.get(message_id)
            if row is not None and row.claimed_by == self.owner:
                row.claimed_by = row.claimed_until = None

    async def requeue(self, message_ids: Sequence[str], *, uow: Any = None) -> int:
        """Make dead or failed messages pending and due now."""
        count = 0
        for message_id in message_ids:
            row = self.outbox.rows.get(message_id)
            if row is not None and row.message.status in (OutboxStatus.DEAD, OutboxStatus.FAILED):
                row.message = row.message.model_copy(
                    update={
                        "status": OutboxStatus.PENDING,
                        "retry_count": 0,
                        "next_attempt_at": utc_now(),
                    }
                )
                row.claimed_by = row.claimed_until = None
                count += 1
        return count

    async def get_dead(self, limit: int = 100, *, uow: Any = None) -> list[OutboxMessage]:
        """Return dead-lettered messages, oldest first."""
        dead = [r.message for r in self._rows() if r.message.status is OutboxStatus.DEAD]
        return [_read(m) for m in dead[:limit]]

    async def get_message(self, message_id: str, *, uow: Any = None) -> OutboxMessage | None:
        """Return one message in its current state, or ``None``."""
        row = self.outbox.rows.get(message_id)
        return None if row is None else _read(row.message)

    async def purge_published(self, older_than: timedelta | datetime, *, uow: Any = None) -> int:
        """Delete published messages older than a duration (or published before a time)."""
        cutoff = utc_now() - older_than if isinstance(older_than, timedelta) else older_than
        doomed = [
            message_id
            for message_id, row in self.outbox.rows.items()
            if row.message.status is OutboxStatus.PUBLISHED
            and row.message.published_at is not None
            and row.message.published_at < cutoff
        ]
        for message_id in doomed:
            del self.outbox.rows[message_id]
        return len(doomed)

    async def stats(self, *, uow: Any = None) -> OutboxStats:
        """Count pending, failed and dead messages; age of the oldest pending one."""
        rows = [r.message for r in self.outbox.rows.values()]
        due = [m.created_at for m in rows if m.status in _DUE]
        return OutboxStats(
            pending=sum(m.status is OutboxStatus.PENDING for m in rows),
            failed=sum(m.status is OutboxStatus.FAILED for m in rows),
            dead=sum(m.status is OutboxStatus.DEAD for m in rows),
            oldest_pending_age=utc_now() - min(due) if due else None,
        )


def _read(message: OutboxMessage) -> OutboxMessage:
    """A message as a read returns it: its JSON values are the caller's own, as in SQL."""
    return message.model_copy(deep=True)
