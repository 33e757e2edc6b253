"""Fuzzing every service's OpenAPI through the gateway (schemathesis): generated requests for every
/api/v1 operation, each sent with the token of a randomly chosen role (operator, provincial, municipal,
organisation, school) or none. No response may be a 5xx, and each must match what the operation
documents: its status codes, content type and schema (problem+json for errors included).

Every failing operation is collected and reported at once. FUZZ_EXAMPLES sets the examples per
operation and generation mode (default 8: a few minutes on the shared CI machine)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from deploy.gateway.routes import SERVICES
from tests.e2e.api import DEMO_PASSWORD, Api

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
ACCOUNTS = {
    "operator": ("operator", "Operator#2026"),
    "provincial": ("gx_province", DEMO_PASSWORD),
    "municipal": ("nn_city", DEMO_PASSWORD),
    "org": ("org_demo", DEMO_PASSWORD),
    "institution": ("4145010867", DEMO_PASSWORD),
}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Writes that would end the fuzzing's own sessions or change the demo accounts' passwords.
SKIP = {
    ("POST", "/api/v1/auth/logout"),
    ("PUT", "/api/v1/accounts/me/password"),
}


@pytest.fixture(scope="module")
async def role_tokens(api: Api) -> dict[str, str]:
    return {role: await api.login(account, password) for role, (account, password) in ACCOUNTS.items()}


def fuzz_service(gateway_url: str, service: str, tokens: dict[str, str]) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{gateway_url}/api/v1/openapi/{service}.json")
    failures: list[str] = []
    session = requests.Session()
    roles = st.sampled_from([None, *tokens.values()])
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/api/v1/") or (operation.method.upper(), operation.path) in SKIP:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode), token=roles)
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any, token: str | None) -> None:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                case.call_and_validate(base_url=gateway_url, session=session, headers=headers, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:  # nothing to make invalid (an operation without parameters or body)
                continue
            except (Exception, BaseExceptionGroup) as exc:  # every failing operation is reported
                text = " ".join(str(exc).split())
                failures.append(f"{operation.method.upper()} {operation.path} [{mode.value}]: {text[:600]}")
    return failures


@pytest.mark.parametrize("service", SERVICES)
async def test_every_operation_answers_as_documented_for_every_role(
    service: str, gateway_url: str, role_tokens: dict[str, str]
) -> None:
    failures = await asyncio.to_thread(fuzz_service, gateway_url, service, role_tokens)
    assert not failures, f"{len(failures)} failing operation(s) of {service}:\n" + "\n".join(failures)


async def test_a_body_that_is_not_text_is_a_validation_problem(api: Api, role_tokens: dict[str, str]) -> None:
    response = await api.client.post(
        "/api/v1/applications",
        content=b"\xff\xfe\x00{",
        headers={"Authorization": f"Bearer {role_tokens['institution']}", "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_error"
