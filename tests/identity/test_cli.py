"""`python -m services.identity.cli seed-demo` (idempotent, announces each account once) and
`create-account`, run as the operator would, against the module's database; the register copy
rebuilt page by page."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner, Result

from services.identity import cli, register_copy
from services.identity.cli import DEMO_ACCOUNTS, demo_org_id
from services.identity.models import Institution
from tests.identity.factories import Client, new_phone, unique, wait_events


def _env(svc) -> dict[str, str]:
    return {"IDENTITY_DATABASE_URL": svc.settings.database_url, "IDENTITY_APP_ENV": "dev", "COLUMNS": "200"}


def _cli(svc, *args: str) -> subprocess.CompletedProcess[str]:
    """The command exactly as `make up` and an operator run it: a process of its own."""
    env = {k: v for k, v in os.environ.items() if k != "OPERATOR_PASSWORD"} | _env(svc)
    return subprocess.run(
        [sys.executable, "-m", "services.identity.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path.cwd(),
    )


async def _cli_in_process(svc, *args: str) -> Result:
    """The same typer app without a new interpreter (its own event loop, in a thread)."""
    runner = CliRunner()
    env: dict[str, str | None] = {"OPERATOR_PASSWORD": None, **_env(svc)}
    return await asyncio.to_thread(runner.invoke, cli.app, list(args), env=env)


async def test_seed_demo_is_idempotent_and_announces_each_account_once(client: Client, svc, probe) -> None:
    first = _cli(svc, "seed-demo")
    assert first.returncode == 0, first.stderr
    names = ["operator", *(d.account for d in DEMO_ACCOUNTS)]
    events = await wait_events(
        probe, "identity.account.created", lambda e: e["data"]["account"] in names, count=len(names)
    )
    by_name = {e["data"]["account"]: e["data"] for e in events}
    assert set(by_name) == set(names)
    school = by_name["4145010867"]
    assert (school["role"], school["primary"], school["province_code"], school["city_code"]) == (
        "institution",
        True,
        "45",
        "4501",
    )
    assert school["phone"] == "13800000001" and school["institution_name"] == "广西机电职业技术学院"
    assert by_name["org_demo"]["org_id"] == demo_org_id()

    second = await _cli_in_process(svc, "seed-demo")
    assert second.exit_code == 0, second.output
    assert "均已存在" in second.output

    operator = await client.tokens("operator", "Operator#2026")
    assert operator["role"] == "operator"
    for demo in DEMO_ACCOUNTS:
        pair = await client.tokens(demo.account, "Demo#2026")
        assert pair["role"] == demo.role.value
    nn = await client.tokens("nn_city", "Demo#2026")
    me = (await client.http.get("/api/v1/accounts/me", headers=client.headers(nn["access_token"]))).json()
    assert (me["province_code"], me["city_code"]) == ("45", "4501")
    created = [e for e in probe.of_type("identity.account.created") if e["data"]["account"] in names]
    assert len(created) == len(names)


async def test_create_account_command(client: Client, svc) -> None:
    account = unique("cli")
    done = await _cli_in_process(
        svc,
        "create-account",
        account,
        "--role",
        "municipal",
        "--phone",
        new_phone(),
        "--province-code",
        "45",
        "--city-code",
        "4502",
        "--password",
        "Cli-made-pass-8",
    )
    assert done.exit_code == 0, done.output
    assert account in done.output
    assert (await client.tokens(account, "Cli-made-pass-8"))["role"] == "municipal"
    again = await _cli_in_process(
        svc, "create-account", account, "--role", "operator", "--phone", new_phone(), "--password", "x"
    )
    assert again.exit_code == 1 and "创建失败" in again.output


async def test_register_copy_rebuilt_page_by_page(svc) -> None:
    pages = {
        None: {
            "items": [{"code": "4199000001", "name": "甲学院", "province_code": "41", "city_code": "4101"}],
            "next": "4199000001",
        },
        "4199000001": {
            "items": [
                {"code": "4199000002", "name": "乙学院", "province_code": "41", "city_code": None, "subject_version": 4}
            ],
            "next": None,
        },
    }

    async def fetch(after: str | None) -> dict:
        return pages[after]

    assert await register_copy.rebuild(svc.runtime.sessionmaker, fetch) == 2
    async with svc.runtime.sessionmaker() as session:
        second = await session.get(Institution, "4199000002")
    assert second is not None and second.subject_version == 4 and second.name == "乙学院"
    assert not await register_copy.copy_is_empty(svc.runtime.sessionmaker)
