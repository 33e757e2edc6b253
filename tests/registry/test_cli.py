"""The operator CLI: import-institutions reports counts, unplaced rows and row errors (exit 2)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from services.registry import reference
from services.registry.cli import app
from shared.testing.harness import RunningService
from tests.registry.factories import csv_bytes


def _invoke(registry: RunningService, *args: str):
    env = {"REGISTRY_DATABASE_URL": registry.settings.database_url, "REGISTRY_APP_ENV": "test", "COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env=env)


async def test_ministry_list_reimport_is_unchanged_and_reports_unplaced(registry: RunningService) -> None:
    result = await asyncio.to_thread(_invoke, registry, "import-institutions", str(reference.MINISTRY_LIST))
    assert result.exit_code == 0, result.output
    assert "行数 2919：新增 0，更新 0，未变 2919，失败 0，所在地无法对应到地市 2" in result.output
    assert "河北工业大学" in result.output and "西藏民族大学" in result.output


async def test_bad_rows_are_listed_with_row_numbers(registry: RunningService, tmp_path: Path) -> None:
    upload = tmp_path / "schools.csv"
    upload.write_bytes(
        csv_bytes(
            [
                ("4150770001", "重庆市命令行导入中职学校", "中职", "50", "5001", "500101"),
                ("4150770002", "类型错误学校", "幼儿园", "50", "5001", ""),
            ]
        )
    )
    result = await asyncio.to_thread(_invoke, registry, "import-institutions", str(upload))
    assert result.exit_code == 2, result.output
    assert "新增 1" in result.output and "失败 1" in result.output
    assert "3" in result.output and "type" in result.output
    rerun = await asyncio.to_thread(_invoke, registry, "import-institutions", str(upload))
    assert "新增 0，更新 0，未变 1" in rerun.output
