"""A school registers, completes its profile, saves and submits an application with evidence; the
province approves it in its review queue; the school sees the result. Screenshots of each main page."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from shared.testing.samples import PDF_BYTES
from tests.web.helpers import (
    complete_profile,
    fill_captcha,
    login,
    logout,
    pick_unregistered_school,
    register,
    save_profile,
    shot,
    sms_code,
    sms_inbox,
    toast,
)

DEMO_PASSWORD = "Demo#2026"


@pytest.fixture(scope="module")
async def school(api: httpx.AsyncClient) -> dict:
    """A Beijing 职业 college of the register, other than the demo school."""
    return await pick_unregistered_school(api, "11", "职业", exclude={"4111010853"})


@pytest.fixture()
async def page(browser: Browser, base_url: str) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = await context.new_page()
    yield page
    await context.close()


async def test_school_registers_applies_and_sees_province_approval(
    page: Page, api: httpx.AsyncClient, base_url: str, school: dict, screenshots: Path
) -> None:
    # --- registration: province → institution → code filled → mobile → captcha → SMS code
    account, password = await register(page, api, base_url, school, "北京市")
    school["password"] = password  # for the phone-width test below
    assert account == school["code"]
    assert len(password) >= 8
    await shot(page, screenshots, "02-register-done")

    # --- login (account + password + image captcha), landing on step 1 of the wizard
    await page.get_by_role("button", name="开始申报试点证书").click()
    await page.locator("input[name=account]").fill(account)
    await page.locator("input[name=password]").fill(password)
    await fill_captcha(page, api)
    await shot(page, screenshots, "03-login")
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_url(re.compile(r"#/school/profile"))

    # --- step 1: 完善基础信息
    await complete_profile(page, school, city="市辖区", district="海淀区")
    await shot(page, screenshots, "04-profile")
    await save_profile(page)

    # --- step 2: the plan table, then a new application saved as a draft with evidence
    plan_row = page.locator("[data-test=plans-table] .el-table__row", has_text="申报中").first
    await expect(plan_row).to_be_visible(timeout=15000)
    await expect(plan_row).to_contain_text("否")  # Beijing's demo plan: neither by major nor city review
    await plan_row.locator("[data-test=new-application]").click()
    dialog = page.locator(".application-dialog")
    await expect(dialog).to_be_visible()
    certificate = page.locator(".el-select-dropdown__item:visible")
    await page.locator("[data-test=certificate]").click()
    await certificate.first.wait_for(timeout=15000)
    certificate_name = (await certificate.first.inner_text()).split(" — ")[0]
    await certificate.first.click()
    await dialog.locator("[data-test=trainees-total] input").fill("30")
    await dialog.locator("[data-test=faculty] .rt-body").click()
    await page.keyboard.type("本专业现有专任教师12名，其中5名已参加证书师资培训。")
    await dialog.locator("[data-test=venue] .rt-body").click()
    await page.keyboard.type("校内实训室两间，计算机60台，满足考核要求。")
    await dialog.locator("[data-test=evidence-input]").set_input_files(
        files=[{"name": "师资佐证材料.pdf", "mimeType": "application/pdf", "buffer": PDF_BYTES}]
    )
    await expect(dialog.get_by_text("师资佐证材料.pdf")).to_be_visible()
    await expect(dialog.locator("[data-test=checklist]")).to_contain_text("已填写拟申报的培训人数")
    await shot(page, screenshots, "05-application-dialog")
    await dialog.locator("[data-test=save-draft]").click()
    await toast(page, "已保存")
    table = page.locator("[data-test=applications-table]")
    await expect(table).to_contain_text(certificate_name)
    await expect(table.locator("[data-test=app-status]").first).to_have_text("待提交")
    await expect(page.locator(".el-tabs__item", has_text="待提交")).to_contain_text("1")
    await shot(page, screenshots, "06-applications-draft")

    # --- reopen, check the list before submission, submit with the confirmation
    await table.get_by_role("button", name="修改").first.click()
    await expect(dialog.get_by_text("师资佐证材料.pdf")).to_be_visible(timeout=15000)
    await expect(dialog.locator("[data-test=submit]")).to_be_disabled()  # not yet confirmed by the user
    await dialog.locator("[data-test=confirm-check]").click()
    await expect(dialog.locator("[data-test=submit]")).to_be_enabled()
    await dialog.locator("[data-test=submit]").click()
    await page.get_by_role("button", name="确认提交").click()
    await toast(page, "已提交审核")
    await expect(table.locator("[data-test=app-status]").first).to_have_text("待审核")
    await expect(table).to_contain_text("已锁定")
    await shot(page, screenshots, "07-applications-submitted")
    await logout(page)

    # --- the province approves it from its review queue (batch decision, approved trainees 30)
    await login(page, api, base_url, "bj_province", DEMO_PASSWORD)
    await page.wait_for_url(re.compile(r"#/dept/reviews"))
    row = page.locator("[data-test=review-table] .el-table__row", has_text=school["name"]).first
    await expect(row).to_be_visible(timeout=15000)
    await shot(page, screenshots, "08-review-queue")
    await row.locator(".el-checkbox").click()
    await page.locator("[data-test=batch-approve]").click()
    await expect(
        page.locator(".el-dialog", has_text="批量通过").locator("input[type=text], input").first
    ).to_be_visible()
    await page.locator("[data-test=batch-confirm]").click()
    await toast(page, "已处理 1 条申报")
    await page.locator(".el-tabs__item", has_text="审核通过").click()
    await expect(page.locator("[data-test=review-table]")).to_contain_text(school["name"])
    await page.goto(f"{base_url}/#/dept/stats")
    await expect(page.locator("[data-test=stat-approved] .stat-num")).to_have_text(re.compile(r"^[1-9]\d*$"))
    await expect(page.locator("canvas").first).to_be_visible(timeout=15000)
    await shot(page, screenshots, "09-statistics")
    await logout(page)

    # --- the school sees the result
    await login(page, api, base_url, account, password)
    await page.goto(f"{base_url}/#/school/apply")
    table = page.locator("[data-test=applications-table]")
    await expect(table.locator("[data-test=app-status]").first).to_have_text("审核通过", timeout=15000)
    await expect(table).to_contain_text("30")
    await expect(page.locator(".el-tabs__item", has_text="审核通过")).to_contain_text("1")
    await shot(page, screenshots, "10-school-result")

    # --- the in-app notice arrives through the bus (notify), and the school can add a sub-account
    await expect_notification(page, base_url, "申报审核通过")
    await shot(page, screenshots, "14-notifications")
    await page.goto(f"{base_url}/#/school/sub-accounts")
    await page.get_by_placeholder("子账号使用人姓名").fill("李老师")
    await page.get_by_placeholder("11位手机号码").fill("137" + school["phone"][3:])
    await page.get_by_role("button", name="新增子账号").click()
    await expect(page.get_by_text("子账号已创建")).to_be_visible()
    await expect(page.locator(".el-table__row", has_text="李老师")).to_be_visible()
    await shot(page, screenshots, "15-sub-accounts")


async def expect_notification(page: Page, base_url: str, title: str, timeout: float = 30.0) -> None:
    """The notice is written by a consumer: reload the page until it is there."""
    deadline = time.monotonic() + timeout
    while True:
        await page.goto(f"{base_url}/#/notifications")
        await page.wait_for_load_state("networkidle")
        if await page.locator("[data-test=notification]", has_text=title).count():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no in-app notice {title!r} within {timeout:.0f}s")
        await page.reload()


async def test_wrong_password_shows_the_api_detail(page: Page, api: httpx.AsyncClient, base_url: str) -> None:
    await page.goto(f"{base_url}/#/login")
    await page.locator("input[name=account]").fill("bj_province")
    await page.locator("input[name=password]").fill("not-the-password")
    await fill_captcha(page, api)
    await page.get_by_role("button", name="登录").click()
    error = page.locator(".el-message--error").first
    await expect(error).to_be_visible(timeout=15000)
    assert re.search(r"[\u4e00-\u9fff]", await error.inner_text()), "the error shown is the API's Chinese detail"
    await expect(page).to_have_url(re.compile(r"#/login"))


async def test_phone_width_pages_fit_the_screen(
    browser: Browser, api: httpx.AsyncClient, base_url: str, school: dict, screenshots: Path
) -> None:
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True, has_touch=True
    )
    page = await context.new_page()
    try:
        await page.goto(f"{base_url}/#/register")
        await expect(page.get_by_text("试点院校注册")).to_be_visible()
        await shot(page, screenshots, "mobile-01-register")
        await login(page, api, base_url, "4111010853", DEMO_PASSWORD)
        await page.goto(f"{base_url}/#/school/apply")
        await expect(page.locator("[data-test=plans-table]")).to_be_visible(timeout=15000)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 392, f"the page is {width}px wide on a 390px screen"
        await shot(page, screenshots, "mobile-02-apply")
        await page.locator(".menu-btn").click()
        await expect(page.locator(".el-drawer").get_by_text("子账号管理")).to_be_visible()
        await shot(page, screenshots, "mobile-03-menu")
        await page.keyboard.press("Escape")
        await expect(page.locator(".el-drawer")).to_be_hidden()
        await logout(page)
        await login(page, api, base_url, "bj_province", DEMO_PASSWORD)
        await expect(page.locator("[data-test=review-table]")).to_be_visible(timeout=15000)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 392, f"the review queue is {width}px wide on a 390px screen"
        await shot(page, screenshots, "mobile-04-review-queue")
        if "password" in school:  # the school registered above: its approved application, full screen
            await logout(page)
            await login(page, api, base_url, school["code"], school["password"])
            await page.goto(f"{base_url}/#/school/apply")
            card = page.locator("[data-test=applications-table] .m-card").first
            await expect(card).to_contain_text("审核通过", timeout=15000)
            await card.get_by_role("button", name="查看").click()
            dialog = page.locator(".application-dialog")
            await expect(dialog).to_contain_text("该申报已审核通过")
            box = await dialog.bounding_box()
            assert box and box["width"] <= 391, f"the dialog is {box} on a 390px screen"
            await shot(page, screenshots, "mobile-05-application")
    finally:
        await context.close()


async def test_forgot_password_by_sms_then_change_it_back(page: Page, api: httpx.AsyncClient, base_url: str) -> None:
    """The Beijing demo school resets its password with an SMS code, logs in with the new one, and
    sets the demo password again on the 修改密码 page (so a shared platform keeps its demo accounts)."""
    account, phone, new_password = "4111010853", "13800000002", "Xinmima#2026"
    await page.goto(f"{base_url}/#/forgot")
    await page.locator("input[name=phone]").fill(phone)
    await fill_captcha(page, api)
    seen = await sms_inbox(api, phone)
    await page.get_by_role("button", name="获取短信验证码").click()
    await toast(page, "验证码已发送")
    await page.locator("input[name=sms_code]").fill(await sms_code(api, phone, seen=seen))
    await page.locator("input[name=new_password]").fill(new_password)
    await page.locator("input[name=confirm]").fill(new_password)
    await page.get_by_role("button", name="重置密码").click()
    await toast(page, "密码已重置")
    await login(page, api, base_url, account, new_password)
    await page.goto(f"{base_url}/#/password")
    await page.get_by_label("原密码").fill(new_password)
    await page.get_by_label("新密码", exact=True).fill(DEMO_PASSWORD)
    await page.get_by_label("确认新密码").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="保存").click()
    await toast(page, "密码已修改")
