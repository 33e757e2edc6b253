"""Copies of plans, certificates, institutions and majors: fed by the owners' events, an older
version never overwrites a newer one, a redelivered event changes nothing, and the rebuild command
pages through the owners' internal endpoints."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI, Query

from services.applications.models import CertificateCopy, InstitutionCopy, MajorCopy, PlanCopy
from services.applications.rebuild import rebuild_copies
from shared.contracts.plans import PlanClosed, PlanData
from shared.contracts.registry import InstitutionUpserted, MajorData, MajorUpserted
from tests.applications.factories import API, World, event_message


async def test_newer_event_applies_older_is_ignored(world: World) -> None:
    school = await world.school(profile_completed=False, version=3)
    stale = school.data.model_copy(update={"profile_completed": True, "name": "旧名称"})
    await world.publish(InstitutionUpserted(subject=school.code, subject_version=2, data=stale))
    newer = school.data.model_copy(update={"profile_completed": True, "city_code": "4502"})
    await world.publish(InstitutionUpserted(subject=school.code, subject_version=4, data=newer))
    row = await world.wait_copy(InstitutionCopy, school.code, 4)
    assert (row.profile_completed, row.city_code, row.name) == (True, "4502", school.data.name)
    plan, cert = await world.plan(), await world.certificate()
    assert (await world.client.post(API, json=world.body(plan, cert), headers=school.headers)).status_code == 201


async def test_plan_copy_follows_events_and_a_redelivery_changes_nothing(world: World) -> None:
    plan = await world.plan(version=2)
    closed = plan.model_copy(update={"title": "已截止"})
    event = PlanClosed(subject=plan.id, subject_version=3, data=closed)
    await world.broker.publish(event_message(event))
    row = await world.wait_copy(PlanCopy, plan.id, 3)
    assert row.title == "已截止"
    older = PlanClosed(subject=plan.id, subject_version=1, data=plan.model_copy(update={"title": "更旧"}))
    await world.publish(older)
    # The same event again (same id): the inbox drops it without a second effect.
    stats = world.service.runtime.consumers.stats
    duplicates = stats.duplicates
    await world.broker.publish(event_message(event))
    deadline = asyncio.get_running_loop().time() + 10
    while stats.duplicates == duplicates and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    assert stats.duplicates == duplicates + 1
    assert (await world.wait_copy(PlanCopy, plan.id, 3)).title == "已截止"


async def test_certificate_copy_change_of_majors_applies_to_new_drafts(world: World) -> None:
    plan, school = await world.plan(), await world.school()
    cert = await world.certificate(majors=("460104",))
    line = {"major_code": "510201", "students": 10, "teachers": 1, "trainees": 5}
    refused = await world.client.post(API, json=world.body(plan, cert, majors=[line]), headers=school.headers)
    assert refused.status_code == 422 and refused.json()["code"] == "major_not_allowed"
    await world.certificate(certificate_id=cert.id, org_id=cert.org_id, majors=("460104", "510201"), version=2)
    allowed = await world.client.post(API, json=world.body(plan, cert, majors=[line]), headers=school.headers)
    assert allowed.status_code == 201
    retired = await world.certificate(active=False)
    inactive = await world.client.post(API, json=world.body(plan, retired), headers=school.headers)
    assert inactive.status_code == 422 and inactive.json()["errors"][0]["field"] == "certificate_id"


async def test_major_copy_gives_names(world: World) -> None:
    data = MajorData(code="990001", name="测试专业", level="高职专科")
    await world.publish(MajorUpserted(subject=data.code, subject_version=1, data=data))
    assert (await world.wait_copy(MajorCopy, "990001", 1)).name == "测试专业"


def _owner(pages: dict[str, list[dict[str, Any]]]) -> FastAPI:
    """Stand-in for an owner's internal rebuild endpoint (the documented paging contract)."""
    owner = FastAPI()
    for kind, rows in pages.items():

        def page(
            after: str | None = None, limit: int = Query(500), _rows: list[dict[str, Any]] = rows
        ) -> dict[str, Any]:
            keys = [str(r.get("id") or r.get("code")) for r in _rows]
            start = keys.index(after) + 1 if after else 0
            chunk = _rows[start : start + limit]
            more = start + limit < len(_rows)
            return {"items": chunk, "next": keys[start + limit - 1] if more else None}

        owner.add_api_route(f"/internal/v1/{kind}", page, methods=["GET"])
    return owner


