"""Metrics and traces as an operator reads them: /metrics on the real runtime, the outbox backlog
while the broker is cut off (through a TCP proxy, so nobody else's broker goes away), and one
trace from an HTTP request through the outbox and the bus into another service's consumer."""

from __future__ import annotations

import asyncio
import json
import uuid

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id
from sqlalchemy.engine import make_url

from shared.observability import record_sms_failed, record_sms_sent, record_spans
from shared.testing.proxy import TcpProxy
from tests.ops.probe import Probe, probe_service, scrape, value


async def eventually(check, *, timeout: float = 60.0, interval: float = 0.2):
    """Poll an async check until it returns a truthy value (no fixed sleeps)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


async def test_http_metrics_per_route_template_and_errors(servers, run_id):
    async with probe_service(servers, run_id, "opshttp") as svc:
        for item in (1, 2, 3):
            assert (await svc.client.get(f"/api/v1/probe/items/{item}")).status_code == 200
        assert (await svc.client.get("/api/v1/probe/items/0")).status_code == 404
        assert (await svc.client.get("/no/such/path")).status_code == 404
        assert (await svc.client.get("/api/v1/probe/boom")).status_code == 500
        record_sms_sent("verification_code")
        record_sms_failed("registration")

        samples = await scrape(svc)
        route = "/api/v1/probe/items/{item_id}"
        # One series per template, never per raw path: the three ids land in one counter.
        assert value(samples, "onex_http_requests_total", method="GET", route=route, status="200") == 3
        assert value(samples, "onex_http_requests_total", method="GET", route=route, status="404") == 1
        assert value(samples, "onex_http_requests_total", method="GET", route="<unmatched>", status="404") == 1
        assert value(samples, "onex_http_errors_total", method="GET", route="/api/v1/probe/boom") == 1
        assert value(samples, "onex_http_request_duration_seconds_count", method="GET", route=route) == 4
        assert not any(labels and dict(labels).get("route", "").endswith("/items/2") for _, labels in samples)
        assert value(samples, "onex_sms_sent_total", purpose="verification_code") >= 1
        assert value(samples, "onex_sms_failed_total", purpose="registration") >= 1
        assert value(samples, "onex_dependency_up", dependency="database") == 1
        # A queue not declared yet (consumers still starting) is skipped, not an error.
        await svc.app.state.metrics._read_queue(f"t{run_id}.opshttp.not-declared")
        assert value(await scrape(svc), "onex_dependency_up", dependency="broker") == 1


async def test_outbox_backlog_grows_while_broker_is_cut_off_and_drains_after(servers, run_id):
    amqp = make_url(servers.amqp_url.replace("amqp://", "postgresql://", 1))
    proxy = await TcpProxy(amqp.host or "127.0.0.1", amqp.port or 5672).start()
    proxied = servers.amqp_url.replace(f"{amqp.host}:{amqp.port or 5672}", f"127.0.0.1:{proxy.port}", 1)
    assert str(proxy.port) in proxied
    consumed: list[Probe] = []
    try:
        async with probe_service(servers, run_id, "opsbacklog", sink=consumed, amqp_url=proxied) as svc:
            before = await scrape(svc)
            assert value(before, "onex_outbox_pending") == 0
            assert value(before, "onex_dependency_up", dependency="broker") == 1
            queue = f"t{run_id}.opsbacklog.probes"
            assert value(before, "onex_queue_messages", queue=queue) == 0
            assert value(before, "onex_parked_messages", queue=queue) == 0

            proxy.cut()
            await eventually(lambda: _false_async(svc.runtime.broker.is_connected), timeout=20)
            for _ in range(3):
                assert (await svc.client.post("/api/v1/probe/events/10")).status_code == 201
            during = await scrape(svc)
            assert value(during, "onex_outbox_pending") == 30
            assert value(during, "onex_outbox_oldest_pending_age_seconds") > 0
            assert value(during, "onex_dependency_up", dependency="broker") == 0
            assert value(during, "onex_dependency_up", dependency="database") == 1

            proxy.restore()

            async def drained():
                samples = await scrape(svc)
                return value(samples, "onex_outbox_pending") == 0 and samples

            after = await eventually(drained, timeout=90)
            assert value(after, "onex_outbox_oldest_pending_age_seconds") == 0
            assert value(after, "onex_outbox_published_total") >= 30
            await eventually(lambda: _true_async(len({e.id for e in consumed}) == 30), timeout=30)
            final = await scrape(svc)
            assert value(final, "onex_consumer_events_total", outcome="handled") == 30
            assert value(final, "onex_consumer_events_total", outcome="parked") == 0
            # Per queue: every delivery is timed and counted once, processed (duplicates included)
            # or failed (then retried: a loaded database can refuse a connection now and then).
            processed = value(final, "onex_consumer_deliveries_total", queue=queue, outcome="processed")
            failed = value(final, "onex_consumer_deliveries_total", queue=queue, outcome="failed") or 0
            duplicates = value(final, "onex_consumer_events_total", outcome="duplicate")
            assert processed == 30 + duplicates
            assert value(final, "onex_consumer_handle_seconds_count", queue=queue) == processed + failed
    finally:
        await proxy.stop()


async def _false_async(flag: bool) -> bool:
    return not flag


async def _true_async(flag: bool) -> bool:
    return flag


async def test_one_trace_spans_request_outbox_bus_and_consumer(servers, run_id, capsys):
    exporter = InMemorySpanExporter()
    with record_spans(SimpleSpanProcessor(exporter)):
        await _trace_through_the_bus(servers, run_id, capsys, exporter)


async def _trace_through_the_bus(servers, run_id, capsys, exporter):
    consumed: list[Probe] = []
    # What the gateway forwards: the caller's trace context and request id.
    trace_id = uuid.uuid4().hex
    caller_span = uuid.uuid4().hex[:16]
    headers = {"traceparent": f"00-{trace_id}-{caller_span}-01", "X-Request-ID": "req-ops-trace-1"}
    async with (
        probe_service(servers, run_id, "opssink", http=False, sink=consumed),
        probe_service(servers, run_id, "opstrace") as src,
    ):
        capsys.readouterr()
        assert (await src.client.post("/api/v1/probe/events/1", headers=headers)).status_code == 201
        await eventually(lambda: _true_async(len(consumed) == 1), timeout=30)
        event = consumed[0]
        assert event.correlation_id == "req-ops-trace-1"

        spans = exporter.get_finished_spans()
        server = [s for s in spans if s.kind is SpanKind.SERVER and format_trace_id(s.context.trace_id) == trace_id]
        assert len(server) == 1, [s.name for s in spans]
        assert server[0].resource.attributes["service.name"] == "onex-opstrace"
        assert server[0].attributes["onex.request_id"] == "req-ops-trace-1"
        assert format_span_id(server[0].parent.span_id) == caller_span

        def consumer_spans():
            return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CONSUMER]

        await eventually(lambda: _true_async(bool(consumer_spans())), timeout=10)
        consumer = consumer_spans()[0]
        assert consumer.resource.attributes["service.name"] == "onex-opssink"
        assert format_trace_id(consumer.context.trace_id) == trace_id
        # The relay's publish sits between the request that staged the event and its processing.
        [publish] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.PRODUCER]
        assert publish.resource.attributes["service.name"] == "onex-opstrace"
        assert publish.parent.span_id == server[0].context.span_id
        assert consumer.parent.span_id == publish.context.span_id
        assert publish.status.is_ok
        assert consumer.attributes["onex.correlation_id"] == "req-ops-trace-1"

        # Logs of the request and of the consumer carry the same trace id beside the correlation id.
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        request_line = next(
            x for x in lines if x.get("event") == "request" and x.get("request_id") == headers["X-Request-ID"]
        )
        consumed_line = next(x for x in lines if x.get("event") == "probe_consumed")
        assert request_line["trace_id"] == trace_id
        assert consumed_line["trace_id"] == trace_id
        assert consumed_line["correlation_id"] == "req-ops-trace-1"


async def test_metrics_endpoint_is_not_in_the_openapi(servers, run_id):
    async with probe_service(servers, run_id, "opsdoc") as svc:
        schema = (await svc.client.get(f"/api/v1/openapi/{svc.settings.service_name}.json")).json()
        assert "/metrics" not in schema["paths"]
        assert (await svc.client.get("/metrics")).headers["content-type"].startswith("text/plain")


async def test_a_failing_event_shows_as_retries_then_one_parked_message_in_its_queue(servers, run_id):
    consumed: list[Probe] = []
    async with probe_service(servers, run_id, "opsparked", sink=consumed) as svc:
        queue = f"t{run_id}.opsparked.probes"
        assert (await svc.client.post("/api/v1/probe/poison")).status_code == 201
        assert (await svc.client.post("/api/v1/probe/events/1")).status_code == 201

        async def parked():
            samples = await scrape(svc)
            return value(samples, "onex_parked_messages", queue=queue) == 1 and samples

        samples = await eventually(parked, timeout=60)
        attempts = 1 + len(svc.settings.retry_delays_ms)
        # >=: on a loaded machine the good event may fail once too (a refused connection) and retry.
        assert value(samples, "onex_consumer_deliveries_total", queue=queue, outcome="failed") >= attempts
        assert value(samples, "onex_consumer_events_total", outcome="retried") >= attempts - 1
        assert value(samples, "onex_consumer_events_total", outcome="parked") == 1
        assert value(samples, "onex_queue_messages", queue=queue) == 0
        assert [e.data.n for e in consumed] == [0]


async def test_without_an_exporter_trace_ids_still_reach_the_consumers_logs(servers, run_id, capsys):
    """The default (no OTLP endpoint): nothing recorded, but the caller's trace id is carried through
    the outbox and the bus, and every log line on the way carries it."""
    consumed: list[Probe] = []
    trace_id = uuid.uuid4().hex
    headers = {"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01", "X-Request-ID": "req-ops-light-1"}
    async with (
        probe_service(servers, run_id, "opslightsink", http=False, sink=consumed),
        probe_service(servers, run_id, "opslight") as src,
    ):
        capsys.readouterr()
        assert (await src.client.post("/api/v1/probe/events/1", headers=headers)).status_code == 201
        await eventually(lambda: _true_async(len(consumed) == 1), timeout=30)
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        request_line = next(
            x for x in lines if x.get("event") == "request" and x.get("request_id") == "req-ops-light-1"
        )
        consumed_line = next(x for x in lines if x.get("event") == "probe_consumed")
        assert request_line["trace_id"] == trace_id
        assert consumed_line["trace_id"] == trace_id and consumed_line["span_id"] != request_line["span_id"]
        assert consumed_line["correlation_id"] == "req-ops-light-1"
        # Without a caller's context a request starts its own trace.
        capsys.readouterr()
        assert (await src.client.get("/api/v1/probe/items/7")).status_code == 200
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        own = next(x for x in lines if x.get("event") == "request")
        assert len(own["trace_id"]) == 32 and own["trace_id"] != trace_id
