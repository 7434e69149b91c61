"""The outbox relay: claims due messages, publishes them, records the outcome.

Each round is two steps, so no database transaction stays open while a broker is
slow:

1. in one short transaction, mark the previous batch published or failed and claim
   the next batch, then commit (one commit a round while batches are full; a partial
   batch is recorded at once, so it is not left waiting for the next poll);
2. publish the claimed messages, outside any transaction.

A relay that dies between 1 and 3 leaves claims that end with their lease; another
relay then publishes those messages again. That is the only way a message is
delivered twice, and only the dead relay's batch can be. Between rounds the relay
waits with a growing poll interval, and on PostgreSQL it also LISTENs for the
notification that the outbox table's trigger sends when messages are committed, so
new messages are picked up within milliseconds.

A wake-up (a notification or :meth:`OutboxRelay.wake`) is followed by a short,
jittered *linger* before the claim: commits that arrive together are published in one
batch instead of one round each, and when several relays hear the same notification
the first to claim takes the messages while the others find nothing, instead of all
of them racing for every commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from cqrs_ddd_core.exceptions import ClaimLostError
from cqrs_ddd_core.ports.outbox import (
    BatchPublisher,
    MessagePublisher,
    OutboxMessage,
    OutboxStats,
    OutboxStatus,
    RetryPolicy,
)
from cqrs_ddd_persistence_sqlalchemy.core.models import OUTBOX_CHANNEL
from cqrs_ddd_persistence_sqlalchemy.core.outbox import SQLAlchemyOutboxStorage

__all__ = ["OutboxRelay", "RelayCounters"]

logger = logging.getLogger("cqrs_ddd_persistence_sqlalchemy.relay")


_ASYNC_COMMIT = text("SET LOCAL synchronous_commit TO off")


def _transient(exc: BaseException) -> bool:
    """Whether a database error is worth waiting out (the connection or server went away)."""
    if isinstance(exc, OSError | InterfaceError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    # SQLite's "database is locked" / "busy" pass; "no such table" is a deployment error.
    text = str(exc.orig).lower()
    return isinstance(exc, OperationalError) and ("locked" in text or "busy" in text)


# A published batch waiting to be recorded: its messages and their outcomes.
_Batch = tuple[list[OutboxMessage], list[BaseException | None]]


@dataclass(slots=True)
class RelayCounters:
    """What a relay has done since it started."""

    published: int = 0
    failed: int = 0
    dead_lettered: int = 0
    claims_lost: int = 0
    rounds: int = 0
    database_errors: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


class OutboxRelay:
    """Moves outbox messages to a broker through a publisher.

    Args:
        engine: the database the outbox lives in.
        publisher: a :class:`MessagePublisher` (``async publish(message)``) or a
            :class:`BatchPublisher` (``async publish_batch(messages)`` returning one
            outcome per message: ``None`` or the exception).
        batch_size: messages claimed per round.
        lease: how long a claim lasts; longer than a batch takes to publish.
        retry: backoff and dead-lettering of failed messages.
        poll_interval: the first wait when the outbox is empty; it doubles up to
            ``max_poll_interval`` while nothing comes.
        listen: on PostgreSQL, also wake up on the outbox trigger's NOTIFY.
        linger: seconds to wait after a wake-up before claiming (jittered up to
            twice that), so that a burst of commits makes one batch; 0 claims at once.
        durable_commits: on PostgreSQL the relay's own transactions (claims and
            outcomes) commit with ``synchronous_commit = off`` unless this is true: a
            server crash may then lose the last fraction of a second of outcomes, and
            those messages are published again (delivery is at-least-once anyway),
            while the relay no longer waits for, or competes with, WAL flushes.
        owner: the relay's claim identity (unique by default).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        publisher: MessagePublisher | BatchPublisher,
        *,
        batch_size: int = 100,
        lease: timedelta = timedelta(seconds=30),
        retry: RetryPolicy | None = None,
        poll_interval: float = 0.2,
        max_poll_interval: float = 5.0,
        listen: bool = True,
        linger: float = 0.005,
        durable_commits: bool = False,
        owner: str | None = None,
    ) -> None:
        if not isinstance(publisher, MessagePublisher | BatchPublisher):
            raise TypeError(
                "publisher must have async publish(message) or publish_batch(messages), "
                f"got {type(publisher).__name__}"
            )
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not 0 < poll_interval <= max_poll_interval:
            raise ValueError("need 0 < poll_interval <= max_poll_interval")
        if not 0 <= linger < max_poll_interval:
            raise ValueError("need 0 <= linger < max_poll_interval")
        self.engine = engine
        self.publisher = publisher
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.listen = listen
        self.linger = linger
        self.durable_commits = durable_commits
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        probe = SQLAlchemyOutboxStorage(lease=lease, retry=retry, owner=owner)
        self.owner = probe.owner
        self._lease, self._retry = probe.lease, probe.retry
        self.counters = RelayCounters()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._running = False
        self._listener_lost = False

    def _storage(self, session: Any) -> SQLAlchemyOutboxStorage:
        return SQLAlchemyOutboxStorage(
            session, lease=self._lease, retry=self._retry, owner=self.owner
        )

    # -- one round -------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim, publish and record one batch; return how many messages it handled."""
        messages = await self._claim(None)
        if not messages:
            return 0
        outcomes = await self._publish_or_release(messages)
        await asyncio.shield(self._record(messages, outcomes))
        return len(messages)

    async def _claim(self, previous: _Batch | None) -> list[OutboxMessage]:
        """Record the previous batch's outcomes and claim the next batch, in one transaction.

        One commit a round instead of two: the write-back of one batch and the claim
        of the next share a transaction.
        """
        async with self._transaction() as session:
            storage = self._storage(session)
            if previous is not None:
                await self._write_outcomes(storage, *previous)
            messages = [] if self._stop.is_set() else await storage.get_pending(self.batch_size)
            await session.commit()
        return messages

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        """A session for one of the relay's own transactions (claims, outcomes, releases)."""
        async with self._sessions() as session:
            if not self.durable_commits and self.engine.dialect.name == "postgresql":
                # Losing this commit in a server crash only means publishing again
                # (at-least-once either way), so it need not wait for the WAL flush,
                # nor make the application's commits queue behind the relay's.
                await session.execute(_ASYNC_COMMIT)
            yield session

    async def _publish_or_release(
        self, messages: list[OutboxMessage]
    ) -> list[BaseException | None]:
        try:
            return await self._publish(messages)
        except BaseException:
            # Cancelled (or the publisher broke the protocol): give the claims back
            # so another relay need not wait for the lease.
            await asyncio.shield(self._release(messages))
            raise

    async def _publish(self, messages: list[OutboxMessage]) -> list[BaseException | None]:
        if isinstance(self.publisher, BatchPublisher):
            outcomes = list(await self.publisher.publish_batch(messages))
            if len(outcomes) != len(messages):
                raise TypeError(
                    f"publish_batch returned {len(outcomes)} outcomes for {len(messages)} messages"
                )
            return outcomes
        results: list[BaseException | None] = []
        for message in messages:
            try:
                await self.publisher.publish(message)
            except Exception as exc:  # noqa: BLE001 - any publisher error is an outcome
                results.append(exc)
            else:
                results.append(None)
        return results

    async def _record(
        self, messages: Sequence[OutboxMessage], outcomes: Sequence[BaseException | None]
    ) -> None:
        async with self._transaction() as session:
            await self._write_outcomes(self._storage(session), messages, outcomes)
            await session.commit()

    async def _write_outcomes(
        self,
        storage: SQLAlchemyOutboxStorage,
        messages: Sequence[OutboxMessage],
        outcomes: Sequence[BaseException | None],
    ) -> None:
        self.counters.rounds += 1
        published = [m for m, error in zip(messages, outcomes, strict=True) if error is None]
        if published:
            try:
                await storage.mark_published([m.message_id for m in published])
            except ClaimLostError as exc:
                self.counters.claims_lost += len(exc.message_ids)
                logger.warning("lease ended before publishing finished: %s", exc)
            for message in published:
                self.counters.published += 1
                by_type = self.counters.by_type
                by_type[message.event_type] = by_type.get(message.event_type, 0) + 1
        for message, error in zip(messages, outcomes, strict=True):
            if error is None:
                continue
            text = f"{type(error).__name__}: {error}"
            try:
                status = await storage.mark_failed(message.message_id, text)
            except ClaimLostError as exc:
                self.counters.claims_lost += 1
                logger.warning("lease ended before the failure was recorded: %s", exc)
                continue
            if status is OutboxStatus.DEAD:
                self.counters.dead_lettered += 1
                logger.error(
                    "message %s (%s) dead-lettered after %s",
                    message.message_id,
                    message.event_type,
                    text,
                )
            else:
                self.counters.failed += 1
                logger.warning("publishing %s failed, will retry: %s", message.message_id, text)

    async def _release(self, messages: Sequence[OutboxMessage]) -> None:
        async with self._transaction() as session:
            await self._storage(session).release([m.message_id for m in messages])
            await session.commit()

    # -- running -----------------------------------------------------------------

    async def run(self) -> None:
        """Relay until :meth:`stop` is called; the batch in flight is finished first."""
        if self._running:
            raise RuntimeError("this relay is already running")
        self._running = True
        self._stop.clear()
        listener: AsyncConnection | None = None
        delay = self.poll_interval
        failures = 0
        logger.info("relay %s started (batch size %d)", self.owner, self.batch_size)
        previous: _Batch | None = None
        try:
            while True:
                publishing = False
                try:
                    if listener is not None and self._listener_lost:
                        await asyncio.shield(self._stop_listening(listener, quiet=True))
                        listener = None
                    if listener is None and self._wants_listener():
                        listener = await self._start_listening()
                    # Cleared before claiming: a notification that arrives while this
                    # round runs is kept and cuts the next sleep short.
                    self._wake.clear()
                    messages = await asyncio.shield(self._claim(previous))
                    previous = None
                    failures = 0
                    if not messages:
                        if self._stop.is_set():
                            break
                        await self._sleep(delay)
                        delay = min(delay * 2, self.max_poll_interval)
                        continue
                    delay = self.poll_interval
                    publishing = True
                    previous = (messages, await self._publish_or_release(messages))
                    publishing = False
                    if len(messages) < self.batch_size and not self._stop.is_set():
                        # Not a full batch: record it now rather than with the next
                        # claim, which may be a poll interval away.
                        await asyncio.shield(self._record(*previous))
                        previous = None
                        await self._sleep(delay)
                except (DBAPIError, OSError) as exc:
                    if publishing or not _transient(exc):
                        raise  # the publisher's own errors are outcomes, or bugs
                    # The database went away (connection lost, server restarting):
                    # wait and go on. What was claimed and not recorded is recorded
                    # with the next claim, or published again once its lease ends.
                    failures += 1
                    self.counters.database_errors += 1
                    wait = min(self.poll_interval * 2**failures, self.max_poll_interval)
                    logger.error(
                        "relay %s: database error, retrying in %.2fs: %s", self.owner, wait, exc
                    )
                    if listener is not None:
                        await asyncio.shield(self._stop_listening(listener, quiet=True))
                        listener = None
                    if self._stop.is_set():
                        break
                    await self._sleep(wait)
        finally:
            try:
                if previous is not None:
                    await asyncio.shield(self._record(*previous))
            finally:
                self._running = False
                if listener is not None:
                    await asyncio.shield(self._stop_listening(listener, quiet=True))
                logger.info("relay %s stopped: %s", self.owner, self.counters)

    async def _sleep(self, delay: float) -> None:
        """Wait ``delay`` seconds, or less if woken (then linger) or stopped."""
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(self._stop.wait())]
        try:
            await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
        if self._wake.is_set() and self.linger and not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.linger * (1 + random.random()))

    def wake(self) -> None:
        """Make a waiting relay look for messages now."""
        self._wake.set()

    def stop(self) -> None:
        """Ask :meth:`run` to return after the batch in flight."""
        self._stop.set()

    async def stats(self) -> OutboxStats:
        """The outbox's pending depth, dead letters and oldest pending age."""
        async with self._sessions() as session:
            return await self._storage(session).stats()

    # -- LISTEN/NOTIFY -------------------------------------------------------------

    def _wants_listener(self) -> bool:
        return self.listen and self.engine.dialect.name == "postgresql"

    async def _start_listening(self) -> AsyncConnection:
        self._listener_lost = False
        connection = await self.engine.connect()
        driver: Any = None
        try:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.add_listener(OUTBOX_CHANNEL, self._notified)
            # A LISTEN connection that dies says nothing: notice it and listen again.
            driver.add_termination_listener(self._listener_terminated)
        except BaseException as exc:
            closed = driver is not None and driver.is_closed()
            await connection.invalidate()
            await connection.close()
            if closed and isinstance(exc, Exception):
                # The pool handed out a connection the server had closed: a blip.
                raise ConnectionError(f"the LISTEN connection was closed: {exc}") from exc
            raise
        return connection

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    def _listener_terminated(self, *_: Any) -> None:
        self._listener_lost = True
        self._wake.set()

    async def _stop_listening(self, connection: AsyncConnection, *, quiet: bool = False) -> None:
        # Discard the connection rather than return it to the pool with a listener
        # attached; closing it ends the LISTEN.
        try:
            await connection.invalidate()
            await connection.close()
        except (OperationalError, InterfaceError, OSError):
            if not quiet:
                raise
            logger.debug("relay %s: closing the LISTEN connection failed", self.owner)
