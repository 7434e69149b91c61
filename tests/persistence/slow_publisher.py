"""A publisher for relay-process tests: appends each message id to a file, slowly.

Configured through the environment: ``SLOW_PUBLISHER_FILE`` (where to append) and
``SLOW_PUBLISHER_DELAY`` (seconds per message).
"""

from __future__ import annotations

import asyncio
import os

from cqrs_ddd_core.ports.outbox import OutboxMessage


class SlowFilePublisher:
    def __init__(self) -> None:
        self.path = os.environ["SLOW_PUBLISHER_FILE"]
        self.delay = float(os.environ.get("SLOW_PUBLISHER_DELAY", "0"))

    async def publish(self, message: OutboxMessage) -> None:
        await asyncio.sleep(self.delay)
        await asyncio.to_thread(self._append, message.message_id)

    def _append(self, message_id: str) -> None:
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(message_id + "\n")
            out.flush()
            os.fsync(out.fileno())
