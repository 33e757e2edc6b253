"""The README's curl walkthrough of the main flow works as written: its shell blocks, run in order in
one bash session against the test platform's gateway (only GW differs)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy.platform import ROOT

SECTION = "## The main flow with curl"


def walkthrough() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    blocks = re.findall(r"```sh\n(.*?)```", readme[start : end if end != -1 else None], flags=re.DOTALL)
    assert len(blocks) >= 5, "the walkthrough lost its blocks"
    return "\n".join(blocks)


async def test_readme_walkthrough_runs_as_written(gateway_url: str, tmp_path: Path) -> None:
    missing = [tool for tool in ("bash", "curl", "jq", "shuf") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the walkthrough needs {missing}")
    script = walkthrough()
    assert script.startswith("GW=http://127.0.0.1:8080\n")
    script = f"set -eo pipefail\nGW={gateway_url}\n" + script.split("\n", 1)[1]
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False
    )
    out = result.stdout
    assert result.returncode == 0, f"exit {result.returncode}\n{out[-2000:]}\n{result.stderr[-2000:]}"
    assert '"profile_completed": true' in out
    assert '"review_stage": "municipal"' in out and '"review_stage": "provincial"' in out
    assert '"status": "approved"' in out and '"approved_trainees": 50' in out
    assert "已审核通过，批准培训50人" in out and "申报审核通过" in out
    school = (tmp_path / "account.json").read_text()
    code = re.search(r'"institution_code":\s*"(\d{10})"', school)
    assert code and f'"institution_code": "{code.group(1)}"' in out.split("申报审核通过")[-1]
