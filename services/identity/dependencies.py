"""`Annotated` dependency aliases used by the router."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from services.identity.service import IdentityContext
from shared.auth.dependencies import CurrentPrincipal, OptionalPrincipal, require_roles
from shared.auth.principal import Principal, Role
from shared.runtime import DbSession

Clock = Callable[[], datetime]


def _context(request: Request) -> IdentityContext:
    context: IdentityContext = request.app.state.identity
    return context


def _now(request: Request) -> datetime:
    """The app's clock (injected in tests so that expiry rules can be checked at their boundaries)."""
    clock: Clock = request.app.state.clock
    return clock()


def _client_ip(request: Request, context: Annotated[IdentityContext, Depends(_context)]) -> str:
    """The caller's address: behind the gateway it arrives in X-Real-IP / X-Forwarded-For."""
    if context.settings.trust_forwarded_for:
        forwarded = request.headers.get("x-real-ip") or request.headers.get("x-forwarded-for", "").split(",")[0]
        if forwarded.strip():
            return forwarded.strip()[:64]
    return request.client.host if request.client else "unknown"


Context = Annotated[IdentityContext, Depends(_context)]
Now = Annotated[datetime, Depends(_now)]
ClientIp = Annotated[str, Depends(_client_ip)]
SchoolPrimary = Annotated[Principal, Depends(require_roles(Role.institution))]
Operator = Annotated[Principal, Depends(require_roles(Role.operator))]
ProvinceOrOperator = Annotated[Principal, Depends(require_roles(Role.provincial, Role.operator))]

__all__ = [
    "ClientIp",
    "Context",
    "CurrentPrincipal",
    "DbSession",
    "Now",
    "Operator",
    "OptionalPrincipal",
    "ProvinceOrOperator",
    "SchoolPrimary",
]
