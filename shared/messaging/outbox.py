"""Transactional outbox: `stage` writes an event in the caller's transaction; the `Relay` publishes
unsent rows in batches with confirms and marks them sent only after the broker confirmed them.

Several relays (one per service instance) share one outbox: rows are claimed with
`FOR UPDATE SKIP LOCKED` and stay locked until marked, so no row is published by two relays at once.
The relay wakes on `LISTEN/NOTIFY` and also polls, so a lost notification only costs a poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.contracts.envelope import Event
from shared.logging import get_logger
from shared.messaging.broker import Broker, BrokerUnavailable, Outgoing
from shared.observability import PublishSpans, trace_headers

log = get_logger("outbox")
NOTIFY_CHANNEL = "outbox_staged"
MAX_BACKOFF = timedelta(seconds=60)

_INSERT = text(
    "INSERT INTO outbox (id, routing_key, payload, headers) "
    "VALUES (:id, :routing_key, CAST(:payload AS jsonb), CAST(:headers AS jsonb))"
)
# The last event of a transaction wakes the relays in the same round trip as its INSERT.
_INSERT_AND_NOTIFY = text(
    "WITH staged AS (INSERT INTO outbox (id, routing_key, payload, headers) "
    "VALUES (:id, :routing_key, CAST(:payload AS jsonb), CAST(:headers AS jsonb)) RETURNING id) "
    f"SELECT pg_notify('{NOTIFY_CHANNEL}', '') FROM staged"
)
_CLAIM = text(
    "SELECT id, routing_key, payload::text AS payload, headers::text AS headers FROM outbox "
    "WHERE sent_at IS NULL AND next_attempt_at <= now() ORDER BY seq LIMIT :limit FOR UPDATE SKIP LOCKED"
)
SECRET_FIELDS_HEADER = "x-secret-fields"
# A sent row keeps its event for a week (replays, audits), but not its secrets: the fields its data
# class names secret are overwritten with the mask once the broker has confirmed the message.
_MARK_SENT = text(
    "UPDATE outbox SET sent_at = now(), attempts = attempts + 1, payload = CASE "
    f"WHEN headers ? '{SECRET_FIELDS_HEADER}' AND jsonb_typeof(payload->'data') = 'object' "
    "THEN jsonb_set(payload, '{data}', (payload->'data') || (SELECT jsonb_object_agg(f, to_jsonb(CAST(:mask AS text))) "
    f"FROM jsonb_array_elements_text(headers->'{SECRET_FIELDS_HEADER}') AS f)) "
    "ELSE payload END "
    "WHERE id = ANY(:ids)"
)
SECRET_MASK = "***"
_MARK_FAILED = text(
    "UPDATE outbox SET attempts = attempts + 1, last_error = :error, "
    "next_attempt_at = now() + least(interval '1 second' * power(2, least(attempts, 6)), :max_backoff) "
    "WHERE id = ANY(:ids)"
)
_PURGE = text("DELETE FROM outbox WHERE sent_at < now() - :retention")


async def stage(session: AsyncSession, *events: Event[Any], producer: str | None = None) -> None:
    """Write events into the outbox inside the session's open transaction."""
    for position, event in enumerate(events, start=1):
        if producer and not event.producer:
            event.producer = producer
        await session.execute(
            _INSERT_AND_NOTIFY if position == len(events) else _INSERT,
            {
                "id": event.id,
                "routing_key": event.routing_key,
                "payload": event.model_dump_json(),
                "headers": json.dumps(_headers(event)),
            },
        )


def _headers(event: Event[Any]) -> dict[str, Any]:
    headers: dict[str, Any] = {"correlation_id": event.correlation_id, **trace_headers()}
    secrets = sorted(type(event.data).SECRET_FIELDS)
    if secrets:
        headers[SECRET_FIELDS_HEADER] = secrets
    return headers


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class RelayStats:
    published: int = 0
    failed: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)


