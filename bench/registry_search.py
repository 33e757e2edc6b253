"""Latency of the public institution search on the full register (2,919 schools), beside a bare
baseline measured in the same run: a primary-key SELECT through the same stack (FastAPI, middleware,
SQLAlchemy session) and the search's SQL alone through plain asyncpg.

    PYTHONPATH=. .venv/bin/python bench/registry_search.py [--requests 1000] [--concurrency 8]

Creates a scratch database on the local PostgreSQL (or BENCH_PG_URL), seeds it through the
registry's own import path, and drops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
from fastapi import APIRouter

from services.registry import reference, service
from services.registry.config import RegistrySettings
from services.registry.domain import Scope
from services.registry.models import Institution
from services.registry.router import router as registry_router
from shared.config import LOCAL_PG
from shared.db import create_and_migrate, drop_database
from shared.messaging.outbox import asyncpg_dsn
from shared.runtime import DbSession, create_service_app

MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "registry" / "migrations"
SEARCH = "search (province + name), HTTP stack"
BASELINE = "baseline: PK SELECT, HTTP stack"
RAW = "search SQL alone, plain asyncpg"
WHOLE = "search whole register, HTTP stack"
Call = Callable[[], Awaitable[None]]
PLAN_SQL = "EXPLAIN ANALYZE SELECT count(*) FROM institutions WHERE name ILIKE '%机电职业%'"
SEARCH_SQL = (
    "SELECT code, name, province_code, type FROM institutions WHERE province_code = $1 AND name ILIKE $2 "
    "ORDER BY code LIMIT 10"
)


def baseline_router() -> APIRouter:
    """A bare endpoint on the same stack: one row by primary key."""
    router = APIRouter()

    @router.get("/bench/pk/{code}")
    async def by_code(code: str, session: DbSession) -> dict[str, str | None]:
        row = await session.get(Institution, code)
        return {"code": row.code, "name": row.name} if row else {}

    return router


async def seed(settings: RegistrySettings) -> list[tuple[str, str, str]]:
    app = create_service_app(settings=settings, title="bench", description="bench", routers=[])
    sessions = app.state.runtime.sessionmaker
    async with sessions() as session:
        await service.load_regions(session, rows=reference.regions())
    async with sessions() as session:
        result = await service.import_institution_file(
            session, content=reference.MINISTRY_LIST.read_bytes(), scope=Scope(anywhere=True)
        )
    print(f"seeded {result.created + result.unchanged} institutions")
    async with sessions() as session:
        rows = await session.execute(Institution.__table__.select())
        schools = [(r.code, r.name, r.province_code) for r in rows]
    await app.state.runtime.engine.dispose()
    return schools


def queries(schools: list[tuple[str, str, str]], n: int, rng: random.Random) -> list[tuple[str, str]]:
    """(province, substring of a real name of that province), 2 to 4 characters, like a user typing."""
    picks = []
    for _ in range(n):
        _, name, province = rng.choice(schools)
        size = rng.randint(2, min(4, len(name)))
        start = rng.randint(0, len(name) - size)
        picks.append((province, name[start : start + size]))
    return picks


async def measure(calls: list[tuple[str, Call]], concurrency: int) -> dict[str, list[float]]:
    """Run labelled calls shuffled together, so load swings on a shared machine hit every label alike."""
    latencies: dict[str, list[float]] = {label: [] for label, _ in calls}
    queue = list(calls)
    random.Random(7).shuffle(queue)

    async def worker() -> None:
        while queue:
            label, call = queue.pop()
            started = time.perf_counter()
            await call()
            latencies[label].append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    for label, values in latencies.items():
        p50, p99 = percentile(values, 50), percentile(values, 99)
        print(f"{label:<40} n={len(values):>5}  p50={p50:7.2f} ms  p99={p99:7.2f} ms")
    return latencies


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def run(requests: int, concurrency: int) -> None:
    base = os.environ.get("BENCH_PG_URL", LOCAL_PG).rstrip("/")
    url = f"{base}/bench_registry_{uuid.uuid4().hex[:8]}"
    settings = RegistrySettings(database_url=url, log_level="WARNING", app_env="test", db_pool_size=concurrency)
    await create_and_migrate(MIGRATIONS, url)
    try:
        schools = await seed(settings)
        rng = random.Random(2026)
        picks = queries(schools, requests, rng)
        codes = [rng.choice(schools)[0] for _ in range(requests)]
        app = create_service_app(
            settings=settings, title="bench", description="bench", routers=[registry_router, baseline_router()]
        )
        transport = httpx.ASGITransport(app=app)
        pool = await asyncpg.create_pool(asyncpg_dsn(url), min_size=concurrency, max_size=concurrency)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

            def search(province: str | None, q: str) -> Callable[[], Awaitable[None]]:
                params = {"q": q, **({"province_code": province} if province else {})}

                async def call() -> None:
                    response = await client.get("/api/v1/institutions", params=params)
                    assert response.status_code == 200 and response.json()["total"] >= 1

                return call

            def by_code(code: str) -> Callable[[], Awaitable[None]]:
                async def call() -> None:
                    response = await client.get(f"/bench/pk/{code}")
                    assert response.status_code == 200

                return call

            def raw(province: str, q: str) -> Callable[[], Awaitable[None]]:
                async def call() -> None:
                    async with pool.acquire() as conn:
                        await conn.fetch(SEARCH_SQL, province, f"%{q}%")

                return call

            await measure([("warm-up", search(p, q)) for p, q in picks[:100]], concurrency)
            results = await measure(
                [
                    *((SEARCH, search(p, q)) for p, q in picks),
                    *((BASELINE, by_code(c)) for c in codes),
                    *((RAW, raw(p, q)) for p, q in picks),
                    *((WHOLE, search(None, q)) for _, q in picks[: requests // 4]),
                ],
                concurrency,
            )
            async with pool.acquire() as conn:
                plan = await conn.fetch(PLAN_SQL)
        await pool.close()
        await app.state.runtime.engine.dispose()
        s, b = results[SEARCH], results[BASELINE]
        ratio50 = percentile(s, 50) / percentile(b, 50)
        ratio99 = percentile(s, 99) / percentile(b, 99)
        print(f"search / PK baseline (same stack): p50 x{ratio50:.2f}, p99 x{ratio99:.2f}")
        print("plan of a selective name search over the whole register:")
        for row in plan:
            print("   ", row[0])
    finally:
        await drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.concurrency))


if __name__ == "__main__":
    main()
