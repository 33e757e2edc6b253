"""Every error is problem+json: validation, not found, role, and an unexpected exception (500 with id)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import text

from services.plans.config import PlansSettings
from shared.auth.dependencies import require_roles
from shared.auth.principal import Role
from shared.runtime import DbSession, create_service_app
from shared.testing.harness import RunningService, running_service, service_settings

probe = APIRouter(prefix="/api/v1/probe")


class Body(BaseModel):
    year: int = Field(ge=2019)
    title: str = Field(min_length=1)


@probe.post("/echo")
async def echo(body: Body) -> Body:
    return body


@probe.post("/store")
async def store(body: dict[str, str | int], session: DbSession) -> dict[str, str]:
    await session.execute(text("SELECT CAST(:t AS text), CAST(:n AS integer)"), {"t": body["t"], "n": body["n"]})
    return {"ok": "yes"}


@probe.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals must not leak")


@probe.get("/operators-only", dependencies=[Depends(require_roles(Role.operator))])
async def operators_only() -> dict[str, str]:
    return {"ok": "yes"}


@pytest.fixture(scope="module")
async def service(servers, run_id, tokens) -> AsyncIterator[RunningService]:
    settings = service_settings(PlansSettings, servers=servers, run_id=run_id, service="plans_problems")

    def create_app(s: PlansSettings) -> FastAPI:
        return create_service_app(
            settings=s, title="probe", description="probe", routers=[probe], verifier=tokens.verifier()
        )

    async with running_service(create_app, settings) as running:
        yield running


async def test_validation_error_is_problem_with_field_errors(service: RunningService) -> None:
    response = await service.client.post("/api/v1/probe/echo", json={"year": 1990})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["status"] == 422
    assert {e["field"] for e in body["errors"]} == {"year", "title"}
    assert all(e["message"] for e in body["errors"])


async def test_malformed_json_is_a_validation_problem(service: RunningService) -> None:
    response = await service.client.post(
        "/api/v1/probe/echo", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_unknown_route_is_not_found_problem(service: RunningService) -> None:
    response = await service.client.get("/api/v1/probe/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"
    assert response.json()["detail"]


async def test_unexpected_exception_is_500_problem_with_request_id(service: RunningService) -> None:
    response = await service.client.get("/api/v1/probe/boom", headers={"X-Request-ID": "req-boom-1"})
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal_error"
    assert body["request_id"] == "req-boom-1"
    assert "secret internals" not in response.text
    assert response.headers["x-request-id"] == "req-boom-1"


async def test_missing_token_401_and_wrong_role_403(service: RunningService, tokens) -> None:
    missing = await service.client.get("/api/v1/probe/operators-only")
    assert missing.status_code == 401 and missing.json()["code"] == "unauthenticated"
    forged = await service.client.get("/api/v1/probe/operators-only", headers={"Authorization": "Bearer x.y.z"})
    assert forged.status_code == 401
    wrong = await service.client.get(
        "/api/v1/probe/operators-only", headers=tokens.headers("provincial", province_code="11")
    )
    assert wrong.status_code == 403 and wrong.json()["code"] == "forbidden"
    right = await service.client.get("/api/v1/probe/operators-only", headers=tokens.headers("operator"))
    assert right.status_code == 200


async def test_readyz_reports_database_and_broker(service: RunningService) -> None:
    response = await service.client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": True, "broker": True}


async def test_input_the_database_cannot_hold_is_a_validation_problem_not_500(service: RunningService) -> None:
    assert (await service.client.post("/api/v1/probe/store", json={"t": "ok", "n": 1})).status_code == 200
    nul = await service.client.post("/api/v1/probe/store", json={"t": "a\u0000b", "n": 1})
    assert nul.status_code == 422 and nul.json()["code"] == "validation_error"
    huge = await service.client.post("/api/v1/probe/store", json={"t": "ok", "n": 2**40})
    assert huge.status_code == 422 and huge.json()["code"] == "validation_error"
