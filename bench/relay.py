"""Throughput and latency of the event path: outbox → relay → RabbitMQ → idempotent consumer, beside
a bare aio-pika baseline (confirmed publish + manual-ack consume, no database) in the same run.

    PYTHONPATH=. .venv/bin/python -m bench.relay run [--events 4800] [--rate 200] [--seconds 10]
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from shared.db import make_engine, make_sessionmaker
from shared.messaging.broker import Broker
from shared.messaging.consumer import ConsumerRunner, Subscription
from shared.messaging.outbox import stage
from shared.testing.rig import Ping, Rig, bus_rig, ping, record_effect
from shared.testing.servers import discover

console = Console()
IN_FLIGHT = 100


@contextlib.asynccontextmanager
async def consumer_process(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """A consumer in its own process, as in the platform (the consuming service); ready when yielded."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.relay", "consume", *args, stdout=asyncio.subprocess.PIPE
    )
    try:
        await _expect_line(process, "ready", 60)
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def _expect_line(process: asyncio.subprocess.Process, word: str, timeout: float) -> None:
    """Wait for `word` alone on a line of the consumer's output (its log lines pass by)."""
    assert process.stdout is not None
    async with asyncio.timeout(timeout):
        while (line := (await process.stdout.readline()).decode()) != f"{word}\n":
            if not line:
                raise RuntimeError(f"the consumer process ended before saying {word!r}")


async def raw_baseline(amqp_url: str, events: int) -> float:
    """Events/s for confirmed publish (IN_FLIGHT outstanding) to a quorum queue that another process
    consumes with manual acks: the bus alone, no database."""
    name = f"bench.raw.{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect(amqp_url)
    async with connection, consumer_process("raw", amqp_url, name, "--expect", str(events)) as consumer:
        channel = await connection.channel(publisher_confirms=True)
        body = Ping(subject="raw", data={"n": 0}).model_dump_json().encode()
        limiter = asyncio.Semaphore(IN_FLIGHT)

        async def publish_one() -> None:
            async with limiter:
                await channel.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=name
                )

        started = time.perf_counter()
        await asyncio.gather(*(publish_one() for _ in range(events)))
        await _expect_line(consumer, "done", 300)
        elapsed = time.perf_counter() - started
        await channel.queue_delete(name)
    return events / elapsed


async def _staging_producers(rig: Rig, events: int, producers: int) -> None:
    """Producers as services are: one event per business transaction, several at once."""
    per_producer = events // producers
    assert per_producer * producers == events, "events must be a multiple of the producer count"

    async def produce(offset: int) -> None:
        for n in range(offset, offset + per_producer):
            async with rig.sessionmaker() as session, session.begin():
                await stage(session, ping(n), producer="bench")

    await asyncio.gather(*(produce(i * per_producer) for i in range(producers)))


async def outbox_drain(rig: Rig, events: int) -> float:
    """Events/s from a filled outbox through the relay, the broker and an inbox-deduplicating consumer
    in another process."""
    for start in range(0, events, 500):
        await rig.stage(*(ping(n) for n in range(start, min(events, start + 500))))
    async with consumer_process(*_inbox_args(rig, "drain", events)) as consumer:
        relay_broker = await rig.new_broker()
        started = time.perf_counter()
        rig.new_relay(relay_broker, batch_size=IN_FLIGHT)
        await _expect_line(consumer, "done", 300)
        return events / (time.perf_counter() - started)


async def outbox_live(rig: Rig, events: int, producers: int = 16) -> float:
    """Events/s with producers staging one event per business transaction while the relay runs."""
    async with consumer_process(*_inbox_args(rig, "live", events)) as consumer:
        rig.new_relay(await rig.new_broker(), batch_size=IN_FLIGHT)
        started = time.perf_counter()
        await _staging_producers(rig, events, producers)
        await _expect_line(consumer, "done", 300)
        return events / (time.perf_counter() - started)


def _inbox_args(rig: Rig, name: str, expect: int) -> tuple[str, ...]:
    return ("inbox", rig.amqp_url, rig.namespace, "--db-url", rig.url, "--name", name, "--expect", str(expect))


