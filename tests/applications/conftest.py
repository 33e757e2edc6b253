"""One applications service per test session (real PostgreSQL, RabbitMQ, lifespan and consumers),
a clock tests can move, file storage in a temporary directory, and a `world` of copies fed by events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.applications.config import ApplicationsSettings
from services.applications.main import create_app
from services.applications.storage import LocalStorage
from shared.messaging.broker import Broker
from shared.testing.harness import RunningService, running_service, service_settings
from tests.applications.factories import Clock, World


@pytest.fixture(scope="session")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def storage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("applications-files")


@pytest.fixture(scope="session")
async def applications(servers, run_id, tokens, clock, storage_dir) -> AsyncIterator[RunningService]:
    settings = service_settings(
        ApplicationsSettings,
        servers=servers,
        run_id=run_id,
        service="applications",
        storage_dir=str(storage_dir),
        rebuild_empty_copies_on_start=False,
    )

    def build(s: ApplicationsSettings):  # type: ignore[no-untyped-def]
        return create_app(s, verifier=tokens.verifier(), clock=clock, storage=LocalStorage(s.storage_dir))

    async with running_service(build, settings) as running:
        yield running


@pytest.fixture(scope="session")
async def bus(servers, run_id) -> AsyncIterator[Broker]:
    broker = Broker(url=servers.amqp_url, namespace=f"t{run_id}", name="tests-applications")
    await broker.connect()
    yield broker
    await broker.close()


@pytest.fixture
async def world(applications, bus, tokens, clock, servers, run_id) -> AsyncIterator[World]:
    world = World(
        service=applications, broker=bus, tokens=tokens, clock=clock, amqp_url=servers.amqp_url, namespace=f"t{run_id}"
    )
    yield world
    clock.reset()
