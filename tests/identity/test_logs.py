"""No password, SMS code, captcha answer or token reaches a log line, whatever the flow."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
import structlog

from tests.identity.factories import Client, add_institution


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything structlog renders (the service's real processors, redaction included)."""
    buffer = io.StringIO()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=buffer))
    try:
        yield buffer
    finally:
        structlog.configure(logger_factory=structlog.PrintLoggerFactory())


async def test_secrets_are_absent_from_logs(client: Client, svc, clock, captured_logs: io.StringIO) -> None:
    secrets: list[str] = []
    _, answer = await client.captcha()
    secrets.append(answer)

    institution = await add_institution(svc)
    registered = await client.register(institution)
    secrets.append(registered["password"])
    secrets += [e["data"]["code"] for e in client.probe.of_type("identity.sms_code.requested")]

    failed = await client.login(registered["account"], "Wrong-password-x1")
    assert failed.status_code == 401
    secrets.append("Wrong-password-x1")
    pair = await client.tokens(registered["account"], registered["password"])
    secrets += [pair["access_token"], pair["refresh_token"]]
    refreshed = await client.http.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    secrets += [refreshed.json()["access_token"], refreshed.json()["refresh_token"]]

    changed = await client.http.put(
        "/api/v1/accounts/me/password",
        json={"old_password": registered["password"], "new_password": "Changed-pass-31"},
        headers=client.headers(refreshed.json()["access_token"]),
    )
    assert changed.status_code == 204
    secrets.append("Changed-pass-31")
    clock.advance(seconds=60)
    code = await client.code(registered["phone"], "reset_password")
    secrets.append(code)
    reset = await client.http.post(
        "/api/v1/auth/password-reset",
        json={"phone": registered["phone"], "sms_code": code, "new_password": "Reset-pass-77"},
    )
    assert reset.status_code == 204
    secrets.append("Reset-pass-77")

    text = captured_logs.getvalue()
    for marker in ("sms_code_requested", "account_registered", "login_failed", "login_succeeded", "password_reset"):
        assert marker in text, f"{marker} was not logged: the capture is not working"
    # a secret counts as leaked when it stands alone (a 4-letter captcha answer inside a hex id does not)
    leaked = [s for s in secrets if re.search(rf"(?<![0-9A-Za-z]){re.escape(s)}(?![0-9A-Za-z])", text)]
    assert not leaked, f"secrets in logs: {leaked}"
