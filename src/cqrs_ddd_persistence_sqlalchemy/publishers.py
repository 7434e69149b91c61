"""Publishers the relay can use by name: ``console`` (prints) and ``rabbitmq``."""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any, TextIO

from cqrs_ddd_core.json import to_json_value
from cqrs_ddd_core.ports.outbox import BatchPublisher, MessagePublisher, OutboxMessage

__all__ = ["ConsolePublisher", "load_publisher"]


class ConsolePublisher:
    """Writes each message as one JSON line to a stream (standard output by default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    async def publish(self, message: OutboxMessage) -> None:
        """Print the message."""
        line = json.dumps(
            {
                "message_id": message.message_id,
                "event_type": message.event_type,
                # As stored: pydantic's JSON values (a NaN is null, as in the outbox).
                "payload": to_json_value(message.payload, what="payload"),
                "metadata": to_json_value(message.metadata, what="metadata"),
                "created_at": message.created_at.isoformat(),
            },
            sort_keys=True,
        )
        stream = self.stream or sys.stdout
        stream.write(line + "\n")
        stream.flush()


_BY_NAME = {
    "console": "cqrs_ddd_persistence_sqlalchemy.publishers:ConsolePublisher",
    "rabbitmq": "cqrs_ddd_persistence_sqlalchemy.rabbitmq:RabbitMQPublisher.from_environment",
}


def load_publisher(spec: str) -> MessagePublisher | BatchPublisher:
    """Load a publisher from ``module:attribute`` (or a name: ``console``, ``rabbitmq``).

    The attribute may be a publisher, or a class or function that makes one when
    called without arguments.

    Raises:
        ValueError: ``spec`` is not ``module:attribute`` or names no publisher.
    """
    target = _BY_NAME.get(spec, spec)
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"publisher must be 'module:attribute' or one of {sorted(_BY_NAME)}")
    obj: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    # A class (whose publish is a plain function) or a factory: make the publisher.
    if isinstance(obj, type) or (
        callable(obj) and not isinstance(obj, MessagePublisher | BatchPublisher)
    ):
        obj = obj()
    if not isinstance(obj, MessagePublisher | BatchPublisher):
        raise ValueError(f"{spec} is not a publisher (no async publish or publish_batch)")
    return obj
