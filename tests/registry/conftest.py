"""One registry for the whole registry test package: its own database and bus namespace, seeded
once through the real `seed-demo` path (regions, majors, the Ministry register, demo certificates)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from services.registry import cli
from services.registry.config import RegistrySettings
from services.registry.main import create_app
from shared.testing.bus import BusProbe, bus_probe
from shared.testing.cleanup import delete_namespace
from shared.testing.harness import RunningService, running_service, service_settings
from tests.registry.factories import Roles


@pytest.fixture(scope="session")
async def registry_namespace(servers, run_id: str) -> AsyncIterator[str]:
    namespace = f"t{run_id}.registry"
    yield namespace
    await delete_namespace(servers.amqp_url, namespace)


@pytest.fixture(scope="session")
async def probe(servers, registry_namespace) -> AsyncIterator[BusProbe]:
    """Bound before the seed, so every registry event of the run has a queue to go to."""
    async with bus_probe(servers.amqp_url, registry_namespace, "registry.#") as found:
        yield found


@pytest.fixture(scope="session")
async def registry(servers, run_id, tokens, registry_namespace, probe) -> AsyncIterator[RunningService]:
    settings = service_settings(
        RegistrySettings, servers=servers, run_id=run_id, service="registry_main", bus_namespace=registry_namespace
    )
    async with running_service(lambda s: create_app(s, verifier=tokens.verifier()), settings) as running:
        await cli._seed(running.runtime.sessionmaker)
        await drained(running)
        yield running


async def drained(running: RunningService, timeout: float = 180.0) -> None:
    """Wait until the relay published the seed's events, so a test's own events are not queued behind them."""
    async with asyncio.timeout(timeout):
        while True:
            async with running.runtime.sessionmaker() as session:
                if not await session.scalar(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")):
                    return
            running.runtime.relay.wake()
            await asyncio.sleep(0.2)


@pytest.fixture(scope="session")
def roles(tokens) -> Roles:
    return Roles(tokens)
