"""/healthz (the process answers) and /readyz (its database and broker are reachable)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="进程存活")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="依赖就绪", responses={503: {"description": "数据库或消息队列不可用"}})
async def readyz(request: Request) -> JSONResponse:
    runtime = request.app.state.runtime
    checks = {"database": await _database_ok(runtime), "broker": runtime.broker.is_connected}
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )


async def _database_ok(runtime: object) -> bool:
    try:
        async with asyncio.timeout(2.0):
            async with runtime.engine.connect() as conn:  # type: ignore[attr-defined]
                await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
