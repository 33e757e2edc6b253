"""The routing table against the services as they are: every public path a service documents in its
OpenAPI is routed by the gateway to that service, and no internal path is routed at all."""

from __future__ import annotations

import importlib

import pytest

from deploy.gateway.routes import SERVICES, owner_of
from deploy.local import demo_accounts

PROCESS_PATHS = {"/healthz", "/readyz", "/metrics"}


def documented_paths(service: str) -> list[str]:
    create_app = importlib.import_module(f"services.{service}.main").create_app
    app = create_app()
    return [*sorted(app.openapi()["paths"]), app.openapi_url, app.docs_url]


@pytest.mark.parametrize("service", SERVICES)
def test_every_documented_path_reaches_its_service(service: str) -> None:
    paths = [p for p in documented_paths(service) if p not in PROCESS_PATHS]
    public = [p for p in paths if not p.startswith("/internal/")]
    assert public, f"{service} documents no public path"
    misrouted = {p: owner_of(p) for p in public if owner_of(p) != service}
    assert misrouted == {}, f"paths of {service} the gateway sends elsewhere (fix deploy/gateway/routes.py)"
    assert all(owner_of(p) is None for p in paths if p.startswith("/internal/"))


def test_demo_accounts_come_from_the_conventions() -> None:
    accounts = {row[0].split()[0]: row[1] for row in demo_accounts()}
    assert accounts["operator"] == "operator"
    assert accounts["gx_province"] == "provincial"
    assert accounts["4145010867"] == "institution"
