"""`make up` / `make down`: the whole platform as local processes, no installation beyond the project.

python -m deploy.local up [--scale applications=2,notify=2]
python -m deploy.local status
python -m deploy.local down
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from deploy.gateway.routes import SERVICES
from deploy.platform import DEFAULT_RUN_ID, ROOT, Platform, PlatformError, parse_scale

app = typer.Typer(help="本地运行 1+X 证书试点申报平台 (the 1+X platform as local processes).", no_args_is_help=True)
console = Console()

RunIdOption = typer.Option(DEFAULT_RUN_ID, help="Isolated run: own .run/<id>, databases and namespace.")
BasePortOption = typer.Option(8000, help="Instances listen on base+1..base+5 (+100 per extra), gateway on base+80.")


def _say(message: str) -> None:
    console.print(f"[dim]·[/dim] {message}")


def _platform(run_id: str, base_port: int, **options: Any) -> Platform:
    return Platform(run_id, base_port=base_port, say=_say, **options)


@app.command()
def up(
    scale: str = typer.Option("", help="Instances per service, e.g. applications=2,notify=2 (default 1 each)."),
    seed: bool = typer.Option(True, help="Load the demo data (each service's `cli seed-demo`)."),
    web: bool = typer.Option(True, help="Build the web client (web/) when npm is installed."),
    run_id: str = RunIdOption,
    base_port: int = BasePortOption,
) -> None:
    """Migrate, start every service and the gateway, wait until ready, load demo data."""
    try:
        platform = _platform(run_id, base_port, scale=parse_scale(scale), seed=seed, web=web)
        platform.start()
    except PlatformError as exc:
        console.print(f"[bold red]up failed:[/bold red] {exc}")
        console.print("Logs are in var/log/. `make down` stops whatever was started.")
        raise typer.Exit(1) from exc
    _print_status(platform)
    _print_welcome(platform)


@app.command()
def down(run_id: str = RunIdOption, base_port: int = BasePortOption) -> None:
    """Stop exactly the processes `up` started (pid files under .run/)."""
    stopped = _platform(run_id, base_port).stop()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
def status(run_id: str = RunIdOption, base_port: int = BasePortOption) -> None:
    """Show every instance and the gateway: pid, port, readiness."""
    platform = _platform(run_id, base_port, scale=_recorded_scale(run_id))
    rows = _print_status(platform)
    if not all(row["ready"] for row in rows):
        raise typer.Exit(1)


def _recorded_scale(run_id: str) -> dict[str, int]:
    """The scale of the last `up`, read back from its pid files."""
    run_dir = ROOT / ".run" if run_id == DEFAULT_RUN_ID else ROOT / ".run" / run_id
    scale: dict[str, int] = {}
    for pid_file in run_dir.glob("*.pid"):
        service, _, index = pid_file.stem.rpartition("-")
        if service in SERVICES and index.isdigit():
            scale[service] = max(scale.get(service, 1), int(index) + 1)
    return scale


def _print_status(platform: Platform) -> list[dict[str, object]]:
    rows = platform.status()
    table = Table(title="1+X platform", show_lines=False)
    for column in ("process", "port", "pid", "ready"):
        table.add_column(column)
    for row in rows:
        ready = "[green]ready[/green]" if row["ready"] else "[red]down[/red]"
        table.add_row(str(row["name"]), str(row["port"]), str(row["pid"] or "-"), ready)
    console.print(table)
    return rows


def demo_accounts(conventions: Path = ROOT / "docs" / "conventions.md") -> list[list[str]]:
    """The demo accounts table of docs/conventions.md, so the welcome text never drifts from it."""
    try:
        text = conventions.read_text(encoding="utf-8")
    except OSError:
        return []
    section = text.split("Demo accounts", 1)[-1]
    rows: list[list[str]] = []
    for line in section.splitlines()[1:]:
        if rows and not line.startswith("|"):
            break
        # Drop backticks and the parenthesised technical notes (such as how an id is derived).
        cells = [re.sub(r"`|\s*\(id = .*\)", "", c).strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and not set(line) <= set("|- ") and cells[0] != "account":
            rows.append(cells)
    return rows


def _print_welcome(platform: Platform) -> None:
    console.print()
    console.print(f"[bold green]平台已启动[/bold green]  {platform.gateway_url}")
    console.print(f"接口文档  {platform.gateway_url}/docs")
    if platform.web_note:
        console.print(f"网页客户端  {platform.gateway_url}/  ({platform.web_note})")
    accounts = demo_accounts()
    if accounts:
        table = Table(title="演示账号 (password Demo#2026 unless noted)")
        for column in ("account", "role", "scope"):
            table.add_column(column)
        for cells in accounts:
            table.add_row(*[*cells, "", "", ""][:3])
        console.print(table)
    console.print("Stop everything with [bold]make down[/bold].")


if __name__ == "__main__":
    app()
