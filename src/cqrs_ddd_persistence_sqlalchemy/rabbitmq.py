"""A RabbitMQ publisher for the outbox relay, built on aio-pika with publisher confirms.

A message counts as published only once the broker has confirmed it (``basic.ack``).
Everything else is that message's error outcome, which the relay records so the message
is retried with backoff: a ``basic.nack``, a message returned as unroutable (published
``mandatory``, and no queue is bound for its routing key), no confirm within
``confirm_timeout``, or a connection that is down or drops before the confirm arrives.
A confirm lost with the connection does not mean the broker dropped the message, so a
retry can deliver it twice: delivery is at-least-once, and consumers deduplicate by the
AMQP ``message_id``.

Installed with the ``rabbitmq`` extra (``aio-pika``). The exceptions this module adds::

    CqrsDddError
    └── RabbitMQPublishError            the broker did not take a message
        ├── MessageNackedError          it answered basic.nack
        ├── UnroutableMessageError      it returned the message: no queue for its routing key
        └── ConfirmTimeoutError         (also TimeoutError) no answer within confirm_timeout

Connection failures are reported as they come: a ``ConnectionError`` while the robust
connection is reconnecting (publishing does not wait for it), and otherwise aio-pika's own
errors unchanged, such as ``aiormq.exceptions.AMQPConnectionError`` (also a
``ConnectionError``) or ``ChannelInvalidStateError`` for a channel that closed mid-batch.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Self

try:
    import aio_pika
    import aiormq.exceptions
    from aio_pika.abc import AbstractExchange, AbstractRobustConnection, HeadersType
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "RabbitMQPublisher needs aio-pika: pip install 'cqrs-ddd-persistence-sqlalchemy[rabbitmq]'"
    ) from exc

from cqrs_ddd_core.exceptions import CqrsDddError
from cqrs_ddd_core.json import dumps
from cqrs_ddd_core.ports.outbox import OutboxMessage

__all__ = [
    "DEFAULT_EXCHANGE",
    "DEFAULT_URL",
    "EXCHANGE_ENV",
    "URL_ENV",
    "ConfirmTimeoutError",
    "MessageNackedError",
    "RabbitMQPublishError",
    "RabbitMQPublisher",
    "UnroutableMessageError",
]

#: Environment variable :meth:`RabbitMQPublisher.from_environment` reads the URL from.
URL_ENV = "CQRS_DDD_RABBITMQ_URL"
#: Environment variable :meth:`RabbitMQPublisher.from_environment` reads the exchange from.
EXCHANGE_ENV = "CQRS_DDD_RABBITMQ_EXCHANGE"
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_EXCHANGE = "domain-events"


class RabbitMQPublishError(CqrsDddError):
    """The broker did not take a message.

    Attributes:
        message_id: the AMQP ``message_id`` of the message.
        routing_key: the routing key it was published with.
    """

    def __init__(self, text: str, *, message_id: str, routing_key: str) -> None:
        super().__init__(text)
        self.message_id = message_id
        self.routing_key = routing_key


class MessageNackedError(RabbitMQPublishError):
    """The broker answered ``basic.nack`` (or ``basic.reject``): it did not store the message."""


class UnroutableMessageError(RabbitMQPublishError):
    """The broker returned the message: no queue is bound for its routing key.

    Attributes:
        reply_code: the AMQP reply code of ``basic.return`` (312, ``NO_ROUTE``).
        reply_text: its reply text.
    """

    def __init__(
        self, text: str, *, message_id: str, routing_key: str, reply_code: int, reply_text: str
    ) -> None:
        super().__init__(text, message_id=message_id, routing_key=routing_key)
        self.reply_code = reply_code
        self.reply_text = reply_text


class ConfirmTimeoutError(RabbitMQPublishError, TimeoutError):
    """The broker neither confirmed nor rejected the message within ``confirm_timeout``."""


def _event_type(message: OutboxMessage) -> str:
    return message.event_type


def _message_id(message: OutboxMessage) -> str:
    return message.message_id


class RabbitMQPublisher:
    """Publishes outbox messages to a RabbitMQ exchange and waits for the broker's confirms.

    Each message becomes one persistent AMQP message: the body is the JSON payload
    (UTF-8, ``content_type`` ``application/json``), ``message_id`` and the routing key
    come from the two callables, and the headers carry ``event_type``, ``created_at``
    (ISO 8601) and ``metadata``. The exchange is declared durable, of type topic, when the
    connection is opened; the empty name means the default exchange, which routes by
    queue name and is not declared.

    The connection is opened on first use with ``aio_pika.connect_robust``, which
    reconnects in the background after a failure (``?reconnect_interval=`` in the URL
    sets how often it tries, in seconds). While it is down, publishing fails fast and
    the relay retries later. Use ``async with publisher:`` or call :meth:`close`.

    Args:
        url: the AMQP URL of the broker.
        exchange: the exchange to publish to.
        routing_key: gives a message's routing key (default: its event type).
        message_id: gives a message's AMQP ``message_id`` (default: its outbox id). It
            must be unique among the messages in flight: the client matches a returned
            message to its publish by this id.
        mandatory: have the broker return messages no queue is bound for, which makes
            them errors; without it the broker confirms and drops them.
        confirm_timeout: seconds to wait for a message's confirm; keep it well below the
            relay's lease, or another relay may claim the batch meanwhile.
        connect_timeout: seconds to wait for the connection, channel and exchange.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        exchange: str = DEFAULT_EXCHANGE,
        routing_key: Callable[[OutboxMessage], str] = _event_type,
        message_id: Callable[[OutboxMessage], str] = _message_id,
        mandatory: bool = True,
        confirm_timeout: float = 10.0,
        connect_timeout: float = 10.0,
    ) -> None:
        if confirm_timeout <= 0 or connect_timeout <= 0:
            raise ValueError("confirm_timeout and connect_timeout must be positive")
        self.url = url
        self.exchange_name = exchange
        self.routing_key = routing_key
        self.message_id = message_id
        self.mandatory = mandatory
        self.confirm_timeout = confirm_timeout
        self.connect_timeout = connect_timeout
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._opening = asyncio.Lock()
        self._closed = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Self:
        """A publisher configured by ``CQRS_DDD_RABBITMQ_URL`` and ``CQRS_DDD_RABBITMQ_EXCHANGE``.

        Unset variables take the defaults: ``amqp://guest:guest@127.0.0.1:5672/`` and
        ``domain-events``. ``environ`` defaults to ``os.environ``.
        """
        env = os.environ if environ is None else environ
        return cls(env.get(URL_ENV, DEFAULT_URL), exchange=env.get(EXCHANGE_ENV, DEFAULT_EXCHANGE))

    def __repr__(self) -> str:
        # The URL may hold a password.
        return f"<{type(self).__name__} exchange={self.exchange_name!r} closed={self._closed}>"

    # -- publishing --------------------------------------------------------------

    async def publish(self, message: OutboxMessage) -> None:
        """Publish ``message``; return once the broker has confirmed it.

        Raises:
            RabbitMQPublishError: the broker nacked or returned it, or did not answer in
                time (see the module docstring for the subclasses).
            ConnectionError: the broker cannot be reached, or the connection failed
                (``aiormq.exceptions.AMQPConnectionError`` is one).
            RuntimeError: the publisher is closed.
        """
        self._check_usable()
        exchange = await self._open_exchange()
        await self._publish_to(exchange, message)

    async def publish_batch(self, messages: Sequence[OutboxMessage]) -> list[BaseException | None]:
        """Publish ``messages`` concurrently; return each one's outcome, in order.

        An outcome is ``None`` once the broker confirmed the message, otherwise the
        exception :meth:`publish` would have raised for it. If the connection cannot be
        opened, that error is every message's outcome.

        Raises:
            RuntimeError: the publisher is closed.
        """
        self._check_usable()
        if not messages:
            return []
        try:
            exchange = await self._open_exchange()
        except Exception as exc:  # noqa: BLE001 - the relay retries every message later
            return [exc] * len(messages)
        # All publishes go out on the one channel at once and their confirms are awaited
        # together, so a batch costs about one round trip. This cannot reorder messages
        # that must stay in order: a relay's batch holds at most one message per ordering
        # key (the oldest due), so there is never a later one racing it.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._outcome(exchange, m)) for m in messages]
        return [task.result() for task in tasks]

    async def _outcome(
        self, exchange: AbstractExchange, message: OutboxMessage
    ) -> BaseException | None:
        try:
            await self._publish_to(exchange, message)
        except Exception as exc:  # noqa: BLE001 - the same errors the relay records for publish
            return exc
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this task (the batch) was cancelled
            # Nobody cancelled this task: the client cancelled the confirm it awaited
            # because the channel closed. That is this message's failure, not ours.
            return ConnectionError(f"the channel closed before the broker confirmed: {exc!r}")
        return None

    async def _publish_to(self, exchange: AbstractExchange, message: OutboxMessage) -> None:
        routing_key = self.routing_key(message)
        message_id = self.message_id(message)
        headers: HeadersType = {
            "event_type": message.event_type,
            "created_at": message.created_at.isoformat(),
            "metadata": message.metadata,
        }
        amqp_message = aio_pika.Message(
            dumps(message.payload, what=f"payload of message {message_id!r}").encode(),
            message_id=message_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            timestamp=message.created_at,
            type=message.event_type,
            headers=headers,
        )
        try:
            # The timeout covers the whole publish, not only the wait for the confirm: a
            # robust channel first waits for its connection to be back.
            async with asyncio.timeout(self.confirm_timeout):
                await exchange.publish(amqp_message, routing_key, mandatory=self.mandatory)
        except aiormq.exceptions.PublishError as exc:  # before DeliveryError: a subclass
            frame = exc.frame
            code = getattr(frame, "reply_code", 0)
            text = getattr(frame, "reply_text", "") or "returned"
            raise UnroutableMessageError(
                f"RabbitMQ returned message {message_id!r} as {text} ({code}): no queue is "
                f"bound to exchange {self.exchange_name!r} for routing key {routing_key!r}",
                message_id=message_id,
                routing_key=routing_key,
                reply_code=code,
                reply_text=text,
            ) from exc
        except aiormq.exceptions.DeliveryError as exc:
            raise MessageNackedError(
                f"RabbitMQ nacked message {message_id!r} (routing key {routing_key!r}) "
                f"on exchange {self.exchange_name!r}",
                message_id=message_id,
                routing_key=routing_key,
            ) from exc
        except TimeoutError as exc:
            raise ConfirmTimeoutError(
                f"RabbitMQ did not confirm message {message_id!r} (routing key "
                f"{routing_key!r}) within {self.confirm_timeout:g}s",
                message_id=message_id,
                routing_key=routing_key,
            ) from exc

    # -- lifecycle ---------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise RuntimeError("Cannot publish with a closed RabbitMQPublisher; create a new one.")

    async def _open_exchange(self) -> AbstractExchange:
        exchange, connection = self._exchange, self._connection
        if exchange is not None and connection is not None:
            if not connection.connected.is_set():
                # Fail now rather than wait: the relay retries with backoff, and its
                # claims' lease keeps running while a publish waits.
                raise ConnectionError(
                    "the connection to RabbitMQ is down; it is reconnecting in the background"
                )
            return exchange
        async with self._opening:
            if self._exchange is None:
                self._connection, self._exchange = await self._open()
            exchange = self._exchange
            if self._closed:  # close() ran while this task was connecting
                await self._discard()
                raise RuntimeError("The RabbitMQPublisher was closed while connecting.")
        return exchange

    async def _open(self) -> tuple[AbstractRobustConnection, AbstractExchange]:
        connection = await aio_pika.connect_robust(self.url, timeout=self.connect_timeout)
        try:
            async with asyncio.timeout(self.connect_timeout):
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                if not self.exchange_name:
                    return connection, channel.default_exchange
                exchange = await channel.declare_exchange(
                    self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                )
        except BaseException:
            await asyncio.shield(connection.close())
            raise
        return connection, exchange

    async def _discard(self) -> None:
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None:
            await connection.close()

    async def close(self) -> None:
        """Close the connection; the publisher cannot be used afterwards. Safe to repeat."""
        self._closed = True
        await asyncio.shield(self._discard())

    async def __aenter__(self) -> Self:
        if self._closed:
            raise RuntimeError("Cannot reopen a closed RabbitMQPublisher; create a new one.")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
