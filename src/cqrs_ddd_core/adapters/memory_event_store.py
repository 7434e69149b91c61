"""An in-memory event store with the semantics of the SQL one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC
from itertools import islice
from typing import Any

from cqrs_ddd_core.exceptions import DuplicateEventError, OptimisticConcurrencyError
from cqrs_ddd_core.json import check_no_nul, dumps, loads
from cqrs_ddd_core.ports.event_store import (
    ExpectedVersion,
    IEventStore,
    StoredEvent,
    check_batch,
    check_read_argument,
)
from cqrs_ddd_core.ports.predicate import Predicate

__all__ = ["InMemoryEventStore"]


class InMemoryEventStore(IEventStore):
    """Events in a list, for tests of application code.

    Appends are checked exactly as the SQL store checks them (stream versions,
    ``expected_version``, duplicate event ids; a failing batch stores nothing) and
    take effect at once: there is no transaction to commit. ``specification=`` takes
    anything with ``is_satisfied_by`` (a ``cqrs_ddd_specifications`` specification).
    """

    def __init__(self) -> None:
        self._events: list[StoredEvent] = []
        self._streams: dict[str, list[StoredEvent]] = {}
        self._ids: set[str] = set()
        self._keys: set[tuple[str, int]] = set()
        # Payload and metadata as stored, JSON text, by event id: every read decodes
        # them again, so what a caller does to the values it read is its own, as it
        # is with the SQL store.
        self._json: dict[str, tuple[str, str]] = {}
        self._lock = asyncio.Lock()

    async def append(
        self,
        event: StoredEvent,
        *,
        expected_version: ExpectedVersion | None = None,
        uow: Any = None,
    ) -> StoredEvent:
        """Append one event; return it with its position."""
        return (await self.append_batch([event], expected_version=expected_version))[0]

    async def append_batch(
        self,
        events: Sequence[StoredEvent],
        *,
        expected_version: ExpectedVersion | None = None,
        uow: Any = None,
    ) -> list[StoredEvent]:
        """Append events atomically; return them with their positions."""
        batch = list(events)
        if not batch:
            return []
        streams = check_batch(batch, expected_version)
        # Stored as the SQL stores store them: JSON, read back as JSON values.
        encoded = [
            (
                _stored_json(e.payload, what=f"payload of event {e.event_id!r}"),
                _stored_json(e.metadata, what=f"metadata of event {e.event_id!r}"),
            )
            for e in batch
        ]
        async with self._lock:
            for aggregate_id in streams:
                stream = self._streams.get(aggregate_id, [])
                actual = max((e.version for e in stream), default=0)
                want = (
                    expected_version
                    if isinstance(expected_version, int)
                    else (expected_version or {}).get(aggregate_id)
                )
                if want is not None and actual != want:
                    raise OptimisticConcurrencyError(
                        f"stream {aggregate_id!r} is at version {actual}, expected {want}",
                        aggregate_id=aggregate_id,
                        expected_version=want,
                        actual_version=actual,
                    )
            # In the SQL store's order: expected versions, then ids, then versions.
            duplicates = [e.event_id for e in batch if e.event_id in self._ids]
            if duplicates:
                raise DuplicateEventError(duplicates, aggregate_id=batch[0].aggregate_id)
            for event in batch:
                if (event.aggregate_id, event.version) in self._keys:
                    stream = self._streams[event.aggregate_id]
                    raise OptimisticConcurrencyError(
                        f"stream {event.aggregate_id!r} already has version {event.version} "
                        f"(it is at version {max(e.version for e in stream)})",
                        aggregate_id=event.aggregate_id,
                        expected_version=event.version - 1,
                        actual_version=max(e.version for e in stream),
                    )
            appended = []
            for event, (payload, metadata) in zip(batch, encoded, strict=True):
                position = len(self._events) + 1
                copy = StoredEvent.from_storage(
                    {
                        **event.__dict__,
                        "payload": loads(payload),
                        "metadata": loads(metadata),
                        # As the SQL stores read it back: in UTC (it holds another
                        # offset only if it was set without validation).
                        "occurred_at": event.occurred_at.astimezone(UTC),
                        "position": position,
                    }
                )
                self._events.append(copy)
                self._streams.setdefault(event.aggregate_id, []).append(copy)
                self._ids.add(event.event_id)
                self._json[event.event_id] = (payload, metadata)
                self._keys.add((event.aggregate_id, event.version))
                # As the SQL store returns it: the event given, with its position.
                appended.append(StoredEvent.from_storage({**event.__dict__, "position": position}))
            return appended

    def _read(self, events: list[StoredEvent], spec: Predicate | None) -> list[StoredEvent]:
        """The events that satisfy ``spec``, as a read returns them: with fresh values."""
        chosen = events if spec is None else [e for e in events if spec.is_satisfied_by(e)]
        return [self._fresh(e) for e in chosen]

    def _fresh(self, event: StoredEvent) -> StoredEvent:
        payload, metadata = self._json[event.event_id]
        return StoredEvent.from_storage(
            {**event.__dict__, "payload": loads(payload), "metadata": loads(metadata)}
        )

    async def get_events(
        self,
        aggregate_id: str,
        after_version: int = 0,
        *,
        specification: Predicate | None = None,
        uow: Any = None,
    ) -> list[StoredEvent]:
        """Return the stream after ``after_version``, in version order."""
        check_read_argument("after_version", after_version, minimum=0)
        stream = [e for e in self._streams.get(aggregate_id, []) if e.version > after_version]
        return self._read(sorted(stream, key=lambda e: e.version), specification)

    async def get_by_aggregate(
        self,
        aggregate_id: str,
        aggregate_type: str | None = None,
        *,
        specification: Predicate | None = None,
        uow: Any = None,
    ) -> list[StoredEvent]:
        """Return every event of an aggregate (optionally of one type), in version order."""
        events = await self.get_events(aggregate_id, specification=specification)
        if aggregate_type is not None:
            events = [e for e in events if e.aggregate_type == aggregate_type]
        return events

    async def get_all(
        self, *, specification: Predicate | None = None, uow: Any = None
    ) -> list[StoredEvent]:
        """Return every event in global order."""
        return self._read(self._events, specification)

    async def get_events_after(
        self,
        position: int,
        limit: int = 1000,
        *,
        specification: Predicate | None = None,
        uow: Any = None,
    ) -> list[StoredEvent]:
        """Return up to ``limit`` events after ``position``, in global order."""
        check_read_argument("limit", limit, minimum=1)
        check_read_argument("position", position, minimum=0)
        tail: Iterator[StoredEvent] = islice(self._events, position, None)
        if specification is not None:
            tail = (e for e in tail if specification.is_satisfied_by(e))
        return [self._fresh(e) for e in islice(tail, limit)]

    async def get_events_from_position(
        self,
        position: int = 0,
        batch_size: int = 1000,
        *,
        specification: Predicate | None = None,
        uow: Any = None,
    ) -> AsyncIterator[StoredEvent]:
        """Return an async iterator over the events after ``position``, page by page."""
        check_read_argument("batch_size", batch_size, minimum=1)
        check_read_argument("position", position, minimum=0)

        async def pages() -> AsyncIterator[StoredEvent]:
            cursor = position
            while True:
                page = await self.get_events_after(cursor, batch_size, specification=specification)
                for event in page:
                    yield event
                if len(page) < batch_size:
                    return
                cursor = page[-1].position or 0

        return pages()

    async def get_latest_position(self, *, uow: Any = None) -> int:
        """Return the highest position (0 for an empty store)."""
        return len(self._events)


def _stored_json(value: Any, *, what: str) -> str:
    """What the SQL stores keep of a JSON value, its text, refused as they refuse it."""
    encoded = dumps(value, what=what)
    check_no_nul(encoded, what=what)
    return encoded
