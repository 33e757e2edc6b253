"""`Annotated` dependency aliases used by the router."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from shared.auth.dependencies import CurrentPrincipal, OptionalPrincipal, require_roles
from shared.auth.principal import Principal, Role
from shared.runtime import DbSession

DEPARTMENTS_AND_OPERATOR = (Role.operator, Role.provincial, Role.municipal)

InstitutionViewer = Annotated[
    Principal, Depends(require_roles(Role.institution, Role.institution_sub, *DEPARTMENTS_AND_OPERATOR))
]
InstitutionAccount = Annotated[Principal, Depends(require_roles(Role.institution))]
RegisterManager = Annotated[Principal, Depends(require_roles(*DEPARTMENTS_AND_OPERATOR))]
Operator = Annotated[Principal, Depends(require_roles(Role.operator))]
CertificateManager = Annotated[Principal, Depends(require_roles(Role.org, Role.operator))]

__all__ = [
    "CertificateManager",
    "CurrentPrincipal",
    "DbSession",
    "InstitutionAccount",
    "InstitutionViewer",
    "Operator",
    "OptionalPrincipal",
    "RegisterManager",
]
