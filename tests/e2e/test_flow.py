"""The main flow of API.md through the gateway only, against the real processes: a school registers
from the demo register, completes its profile, drafts, uploads evidence, submits; the city and the
province decide; the school hears of it by SMS and in-app; it becomes a pilot institution of the year.
Plus the 北京 plan (no city review), a return for modification with resubmission, and a rejection."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.testing.samples import PDF_BYTES
from tests.e2e.api import Api, School, by_major_body, ok, plain_body, wait_for

NANNING, XINGNING = "4501", "450102"
BEIJING, DONGCHENG = "1101", "110101"


async def new_school(api: Api, province_code: str, q: str, city_code: str, district_code: str) -> School:
    school = await api.register_new_school(province_code, q)
    await api.complete_profile(school, city_code=city_code, district_code=district_code)
    return school


@pytest.fixture(scope="module")
async def gx_school(api: Api) -> AsyncIterator[School]:
    yield await new_school(api, "45", "职业", NANNING, XINGNING)


@pytest.fixture(scope="module")
async def reviewers(api: Api) -> dict[str, str]:
    return {name: await api.login(name) for name in ("nn_city", "gx_province", "bj_province")}


async def pilots(api: Api, token: str, year: int, province_code: str) -> set[str]:
    page = ok(
        await api.client.get(
            "/api/v1/pilot-institutions",
            params={"year": year, "province_code": province_code, "page_size": 100},
            headers={"Authorization": f"Bearer {token}"},
        )
    )
    return {item["institution_code"] for item in page["items"]}


async def test_a_new_school_applies_and_becomes_a_pilot_after_city_and_province_approve(
    api: Api, reviewers: dict[str, str]
) -> None:
    school = await api.register_new_school("45", "职业")
    assert "初始密码" in (await api.wait_sms(school.phone, school.password))[0]
    me = ok(await api.client.get("/api/v1/accounts/me", headers=school.headers))
    assert (me["role"], me["institution_code"], me["province_code"]) == ("institution", school.code, "45")

    profile = await api.complete_profile(school, city_code=NANNING, district_code=XINGNING)
    assert profile["city_code"] == NANNING

    plan = await api.open_plan(school.token)
    assert (plan["province_code"], plan["by_major"], plan["municipal_review"]) == ("45", True, True)
    certificate = await api.certificate("Web前端开发", "junior")
    draft = await api.save_draft(school.token, by_major_body(plan, certificate, trainees=60))
    assert (draft["status"], draft["trainees_total"], draft["editable"]) == ("draft", 60, True)

    evidence = await api.upload(school.token, draft["id"], "师资证明材料.pdf", PDF_BYTES)
    download = await api.client.get(
        f"/api/v1/applications/{draft['id']}/attachments/{evidence['id']}", headers=school.headers
    )
    assert download.status_code == 200 and download.content == PDF_BYTES
    assert download.headers["content-disposition"].startswith("attachment")

    submitted = await api.submit(school.token, draft["id"], key=f"submit-{draft['id']}")
    assert (submitted["status"], submitted["review_stage"]) == ("pending", "municipal")
    assert (await api.get(school.token, draft["id"])).json()["editable"] is False

    city, province = reviewers["nn_city"], reviewers["gx_province"]
    await wait_for(lambda: api.listed(city, draft["id"], status="pending"), what="the city sees the submission")
    passed = await api.review(city, draft["id"], "approve", comment="材料齐全，同意上报。")
    assert (passed["status"], passed["review_stage"]) == ("pending", "provincial")
    await wait_for(lambda: api.listed(province, draft["id"], status="pending"), what="the province sees it")
    approved = await api.review(province, draft["id"], "approve", approved_trainees=50, comment="同意试点。")
    assert (approved["status"], approved["approved_trainees"]) == ("approved", 50)
    assert [(r["stage"], r["decision"], r["reviewer"]) for r in approved["reviews"]] == [
        ("municipal", "approve", "nn_city"),
        ("provincial", "approve", "gx_province"),
    ]

    sms = await api.wait_sms(school.phone, "审核通过")
    assert "Web前端开发" in sms[0] and "50" in sms[0] and sms[0].startswith("【1+X证书】")
    notices = await wait_for(lambda: _titled(api, school.token, "审核通过"), what="the in-app notice of the approval")
    assert "50" in notices[0]["body"]
    year = plan["year"]
    await wait_for(lambda: _contains(pilots(api, province, year, "45"), school.code), what="listed as a pilot")
    # Exactly one approval SMS, even after everything settled.
    assert len(await api.wait_sms(school.phone, "审核通过")) == 1


async def test_beijing_plan_has_no_city_review_and_a_total_instead_of_majors(
    api: Api, reviewers: dict[str, str]
) -> None:
    school = await new_school(api, "11", "职业", BEIJING, DONGCHENG)
    plan = await api.open_plan(school.token)
    assert (plan["province_code"], plan["by_major"], plan["municipal_review"]) == ("11", False, False)
    certificate = (await api.certificates())[0]
    draft = await api.save_draft(school.token, plain_body(plan, certificate, trainees=40))
    assert draft["trainees_total"] == 40
    await api.upload(school.token, draft["id"], "场地证明.pdf", PDF_BYTES)
    submitted = await api.submit(school.token, draft["id"])
    assert (submitted["status"], submitted["review_stage"]) == ("pending", "provincial")

    province = reviewers["bj_province"]
    await wait_for(lambda: api.listed(province, draft["id"], status="pending"), what="the province sees it")
    # The Guangxi city account sees nothing of Beijing.
    foreign = await api.get(reviewers["nn_city"], draft["id"])
    assert foreign.status_code == 404
    approved = await api.review(province, draft["id"], "approve", approved_trainees=30)
    assert (approved["status"], approved["approved_trainees"]) == ("approved", 30)
    assert "批准培训30人" in (await api.wait_sms(school.phone, "审核通过"))[0]
    await wait_for(lambda: _contains(pilots(api, province, plan["year"], "11"), school.code), what="BJ pilot")


async def test_returned_application_is_edited_and_resubmitted(
    api: Api, gx_school: School, reviewers: dict[str, str]
) -> None:
    city, province = reviewers["nn_city"], reviewers["gx_province"]
    plan = await api.open_plan(gx_school.token)
    certificate = await api.certificate("Web前端开发", "intermediate")
    draft = await api.save_draft(gx_school.token, by_major_body(plan, certificate, trainees=80))
    await api.upload(gx_school.token, draft["id"], "证明.pdf", PDF_BYTES)
    await api.submit(gx_school.token, draft["id"])
    await wait_for(lambda: api.listed(city, draft["id"], status="pending"), what="the city sees it")
    await api.review(city, draft["id"], "approve")
    returned = await api.review(province, draft["id"], "return", comment="请补充实训设备清单。")
    assert (returned["status"], returned["returned_reason"]) == ("draft", "请补充实训设备清单。")
    assert (await api.get(gx_school.token, draft["id"])).json()["editable"] is True
    assert "请补充实训设备清单" in (await api.wait_sms(gx_school.phone, "退回"))[0]

    edited = await api.update(gx_school.token, draft, {"venue_html": "<p>实训室3间，设备清单见附件。</p>"})
    assert edited["venue_html"] == "<p>实训室3间，设备清单见附件。</p>"
    resubmitted = await api.submit(gx_school.token, draft["id"])
    assert (resubmitted["status"], resubmitted["review_stage"]) == ("pending", "municipal")
    await wait_for(lambda: api.listed(city, draft["id"], status="pending"), what="the city sees it again")
    await api.review(city, draft["id"], "approve")
    approved = await api.review(province, draft["id"], "approve", approved_trainees=80)
    assert approved["status"] == "approved"
    assert [r["decision"] for r in approved["reviews"]] == ["approve", "return", "approve", "approve"]
    assert len(await api.wait_sms(gx_school.phone, "审核通过")) == 1


async def test_rejected_application_tells_the_school_why(
    api: Api, gx_school: School, reviewers: dict[str, str]
) -> None:
    city = reviewers["nn_city"]
    plan = await api.open_plan(gx_school.token)
    certificate = await api.certificate("Web前端开发", "senior")
    draft = await api.save_draft(gx_school.token, by_major_body(plan, certificate, trainees=20))
    await api.submit(gx_school.token, draft["id"])
    await wait_for(lambda: api.listed(city, draft["id"], status="pending"), what="the city sees it")
    rejected = await api.review(city, draft["id"], "reject", comment="师资不足，不予推荐。")
    assert (rejected["status"], rejected["review_stage"]) == ("rejected", None)
    sms = await api.wait_sms(gx_school.phone, "师资不足")
    assert len(sms) == 1
    await wait_for(lambda: _titled(api, gx_school.token, "未通过"), what="the in-app notice of the rejection")
    # The province never sees it as pending; the school's list counts it under rejected.
    assert not await api.listed(reviewers["gx_province"], draft["id"], status="pending")
    page = ok(await api.client.get("/api/v1/applications", params={"plan_id": plan["id"]}, headers=gx_school.headers))
    assert page["counts"]["rejected"] >= 1


async def _titled(api: Api, token: str, text: str) -> list[dict[str, object]] | None:
    found = [n for n in await api.notifications(token) if text in n["title"] or text in n["body"]]
    return found or None


async def _contains(codes_awaitable: object, code: str) -> bool:
    return code in await codes_awaitable  # type: ignore[misc,operator]
