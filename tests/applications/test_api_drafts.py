"""Drafts: who may save them, the plan and profile rules, majors and totals, rich text, ETags, delete."""

from __future__ import annotations

import asyncio

from shared.testing.bus import bus_probe
from tests.applications.factories import API, World, wait_events


async def test_by_major_draft_sums_trainees_and_ignores_client_total(world: World) -> None:
    await world.majors()
    plan, cert, school = await world.plan(), await world.certificate(), await world.school()
    body = world.body(
        plan,
        cert,
        majors=[
            {"major_code": "460104", "students": 100, "teachers": 6, "trainees": 40},
            {"major_code": "510201", "students": 90, "teachers": 5, "trainees": 25},
        ],
        trainees_total=9999,
    )
    response = await world.client.post(API, json=body, headers=school.sub_headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "draft" and created["trainees_total"] == 65
    assert [m["major_name"] for m in created["majors"]] == ["工业机器人技术", "计算机应用技术"]
    assert response.headers["etag"] == '"1"'
    assert created["institution_code"] == school.code and created["year"] == plan.year


async def test_not_by_major_requires_total_and_keeps_codes_only(world: World) -> None:
    plan = await world.plan(by_major=False, municipal_review=False)
    cert, school = await world.certificate(), await world.school()
    missing = await world.client.post(API, json=world.body(plan, cert, trainees_total=None), headers=school.headers)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "trainees_total"
    majors = [{"major_code": "510201", "students": 5, "teachers": 1, "trainees": 3}]
    ok = await world.client.post(
        API, json=world.body(plan, cert, trainees_total=80, majors=majors), headers=school.headers
    )
    assert ok.status_code == 201
    assert ok.json()["trainees_total"] == 80
    assert ok.json()["majors"][0]["students"] is None and ok.json()["majors"][0]["major_code"] == "510201"
    refused = await world.client.post(
        API, json=world.body(plan, await world.certificate(), majors=[{"major_code": "999999"}]), headers=school.headers
    )
    assert refused.status_code == 422 and refused.json()["code"] == "major_not_allowed"


async def test_by_major_rules(world: World) -> None:
    plan, cert, school = await world.plan(), await world.certificate(majors=("460104",)), await world.school()
    none = await world.client.post(API, json=world.body(plan, cert, majors=[]), headers=school.headers)
    assert none.status_code == 422 and none.json()["errors"][0]["field"] == "majors"
    line = {"major_code": "460104", "students": 10, "teachers": 2, "trainees": 5}
    twice = await world.client.post(API, json=world.body(plan, cert, majors=[line, line]), headers=school.headers)
    assert twice.status_code == 422 and twice.json()["code"] == "validation_error"
    other = {"major_code": "510201", "students": 10, "teachers": 2, "trainees": 5}
    foreign = await world.client.post(API, json=world.body(plan, cert, majors=[line, other]), headers=school.headers)
    assert foreign.status_code == 422 and foreign.json()["code"] == "major_not_allowed"
    assert foreign.json()["errors"][0]["field"] == "majors.1.major_code"
    no_teachers = {"major_code": "460104", "students": 10, "trainees": 5}
    incomplete = await world.client.post(API, json=world.body(plan, cert, majors=[no_teachers]), headers=school.headers)
    assert incomplete.status_code == 422 and incomplete.json()["errors"][0]["field"] == "majors.0.teachers"
    zero = {"major_code": "460104", "students": 10, "teachers": 0, "trainees": 5}
    negative = await world.client.post(API, json=world.body(plan, cert, majors=[zero]), headers=school.headers)
    assert negative.status_code == 422


async def test_profile_plan_and_scope_preconditions(world: World) -> None:
    plan, cert = await world.plan(), await world.certificate()
    incomplete = await world.school(profile_completed=False)
    response = await world.client.post(API, json=world.body(plan, cert), headers=incomplete.headers)
    assert response.status_code == 422 and response.json()["code"] == "profile_incomplete"
    beijing = await world.school(province="11", city="1101")
    mismatch = await world.client.post(API, json=world.body(plan, cert), headers=beijing.headers)
    assert mismatch.status_code == 422 and mismatch.json()["code"] == "plan_province_mismatch"
    school = await world.school()
    closed = await world.plan(closes_at=plan.opens_at, opens_at=plan.opens_at.replace(year=2025))
    not_open = await world.client.post(API, json=world.body(closed, cert), headers=school.headers)
    assert not_open.status_code == 409 and not_open.json()["code"] == "plan_not_open"
    draft_plan = await world.plan(state="draft")
    unpublished = await world.client.post(API, json=world.body(draft_plan, cert), headers=school.headers)
    assert unpublished.status_code == 422
    reviewer = await world.client.post(API, json=world.body(plan, cert), headers=world.provincial())
    assert reviewer.status_code == 403
    anonymous = await world.client.post(API, json=world.body(plan, cert))
    assert anonymous.status_code == 401


async def test_one_live_application_per_institution_year_and_certificate(world: World) -> None:
    plan, cert, school = await world.plan(municipal_review=False), await world.certificate(), await world.school()
    first = await world.draft(school, plan, cert)
    again = await world.client.post(API, json=world.body(plan, cert), headers=school.headers)
    assert again.status_code == 409 and again.json()["code"] == "duplicate_application"
    senior = await world.certificate(level="senior")
    assert (await world.client.post(API, json=world.body(plan, senior), headers=school.headers)).status_code == 201
    await world.client.post(f"{API}/{first['id']}/submit", headers=school.headers)
    rejected = await world.review(first["id"], world.provincial(), decision="reject", comment="材料不全")
    assert rejected.json()["status"] == "rejected"
    fresh = await world.client.post(API, json=world.body(plan, cert), headers=school.headers)
    assert fresh.status_code == 201, "a rejected application does not block a new one"
    resubmit = await world.client.post(f"{API}/{first['id']}/submit", headers=school.headers)
    assert resubmit.status_code == 409 and resubmit.json()["code"] == "duplicate_application"


async def test_concurrent_creates_give_one_application(world: World) -> None:
    plan, cert, school = await world.plan(), await world.certificate(), await world.school()
    responses = await asyncio.gather(
        *(world.client.post(API, json=world.body(plan, cert), headers=school.headers) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]


async def test_rich_text_is_sanitised_and_limited(world: World) -> None:
    plan, cert, school = await world.plan(), await world.certificate(), await world.school()
    dirty = (
        '<p onclick="x()">师资<script>alert(1)</script><img src=x onerror=alert(1)>'
        '<a href="javascript:alert(1)">链接</a></p>'
    )
    created = await world.draft(school, plan, cert, faculty_html=dirty)
    assert "script" not in created["faculty_html"] and "onclick" not in created["faculty_html"]
    assert "<img" not in created["faculty_html"] and "javascript" not in created["faculty_html"]
    assert created["faculty_html"].startswith("<p>师资")
    other = await world.certificate()
    exactly = await world.client.post(
        API, json=world.body(plan, other, venue_html="<p>" + "场" * 1000 + "</p>"), headers=school.headers
    )
    assert exactly.status_code == 201
    third = await world.certificate()
    too_long = await world.client.post(
        API, json=world.body(plan, third, venue_html="<p>" + "场" * 1001 + "</p>"), headers=school.headers
    )
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "venue_html"
    empty = await world.client.post(
        API, json=world.body(plan, third, faculty_html="<p> <script>x</script></p>"), headers=school.headers
    )
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "faculty_html"


async def test_put_needs_if_match_and_a_current_version(world: World) -> None:
    plan, cert, school = await world.plan(), await world.certificate(), await world.school()
    draft = await world.draft(school, plan, cert)
    url = f"{API}/{draft['id']}"
    body = world.body(plan, cert, venue_html="<p>新场地</p>")
    missing = await world.client.put(url, json=body, headers=school.headers)
    assert missing.status_code == 428 and missing.json()["code"] == "precondition_required"
    ok = await world.client.put(url, json=body, headers={**school.sub_headers, "If-Match": '"1"'})
    assert ok.status_code == 200 and ok.json()["version"] == 2 and ok.headers["etag"] == '"2"'
    assert ok.json()["venue_html"] == "<p>新场地</p>"
    stale = await world.client.put(url, json=body, headers={**school.headers, "If-Match": '"1"'})
    assert stale.status_code == 412 and stale.json()["code"] == "version_conflict"
    fetched = await world.client.get(url, headers=school.headers)
    assert fetched.headers["etag"] == '"2"'
    foreign = await world.school()
    assert (await world.client.put(url, json=body, headers={**foreign.headers, "If-Match": '"2"'})).status_code == 404


async def test_two_concurrent_puts_with_one_etag_exactly_one_wins(world: World) -> None:
    plan, cert, school = await world.plan(), await world.certificate(), await world.school()
    draft = await world.draft(school, plan, cert)
    url = f"{API}/{draft['id']}"
    version = 1
    for round_number in range(100):
        headers = {**school.headers, "If-Match": f'"{version}"'}
        first, second = await asyncio.gather(
            world.client.put(url, json=world.body(plan, cert, venue_html=f"<p>A{round_number}</p>"), headers=headers),
            world.client.put(url, json=world.body(plan, cert, venue_html=f"<p>B{round_number}</p>"), headers=headers),
        )
        assert sorted([first.status_code, second.status_code]) == [200, 412], (first.text, second.text)
        winner = first if first.status_code == 200 else second
        version += 1
        assert winner.json()["version"] == version
    final = (await world.client.get(url, headers=school.headers)).json()
    assert final["version"] == 101


async def test_delete_only_drafts_and_events(world: World) -> None:
    plan, cert, school = await world.plan(municipal_review=False), await world.certificate(), await world.school()
    async with bus_probe(world.amqp_url, world.namespace, "applications.application.*.v1") as probe:
        draft = await world.draft(school, plan, cert)
        url = f"{API}/{draft['id']}"
        await world.client.put(url, json=world.body(plan, cert), headers={**school.headers, "If-Match": '"1"'})
        assert (await world.client.delete(url, headers=school.sub_headers)).status_code == 403
        assert (await world.client.delete(url, headers=school.headers)).status_code == 204
        assert (await world.client.get(url, headers=school.headers)).status_code == 404
        versions = []
        for kind in ("created", "updated", "deleted"):
            [event] = await wait_events(probe, f"applications.application.{kind}", draft["id"])
            assert event["producer"] == "applications" and event["data"]["plan_closes_at"] is not None
            versions.append(event["subject_version"])
        assert versions == [1, 2, 3]
    submitted = await world.submitted(school, plan, cert)
    refused = await world.client.delete(f"{API}/{submitted['id']}", headers=school.headers)
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_transition"
    returned = await world.review(submitted["id"], world.provincial(), decision="return", comment="请补充师资")
    assert returned.json()["status"] == "draft"
    kept = await world.client.delete(f"{API}/{submitted['id']}", headers=school.headers)
    assert kept.status_code == 409 and "退回" in kept.json()["detail"], "a returned draft keeps its review history"
    assert (await world.client.get(f"{API}/{submitted['id']}", headers=school.headers)).status_code == 200


async def test_a_rejected_application_cannot_be_moved_onto_a_live_one(world: World) -> None:
    plan = await world.plan(municipal_review=False)
    school, first = await world.school(), await world.certificate()
    second = await world.certificate(name="网络安全评估")
    rejected = await world.submitted(school, plan, first)
    await world.review(rejected["id"], world.provincial(), decision="reject", comment="材料不全")
    live = await world.draft(school, plan, second)
    current = (await world.client.get(f"{API}/{rejected['id']}", headers=school.headers)).json()
    moved = await world.client.put(
        f"{API}/{rejected['id']}",
        json=world.body(plan, second),
        headers={**school.headers, "If-Match": f'"{current["version"]}"'},
    )
    assert moved.status_code == 409 and moved.json()["code"] == "duplicate_application", moved.text
    assert (await world.client.get(f"{API}/{live['id']}", headers=school.headers)).json()["certificate_id"] == second.id


async def test_pre_submission_checklist(world: World) -> None:
    plan, cert, school = await world.plan(), await world.certificate(), await world.school()
    majors = [
        {"major_code": "460104", "students": 30, "teachers": 3, "trainees": 50},
        {"major_code": "510201", "students": 30, "teachers": 3, "trainees": 10},
    ]
    draft = await world.draft(school, plan, cert, majors=majors)
    checks = {c["item"]: c for c in draft["checks"]}
    assert checks["status"]["ok"] and checks["plan_open"]["ok"] and checks["profile"]["ok"]
    assert not checks["trainees"]["ok"] and "460104" in checks["trainees"]["message"]
    assert not checks["trainees"]["blocking"]
    assert not checks["evidence"]["ok"]
    world.clock.at(plan.closes_at)
    closed = (await world.client.get(f"{API}/{draft['id']}", headers=school.headers)).json()
    assert {c["item"]: c["ok"] for c in closed["checks"]}["plan_open"] is False


async def test_nul_characters_are_refused_not_a_server_error(world: World) -> None:
    plan, cert, school = await world.plan(), await world.certificate(), await world.school()
    for params in ({"q": "a\x00b"}, {"plan_id": "a\x00"}, {"certificate_id": "\x00"}, {"institution_code": "1\x00"}):
        response = await world.client.get(API, params=params, headers=school.headers)
        assert response.status_code == 422, (params, response.text)
    for field in ("plan_id", "certificate_id", "faculty_html", "venue_html"):
        body = world.body(plan, cert, **{field: "x\x00y"})
        response = await world.client.post(API, json=body, headers=school.headers)
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == field
    exported = await world.client.get(f"{API}/export", params={"plan_id": "\x00"}, headers=world.provincial())
    assert exported.status_code == 422
