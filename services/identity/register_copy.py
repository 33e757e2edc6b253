"""Rebuild the register copy from registry's internal listing when it is empty (a fresh database,
or events published before identity's queue existed). Events keep it current afterwards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.identity import service
from services.identity.models import Institution
from shared.logging import get_logger

log = get_logger("register_copy")
PageFetcher = Callable[[str | None], Awaitable[dict[str, Any]]]


def http_pages(registry_url: str, *, limit: int = 1000, timeout: float = 10.0) -> PageFetcher:
    async def fetch(after: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit} | ({"after": after} if after else {})
        async with httpx.AsyncClient(base_url=registry_url, timeout=timeout) as client:
            response = await client.get("/internal/v1/institutions", params=params)
            response.raise_for_status()
            page: dict[str, Any] = response.json()
            return page

    return fetch


async def copy_is_empty(sessions: async_sessionmaker[AsyncSession]) -> bool:
    async with sessions() as session:
        return not await session.scalar(select(func.count()).select_from(Institution))


async def rebuild(sessions: async_sessionmaker[AsyncSession], fetch: PageFetcher) -> int:
    """Page through registry's institutions; each page in one transaction, older versions ignored."""
    after: str | None = None
    total = 0
    while True:
        page = await fetch(after)
        async with sessions() as session, session.begin():
            for item in page["items"]:
                await service.apply_institution(
                    session,
                    code=item["code"],
                    name=item["name"],
                    province_code=item["province_code"],
                    city_code=item.get("city_code"),
                    version=int(item.get("subject_version", 0)),
                )
        total += len(page["items"])
        after = page.get("next")
        if not after:
            log.info("register_copy_rebuilt", institutions=total)
            return total
