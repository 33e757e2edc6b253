"""What an operator sees of a service: Prometheus metrics at /metrics and OpenTelemetry traces.

Metrics. Each app has its own registry (several apps share one process in tests), holding
- HTTP requests, latency and errors per route template (`onex_http_*`);
- the outbox backlog and the age of its oldest unsent event, read from the database at scrape time;
- relay and consumer counters (published, handled, duplicates, redelivered, retried, parked);
- per queue, the messages waiting in the consumer's queue (its lag) and in its parking queue, read
  from the broker with a passive declare at scrape time.
Process-wide counters a service increments itself (SMS sent/failed) live in the default registry
and are shown by every app's /metrics too.

Traces. One SDK tracer provider per service name. With `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, requests are traced by the FastAPI instrumentation and
spans exported over OTLP; without it nothing is recorded, but a light non-recording span per
request and per delivery still gives trace ids, so that logs carry them and events propagate them.
The trace context of the request that staged an event is stored in
the outbox row's headers (`trace_headers`), continued by the relay's producer span (`PublishSpans`)
and then by the consumer (`consuming`), so one trace spans gateway → producer → bus → consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import aiormq
import structlog
from fastapi import FastAPI, Request, Response
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, format_span_id, format_trace_id
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logging import get_logger

if TYPE_CHECKING:
    from shared.runtime import ServiceRuntime

log = get_logger("observability")
METRICS_PATH = "/metrics"
UNMATCHED_ROUTE = "<unmatched>"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SCRAPE_TIMEOUT_SECONDS = 2.0

# --- process-wide counters a service increments (notify) -------------------------------------------

SMS_SENT = Counter("onex_sms_sent_total", "SMS messages the provider accepted", ["purpose"])
SMS_FAILED = Counter("onex_sms_failed_total", "SMS messages given up after the last retry", ["purpose"])


def record_sms_sent(purpose: str) -> None:
    """Count one SMS the provider accepted (`purpose`: the template, e.g. `verification_code`)."""
    SMS_SENT.labels(purpose=purpose).inc()


def record_sms_failed(purpose: str) -> None:
    """Count one SMS that ended `failed` after its last retry."""
    SMS_FAILED.labels(purpose=purpose).inc()


# Per consumer queue, counted around each delivery by `consuming` (process-wide: the queue names the
# service). The runner's own totals (duplicates included) are `onex_consumer_events_total`.
CONSUMED = Counter(
    "onex_consumer_deliveries_total", "Deliveries handled by a consumer, by queue and outcome", ["queue", "outcome"]
)
REDELIVERED = Counter("onex_consumer_redeliveries_total", "Deliveries the broker flagged as redelivered", ["queue"])
HANDLE_SECONDS = Histogram(
    "onex_consumer_handle_seconds",
    "Time to handle one delivery (handler and inbox commit)",
    ["queue"],
    buckets=LATENCY_BUCKETS,
)
_delivery_failed: ContextVar[bool] = ContextVar("onex_delivery_failed", default=False)


# --- per-app metrics --------------------------------------------------------------------------------


class _Forward:
    """Shows the process-wide registry through an app's registry (one exposition, one # EOF)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        yield from self.registry.collect()


