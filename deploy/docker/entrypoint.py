"""The container's entry point: one image serves any of the five services.

    python -m deploy.docker.entrypoint serve [SERVICE]     # uvicorn on $ONEX_PORT (8000)
    python -m deploy.docker.entrypoint migrate [SERVICE]   # Alembic upgrade to head, then exit
    python -m deploy.docker.entrypoint seed-demo           # every service's demo data, in order
    python -m deploy.docker.entrypoint healthcheck         # exit 0 when /healthz answers 200

SERVICE defaults to $ONEX_SERVICE (set by the image's SERVICE build argument). Settings come from
the environment with the service's prefix (IDENTITY_DATABASE_URL, ...), as everywhere else.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from pydantic_settings import BaseSettings

SERVICES = ("identity", "registry", "plans", "applications", "notify")
ROOT = Path(__file__).resolve().parents[2]


def _service(args: list[str]) -> str:
    name = args[0] if args else os.environ.get("ONEX_SERVICE", "")
    if name not in SERVICES:
        raise SystemExit(f"unknown service {name!r}: expected one of {', '.join(SERVICES)}")
    return name


def settings_class(service: str) -> type[BaseSettings]:
    """The settings class a service defines in services/<service>/config.py."""
    module = importlib.import_module(f"services.{service}.config")
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, BaseSettings) and value.__module__ == module.__name__
    ]
    if len(classes) != 1:
        raise SystemExit(f"services.{service}.config must define exactly one settings class")
    return classes[0]


def settings_for(service: str) -> BaseSettings:
    """The service's settings, read from the environment."""
    return settings_class(service)()


def serve(service: str) -> None:
    port = os.environ.get("ONEX_PORT", "8000")
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"services.{service}.main:create_app",
        "--host",
        "0.0.0.0",  # noqa: S104 (inside a container: the pod's own address)
        "--port",
        port,
        "--no-access-log",  # the app logs one JSON line per request itself
        "--timeout-graceful-shutdown",
        os.environ.get("ONEX_GRACEFUL_SECONDS", "20"),
    ]
    os.execv(sys.executable, command)  # noqa: S606 (replace this process: signals reach uvicorn)


def migrate(service: str) -> None:
    from shared.db import upgrade

    settings = settings_for(service)
    upgrade(ROOT / "services" / service / "migrations", str(settings.database_url))  # type: ignore[attr-defined]
    print(f"{service}: migrated to head", flush=True)


def seed_demo() -> None:
    for service in SERVICES:  # the order of docs/conventions.md: copies are fed before they are read
        if (ROOT / "services" / service / "cli.py").exists():
            subprocess.run([sys.executable, "-m", f"services.{service}.cli", "seed-demo"], check=True)


def healthcheck() -> None:
    url = f"http://127.0.0.1:{os.environ.get('ONEX_PORT', '8000')}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            ok = response.status == 200
    except OSError:
        ok = False
    raise SystemExit(0 if ok else 1)


def main(argv: list[str]) -> None:
    command, args = (argv[0], argv[1:]) if argv else ("serve", [])
    if command == "serve":
        serve(_service(args))
    elif command == "migrate":
        migrate(_service(args))
    elif command == "seed-demo":
        seed_demo()
    elif command == "healthcheck":
        healthcheck()
    else:
        raise SystemExit(f"unknown command {command!r}: serve | migrate | seed-demo | healthcheck")


if __name__ == "__main__":
    main(sys.argv[1:])
