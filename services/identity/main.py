"""Entry point: `uvicorn --factory services.identity.main:create_app`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI

from services.identity import consumers, register_copy, router
from services.identity.config import IdentitySettings
from services.identity.keyring import build_issuer, hmac_key, own_verifier
from services.identity.service import IdentityContext
from shared.logging import get_logger
from shared.runtime import ServiceRuntime, create_service_app

log = get_logger("identity")


def utc_now() -> datetime:
    return datetime.now(UTC)


async def _fill_empty_copy(runtime: ServiceRuntime, settings: IdentitySettings) -> None:
    """Registry may still be starting: try a few times, then rely on its events."""
    fetch = register_copy.http_pages(settings.registry_url)
    for attempt in range(6):
        try:
            if await register_copy.copy_is_empty(runtime.sessionmaker):
                await register_copy.rebuild(runtime.sessionmaker, fetch)
            return
        except Exception as exc:
            log.warning("register_copy_rebuild_failed", attempt=attempt + 1, error=str(exc))
            await asyncio.sleep(2.0 * (attempt + 1))


def create_app(settings: IdentitySettings | None = None, *, clock: Callable[[], datetime] = utc_now) -> FastAPI:
    settings = settings or IdentitySettings()
    issuer = build_issuer(settings)

    async def start_rebuild(runtime: ServiceRuntime) -> None:
        if settings.rebuild_copy_on_start:
            runtime.extras["rebuild"] = asyncio.create_task(_fill_empty_copy(runtime, settings))

    async def stop_rebuild(runtime: ServiceRuntime) -> None:
        task = runtime.extras.get("rebuild")
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    app = create_service_app(
        settings=settings,
        title="Identity service",
        description="账号、登录、验证码与令牌",
        routers=router.routers,
        subscriptions=consumers.subscriptions(),
        on_start=[start_rebuild],
        on_stop=[stop_rebuild],
        verifier=own_verifier(issuer),
    )
    app.state.identity = IdentityContext(settings=settings, issuer=issuer, hmac_key=hmac_key(settings, issuer))
    app.state.clock = clock
    return app