class _RuntimeCounters:
    """Relay and consumer counters, read from their in-memory stats at scrape time."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterable[Metric]:
        relay = self.runtime.relay.stats
        published = CounterMetricFamily("onex_outbox_published", "Outbox events published and confirmed")
        published.add_metric([], relay.published)
        yield published
        failed = CounterMetricFamily("onex_outbox_publish_failures", "Outbox publishes that failed (row kept)")
        failed.add_metric([], relay.failed)
        yield failed
        stats = self.runtime.consumers.stats
        events = CounterMetricFamily("onex_consumer_events", "Consumed events by outcome", labels=["outcome"])
        for outcome, value in (
            ("handled", stats.handled),
            ("duplicate", stats.duplicates),
            ("redelivered", stats.redelivered),
            ("retried", stats.retried),
            ("parked", stats.parked),
        ):
            events.add_metric([outcome], value)
        yield events


class ServiceMetrics:
    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        self.registry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            "onex_http_requests_total",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "onex_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.errors = Counter(
            "onex_http_errors_total",
            "HTTP responses with status >= 500 by route template",
            ["method", "route"],
            registry=reg,
        )
        self.outbox_pending = Gauge("onex_outbox_pending", "Outbox events not yet published", registry=reg)
        self.outbox_oldest_age = Gauge(
            "onex_outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox event", registry=reg
        )
        self.queue_messages = Gauge(
            "onex_queue_messages", "Messages waiting in a consumer's queue (its lag)", ["queue"], registry=reg
        )
        self.queue_consumers = Gauge("onex_queue_consumers", "Consumers attached to a queue", ["queue"], registry=reg)
        self.parked_messages = Gauge(
            "onex_parked_messages", "Messages in a consumer's parking queue", ["queue"], registry=reg
        )
        self.up = Gauge(
            "onex_dependency_up", "1 if the dependency answered at the last scrape", ["dependency"], registry=reg
        )
        reg.register(_RuntimeCounters(runtime))
        reg.register(_Forward(REGISTRY))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        exemplar = _trace_exemplar()
        self.latency.labels(method, route).observe(seconds, exemplar=exemplar)
        if status >= 500:
            self.errors.labels(method, route).inc()

    async def refresh(self) -> None:
        """Read the gauges that live in the database and the broker (bounded so a scrape never hangs)."""
        self.up.labels("database").set(1 if await self._refresh_outbox() else 0)
        self.up.labels("broker").set(1 if await self._refresh_queues() else 0)

    async def _refresh_outbox(self) -> bool:
        from shared.messaging.outbox import pending_count

        try:
            async with asyncio.timeout(SCRAPE_TIMEOUT_SECONDS):
                pending, age = await pending_count(self.runtime.engine)
        except Exception as exc:
            log.warning("metrics_outbox_unavailable", error=str(exc))
            return False
        self.outbox_pending.set(pending)
        self.outbox_oldest_age.set(age)
        return True

    def _queue_names(self) -> list[str]:
        runner = self.runtime.consumers
        topology = self.runtime.broker.topology
        return [topology.queue(runner.service, sub.name) for sub in runner.subscriptions if sub.handlers]

    async def _refresh_queues(self) -> bool:
        broker = self.runtime.broker
        if not broker.is_connected:
            return False
        try:
            async with asyncio.timeout(SCRAPE_TIMEOUT_SECONDS):
                for name in self._queue_names():
                    await self._read_queue(name)
        except Exception as exc:  # the broker went away mid-scrape, or is too slow to answer
            log.warning("metrics_queues_unavailable", error=str(exc))
            return False
        return True

    async def _read_queue(self, name: str) -> None:
        """Depths of a consumer's queue and its parking queue (a passive declare on a channel of its
        own: a queue not declared yet closes that channel, and the queue is skipped)."""
        broker = self.runtime.broker
        channel = await broker.connection.channel()
        try:
            queue = await channel.declare_queue(name, passive=True)
            parked = await channel.declare_queue(broker.topology.parking_queue(name), passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
        result = queue.declaration_result
        self.queue_messages.labels(name).set(result.message_count or 0)
        self.queue_consumers.labels(name).set(result.consumer_count or 0)
        self.parked_messages.labels(name).set(parked.declaration_result.message_count or 0)

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (never by raw path: bounded labels)
    and tags the request's server span with its request and correlation ids."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        _tag_span_with_ids(trace.get_current_span())
        started = time.perf_counter()
        status = {"code": 500}

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            self.metrics.observe(scope["method"], route, status["code"], time.perf_counter() - started)


async def metrics_endpoint(request: Request) -> Response:
    metrics: ServiceMetrics = request.app.state.metrics
    await metrics.refresh()
    body, content_type = metrics.exposition(request.headers.get("accept"))
    return Response(body, media_type=content_type)


# --- tracing ----------------------------------------------------------------------------------------

_providers: dict[str, TracerProvider] = {}
_global_provider_set = False
_extra_processors: list[SpanProcessor] = []


def otlp_endpoint() -> str | None:
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")


def recording() -> bool:
    """Spans are recorded only when something takes them: an OTLP endpoint (or a test's processor)."""
    return bool(otlp_endpoint() or _extra_processors)


@contextlib.contextmanager
def record_spans(processor: SpanProcessor) -> Iterator[None]:
    """Record spans into `processor` too while inside (tests); applies to apps created inside."""
    _extra_processors.append(processor)
    for provider in _providers.values():
        provider.add_span_processor(processor)
    try:
        yield
    finally:
        _extra_processors.remove(processor)
        processor.shutdown()


def tracer_provider(service: str) -> TracerProvider:
    """The service's tracer provider. Trace ids always exist and propagate; without an OTLP endpoint
    nothing is recorded (sampler off), which keeps a request's tracing cost to a few microseconds."""
    global _global_provider_set
    provider = _providers.get(service)
    if provider is None:
        resource = Resource.create({"service.name": f"onex-{service}"})
        if recording():
            provider = TracerProvider(resource=resource)  # OTEL_TRACES_SAMPLER applies; parent-based by default
        else:
            provider = TracerProvider(resource=resource, sampler=ALWAYS_OFF)
        if otlp_endpoint():
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        for processor in _extra_processors:
            provider.add_span_processor(processor)
        _providers[service] = provider
        if not _global_provider_set:  # one process runs one service in production
            trace.set_tracer_provider(provider)
            _global_provider_set = True
    return provider


class LightTracingMiddleware:
    """When spans are not recorded: a non-recording server span per request, continuing a caller's
    `traceparent`, so that logs and events still carry the trace id (no attributes collected)."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.tracer = tracer_provider(service).get_tracer("onex.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers", ())
            if key in (b"traceparent", b"tracestate")
        }
        context = propagate.extract(carrier) if carrier else None
        with self.tracer.start_as_current_span("HTTP", context=context, kind=SpanKind.SERVER):
            await self.app(scope, receive, send)


def trace_headers() -> dict[str, str]:
    """The current trace context as message headers (W3C `traceparent`), for an outbox row."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


class PublishSpans:
    """Producer spans for one relay batch, when spans are recorded: each continues the trace of the
    request that staged its event, and the message carries the span's own context, so a trace reads
    request → publish → process. Not recording, it changes nothing and costs nothing."""

    def __init__(self, service: str) -> None:
        self.tracer = tracer_provider(service).get_tracer("onex.messaging") if recording() else None
        self._spans: list[Span] = []

    def start(self, *, routing_key: str, message_id: str, headers: dict[str, Any]) -> dict[str, Any]:
        """Open the span of one message; returns the headers to publish it with."""
        if self.tracer is None:
            return headers
        attributes = {
            "messaging.system": "rabbitmq",
            "messaging.operation": "publish",
            "messaging.rabbitmq.destination.routing_key": routing_key,
            "messaging.message.id": message_id,
        }
        span = self.tracer.start_span(
            f"{routing_key} publish",
            context=propagate.extract(_carrier(headers)),
            kind=SpanKind.PRODUCER,
            attributes=attributes,
        )
        self._spans.append(span)
        carrier = dict(headers)
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        return carrier

    def end(self, errors: Iterable[BaseException | None]) -> None:
        """Close the spans in start order, each with its message's outcome (None: confirmed)."""
        for span, error in zip(self._spans, errors, strict=False):
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:200]))
            span.end()
        self._spans.clear()


