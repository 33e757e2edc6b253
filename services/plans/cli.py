"""`python -m services.plans.cli seed-demo`: operator commands of the plans service."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from services.plans import service
from services.plans.config import PlansSettings
from services.plans.domain import system_clock
from services.plans.schemas import PlanOut
from shared.db import sessions_for

app = typer.Typer(help="Plans service operator commands.")
console = Console()


@app.callback()
def main() -> None:
    """Plans service operator commands."""


@app.command("seed-demo")
def seed_demo() -> None:
    """Publish the demo plans of 广西 (45) and 北京 (11), open now for 30 days (idempotent)."""
    settings = PlansSettings()

    async def run() -> list[tuple[PlanOut, bool]]:
        async with sessions_for(settings.database_url, pool_size=1) as sessions, sessions() as session:
            return await service.seed_demo_plans(session, now=system_clock())

    for plan, created in asyncio.run(run()):
        console.print(
            f"{'new' if created else 'already there'}: {plan.province_code} {plan.title} "
            f"[{plan.opens_at:%Y-%m-%d %H:%M} – {plan.closes_at:%Y-%m-%d %H:%M} Asia/Shanghai] "
            f"by_major={plan.by_major} municipal_review={plan.municipal_review} id={plan.id}",
            soft_wrap=True,
        )


if __name__ == "__main__":
    app()
