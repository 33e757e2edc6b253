"""End-to-end fixtures: the whole platform as real processes (deploy.platform.Platform, as `make up` runs
it) with two instances each of applications and notify, isolated from `make up` and other runs (own
databases, bus namespace, ports), demo data loaded. Tests talk to its gateway only.

Set ONEX_E2E_URL=http://127.0.0.1:8080 to run the flow tests against a platform that is already up
(the tests that read instance metrics or cause faults then skip). For development,
ONEX_E2E_PLATFORM=<run_id>:<base_port> attaches to an isolated platform started earlier with the same
settings (it is neither seeded again nor stopped)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest

from deploy.gateway.render import RateLimits
from deploy.platform import Platform, port_offsets
from deploy.processes import find_free_base_port
from shared.testing.servers import TestServers
from tests.e2e.api import Api

SCALE = {"applications": 2, "notify": 2}
# One test client logs in many accounts and asks several SMS codes from one address.
E2E_LIMITS = RateLimits(login_rate="600r/m", login_burst=200, sms_rate="120r/m", sms_burst=60, auth_burst=200)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Within this package: the README walkthrough first (it picks a random unregistered school), the
    flows, then the faults (they stop the servers under the shared platform), the fuzzing last (its
    random writes must not reach the schools the others pick)."""
    late = {"test_readme_walkthrough.py": -1, "test_faults.py": 1, "test_fuzz.py": 2}
    here = [i for i, item in enumerate(items) if "tests/e2e/" in str(item.path).replace("\\", "/")]
    ordered = sorted((items[i] for i in here), key=lambda item: late.get(item.path.name, 0))
    for index, item in zip(here, ordered, strict=True):
        items[index] = item


def make_platform(
    servers: TestServers, prefix: str, scale: dict[str, int], *, run: str | None = None, base_port: int | None = None
) -> Platform:
    run = run or prefix + secrets.token_hex(3)
    return Platform(
        run_id=run,
        base_port=base_port or find_free_base_port(port_offsets(scale)),
        scale=scale,
        namespace=f"t{run}",
        db_prefix=f"t_{run}_",
        pg_base=servers.pg_base,
        amqp_url=servers.amqp_url,
        seed=True,
        web=False,
        limits=E2E_LIMITS,
        db_pool_size=4,
        drop_on_stop=True,
    )


@pytest.fixture(scope="package")
async def platform(servers: TestServers) -> AsyncIterator[Platform | None]:
    if os.environ.get("ONEX_E2E_URL"):
        yield None
        return
    attach = os.environ.get("ONEX_E2E_PLATFORM")
    if attach:
        run, _, port = attach.partition(":")
        yield make_platform(servers, "e", SCALE, run=run, base_port=int(port))
        return
    async with make_platform(servers, "e", SCALE) as started:
        yield started


@pytest.fixture(scope="package")
def gateway_url(platform: Platform | None) -> str:
    return platform.gateway_url if platform is not None else os.environ["ONEX_E2E_URL"].rstrip("/")


@pytest.fixture(scope="package")
async def api(gateway_url: str) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30.0, trust_env=False) as client:
        yield Api(client)
