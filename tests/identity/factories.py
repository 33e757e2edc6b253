"""Builders for identity tests: a clock the test moves, an identity app wired to it, and a client
that solves captchas through the dev endpoint and reads SMS codes off the bus like notify would."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import httpx
from aio_pika.abc import ExchangeType

from services.identity.config import IdentitySettings
from services.identity.main import create_app
from shared.auth.keys import generate_private_pem
from shared.contracts.registry import InstitutionData, InstitutionUpserted
from shared.testing.bus import BusProbe
from shared.testing.harness import RunningService, running_service, service_settings
from shared.testing.servers import TestServers

TEST_KEY = generate_private_pem()
_phones = itertools.count(random.randrange(10_000_000))
_ips = itertools.count(1)
_codes = itertools.count(random.randrange(100_000_000, 900_000_000))


class FakeClock:
    """The service's notion of now, moved by the test (starts at the real time: tokens must verify)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def reset(self) -> None:
        self.now = datetime.now(UTC)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def new_phone() -> str:
    return f"139{next(_phones) % 100_000_000:08d}"


def new_ip() -> str:
    n = next(_ips)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def new_institution_code() -> str:
    return f"4{next(_codes):09d}"


def identity_settings(
    servers: TestServers, run_id: str, database: str = "identity", **overrides: Any
) -> IdentitySettings:
    values: dict[str, Any] = {"app_env": "dev", "signing_key": TEST_KEY, "rebuild_copy_on_start": False}
    values.update(overrides)
    return service_settings(IdentitySettings, servers=servers, run_id=run_id, service=database, **values)


@contextlib.asynccontextmanager
async def identity_service(
    settings: IdentitySettings, clock: Callable[[], datetime], **kwargs: Any
) -> AsyncIterator[RunningService]:
    async with running_service(lambda s: create_app(s, clock=clock), settings, **kwargs) as running:
        yield running


async def wait_events(
    probe: BusProbe, event_type: str, match: Callable[[dict[str, Any]], bool], count: int = 1, timeout: float = 15.0
) -> list[dict[str, Any]]:
    """Wait until `count` events of the type satisfy `match` (the probe notifies on each arrival)."""

    def found() -> list[dict[str, Any]]:
        return [e for e in probe.of_type(event_type) if match(e)]

    async def enough() -> None:
        async with probe._arrived:
            await probe._arrived.wait_for(lambda: len(found()) >= count)

    await asyncio.wait_for(enough(), timeout)
    return found()


class Client:
    """One browser: a client address of its own (X-Real-IP), captchas solved like a person would."""

    def __init__(self, svc: RunningService, probe: BusProbe | None = None, ip: str | None = None) -> None:
        self.svc = svc
        self.probe = probe
        self.ip = ip or new_ip()

    @property
    def http(self) -> httpx.AsyncClient:
        return self.svc.client

    def headers(self, token: str | None = None) -> dict[str, str]:
        headers = {"X-Real-IP": self.ip}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def captcha(self) -> tuple[str, str]:
        challenge = await self.http.get("/api/v1/auth/captcha", headers=self.headers())
        assert challenge.status_code == 200, challenge.text
        captcha_id = challenge.json()["captcha_id"]
        answer = await self.http.get(f"/api/v1/dev/captcha/{captcha_id}", headers=self.headers())
        assert answer.status_code == 200, answer.text
        return captcha_id, answer.json()["answer"]

    async def ask_code(self, phone: str, purpose: str = "register") -> httpx.Response:
        captcha_id, answer = await self.captcha()
        body = {"phone": phone, "purpose": purpose, "captcha_id": captcha_id, "captcha_answer": answer}
        return await self.http.post("/api/v1/auth/sms-codes", json=body, headers=self.headers())

    async def code(self, phone: str, purpose: str = "register") -> str:
        """Request a code and read it from the `identity.sms_code.requested` event."""
        assert self.probe is not None
        before = len(self._codes_for(phone, purpose))
        response = await self.ask_code(phone, purpose)
        assert response.status_code == 202, response.text
        events = await wait_events(
            self.probe,
            "identity.sms_code.requested",
            lambda e: e["data"]["phone"] == phone and e["data"]["purpose"] == purpose,
            count=before + 1,
        )
        return str(events[-1]["data"]["code"])

    def _codes_for(self, phone: str, purpose: str) -> list[dict[str, Any]]:
        assert self.probe is not None
        return [
            e
            for e in self.probe.of_type("identity.sms_code.requested")
            if e["data"]["phone"] == phone and e["data"]["purpose"] == purpose
        ]

    async def register(self, institution: dict[str, Any], phone: str | None = None) -> dict[str, Any]:
        phone = phone or new_phone()
        code = await self.code(phone)
        response = await self.http.post(
            "/api/v1/auth/register",
            json={
                "province_code": institution["province_code"],
                "institution_code": institution["code"],
                "phone": phone,
                "sms_code": code,
            },
            headers=self.headers(),
        )
        assert response.status_code == 201, response.text
        return {**response.json(), "phone": phone}

    async def login(self, account: str, password: str) -> httpx.Response:
        captcha_id, answer = await self.captcha()
        body = {"account": account, "password": password, "captcha_id": captcha_id, "captcha_answer": answer}
        return await self.http.post("/api/v1/auth/login", json=body, headers=self.headers())

    async def tokens(self, account: str, password: str) -> dict[str, Any]:
        response = await self.login(account, password)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


async def add_institution(
    svc: RunningService, *, province_code: str = "45", city_code: str | None = "4501", name: str | None = None
) -> dict[str, Any]:
    """Put an institution in identity's register copy the way registry's event would."""
    from services.identity.service import apply_institution

    code = new_institution_code()
    institution = {
        "code": code,
        "name": name or f"测试职业技术学院{code[-4:]}",
        "province_code": province_code,
        "city_code": city_code,
    }
    async with svc.runtime.sessionmaker() as session, session.begin():
        await apply_institution(session, version=1, **institution)
    return institution


async def publish_institution(amqp_url: str, namespace: str, version: int, **data: Any) -> InstitutionUpserted:
    """Publish `registry.institution.upserted` on the run's exchange, as registry's relay does."""
    event = InstitutionUpserted(
        subject=data["code"], subject_version=version, producer="registry", data=InstitutionData(**data)
    )
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(f"{namespace}.events", ExchangeType.TOPIC, durable=True)
        await exchange.publish(
            aio_pika.Message(
                body=event.model_dump_json().encode(),
                message_id=str(event.id),
                content_type="application/json",
            ),
            routing_key=event.routing_key,
        )
    return event


def problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body: dict[str, Any] = json.loads(response.text)
    return body


def same_answer(a: httpx.Response, b: httpx.Response) -> bool:
    """Two answers are indistinguishable: status and body, apart from the request id."""

    def strip(r: httpx.Response) -> Any:
        if not r.content:
            return None
        body = r.json()
        if isinstance(body, dict):
            body.pop("request_id", None)
        return body

    return a.status_code == b.status_code and strip(a) == strip(b)


def unique(prefix: str = "acct") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"
