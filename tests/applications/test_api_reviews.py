"""Reviews: every transition allowed and refused, history, batch decisions, events and pilot grants."""

from __future__ import annotations

from datetime import timedelta

from shared.testing.bus import bus_probe
from tests.applications.factories import API, World, wait_events


async def test_municipal_first_then_province_approves(world: World) -> None:
    plan, cert, school = await world.plan(), await world.certificate(), await world.school()
    app = await world.submitted(school, plan, cert)
    early = await world.review(app["id"], world.provincial(), decision="approve", approved_trainees=10)
    assert early.status_code == 409 and early.json()["code"] == "invalid_transition"
    other_city = await world.review(app["id"], world.municipal(city="4502"), decision="approve")
    assert other_city.status_code == 404
    city_return = await world.review(app["id"], world.municipal(), decision="return", comment="x")
    assert city_return.status_code == 409
    passed = await world.review(app["id"], world.municipal(), decision="approve", comment="同意")
    assert passed.status_code == 200
    assert (passed.json()["status"], passed.json()["review_stage"]) == ("pending", "provincial")
    twice = await world.review(app["id"], world.municipal(), decision="approve")
    assert twice.status_code == 409
    too_many = await world.review(app["id"], world.provincial(), decision="approve", approved_trainees=61)
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "approved_trainees"
    missing = await world.review(app["id"], world.provincial(), decision="approve")
    assert missing.status_code == 422
    approved = await world.review(app["id"], world.provincial(), decision="approve", approved_trainees=50)
    body = approved.json()
    assert (body["status"], body["approved_trainees"], body["review_stage"]) == ("approved", 50, None)
    assert [(r["stage"], r["decision"]) for r in body["reviews"]] == [
        ("municipal", "approve"),
        ("provincial", "approve"),
    ]
    assert body["reviews"][0]["comment"] == "同意" and body["reviews"][1]["approved_trainees"] == 50
    final = await world.review(app["id"], world.provincial(), decision="reject", comment="改主意")
    assert final.status_code == 409
    edit = await world.client.put(
        f"{API}/{app['id']}",
        json=world.body(plan, cert),
        headers={**school.headers, "If-Match": f'"{body["version"]}"'},
    )
    assert edit.status_code == 409 and edit.json()["code"] == "not_editable"
    resubmit = await world.client.post(f"{API}/{app['id']}/submit", headers=school.headers)
    assert resubmit.status_code == 409
    delete = await world.client.delete(f"{API}/{app['id']}", headers=school.headers)
    assert delete.status_code == 409


async def test_municipal_reject_ends_it_and_school_may_edit_and_resubmit(world: World) -> None:
    plan, cert, school = await world.plan(), await world.certificate(), await world.school()
    app = await world.submitted(school, plan, cert)
    no_reason = await world.review(app["id"], world.municipal(), decision="reject")
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "comment"
    rejected = (await world.review(app["id"], world.municipal(), decision="reject", comment="人数不实")).json()
    assert rejected["status"] == "rejected"
    fetched = (await world.client.get(f"{API}/{app['id']}", headers=school.headers)).json()
    assert fetched["editable"] is True
    edited = await world.client.put(
        f"{API}/{app['id']}",
        json=world.body(plan, cert, venue_html="<p>补充材料</p>"),
        headers={**school.sub_headers, "If-Match": f'"{rejected["version"]}"'},
    )
    assert edited.status_code == 200 and edited.json()["status"] == "rejected"
    again = await world.client.post(f"{API}/{app['id']}/submit", headers=school.headers)
    assert again.status_code == 200 and again.json()["review_stage"] == "municipal"
    assert len(again.json()["reviews"]) == 1


async def test_rejected_cannot_be_resubmitted_after_close(world: World) -> None:
    plan = await world.plan(municipal_review=False)
    cert, school = await world.certificate(), await world.school()
    app = await world.submitted(school, plan, cert)
    await world.review(app["id"], world.provincial(), decision="reject", comment="不符合条件")
    world.clock.at(plan.closes_at + timedelta(seconds=1))
    late = await world.client.post(f"{API}/{app['id']}/submit", headers=school.headers)
    assert late.status_code == 409 and late.json()["code"] == "plan_not_open"


async def test_return_while_open_makes_an_editable_draft_and_not_after_close(world: World) -> None:
    plan = await world.plan(municipal_review=False)
    cert, school = await world.certificate(), await world.school()
    app = await world.submitted(school, plan, cert)
    no_reason = await world.review(app["id"], world.provincial(), decision="return")
    assert no_reason.status_code == 422
    returned = (await world.review(app["id"], world.provincial(), decision="return", comment="请补充师资")).json()
    assert (returned["status"], returned["returned_reason"], returned["review_stage"]) == ("draft", "请补充师资", None)
    listed = await world.client.get(API, params={"plan_id": plan.id}, headers=world.provincial())
    assert app["id"] in [i["id"] for i in listed.json()["items"]], (
        "a returned application stays visible to the province"
    )
    resubmitted = await world.client.post(f"{API}/{app['id']}/submit", headers=school.headers)
    assert resubmitted.status_code == 200 and resubmitted.json()["returned_reason"] is None
    world.clock.at(plan.closes_at + timedelta(seconds=1))
    late = await world.review(app["id"], world.provincial(), decision="return", comment="再补充")
    assert late.status_code == 409 and late.json()["code"] == "plan_not_open"
    still_rejectable = await world.review(app["id"], world.provincial(), decision="reject", comment="逾期")
    assert still_rejectable.status_code == 200


