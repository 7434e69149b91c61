"""The transactional outbox port: messages saved with the aggregate, published later."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cqrs_ddd_core.domain.events import utc_now
from cqrs_ddd_core.domain.ids import new_id

__all__ = ["IOutboxStorage", "OutboxMessage", "OutboxStatus"]


class OutboxStatus(enum.StrEnum):
    """Where an outbox message is on its way to the broker."""

    PENDING = "pending"
    PUBLISHED = "published"
    FAILED = "failed"
    DEAD = "dead"


class OutboxMessage(BaseModel):
    """A message waiting in (or read back from) the outbox."""

    model_config = ConfigDict(frozen=True)

    message_id: str = Field(default_factory=new_id)
    event_type: str
    payload: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utc_now)
    ordering_key: str | None = None
    status: OutboxStatus = OutboxStatus.PENDING
    attempts: int = 0
    error: str | None = None
    published_at: datetime | None = None
    next_attempt_at: datetime | None = None

    @field_validator("created_at", "published_at", "next_attempt_at")
    @classmethod
    def _aware_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class IOutboxStorage(ABC):
    """Stores outbox messages and hands them out to relays."""

    @abstractmethod
    async def save_messages(self, messages: Sequence[OutboxMessage]) -> None:
        """Save messages in the current transaction."""

    @abstractmethod
    async def get_pending(self, limit: int = 100) -> list[OutboxMessage]:
        """Claim and return up to ``limit`` due messages, oldest first."""

    @abstractmethod
    async def mark_published(self, message_ids: Sequence[str]) -> None:
        """Record that the messages reached the broker."""

    @abstractmethod
    async def mark_failed(self, message_id: str, error: str) -> None:
        """Record a failed attempt; the message is retried later or dead-lettered."""
