"""Browser tests: the real platform (deploy.platform.Platform, isolated databases, namespace and ports)
with the built web client behind its gateway, driven by Debian's Chromium through Playwright.

The suite runs inside pytest-asyncio's session loop, so everything here is async (Playwright's async
API, `async with Platform`). Set ONEX_WEB_URL=http://127.0.0.1:8080 to run against a platform that is
already up (`make up`) instead of starting one.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("ONEX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
async def base_url() -> AsyncIterator[str]:
    """The gateway's URL: a platform started for this session, or ONEX_WEB_URL."""
    given = os.environ.get("ONEX_WEB_URL")
    if given:
        yield given.rstrip("/")
        return
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: the web client cannot be built")
    from deploy.gateway.render import RateLimits
    from deploy.platform import Platform, port_offsets
    from deploy.processes import find_free_base_port

    run = "w" + secrets.token_hex(3)
    logs = ROOT / "test-artifacts" / "web-platform-logs"  # this run's service logs, beside the pictures
    shutil.rmtree(logs, ignore_errors=True)
    platform = Platform(
        log_dir=logs,
        run_id=run,
        base_port=find_free_base_port(port_offsets({})),
        namespace=f"t{run}",
        db_prefix=f"t_{run}_",
        seed=True,
        web=True,
        drop_on_stop=True,
        limits=RateLimits(login_rate="120r/m", login_burst=60, sms_rate="60r/m", sms_burst=30),
    )
    async with platform:
        if not (ROOT / "web" / "dist" / "index.html").exists():
            pytest.fail(f"web client not available: {platform.web_note}")
        yield platform.gateway_url


@pytest.fixture(scope="session")
async def api(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=15.0, trust_env=False) as client:
        yield client


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash deploy/ensure-system.sh chromium`")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """This run's pictures only: older ones are removed so none can pass for a fresh one."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    return SCREENSHOTS
