"""`python -m services.plans.cli seed-demo`: two published plans open now for 30 days, idempotent."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from services.plans import cli
from shared.testing.bus import bus_probe
from tests.plans.factories import FakeClock, Roles, plans_service, plans_settings

ROOT = Path(__file__).resolve().parents[2]


async def seed(database_url: str) -> str:
    env = {**os.environ, "PLANS_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.plans.cli",
        "seed-demo",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    return out.decode()


async def seed_in_process(database_url: str) -> str:
    """The same command without a new interpreter (its own event loop, in a thread)."""
    result = await asyncio.to_thread(
        CliRunner().invoke, cli.app, ["seed-demo"], env={"PLANS_DATABASE_URL": database_url, "COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    return result.output


async def test_seed_demo_publishes_two_open_plans_once(servers, run_id, tokens) -> None:
    clock = FakeClock(datetime.now(UTC))
    settings = plans_settings(servers, run_id, "plans_seed")
    async with (
        bus_probe(servers.amqp_url, f"t{run_id}", "plans.plan.published.#") as probe,
        plans_service(settings, tokens, clock) as svc,
    ):
        first = await seed(settings.database_url)
        second = await seed_in_process(settings.database_url)
        assert first.count("new") == 2 and "already there" not in first
        assert second.count("already there") == 2
        listed = await svc.client.get("/api/v1/plans", headers=Roles(tokens).operator)
        plans = {p["province_code"]: p for p in listed.json()["items"]}
        assert listed.json()["total"] == 2 and set(plans) == {"45", "11"}
        gx, bj = plans["45"], plans["11"]
        assert (gx["by_major"], gx["municipal_review"]) == (True, True)
        assert (bj["by_major"], bj["municipal_review"]) == (False, False)
        year = clock.now.astimezone(UTC).year
        assert gx["title"] == f"{year}年广西1+X证书试点申报（第一次）"
        for plan in (gx, bj):
            assert (plan["state"], plan["status"], plan["batch"]) == ("published", "open", 1)
            assert plan["batch_label"] == f"{year}年第一次"
            window = datetime.fromisoformat(plan["closes_at"]) - clock.now
            assert timedelta(days=29) < window <= timedelta(days=31)
        events = await probe.wait_for("plans.plan.published", count=2)
        assert {e["subject"] for e in events} == {gx["id"], bj["id"]}
        async with svc.runtime.engine.connect() as conn:
            staged = await conn.scalar(
                text("SELECT count(*) FROM outbox WHERE routing_key LIKE 'plans.plan.published%'")
            )
        assert staged == 2


async def test_seed_demo_opens_the_next_batch_once_the_demo_plan_has_closed(servers, run_id, tokens) -> None:
    settings = plans_settings(servers, run_id, "plans_reseed")
    async with plans_service(settings, tokens, FakeClock(datetime.now(UTC))) as svc:
        await seed(settings.database_url)
        async with svc.runtime.engine.begin() as conn:  # the platform comes back after 45's window ended
            await conn.execute(
                text("UPDATE plans SET closes_at = now() - interval '1 day', opens_at = now() - interval '40 days' "
                     "WHERE province_code = '45'")
            )  # fmt: skip
        again = await seed_in_process(settings.database_url)
        assert again.count("new") == 1 and again.count("already there") == 1, again
        listed = (await svc.client.get("/api/v1/plans", headers=Roles(tokens).operator)).json()["items"]
        gx = sorted((p for p in listed if p["province_code"] == "45"), key=lambda p: p["batch"])
        assert [(p["batch"], p["status"]) for p in gx] == [(1, "closed"), (2, "open")]
        assert gx[1]["title"].endswith("（第二次）") and gx[1]["by_major"] and gx[1]["municipal_review"]
