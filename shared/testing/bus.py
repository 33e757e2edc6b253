"""A bus probe: an exclusive queue bound to routing keys in the run's namespace, collecting events
so a test can assert what a service published (and how many times)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, ExchangeType


class BusProbe:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._arrived = asyncio.Condition()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        async with message.process(), self._arrived:
            self.events.append(json.loads(message.body))
            self._arrived.notify_all()

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == event_type]

    async def wait_for(self, event_type: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        async def enough() -> None:
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.of_type(event_type)) >= count)

        await asyncio.wait_for(enough(), timeout)
        return self.of_type(event_type)


@contextlib.asynccontextmanager
async def bus_probe(amqp_url: str, namespace: str, *keys: str) -> AsyncIterator[BusProbe]:
    """Collect every event whose routing key matches one of `keys` (topic patterns, e.g. `plans.#`)."""
    probe = BusProbe()
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(f"{namespace}.events", ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for key in keys or ("#",):
            await queue.bind(exchange, routing_key=key)
        await queue.consume(probe._on_message)
        yield probe
    finally:
        await connection.close()
