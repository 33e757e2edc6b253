"""Every role's main pages load from the real API without an error, with screenshots."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.web.helpers import login, logout, shot, toast

DEMO_PASSWORD = "Demo#2026"


@pytest.fixture()
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = await context.new_page()
    errors: list[str] = []
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    yield page
    await context.close()
    assert not errors, f"server errors while browsing: {errors}"


async def visit(page: Page, base_url: str, path: str, ready: str, screenshots: Path, name: str) -> None:
    await page.goto(f"{base_url}/#{path}")
    await expect(page.locator(ready).first).to_be_visible(timeout=15000)
    await page.wait_for_load_state("networkidle")
    await expect(page.locator(".el-message--error")).to_have_count(0)
    await shot(page, screenshots, name)


async def test_province_pages(page: Page, api: httpx.AsyncClient, base_url: str, screenshots: Path) -> None:
    await login(page, api, base_url, "gx_province", DEMO_PASSWORD)
    await visit(
        page, base_url, "/dept/plans", "[data-test=dept-plans-table] .el-table__row", screenshots, "20-province-plans"
    )
    await expect(page.locator("[data-test=dept-plans-table] .el-table__row").first).to_contain_text("申报中")
    # A draft plan: created, edited, deleted (a draft is never shown to schools).
    year, batch = "2099", str(random.randint(10, 99))
    await page.get_by_role("button", name="新建申报计划").click()
    dialog = page.locator(".el-dialog:visible")
    await expect(dialog.get_by_text("是否需要地市级教育局审批")).to_be_visible()
    await dialog.locator(".el-form-item", has_text="年度").locator("input").fill(year)
    await dialog.locator(".el-form-item", has_text="批次").locator("input").fill(batch)
    await dialog.locator("input[name=plan-title]").fill(f"{year}年第{batch}批（浏览器测试）")
    await shot(page, screenshots, "21-province-plan-dialog")
    await dialog.get_by_role("button", name="保存").click()
    await toast(page, "已保存")
    draft = page.locator("[data-test=dept-plans-table] .el-table__row", has_text="草稿").filter(has_text=year).first
    await expect(draft).to_be_visible()
    await draft.get_by_role("button", name="编辑").click()
    await dialog.locator("input[name=plan-title]").fill(f"{year}年第{batch}批（已修改）")
    await dialog.get_by_role("button", name="保存").click()
    await toast(page, "已保存")
    await draft.get_by_role("button", name="删除").click()
    await page.locator(".el-message-box").get_by_role("button", name="删除").click()
    await toast(page, "草稿已删除")
    await visit(
        page,
        base_url,
        "/dept/institutions",
        "[data-test=institutions-table] .el-table__row",
        screenshots,
        "22-province-register",
    )
    # Lists come in pages of 10, as in the seeds: 广西's register fills more than one.
    rows = page.locator("[data-test=institutions-table] .el-table__row")
    await expect(rows).to_have_count(10)
    first_page = await rows.first.inner_text()
    await page.locator(".el-pagination .btn-next").click()
    await expect(rows.first).not_to_have_text(first_page)
    await expect(rows).to_have_count(10)
    await page.get_by_placeholder("院校名称关键字").fill("南宁")
    await page.get_by_role("button", name="查询").click()
    first = page.locator("[data-test=institutions-table] .el-table__row").first
    await expect(first).to_contain_text("南宁")
    await first.click()
    await expect(page.locator(".el-drawer").get_by_text("重置院校账号密码")).to_be_visible()
    await shot(page, screenshots, "23-province-institution")
    await page.keyboard.press("Escape")
    await expect(page.locator(".el-drawer")).to_be_hidden()
    await logout(page)


async def test_org_and_operator_pages(page: Page, api: httpx.AsyncClient, base_url: str, screenshots: Path) -> None:
    await login(page, api, base_url, "org_demo", DEMO_PASSWORD)
    await visit(page, base_url, "/org/certificates", ".el-table__row", screenshots, "30-org-certificates")
    await expect(page.locator(".el-table__row").first).to_contain_text("工业和信息化部教育与考试中心")
    await visit(page, base_url, "/dept/reviews", "[data-test=review-table]", screenshots, "31-org-applications")
    await expect(page.locator("[data-test=batch-approve]")).to_have_count(0)  # organisations only read
    await logout(page)

    await login(page, api, base_url, "operator", "Operator#2026")
    await visit(page, base_url, "/admin/accounts", "text=新建账号", screenshots, "40-operator-accounts")
    await visit(page, base_url, "/admin/master", ".el-table__row", screenshots, "41-operator-master-data")
    await page.get_by_role("tab", name="专业目录").click()
    await expect(page.locator(".el-tab-pane:visible .el-table__row").first).to_be_visible()
    await page.get_by_role("tab", name="短信记录").click()
    # Whether any SMS went out yet depends on which tests ran before: the log itself must show.
    await expect(page.locator(".el-tab-pane:visible").get_by_text("共", exact=False).first).to_be_visible()
    await shot(page, screenshots, "42-operator-sms-log")
    await visit(page, base_url, "/dept/reviews", "[data-test=review-table]", screenshots, "43-operator-applications")
    await visit(page, base_url, "/dept/stats", "[data-test=stat-all]", screenshots, "44-operator-statistics")
