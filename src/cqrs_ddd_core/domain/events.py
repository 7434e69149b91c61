"""Domain events: immutable records of something that happened to an aggregate."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from cqrs_ddd_core.domain.ids import new_id

__all__ = ["AwareUTC", "DomainEvent", "to_utc", "utc_now"]


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def to_utc(value: datetime) -> datetime:
    """Convert to aware UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


#: A datetime field that always holds an aware UTC value.
AwareUTC = Annotated[datetime, AfterValidator(to_utc)]


class DomainEvent(BaseModel):
    """Base class of domain events.

    Subclasses add their own fields. ``event_type`` defaults to the class name,
    ``event_id`` to a new time-ordered UUID and ``occurred_at`` to now (aware UTC).
    ``aggregate_id``, ``aggregate_type`` and ``version`` are filled in by
    :meth:`AggregateRoot.add_event` when the aggregate records the event.
    """

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(default_factory=new_id)
    event_type: str = ""
    occurred_at: AwareUTC = Field(default_factory=utc_now)
    aggregate_id: Any = None
    aggregate_type: str | None = None
    version: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_event_type(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("event_type"):
            return {**data, "event_type": cls.__name__}
        return data