class Relay:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        broker: Broker,
        batch_size: int = 200,
        poll_seconds: float = 1.0,
        retention: timedelta = timedelta(days=7),
        concurrency: int = 3,
        service: str = "relay",
    ) -> None:
        self.engine = engine
        self.service = service
        self.broker = broker
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.retention = retention
        self.concurrency = max(1, concurrency)
        self.stats = RelayStats()
        # One pending wake-up at most, taken by one batch loop: a NOTIFY per staged event must not
        # send every loop to claim the same rows (all but one would find nothing, a query each).
        self._wake: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        # Several batch loops per relay: while one waits for its confirms another claims the next
        # batch (SKIP LOCKED keeps them apart), so database round trips and confirms overlap.
        loops = [asyncio.create_task(self._run()) for _ in range(self.concurrency)]
        self._tasks = [*loops, asyncio.create_task(self._listen())]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def wake(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._wake.put_nowait(None)

    async def _run(self) -> None:
        purge_every, since_purge = 600, 0
        while not self._stopping:
            try:
                published = await self.publish_batch()
            except Exception as exc:
                log.warning("relay_batch_failed", error=str(exc))
                published = 0
                await asyncio.sleep(self.poll_seconds)
            if published >= self.batch_size:
                self.wake()  # more may be waiting: a sibling loop claims the next batch meanwhile
                continue
            since_purge += 1
            if since_purge >= purge_every:
                since_purge = 0
                with contextlib.suppress(Exception):
                    await self.purge()
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.get(), self.poll_seconds)

    async def publish_batch(self) -> int:
        """Claim a batch, publish it with all confirms in flight, record the outcome. One transaction."""
        if not self.broker.is_connected:
            return 0
        async with self.engine.begin() as conn:
            rows = (await conn.execute(_CLAIM, {"limit": self.batch_size})).all()
            if not rows:
                return 0
            spans = PublishSpans(self.service)
            messages = [self._outgoing(row, spans) for row in rows]
            results = await self.broker.publish_many(messages)
            spans.end(results)
            sent = [row.id for row, error in zip(rows, results, strict=True) if error is None]
            failed = [(row.id, error) for row, error in zip(rows, results, strict=True) if error is not None]
            if sent:
                await conn.execute(_MARK_SENT, {"ids": sent, "mask": SECRET_MASK})
            if failed:
                first_error = repr(failed[0][1])[:500]
                await conn.execute(
                    _MARK_FAILED,
                    {"ids": [row_id for row_id, _ in failed], "error": first_error, "max_backoff": MAX_BACKOFF},
                )
                self.stats.failed += len(failed)
                log.warning("relay_publish_failed", count=len(failed), error=first_error)
        self.stats.published += len(sent)
        self.stats.batches += 1
        if failed and all(isinstance(e, BrokerUnavailable) for _, e in failed):
            await asyncio.sleep(self.poll_seconds)
        return len(sent)

    @staticmethod
    def _outgoing(row: Any, spans: PublishSpans) -> Outgoing:
        headers = json.loads(row.headers or "{}")
        return Outgoing(
            message_id=str(row.id),
            routing_key=row.routing_key,
            body=row.payload.encode(),
            headers=spans.start(routing_key=row.routing_key, message_id=str(row.id), headers=headers),
            correlation_id=headers.get("correlation_id"),
        )

    async def purge(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(_PURGE, {"retention": self.retention})

    async def _listen(self) -> None:
        """Hold a LISTEN connection; reconnect after a database restart."""
        dsn = asyncpg_dsn(str(self.engine.url.render_as_string(hide_password=False)))
        while not self._stopping:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(dsn)
                await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self.wake())
                self.wake()  # catch up on whatever was staged while we were not listening
                while not conn.is_closed():
                    await asyncio.sleep(self.poll_seconds * 5)
                    await conn.execute("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("relay_listen_lost", error=str(exc))
                await asyncio.sleep(1.0)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()


async def pending_count(engine: AsyncEngine) -> tuple[int, float]:
    """Unsent rows and the age in seconds of the oldest one (for health and metrics)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age "
                    "FROM outbox WHERE sent_at IS NULL"
                )
            )
        ).one()
    return int(row.n), float(row.age)
