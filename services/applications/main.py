"""Entry point: `uvicorn --factory services.applications.main:create_app`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI

from services.applications import consumers, router
from services.applications.config import ApplicationsSettings
from services.applications.rebuild import rebuild_when_empty
from services.applications.storage import FileStorage, LocalStorage
from shared.auth.verifier import TokenVerifier
from shared.runtime import ServiceRuntime, create_service_app


def _system_clock() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: ApplicationsSettings | None = None,
    *,
    verifier: TokenVerifier | None = None,
    clock: Callable[[], datetime] | None = None,
    storage: FileStorage | None = None,
) -> FastAPI:
    settings = settings or ApplicationsSettings()

    async def start_rebuild(runtime: ServiceRuntime) -> None:
        if settings.rebuild_empty_copies_on_start:
            runtime.extras["rebuild"] = asyncio.create_task(
                rebuild_when_empty(
                    registry_url=settings.registry_url,
                    plans_url=settings.plans_url,
                    sessionmaker=runtime.sessionmaker,
                    page_size=settings.rebuild_page_size,
                )
            )

    async def stop_rebuild(runtime: ServiceRuntime) -> None:
        task = runtime.extras.pop("rebuild", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    app = create_service_app(
        settings=settings,
        title="Applications service",
        description="证书试点申报与审核",
        routers=[router.router],
        subscriptions=consumers.subscriptions(),
        on_start=[start_rebuild],
        on_stop=[stop_rebuild],
        verifier=verifier,
    )
    app.state.clock = clock or _system_clock
    app.state.storage = storage or LocalStorage(settings.storage_dir)
    return app
