"""Builders of real contract events, a publisher onto the run's bus, a mutable clock, and the one
permitted fake: a local SMS gateway (HTTP on 127.0.0.1) whose answers a test scripts."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.contracts import applications as app_events
from shared.contracts import identity, plans
from shared.contracts.envelope import Event
from shared.messaging.broker import Broker, Outgoing

T = TypeVar("T")
SHANGHAI = ZoneInfo("Asia/Shanghai")
_phones = itertools.count(1)
_codes = itertools.count(1)


def new_phone() -> str:
    return f"139{uuid.uuid4().int % 10**4:04d}{next(_phones) % 10**4:04d}"


def new_institution_code() -> str:
    return f"41{uuid.uuid4().int % 10**8:08d}"


# --- identity ---------------------------------------------------------------------------------


def sms_code_requested(*, phone: str, code: str = "483920", purpose: str = "register") -> identity.SmsCodeRequested:
    data = identity.SmsCodeRequestedData(phone=phone, purpose=purpose, code=code, ttl_seconds=300)  # type: ignore[arg-type]
    return identity.SmsCodeRequested(subject=str(uuid.uuid4()), data=data)


@dataclass
class School:
    code: str = field(default_factory=new_institution_code)
    name: str = "广西机电职业技术学院"
    province_code: str = "45"
    city_code: str = "4501"
    phone: str = field(default_factory=new_phone)
    account_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def account_data(self, **overrides: Any) -> dict[str, Any]:
        values = {
            "account_id": self.account_id,
            "account": self.code,
            "role": "institution",
            "phone": self.phone,
            "primary": True,
            "institution_code": self.code,
            "institution_name": self.name,
            "province_code": self.province_code,
            "city_code": self.city_code,
        }
        values.update(overrides)
        return values


def account_registered(school: School, *, password: str = "Kx7#pQ2mZa") -> identity.AccountRegistered:
    data = identity.AccountRegisteredData(**school.account_data(), password=password)
    return identity.AccountRegistered(subject=school.account_id, subject_version=1, data=data)


def sub_account_created(school: School, *, phone: str | None = None) -> identity.AccountCreated:
    account_id = str(uuid.uuid4())
    data = identity.AccountData(
        **school.account_data(
            account_id=account_id,
            account=f"{school.code}-01",
            role="institution_sub",
            phone=phone or new_phone(),
            primary=False,
        )
    )
    return identity.AccountCreated(subject=account_id, subject_version=1, data=data)


def account_removed(created: identity.AccountCreated) -> identity.AccountRemoved:
    return identity.AccountRemoved(subject=created.subject, subject_version=2, data=created.data)


def department_created(*, role: str, province_code: str, city_code: str | None = None) -> identity.AccountCreated:
    account_id = str(uuid.uuid4())
    data = identity.AccountData(
        account_id=account_id,
        account=f"{role}-{account_id[:6]}",
        role=role,
        phone=new_phone(),
        province_code=province_code if role != "operator" else None,
        city_code=city_code,
    )
    return identity.AccountCreated(subject=account_id, subject_version=1, data=data)


def password_reset(school: School) -> identity.PasswordReset:
    data = identity.PasswordResetData(
        account_id=school.account_id, account=school.code, phone=school.phone, institution_code=school.code
    )
    return identity.PasswordReset(subject=school.account_id, data=data)


# --- plans ------------------------------------------------------------------------------------


def plan_data(
    *,
    province_code: str = "45",
    closes_at: datetime | None = None,
    title: str = "2026年广西1+X证书试点申报",
    plan_id: str | None = None,
) -> plans.PlanData:
    closes = closes_at or datetime.now(UTC) + timedelta(days=10)
    return plans.PlanData(
        id=plan_id or str(uuid.uuid4()),
        province_code=province_code,
        year=2026,
        batch=1,
        title=title,
        opens_at=closes - timedelta(days=30),
        closes_at=closes,
        by_major=True,
        municipal_review=True,
        state="published",
    )


def plan_published(data: plans.PlanData, *, version: int = 1) -> plans.PlanPublished:
    return plans.PlanPublished(subject=data.id, subject_version=version, data=data)


def plan_closed(data: plans.PlanData, *, version: int = 3) -> plans.PlanClosed:
    return plans.PlanClosed(subject=data.id, subject_version=version, data=data)


# --- applications -----------------------------------------------------------------------------


def application_data(
    school: School, plan: plans.PlanData, *, status: str = "draft", version: int = 1, **overrides: Any
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "plan_id": plan.id,
        "year": plan.year,
        "institution_code": school.code,
        "institution_name": school.name,
        "province_code": school.province_code,
        "city_code": school.city_code,
        "certificate_id": str(uuid.uuid4()),
        "certificate_name": "Web前端开发",
        "level": "intermediate",
        "status": status,
        "review_stage": None,
        "trainees_total": 60,
        "plan_closes_at": plan.closes_at,
        "version": version,
    }
    values.update(overrides)
    return values


def application_event(cls: type[Event[Any]], values: dict[str, Any], **changes: Any) -> Event[Any]:
    """Any of the application events; `changes` update the application's state for this event."""
    data = {**values, **changes}
    model = app_events.ReviewData if "decision" in data else app_events.ApplicationData
    return cls(subject=data["id"], subject_version=data["version"], data=model(**data))


