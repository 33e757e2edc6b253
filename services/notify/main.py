"""Entry point: `uvicorn --factory services.notify.main:create_app`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI

from services.notify import consumers, router
from services.notify.config import NotifySettings
from services.notify.providers import DevSmsProvider, HttpSmsProvider, SmsProvider
from services.notify.workers import NotifyWorkers
from shared.auth.verifier import TokenVerifier
from shared.runtime import ServiceRuntime, create_service_app

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def make_provider(settings: NotifySettings, runtime: ServiceRuntime) -> SmsProvider:
    if settings.sms_provider == "http":
        return HttpSmsProvider(url=settings.sms_gateway_url, timeout=settings.sms_gateway_timeout_seconds)
    return DevSmsProvider(runtime.engine)


def create_app(
    settings: NotifySettings | None = None,
    *,
    verifier: TokenVerifier | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """Build the notify app. `clock` (UTC now) is injectable so tests can move time."""
    settings = settings or NotifySettings()
    now = clock or _utc_now

    async def start_workers(runtime: ServiceRuntime) -> None:
        workers = NotifyWorkers(
            settings=settings, sessionmaker=runtime.sessionmaker, provider=make_provider(settings, runtime), clock=now
        )
        runtime.extras["workers"] = workers
        workers.start()

    async def stop_workers(runtime: ServiceRuntime) -> None:
        workers: NotifyWorkers | None = runtime.extras.get("workers")
        if workers is not None:
            await workers.stop()

    app = create_service_app(
        settings=settings,
        title="Notify service",
        description="短信与站内通知",
        routers=[router.router],
        subscriptions=consumers.subscriptions(now),
        on_start=[start_workers],
        on_stop=[stop_workers],
        verifier=verifier,
    )
    app.state.clock = now
    return app
