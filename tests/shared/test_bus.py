"""The outbox → RabbitMQ → inbox path against the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

import pytest

from shared.contracts.envelope import Event
from shared.messaging.broker import BrokerUnavailable, Outgoing
from shared.messaging.parking import list_parked, replay_parked
from shared.testing.bus import bus_probe
from shared.testing.rig import Orphan, PingData, bus_rig, ping
from tests.shared.faults import BrokerOutage

EFFECTS = "SELECT count(*) FROM effects"
DISTINCT_EFFECTS = "SELECT count(DISTINCT event_id) FROM effects"
UNSENT = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"


async def test_rolled_back_event_is_never_published_and_committed_one_arrives_once(servers, run_id) -> None:
    async with bus_rig(servers, run_id, "rollback") as rig:
        broker = await rig.new_broker()
        await rig.new_consumer(broker)
        async with rig.sessionmaker() as session, session.begin():
            from shared.messaging.outbox import stage

            await stage(session, ping(1))
            await session.rollback()
        await rig.stage(ping(2))
        rig.new_relay(broker)
        await rig.wait_until(EFFECTS, 1)
        await asyncio.sleep(1.0)  # give a stray duplicate time to show up
        assert await rig.scalar("SELECT n FROM effects") == 2
        assert await rig.scalar(EFFECTS) == 1
        assert await rig.scalar("SELECT count(*) FROM outbox") == 1


async def test_two_relays_publish_each_of_2000_events_exactly_once(servers, run_id) -> None:
    async with bus_rig(servers, run_id, "tworelays") as rig:
        consumer_broker = await rig.new_broker()
        runner = await rig.new_consumer(consumer_broker)
        for start in range(0, 2000, 500):
            await rig.stage(*(ping(n) for n in range(start, start + 500)))
        relays = [rig.new_relay(await rig.new_broker(), batch_size=100) for _ in range(2)]
        await rig.wait_until(UNSENT, 0, timeout=60)
        await rig.wait_until(EFFECTS, 2000, timeout=60)
        assert await rig.scalar(DISTINCT_EFFECTS) == 2000
        assert sum(r.stats.published for r in relays) == 2000
        assert all(r.stats.published > 0 for r in relays), "both relays should have taken part"
        assert runner.stats.duplicates == 0  # no row was published twice


async def test_broker_restarts_lose_nothing_and_apply_nothing_twice(servers, run_id) -> None:
    async with BrokerOutage(servers.amqp_url) as outage, bus_rig(servers, run_id, "restart") as rig:
        relay_broker = await rig.new_broker(amqp_url=outage.url)
        consumer_broker = await rig.new_broker(amqp_url=outage.url)
        runner = await rig.new_consumer(consumer_broker, prefetch=20)
        relay = rig.new_relay(relay_broker, batch_size=50)

        async def produce(first: int, last: int) -> None:
            for start in range(first, last, 50):
                await rig.stage(*(ping(n) for n in range(start, start + 50)))
                await asyncio.sleep(0.02)

        producing = asyncio.create_task(produce(0, 1000))
        await rig.wait_until("SELECT count(*) > 100 FROM effects", True, timeout=60)
        await outage.stop()  # while the first thousand still flow
        at_stop = await rig.scalar(DISTINCT_EFFECTS)
        await producing
        await produce(1000, 2000)  # the second thousand is staged while the broker is down
        assert await rig.scalar(UNSENT) >= 1000, "events staged during the outage wait in the outbox"
        await outage.start()
        await rig.wait_until(UNSENT, 0, timeout=120)
        await rig.wait_until(DISTINCT_EFFECTS, 2000, timeout=120)
        assert await rig.scalar(EFFECTS) == 2000, "an effect was applied twice"
        assert outage.outages == 1
        assert runner.stats.handled > at_stop, "the consumer resumed by itself after the restart"
        assert relay.stats.published >= 2000  # a row whose confirm was lost may go twice: the inbox absorbs it
        assert runner.stats.handled + runner.stats.duplicates >= 2000


async def test_always_failing_handler_parks_after_retries_and_replay_brings_it_back(servers, run_id) -> None:
    async with bus_rig(servers, run_id, "parking") as rig:
        broker = await rig.new_broker()
        calls: list[int] = []
        healthy = asyncio.Event()

        async def flaky(session, event) -> None:
            calls.append(event.data.n)
            if not healthy.is_set():
                raise RuntimeError("downstream is broken")
            from shared.testing.rig import effects

            await session.execute(effects.insert().values(event_id=event.id, n=event.data.n, consumer="flaky"))

        runner = await rig.new_consumer(broker, name="flaky", handler=flaky, retry_delays_ms=[50, 100])
        await rig.stage(ping(7))
        rig.new_relay(broker)
        queue = broker.topology.queue(rig.SERVICE, "flaky")
        deadline = time.monotonic() + 20
        while runner.stats.parked < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert runner.stats.parked == 1
        assert calls == [7, 7, 7], "one try and two retries before parking"
        parked = await list_parked(broker, queue)
        assert len(parked) == 1 and "downstream is broken" in parked[0]["error"]
        assert await rig.scalar(EFFECTS) == 0

        healthy.set()
        assert await replay_parked(broker, queue) == 1
        await rig.wait_until(EFFECTS, 1, timeout=20)
        assert await list_parked(broker, queue) == []


async def test_unroutable_publish_fails_and_row_stays_unsent(servers, run_id) -> None:
    async with bus_rig(servers, run_id, "unroutable") as rig:
        broker = await rig.new_broker()
        relay = rig.new_relay(broker)
        await rig.stage(Orphan(subject="o-1", data=PingData(n=1)))
        deadline = time.monotonic() + 10
        while relay.stats.failed < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert relay.stats.failed >= 1
        assert await rig.scalar(UNSENT) == 1
        assert "PublishError" in (await rig.scalar("SELECT last_error FROM outbox"))
        assert await rig.scalar("SELECT attempts FROM outbox") >= 1


async def test_publish_while_broker_down_fails_within_five_seconds(servers, run_id) -> None:
    async with BrokerOutage(servers.amqp_url) as outage, bus_rig(servers, run_id, "down") as rig:
        broker = await rig.new_broker(amqp_url=outage.url, timeout=3.0)
        await outage.stop()
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            await broker.publish(Outgoing(message_id="m1", routing_key="testbus.ping.happened.v1", body=b"{}"))
        assert time.monotonic() - started < 5.0
        await outage.start()


async def test_undecodable_event_is_parked_without_its_secret_values(servers, run_id) -> None:
    async with bus_rig(servers, run_id, "undecodable") as rig:
        broker = await rig.new_broker()
        runner = await rig.new_consumer(broker, name="strict")
        secret = "SECRET-739104"
        body = b'{"id": "not-a-uuid", "type": "testbus.ping.happened", "subject": "x", "data": {"n": "%s"}}' % (
            secret.encode()
        )
        await broker.publish(Outgoing(message_id="bad-1", routing_key="testbus.ping.happened.v1", body=body))
        deadline = time.monotonic() + 10
        while runner.stats.parked < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        parked = await list_parked(broker, broker.topology.queue(rig.SERVICE, "strict"))
        assert len(parked) == 1
        assert "data.n" in parked[0]["error"] and secret not in parked[0]["error"]


async def test_a_publish_channel_that_died_for_good_is_reopened(servers, run_id) -> None:
    async with bus_rig(servers, run_id, "reopen") as rig:
        broker = await rig.new_broker()
        await rig.new_consumer(broker)
        await broker._usable_publish_channel()
        await broker._publish_channel.close()  # closed by the client: aio-pika will not restore it
        await broker.publish(
            Outgoing(message_id="m1", routing_key="testbus.ping.happened.v1", body=ping(1).model_dump_json().encode())
        )
        await rig.wait_until(EFFECTS, 1, timeout=10)


async def test_a_consumer_whose_channel_died_for_good_is_resubscribed(servers, run_id) -> None:
    async with bus_rig(servers, run_id, "resubscribe") as rig:
        broker = await rig.new_broker()
        runner = await rig.new_consumer(broker)
        runner._watchdog.cancel()
        runner._watchdog = asyncio.create_task(runner._watch_channels(period=0.2))
        await runner._channel_of["effects"].close()
        await rig.stage(ping(5))
        rig.new_relay(broker)
        await rig.wait_until(EFFECTS, 1, timeout=15)


class SecretPingData(PingData):
    SECRET_FIELDS: ClassVar[frozenset[str]] = frozenset({"code"})
    code: str


class SecretPing(Event[SecretPingData]):
    TYPE = "testbus.secret.happened"
    VERSION = 1


async def test_a_sent_event_keeps_no_secret_in_the_outbox_but_the_consumer_got_it(servers, run_id) -> None:
    async with bus_rig(servers, run_id, "secrets") as rig:
        async with bus_probe(rig.amqp_url, rig.namespace, SecretPing.routing_key_for()) as probe:
            broker = await rig.new_broker()
            await rig.stage(SecretPing(subject="s-1", data=SecretPingData(n=5, code="654321")))
            rig.new_relay(broker)
            (delivered,) = await probe.wait_for(SecretPing.TYPE)
        assert delivered["data"]["code"] == "654321"
        await rig.wait_until(UNSENT, 0)
        stored = await rig.scalar("SELECT payload FROM outbox")
        assert stored["data"] == {"n": 5, "code": "***"}
        assert stored["id"] == delivered["id"]
