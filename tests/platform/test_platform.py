"""The platform launcher end to end: real service processes, a real nginx, the real servers.

Both tests start the five services (one with two applications instances) and check that everything
is ready through the gateway and that stopping leaves no process, pid file, database or queue behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from deploy.gateway.routes import SERVICES
from deploy.platform import ROOT, Platform, PlatformError, port_offsets
from deploy.processes import cmdline, find_free_base_port, port_free
from shared.config import LOCAL_AMQP, LOCAL_PG
from shared.testing.servers import TestServers


def _processes_mentioning(needles: list[str]) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            line = " ".join(cmdline(int(entry.name)))
            if any(needle in line for needle in needles):
                found.append(f"{entry.name}: {line}")
    return found


def _needles(platform: Platform) -> list[str]:
    ports = [f"--port {i.port}" for i in platform.instances()]
    return [*ports, str(platform.run_dir / "nginx")]


async def _databases(servers: TestServers, prefix: str) -> list[str]:
    conn = await asyncpg.connect(servers.pg_base.replace("+asyncpg", "") + "/postgres")
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE starts_with(datname, $1)", prefix)
    finally:
        await conn.close()
    return [r["datname"] for r in rows]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "deploy.local", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


async def test_platform_runs_every_service_behind_the_gateway_and_stops_cleanly(
    servers: TestServers, run_id: str
) -> None:
    scale = {"applications": 2}
    platform = Platform(
        f"p{run_id}",
        base_port=find_free_base_port(port_offsets(scale)),
        scale=scale,
        pg_base=servers.pg_base,
        amqp_url=servers.amqp_url,
        seed=False,
        web=False,
        db_pool_size=2,
        drop_on_stop=True,
    )
    local_servers = servers.pg_base == LOCAL_PG and servers.amqp_url == LOCAL_AMQP
    where = ["--run-id", platform.run_id, "--base-port", str(platform.base_port)]
    async with platform:
        assert sorted(await _databases(servers, platform.db_prefix)) == sorted(platform.db_prefix + s for s in SERVICES)
        rows = platform.status()
        assert [r["name"] for r in rows] == [
            "identity-0",
            "registry-0",
            "plans-0",
            "applications-0",
            "applications-1",
            "notify-0",
            "gateway",
        ]
        assert all(r["ready"] for r in rows), rows
        pids = {r["name"]: r["pid"] for r in rows}
        async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=10, trust_env=False) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            for service in SERVICES:
                ready = await client.get(f"/readyz/{service}")
                assert ready.json() == {"status": "ready", "checks": {"database": True, "broker": True}}
                document = await client.get(f"/api/v1/openapi/{service}.json")
                assert document.status_code == 200
                assert "/readyz" in document.json()["paths"]
            for _ in range(6):
                assert (await client.get("/readyz/applications")).status_code == 200
        access = platform.log_dir / "gateway-access.log"
        entries = [json.loads(line) for line in access.read_text().splitlines()]
        used = {e["upstream"] for e in entries if e["uri"] == "/readyz/applications"}
        assert used == {f"127.0.0.1:{i.port}" for i in platform.instances() if i.service == "applications"}

        if not local_servers:  # (with the local servers, `make up` below checks the same through the CLI)
            # A second start is a no-op: the same processes keep running, nothing is duplicated.
            await asyncio.to_thread(platform.start)
            assert {r["name"]: r["pid"] for r in platform.status()} == pids
        assert len(_processes_mentioning(_needles(platform))) == len(pids)

        # An instance crashes: the gateway keeps serving from the other one, and it can be restarted.
        killed = platform.kill("applications-1")
        async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=10, trust_env=False) as client:
            for _ in range(6):
                assert (await client.get("/readyz/applications")).status_code == 200
        # A start-up failure names the instance and shows the end of its log.
        platform.extra_env = {"APPLICATIONS_DB_POOL_SIZE": "many"}
        with pytest.raises(PlatformError) as failure:
            await asyncio.to_thread(platform.restart_missing)
        assert "applications-1 exited during start-up" in str(failure.value)
        assert "db_pool_size" in str(failure.value)  # pydantic's complaint, from the instance's log
        platform.extra_env = {}
        assert await asyncio.to_thread(platform.restart_missing) == ["applications-1"]
        assert platform.pid_of("applications-1") not in (None, killed)
        running = _processes_mentioning(_needles(platform))
        assert len(running) == len(pids)

        if local_servers:
            # `make up` again (another process, same run): finds everything running, prints the welcome.
            up = await asyncio.to_thread(_cli, "up", "--scale", "applications=2", "--no-seed", "--no-web", *where)
            assert up.returncode == 0, up.stdout + up.stderr
            assert up.stdout.count("already running") == len(pids) - 1
            assert platform.gateway_url in up.stdout and f"{platform.gateway_url}/docs" in up.stdout
            assert "gx_province" in up.stdout and "4145010867" in up.stdout  # docs/conventions.md's accounts
            assert _processes_mentioning(_needles(platform)) == running
            assert (await asyncio.to_thread(_cli, "status", *where)).returncode == 0
            # `make down` from yet another process stops exactly what was started.
            down = await asyncio.to_thread(_cli, "down", *where)
            assert down.returncode == 0 and "gateway" in down.stdout, down.stdout
            assert _processes_mentioning(_needles(platform)) == []
            assert (await asyncio.to_thread(_cli, "status", *where)).returncode == 1

    assert _processes_mentioning(_needles(platform)) == []
    assert all(port_free(i.port) for i in platform.instances()) and port_free(platform.gateway_port)
    assert list(platform.run_dir.glob("*.pid")) == []
    assert await _databases(servers, platform.db_prefix) == []
