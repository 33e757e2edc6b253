"""What a person does in the browser, in small steps the tests read like a script."""

from __future__ import annotations

import asyncio
import random
import re
import time
from pathlib import Path

import httpx
from playwright.async_api import Locator, Page, expect

from shared.testing.samples import school_uscc


async def choose(page: Page, select: Locator, option: str, *, type_text: str | None = None) -> None:
    """Open an Element Plus select, optionally type to search, and click the option."""
    await select.click()
    if type_text:
        await page.keyboard.type(type_text, delay=20)
    item = page.locator(".el-select-dropdown__item:visible", has_text=option).first
    await item.wait_for(timeout=15000)
    await item.click()


async def toast(page: Page, text: str, timeout: float = 20000) -> None:
    await expect(page.locator(".el-message", has_text=text).first).to_be_visible(timeout=timeout)


async def captcha_answer(page: Page, api: httpx.AsyncClient) -> str:
    """Reads the current captcha's id from the page and its answer from the dev endpoint."""
    img = page.locator("img.captcha-img")
    await expect(img).to_have_attribute("data-id", re.compile(r".+"), timeout=15000)
    captcha_id = await img.get_attribute("data-id")
    response = await api.get(f"/api/v1/dev/captcha/{captcha_id}")
    response.raise_for_status()
    return response.json()["answer"]


async def fill_captcha(page: Page, api: httpx.AsyncClient) -> None:
    await page.locator("input[name=captcha]").fill(await captcha_answer(page, api))


async def sms_inbox(api: httpx.AsyncClient, phone: str) -> list[dict]:
    """The dev SMS inbox of one phone, newest first."""
    response = await api.get("/api/v1/dev/sms", params={"phone": phone})
    if response.status_code != 200:
        return []
    messages = response.json()
    return messages.get("items", messages) if isinstance(messages, dict) else messages


def _key(message: dict) -> tuple[str, str]:
    return message.get("created_at", ""), message["body"]


async def sms_code(api: httpx.AsyncClient, phone: str, *, seen: list[dict] | None = None, timeout: float = 30.0) -> str:
    """The 6-digit code of the first SMS to reach the phone that was not in `seen` (the inbox before
    the request); the message goes through the bus to notify, so it may take a moment."""
    old = {_key(m) for m in seen or []}
    deadline = time.monotonic() + timeout
    while True:
        for message in await sms_inbox(api, phone):
            match = re.search(r"验证码\D{0,3}(\d{6})(?!\d)", message["body"])
            if match and _key(message) not in old:
                return match.group(1)
        if time.monotonic() > deadline:
            raise AssertionError(f"no new SMS code reached {phone} within {timeout:.0f}s")
        await asyncio.sleep(0.3)


async def login(page: Page, api: httpx.AsyncClient, base_url: str, account: str, password: str) -> None:
    await page.goto(f"{base_url}/#/login")
    await page.locator("input[name=account]").fill(account)
    await page.locator("input[name=password]").fill(password)
    await fill_captcha(page, api)
    await page.get_by_role("button", name="登录").click()
    await toast(page, "登录成功")
    await page.wait_for_url(lambda url: "#/login" not in url)  # the landing page was chosen


async def logout(page: Page) -> None:
    await page.locator(".user").click()
    await page.get_by_text("退出登录").click()
    await page.wait_for_url(re.compile(r"#/login"))


async def shot(page: Page, directory: Path, name: str) -> None:
    await page.wait_for_load_state("networkidle")
    await expect(page.locator(".el-loading-mask:visible")).to_have_count(0, timeout=15000)
    await page.screenshot(path=str(directory / f"{name}.png"), full_page=True, animations="disabled")


async def pick_unregistered_school(api: httpx.AsyncClient, province_code: str, q: str, *, exclude: set[str]) -> dict:
    """A school of the public register in that province (random, so reruns on one platform differ)."""
    response = await api.get("/api/v1/institutions", params={"province_code": province_code, "q": q, "page_size": 100})
    response.raise_for_status()
    candidates = [i for i in response.json()["items"] if i["code"] not in exclude]
    assert candidates, f"the demo register has no {q} institution in {province_code}"
    chosen = random.choice(candidates)
    return {**chosen, "phone": "139" + "".join(random.choices("0123456789", k=8))}


async def register(page: Page, api: httpx.AsyncClient, base_url: str, school: dict, province: str) -> tuple[str, str]:
    """Registration as the seeds show it; returns the account and the password shown once."""
    await page.goto(f"{base_url}/#/register")
    await choose(page, page.locator("[data-test=province]"), province, type_text=province[:2])
    await choose(page, page.locator("[data-test=institution]"), school["name"], type_text=school["name"][:6])
    await expect(page.locator("input[name=institution_code]")).to_have_value(school["code"])
    await page.locator("input[name=phone]").fill(school["phone"])
    await fill_captcha(page, api)
    seen = await sms_inbox(api, school["phone"])
    await page.get_by_role("button", name="获取短信验证码").click()
    await toast(page, "验证码已发送")
    await expect(page.locator(".sms-btn")).to_contain_text("秒后重新获取")
    await page.locator("input[name=sms_code]").fill(await sms_code(api, school["phone"], seen=seen))
    await page.get_by_role("button", name="立即注册").click()
    await expect(page.get_by_text("恭喜您，注册成功！")).to_be_visible(timeout=20000)
    account = (await page.locator("[data-test=new-account]").inner_text()).strip()
    password = (await page.locator("[data-test=new-password]").inner_text()).strip()
    return account, password


async def complete_profile(page: Page, school: dict, *, city: str, district: str) -> None:
    """Step 1 of the wizard: every required field, valid, then saved."""
    await expect(page.get_by_text("基础信息尚未完善")).to_be_visible()
    await choose(page, page.locator("[data-test=type]"), "高职院校")
    await page.locator("input[name=uscc]").fill(school_uscc(school["code"]))
    await page.locator("input[name=website]").fill("https://www.example.edu.cn")
    await choose(page, page.locator("[data-test=city]"), city)
    await choose(page, page.locator("[data-test=district]"), district)
    await page.locator("input[name=address]").fill("学院路1号")
    await page.locator("input[name=contact_name]").fill("张老师")
    await page.locator("input[name=contact_phone]").fill(school["phone"])
    await page.locator("input[name=contact_email]").fill("zhang@example.edu.cn")


async def save_profile(page: Page) -> None:
    await page.get_by_role("button", name="保存，进入下一步").click()
    await toast(page, "基础信息已保存")
    await page.wait_for_url(re.compile(r"#/school/apply"))


async def type_rich(page: Page, editor: Locator, text: str) -> None:
    await editor.locator(".rt-body").click()
    await page.keyboard.type(text)
