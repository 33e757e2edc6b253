"""Consumer runner: one quorum queue per (service, consumer), manual ack only after the effect
committed, an inbox row in the same transaction so a redelivered event has no second effect,
retries with back-off through delay queues, then a parking queue an operator can replay."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import shared.contracts  # noqa: F401  (registers every event class for decoding)
from shared.contracts.envelope import Event, GenericEvent, event_class_for
from shared.logging import get_logger
from shared.messaging.broker import Broker, Outgoing
from shared.observability import consuming, mark_span_failed

log = get_logger("consumer")
Handler = Callable[[AsyncSession, Any], Awaitable[None]]
ATTEMPT_HEADER = "x-attempt"
ERROR_HEADER = "x-last-error"

_INBOX_INSERT = text(
    "INSERT INTO inbox (consumer, event_id, event_type) VALUES (:consumer, :event_id, :event_type) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)
_INBOX_INSERT_MANY = text(
    "INSERT INTO inbox (consumer, event_id, event_type) "
    "SELECT :consumer, id, type FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[])) AS batch(id, type) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


@dataclass
class Subscription:
    """A named consumer: its queue gets every routing key its handlers listen to."""

    name: str
    handlers: dict[str, Handler] = field(default_factory=dict)
    prefetch: int | None = None

    def on(self, *event_classes: type[Event[Any]]) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            for cls in event_classes:
                self.handlers[cls.routing_key_for()] = handler
            return handler

        return register


@dataclass
class ConsumerStats:
    handled: int = 0
    duplicates: int = 0
    redelivered: int = 0
    retried: int = 0
    parked: int = 0


def decode_error_summary(exc: Exception) -> str:
    """What was wrong, without the values: an event may carry an SMS code or a password."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['type']}"
            for err in exc.errors(include_input=False, include_url=False)
        )[:500]
    return type(exc).__name__


def decode(body: bytes, routing_key: str) -> Event[Any]:
    cls = event_class_for(routing_key) or GenericEvent
    return cls.model_validate_json(body)


