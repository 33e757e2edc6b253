"""Start notify instances for a test module: its own database and bus namespace, real lifespan."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from services.notify.config import NotifySettings
from services.notify.main import create_app
from services.notify.workers import NotifyWorkers
from shared.testing.harness import RunningService, running_service, service_settings

FAST = {
    "sms_poll_seconds": 0.1,
    "sms_retry_delays_seconds": [0.1, 0.2],
    "reminder_poll_seconds": 0.1,
    "digest_interval_seconds": 3600,
    "sms_gateway_timeout_seconds": 0.5,
}


def notify_settings(servers: Any, run_id: str, name: str, **overrides: Any) -> NotifySettings:
    """Settings of a module's notify: database `t_<run>_notify_<name>`, namespace `t<run>.<name>`."""
    values = {**FAST, "bus_namespace": f"t{run_id}.{name}", **overrides}
    return service_settings(NotifySettings, servers=servers, run_id=run_id, service=f"notify_{name}", **values)


StartNotify = Callable[..., AbstractAsyncContextManager[RunningService]]


@pytest.fixture(scope="module")
def start_notify(tokens: Any) -> StartNotify:
    """`async with start_notify(settings, clock=..., drop=...) as running:` one notify instance."""

    def start(settings: NotifySettings, *, clock: Callable[[], datetime] | None = None, **options: Any) -> Any:
        def factory(s: NotifySettings) -> Any:
            return create_app(s, verifier=tokens.verifier(), clock=clock)

        return running_service(factory, settings, **options)

    return start


def workers_of(running: RunningService) -> NotifyWorkers:
    workers: NotifyWorkers = running.runtime.extras["workers"]
    return workers


async def rows(running: RunningService, sql: str, **params: Any) -> list[Any]:
    async with running.runtime.engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def sms_rows(running: RunningService, phone: str, purpose: str | None = None) -> list[Any]:
    sql = "SELECT * FROM sms_messages WHERE phone = :phone"
    if purpose:
        sql += " AND purpose = :purpose"
    return await rows(running, sql + " ORDER BY created_at", phone=phone, purpose=purpose)


async def notices(running: RunningService, tokens: Any, account_id: str, **params: Any) -> list[dict[str, Any]]:
    response = await running.client.get(
        "/api/v1/notifications",
        params={"page_size": 100, **params},
        headers=tokens.headers("institution", account_id=account_id),
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
