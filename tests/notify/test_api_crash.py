"""A notify process killed with SIGKILL, between recording an intent and sending it, or while the
gateway holds its send (the SMS accepted, the outcome never recorded), is recovered by the next
instance and the phone receives exactly one SMS."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from services.notify.config import NotifySettings
from shared.db import create_and_migrate
from shared.testing.bus import bus_probe
from shared.testing.harness import migrations_dir
from tests.notify import factories as f
from tests.notify.conftest import StartNotify, notify_settings, sms_rows

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
async def gateway() -> AsyncIterator[f.FakeGateway]:
    async with f.fake_gateway() as fake:
        yield fake


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NotifyProcess:
    """A notify instance as its own OS process (uvicorn), configured through NOTIFY_* variables."""

    def __init__(self, settings: NotifySettings, log_path: Path, **env: str) -> None:
        self.port = _free_port()
        variables = {
            "NOTIFY_APP_ENV": "test",
            "NOTIFY_DATABASE_URL": settings.database_url,
            "NOTIFY_AMQP_URL": settings.amqp_url,
            "NOTIFY_BUS_NAMESPACE": settings.bus_namespace,
            "NOTIFY_SMS_PROVIDER": settings.sms_provider,
            "NOTIFY_SMS_GATEWAY_URL": settings.sms_gateway_url,
            "NOTIFY_SMS_GATEWAY_TIMEOUT_SECONDS": "60",
            "NOTIFY_SMS_LEASE_SECONDS": str(settings.sms_lease_seconds),
            "NOTIFY_SMS_POLL_SECONDS": "0.1",
            "NOTIFY_RETRY_DELAYS_MS": "[50, 100]",
            **env,
        }
        self.log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "services.notify.main:create_app", "--port", str(self.port)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **variables},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    async def wait_ready(self) -> None:
        async def ready() -> bool:
            assert self.process.poll() is None, "notify process exited"
            try:
                async with httpx.AsyncClient() as client:
                    response = await client.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1)
                return response.status_code == 200
            except httpx.HTTPError:
                return False

        await f.eventually(ready, timeout=60, interval=0.2)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed or recorded."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.log.close()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[NotifyProcess]]:
    started: list[NotifyProcess] = []
    yield started
    for process in started:
        process.kill()


async def publish_when_routable(settings: NotifySettings, *events: Any) -> None:
    """Publish once the process has bound its queues (mandatory routing refuses an unbound key)."""
    async with f.Publisher(settings.amqp_url, settings.bus_namespace) as bus:

        async def published() -> bool:
            try:
                await bus.publish(*events)
            except Exception:
                return False
            return True

        await f.eventually(published, timeout=30, interval=0.2)


async def prepared(servers: Any, run_id: str, name: str, gateway: f.FakeGateway) -> NotifySettings:
    settings = notify_settings(
        servers, run_id, name, sms_provider="http", sms_gateway_url=gateway.url, sms_lease_seconds=2
    )
    await create_and_migrate(migrations_dir("notify"), settings.database_url)
    return settings


async def sms_states(settings: NotifySettings, phone: str) -> list[Any]:
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                text("SELECT id, state, attempts, body FROM sms_messages WHERE phone = :phone"), {"phone": phone}
            )
            return list(result.all())
    finally:
        await engine.dispose()


async def _final(running: Any, phone: str) -> Any:
    found = await sms_rows(running, phone)
    return found[0] if found and found[0].state in ("sent", "failed") else None


async def test_killed_instance_is_recovered_and_each_sms_is_delivered_once(
    servers: Any,
    run_id: str,
    gateway: f.FakeGateway,
    start_notify: StartNotify,
    processes: list[NotifyProcess],
    tmp_path: Path,
) -> None:
    """One SIGKILL catches two messages: A was handed to the gateway (which accepted it and never
    answered), B's intent was recorded but not yet sent (the sender, one message at a time, was
    busy with A). The next instance sends B once, and sends A again under its idempotency key so
    the gateway delivers it once."""
    settings = await prepared(servers, run_id, "crash", gateway)
    gateway.script.append("hold")
    doomed = NotifyProcess(settings, tmp_path / "doomed.log", NOTIFY_SMS_BATCH_SIZE="1")
    processes.append(doomed)
    await doomed.wait_ready()
    phone_a, school_b = f.new_phone(), f.School()
    async with bus_probe(settings.amqp_url, settings.bus_namespace, "notify.sms.#") as probe:
        await publish_when_routable(settings, f.sms_code_requested(phone=phone_a, code="318274"))

        async def held() -> bool:
            return any(r["phone"] == phone_a for r in gateway.requests)

        await f.eventually(held)
        await publish_when_routable(settings, f.account_registered(school_b, password="Rc4#kL9pWx"))
        await f.eventually(lambda: sms_states(settings, school_b.phone))  # B recorded, not claimed
        doomed.kill()
        [claimed_a] = await sms_states(settings, phone_a)
        assert (claimed_a.state, claimed_a.attempts) == ("sending", 1)
        [pending_b] = await sms_states(settings, school_b.phone)
        assert (pending_b.state, pending_b.attempts) == ("pending", 0)
        assert gateway.phone_messages(school_b.phone) == []

        async with start_notify(settings, migrate=False) as recovered:
            row_b = await f.eventually(lambda: _final(recovered, school_b.phone), timeout=30)
            row_a = await f.eventually(lambda: _final(recovered, phone_a), timeout=30)
            await probe.wait_for("notify.sms.sent", count=2)
    assert (row_b.state, row_b.attempts) == ("sent", 1) and "Rc4#kL9pWx" not in row_b.body
    [message_b] = gateway.phone_messages(school_b.phone)
    assert "Rc4#kL9pWx" in message_b
    assert len([r for r in gateway.requests if r["phone"] == school_b.phone]) == 1

    assert (row_a.state, row_a.attempts) == ("sent", 2) and "318274" not in row_a.body
    resent = [r for r in gateway.requests if r["phone"] == phone_a]
    assert len(resent) == 2 and {r["key"] for r in resent} == {str(row_a.id)}  # the same idempotency key
    assert gateway.phone_messages(phone_a) == ["【1+X证书】验证码318274，5分钟内有效，仅用于注册，请勿泄露。"]
    assert len(probe.of_type("notify.sms.sent")) == 2
