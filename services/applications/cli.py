"""`python -m services.applications.cli rebuild-copies | seed-demo`."""

from __future__ import annotations

import asyncio

import httpx
import typer
from rich.console import Console

from services.applications.config import ApplicationsSettings
from services.applications.rebuild import rebuild_copies
from shared.db import sessions_for

app = typer.Typer(help="Applications service operator commands.")
console = Console()


@app.command("rebuild-copies")
def rebuild_copies_command(
    page_size: int = typer.Option(500, help="rows per page asked from the owners"),
    timeout: float = typer.Option(30.0, help="HTTP timeout in seconds"),
) -> None:
    """Rebuild the copies of institutions, majors, certificates (registry) and plans (plans)."""
    settings = ApplicationsSettings()

    async def run() -> dict[str, int]:
        async with (
            sessions_for(settings.database_url) as sessions,
            httpx.AsyncClient(base_url=settings.registry_url, timeout=timeout) as registry,
            httpx.AsyncClient(base_url=settings.plans_url, timeout=timeout) as plans,
        ):
            return await rebuild_copies(
                registry=registry,
                plans=plans,
                sessionmaker=sessions,
                page_size=page_size,
                progress=lambda kind, n: console.print(f"{kind}: {n}", end="\r"),
            )

    counts = asyncio.run(run())
    for kind, count in counts.items():
        console.print(f"{kind}: {count} row(s) read")


@app.command("seed-demo")
def seed_demo() -> None:
    """Nothing to seed: the copies arrive by events once registry and plans have seeded theirs."""
    console.print("applications: no demo data needed (copies arrive by events)")


if __name__ == "__main__":
    app()