class ConsumerRunner:
    def __init__(
        self,
        *,
        broker: Broker,
        sessionmaker: async_sessionmaker[AsyncSession],
        service: str,
        subscriptions: Iterable[Subscription],
        prefetch: int = 100,
        retry_delays_ms: list[int] | None = None,
        batch_size: int = 50,
        workers: int = 2,
    ) -> None:
        self.broker = broker
        self.sessionmaker = sessionmaker
        self.service = service
        self.subscriptions = list(subscriptions)
        self.prefetch = prefetch
        self.retry_delays_ms = retry_delays_ms if retry_delays_ms is not None else [200, 2_000, 10_000]
        self.batch_size = max(1, batch_size)
        self.workers = max(1, workers)
        self.stats = ConsumerStats()
        self._channels: list[AbstractRobustChannel] = []
        self._worker_tasks: list[asyncio.Task[None]] = []
        self._callbacks: dict[str, Callable[[AbstractIncomingMessage], Awaitable[None]]] = {}
        self._channel_of: dict[str, AbstractRobustChannel] = {}
        self._watchdog: asyncio.Task[None] | None = None
        self._start_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Declare and consume once the broker is connected (in the background)."""
        self._start_task = asyncio.create_task(self._start_when_connected())

    async def _start_when_connected(self) -> None:
        await self.broker.wait_connected()
        while True:
            try:
                await self.declare_and_consume()
                return
            except Exception as exc:
                log.warning("consumer_start_failed", error=str(exc))
                await asyncio.sleep(1.0)

    async def declare_and_consume(self) -> None:
        for sub in self.subscriptions:
            if not sub.handlers:
                continue
            name = self.broker.topology.queue(self.service, sub.name)
            self._callbacks[sub.name] = self._on_message_for(sub, name)
            await self._subscribe(sub)
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._watch_channels())

    async def _subscribe(self, sub: Subscription) -> None:
        channel = await self.broker.channel(prefetch=sub.prefetch or self.prefetch)
        queue = await self.declare(channel, sub)
        await queue.consume(self._callbacks[sub.name])
        self._channels.append(channel)
        self._channel_of[sub.name] = channel
        log.info("consumer_started", queue=queue.name, keys=sorted(sub.handlers))

    async def _watch_channels(self, period: float = 5.0) -> None:
        """Re-subscribe a consumer whose channel stayed closed while the connection is up: aio-pika
        restores channels after a reconnect, but one whose restore failed would silently stop consuming."""
        suspects: set[str] = set()
        while True:
            await asyncio.sleep(period)
            if not self.broker.is_connected:
                suspects.clear()
                continue
            for sub in self.subscriptions:
                channel = self._channel_of.get(sub.name)
                if channel is None or not channel.is_closed:
                    suspects.discard(sub.name)
                    continue
                if sub.name not in suspects:  # give aio-pika's own restore one period first
                    suspects.add(sub.name)
                    continue
                try:
                    await self._subscribe(sub)
                    suspects.discard(sub.name)
                    log.warning("consumer_resubscribed", consumer=sub.name)
                except Exception as exc:
                    log.warning("consumer_resubscribe_failed", consumer=sub.name, error=repr(exc))

    async def declare(self, channel: AbstractRobustChannel, sub: Subscription) -> AbstractQueue:
        """Idempotent topology: main quorum queue and bindings, delay queues, parking queue."""
        topology = self.broker.topology
        exchange = await self.broker.declare_exchange(channel)
        name = topology.queue(self.service, sub.name)
        queue = await self.broker.declare_queue(channel, name)
        for key in sub.handlers:
            await queue.bind(exchange, routing_key=key)
        for level, delay in enumerate(self.retry_delays_ms):
            await self.broker.declare_queue(
                channel,
                topology.retry_queue(name, level),
                quorum=False,
                arguments={
                    "x-message-ttl": delay,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": name,
                },
            )
        await self.broker.declare_queue(channel, topology.parking_queue(name))
        return queue

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watchdog
            self._watchdog = None
        if self._start_task:
            self._start_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._start_task
        for channel in self._channels:
            with contextlib.suppress(Exception):
                await channel.close()
        self._channels.clear()
        for task in self._worker_tasks:
            task.cancel()
        for task in self._worker_tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._worker_tasks.clear()

    def _on_message_for(
        self, sub: Subscription, queue_name: str
    ) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        """Deliveries go to a local queue that a few workers drain in batches: one transaction (one
        commit) for many events is what lets a consumer keep up with a deadline rush."""
        pending: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        for _ in range(self.workers):
            self._worker_tasks.append(asyncio.create_task(self._work(sub, queue_name, pending)))

        async def on_message(message: AbstractIncomingMessage) -> None:
            await pending.put(message)

        return on_message

    async def _work(self, sub: Subscription, queue_name: str, pending: asyncio.Queue[AbstractIncomingMessage]) -> None:
        while True:
            batch = [await pending.get()]
            while len(batch) < self.batch_size and not pending.empty():
                batch.append(pending.get_nowait())
            try:
                if len(batch) == 1:
                    await self._handle(sub, queue_name, batch[0])
                else:
                    await self._handle_batch(sub, queue_name, batch)
            except Exception as exc:  # a worker must outlive any one message; unacked ones come back
                log.error("consumer_worker_error", queue=queue_name, error=repr(exc))

    async def _handle_batch(self, sub: Subscription, queue_name: str, batch: list[AbstractIncomingMessage]) -> None:
        """Apply a batch in one transaction; if anything in it fails, fall back to one by one so
        that retries, parking and the effects of the healthy events stay per message."""
        ready: list[tuple[AbstractIncomingMessage, Event[Any], Handler, str]] = []
        for message in batch:
            key = str((message.headers or {}).get("x-routing-key") or message.routing_key or "")
            handler = sub.handlers.get(key)
            try:
                event = decode(message.body, key) if handler is not None else None
            except (ValidationError, ValueError):
                event = None
            if event is None or handler is None:
                await self._handle(sub, queue_name, message)  # parks or acks it on its own
                continue
            ready.append((message, event, handler, key))
        if not ready:
            return
        try:
            await self.process_batch(sub.name, queue_name, ready)
        except Exception as exc:
            log.warning("consumer_batch_failed", queue=queue_name, size=len(ready), error=repr(exc)[:300])
            for message, *_ in ready:
                await self._handle(sub, queue_name, message)
            return
        for message, *_ in ready:
            try:
                await message.ack()
            except Exception as exc:  # the channel died: the broker redelivers and the inbox dedupes
                log.warning("ack_failed", error=str(exc))

    async def process_batch(
        self, consumer: str, queue_name: str, ready: list[tuple[AbstractIncomingMessage, Event[Any], Handler, str]]
    ) -> None:
        async with self.sessionmaker() as session, session.begin():
            inserted = await session.execute(
                _INBOX_INSERT_MANY,
                {
                    "consumer": f"{self.service}.{consumer}",
                    "ids": [event.id for _, event, _, _ in ready],
                    "types": [event.type for _, event, _, _ in ready],
                },
            )
            fresh = {row.event_id for row in inserted}
            applied, duplicates = 0, 0
            for message, event, handler, key in ready:
                if event.id not in fresh:
                    duplicates += 1
                    continue
                fresh.discard(event.id)  # the same event twice in one batch: the second is a duplicate
                with self._event_context(message, event, queue_name, key):
                    await handler(session, event)
                applied += 1
        self.stats.handled += applied
        self.stats.duplicates += duplicates
        self.stats.redelivered += sum(1 for message, *_ in ready if message.redelivered)

    async def _handle(self, sub: Subscription, queue_name: str, message: AbstractIncomingMessage) -> None:
        if message.redelivered:
            self.stats.redelivered += 1
        routing_key = message.routing_key or ""
        original_key = (message.headers or {}).get("x-routing-key") or routing_key
        attempt = int(str((message.headers or {}).get(ATTEMPT_HEADER, 0) or 0))
        try:
            event = decode(message.body, str(original_key))
        except (ValidationError, ValueError) as exc:
            error = decode_error_summary(exc)
            log.error("event_undecodable", queue=queue_name, routing_key=original_key, error=error)
            await self._park(message, queue_name, str(original_key), f"undecodable: {error}")
            return
        handler = sub.handlers.get(str(original_key))
        if handler is None:
            await message.ack()
            return
        with self._event_context(message, event, queue_name, str(original_key)):
            try:
                await self.process(sub.name, event, handler)
            except Exception as exc:
                mark_span_failed(exc)
                await self._retry_or_park(message, queue_name, str(original_key), attempt, exc)
                return
        try:
            await message.ack()
        except Exception as exc:  # the channel died: the broker redelivers and the inbox dedupes
            log.warning("ack_failed", error=str(exc))

    @contextlib.contextmanager
    def _event_context(
        self, message: AbstractIncomingMessage, event: Event[Any], queue_name: str, routing_key: str
    ) -> Iterator[None]:
        """Log lines carry the event's correlation and causation; the delivery gets its span and metrics."""
        with (
            structlog.contextvars.bound_contextvars(
                correlation_id=event.correlation_id, causation_id=str(event.id), event_type=event.type
            ),
            consuming(
                self.service,
                queue=queue_name,
                routing_key=routing_key,
                headers=message.headers,
                event_id=str(event.id),
                redelivered=bool(message.redelivered),
            ),
        ):
            yield

    async def process(self, consumer: str, event: Event[Any], handler: Handler) -> bool:
        """Apply the handler and record the event in the inbox in one transaction. False if a duplicate."""
        async with self.sessionmaker() as session, session.begin():
            inserted = await session.execute(
                _INBOX_INSERT,
                {"consumer": f"{self.service}.{consumer}", "event_id": event.id, "event_type": event.type},
            )
            if inserted.first() is None:
                self.stats.duplicates += 1
                return False
            await handler(session, event)
        self.stats.handled += 1
        return True

    async def _retry_or_park(
        self, message: AbstractIncomingMessage, queue_name: str, routing_key: str, attempt: int, exc: Exception
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"[:500]
        if attempt < len(self.retry_delays_ms):
            log.warning("event_retry", queue=queue_name, attempt=attempt + 1, error=error)
            target = self.broker.topology.retry_queue(queue_name, attempt)
            headers = {ATTEMPT_HEADER: attempt + 1, ERROR_HEADER: error, "x-routing-key": routing_key}
            if await self._forward(message, target, headers):
                self.stats.retried += 1
            return
        log.error("event_parked", queue=queue_name, attempts=attempt + 1, error=error)
        await self._park(message, queue_name, routing_key, error)

    async def _park(self, message: AbstractIncomingMessage, queue_name: str, routing_key: str, error: str) -> None:
        headers = {ERROR_HEADER: error, "x-routing-key": routing_key, "x-parked-from": queue_name}
        if await self._forward(message, self.broker.topology.parking_queue(queue_name), headers):
            self.stats.parked += 1

    async def _forward(self, message: AbstractIncomingMessage, queue: str, headers: dict[str, Any]) -> bool:
        """Move a message to another queue: confirmed publish first, then ack; else requeue it."""
        out = Outgoing(
            message_id=message.message_id or "",
            routing_key=queue,
            body=message.body,
            headers={**dict(message.headers or {}), **headers},
            correlation_id=message.correlation_id,
        )
        try:
            await self.broker.publish(out, exchange="")
            await message.ack()
            return True
        except Exception as exc:
            log.warning("forward_failed", queue=queue, error=str(exc))
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return False


def describe(message: AbstractIncomingMessage) -> dict[str, Any]:
    headers = dict(message.headers or {})
    try:
        body = json.loads(message.body)
    except ValueError:
        body = message.body.decode(errors="replace")
    return {
        "message_id": message.message_id,
        "routing_key": headers.get("x-routing-key"),
        "error": headers.get(ERROR_HEADER),
        "event_type": body.get("type") if isinstance(body, dict) else None,
        "subject": body.get("subject") if isinstance(body, dict) else None,
    }
