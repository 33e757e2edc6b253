"""`python -m services.identity.cli seed-demo | create-account | rebuild-institutions`.

`seed-demo` is idempotent: an account that exists is left alone and announced no second time. Events
go through the outbox; the running identity service's relay publishes them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.identity import service
from services.identity.config import IdentitySettings
from services.identity.exceptions import IdentityError
from shared.auth.principal import Role
from shared.db import sessions_for

app = typer.Typer(help="Identity operator commands.", no_args_is_help=True)
console = Console()
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEMO_PASSWORD = "Demo#2026"
DEMO_ORG_NAME = "工业和信息化部教育与考试中心"
T = TypeVar("T")


@dataclass(frozen=True)
class DemoAccount:
    account: str
    role: Role
    phone: str
    name: str
    province_code: str | None = None
    city_code: str | None = None
    org_id: str | None = None
    institution_code: str | None = None


def demo_org_id() -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "onex-org:" + DEMO_ORG_NAME))


# The demo accounts of docs/conventions.md. School scopes are given too, so that seeding works even
# before registry's events have filled the register copy (the copy wins when it has the school).
DEMO_ACCOUNTS = (
    DemoAccount("gx_province", Role.provincial, "13800000011", "广西壮族自治区教育厅", province_code="45"),
    DemoAccount("nn_city", Role.municipal, "13800000012", "南宁市教育局", province_code="45", city_code="4501"),
    DemoAccount("bj_province", Role.provincial, "13800000013", "北京市教育委员会", province_code="11"),
    DemoAccount("org_demo", Role.org, "13800000014", DEMO_ORG_NAME, org_id=demo_org_id()),
    DemoAccount(
        "4145010867",
        Role.institution,
        "13800000001",
        "广西机电职业技术学院",
        province_code="45",
        city_code="4501",
        institution_code="4145010867",
    ),
    DemoAccount(
        "4111010853",
        Role.institution,
        "13800000002",
        "北京工业职业技术学院",
        province_code="11",
        city_code="1101",
        institution_code="4111010853",
    ),
)
OPERATOR = DemoAccount("operator", Role.operator, "13800000010", "平台运维")


def _run(work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]], settings: IdentitySettings) -> T:
    async def main() -> T:
        async with sessions_for(settings.database_url, migrations_dir=MIGRATIONS) as sessions:
            return await work(sessions)

    return asyncio.run(main())


async def seed(sessions: async_sessionmaker[AsyncSession], *, settings: IdentitySettings, now: datetime) -> list[str]:
    """Create the operator and the demo accounts that do not exist yet; returns those created."""
    created = []
    wanted = [(OPERATOR, settings.operator_password_value)]
    if settings.app_env.value != "prod":
        wanted += [(demo, DEMO_PASSWORD) for demo in DEMO_ACCOUNTS]
    for demo, password in wanted:
        async with sessions() as session:
            account = await service.create_account(
                session=session,
                account=demo.account,
                password=password,
                role=demo.role,
                phone=demo.phone,
                name=demo.name,
                province_code=demo.province_code,
                city_code=demo.city_code,
                org_id=demo.org_id,
                institution_code=demo.institution_code,
                now=now,
                exist_ok=True,
            )
        if account is not None:
            created.append(account.account)
    return created


@app.command("seed-demo")
def seed_demo() -> None:
    """Create the operator (OPERATOR_PASSWORD, `Operator#2026` in dev) and, outside prod, the demo accounts."""
    settings = IdentitySettings()
    created = _run(lambda s: seed(s, settings=settings, now=datetime.now(UTC)), settings)
    console.print(f"identity: 新建账号 {len(created)} 个" + (f"：{', '.join(created)}" if created else "（均已存在）"))


@app.command("create-account")
def create_account(
    account: Annotated[str, typer.Argument(help="登录账号")],
    role: Annotated[Role, typer.Option(help="角色")],
    phone: Annotated[str, typer.Option(help="手机号")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="密码")],
    name: Annotated[str | None, typer.Option(help="名称")] = None,
    province_code: Annotated[str | None, typer.Option(help="省级代码（2 位）")] = None,
    city_code: Annotated[str | None, typer.Option(help="地市代码（4 位）")] = None,
    org_id: Annotated[str | None, typer.Option(help="培训评价组织 id")] = None,
    institution_code: Annotated[str | None, typer.Option(help="院校识别码（院校账号）")] = None,
) -> None:
    """Create one account of any role, announced by `identity.account.created`."""
    settings = IdentitySettings()

    async def work(sessions: async_sessionmaker[AsyncSession]) -> str:
        async with sessions() as session:
            created = await service.create_account(
                session=session,
                account=account,
                password=password,
                role=role,
                phone=phone,
                name=name,
                province_code=province_code,
                city_code=city_code,
                org_id=org_id,
                institution_code=institution_code,
                now=datetime.now(UTC),
            )
        return str(created.id) if created else ""

    try:
        account_id = _run(work, settings)
    except IdentityError as exc:
        message = f"{exc.detail} {getattr(exc, 'field', '')} {getattr(exc, 'message', '')}".strip()
        console.print(f"[red]创建失败：{message}[/red]")
        raise typer.Exit(1) from exc
    table = Table("id", "account", "role")
    table.add_row(account_id, account, role.value)
    console.print(table)


if __name__ == "__main__":
    app()