async def _until(condition: Any, *, what: str, timeout: float = 300) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def outbox_latency(rig: Rig, rate: int, seconds: float) -> list[float]:
    """Stage one event per transaction at a fixed rate while the consumer runs in its own process.
    Latency on the database's clock, so both processes agree: the staging transaction's time
    (outbox.created_at) → the consumer's effect (effects.at)."""
    async with consumer_process(*_inbox_args(rig, "latency", 0)):
        rig.new_relay(await rig.new_broker(), batch_size=IN_FLIGHT)
        total = int(rate * seconds)
        start = time.perf_counter()
        tasks: set[asyncio.Task[None]] = set()
        for n in range(total):
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
            task = asyncio.create_task(rig.stage(ping(n)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await rig.wait_until(EFFECT_COUNT, total, timeout=120)
    async with rig.engine.connect() as conn:
        rows = await conn.execute(text(LATENCIES))
        return [float(row.seconds) for row in rows]


EFFECT_COUNT = "SELECT count(*) FROM effects"
LATENCIES = (
    "SELECT extract(epoch FROM e.at - o.created_at) AS seconds FROM effects e JOIN outbox o ON o.id = e.event_id"
)


async def consume_forever(mode: str, amqp_url: str, target: str, db_url: str, name: str, expect: int) -> None:
    """`raw`: ack every message of queue `target`. `inbox`: the platform's ConsumerRunner (inbox,
    one effect row per event) in namespace `target`. Prints `ready`, then `done` after `expect`."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if mode == "raw":
        count = await _count_raw(amqp_url, target, expect, stop)
    else:
        count = await _count_inbox(amqp_url, target, db_url, name, expect, stop)
    print(f"handled {count}", file=sys.stderr)


async def _count_raw(amqp_url: str, queue_name: str, expect: int, stop: asyncio.Event) -> int:
    received = 0
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=IN_FLIGHT)
        queue = await channel.declare_queue(queue_name, durable=True, arguments={"x-queue-type": "quorum"})

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received == expect:
                print("done", flush=True)

        await queue.consume(on_message)
        print("ready", flush=True)
        await stop.wait()
    return received


async def _count_inbox(amqp_url: str, namespace: str, db_url: str, name: str, expect: int, stop: asyncio.Event) -> int:
    engine = make_engine(db_url, pool_size=10)
    broker = Broker(url=amqp_url, namespace=namespace)
    await broker.connect()
    subscription = Subscription(name=name)
    subscription.on(Ping)(record_effect(name))
    runner = ConsumerRunner(
        broker=broker, sessionmaker=make_sessionmaker(engine), service=Rig.SERVICE, subscriptions=[subscription]
    )
    await runner.declare_and_consume()
    print("ready", flush=True)
    while not stop.is_set():
        if expect and runner.stats.handled >= expect:
            print("done", flush=True)
            expect = 0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.005)
    await runner.stop()
    await broker.close()
    await engine.dispose()
    return runner.stats.handled


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def benchmark(events: int, rate: int, seconds: float) -> None:
    servers = discover()
    run_id = uuid.uuid4().hex[:8]
    raw = await raw_baseline(servers.amqp_url, events)
    async with bus_rig(servers, run_id, "bench_drain") as rig:
        outbox = await outbox_drain(rig, events)
    async with bus_rig(servers, run_id, "bench_live") as rig:
        live = await outbox_live(rig, events)
    async with bus_rig(servers, run_id, "bench_lat") as rig:
        latencies = await outbox_latency(rig, rate, seconds)
    table = Table(title=f"bench/relay.py ({events} events; latency at {rate} events/s for {seconds:g} s)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("raw aio-pika publish+consume (events/s)", f"{raw:,.0f}")
    table.add_row("outbox → relay → consumer with inbox (events/s)", f"{outbox:,.0f}")
    table.add_row("ratio outbox / raw", f"{outbox / raw:.2f}  (aim ≥ 0.50)")
    table.add_row("same, 16 producers staging 1 event per transaction (events/s)", f"{live:,.0f}")
    table.add_row("latency p50 (ms)", f"{percentile(latencies, 0.50) * 1000:.1f}")
    table.add_row("latency p99 (ms)", f"{percentile(latencies, 0.99) * 1000:.1f}  (aim < 100)")
    table.add_row("latency mean (ms)", f"{statistics.fmean(latencies) * 1000:.1f}" if latencies else "n/a")
    table.add_row("latency samples (consumer in its own process)", f"{len(latencies)} of {int(rate * seconds)}")
    console.print(table)


app = typer.Typer(add_completion=False)


@app.command()
def run(
    events: int = typer.Option(4800, help="events for the throughput runs (a multiple of 16)"),
    rate: int = typer.Option(200, help="events per second for the latency run"),
    seconds: float = typer.Option(10.0, help="duration of the latency run"),
) -> None:
    asyncio.run(benchmark(events, rate, seconds))


@app.command()
def consume(
    mode: str = typer.Argument(help="raw | inbox"),
    amqp_url: str = typer.Argument(),
    target: str = typer.Argument(help="raw: the queue; inbox: the bus namespace"),
    db_url: str = typer.Option(""),
    name: str = typer.Option("bench"),
    expect: int = typer.Option(0, help="print `done` after this many events (0: never)"),
) -> None:
    """A benchmark consumer in a process of its own (started by `run`)."""
    asyncio.run(consume_forever(mode, amqp_url, target, db_url, name, expect))


if __name__ == "__main__":
    app()