def review(cls: type[Event[Any]], values: dict[str, Any], *, stage: str, decision: str, **changes: Any) -> Event[Any]:
    defaults = {"reviewer": "reviewer", "comment": None}
    return application_event(cls, values, stage=stage, decision=decision, **{**defaults, **changes})


# --- the bus, the clock, waiting --------------------------------------------------------------


class Publisher:
    """Publishes contract events exactly as a producer's relay does (confirmed, mandatory)."""

    def __init__(self, amqp_url: str, namespace: str) -> None:
        self.broker = Broker(url=amqp_url, namespace=namespace, name="notify-tests")

    async def __aenter__(self) -> Publisher:
        await self.broker.connect()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.broker.close()

    async def publish(self, *events: Event[Any]) -> None:
        for event in events:
            out = Outgoing(
                message_id=str(event.id),
                routing_key=event.routing_key,
                body=event.model_dump_json().encode(),
                correlation_id=event.correlation_id,
            )
            await self.broker.publish(out)


class MutableClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def eventually(probe: Callable[[], Awaitable[T]], *, timeout: float = 15.0, interval: float = 0.05) -> T:
    """Wait until `probe` returns a truthy value (the condition a test waits on), and return it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        await asyncio.sleep(interval)


# --- the fake SMS gateway ---------------------------------------------------------------------


@dataclass
class FakeGateway:
    """A local SMS gateway. `script` answers requests in order (an int status, "timeout" to stall
    past the client's timeout, or "hold" to accept the message and never answer); after the script
    every request gets `default`. Like a real gateway it delivers a message id only once."""

    script: list[int | str] = field(default_factory=list)
    default: int | str = 200
    stall_seconds: float = 3.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    delivered: dict[str, dict[str, Any]] = field(default_factory=dict)
    url: str = ""
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def phone_messages(self, phone: str) -> list[str]:
        return [m["body"] for m in self.delivered.values() if m["phone"] == phone]

    async def _handle(self, request: Request) -> JSONResponse:
        body = await request.json()
        key = request.headers.get("idempotency-key", "")
        self.requests.append({**body, "key": key})
        answer = self.script.pop(0) if self.script else self.default
        if answer == "timeout":
            await asyncio.sleep(self.stall_seconds)
            return JSONResponse({"error": "late"}, status_code=504)
        if answer == "hold":
            self.delivered.setdefault(key, body)
            await self.released.wait()
        if isinstance(answer, int) and answer >= 300:
            return JSONResponse({"error": "refused"}, status_code=answer)
        self.delivered.setdefault(key, body)
        return JSONResponse({"accepted": True, "duplicate": len(self.requests) > 1})


@contextlib.asynccontextmanager
async def fake_gateway(**options: Any) -> AsyncIterator[FakeGateway]:
    gateway = FakeGateway(**options)
    app = Starlette(routes=[Route("/sms", gateway._handle, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    gateway.url = f"http://127.0.0.1:{sock.getsockname()[1]}/sms"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]  # leave Ctrl-C to pytest
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield gateway
    finally:
        gateway.released.set()
        server.should_exit = True
        server.force_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
        sock.close()
