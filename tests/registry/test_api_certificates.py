"""Majors catalogue, organisations and certificates: org accounts manage only their own."""

from __future__ import annotations

import uuid

from services.registry.demo import DEMO_ORG
from shared.testing.bus import BusProbe
from shared.testing.harness import RunningService
from tests.registry.factories import Roles, events_matching

DEMO_ORG_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "onex-org:" + DEMO_ORG))


async def test_majors_by_code_name_and_level(registry: RunningService) -> None:
    get = registry.client.get
    by_code = (await get("/api/v1/majors", params={"q": "510201"})).json()
    assert by_code["items"][0] == {
        "code": "510201",
        "name": "计算机应用技术",
        "level": "associate",
        "category_name": "电子与信息大类",
        "class_name": "计算机类",
    }
    by_name = (await get("/api/v1/majors", params={"q": "软件", "level": "associate"})).json()
    assert "510203" in {m["code"] for m in by_name["items"]}
    assert all(m["level"] == "associate" and "软件" in m["name"] for m in by_name["items"])
    totals = {
        lv: (await get("/api/v1/majors", params={"level": lv})).json()["total"]
        for lv in ("secondary", "associate", "bachelor")
    }
    assert totals == {"secondary": 358, "associate": 744, "bachelor": 247}
    assert (await get("/api/v1/majors", params={"level": "phd"})).status_code == 422


async def test_demo_certificates_three_levels_with_majors(registry: RunningService) -> None:
    body = (await registry.client.get("/api/v1/certificates", params={"q": "Web前端", "org_id": DEMO_ORG_ID})).json()
    assert [c["level"] for c in body["items"]] == ["junior", "intermediate", "senior"]
    assert len({c["id"] for c in body["items"]}) == 3
    for cert in body["items"]:
        assert {"510201", "510203"} <= set(cert["major_codes"])
        assert cert["org_name"] == DEMO_ORG
    junior = body["items"][0]
    assert any(c.startswith("7") for c in junior["major_codes"]) and any(
        c.startswith("5") for c in junior["major_codes"]
    )
    one = await registry.client.get(f"/api/v1/certificates/{junior['id']}")
    assert one.status_code == 200 and one.json()["name"] == "Web前端开发"
    assert (await registry.client.get(f"/api/v1/certificates/{uuid.uuid4()}")).status_code == 404


async def test_organisations_by_operator_only(registry: RunningService, roles: Roles) -> None:
    name = f"测试培训评价组织{uuid.uuid4().hex[:6]}"
    created = await registry.client.post("/api/v1/organizations", json={"name": name}, headers=roles.operator())
    assert created.status_code == 201
    assert created.json()["id"] == str(uuid.uuid5(uuid.NAMESPACE_URL, "onex-org:" + name))
    again = await registry.client.post("/api/v1/organizations", json={"name": name}, headers=roles.operator())
    assert again.status_code == 409
    refused = await registry.client.post(
        "/api/v1/organizations", json={"name": "另一个组织"}, headers=roles.province("45")
    )
    assert refused.status_code == 403
    listed = (await registry.client.get("/api/v1/organizations", params={"q": name})).json()
    assert [o["name"] for o in listed["items"]] == [name]


async def test_org_manages_only_its_own_certificates(registry: RunningService, roles: Roles, probe: BusProbe) -> None:
    mine = (
        await registry.client.post("/api/v1/organizations", json={"name": "甲测试组织"}, headers=roles.operator())
    ).json()
    other = (
        await registry.client.post("/api/v1/organizations", json={"name": "乙测试组织"}, headers=roles.operator())
    ).json()
    body = {"name": "工业机器人测试证书", "level": "junior", "org_id": mine["id"], "major_codes": ["510201", "710201"]}
    created = await registry.client.post("/api/v1/certificates", json=body, headers=roles.org(mine["id"]))
    assert created.status_code == 201, created.text
    cert = created.json()
    assert cert["major_codes"] == ["510201", "710201"] and cert["version"] == 1

    foreign = await registry.client.post(
        "/api/v1/certificates", json={**body, "org_id": other["id"]}, headers=roles.org(mine["id"])
    )
    assert foreign.status_code == 404
    duplicate = await registry.client.post("/api/v1/certificates", json=body, headers=roles.org(mine["id"]))
    assert duplicate.status_code == 409
    unknown = await registry.client.post(
        "/api/v1/certificates", json={**body, "level": "senior", "major_codes": ["999999"]}, headers=roles.operator()
    )
    assert unknown.status_code == 422 and unknown.json()["code"] == "major_not_found"
    assert "999999" in unknown.json()["errors"][0]["message"]
    assert (
        await registry.client.post("/api/v1/certificates", json=body, headers=roles.province("45"))
    ).status_code == 403

    url = f"/api/v1/certificates/{cert['id']}/majors"
    etag = (await registry.client.get(f"/api/v1/certificates/{cert['id']}")).headers["etag"]
    org = roles.org(mine["id"])
    blind = await registry.client.put(url, json={"major_codes": ["510201"]}, headers=org)
    assert blind.status_code == 428 and blind.json()["code"] == "precondition_required"
    changed = await registry.client.put(
        url, json={"major_codes": ["510201", "510203"]}, headers={**org, "If-Match": etag}
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert changed.headers["etag"] == '"2"'
    stale = await registry.client.put(url, json={"major_codes": ["510201"]}, headers={**org, "If-Match": etag})
    assert stale.status_code == 412 and stale.json()["code"] == "version_conflict"
    same = await registry.client.put(
        url, json={"major_codes": ["510201", "510203"]}, headers={**org, "If-Match": changed.headers["etag"]}
    )
    assert same.json()["version"] == 2
    by_other = await registry.client.put(
        url, json={"major_codes": []}, headers={**roles.org(other["id"]), "If-Match": '"2"'}
    )
    assert by_other.status_code == 404
    by_operator = await registry.client.put(
        url, json={"major_codes": ["510203"]}, headers={**roles.operator(), "If-Match": '"2"'}
    )
    assert by_operator.json()["version"] == 3

    events = await events_matching(
        probe, "registry.certificate.upserted", lambda e: e["subject"] == cert["id"], count=3
    )
    assert [e["subject_version"] for e in events] == [1, 2, 3]
    assert events[-1]["data"]["major_codes"] == ["510203"]
    assert events[0]["data"]["org_name"] == "甲测试组织"
