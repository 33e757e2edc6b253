"""Entry point: `uvicorn --factory services.plans.main:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from services.plans import consumers, router
from services.plans.config import PlansSettings
from services.plans.domain import Clock, system_clock
from services.plans.scheduler import WindowScheduler
from shared.auth.verifier import TokenVerifier
from shared.runtime import ServiceRuntime, create_service_app


def create_app(
    settings: PlansSettings | None = None, *, verifier: TokenVerifier | None = None, clock: Clock | None = None
) -> FastAPI:
    """`clock` and `verifier` are injected by tests; production uses the system clock and identity's JWKS."""
    settings = settings or PlansSettings()
    clock = clock or system_clock

    async def start_scheduler(runtime: ServiceRuntime) -> None:
        scheduler = WindowScheduler(
            sessionmaker=runtime.sessionmaker, clock=clock, max_sleep=settings.scheduler_max_sleep_seconds
        )
        runtime.extras["scheduler"] = app.state.scheduler = scheduler
        if settings.scheduler_enabled:
            scheduler.start()

    async def stop_scheduler(runtime: ServiceRuntime) -> None:
        scheduler = runtime.extras.pop("scheduler", None)
        if scheduler is not None:
            await scheduler.stop()

    app = create_service_app(
        settings=settings,
        title="Plans service",
        description="省级申报计划：批次、申报时间窗口与规则",
        routers=[router.router, router.internal_router],
        subscriptions=consumers.subscriptions(),
        on_start=[start_scheduler],
        on_stop=[stop_scheduler],
        verifier=verifier,
    )
    app.state.clock = clock
    return app
