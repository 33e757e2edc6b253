"""What can be checked of the container images and of compose.yaml without a Docker engine (none
runs on this machine): the Dockerfiles' shape, that what they copy exists, the images' entry point
run as a real process (migrate, serve, healthcheck), the gateway image's nginx config accepted by
`nginx -t`, and compose.yaml's wiring and settings."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from deploy.docker import render_gateway
from deploy.gateway.routes import SERVICES as GATEWAY_SERVICES
from shared.db import create_database
from tests.ops.platform import ROOT, check_settings_env, repo_services

DOCKER = ROOT / "deploy" / "docker"
DOCKERFILES = {"service": DOCKER / "service.Dockerfile", "gateway": DOCKER / "gateway.Dockerfile"}
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|make|build-essential|apt-get install|apk add|uv sync|npm)\b")


def stages(dockerfile: Path) -> list[list[str]]:
    """Instructions per stage (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    result: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            result.append([])
        if result:
            result[-1].append(line)
    return result


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_is_multi_stage_non_root_with_healthcheck_and_no_build_tools(name):
    all_stages = stages(DOCKERFILES[name])
    assert len(all_stages) >= 2, "multi-stage: build stages apart from the final one"
    for stage in all_stages:
        image = stage[0].split()[1]
        assert ":" in image and not image.endswith(":latest"), f"pinned base image, not {image}"
    final = all_stages[-1]
    users = [ln.split()[1] for ln in final if ln.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "the final stage runs as a non-root user"
    assert int(users[-1].split(":")[0]) >= 10000
    assert any(ln.upper().startswith("HEALTHCHECK ") for ln in final)
    runs = " ".join(ln for ln in final if ln.upper().startswith("RUN "))
    assert not BUILD_TOOLS.search(runs), f"build tools in the final stage: {runs}"
    copies = [ln for ln in final if ln.upper().startswith("COPY ") and "--from=" not in ln]
    for line in copies:  # the final stage copies from the build context only small, known files
        assert "shared" not in line and "services" not in line


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_everything_a_dockerfile_copies_exists_and_is_not_ignored(name):
    dockerfile = DOCKERFILES[name]
    ignore = Path(f"{dockerfile}.dockerignore").read_text(encoding="utf-8")
    allowed = [ln[1:] for ln in ignore.splitlines() if ln.startswith("!")]
    for stage in stages(dockerfile):
        for line in stage:
            if not line.upper().startswith("COPY ") or "--from=" in line:
                continue
            parts = [p for p in line.split()[1:] if not p.startswith("--")]
            for source in parts[:-1]:
                assert (ROOT / source).exists(), f"{dockerfile.name} copies {source}, which does not exist"
                assert any(
                    source == a or a.startswith(source.rstrip("/") + "/") or source.startswith(a.rstrip("*/"))
                    for a in allowed
                ), f"{source} is excluded by {dockerfile.name}.dockerignore"


def test_service_image_entry_point_matches_the_manifests():
    text = DOCKERFILES["service"].read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["python", "-m", "deploy.docker.entrypoint"]' in text
    assert "EXPOSE 8000" in text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_entry_point_migrates_serves_and_answers_its_healthcheck(servers, run_id, tmp_path):
    """The container's own commands, run as real processes (what `docker run` would start)."""
    url = servers.database_url(f"t_{run_id}_ctrplans")
    await create_database(url)
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PLANS_")},
        "PYTHONPATH": str(ROOT),
        "PLANS_APP_ENV": "test",
        "PLANS_DATABASE_URL": url,
        "PLANS_AMQP_URL": servers.amqp_url,
        "PLANS_BUS_NAMESPACE": f"t{run_id}",
        "ONEX_SERVICE": "plans",
        "ONEX_PORT": str(port),
    }
    entry = [sys.executable, "-m", "deploy.docker.entrypoint"]
    migrated = subprocess.run([*entry, "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    assert "plans: migrated to head" in migrated.stdout

    def healthcheck() -> int:
        return subprocess.run([*entry, "healthcheck"], env=env, cwd=tmp_path, timeout=30).returncode

    assert healthcheck() == 1, "nothing listens yet"
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen([*entry, "serve"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = asyncio.get_running_loop().time() + 120  # a loaded 2-core machine starts slowly
            ready = None
            while asyncio.get_running_loop().time() < deadline and process.poll() is None:
                try:
                    ready = await client.get("/readyz")
                    if ready.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.3)
            assert ready is not None and ready.status_code == 200, (tmp_path / "serve.log").read_text()[-3000:]
            assert await asyncio.to_thread(healthcheck) == 0
            metrics = await client.get("/metrics")
            assert "onex_outbox_pending 0.0" in metrics.text
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    # What Kubernetes sends: uvicorn drains, runs the lifespan's shutdown, then re-raises the signal.
    assert process.returncode in (0, -signal.SIGTERM)
    assert "service_stopped" in (tmp_path / "serve.log").read_text()


def test_gateway_image_config_is_accepted_by_nginx(tmp_path):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed here (make system installs it)")
    render_gateway.render(tmp_path / "out")
    text = (tmp_path / "out" / "nginx.conf").read_text(encoding="utf-8")
    for service in GATEWAY_SERVICES:
        assert f"server {service}:8000" in text
    assert "real_ip_header X-Forwarded-For;" in text
    # Same file, with the image's paths moved under tmp and the Service names resolvable here.
    prefix = tmp_path / "prefix"
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / name).mkdir(parents=True)
    (tmp_path / "log").mkdir()
    for service in GATEWAY_SERVICES:
        text = text.replace(f"server {service}:8000", "server 127.0.0.1:9")
    text = (
        text.replace(str(render_gateway.PREFIX), str(prefix))
        .replace(str(render_gateway.LOG_DIR), str(tmp_path / "log"))
        .replace("listen 8080;", f"listen 127.0.0.1:{_free_port()};")
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [nginx, "-t", "-q", "-p", str(prefix), "-c", str(conf), "-e", str(tmp_path / "log" / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def _compose() -> dict:
    return yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_runs_every_service_with_postgres_rabbitmq_and_the_gateway():
    services = _compose()["services"]
    for name in ("postgres", "rabbitmq", "gateway"):
        assert name in services
    for name, spec in services.items():
        for dependency in spec.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        build = spec.get("build")
        if build:
            assert (ROOT / "deploy" / build["context"] / build["dockerfile"]).resolve().exists()
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / "deploy" / source).exists(), f"{name} mounts missing {source}"
    for service in repo_services():
        assert services[service]["command"] == ["serve", service]
        assert services[f"migrate-{service}"]["command"] == ["migrate", service]
        assert services[service]["depends_on"][f"migrate-{service}"]["condition"] == "service_completed_successfully"
        assert services["gateway"]["depends_on"][service]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", repo_services())
def test_compose_environment_satisfies_each_settings_class(service, monkeypatch):
    services = _compose()["services"]
    for name in (service, f"migrate-{service}"):
        env = {k: str(v) for k, v in services[name]["environment"].items()}
        settings = check_settings_env(service, env, monkeypatch)
        assert settings.database_url.endswith(f"@postgres:5432/onex_{service}")
        assert "@rabbitmq:5672/" in settings.amqp_url
    init = (ROOT / "deploy" / "docker" / "postgres-init.sql").read_text(encoding="utf-8")
    assert f"CREATE DATABASE onex_{service};" in init