async def test_scope_and_roles_of_reviewers(world: World) -> None:
    plan = await world.plan(municipal_review=False)
    cert, school = await world.certificate(), await world.school()
    app = await world.submitted(school, plan, cert)
    assert (
        await world.review(app["id"], world.provincial("11"), decision="approve", approved_trainees=1)
    ).status_code == 404
    assert (await world.review(app["id"], world.municipal(), decision="approve")).status_code == 404
    assert (await world.review(app["id"], school.headers, decision="approve")).status_code == 403
    assert (await world.review(app["id"], world.operator(), decision="approve")).status_code == 403
    assert (await world.review(app["id"], world.org(cert.org_id), decision="approve")).status_code == 403


async def test_review_events_and_pilot_granted_once_per_year(world: World) -> None:
    plan, school = await world.plan(), await world.school()
    first_cert, second_cert, third_cert = (
        await world.certificate(),
        await world.certificate(),
        await world.certificate(),
    )
    keys = ("applications.application.*.v1", "applications.pilot.granted.v1")
    async with bus_probe(world.amqp_url, world.namespace, *keys) as probe:
        first = await world.approved(school, plan, first_cert)
        second = await world.approved(school, plan, second_cert)
        reviewed = await wait_events(probe, "applications.application.reviewed", first["id"], count=2)
        assert [e["data"]["stage"] for e in reviewed] == ["municipal", "provincial"]
        [approved] = await wait_events(probe, "applications.application.approved", first["id"])
        assert approved["data"]["approved_trainees"] == 10 and approved["data"]["decision"] == "approve"
        assert approved["data"]["plan_closes_at"] and approved["data"]["reviewer"]
        [submitted] = await wait_events(probe, "applications.application.submitted", first["id"])
        assert submitted["data"]["review_stage"] == "municipal"
        subject = f"{school.code}:{plan.year}"
        [granted] = await wait_events(probe, "applications.pilot.granted", subject)
        assert granted["data"]["application_id"] == first["id"] and granted["data"]["year"] == plan.year
        await wait_events(probe, "applications.application.approved", second["id"])
        third = await world.submitted(school, plan, third_cert)
        await world.review(third["id"], world.municipal(), decision="reject", comment="不通过")
        [rejected] = await wait_events(probe, "applications.application.rejected", third["id"])
        assert rejected["data"]["comment"] == "不通过" and rejected["data"]["stage"] == "municipal"
        assert len([e for e in probe.of_type("applications.pilot.granted") if e["subject"] == subject]) == 1
        next_year = await world.plan(year=2027)
        await world.approved(school, next_year, first_cert)
        await wait_events(probe, "applications.pilot.granted", f"{school.code}:2027")


async def test_return_event_carries_reason(world: World) -> None:
    plan = await world.plan(municipal_review=False)
    cert, school = await world.certificate(), await world.school()
    async with bus_probe(world.amqp_url, world.namespace, "applications.application.returned.v1") as probe:
        app = await world.submitted(school, plan, cert)
        await world.review(app["id"], world.provincial(), decision="return", comment="补充场地照片")
        [event] = await wait_events(probe, "applications.application.returned", app["id"])
        assert event["data"]["returned_reason"] == "补充场地照片" and event["data"]["status"] == "draft"


async def test_batch_decisions_for_the_province(world: World) -> None:
    plan = await world.plan(municipal_review=False)
    school = await world.school()
    apps = [await world.submitted(school, plan, await world.certificate()) for _ in range(3)]
    draft = await world.draft(school, plan, await world.certificate())
    foreign = await world.submitted(
        await world.school(province="11", city="1101"), await world.plan(province="11"), await world.certificate()
    )
    ids = [a["id"] for a in apps] + [draft["id"], foreign["id"]]
    response = await world.client.post(
        f"{API}/batch-reviews", json={"application_ids": ids, "decision": "approve"}, headers=world.provincial()
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["succeeded"], body["failed"]) == (3, 2)
    by_id = {r["id"]: r for r in body["results"]}
    assert by_id[draft["id"]]["code"] == "not_found"  # a never-submitted draft is not in the province's view
    assert by_id[foreign["id"]]["code"] == "not_found"
    for app in apps:
        fetched = (await world.client.get(f"{API}/{app['id']}", headers=school.headers)).json()
        assert fetched["status"] == "approved" and fetched["approved_trainees"] == app["trainees_total"]
    again = await world.client.post(
        f"{API}/batch-reviews",
        json={"application_ids": [apps[0]["id"]], "decision": "reject", "comment": "x"},
        headers=world.provincial(),
    )
    assert again.json()["results"][0]["code"] == "invalid_transition"
    city = await world.client.post(
        f"{API}/batch-reviews", json={"application_ids": ids, "decision": "approve"}, headers=world.municipal()
    )
    assert city.status_code == 403


async def test_a_retried_review_with_its_idempotency_key_is_replayed(world: World) -> None:
    plan = await world.plan(municipal_review=False)
    cert, school = await world.certificate(), await world.school()
    app = await world.submitted(school, plan, cert)
    headers = {**world.provincial(), "Idempotency-Key": "decide-1"}
    body = {"decision": "approve", "approved_trainees": 7}
    first = await world.client.post(f"{API}/{app['id']}/reviews", json=body, headers=headers)
    again = await world.client.post(f"{API}/{app['id']}/reviews", json=body, headers=headers)
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    assert len(again.json()["reviews"]) == 1
    other = await world.client.post(
        f"{API}/{app['id']}/reviews", json={**body, "approved_trainees": 8}, headers=headers
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
