"""The whole platform as local processes: databases migrated, N uvicorn instances per service, the nginx
gateway in front, demo data, the web client. `make up` uses it with the default names; end-to-end and
browser tests use it isolated (own databases, bus namespace, ports, run directory):

    with Platform(run_id="ab12cd34", base_port=find_free_base_port(...), scale={"applications": 2},
                  namespace="tab12cd34p", db_prefix="t_ab12cd34_p_", seed=True, web=False) as platform:
        httpx.get(platform.gateway_url + "/api/v1/plans")

(`async with` works as well; the blocking methods run their own event loop, so from async code call
them through `asyncio.to_thread`.) Every process is recorded in a pid file of the run directory and
recognised by its command line, so `stop()` ends exactly what was started, whoever calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from deploy.gateway.nginx import Gateway
from deploy.gateway.render import GatewayConfig, RateLimits
from deploy.gateway.routes import SERVICES
from deploy.processes import (
    pid_alive,
    pid_matches,
    port_open,
    read_pid,
    spawn,
    stop_processes,
    tail,
    wait_port_free,
)
from deploy.web import WebBuildError, build_web
from shared.config import LOCAL_AMQP, LOCAL_PG

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUN_ID = "local"
SEED_ORDER: tuple[str, ...] = ("registry", "identity", "plans", "applications", "notify")
GATEWAY_OFFSET = 80  # gateway port = base port + 80 (8080 for the default base 8000)
MAX_INSTANCES = 9


class PlatformError(RuntimeError):
    pass


@dataclass(frozen=True)
class Instance:
    service: str
    index: int
    port: int

    @property
    def name(self) -> str:
        return f"{self.service}-{self.index}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def markers(self) -> list[str]:
        return [f"services.{self.service}.main:create_app", f"--port {self.port}"]


def parse_scale(text: str | None) -> dict[str, int]:
    """`applications=2,notify=2` → {"applications": 2, "notify": 2}."""
    scale: dict[str, int] = {}
    for part in (text or "").replace(" ", "").split(","):
        if not part:
            continue
        name, sep, count = part.partition("=")
        if not sep or name not in SERVICES or not count.isdigit() or not 1 <= int(count) <= MAX_INSTANCES:
            raise PlatformError(f"bad scale {part!r}: expected <service>=<1..{MAX_INSTANCES}>, services: {SERVICES}")
        scale[name] = int(count)
    return scale


def instance_port(base_port: int, service: str, index: int) -> int:
    """Ports of docs/conventions.md: first instances base+1..base+5, then base+101.., base+201.."""
    return base_port + 1 + SERVICES.index(service) + 100 * index


def port_offsets(scale: Mapping[str, int]) -> list[int]:
    """Every port offset a platform of this scale uses, for picking a free base port."""
    offsets = [GATEWAY_OFFSET]
    for service in SERVICES:
        offsets += [instance_port(0, service, i) for i in range(scale.get(service, 1))]
    return offsets


class Platform:
    def __init__(
        self,
        run_id: str = DEFAULT_RUN_ID,
        *,
        base_port: int = 8000,
        gateway_port: int | None = None,
        scale: Mapping[str, int] | None = None,
        namespace: str | None = None,
        db_prefix: str | None = None,
        pg_base: str = LOCAL_PG,
        amqp_url: str = LOCAL_AMQP,
        app_env: str = "dev",
        run_dir: Path | None = None,
        log_dir: Path | None = None,
        seed: bool = True,
        web: bool = True,
        limits: RateLimits | None = None,
        extra_env: Mapping[str, str] | None = None,
        ready_timeout: float = 180.0,
        gateway_workers: str = "auto",
        db_pool_size: int | None = None,
        drop_on_stop: bool = False,
        say: Callable[[str], None] | None = None,
    ) -> None:
        local = run_id == DEFAULT_RUN_ID
        self.run_id = run_id
        self.base_port = base_port
        self.gateway_port = gateway_port or base_port + GATEWAY_OFFSET
        self.scale = {s: 1 for s in SERVICES} | dict(scale or {})
        self.namespace = namespace or ("onex" if local else f"onex{run_id}")
        self.db_prefix = db_prefix or ("onex_" if local else f"onex_{run_id}_")
        self.pg_base = pg_base.rstrip("/")
        self.amqp_url = amqp_url
        self.app_env = app_env
        self.run_dir = run_dir or (ROOT / ".run" if local else ROOT / ".run" / run_id)
        self.log_dir = log_dir or (ROOT / "var" / "log" if local else ROOT / "var" / "log" / run_id)
        self.var_dir = ROOT / "var" if local else self.run_dir / "var"
        self.seed = seed
        self.web = web
        self.limits = limits or RateLimits()
        self.extra_env = dict(extra_env or {})
        self.ready_timeout = ready_timeout
        self.gateway_workers = gateway_workers
        # PostgreSQL's connections are shared by every run on the machine: tests keep pools small.
        self.db_pool_size = db_pool_size
        self.drop_on_stop = drop_on_stop
        self._say = say or (lambda _message: None)
        self.web_note = ""

    # ---- what the platform is made of -------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def instances(self) -> list[Instance]:
        return [
            Instance(service, index, instance_port(self.base_port, service, index))
            for service in SERVICES
            for index in range(self.scale[service])
        ]

    def database_url(self, service: str) -> str:
        return f"{self.pg_base}/{self.db_prefix}{service}"

    def service_env(self, service: str) -> dict[str, str]:
        """The settings of one service's processes (its env prefix, see services/<name>/config.py)."""
        prefix = service.upper() + "_"
        values = {
            "APP_ENV": self.app_env,
            "DATABASE_URL": self.database_url(service),
            "AMQP_URL": self.amqp_url,
            "BUS_NAMESPACE": self.namespace,
            "JWKS_URL": f"{self.gateway_url}/api/v1/auth/jwks",
        }
        # Internal endpoints (copy rebuilds) are reached directly, never through the gateway.
        for other in SERVICES:
            if other != service:
                values[f"{other.upper()}_URL"] = f"http://127.0.0.1:{instance_port(self.base_port, other, 0)}"
        if self.db_pool_size is not None:
            values["DB_POOL_SIZE"] = str(self.db_pool_size)
        if self.run_id != DEFAULT_RUN_ID:
            values["DEV_KEY_FILE"] = str(self.var_dir / "keys" / "identity-ed25519.pem")
            values["STORAGE_DIR"] = str(self.var_dir / "applications" / "files")
        # The caller's environment passes through (e.g. NOTIFY_SMS_PROVIDER); these keys are the run's own.
        env = dict(os.environ)
        env.update({prefix + key: value for key, value in values.items()})
        env.update({"APP_ENV": self.app_env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
        env.update(self.extra_env)
        return env

    def gateway(self) -> Gateway:
        dist = ROOT / "web" / "dist"
        upstreams = {s: [f"127.0.0.1:{i.port}" for i in self.instances() if i.service == s] for s in SERVICES}
        config = GatewayConfig(
            listen=f"127.0.0.1:{self.gateway_port}",
            upstreams=upstreams,
            prefix=self.run_dir / "nginx",
            log_dir=self.log_dir,
            web_root=dist if (dist / "index.html").exists() else None,
            limits=self.limits,
            workers=self.gateway_workers,
        )
        return Gateway(config, cwd=ROOT)

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def _log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _running_pid(self, instance: Instance) -> int | None:
        pid = read_pid(self._pid_file(instance.name))
        return pid if pid is not None and pid_matches(pid, instance.markers) else None

    # ---- up ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Bring everything up (idempotent: what already runs is kept), then wait until it is ready."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._check_servers()
        self._migrate()
        self._stop_surplus()
        self._start_instances()
        if self.web:
            try:
                _dist, self.web_note = build_web(ROOT / "web", log=self.log_dir / "web-build.log")
            except WebBuildError as exc:
                raise PlatformError(str(exc)) from exc
            self._say(self.web_note)
        gateway = self.gateway()
        self._say(f"gateway {gateway.apply()} on {self.gateway_url}")
        self._wait_ready(gateway)
        if self.seed:
            self._seed()

    def _check_servers(self) -> None:
        servers = {"PostgreSQL": (self.pg_base.replace("+asyncpg", ""), 5432), "RabbitMQ": (self.amqp_url, 5672)}
        for name, (url, default_port) in servers.items():
            parsed = urlsplit(url)
            host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
            if not port_open(port, host):
                raise PlatformError(f"{name} does not answer on {host}:{port}: run `make system` to start it")

    def _migrate(self) -> None:
        from shared.db import create_and_migrate

        for service in SERVICES:
            self._say(f"migrating {self.db_prefix}{service}")
            try:
                asyncio.run(create_and_migrate(ROOT / "services" / service / "migrations", self.database_url(service)))
            except Exception as exc:
                raise PlatformError(f"migrating {service} failed: {exc!r}") from exc

    def _stop_surplus(self) -> None:
        """Instances of an earlier `up` with a larger scale: stop the ones no longer wanted."""
        wanted = {i.name for i in self.instances()}
        surplus = []
        for pid_file in sorted(self.run_dir.glob("*.pid")):
            name = pid_file.stem
            service, _, index = name.rpartition("-")
            if service in SERVICES and index.isdigit() and name not in wanted:
                pid = read_pid(pid_file)
                if pid is not None and pid_matches(pid, [f"services.{service}.main:create_app"]):
                    surplus.append(pid)
                pid_file.unlink(missing_ok=True)
                self._say(f"stopping {name} (not in the requested scale)")
        stop_processes(surplus)

    def _start_instances(self) -> None:
        for instance in self.instances():
            if self._running_pid(instance) is not None:
                self._say(f"{instance.name} already running on :{instance.port}")
                continue
            if not wait_port_free(instance.port):
                raise PlatformError(f"port {instance.port} for {instance.name} is taken by another process")
            argv = [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                f"services.{instance.service}.main:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(instance.port),
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "10",
            ]
            env = self.service_env(instance.service)
            env[f"{instance.service.upper()}_INSTANCE"] = instance.name
            process = spawn(argv, log_path=self._log_file(instance.name), env=env, cwd=ROOT)
            self._pid_file(instance.name).write_text(f"{process.pid}\n")
            self._say(f"started {instance.name} on :{instance.port} (pid {process.pid})")

    def _wait_ready(self, gateway: Gateway) -> None:
        """Every instance's /readyz, then every service's /readyz through the gateway."""
        deadline = time.monotonic() + self.ready_timeout
        pending = {i.name: i for i in self.instances()}
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while pending:
                for name, instance in list(pending.items()):
                    pid = read_pid(self._pid_file(name))
                    if pid is None or not pid_alive(pid):
                        raise PlatformError(f"{name} exited during start-up; its log ends with:\n{self._tail(name)}")
                    if _ok(client, f"{instance.url}/readyz"):
                        del pending[name]
                if pending and time.monotonic() > deadline:
                    name = sorted(pending)[0]
                    raise PlatformError(
                        f"not ready after {self.ready_timeout:.0f}s: {', '.join(sorted(pending))}; "
                        f"the log of {name} ends with:\n{self._tail(name)}"
                    )
                if pending:
                    time.sleep(0.25)
            for service in SERVICES:
                while not _ok(client, f"{gateway.url}/readyz/{service}"):
                    if time.monotonic() > deadline:
                        raise PlatformError(f"{service} is not ready through the gateway:\n{tail(gateway.error_log)}")
                    time.sleep(0.25)
        self._say("every /readyz is green")

    def _tail(self, name: str) -> str:
        return tail(self._log_file(name))

    def _seed(self) -> None:
        for service in SEED_ORDER:
            if not (ROOT / "services" / service / "cli.py").exists():
                continue
            self._say(f"loading demo data: {service}")
            log = self._log_file(f"seed-{service}")
            argv = [sys.executable, "-m", f"services.{service}.cli", "seed-demo"]
            process = spawn(argv, log_path=log, env=self.service_env(service), cwd=ROOT)
            if process.wait() != 0:
                raise PlatformError(f"seed-demo of {service} failed (exit {process.returncode}):\n{tail(log)}")

    # ---- faults (for tests) ------------------------------------------------------------------------

    def instance(self, name: str) -> Instance:
        for instance in self.instances():
            if instance.name == name:
                return instance
        raise PlatformError(f"no instance {name!r} in this platform ({', '.join(i.name for i in self.instances())})")

    def pid_of(self, name: str) -> int | None:
        """The pid of a running instance of this platform (None when it is not running)."""
        return self._running_pid(self.instance(name))

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> int:
        """Send `sig` to one instance (SIGKILL: a crash) and wait until it is gone. Returns its pid."""
        pid = self.pid_of(name)
        if pid is None:
            raise PlatformError(f"{name} is not running")
        stop_processes([pid], first=sig)
        return pid

    def restart_missing(self) -> list[str]:
        """Start again every instance of this platform that is not running; wait until all are ready."""
        missing = [i.name for i in self.instances() if self._running_pid(i) is None]
        self._start_instances()
        self._wait_ready(self.gateway())
        return missing

    # ---- down and status --------------------------------------------------------------------------

    def stop(self) -> list[str]:
        """Stop this run's gateway and every instance it recorded. Returns the names stopped."""
        stopped = []
        if self.run_dir.exists() and self.gateway().stop():
            stopped.append("gateway")
        pids, names = [], []
        for pid_file in sorted(self.run_dir.glob("*.pid")) if self.run_dir.exists() else []:
            service, _, index = pid_file.stem.rpartition("-")
            pid = read_pid(pid_file)
            if service in SERVICES and index.isdigit() and pid is not None:
                if pid_matches(pid, [f"services.{service}.main:create_app"]):
                    pids.append(pid)
                    names.append(pid_file.stem)
                pid_file.unlink(missing_ok=True)
        stop_processes(pids)
        stopped += names
        if self.drop_on_stop:
            self.drop()
        return stopped

    def drop(self) -> None:
        """Remove this run's databases and bus namespace (isolated runs only)."""
        if self.run_id == DEFAULT_RUN_ID:
            raise PlatformError("refusing to drop the local platform's databases")
        from shared.db import drop_database
        from shared.testing.cleanup import delete_namespace

        async def drop_all() -> None:
            for service in SERVICES:
                with contextlib.suppress(Exception):
                    await drop_database(self.database_url(service))
            await delete_namespace(self.amqp_url, self.namespace)

        asyncio.run(drop_all())
        # Its run directory (pid files, nginx prefix, keys, stored files) goes too; logs stay in log_dir.
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def status(self) -> list[dict[str, Any]]:
        """One row per expected instance and one for the gateway: pid, port, ready or not."""
        rows = []
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            for instance in self.instances():
                pid = self._running_pid(instance)
                ready = pid is not None and _ok(client, f"{instance.url}/readyz")
                rows.append({"name": instance.name, "port": instance.port, "pid": pid, "ready": ready})
            gateway = self.gateway()
            pid = gateway.running_pid()
            ready = pid is not None and _ok(client, f"{gateway.url}/healthz")
            rows.append({"name": "gateway", "port": self.gateway_port, "pid": pid, "ready": ready})
        return rows

    # ---- context managers -------------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        try:
            await asyncio.to_thread(self.start)
        except BaseException:
            await asyncio.to_thread(self.stop)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


def _ok(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False
