"""Exceptions shared by every package of the distribution.

The tree::

    CqrsDddError
    ├── DomainError                       a domain object was used in a way it forbids
    └── PersistenceError                  anything raised by a repository, unit of work or store
        ├── OptimisticConcurrencyError    a stale version or an event stream that moved on
        │   └── DuplicateEventError       an event with that id is already stored
        ├── InvalidEventError             (also ValueError) events that cannot be appended
        ├── ClaimLostError                an outbox message is claimed by another relay
        ├── EntityNotFoundError           (also LookupError) no entity with that id
        ├── UnitOfWorkError               (also RuntimeError) the unit of work was misused
        ├── PostCommitError               the commit succeeded, but callbacks after it failed
        └── SerializationError            (also ValueError) a value cannot be stored as JSON

Adapters raise these same classes, so code written against the in-memory adapters
handles the SQL ones unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ClaimLostError",
    "CqrsDddError",
    "DomainError",
    "DuplicateEventError",
    "EntityNotFoundError",
    "InvalidEventError",
    "OptimisticConcurrencyError",
    "PersistenceError",
    "PostCommitError",
    "SerializationError",
    "UnitOfWorkError",
]


class CqrsDddError(Exception):
    """Base class of every exception raised by this distribution."""


class DomainError(CqrsDddError):
    """A domain object was used in a way it does not allow."""


class PersistenceError(CqrsDddError):
    """Base class of the errors raised by persistence adapters."""


class OptimisticConcurrencyError(PersistenceError):
    """What was written was based on a version that is no longer current.

    Attributes:
        aggregate_id: the id of the aggregate or event stream.
        expected_version: the version the writer based its change on.
        actual_version: the version found in storage, when known.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        aggregate_id: Any = None,
        expected_version: int | None = None,
        actual_version: int | None = None,
    ) -> None:
        self.aggregate_id = aggregate_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        if message is None:
            message = (
                f"{aggregate_id!r} was modified concurrently: expected version "
                f"{expected_version}, found {actual_version}"
            )
        super().__init__(message)


_SHOWN_IDS = 10  # event ids named in a DuplicateEventError's message


class DuplicateEventError(OptimisticConcurrencyError):
    """An event with the same ``event_id`` is already stored (never silently dropped).

    Attributes:
        event_ids: the ids that already exist.
    """

    def __init__(self, event_ids: Sequence[str], *, aggregate_id: Any = None) -> None:
        self.event_ids = tuple(event_ids)
        shown = ", ".join(map(repr, self.event_ids[:_SHOWN_IDS]))
        more = len(self.event_ids) - _SHOWN_IDS
        super().__init__(
            f"events already stored: {shown}" + (f" and {more} more" if more > 0 else ""),
            aggregate_id=aggregate_id,
        )


class InvalidEventError(PersistenceError, ValueError):
    """Events that cannot be appended as given (e.g. a stream's versions out of order)."""


class ClaimLostError(PersistenceError):
    """Outbox messages are held by another relay's live claim; nothing was written for them.

    This relay's lease ran out and another relay claimed the messages, which will
    publish them again (delivery is at-least-once).

    Attributes:
        message_ids: the messages this relay could not write back.
    """

    def __init__(self, message_ids: Sequence[str]) -> None:
        self.message_ids = tuple(message_ids)
        super().__init__(
            "claimed by another relay (this relay's lease ran out): "
            + ", ".join(map(repr, self.message_ids))
        )


class EntityNotFoundError(PersistenceError, LookupError):
    """No entity with the given id exists."""

    def __init__(self, message: str | None = None, *, entity_id: Any = None) -> None:
        self.entity_id = entity_id
        super().__init__(message or f"no entity with id {entity_id!r}")


class UnitOfWorkError(PersistenceError, RuntimeError):
    """The unit of work was used outside its lifecycle (not entered, closed, re-entered)."""


class PostCommitError(PersistenceError):
    """The transaction was committed, but post-commit hooks or callbacks failed.

    Every hook and callback ran; ``errors`` holds what each failing one raised, and
    the first of them is also ``__cause__``. The data is durable: do not retry the
    command because of this error.
    """

    def __init__(self, errors: Sequence[BaseException]) -> None:
        self.errors: tuple[BaseException, ...] = tuple(errors)
        details = "; ".join(f"{type(e).__name__}: {e}" for e in self.errors)
        super().__init__(
            f"the commit succeeded, but {len(self.errors)} post-commit "
            f"callback(s) failed: {details}"
        )


class SerializationError(PersistenceError, ValueError):
    """A value cannot be encoded as JSON for storage."""
