"""FastAPI dependencies: the verified principal, and role guards. 401 without a valid token, 403
with a valid one that lacks the role (scope checks that answer 404 live in each service)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.auth.principal import Principal, Role
from shared.auth.verifier import InvalidToken, TokenVerifier
from shared.http.errors import ProblemError

bearer = HTTPBearer(auto_error=False, description="Access token from POST /api/v1/auth/login")


def _verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.verifier
    return verifier


async def optional_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal | None:
    if credentials is None:
        return None
    try:
        return await _verifier(request).verify(credentials.credentials)
    except InvalidToken as exc:
        raise ProblemError(
            401, "unauthenticated", "登录已失效，请重新登录。", headers={"WWW-Authenticate": "Bearer"}
        ) from exc


async def current_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None:
        raise ProblemError(401, "unauthenticated", "请先登录。", headers={"WWW-Authenticate": "Bearer"})
    return principal


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    allowed = frozenset(roles)

    async def guard(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            raise ProblemError(403, "forbidden", "您的账号无权执行此操作。")
        return principal

    return guard


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
