"""`python -m services.registry.cli seed-demo | import-institutions FILE | import-regions | import-majors`.

Every command is idempotent: a re-run changes nothing and emits no event. Events of real changes go
through the outbox; the running registry service's relay publishes them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.registry import demo, reference, service
from services.registry.config import RegistrySettings
from services.registry.domain import Scope
from services.registry.exceptions import RegistryError
from shared.db import sessions_for

app = typer.Typer(help="Registry operator commands.", no_args_is_help=True)
console = Console()
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
T = TypeVar("T")


def _run(work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]], *, migrate: bool = True) -> T:
    settings = RegistrySettings()

    async def main() -> T:
        async with sessions_for(settings.database_url, migrations_dir=MIGRATIONS if migrate else None) as sessions:
            return await work(sessions)

    return asyncio.run(main())


def _print_import(result: service.ImportResult, *, max_errors: int = 50) -> None:
    console.print(
        f"行数 {result.total}：新增 {result.created}，更新 {result.updated}，未变 {result.unchanged}，"
        f"失败 {result.failed}，所在地无法对应到地市 {len(result.unplaced)}"
    )
    for title, rows in (("未能对应到地市的行（已导入，无地市）", result.unplaced), ("错误", result.errors)):
        if not rows:
            continue
        table = Table(title=title)
        for column in ("行号", "字段", "说明"):
            table.add_column(column)
        for e in rows[:max_errors]:
            table.add_row(str(e.row), e.field, e.message)
        console.print(table)
        if len(rows) > max_errors:
            console.print(f"……另有 {len(rows) - max_errors} 条")


async def _import_file(sessions: async_sessionmaker[AsyncSession], content: bytes) -> service.ImportResult:
    with Progress(
        TextColumn("[bold]导入院校"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("import", total=None)

        def advance(n: int) -> None:
            progress.advance(task, n)

        async with sessions() as session:
            result = await service.import_institution_file(
                session, content=content, scope=Scope(anywhere=True), progress=advance
            )
        progress.update(task, total=result.total - result.failed, completed=result.total - result.failed)
    return result


@app.command("import-institutions")
def import_institutions(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or XLSX (generic or Ministry layout)")],
) -> None:
    """Import institutions (operator: any province). Bad rows are listed with their row numbers."""
    content = file.read_bytes()
    try:
        result = _run(lambda sessions: _import_file(sessions, content))
    except RegistryError as exc:
        console.print(f"[red]导入失败：{exc}")
        raise typer.Exit(1) from exc
    _print_import(result)
    if result.errors:
        raise typer.Exit(2)


async def _regions(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return await service.load_regions(session, rows=reference.regions())


async def _majors(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    async with sessions() as session:
        return await service.load_majors(session, rows=reference.majors())


@app.command("import-regions")
def import_regions() -> None:
    """Load provinces, cities and districts from data/ (GB/T 2260 codes)."""
    console.print(f"行政区划：{_run(_regions)} 条新增或更正")


@app.command("import-majors")
def import_majors() -> None:
    """Load the 2021 vocational major catalogue from data/."""
    created, updated = _run(_majors)
    console.print(f"专业目录：新增 {created}，更新 {updated}")


async def _certificates(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    created_orgs, changed = 0, 0
    for org in dict.fromkeys(c.org for c in demo.CERTIFICATES):
        async with sessions() as session:
            await service.ensure_organization(session, name=org)
            created_orgs += 1
    for cert in demo.CERTIFICATES:
        for level, codes in cert.majors.items():
            async with sessions() as session:
                _, did_change = await service.ensure_certificate(
                    session, org_id=service.org_id_for(cert.org), name=cert.name, level=level, major_codes=codes
                )
            changed += did_change
    return created_orgs, changed


async def _seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    started = time.monotonic()
    regions = await _regions(sessions)
    console.print(f"行政区划：{regions} 条新增或更正")
    created, updated = await _majors(sessions)
    console.print(f"专业目录：新增 {created}，更新 {updated}")
    result = await _import_file(sessions, reference.MINISTRY_LIST.read_bytes())
    _print_import(result)
    orgs, certificates = await _certificates(sessions)
    console.print(f"培训评价组织 {orgs} 个；证书新增或更正 {certificates} 个")
    console.print(f"[green]演示数据已就绪（{time.monotonic() - started:.1f} 秒）")


@app.command("seed-demo")
def seed_demo() -> None:
    """Regions, the 2021 majors, the Ministry register (2,919), demo organisations and certificates."""
    _run(_seed)


if __name__ == "__main__":
    app()
