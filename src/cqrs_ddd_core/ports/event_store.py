"""The event store port: append-only streams of events with a global order."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ConfigDict, Field

from cqrs_ddd_core.domain.events import AwareUTC, utc_now
from cqrs_ddd_core.domain.ids import new_id
from cqrs_ddd_core.exceptions import DuplicateEventError, InvalidEventError
from cqrs_ddd_core.ports.stored import StoredRecord

__all__ = [
    "EVENT_ID_LENGTH",
    "MAX_VERSION",
    "TEXT_LENGTH",
    "ExpectedVersion",
    "IEventStore",
    "StoredEvent",
    "check_batch",
    "check_read_argument",
]

#: The version a writer expects a stream to have before its append: one number for
#: every stream of the batch, or a number per aggregate id. 0 means "no stream yet".
ExpectedVersion = int | Mapping[str, int]

#: The longest ``event_id`` the stores keep (characters).
EVENT_ID_LENGTH = 64
#: The longest value of the other text fields (``event_type``, ``aggregate_id``, ...).
TEXT_LENGTH = 200
#: The highest ``version`` and ``schema_version`` (a 32-bit integer column).
MAX_VERSION = 2**31 - 1
#: The highest position, limit or batch size a read takes (a 64-bit integer).
_MAX_READ = 2**63 - 1


class StoredEvent(StoredRecord):
    """An event as the event store keeps it.

    ``version`` is the event's number within its aggregate's stream (1, 2, ...);
    ``position`` is its place in the global order, assigned by the store on append
    (``None`` before that).
    """

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(default_factory=new_id)
    event_type: str
    aggregate_id: str
    aggregate_type: str
    version: int = Field(ge=1)
    payload: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    occurred_at: AwareUTC = Field(default_factory=utc_now)
    schema_version: int = Field(default=1, ge=1)
    correlation_id: str | None = None
    causation_id: str | None = None
    tenant_id: str | None = None
    position: int | None = None


class IEventStore(ABC):
    """Append-only event streams, one per aggregate, in one global order."""

    @abstractmethod
    async def append(
        self, event: StoredEvent, *, expected_version: ExpectedVersion | None = None
    ) -> StoredEvent:
        """Append one event; return it with its assigned ``position``.

        Raises:
            OptimisticConcurrencyError: the stream already has that version (or an
                event with that id exists), or is not at ``expected_version``.
        """

    @abstractmethod
    async def append_batch(
        self,
        events: Sequence[StoredEvent],
        *,
        expected_version: ExpectedVersion | None = None,
    ) -> list[StoredEvent]:
        """Append several events atomically; return them with their positions."""

    @abstractmethod
    async def get_events(self, aggregate_id: str, after_version: int = 0) -> list[StoredEvent]:
        """Return the stream of ``aggregate_id`` after ``after_version``, in version order."""

    @abstractmethod
    async def get_by_aggregate(
        self, aggregate_id: str, aggregate_type: str | None = None
    ) -> list[StoredEvent]:
        """Return every event of an aggregate, optionally only of one aggregate type."""

    @abstractmethod
    async def get_all(self) -> list[StoredEvent]:
        """Return every event in global order (prefer paging for large stores)."""

    @abstractmethod
    async def get_events_after(self, position: int, limit: int = 1000) -> list[StoredEvent]:
        """Return up to ``limit`` events with a position greater than ``position``."""

    @abstractmethod
    async def get_events_from_position(
        self, position: int = 0, batch_size: int = 1000
    ) -> AsyncIterator[StoredEvent]:
        """Return an async iterator over the events after ``position``, read page by page."""

    @abstractmethod
    async def get_latest_position(self) -> int:
        """Return the highest assigned position (0 for an empty store)."""


_TEXT_FIELDS = (
    ("event_id", EVENT_ID_LENGTH),
    ("event_type", TEXT_LENGTH),
    ("aggregate_id", TEXT_LENGTH),
    ("aggregate_type", TEXT_LENGTH),
    ("correlation_id", TEXT_LENGTH),
    ("causation_id", TEXT_LENGTH),
    ("tenant_id", TEXT_LENGTH),
)


def _check_text(event: StoredEvent, name: str, value: str, length: int) -> None:
    """Raise the error a text field deserves (called only when it may deserve one)."""
    if "\x00" in value:
        raise InvalidEventError(
            f"{name} of event {event.event_id[:EVENT_ID_LENGTH]!r} holds a NUL character, "
            "which PostgreSQL cannot store in text"
        )
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidEventError(
            f"{name} of event {event.event_id[:EVENT_ID_LENGTH]!r} is not storable text: {exc}"
        ) from exc
    if len(value) > length:
        raise InvalidEventError(
            f"{name} of event {event.event_id[:EVENT_ID_LENGTH]!r} is {len(value)} "
            f"characters long; the store keeps at most {length}"
        )


def check_batch(
    batch: Sequence[StoredEvent], expected: ExpectedVersion | None
) -> dict[str, tuple[int, int]]:
    """Check a batch of events on its own, before any storage is asked.

    Returns each stream's first and last version in the batch.

    Raises:
        TypeError: an item is not a :class:`StoredEvent`.
        DuplicateEventError: the same ``event_id`` appears twice.
        InvalidEventError: a stream's versions are not consecutive, or do not start
            right after its ``expected_version``; or a text field holds something
            UTF-8 cannot encode (a lone surrogate), which no database can store, or a
            NUL character, which PostgreSQL cannot store, or is longer than the
            store's column (:data:`EVENT_ID_LENGTH`, :data:`TEXT_LENGTH`); or a
            version is above :data:`MAX_VERSION`; or ``occurred_at`` (changed without
            validation) is naive or out of range in UTC; or ``expected_version`` is
            not an int >= 0 or a mapping of aggregate ids to such ints. All are
            refused on every backend, so that every adapter behaves the same.
    """
    _check_expected_version(expected)
    streams: dict[str, tuple[int, int]] = {}
    seen_ids: set[str] = set()
    for event in batch:
        if not isinstance(event, StoredEvent):
            raise TypeError(f"append takes StoredEvent objects, got {type(event).__name__}")
        if event.event_id in seen_ids:
            raise DuplicateEventError([event.event_id], aggregate_id=event.aggregate_id)
        seen_ids.add(event.event_id)
        fields = event.__dict__
        for name, length in _TEXT_FIELDS:
            value = fields[name]
            if value is not None and (
                len(value) > length or not value.isascii() or "\x00" in value
            ):
                _check_text(event, name, value, length)
        at = fields["occurred_at"]
        if not isinstance(at, datetime) or at.tzinfo is not UTC:
            _check_occurred_at(event, at)
        if event.version > MAX_VERSION or event.schema_version > MAX_VERSION:
            name = "version" if event.version > MAX_VERSION else "schema_version"
            raise InvalidEventError(
                f"{name} of event {event.event_id!r} is {getattr(event, name)}; "
                f"the store keeps at most {MAX_VERSION}"
            )
        span = streams.get(event.aggregate_id)
        if span is None:
            streams[event.aggregate_id] = (event.version, event.version)
        elif event.version != span[1] + 1:
            raise InvalidEventError(
                f"stream {event.aggregate_id!r}: version {event.version} follows version "
                f"{span[1]} in the batch; a stream's versions must be consecutive"
            )
        else:
            streams[event.aggregate_id] = (span[0], event.version)
    if expected is not None:
        for aggregate_id, (first, _) in streams.items():
            want = expected if isinstance(expected, int) else expected.get(aggregate_id)
            if want is not None and first != want + 1:
                raise InvalidEventError(
                    f"stream {aggregate_id!r}: expected version {want} means the batch must "
                    f"start at version {want + 1}, it starts at {first}"
                )
    return streams


def _check_occurred_at(event: StoredEvent, value: object) -> None:
    """Refuse an ``occurred_at`` that is not an instant the stores can keep in UTC.

    Validation makes it aware UTC; only an event built without it (``model_copy(update=)``,
    ``model_construct``) can hold anything else. Another offset is accepted (the stores
    convert it), a naive value or one beyond ``datetime``'s range in UTC is not.
    """
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidEventError(
            f"occurred_at of event {event.event_id[:EVENT_ID_LENGTH]!r} must be an aware "
            f"datetime, got {value!r}"
        )
    try:
        value.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidEventError(
            f"occurred_at of event {event.event_id[:EVENT_ID_LENGTH]!r} ({value.isoformat()}) "
            "is out of range in UTC"
        ) from exc


def _check_expected_version(expected: object) -> None:
    if expected is None:
        return
    values = expected.values() if isinstance(expected, Mapping) else [expected]
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidEventError(
                "expected_version must be an int >= 0 (0: no stream yet) or a mapping of "
                f"aggregate id to such an int, got {expected!r}"
            )


def check_read_argument(name: str, value: object, *, minimum: int) -> int:
    """Check a position, limit or batch size given to a read; return it.

    Raises:
        ValueError: ``value`` is not an int (a bool is not), or is below ``minimum``
            or above what a 64-bit position can hold.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= _MAX_READ:
        raise ValueError(f"{name} must be an int from {minimum} to {_MAX_READ}, got {value!r}")
    return value
