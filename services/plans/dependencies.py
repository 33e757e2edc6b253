"""`Annotated` dependency aliases used by the router."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from services.plans.domain import Clock, system_clock
from shared.auth.dependencies import CurrentPrincipal, OptionalPrincipal, require_roles
from shared.auth.principal import Principal, Role
from shared.runtime import DbSession


def clock_of(request: Request) -> Clock:
    clock: Clock = getattr(request.app.state, "clock", system_clock)
    return clock


def now(request: Request) -> datetime:
    """The request's notion of now, from the app's clock (injected by tests)."""
    return clock_of(request)()


def scheduler_waker(request: Request) -> Callable[[], None]:
    """Call after a commit that published a window or moved it: this instance's scheduler looks again
    at once (other instances notice within their longest sleep)."""
    scheduler = getattr(request.app.state, "scheduler", None)
    return scheduler.wake if scheduler is not None else lambda: None


Now = Annotated[datetime, Depends(now)]
WakeScheduler = Annotated[Callable[[], None], Depends(scheduler_waker)]
Provincial = Annotated[Principal, Depends(require_roles(Role.provincial))]

__all__ = ["CurrentPrincipal", "DbSession", "Now", "OptionalPrincipal", "Provincial", "WakeScheduler"]
