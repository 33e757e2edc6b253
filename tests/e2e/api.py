"""What a user of the platform does, through the gateway only: small async steps the end-to-end tests and
bench/rush.py read like a script. Everything goes over HTTP to the gateway; the dev-only endpoints
(captcha answers, the SMS inbox) stand in for the user's eyes and phone."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from shared.testing.samples import school_uscc

T = TypeVar("T")

DEMO_PASSWORD = "Demo#2026"


class Timeout(AssertionError):
    pass


async def wait_for(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0, every: float = 0.2, what: str = "condition"
) -> T:
    """Polls `probe` until it returns something other than None/False; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise Timeout(f"{what}: not reached within {timeout:.0f}s")
        await asyncio.sleep(every)


def random_phone(rng: random.Random | None = None) -> str:
    rng = rng or random.SystemRandom()
    return "139" + "".join(rng.choices("0123456789", k=8))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ok(response: httpx.Response, *expected: int) -> Any:
    """The JSON body of a response with one of the expected statuses (200 by default), else a readable failure."""
    wanted = expected or (200,)
    if response.status_code not in wanted:
        raise AssertionError(
            f"{response.request.method} {response.request.url.path} → {response.status_code}, "
            f"expected {wanted}: {response.text[:500]}"
        )
    return response.json() if response.content else None


@dataclass
class School:
    code: str
    name: str
    province_code: str
    phone: str
    account: str = ""
    password: str = ""
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


class AlreadyRegistered(Exception):
    """The institution has its primary account already (409 institution_already_registered)."""


