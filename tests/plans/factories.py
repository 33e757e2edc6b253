"""Builders for plans tests: a clock the test moves, plan bodies, and a plans app wired to both."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from services.plans.config import PlansSettings
from services.plans.main import create_app
from shared.testing.harness import RunningService, running_service, service_settings
from shared.testing.servers import TestServers
from shared.testing.tokens import TestTokens

T0 = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


class FakeClock:
    """The service's notion of now, moved by the test."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def plan_body(**overrides: Any) -> dict[str, Any]:
    """A valid draft opening one day after T0 for ten days."""
    body: dict[str, Any] = {
        "year": 2026,
        "batch": 1,
        "title": "2026年证书试点申报（第一次）",
        "opens_at": (T0 + timedelta(days=1)).isoformat(),
        "closes_at": (T0 + timedelta(days=11)).isoformat(),
        "by_major": True,
        "municipal_review": True,
    }
    body.update(overrides)
    return body


def plans_settings(servers: TestServers, run_id: str, database: str, **overrides: Any) -> PlansSettings:
    values: dict[str, Any] = {"scheduler_max_sleep_seconds": 0.2}
    values.update(overrides)
    return service_settings(PlansSettings, servers=servers, run_id=run_id, service=database, **values)


@contextlib.asynccontextmanager
async def plans_service(
    settings: PlansSettings, tokens: TestTokens, clock: FakeClock, *, migrate: bool = True, drop: bool = True
) -> AsyncIterator[RunningService]:
    def factory(s: PlansSettings) -> Any:
        return create_app(s, verifier=tokens.verifier(), clock=clock)

    async with running_service(factory, settings, migrate=migrate, drop=drop) as running:
        yield running


class Roles:
    """Token headers for every role of the scope matrix."""

    def __init__(self, tokens: TestTokens) -> None:
        self.p11 = tokens.headers("provincial", province_code="11", account="bj_province")
        self.p44 = tokens.headers("provincial", province_code="44", account="gd_province")
        self.m11 = tokens.headers("municipal", province_code="11", city_code="1101")
        self.m44 = tokens.headers("municipal", province_code="44", city_code="4401")
        self.s11 = tokens.headers("institution", province_code="11", institution_code="4111010853")
        self.sub11 = tokens.headers("institution_sub", province_code="11", institution_code="4111010853")
        self.s44 = tokens.headers("institution", province_code="44", institution_code="4144010001")
        self.org = tokens.headers("org", org_id="7c1d7c32-0000-4000-8000-000000000001")
        self.operator = tokens.headers("operator")