def _carrier(headers: Mapping[str, Any] | None) -> dict[str, str]:
    carrier: dict[str, str] = {}
    for key, value in (headers or {}).items():
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str):
            carrier[key] = value
    return carrier


@contextlib.contextmanager
def consuming(
    service: str,
    *,
    queue: str,
    routing_key: str,
    headers: Mapping[str, Any] | None,
    event_id: str,
    redelivered: bool = False,
) -> Iterator[Span]:
    """A consumer span continuing the trace whose context the message carries in its headers, and
    the queue's delivery metrics (outcome `failed` when the handler's error went to `mark_span_failed`)."""
    tracer = tracer_provider(service).get_tracer("onex.messaging")
    attributes = {
        "messaging.system": "rabbitmq",
        "messaging.operation": "process",
        "messaging.destination.name": queue,
        "messaging.rabbitmq.destination.routing_key": routing_key,
        "messaging.message.id": event_id,
    }
    context = propagate.extract(_carrier(headers))
    with tracer.start_as_current_span(
        f"{routing_key} process", context=context, kind=SpanKind.CONSUMER, attributes=attributes
    ) as span:
        _tag_span_with_ids(span)
        if redelivered:
            REDELIVERED.labels(queue).inc()
        token = _delivery_failed.set(False)
        started = time.perf_counter()
        try:
            yield span
        finally:
            HANDLE_SECONDS.labels(queue).observe(time.perf_counter() - started)
            CONSUMED.labels(queue, "failed" if _delivery_failed.get() else "processed").inc()
            _delivery_failed.reset(token)


def mark_span_failed(exc: BaseException) -> None:
    """Record a handled failure (a retry, a parked message) on the current span and delivery."""
    _delivery_failed.set(True)
    span = trace.get_current_span()
    if span.is_recording():
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:200]))


def _tag_span_with_ids(span: Span) -> None:
    if not span.is_recording():
        return
    context = structlog.contextvars.get_contextvars()
    for key in ("request_id", "correlation_id", "causation_id"):
        if context.get(key):
            span.set_attribute(f"onex.{key}", str(context[key]))


def _trace_exemplar() -> dict[str, str] | None:
    """The trace id as an exemplar, only for a trace the backend will have (a recorded span)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return None
    return {"trace_id": format_trace_id(span.get_span_context().trace_id)}


def add_trace_ids(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: every line logged inside a span carries its trace and span ids."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format_trace_id(context.trace_id))
        event_dict.setdefault("span_id", format_span_id(context.span_id))
    return event_dict


def install_log_trace_ids() -> None:
    processors = list(structlog.get_config()["processors"])
    if add_trace_ids not in processors:
        processors.insert(1 if processors else 0, add_trace_ids)
        structlog.configure(processors=processors)


# --- the one call the runtime makes -----------------------------------------------------------------


def instrument_app(app: FastAPI, runtime: ServiceRuntime) -> None:
    """Mount /metrics, count HTTP requests, trace them, and put trace ids into log lines.

    Call before the request-context middleware is added, so that this middleware runs inside it
    (with the request and correlation ids bound) and the tracing middleware outside both."""
    service = runtime.settings.service_name
    metrics = ServiceMetrics(runtime)
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_api_route(METRICS_PATH, metrics_endpoint, methods=["GET"], include_in_schema=False)
    install_log_trace_ids()
    if not recording():
        _wrap_outermost(app, LightTracingMiddleware, service=service)
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider(service),
        excluded_urls="/healthz,/readyz,/metrics",
        exclude_spans=["receive", "send"],
    )


def _wrap_outermost(app: FastAPI, middleware: Any, **options: Any) -> None:
    """Put `middleware` outside every other one (as the OpenTelemetry instrumentation does), so the
    request-context middleware's access log line is written inside the span."""
    build = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        return middleware(build(), **options)

    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]
