"""Lists by scope with filters, pages of 10 and counts per status; the .xlsx export; statistics."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from tests.applications.factories import API, World


async def _ids(world: World, headers: dict[str, str], **params: Any) -> set[str]:
    response = await world.client.get(API, params={"page_size": 100, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


async def test_school_list_counts_and_pages_of_ten(world: World) -> None:
    plan, school = await world.plan(municipal_review=False), await world.school()
    certs = [await world.certificate(name=f"证书{i:02d}") for i in range(13)]
    drafts = [await world.draft(school, plan, cert) for cert in certs]
    for draft in drafts[:5]:
        assert (await world.client.post(f"{API}/{draft['id']}/submit", headers=school.headers)).status_code == 200
    await world.review(drafts[0]["id"], world.provincial(), decision="approve", approved_trainees=5)
    await world.review(drafts[1]["id"], world.provincial(), decision="reject", comment="不符合")
    page1 = (await world.client.get(API, headers=school.headers)).json()
    assert (page1["total"], page1["page"], page1["page_size"], len(page1["items"])) == (13, 1, 10, 10)
    assert page1["counts"] == {"all": 13, "draft": 8, "pending": 3, "approved": 1, "rejected": 1}
    page2 = (await world.client.get(API, params={"page": 2}, headers=school.headers)).json()
    assert len(page2["items"]) == 3
    assert not {i["id"] for i in page1["items"]} & {i["id"] for i in page2["items"]}
    pending = (await world.client.get(API, params={"status": "pending"}, headers=school.headers)).json()
    assert pending["total"] == 3 and pending["counts"]["all"] == 13, "tabs keep their counts under a status filter"
    by_cert = await _ids(world, school.headers, certificate_id=certs[3].id)
    assert by_cert == {drafts[3]["id"]}
    by_text = await _ids(world, school.headers, q="证书07")
    assert by_text == {drafts[7]["id"]}
    assert len(await _ids(world, school.headers, year=plan.year, plan_id=plan.id)) == 13
    assert await _ids(world, school.headers, year=1999 + 100) == set()
    bad = await world.client.get(API, params={"status": "lost"}, headers=school.headers)
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    assert (await world.client.get(API, params={"page_size": 101}, headers=school.headers)).status_code == 422


async def test_each_role_sees_its_scope_only(world: World) -> None:
    city_plan = await world.plan(municipal_review=True)
    province_plan = await world.plan(municipal_review=False)
    beijing_plan = await world.plan(province="11", municipal_review=False)
    cert, other_org_cert = await world.certificate(), await world.certificate()
    nanning, liuzhou = await world.school(city="4501"), await world.school(city="4502")
    beijing = await world.school(province="11", city="1101")
    a = await world.submitted(nanning, city_plan, cert)
    b = await world.submitted(liuzhou, city_plan, cert)
    c = await world.submitted(nanning, province_plan, other_org_cert)
    d = await world.submitted(beijing, beijing_plan, cert)
    draft = await world.draft(nanning, province_plan, await world.certificate(org_id=cert.org_id))

    assert await _ids(world, nanning.headers) == {a["id"], c["id"], draft["id"]}
    assert await _ids(world, nanning.sub_headers) == {a["id"], c["id"], draft["id"]}
    assert await _ids(world, liuzhou.headers) == {b["id"]}
    assert await _ids(world, world.municipal(city="4501"), institution_code=nanning.code) == {a["id"]}
    assert b["id"] in await _ids(world, world.municipal(city="4502"), plan_id=city_plan.id)
    province = await _ids(world, world.provincial(), plan_id=city_plan.id) | await _ids(
        world, world.provincial(), plan_id=province_plan.id
    )
    assert province == {a["id"], b["id"], c["id"]}, "a province never sees drafts that were not submitted"
    assert d["id"] not in await _ids(world, world.provincial(), certificate_id=cert.id)
    assert await _ids(world, world.org(cert.org_id), plan_id=city_plan.id) == {a["id"], b["id"]}
    assert await _ids(world, world.org(cert.org_id), institution_code=beijing.code) == {d["id"]}
    assert await _ids(world, world.org(other_org_cert.org_id)) == {c["id"]}
    everything = await _ids(world, world.operator(), plan_id=province_plan.id)
    assert everything == {c["id"], draft["id"]}
    for headers, visible in ((world.provincial("11"), False), (world.municipal(city="4502"), False)):
        response = await world.client.get(f"{API}/{a['id']}", headers=headers)
        assert (response.status_code == 200) is visible
    assert (await world.client.get(f"{API}/{a['id']}", headers=world.org(cert.org_id))).status_code == 200
    assert (await world.client.get(f"{API}/{a['id']}", headers=world.org(other_org_cert.org_id))).status_code == 404
    assert (await world.client.get(API)).status_code == 401


async def test_export_xlsx_for_departments(world: World) -> None:
    await world.majors()
    plan, cert = await world.plan(), await world.certificate()
    nanning, liuzhou = await world.school(city="4501"), await world.school(city="4502")
    a = await world.approved(nanning, plan, cert)
    await world.submitted(liuzhou, plan, cert)
    response = await world.client.get(f"{API}/export", params={"plan_id": plan.id}, headers=world.provincial())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''" in response.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:2] == ("院校代码", "院校名称")
    assert {r[0] for r in rows[1:]} == {nanning.code, liuzhou.code}
    approved_row = next(r for r in rows[1:] if r[0] == nanning.code)
    assert approved_row[4] == "初级" and approved_row[6] == "工业机器人技术"
    assert approved_row[7] == a["trainees_total"] and approved_row[8] == 10 and approved_row[9] == "审核通过"
    submitted_at = datetime.fromisoformat(a["submitted_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert approved_row[12] == f"{submitted_at:%Y-%m-%d %H:%M:%S}", "times are exported in Beijing time"
    city = await world.client.get(f"{API}/export", params={"plan_id": plan.id}, headers=world.municipal(city="4502"))
    city_rows = list(load_workbook(io.BytesIO(city.content)).active.iter_rows(values_only=True))
    assert [r[0] for r in city_rows[1:]] == [liuzhou.code]
    foreign = await world.client.get(f"{API}/export", params={"plan_id": plan.id}, headers=world.provincial("11"))
    assert foreign.status_code == 404
    school = await world.client.get(f"{API}/export", params={"plan_id": plan.id}, headers=nanning.headers)
    assert school.status_code == 403
    operator = await world.client.get(f"{API}/export", params={"plan_id": plan.id}, headers=world.operator())
    assert operator.status_code == 200


async def test_statistics_per_plan(world: World) -> None:
    plan = await world.plan(municipal_review=False, by_major=False)
    junior, senior = await world.certificate(level="junior"), await world.certificate(level="senior")
    schools = [await world.school() for _ in range(3)]
    approved = await world.approved(schools[0], plan, junior)
    pending = await world.submitted(schools[1], plan, junior)
    rejected = await world.submitted(schools[2], plan, senior)
    await world.review(rejected["id"], world.provincial(), decision="reject", comment="否")
    await world.draft(schools[2], plan, junior)
    response = await world.client.get(f"{API}/statistics", params={"plan_id": plan.id}, headers=world.provincial())
    assert response.status_code == 200
    stats = response.json()
    assert stats["counts"] == {"all": 3, "draft": 0, "pending": 1, "approved": 1, "rejected": 1}
    by_level = {c["level"]: c for c in stats["certificates"]}
    assert by_level["junior"]["applications"] == 2
    assert by_level["junior"]["trainees_requested"] == approved["trainees_total"] + pending["trainees_total"]
    assert by_level["junior"]["trainees_approved"] == 10
    assert by_level["senior"]["counts"]["rejected"] == 1
    assert stats["trainees_approved"] == 10
    operator = (
        await world.client.get(f"{API}/statistics", params={"plan_id": plan.id}, headers=world.operator())
    ).json()
    assert operator["counts"]["draft"] == 1, "the operator sees drafts too"
    assert (
        await world.client.get(f"{API}/statistics", params={"plan_id": plan.id}, headers=world.provincial("11"))
    ).status_code == 404
    assert (
        await world.client.get(f"{API}/statistics", params={"plan_id": "nope"}, headers=world.operator())
    ).status_code == 404


async def test_export_never_turns_user_text_into_formulas(world: World) -> None:
    plan, cert, school = await world.plan(municipal_review=False), await world.certificate(), await world.school()
    app = await world.submitted(school, plan, cert)
    await world.review(app["id"], world.provincial(), decision="reject", comment='=HYPERLINK("http://evil","x")')
    response = await world.client.get(f"{API}/export", params={"plan_id": plan.id}, headers=world.provincial())
    sheet = load_workbook(io.BytesIO(response.content)).active
    [row] = [r for r in sheet.iter_rows(min_row=2) if r[0].value == school.code]
    assert row[11].value == '=HYPERLINK("http://evil","x")' and row[11].data_type == "s"
