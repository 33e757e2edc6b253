"""The bare baseline of bench/rush.py: a minimal FastAPI app whose POST does one INSERT through an
asyncpg pool, no auth, no ORM, no outbox. It is served like the platform's services (uvicorn, here with
2 workers) behind an nginx gateway rendered from the same template, so the ratio measures what the
platform adds per request.

    BASELINE_DSN=postgresql://postgres@127.0.0.1:5432/db uvicorn bench.baseline_app:app --workers 2
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

CREATE = """CREATE TABLE IF NOT EXISTS baseline_rows (
    id uuid PRIMARY KEY, body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"""
INSERT = "INSERT INTO baseline_rows (id, body) VALUES ($1, $2::jsonb)"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(os.environ["BASELINE_DSN"], min_size=2, max_size=10)
    assert pool is not None
    async with pool.acquire() as conn:
        await conn.execute(CREATE)
    app.state.pool = pool
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/applications", status_code=201)
async def insert_one(request: Request) -> JSONResponse:
    body: dict[str, Any] = await request.json()
    row_id = uuid.uuid4()
    async with request.app.state.pool.acquire() as conn:
        await conn.execute(INSERT, row_id, json.dumps(body))
    return JSONResponse({"id": str(row_id), "status": "draft"}, status_code=201)
