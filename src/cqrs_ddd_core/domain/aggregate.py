"""Aggregate roots: the consistency boundary that repositories load and save."""

from __future__ import annotations

import re
import typing
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, PrivateAttr

from cqrs_ddd_core.domain.events import DomainEvent
from cqrs_ddd_core.exceptions import DomainError

__all__ = ["AggregateRoot", "IdT", "saved_version", "set_version"]

IdT = TypeVar("IdT")
EventT = TypeVar("EventT", bound=DomainEvent)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


class AggregateRoot(BaseModel, Generic[IdT]):
    """Base class of aggregate roots: a pydantic model with an id and a version.

    ``version`` is read-only for domain code: it is 0 for an aggregate that was never
    saved, and repositories set it to the stored version after every save or load
    (the optimistic-concurrency token). Events recorded with :meth:`add_event` wait
    until :meth:`pull_domain_events` hands them out (for the outbox or event store).

    The version counts events: :meth:`add_event` numbers the events of a stream
    ``version + 1``, ``version + 2``, ..., and a save stores the version of the last
    event recorded since the previous save (one more than before when none was), so
    an aggregate kept as a row and as an event stream has the same version in both,
    whether its events are pulled before or after the save.

    Collection fields (``list``, ``set``, ``dict``) declared without a default start
    empty, so ``Customer(id="c1", name="John")`` is valid for a customer with
    ``addresses: list[Address]``: a new aggregate has no children yet.
    """

    id: IdT
    version: int = Field(default=0, ge=0, frozen=True)

    _domain_events: list[DomainEvent] = PrivateAttr(default_factory=list)
    # Events recorded since the last save or load, pulled or not.
    _recorded: int = PrivateAttr(default=0)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        changed = False
        for info in cls.model_fields.values():
            origin = typing.get_origin(info.annotation) or info.annotation
            if info.is_required() and origin in (list, set, dict):
                info.default_factory = origin
                changed = True
        if changed:
            cls.model_rebuild(force=True)

    def add_event(self, event: EventT) -> EventT:
        """Record a new domain event and return it, stamped with this aggregate.

        The event gets this aggregate's id and type when it has none, and the version
        it gives the stream: the current version plus the events recorded since the
        last save, plus one.
        """
        update: dict[str, Any] = {}
        if event.aggregate_id is None:
            update["aggregate_id"] = self.id
        if event.aggregate_type is None:
            update["aggregate_type"] = type(self).__name__
        if event.version is None:
            update["version"] = self.version + self._recorded + 1
        stamped = event.model_copy(update=update) if update else event
        self._domain_events.append(stamped)
        self._recorded += 1
        return stamped

    @property
    def domain_events(self) -> tuple[DomainEvent, ...]:
        """The events recorded and not yet pulled."""
        return tuple(self._domain_events)

    def pull_domain_events(self) -> list[DomainEvent]:
        """Return the recorded events and forget them."""
        events, self._domain_events = self._domain_events, []
        return events

    def apply(self, event: DomainEvent) -> None:
        """Replay a stored event onto this aggregate (event-sourced reconstitution).

        Calls the first handler found for the event class, named after it in snake
        case: ``on_order_created(event)``, ``apply_order_created(event)`` or
        ``when_order_created(event)`` for ``OrderCreated``. Without a handler, the
        event's own fields that this aggregate also declares are copied onto it
        (``OrderCreated(customer_id=..., total=...)`` sets ``customer_id`` and
        ``total``). Then ``version`` advances to the event's version, or by one when
        the event has none. Replayed events are not recorded again.

        Raises:
            DomainError: no handler exists and the event has no field to copy.
        """
        snake = _CAMEL.sub("_", type(event).__name__).lower()
        for prefix in ("on_", "apply_", "when_"):
            handler = getattr(self, prefix + snake, None)
            if callable(handler):
                handler(event)
                break
        else:
            own = set(DomainEvent.model_fields)
            shared = [
                name
                for name in type(event).model_fields
                if name not in own and name in type(self).model_fields and name != "id"
            ]
            if not shared:
                raise DomainError(
                    f"{type(self).__name__} cannot apply {type(event).__name__}: define "
                    f"on_{snake}(event), or give the event fields the aggregate declares"
                )
            for name in shared:
                setattr(self, name, getattr(event, name))
        set_version(self, event.version if event.version is not None else self.version + 1)


def set_version(aggregate: AggregateRoot[Any], version: int) -> None:
    """Set an aggregate's stored version. For persistence adapters, not domain code.

    The events recorded so far count as saved: the next event is ``version + 1``.
    """
    object.__setattr__(aggregate, "version", version)
    aggregate._recorded = 0


def saved_version(aggregate: AggregateRoot[Any]) -> int:
    """The version a save of ``aggregate`` stores: that of its last recorded event.

    ``version`` plus the events recorded since the last save, or plus one when there
    are none. For persistence adapters.
    """
    return aggregate.version + max(1, aggregate._recorded)
