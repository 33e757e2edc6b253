"""The gateway as clients meet it: a real nginx rendered from deploy/gateway in front of echo upstreams."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from deploy.gateway.nginx import Gateway
from deploy.gateway.render import GATEWAY_PROBLEMS, GatewayConfig, check_config, write_gateway
from deploy.gateway.routes import SERVICES, owner_of
from deploy.processes import pid_alive, port_open
from shared.http.errors import STATUS_DEFAULTS
from tests.gateway.conftest import Rig

PROBLEM = "application/problem+json"
CHINESE = re.compile(r"[\u4e00-\u9fff]")

ROUTES = [
    ("/api/v1/auth/captcha", "identity"),
    ("/api/v1/auth/jwks", "identity"),
    ("/api/v1/accounts/me", "identity"),
    ("/api/v1/accounts/sub-accounts/42", "identity"),
    ("/api/v1/dev/captcha/abc", "identity"),
    ("/api/v1/regions?parent_code=45", "registry"),
    ("/api/v1/institutions?province_code=45&q=%E6%9C%BA%E7%94%B5", "registry"),
    ("/api/v1/institutions/4145010867/profile", "registry"),
    ("/api/v1/organizations", "registry"),
    ("/api/v1/majors?q=460", "registry"),
    ("/api/v1/certificates/1/majors", "registry"),
    ("/api/v1/pilot-institutions?year=2026", "registry"),
    ("/api/v1/plans", "plans"),
    ("/api/v1/plans/7/publish", "plans"),
    ("/api/v1/applications", "applications"),
    ("/api/v1/applications/export?plan_id=1", "applications"),
    ("/api/v1/applications/9/attachments/3", "applications"),
    ("/api/v1/notifications?unread=true", "notify"),
    ("/api/v1/dev/sms?phone=13800000001", "notify"),
    ("/api/v1/sms-messages?phone=13800000001", "notify"),
    *[(f"/api/v1/openapi/{s}.json", s) for s in SERVICES],
    *[(f"/api/v1/docs/{s}", s) for s in SERVICES],
]


def assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert CHINESE.search(body["detail"]), body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["type"] == f"https://onex.example/problems/{code}"
    return body


def test_rendered_config_passes_nginx_t(tmp_path: Path) -> None:
    upstreams = {s: [f"127.0.0.1:{8001 + i}", f"127.0.0.1:{8101 + i}"] for i, s in enumerate(SERVICES)}
    config = GatewayConfig(listen="127.0.0.1:8080", upstreams=upstreams, prefix=tmp_path / "p", log_dir=tmp_path)
    assert write_gateway(config) is True
    assert write_gateway(config) is False  # unchanged instances: nothing to reload
    check_config(config)
    text = config.conf_path.read_text()
    assert "server 127.0.0.1:8104 " in text
    assert "client_max_body_size 25m;" in text


@pytest.mark.parametrize(("path", "service"), ROUTES)
def test_routes_each_resource_to_its_owner(rig: Rig, path: str, service: str) -> None:
    assert owner_of(path.split("?")[0]) == service
    with rig.client() as client:
        response = client.get(path)
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["service"] == service
    assert seen["path"] == path  # the URI reaches the service unchanged, query string included


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_readyz_is_reachable(rig: Rig, service: str) -> None:
    with rig.client() as client:
        seen = client.get(f"/readyz/{service}").json()
    assert (seen["service"], seen["path"]) == (service, "/readyz")


@pytest.mark.parametrize(
    "path",
    ["/internal/v1/institutions?page=1", "/api/v1/unknown", "/api/v1/plansx", "/api/v2/plans", "/api/v1/internal/x"],
)
def test_unrouted_paths_answer_404_problem(rig: Rig, path: str) -> None:
    with rig.client() as client:
        response = client.get(path)
    assert_problem(response, 404, "not_found")
    assert owner_of(path.split("?")[0]) is None


def test_requests_spread_over_both_instances(rig: Rig) -> None:
    with rig.client() as client:
        instances = [client.get("/api/v1/applications").json()["instance"] for _ in range(20)]
    assert instances.count(0) >= 5 and instances.count(1) >= 5, instances


def test_request_id_is_generated_passed_upstream_and_returned(rig: Rig) -> None:
    with rig.client() as client:
        generated = client.get("/api/v1/plans")
        given = client.get("/api/v1/plans", headers={"X-Request-ID": "trace-42.a"})
        bogus = client.get("/api/v1/plans", headers={"X-Request-ID": "bad id {injected}"})
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    assert generated.json()["request_id"] == generated.headers["x-request-id"]
    # Only the gateway's header comes back, never a second one from the upstream.
    assert generated.headers.get_list("x-request-id") == [generated.headers["x-request-id"]]
    assert given.headers["x-request-id"] == given.json()["request_id"] == "trace-42.a"
    assert re.fullmatch(r"[0-9a-f]{32}", bogus.json()["request_id"])


def test_client_forwarded_for_is_not_trusted(rig: Rig) -> None:
    with rig.client() as client:
        seen = client.get("/api/v1/plans", headers={"X-Forwarded-For": "203.0.113.9"}).json()
    assert seen["forwarded_for"] == "127.0.0.1"


def test_healthz_is_answered_by_nginx(rig: Rig) -> None:
    with rig.client() as client:
        response = client.get("/healthz")
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


def test_docs_page_links_every_service(rig: Rig) -> None:
    with rig.client() as client:
        response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for service in SERVICES:
        assert f'href="/api/v1/docs/{service}"' in response.text
        assert f'href="/api/v1/openapi/{service}.json"' in response.text


def test_upload_under_the_cap_reaches_the_service(rig: Rig) -> None:
    body = b"x" * (20 * 1024 * 1024 + 1)
    with rig.client() as client:
        response = client.post("/api/v1/applications/1/attachments", content=body)
    assert response.status_code == 200
    assert response.json()["body_bytes"] == len(body)


def test_upload_over_the_cap_is_413_problem(rig: Rig) -> None:
    body = b"x" * (25 * 1024 * 1024 + 1)
    with rig.client() as client:
        response = client.post("/api/v1/applications/1/attachments", content=body)
    assert_problem(response, 413, "file_too_large")


def test_spa_with_history_fallback(rig: Rig) -> None:
    with rig.client() as client:
        root = client.get("/")
        deep = client.get("/applications/123/edit")
        asset = client.get("/assets/app.js")
        missing_asset = client.get("/assets/missing.js")
    assert "SPA" in root.text and "SPA" in deep.text
    assert deep.headers["content-type"].startswith("text/html")
    assert asset.headers["content-type"].startswith("application/javascript")
    assert missing_asset.status_code == 404
    assert root.headers["x-frame-options"] == "SAMEORIGIN"
    assert asset.headers["x-content-type-options"] == "nosniff"
    assert root.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/auth/sms-codes"])
def test_login_and_sms_codes_are_rate_limited(rig: Rig, path: str) -> None:
    with rig.client() as client:
        responses = [client.post(path, json={}) for _ in range(30)]
        other = client.get("/api/v1/plans")
        jwks = [client.get("/api/v1/auth/jwks") for _ in range(40)]
    statuses = [r.status_code for r in responses]
    assert statuses[0] == 200
    assert 429 in statuses, statuses
    limited = responses[statuses.index(429)]
    assert_problem(limited, 429, "too_many_requests")
    assert int(limited.headers["retry-after"]) > 0
    assert other.status_code == 200  # other resources are not limited
    assert {r.status_code for r in jwks} == {200}  # services fetch the keys freely


def _access_log(gateway: Gateway) -> list[dict]:
    path = gateway.config.log_dir / "gateway-access.log"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_failover_retries_idempotent_requests_only(rig: Rig, failover_gateway: Gateway) -> None:
    broken = f"127.0.0.1:{rig.base_port + 104}"
    with httpx.Client(base_url=failover_gateway.url, timeout=30, trust_env=False) as client:
        gets = [client.get("/api/v1/applications/drop") for _ in range(10)]
        posts = [client.post("/api/v1/applications/drop", json={}) for _ in range(10)]
    # Every GET succeeds: the one that hit the broken instance was passed on to the healthy one.
    assert {r.status_code for r in gets} == {200}
    assert {r.json()["instance"] for r in gets} == {0}
    # A POST that reached the broken instance is not replayed elsewhere: the client gets 503.
    failed = [r for r in posts if r.status_code != 200]
    assert failed and len(failed) < len(posts)
    assert_problem(failed[0], 503, "service_unavailable")
    log = [e for e in _access_log(failover_gateway) if e["uri"] == "/api/v1/applications/drop"]
    retried_gets = [e for e in log if e["method"] == "GET" and e["upstream"].startswith(broken + ",")]
    failed_posts = [e for e in log if e["method"] == "POST" and e["status"] == 503]
    assert retried_gets, log
    assert failed_posts and all(e["upstream"] == broken for e in failed_posts), failed_posts


def test_access_log_is_json_with_request_ids(rig: Rig) -> None:
    with rig.client() as client:
        request_id = client.get("/api/v1/majors", headers={"X-Request-ID": "log-check-1"}).headers["x-request-id"]
    entries = [e for e in _access_log(rig.gateway) if e["request_id"] == request_id]
    assert len(entries) == 1
    assert entries[0]["status"] == 200 and entries[0]["uri"] == "/api/v1/majors"


def test_stop_ends_exactly_this_gateway(rig: Rig, tmp_path: Path) -> None:
    config = GatewayConfig(
        listen=f"127.0.0.1:{rig.base_port + 82}",
        upstreams=rig.gateway.config.upstreams,
        prefix=tmp_path / "nginx",
        log_dir=tmp_path / "log",
        workers="1",
    )
    gateway = Gateway(config, cwd=tmp_path)
    assert gateway.apply() == "started"
    assert gateway.apply() == "unchanged"  # idempotent: no second nginx
    pid = gateway.running_pid()
    assert pid is not None
    assert gateway.stop() is True
    assert not pid_alive(pid)
    assert not port_open(rig.base_port + 82)
    assert rig.gateway.running_pid() is not None  # the other gateway is untouched
    with rig.client() as client:
        assert client.get("/healthz").status_code == 200


def test_gateway_problems_match_the_services_problems() -> None:
    for status, (code, title, detail) in GATEWAY_PROBLEMS.items():
        shared_code, shared_title, shared_detail = STATUS_DEFAULTS[status]
        assert (code, title) == (shared_code, shared_title)
        if status != 413:  # the gateway names its limit
            assert detail == shared_detail
