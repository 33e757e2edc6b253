"""`Annotated` dependency aliases used by the router."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from shared.auth.dependencies import CurrentPrincipal, OptionalPrincipal, require_roles
from shared.auth.principal import Principal, Role
from shared.config import ServiceSettings
from shared.pagination import Pagination
from shared.runtime import DbSession


def _now(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def _settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


Now = Annotated[datetime, Depends(_now)]
Settings = Annotated[ServiceSettings, Depends(_settings)]
Operator = Annotated[Principal, Depends(require_roles(Role.operator))]

__all__ = ["CurrentPrincipal", "DbSession", "Now", "Operator", "OptionalPrincipal", "Pagination", "Settings"]
