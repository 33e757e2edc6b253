"""Entry point: `uvicorn --factory services.registry.main:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from services.registry import consumers, router
from services.registry.config import RegistrySettings
from shared.auth.verifier import TokenVerifier
from shared.runtime import create_service_app


def create_app(settings: RegistrySettings | None = None, *, verifier: TokenVerifier | None = None) -> FastAPI:
    settings = settings or RegistrySettings()
    return create_service_app(
        verifier=verifier,
        settings=settings,
        title="Registry service",
        description="行政区划、院校总库、专业目录、培训评价组织与证书",
        routers=[router.router, router.internal],
        subscriptions=consumers.subscriptions(),
    )
