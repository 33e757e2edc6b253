"""Rebuild the copies from their owners' internal endpoints (`GET /internal/v1/<kind>?after=&limit=`
answering `{"items": [...], "next": cursor | null}`), page by page."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.applications import service
from shared.logging import get_logger

log = get_logger("rebuild")

REGISTRY_KINDS = ("institutions", "majors", "certificates")
PLANS_KINDS = ("plans",)


async def rebuild_kind(
    *,
    client: httpx.AsyncClient,
    kind: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    page_size: int = 500,
    progress: Callable[[str, int], None] | None = None,
) -> int:
    """Page through one owner's listing and apply every page; returns the number of rows read."""
    after: str | None = None
    total = 0
    while True:
        params: dict[str, str | int] = {"limit": page_size}
        if after is not None:
            params["after"] = after
        response = await client.get(f"/internal/v1/{kind}", params=params)
        response.raise_for_status()
        body = response.json()
        async with sessionmaker() as session:
            total += await service.apply_copy_page(session, kind=kind, items=body.get("items") or [])
        if progress:
            progress(kind, total)
        after = body.get("next")
        if not after:
            return total


async def rebuild_copies(
    *,
    registry: httpx.AsyncClient,
    plans: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    page_size: int = 500,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Rebuild every copy; counts of rows read per kind."""
    counts: dict[str, int] = {}
    for kind in REGISTRY_KINDS:
        counts[kind] = await rebuild_kind(
            client=registry, kind=kind, sessionmaker=sessionmaker, page_size=page_size, progress=progress
        )
    for kind in PLANS_KINDS:
        counts[kind] = await rebuild_kind(
            client=plans, kind=kind, sessionmaker=sessionmaker, page_size=page_size, progress=progress
        )
    return counts


async def rebuild_when_empty(
    *,
    registry_url: str,
    plans_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    page_size: int = 500,
    attempts: int = 5,
    delay: float = 5.0,
) -> dict[str, int]:
    """At start-up: if a copy is empty, rebuild it from its owner (retrying while the owner starts)."""
    async with sessionmaker() as session:
        empty = await service.empty_copies(session)
    if not empty:
        return {}
    log.info("copies_empty_rebuilding", kinds=empty)
    for attempt in range(1, attempts + 1):
        try:
            counts: dict[str, int] = {}
            async with (
                httpx.AsyncClient(base_url=registry_url, timeout=30.0) as registry,
                httpx.AsyncClient(base_url=plans_url, timeout=30.0) as plans,
            ):
                for kind in empty:
                    client = plans if kind in PLANS_KINDS else registry
                    counts[kind] = await rebuild_kind(
                        client=client, kind=kind, sessionmaker=sessionmaker, page_size=page_size
                    )
            log.info("copies_rebuilt", counts=counts)
            return counts
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("copies_rebuild_failed", attempt=attempt, error=str(exc))
            await asyncio.sleep(delay * attempt)
    return {}
