"""Which PostgreSQL and RabbitMQ the tests use: `TEST_PG_URL` / `TEST_AMQP_URL`, else the local
servers, else containers started by testcontainers when a Docker engine answers."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass
from urllib.parse import urlparse

from shared.config import LOCAL_AMQP, LOCAL_PG


@dataclass(frozen=True)
class TestServers:
    __test__ = False

    pg_base: str  # postgresql+asyncpg://user@host:port (no database)
    amqp_url: str

    def database_url(self, name: str) -> str:
        return f"{self.pg_base}/{name}"


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+asyncpg", ""))
    with contextlib.suppress(OSError), socket.create_connection((parsed.hostname, parsed.port or default_port), 1):
        return True
    return False


def _docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0


_containers: list[object] = []


def discover() -> TestServers:
    pg = os.environ.get("TEST_PG_URL", LOCAL_PG)
    amqp = os.environ.get("TEST_AMQP_URL", LOCAL_AMQP)
    if _reachable(pg, 5432) and _reachable(amqp, 5672):
        return TestServers(pg_base=pg.rstrip("/"), amqp_url=amqp)
    if not _docker_available():
        raise RuntimeError("no PostgreSQL/RabbitMQ reachable and no Docker engine for testcontainers")
    from testcontainers.postgres import PostgresContainer
    from testcontainers.rabbitmq import RabbitMqContainer

    postgres = PostgresContainer("postgres:15", driver="asyncpg").start()
    rabbit = RabbitMqContainer("rabbitmq:3.13").start()
    _containers.extend([postgres, rabbit])
    pg_url = postgres.get_connection_url().rsplit("/", 1)[0]
    params = rabbit.get_connection_params()
    amqp_url = f"amqp://guest:guest@{params.host}:{params.port}/"
    return TestServers(pg_base=pg_url, amqp_url=amqp_url)


def stop_containers() -> None:
    for container in _containers:
        with contextlib.suppress(Exception):
            container.stop()  # type: ignore[attr-defined]


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]