async def test_rebuild_pages_through_the_owners(world: World) -> None:
    institutions = [
        {"code": f"45990000{i:02d}", "name": f"重建学院{i}", "province_code": "45", "city_code": "4501",
         "type": "higher_vocational", "profile_completed": True, "subject_version": 1}
        for i in range(7)
    ]  # fmt: skip
    majors = [{"code": "880001", "name": "重建专业", "level": "高职专科", "subject_version": 5}]
    certificates = [
        {"id": "rebuild-cert-1", "name": "重建证书", "level": "junior", "org_id": "org-r", "org_name": "组织",
         "major_codes": ["880001"], "active": True, "subject_version": 2}
    ]  # fmt: skip
    newer = await world.plan()
    plan_rows = [
        PlanData(**{**newer.model_dump(), "title": "过期的标题"}).model_dump(mode="json") | {"subject_version": 0},
        {**newer.model_dump(mode="json"), "id": "rebuild-plan-1", "subject_version": 1},
    ]
    registry = _owner({"institutions": institutions, "majors": majors, "certificates": certificates})
    plans = _owner({"plans": plan_rows})
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=registry), base_url="http://registry") as reg,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=plans), base_url="http://plans") as pla,
    ):
        counts = await rebuild_copies(
            registry=reg, plans=pla, sessionmaker=world.service.runtime.sessionmaker, page_size=3
        )
    assert counts == {"institutions": 7, "majors": 1, "certificates": 1, "plans": 2}
    assert (await world.wait_copy(InstitutionCopy, "4599000006", 1)).name == "重建学院6"
    assert (await world.wait_copy(CertificateCopy, "rebuild-cert-1", 2)).major_codes == ["880001"]
    assert (await world.wait_copy(PlanCopy, newer.id, 1)).title == newer.title, "an older row never overwrites"
    assert (await world.wait_copy(PlanCopy, "rebuild-plan-1", 1)).year == newer.year


async def test_a_fresh_instance_fills_its_empty_copies_from_the_owners(world: World, servers, run_id, tokens) -> None:
    import uvicorn

    from services.applications.config import ApplicationsSettings
    from services.applications.main import create_app
    from shared.testing.cleanup import delete_namespace
    from shared.testing.harness import running_service, service_settings

    rows = {
        "institutions": [{"code": "4598000001", "name": "启动重建学院", "province_code": "45", "city_code": "4501",
                          "type": "higher_vocational", "profile_completed": True, "subject_version": 3}],
        "majors": [{"code": "770001", "name": "启动专业", "level": "高职专科", "subject_version": 1}],
        "certificates": [{"id": "boot-cert", "name": "启动证书", "level": "senior", "org_id": "o", "org_name": "组织",
                          "major_codes": ["770001"], "active": True, "subject_version": 1}],
        "plans": [{**(await world.plan()).model_dump(mode="json"), "id": "boot-plan", "subject_version": 1}],
    }  # fmt: skip
    server = uvicorn.Server(uvicorn.Config(_owner(rows), host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    namespace = f"t{run_id}boot"
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        settings = service_settings(
            ApplicationsSettings,
            servers=servers,
            run_id=run_id,
            service="applications_boot",
            bus_namespace=namespace,
            registry_url=f"http://127.0.0.1:{port}",
            plans_url=f"http://127.0.0.1:{port}",
        )
        async with running_service(lambda s: create_app(s, verifier=tokens.verifier()), settings) as fresh:
            deadline = asyncio.get_running_loop().time() + 15
            while True:
                async with fresh.runtime.sessionmaker() as session:
                    plan = await session.get(PlanCopy, "boot-plan")
                    institution = await session.get(InstitutionCopy, "4598000001")
                if plan and institution:
                    break
                assert asyncio.get_running_loop().time() < deadline, "the empty copies were never rebuilt"
                await asyncio.sleep(0.05)
            assert institution.subject_version == 3 and institution.name == "启动重建学院"
    finally:
        server.should_exit = True
        await serving
        await delete_namespace(servers.amqp_url, namespace)
