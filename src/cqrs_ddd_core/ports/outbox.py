"""The transactional outbox port: messages saved with the aggregate, published later.

A message goes through these states::

    PENDING ──claim──► (claimed: still PENDING/FAILED, with a lease)
       ▲                 │ published          │ failed
       │ requeue         ▼                    ▼
      DEAD ◄── max ── FAILED ──(due again)──► claimed ...
               attempts          PUBLISHED

A claim is a lease: if its holder neither publishes nor fails the message before the
lease ends (it crashed), the message is due again. Delivery is therefore
at-least-once; consumers deduplicate by ``message_id``.
"""

from __future__ import annotations

import enum
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from pydantic import ConfigDict, Field

from cqrs_ddd_core.domain.events import AwareUTC, utc_now
from cqrs_ddd_core.domain.ids import new_id
from cqrs_ddd_core.ports.stored import StoredRecord

__all__ = [
    "BatchPublisher",
    "IOutboxStorage",
    "MessagePublisher",
    "OutboxMessage",
    "OutboxStats",
    "OutboxStatus",
    "RetryPolicy",
]


class OutboxStatus(enum.StrEnum):
    """Where an outbox message is on its way to the broker."""

    PENDING = "pending"
    PUBLISHED = "published"
    FAILED = "failed"  # an attempt failed; due again at ``next_attempt_at``
    DEAD = "dead"  # gave up after ``max_attempts``; see ``requeue``


class OutboxMessage(StoredRecord):
    """A message waiting in (or read back from) the outbox."""

    model_config = ConfigDict(frozen=True)

    message_id: str = Field(default_factory=new_id)
    event_type: str
    payload: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: AwareUTC = Field(default_factory=utc_now)
    #: Messages with the same key are published one at a time, oldest first.
    ordering_key: str | None = None
    status: OutboxStatus = OutboxStatus.PENDING
    retry_count: int = 0
    error: str | None = None
    published_at: AwareUTC | None = None
    next_attempt_at: AwareUTC | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a failed message is tried again, and when it is given up (dead-lettered).

    The n-th retry is due ``min(base_delay * 2**(n-1), max_delay)`` seconds after the
    failure, spread by ``±jitter`` (a fraction) so that relays do not retry in step.
    After ``max_attempts`` failed attempts the message is dead.
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 300.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("need 0 <= base_delay <= max_delay")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def capped_after(self) -> int:
        """The number of failures from which every delay is ``max_delay``."""
        failures = 1
        while (
            failures < self.max_attempts and self.base_delay * 2 ** (failures - 1) < self.max_delay
        ):
            failures += 1
        return failures

    def delay(self, failures: int) -> timedelta:
        """The wait before the next attempt after ``failures`` failed attempts."""
        exponent = max(failures - 1, 0)
        # Past 2**64 every delay is max_delay anyway (and 2.0**1100 would overflow).
        seconds = (
            self.max_delay if exponent >= 64 else min(self.base_delay * 2**exponent, self.max_delay)
        )
        spread = random.uniform(1 - self.jitter, 1 + self.jitter)
        return timedelta(seconds=seconds * spread)


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """How the outbox is doing (for metrics and health checks)."""

    pending: int
    failed: int
    dead: int
    oldest_pending_age: timedelta | None


@runtime_checkable
class MessagePublisher(Protocol):
    """Sends one message to a broker; raises if the broker did not take it."""

    async def publish(self, message: OutboxMessage) -> None:
        """Publish ``message``; return only once the broker has it."""
        ...


@runtime_checkable
class BatchPublisher(Protocol):
    """Sends messages in one go and reports, per message, ``None`` or the error."""

    async def publish_batch(
        self, messages: Sequence[OutboxMessage]
    ) -> Sequence[BaseException | None]:
        """Publish ``messages``; the result lists each message's outcome in order."""
        ...


class IOutboxStorage(ABC):
    """Stores outbox messages and hands them out to relays, under leases.

    Storage never commits: every method works in the caller's transaction.
    """

    @abstractmethod
    async def save_messages(self, messages: Sequence[OutboxMessage]) -> None:
        """Save messages in the current transaction (atomic with the aggregate)."""

    @abstractmethod
    async def get_pending(self, limit: int = 100) -> list[OutboxMessage]:
        """Claim and return up to ``limit`` due messages, oldest first."""

    @abstractmethod
    async def mark_published(self, message_ids: Sequence[str]) -> None:
        """Record that the messages reached the broker.

        Raises:
            ClaimLostError: another relay holds a live claim on some of them.
        """

    @abstractmethod
    async def mark_failed(self, message_id: str, error: str) -> OutboxStatus:
        """Record a failed attempt; return ``FAILED`` (retried later) or ``DEAD``."""

    @abstractmethod
    async def release(self, message_ids: Sequence[str]) -> None:
        """Give up this relay's claims without an outcome (they are due again now)."""

    @abstractmethod
    async def requeue(self, message_ids: Sequence[str]) -> int:
        """Make dead or failed messages pending again, due now; return how many."""

    @abstractmethod
    async def get_dead(self, limit: int = 100) -> list[OutboxMessage]:
        """Return dead-lettered messages, oldest first."""

    @abstractmethod
    async def purge_published(self, older_than: timedelta | datetime) -> int:
        """Delete messages published before a moment (or longer ago than a duration)."""

    @abstractmethod
    async def stats(self) -> OutboxStats:
        """Count messages by state and measure the age of the oldest pending one."""
