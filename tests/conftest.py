"""Session-wide test fixtures: which servers, this run's id and namespace, token minting."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.testing.cleanup import delete_namespace, drop_run_databases
from shared.testing.servers import TestServers, discover, new_run_id, stop_containers
from shared.testing.tokens import TestTokens


@pytest.fixture(scope="session")
def servers() -> TestServers:
    found = discover()
    yield found
    stop_containers()


@pytest.fixture(scope="session")
async def run_id(servers: TestServers) -> AsyncIterator[str]:
    rid = new_run_id()
    yield rid
    await drop_run_databases(servers, rid)
    await delete_namespace(servers.amqp_url, f"t{rid}")


@pytest.fixture(scope="session")
def tokens() -> TestTokens:
    return TestTokens()