class Api:
    """The gateway seen by one client (one connection pool; tokens passed per call)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    # ---- identity ---------------------------------------------------------------------------------

    async def captcha(self) -> tuple[str, str]:
        """A fresh captcha and its answer (read through the dev-only endpoint)."""
        captcha = ok(await self.client.get("/api/v1/auth/captcha"))
        answer = ok(await self.client.get(f"/api/v1/dev/captcha/{captcha['captcha_id']}"))["answer"]
        return captcha["captcha_id"], answer

    async def login(self, account: str, password: str = DEMO_PASSWORD) -> str:
        captcha_id, answer = await self.captcha()
        body = {"account": account, "password": password, "captcha_id": captcha_id, "captcha_answer": answer}
        return str(ok(await self.client.post("/api/v1/auth/login", json=body))["access_token"])

    async def sms_inbox(self, phone: str) -> list[dict[str, Any]]:
        messages = ok(await self.client.get("/api/v1/dev/sms", params={"phone": phone}))
        return list(messages.get("items", messages) if isinstance(messages, dict) else messages)

    async def wait_sms(self, phone: str, contains: str, *, count: int = 1, timeout: float = 30.0) -> list[str]:
        """Waits until at least `count` SMS containing `contains` reached the phone; returns their bodies."""

        async def probe() -> list[str] | None:
            bodies = [m["body"] for m in await self.sms_inbox(phone) if contains in m["body"]]
            return bodies if len(bodies) >= count else None

        return await wait_for(probe, timeout=timeout, what=f"SMS '{contains}' to {phone}")

    async def pick_school(self, province_code: str, q: str, *, exclude: set[str] = frozenset()) -> School:  # type: ignore[assignment]
        """A school of the public register (random, so reruns on one platform differ)."""
        page = ok(
            await self.client.get(
                "/api/v1/institutions", params={"province_code": province_code, "q": q, "page_size": 100}
            )
        )
        candidates = [i for i in page["items"] if i["code"] not in exclude]
        assert candidates, f"the demo register has no {q!r} institution in {province_code}"
        chosen = random.choice(candidates)
        return School(chosen["code"], chosen["name"], chosen["province_code"], random_phone())

    async def register_new_school(self, province_code: str, q: str, *, attempts: int = 8) -> School:
        """Register a school of the register that has no account yet: one that has (a demo account, or
        one an earlier test took on this platform) is answered 409 and another is drawn."""
        taken: set[str] = set()
        for _ in range(attempts):
            school = await self.pick_school(province_code, q, exclude=taken)
            try:
                return await self.register(school)
            except AlreadyRegistered:
                taken.add(school.code)
        raise AssertionError(f"{attempts} schools matching {q!r} in {province_code} were all registered already")

    async def register(self, school: School) -> School:
        """Registration as the manual shows it: captcha, SMS code to the phone, then the account."""
        captcha_id, answer = await self.captcha()
        body = {"phone": school.phone, "purpose": "register", "captcha_id": captcha_id, "captcha_answer": answer}
        ok(await self.client.post("/api/v1/auth/sms-codes", json=body), 202)
        text = (await self.wait_sms(school.phone, "验证码"))[0]
        match = re.search(r"验证码\D{0,3}(\d{6})(?!\d)", text)
        assert match, f"no code in {text!r}"
        response = await self.client.post(
            "/api/v1/auth/register",
            json={
                "province_code": school.province_code,
                "institution_code": school.code,
                "phone": school.phone,
                "sms_code": match.group(1),
            },
        )
        if response.status_code == 409 and response.json().get("code") == "institution_already_registered":
            raise AlreadyRegistered(school.code)
        registered = ok(response, 201)
        school.account, school.password = registered["account"], registered["password"]
        school.token = await self.login(school.account, school.password)
        return school

    # ---- registry -----------------------------------------------------------------------------------

    async def complete_profile(self, school: School, *, city_code: str, district_code: str) -> dict[str, Any]:
        body = {
            "type": "higher_vocational",
            "uscc": school_uscc(school.code),
            "website": "https://www.example.edu.cn",
            "province_code": school.province_code,
            "city_code": city_code,
            "district_code": district_code,
            "address": "学院路1号",
            "contact_name": "张老师",
            "contact_phone": school.phone,
            "contact_email": "zhang@example.edu.cn",
        }
        current = await self.client.get(f"/api/v1/institutions/{school.code}", headers=school.headers)
        profile = ok(
            await self.client.put(
                f"/api/v1/institutions/{school.code}/profile",
                json=body,
                headers={**school.headers, "If-Match": current.headers["etag"]},
            )
        )
        assert profile["profile_completed"] is True, profile
        return dict(profile)

    async def certificate(self, name: str, level: str) -> dict[str, Any]:
        page = ok(await self.client.get("/api/v1/certificates", params={"q": name, "page_size": 100}))
        found = [c for c in page["items"] if c["name"] == name and c["level"] == level]
        assert found, f"no certificate {name} ({level}) in the demo data"
        return dict(found[0])

    async def certificates(self) -> list[dict[str, Any]]:
        return list(ok(await self.client.get("/api/v1/certificates", params={"page_size": 100}))["items"])

    # ---- plans ----------------------------------------------------------------------------------------

    async def open_plan(self, token: str) -> dict[str, Any]:
        """The one open plan a school of a demo province sees."""
        page = ok(await self.client.get("/api/v1/plans", params={"status": "open"}, headers=bearer(token)))
        assert page["items"], "no open plan for this school"
        return dict(page["items"][0])

    # ---- applications ---------------------------------------------------------------------------------

    async def save_draft(self, token: str, body: dict[str, Any], *, timeout: float = 30.0) -> dict[str, Any]:
        """POST a draft; a just-completed profile reaches applications by event, so wait for it."""

        async def attempt() -> dict[str, Any] | None:
            response = await self.client.post("/api/v1/applications", json=body, headers=bearer(token))
            if response.status_code == 422 and response.json().get("code") == "profile_incomplete":
                return None
            return dict(ok(response, 201))

        return await wait_for(attempt, timeout=timeout, every=0.3, what="draft accepted (profile copy arrived)")

    async def upload(self, token: str, application_id: str, filename: str, content: bytes) -> dict[str, Any]:
        files = {"file": (filename, content, "application/pdf")}
        return dict(
            ok(
                await self.client.post(
                    f"/api/v1/applications/{application_id}/attachments", files=files, headers=bearer(token)
                ),
                201,
            )
        )

    async def get(self, token: str, application_id: str) -> httpx.Response:
        return await self.client.get(f"/api/v1/applications/{application_id}", headers=bearer(token))

    async def submit(self, token: str, application_id: str, *, key: str | None = None) -> dict[str, Any]:
        headers = bearer(token) | ({"Idempotency-Key": key} if key else {})
        return dict(ok(await self.client.post(f"/api/v1/applications/{application_id}/submit", headers=headers)))

    async def review(self, token: str, application_id: str, decision: str, **fields: Any) -> dict[str, Any]:
        body = {"decision": decision, **fields}
        return dict(
            ok(
                await self.client.post(
                    f"/api/v1/applications/{application_id}/reviews", json=body, headers=bearer(token)
                )
            )
        )

    async def update(self, token: str, application: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        """PUT with If-Match from the application's current version."""
        current = await self.get(token, application["id"])
        etag = current.headers["ETag"]
        data = ok(current)
        body = {
            "plan_id": data["plan_id"],
            "certificate_id": data["certificate_id"],
            "majors": [{k: m[k] for k in ("major_code", "students", "teachers", "trainees")} for m in data["majors"]],
            "trainees_total": data["trainees_total"],
            "faculty_html": data["faculty_html"],
            "venue_html": data["venue_html"],
        } | changes
        headers = bearer(token) | {"If-Match": etag}
        return dict(ok(await self.client.put(f"/api/v1/applications/{application['id']}", json=body, headers=headers)))

    async def listed(self, token: str, application_id: str, **filters: Any) -> bool:
        """Whether the application appears in this account's list (first page of 100 with the filters)."""
        page = ok(
            await self.client.get("/api/v1/applications", params={"page_size": 100, **filters}, headers=bearer(token))
        )
        return any(item["id"] == application_id for item in page["items"])

    async def notifications(self, token: str) -> list[dict[str, Any]]:
        return list(ok(await self.client.get("/api/v1/notifications", headers=bearer(token)))["items"])


def by_major_body(plan: dict[str, Any], certificate: dict[str, Any], *, trainees: int = 60) -> dict[str, Any]:
    """A by-major draft: one allowed major with its numbers, the two rich-text fields."""
    return {
        "plan_id": plan["id"],
        "certificate_id": certificate["id"],
        "majors": [{"major_code": certificate["major_codes"][0], "students": 120, "teachers": 8, "trainees": trainees}],
        "faculty_html": "<p>专任教师<b>8</b>名，其中双师型教师5名。</p>",
        "venue_html": "<p>实训室3间，工位120个。</p>",
    }


def plain_body(plan: dict[str, Any], certificate: dict[str, Any], *, trainees: int = 40) -> dict[str, Any]:
    """A draft for a plan that is not by major: a total, no majors."""
    return {
        "plan_id": plan["id"],
        "certificate_id": certificate["id"],
        "majors": [],
        "trainees_total": trainees,
        "faculty_html": "<p>专任教师6名。</p>",
        "venue_html": "<p>实训基地一处。</p>",
    }
