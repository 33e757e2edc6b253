"""Submit: primary account only, while the plan is open (to the second), Idempotency-Key semantics."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from shared.testing.bus import bus_probe
from tests.applications.factories import API, World, wait_events


async def test_submit_goes_to_the_stage_the_plan_asks_for(world: World) -> None:
    cert, school = await world.certificate(), await world.school()
    with_city = await world.plan(municipal_review=True)
    without_city = await world.plan(municipal_review=False, by_major=False)
    first = await world.submitted(school, with_city, cert)
    assert (first["status"], first["review_stage"]) == ("pending", "municipal")
    assert first["submitted_at"] is not None and first["editable"] is False
    second = await world.submitted(school, without_city, await world.certificate())
    assert (second["status"], second["review_stage"]) == ("pending", "provincial")


async def test_sub_account_drafts_but_cannot_submit(world: World) -> None:
    plan, cert, school = await world.plan(), await world.certificate(), await world.school()
    draft = await world.draft(school, plan, cert)
    refused = await world.client.post(f"{API}/{draft['id']}/submit", headers=school.sub_headers)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    other = await world.school()
    assert (await world.client.post(f"{API}/{draft['id']}/submit", headers=other.headers)).status_code == 404


async def test_submitted_is_locked(world: World) -> None:
    plan, cert, school = await world.plan(), await world.certificate(), await world.school()
    submitted = await world.submitted(school, plan, cert)
    url = f"{API}/{submitted['id']}"
    body = world.body(plan, cert)
    edit = await world.client.put(url, json=body, headers={**school.headers, "If-Match": f'"{submitted["version"]}"'})
    assert edit.status_code == 409 and edit.json()["code"] == "not_editable"
    again = await world.client.post(f"{url}/submit", headers=school.headers)
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"


async def test_deadline_one_second_before_and_after_close(world: World) -> None:
    plan, cert, school = await world.plan(municipal_review=False), await world.certificate(), await world.school()
    early = await world.draft(school, plan, cert)
    late = await world.draft(school, plan, await world.certificate())
    world.clock.at(plan.closes_at - timedelta(seconds=1))
    ok = await world.client.post(f"{API}/{early['id']}/submit", headers=school.headers)
    assert ok.status_code == 200
    world.clock.at(plan.closes_at)
    at_close = await world.client.post(f"{API}/{late['id']}/submit", headers=school.headers)
    assert at_close.status_code == 409 and at_close.json()["code"] == "plan_not_open"
    world.clock.at(plan.closes_at + timedelta(seconds=1))
    after = await world.client.post(f"{API}/{late['id']}/submit", headers=school.headers)
    assert after.status_code == 409 and after.json()["code"] == "plan_not_open"
    body = world.body(plan, cert, venue_html="<p>截止后修改</p>")
    edit = await world.client.put(f"{API}/{late['id']}", json=body, headers={**school.headers, "If-Match": '"1"'})
    assert edit.status_code == 409 and edit.json()["code"] == "plan_not_open"
    fetched = (await world.client.get(f"{API}/{late['id']}", headers=school.headers)).json()
    assert fetched["status"] == "draft" and fetched["editable"] is False


async def test_opening_boundary(world: World) -> None:
    plan, cert, school = await world.plan(), await world.certificate(), await world.school()
    world.clock.at(plan.opens_at - timedelta(seconds=1))
    before = await world.client.post(API, json=world.body(plan, cert), headers=school.headers)
    assert before.status_code == 409 and before.json()["code"] == "plan_not_open"
    world.clock.at(plan.opens_at)
    assert (await world.client.post(API, json=world.body(plan, cert), headers=school.headers)).status_code == 201


async def test_a_later_closing_time_arrives_by_event_and_reopens_submission(world: World) -> None:
    from shared.contracts.plans import PlanChanged

    plan, cert, school = await world.plan(municipal_review=False), await world.certificate(), await world.school()
    draft = await world.draft(school, plan, cert)
    world.clock.at(plan.closes_at + timedelta(hours=1))
    closed = await world.client.post(f"{API}/{draft['id']}/submit", headers=school.headers)
    assert closed.status_code == 409
    await world.plan(
        plan_id=plan.id,
        opens_at=plan.opens_at,
        closes_at=plan.closes_at + timedelta(days=1),
        municipal_review=False,
        version=2,
        event=PlanChanged,
    )
    assert (await world.client.post(f"{API}/{draft['id']}/submit", headers=school.headers)).status_code == 200


async def test_idempotency_key_replays_refuses_other_body_and_keys_are_per_account(world: World) -> None:
    plan, cert, school = await world.plan(), await world.certificate(), await world.school()
    draft = await world.draft(school, plan, cert)
    headers = {**school.headers, "Idempotency-Key": "submit-1"}
    first = await world.client.post(f"{API}/{draft['id']}/submit", headers=headers)
    replay = await world.client.post(f"{API}/{draft['id']}/submit", headers=headers)
    assert first.status_code == replay.status_code == 200
    assert replay.json() == first.json() and replay.headers["idempotent-replayed"] == "true"
    other = await world.draft(school, plan, await world.certificate())
    reused = await world.client.post(f"{API}/{other['id']}/submit", headers=headers)
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"


async def test_create_with_idempotency_key_replays_the_same_draft(world: World) -> None:
    plan, cert, school = await world.plan(), await world.certificate(), await world.school()
    headers = {**school.headers, "Idempotency-Key": "create-1"}
    first = await world.client.post(API, json=world.body(plan, cert), headers=headers)
    second = await world.client.post(API, json=world.body(plan, cert), headers=headers)
    assert first.status_code == second.status_code == 201 and first.json()["id"] == second.json()["id"]
    changed = await world.client.post(API, json=world.body(plan, cert, venue_html="<p>别的</p>"), headers=headers)
    assert changed.status_code == 422 and changed.json()["code"] == "idempotency_key_reused"
    listed = await world.client.get(API, headers=school.headers)
    assert listed.json()["total"] == 1


async def test_ten_concurrent_submits_with_one_key_have_one_effect(world: World) -> None:
    plan, cert, school = await world.plan(), await world.certificate(), await world.school()
    draft = await world.draft(school, plan, cert)
    headers = {**school.headers, "Idempotency-Key": "rush-1"}
    async with bus_probe(world.amqp_url, world.namespace, "applications.application.submitted.v1") as probe:
        responses = await asyncio.gather(
            *(world.client.post(f"{API}/{draft['id']}/submit", headers=headers) for _ in range(10))
        )
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 409} and 200 in statuses, statuses
        conflicts = [r.json()["code"] for r in responses if r.status_code == 409]
        assert set(conflicts) <= {"request_in_progress"}
        assert {r.json()["version"] for r in responses if r.status_code == 200} == {2}
        await wait_events(probe, "applications.application.submitted", draft["id"])
        await asyncio.sleep(0.5)
        assert len([e for e in probe.of_type("applications.application.submitted") if e["subject"] == draft["id"]]) == 1
    fetched = (await world.client.get(f"{API}/{draft['id']}", headers=school.headers)).json()
    assert fetched["version"] == 2 and fetched["status"] == "pending"
    late = await world.client.post(f"{API}/{draft['id']}/submit", headers=headers)
    assert late.status_code == 200 and late.json()["version"] == 2


async def test_submit_needs_the_profile_still_complete(world: World) -> None:
    plan, cert, school = await world.plan(), await world.certificate(), await world.school()
    draft = await world.draft(school, plan, cert)
    await world.institution(code=school.code, name=school.data.name, profile_completed=False, version=2)
    refused = await world.client.post(f"{API}/{draft['id']}/submit", headers=school.headers)
    assert refused.status_code == 422 and refused.json()["code"] == "profile_incomplete"
    fetched = (await world.client.get(f"{API}/{draft['id']}", headers=school.headers)).json()
    assert {c["item"]: c["ok"] for c in fetched["checks"]}["profile"] is False


async def test_submit_refuses_a_certificate_or_major_withdrawn_since_the_draft(world: World) -> None:
    plan, school = await world.plan(), await world.school()
    cert = await world.certificate(majors=("460104", "510201"))
    line = {"major_code": "510201", "students": 10, "teachers": 1, "trainees": 5}
    draft = await world.draft(school, plan, cert, majors=[line])
    await world.certificate(certificate_id=cert.id, org_id=cert.org_id, majors=("460104",), version=2)
    withdrawn = await world.client.post(f"{API}/{draft['id']}/submit", headers=school.headers)
    assert withdrawn.status_code == 422 and withdrawn.json()["code"] == "major_not_allowed", withdrawn.text
    assert [e["field"] for e in withdrawn.json()["errors"]] == ["majors.0.major_code"]

    await world.certificate(certificate_id=cert.id, org_id=cert.org_id, majors=("510201",), active=False, version=3)
    retired = await world.client.post(f"{API}/{draft['id']}/submit", headers=school.headers)
    assert retired.status_code == 422 and retired.json()["errors"][0]["field"] == "certificate_id"
    kept = (await world.client.get(f"{API}/{draft['id']}", headers=school.headers)).json()
    assert kept["status"] == "draft" and kept["version"] == draft["version"], "a refused submit changes nothing"

    await world.certificate(certificate_id=cert.id, org_id=cert.org_id, majors=("510201",), version=4)
    again = await world.client.post(f"{API}/{draft['id']}/submit", headers=school.headers)
    assert again.status_code == 200 and again.json()["status"] == "pending"
