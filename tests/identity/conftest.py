"""Per module: one identity app (dev env, so the captcha answer endpoint exists) on its own database,
a clock the tests move, and a bus probe collecting identity's events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.testing.bus import BusProbe, bus_probe
from shared.testing.harness import RunningService
from tests.identity.factories import Client, FakeClock, identity_service, identity_settings


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def reset_clock(clock: FakeClock) -> None:
    clock.reset()


@pytest.fixture(scope="module")
async def probe(servers, run_id) -> AsyncIterator[BusProbe]:
    async with bus_probe(servers.amqp_url, f"t{run_id}", "identity.#") as found:
        yield found


@pytest.fixture(scope="module")
async def svc(servers, run_id, clock, probe, request) -> AsyncIterator[RunningService]:
    database = "id_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:20]
    async with identity_service(identity_settings(servers, run_id, database), clock) as running:
        yield running


@pytest.fixture
def client(svc: RunningService, probe: BusProbe) -> Client:
    return Client(svc, probe)
