"""Run a service for a test: its own database (created and migrated), the run's bus namespace, its
real lifespan (relay and consumers included), and an httpx client through the real ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from shared.config import ServiceSettings
from shared.db import create_and_migrate, drop_database
from shared.runtime import ServiceRuntime
from shared.testing.servers import TestServers

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


@dataclass
class RunningService:
    app: FastAPI
    client: httpx.AsyncClient
    settings: ServiceSettings

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtime
        return runtime


def service_settings(
    settings_cls: type[SettingsT], *, servers: TestServers, run_id: str, service: str, **overrides: Any
) -> SettingsT:
    values: dict[str, Any] = {
        "app_env": "test",
        "database_url": servers.database_url(f"t_{run_id}_{service}"),
        "amqp_url": servers.amqp_url,
        "bus_namespace": f"t{run_id}",
        "retry_delays_ms": [50, 100],
        "relay_poll_seconds": 0.2,
        "publish_timeout_seconds": 3.0,
        "db_pool_size": 5,
    }
    values.update(overrides)
    return settings_cls(**values)


def migrations_dir(service: str) -> Path:
    return Path(__file__).resolve().parents[2] / "services" / service / "migrations"


@contextlib.asynccontextmanager
async def running_service(
    create_app: Callable[..., FastAPI],
    settings: ServiceSettings,
    *,
    drop: bool = True,
    migrate: bool = True,
    wait_consumers: bool = True,
) -> AsyncIterator[RunningService]:
    """Start the service's real lifespan and yield a client; drop its database afterwards."""
    if migrate:
        await create_and_migrate(migrations_dir(settings.service_name), settings.database_url)
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            runtime: ServiceRuntime = app.state.runtime
            await runtime.broker.wait_connected(10)
            if wait_consumers and runtime.consumers._start_task is not None:
                await asyncio.wait_for(asyncio.shield(runtime.consumers._start_task), 10)
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield RunningService(app=app, client=client, settings=settings)
    finally:
        if drop:
            with contextlib.suppress(Exception):
                await drop_database(settings.database_url)
