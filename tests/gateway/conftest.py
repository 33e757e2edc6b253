"""A real nginx gateway in front of echo upstreams (tests/gateway/echo_server.py): every service has one
instance, applications has two (the second in its own process so a test can lose it)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from deploy.gateway.nginx import Gateway
from deploy.gateway.render import GatewayConfig
from deploy.gateway.routes import SERVICES
from deploy.processes import find_free_base_port, port_open, spawn, stop_processes, tail

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_OFFSET = 80
FAILOVER_GATEWAY_OFFSET = 81


@dataclass
class Rig:
    gateway: Gateway
    base_port: int
    tmp: Path

    @property
    def url(self) -> str:
        return self.gateway.url

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, trust_env=False)


def instance_port(base: int, service: str, index: int) -> int:
    return base + 1 + SERVICES.index(service) + 100 * index


def _start_echo(bindings: list[str], log: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = spawn([sys.executable, "-m", "tests.gateway.echo_server", *bindings], log_path=log, env=env, cwd=ROOT)
    ports = [int(b.rsplit(":", 1)[1]) for b in bindings]
    deadline = time.monotonic() + 20
    while not all(port_open(p) for p in ports):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"echo server did not start:\n{tail(log)}")
        time.sleep(0.05)
    return process.pid


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("gateway")
    offsets = [1 + i for i in range(len(SERVICES))] + [104, GATEWAY_OFFSET, FAILOVER_GATEWAY_OFFSET, 82]
    base = find_free_base_port(offsets)
    first = [f"{s}:0:{instance_port(base, s, 0)}" for s in SERVICES]
    second = [f"applications:1:{instance_port(base, 'applications', 1)}"]
    pids = []
    gateway: Gateway | None = None
    try:
        pids.append(_start_echo(first, tmp / "echo-0.log"))
        pids.append(_start_echo(second, tmp / "echo-1.log"))
        web = tmp / "web"
        (web / "assets").mkdir(parents=True)
        (web / "index.html").write_text("<!doctype html><title>spa</title><div id=app>SPA</div>", encoding="utf-8")
        (web / "assets" / "app.js").write_text("console.log('app')", encoding="utf-8")
        upstreams = {s: [f"127.0.0.1:{instance_port(base, s, 0)}"] for s in SERVICES}
        upstreams["applications"].append(f"127.0.0.1:{instance_port(base, 'applications', 1)}")
        config = GatewayConfig(
            listen=f"127.0.0.1:{base + GATEWAY_OFFSET}",
            upstreams=upstreams,
            prefix=tmp / "nginx",
            log_dir=tmp / "log",
            web_root=web,
            workers="1",
        )
        gateway = Gateway(config, cwd=ROOT)
        assert gateway.apply() == "started"
        yield Rig(gateway=gateway, base_port=base, tmp=tmp)
    finally:
        if gateway is not None:
            gateway.stop()
        stop_processes(pids, grace=5)


@pytest.fixture(scope="module")
def failover_gateway(rig: Rig) -> Iterator[Gateway]:
    """A second nginx on the same upstreams that never marks an instance down, so every request that
    lands on the broken instance shows whether nginx retried it."""
    config = replace(
        rig.gateway.config,
        listen=f"127.0.0.1:{rig.base_port + FAILOVER_GATEWAY_OFFSET}",
        prefix=rig.tmp / "nginx-failover",
        log_dir=rig.tmp / "log-failover",
        max_fails=0,
    )
    gateway = Gateway(config, cwd=ROOT)
    gateway.apply()
    try:
        yield gateway
    finally:
        with contextlib.suppress(Exception):
            gateway.stop()
