"""Guangxi's demo plan asks for majors and for the city's review: a school fills majors with their
numbers and submits; Nanning's municipal account passes it; the province returns it for modification;
the school sees the reason and can edit it again."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.web.helpers import (
    choose,
    complete_profile,
    fill_captcha,
    login,
    logout,
    pick_unregistered_school,
    register,
    save_profile,
    shot,
    toast,
    type_rich,
)

DEMO_PASSWORD = "Demo#2026"


@pytest.fixture()
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = await context.new_page()
    yield page
    await context.close()


async def allowed_major(api: httpx.AsyncClient, certificate_label: str) -> dict:
    """One major the chosen certificate allows, as the public catalogue names it."""
    name = certificate_label.split("（")[0]
    response = await api.get("/api/v1/certificates", params={"q": name, "page_size": 50})
    response.raise_for_status()
    certificate = next(c for c in response.json()["items"] if c["name"] == name and c["major_codes"])
    code = certificate["major_codes"][0]
    majors = (await api.get("/api/v1/majors", params={"q": code, "page_size": 10})).json()["items"]
    return next(m for m in majors if m["code"] == code)


async def test_by_major_application_passes_the_city_and_is_returned_by_the_province(
    page: Page, api: httpx.AsyncClient, base_url: str, screenshots: Path
) -> None:
    school = await pick_unregistered_school(api, "45", "南宁", exclude={"4145010867"})
    account, password = await register(page, api, base_url, school, "广西壮族自治区")
    await page.get_by_role("button", name="开始申报试点证书").click()
    await page.locator("input[name=account]").fill(account)
    await page.locator("input[name=password]").fill(password)
    await fill_captcha(page, api)
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_url(re.compile(r"#/school/profile"))
    await complete_profile(page, school, city="南宁市", district="青秀区")
    await save_profile(page)

    plan_row = page.locator("[data-test=plans-table] .el-table__row", has_text="申报中").first
    await expect(plan_row).to_contain_text("是")
    await plan_row.locator("[data-test=new-application]").click()
    dialog = page.locator(".application-dialog")
    await expect(dialog.get_by_text("按专业填报", exact=True)).to_be_visible()
    await page.locator("[data-test=certificate]").click()
    option = page.locator(".el-select-dropdown__item:visible").first
    await option.wait_for(timeout=15000)
    certificate_label = (await option.inner_text()).split(" — ")[0]
    await option.click()

    # Without majors the checklist says what is missing and submission stays closed.
    await expect(dialog.locator("[data-test=checklist]")).to_contain_text("✘ 按专业填报：至少添加一个拟申请的专业")
    major = await allowed_major(api, certificate_label)
    await choose(page, dialog.locator("[data-test=major]"), major["code"], type_text=major["code"])
    await dialog.locator("[data-test=add-major]").click()
    cells = dialog.locator(".majors-table .el-table__row").first.locator("input")
    await cells.nth(0).fill("120")
    await cells.nth(1).fill("6")
    await cells.nth(2).fill("40")
    await cells.nth(2).blur()
    await expect(dialog.locator("[data-test=trainees-sum]")).to_have_text("40")
    await type_rich(page, dialog.locator("[data-test=faculty]"), "专任教师6名，均具备相关证书培训经历。")
    await type_rich(page, dialog.locator("[data-test=venue]"), "实训中心一处，设备满足考核要求。")
    await dialog.locator("[data-test=confirm-check]").click()
    await shot(page, screenshots, "11-by-major-dialog")
    await dialog.locator("[data-test=submit]").click()
    await page.get_by_role("button", name="确认提交").click()
    await toast(page, "已提交审核")
    table = page.locator("[data-test=applications-table]")
    await expect(table).to_contain_text("地市审核中")
    await logout(page)

    # Nanning's municipal account decides first.
    await login(page, api, base_url, "nn_city", DEMO_PASSWORD)
    row = page.locator("[data-test=review-table] .el-table__row", has_text=school["name"]).first
    await expect(row).to_contain_text("地市审核", timeout=15000)
    await row.locator("[data-test=detail]").click()
    drawer = page.locator(".el-drawer")
    await expect(drawer).to_contain_text(major["name"])
    await shot(page, screenshots, "12-city-review")
    await drawer.locator("[data-test=decide]").click()
    await toast(page, "审核结论已提交")
    await logout(page)

    # The province returns it for modification, with a reason.
    await login(page, api, base_url, "gx_province", DEMO_PASSWORD)
    row = page.locator("[data-test=review-table] .el-table__row", has_text=school["name"]).first
    await expect(row).to_contain_text("省级审核", timeout=15000)
    await row.locator("[data-test=detail]").click()
    drawer = page.locator(".el-drawer")
    await drawer.locator("[data-test=decision]").get_by_text("退回修改").click()
    await drawer.locator("[data-test=comment]").fill("请补充场地佐证材料")
    await drawer.locator("[data-test=decide]").click()
    await toast(page, "审核结论已提交")
    await logout(page)

    # The school sees it back as an editable draft with the province's reason.
    await login(page, api, base_url, account, password)
    await page.goto(f"{base_url}/#/school/apply")
    table = page.locator("[data-test=applications-table]")
    await expect(table.locator("[data-test=app-status]").first).to_have_text("待提交", timeout=15000)
    await expect(table).to_contain_text("已退回：请补充场地佐证材料")
    await table.get_by_role("button", name="修改").first.click()
    await expect(page.locator(".application-dialog")).to_contain_text("审核退回修改：请补充场地佐证材料")
    await shot(page, screenshots, "13-returned")
