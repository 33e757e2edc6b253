"""A bare bus rig for testing and benchmarking the shared messaging mechanisms without any service: a database with
the outbox, the inbox and an effects table, a relay, and a consumer whose handler records effects."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import Column, DateTime, Integer, String, Table, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.contracts.envelope import Event, EventData
from shared.db import create_database, drop_database, make_engine, make_sessionmaker, new_metadata
from shared.messaging.broker import Broker
from shared.messaging.consumer import ConsumerRunner, Subscription
from shared.messaging.outbox import Relay, stage
from shared.messaging.tables import messaging_tables


class PingData(EventData):
    n: int


class Ping(Event[PingData]):
    TYPE = "testbus.ping.happened"
    VERSION = 1


class Orphan(Event[PingData]):
    """An event type no queue is bound to: publishing it is unroutable."""

    TYPE = "testbus.orphan.happened"
    VERSION = 1


metadata = new_metadata()
messaging_tables(metadata)
effects = Table(
    "effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("n", Integer, nullable=False),
    Column("consumer", String(100), nullable=False),
    Column("at", DateTime(timezone=True), server_default=func.now()),
)


_INSERT_EFFECT = effects.insert()


def ping(n: int) -> Ping:
    return Ping(subject=f"ping-{n}", subject_version=1, data=PingData(n=n))


@dataclass
class Rig:
    url: str
    amqp_url: str
    namespace: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    brokers: list[Broker] = field(default_factory=list)
    relays: list[Relay] = field(default_factory=list)
    runners: list[ConsumerRunner] = field(default_factory=list)
    SERVICE: ClassVar[str] = "rig"

    async def new_broker(self, *, amqp_url: str | None = None, timeout: float = 3.0) -> Broker:
        broker = Broker(url=amqp_url or self.amqp_url, namespace=self.namespace, publish_timeout=timeout)
        broker.start()
        await broker.wait_connected(15)
        self.brokers.append(broker)
        return broker

    def new_relay(self, broker: Broker, *, batch_size: int = 200) -> Relay:
        relay = Relay(engine=self.engine, broker=broker, batch_size=batch_size, poll_seconds=0.2)
        relay.start()
        self.relays.append(relay)
        return relay

    async def new_consumer(
        self,
        broker: Broker,
        *,
        name: str = "effects",
        handler: Callable[[AsyncSession, Any], Awaitable[None]] | None = None,
        retry_delays_ms: list[int] | None = None,
        prefetch: int = 50,
    ) -> ConsumerRunner:
        subscription = Subscription(name=name)
        subscription.on(Ping)(handler or record_effect(name))
        runner = ConsumerRunner(
            broker=broker,
            sessionmaker=self.sessionmaker,
            service=self.SERVICE,
            subscriptions=[subscription],
            prefetch=prefetch,
            retry_delays_ms=retry_delays_ms if retry_delays_ms is not None else [50, 100],
        )
        await runner.declare_and_consume()
        self.runners.append(runner)
        return runner

    async def stage(self, *events: Event[Any]) -> None:
        async with self.sessionmaker() as session, session.begin():
            await stage(session, *events, producer="rig")

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def wait_until(self, sql: str, expected: Any, *, timeout: float = 30.0, **params: Any) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        value = None
        while asyncio.get_running_loop().time() < deadline:
            value = await self.scalar(sql, **params)
            if value == expected:
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"{sql!r} stayed {value!r}, expected {expected!r}")

    async def close(self) -> None:
        for runner in self.runners:
            await runner.stop()
        for relay in self.relays:
            await relay.stop()
        for broker in self.brokers:
            await broker.close()
        await self.engine.dispose()


def record_effect(consumer: str) -> Callable[[AsyncSession, Any], Awaitable[None]]:
    async def handler(session: AsyncSession, event: Ping) -> None:
        # One statement object with bound parameters: compiled once, as a service's hot handler would be.
        await session.execute(_INSERT_EFFECT, {"event_id": event.id, "n": event.data.n, "consumer": consumer})

    return handler


@contextlib.asynccontextmanager
async def bus_rig(servers: Any, run_id: str, name: str) -> AsyncIterator[Rig]:
    url = servers.database_url(f"t_{run_id}_{name}")
    await create_database(url)
    engine = make_engine(url, pool_size=10)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    rig = Rig(
        url=url,
        amqp_url=servers.amqp_url,
        namespace=f"t{run_id}.{name}",
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
    )
    try:
        yield rig
    finally:
        await rig.close()
        await drop_database(url)
