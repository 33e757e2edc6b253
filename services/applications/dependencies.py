"""`Annotated` dependency aliases used by the router: principal guards, the clock, the file storage."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from services.applications.storage import FileStorage
from shared.auth.dependencies import CurrentPrincipal, OptionalPrincipal, require_roles
from shared.auth.principal import Principal, Role
from shared.runtime import DbSession

Clock = Callable[[], datetime]


def _now(request: Request) -> datetime:
    """The service's clock (app state), so tests can move time to a plan's boundaries."""
    clock: Clock = request.app.state.clock
    return clock()


def _storage(request: Request) -> FileStorage:
    storage: FileStorage = request.app.state.storage
    return storage


Now = Annotated[datetime, Depends(_now)]
Storage = Annotated[FileStorage, Depends(_storage)]
School = Annotated[Principal, Depends(require_roles(Role.institution, Role.institution_sub))]
PrimarySchool = Annotated[Principal, Depends(require_roles(Role.institution))]
Reviewer = Annotated[Principal, Depends(require_roles(Role.municipal, Role.provincial))]
Provincial = Annotated[Principal, Depends(require_roles(Role.provincial))]
Department = Annotated[Principal, Depends(require_roles(Role.municipal, Role.provincial, Role.operator))]

__all__ = [
    "CurrentPrincipal",
    "DbSession",
    "Department",
    "Now",
    "OptionalPrincipal",
    "PrimarySchool",
    "Provincial",
    "Reviewer",
    "School",
    "Storage",
]
