"""Operator tools for parked messages: list them, and replay them into their consumer's queue."""

from __future__ import annotations

from typing import Any

from shared.messaging.broker import Broker, Outgoing
from shared.messaging.consumer import ATTEMPT_HEADER, ERROR_HEADER, describe


async def list_parked(broker: Broker, queue: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """Peek at parked messages: each is fetched and returned to the queue unchanged."""
    channel = await broker.channel()
    try:
        parked = await broker.declare_queue(channel, broker.topology.parking_queue(queue))
        seen, held = [], []
        for _ in range(limit):
            message = await parked.get(no_ack=False, fail=False)
            if message is None:
                break
            held.append(message)
            seen.append(describe(message))
        for message in held:
            await message.nack(requeue=True)
        return seen
    finally:
        await channel.close()


async def replay_parked(broker: Broker, queue: str, *, limit: int | None = None) -> int:
    """Move parked messages back to the consumer's queue with a fresh retry budget."""
    channel = await broker.channel()
    replayed = 0
    try:
        parked = await broker.declare_queue(channel, broker.topology.parking_queue(queue))
        while limit is None or replayed < limit:
            message = await parked.get(no_ack=False, fail=False)
            if message is None:
                break
            headers = {k: v for k, v in dict(message.headers or {}).items() if k not in (ERROR_HEADER, "x-parked-from")}
            headers[ATTEMPT_HEADER] = 0
            out = Outgoing(
                message_id=message.message_id or "",
                routing_key=queue,
                body=message.body,
                headers=headers,
                correlation_id=message.correlation_id,
            )
            await broker.publish(out, exchange="")
            await message.ack()
            replayed += 1
        return replayed
    finally:
        await channel.close()
