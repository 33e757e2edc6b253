"""The one shape of every service process: a FastAPI app whose lifespan opens the database, the
broker, the outbox relay and the consumers, and closes them in reverse order."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.auth.verifier import TokenVerifier, jwks_from_url
from shared.config import AppEnv, ServiceSettings
from shared.db import make_engine, make_sessionmaker
from shared.http.errors import PROBLEM_JSON, Problem, install_error_handlers
from shared.http.health import router as health_router
from shared.http.middleware import RequestContextMiddleware
from shared.logging import configure_logging, get_logger
from shared.messaging.broker import Broker
from shared.messaging.consumer import ConsumerRunner, Subscription
from shared.messaging.outbox import Relay
from shared.observability import instrument_app

log = get_logger("runtime")
Hook = Callable[["ServiceRuntime"], Awaitable[None]]


@dataclass
class ServiceRuntime:
    settings: ServiceSettings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    broker: Broker
    relay: Relay
    consumers: ConsumerRunner
    extras: dict[str, Any] = field(default_factory=dict)


def build_runtime(settings: ServiceSettings, subscriptions: Iterable[Subscription]) -> ServiceRuntime:
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    sessionmaker = make_sessionmaker(engine)
    broker = Broker(
        url=settings.amqp_url,
        namespace=settings.bus_namespace,
        publish_timeout=settings.publish_timeout_seconds,
        name=f"onex-{settings.service_name}",
    )
    relay = Relay(
        engine=engine,
        broker=broker,
        batch_size=settings.relay_batch_size,
        poll_seconds=settings.relay_poll_seconds,
        service=settings.service_name,
    )
    consumers = ConsumerRunner(
        broker=broker,
        sessionmaker=sessionmaker,
        service=settings.service_name,
        subscriptions=subscriptions,
        prefetch=settings.consumer_prefetch,
        retry_delays_ms=settings.retry_delays_ms,
        batch_size=settings.consumer_batch_size,
        workers=settings.consumer_workers,
    )
    return ServiceRuntime(settings, engine, sessionmaker, broker, relay, consumers)


def create_service_app(
    *,
    settings: ServiceSettings,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    subscriptions: Iterable[Subscription] = (),
    on_start: Sequence[Hook] = (),
    on_stop: Sequence[Hook] = (),
    verifier: TokenVerifier | None = None,
) -> FastAPI:
    configure_logging(service=settings.service_name, json=settings.app_env is not AppEnv.dev, level=settings.log_level)
    runtime = build_runtime(settings, subscriptions)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.broker.start()
        runtime.relay.start()
        runtime.consumers.start()
        for hook in on_start:
            await hook(runtime)
        log.info("service_started", env=settings.app_env.value)
        try:
            yield
        finally:
            for hook in reversed(on_stop):
                with contextlib.suppress(Exception):
                    await hook(runtime)
            await runtime.consumers.stop()
            await runtime.relay.stop()
            await runtime.broker.close()
            await runtime.engine.dispose()
            log.info("service_stopped")

    name = settings.service_name
    app = FastAPI(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=lifespan,
        openapi_url=f"/api/v1/openapi/{name}.json",
        docs_url=f"/api/v1/docs/{name}",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.verifier = verifier or TokenVerifier(
        source=jwks_from_url(settings.jwks_url), issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )
    instrument_app(app, runtime)  # /metrics, HTTP metrics and tracing; inside the request context
    app.add_middleware(RequestContextMiddleware)
    install_error_handlers(app)
    app.include_router(health_router)
    for router in routers:
        app.include_router(router)
    _document_problem_schema(app)
    return app


def _validation_errors_are_problems(schema: dict[str, Any]) -> None:
    """FastAPI documents its own 422 (HTTPValidationError, application/json) on every operation with
    parameters; the error handlers answer it as problem+json, so the document says that instead."""
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            response = operation.get("responses", {}).get("422") if isinstance(operation, dict) else None
            if response is not None and PROBLEM_JSON not in response.get("content", {}):
                response["content"] = problem


def _document_problem_schema(app: FastAPI) -> None:
    """Make `Problem` a named component so every error response can reference it."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}"))
        _validation_errors_are_problems(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def runtime_of(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with runtime_of(request).sessionmaker() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(db_session)]
Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]
