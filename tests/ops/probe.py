"""Two throw-away services built on the real runtime for the observability tests: `opssrc` stages
Probe events from an HTTP request, `opssink` consumes them. Their databases hold only the outbox
and inbox, so no service's migrations are involved."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException
from prometheus_client.parser import text_string_to_metric_families
from pydantic_settings import SettingsConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import ServiceSettings
from shared.contracts.envelope import Event, EventData
from shared.db import create_database, make_engine, new_metadata
from shared.logging import get_logger
from shared.messaging.consumer import Subscription
from shared.messaging.outbox import stage
from shared.messaging.tables import messaging_tables
from shared.runtime import DbSession, create_service_app
from shared.testing.harness import RunningService, running_service, service_settings

log = get_logger("probe")


class ProbeData(EventData):
    n: int


class Probe(Event[ProbeData]):
    TYPE = "opssrc.probe.staged"
    VERSION = 1


class ProbeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OPSPROBE_", extra="ignore")


router = APIRouter(prefix="/api/v1/probe")


@router.post("/events/{count}", status_code=201)
async def stage_events(count: int, session: DbSession) -> dict[str, int]:
    async with session.begin():
        await stage(session, *(Probe(subject=f"p-{n}", data=ProbeData(n=n)) for n in range(count)), producer="opssrc")
    return {"staged": count}


@router.post("/poison", status_code=201)
async def stage_poison(session: DbSession) -> dict[str, int]:
    async with session.begin():
        await stage(session, Probe(subject="poison", data=ProbeData(n=-1)), producer="opssrc")
    return {"staged": 1}


@router.get("/items/{item_id}")
async def get_item(item_id: int) -> dict[str, int]:
    if item_id == 0:
        raise HTTPException(404)
    return {"id": item_id}


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("unexpected")


class ProbeRejected(Exception):
    pass


def sink_subscriptions(seen: list[Probe]) -> list[Subscription]:
    """Consume Probes into `seen`; a Probe with a negative `n` always fails (it ends parked)."""
    sub = Subscription(name="probes")

    @sub.on(Probe)
    async def on_probe(_session: AsyncSession, event: Probe) -> None:
        log.info("probe_consumed", n=event.data.n)
        if event.data.n < 0:
            raise ProbeRejected(f"probe {event.data.n} is refused")
        seen.append(event)

    return [sub]


async def _create_tables(url: str) -> None:
    await create_database(url)
    metadata = new_metadata()
    messaging_tables(metadata)
    engine = make_engine(url, pool_size=1)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()


@contextlib.asynccontextmanager
async def probe_service(
    servers: Any,
    run_id: str,
    name: str,
    *,
    http: bool = True,
    sink: list[Probe] | None = None,
    **overrides: Any,
) -> AsyncIterator[RunningService]:
    """A service on the real runtime: with the probe router if `http`, consuming Probes into `sink`."""
    settings = service_settings(
        ProbeSettings, servers=servers, run_id=run_id, service=name, service_name=name, **overrides
    )
    await _create_tables(settings.database_url)

    def create_app(s: ServiceSettings) -> FastAPI:
        return create_service_app(
            settings=s,
            title=name,
            description="probe",
            routers=[router] if http else [],
            subscriptions=sink_subscriptions(sink) if sink is not None else (),
        )

    async with running_service(create_app, settings, migrate=False) as svc:
        yield svc


async def scrape(svc: RunningService) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics and index every sample by (name, sorted labels)."""
    response = await svc.client.get("/metrics")
    assert response.status_code == 200, response.text
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))
