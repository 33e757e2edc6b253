"""One RabbitMQ connection per process (aio-pika, robust), a durable topic exchange per namespace,
publisher confirms with mandatory routing, and a publish timeout so a dead broker fails fast."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractExchange,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    ExchangeType,
)

from shared.logging import get_logger

log = get_logger("broker")
# Raised by a publish on a connection or channel that just died; unroutable (PublishError) and
# nacked (DeliveryError) messages are not among them: those are the caller's to handle.
_CONNECTION_ERRORS = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    RuntimeError,
)


class BrokerUnavailable(Exception):
    """The broker cannot be reached now; the caller keeps its data and tries again later."""


@dataclass(frozen=True)
class Outgoing:
    """A message ready for the wire: body is the event envelope as JSON."""

    message_id: str
    routing_key: str
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None


@dataclass
class Topology:
    namespace: str

    @property
    def exchange(self) -> str:
        return f"{self.namespace}.events"

    def queue(self, service: str, consumer: str) -> str:
        return f"{self.namespace}.{service}.{consumer}"

    @staticmethod
    def retry_queue(queue: str, level: int) -> str:
        return f"{queue}.retry.{level}"

    @staticmethod
    def parking_queue(queue: str) -> str:
        return f"{queue}.parked"


class Broker:
    def __init__(self, *, url: str, namespace: str, publish_timeout: float = 5.0, name: str = "onex") -> None:
        self.url = url
        self.topology = Topology(namespace)
        self.publish_timeout = publish_timeout
        self.name = name
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._connected = asyncio.Event()
        self._connect_task: asyncio.Task[None] | None = None
        self._reopen_lock = asyncio.Lock()

    async def connect(self, *, timeout: float = 10.0) -> None:
        """Connect now (raises if the broker is not up within `timeout`)."""
        self._connection = await aio_pika.connect_robust(
            self.url, timeout=timeout, client_properties={"connection_name": self.name}
        )
        await self._open_publish_channel()
        self._connected.set()
        log.info("broker_connected", exchange=self.topology.exchange)

    async def _open_publish_channel(self) -> None:
        channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await channel.declare_exchange(self.topology.exchange, ExchangeType.TOPIC, durable=True)
        self._publish_channel = channel  # type: ignore[assignment]

    async def _usable_publish_channel(self) -> AbstractRobustChannel:
        """The publish channel, reopened if it died for good: aio-pika restores channels after a
        reconnect, but a channel whose restore failed mid-outage stays closed and would never publish."""
        if self._publish_channel is not None and not self._publish_channel.is_closed:
            return self._publish_channel
        async with self._reopen_lock:
            if self._publish_channel is None or self._publish_channel.is_closed:
                if not self.is_connected:
                    raise BrokerUnavailable("broker not connected")
                try:
                    await asyncio.wait_for(self._open_publish_channel(), self.publish_timeout)
                except (TimeoutError, *_CONNECTION_ERRORS) as exc:
                    raise BrokerUnavailable(f"cannot open a publish channel: {exc!r}") from exc
                log.warning("broker_publish_channel_reopened")
        assert self._publish_channel is not None
        return self._publish_channel

    def start(self) -> None:
        """Connect in the background, retrying until the broker is up: a service starts without it."""
        self._connect_task = asyncio.create_task(self._connect_forever())

    async def _connect_forever(self) -> None:
        delay = 0.5
        while not self._connected.is_set():
            try:
                await self.connect()
            except Exception as exc:
                log.warning("broker_connect_failed", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def wait_connected(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    @property
    def is_connected(self) -> bool:
        return bool(self._connection and self._connection.connected.is_set())

    async def ping(self) -> bool:
        return self.is_connected

    @property
    def connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise BrokerUnavailable("not connected")
        return self._connection

    async def channel(self, *, prefetch: int | None = None) -> AbstractRobustChannel:
        channel = await self.connection.channel()
        if prefetch:
            await channel.set_qos(prefetch_count=prefetch)
        return channel  # type: ignore[return-value]

    async def declare_exchange(self, channel: AbstractRobustChannel) -> AbstractExchange:
        return await channel.declare_exchange(self.topology.exchange, ExchangeType.TOPIC, durable=True)

    def _message(self, out: Outgoing) -> aio_pika.Message:
        return aio_pika.Message(
            out.body,
            message_id=out.message_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=out.headers,
            correlation_id=out.correlation_id,
            type=out.routing_key,
        )

    async def publish(self, out: Outgoing, *, exchange: str | None = None) -> None:
        """Publish one message and wait for its confirm. Raises on nack, unroutable or timeout."""
        if not self._connected.is_set():
            raise BrokerUnavailable("broker not connected")
        channel = await self._usable_publish_channel()
        target = channel.default_exchange if exchange == "" else self._exchange
        assert target is not None
        try:
            await asyncio.wait_for(
                target.publish(self._message(out), out.routing_key, mandatory=True, timeout=self.publish_timeout),
                timeout=self.publish_timeout,
            )
        except TimeoutError as exc:
            raise BrokerUnavailable(f"publish timed out after {self.publish_timeout}s") from exc
        except _CONNECTION_ERRORS as exc:
            raise BrokerUnavailable(f"connection lost: {exc!r}") from exc

    async def publish_many(self, messages: list[Outgoing]) -> list[BaseException | None]:
        """Publish with every confirm in flight at once; one result (None = confirmed) per message."""
        results = await asyncio.gather(*(self.publish(m) for m in messages), return_exceptions=True)
        return [r if isinstance(r, BaseException) else None for r in results]

    async def declare_queue(
        self, channel: AbstractRobustChannel, name: str, *, quorum: bool = True, arguments: dict[str, Any] | None = None
    ) -> AbstractQueue:
        args: dict[str, Any] = {"x-queue-type": "quorum"} if quorum else {}
        args.update(arguments or {})
        return await channel.declare_queue(name, durable=True, arguments=args)

    async def close(self) -> None:
        if self._connect_task:
            self._connect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connect_task
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connected.clear()
