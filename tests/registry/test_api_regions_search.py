"""Regions for the cascaders, and the public institution search of the registration page."""

from __future__ import annotations

import csv
import time

from services.registry import reference
from shared.testing.harness import RunningService


async def test_provinces_then_municipality_then_districts(registry: RunningService) -> None:
    provinces = (await registry.client.get("/api/v1/regions")).json()
    assert len(provinces) == 31
    assert {"code": "11", "name": "北京市", "level": "province"} in provinces
    beijing = (await registry.client.get("/api/v1/regions", params={"parent_code": "11"})).json()
    assert beijing == [{"code": "1101", "name": "市辖区", "level": "city"}]
    districts = (await registry.client.get("/api/v1/regions", params={"parent_code": "1101"})).json()
    assert {"code": "110101", "name": "东城区", "level": "district"} in districts
    assert all(d["level"] == "district" and d["code"].startswith("1101") for d in districts)
    guangxi = (await registry.client.get("/api/v1/regions", params={"parent_code": "45"})).json()
    assert {"code": "4501", "name": "南宁市", "level": "city"} in guangxi


async def test_bad_parent_code_is_a_validation_problem(registry: RunningService) -> None:
    response = await registry.client.get("/api/v1/regions", params={"parent_code": "1x"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "parent_code"


async def test_search_by_chinese_substring_returns_only_public_fields(registry: RunningService) -> None:
    response = await registry.client.get("/api/v1/institutions", params={"province_code": "45", "q": "机电"})
    assert response.status_code == 200
    body = response.json()
    names = [i["name"] for i in body["items"]]
    assert "广西机电职业技术学院" in names
    assert all("机电" in n for n in names)
    assert body["total"] == len(names)
    assert set(body["items"][0]) == {"code", "name", "province_code", "type"}
    school = next(i for i in body["items"] if i["name"] == "广西机电职业技术学院")
    assert school == {
        "code": "4145010867",
        "name": "广西机电职业技术学院",
        "province_code": "45",
        "type": "higher_vocational",
    }


async def test_search_is_limited_to_the_province(registry: RunningService) -> None:
    body = (await registry.client.get("/api/v1/institutions", params={"province_code": "11", "q": "大学"})).json()
    assert body["total"] > 30
    assert all(i["province_code"] == "11" for i in body["items"])
    assert len(body["items"]) == 10 and body["page_size"] == 10
    beyond = (
        await registry.client.get("/api/v1/institutions", params={"province_code": "11", "q": "大学", "page": 500})
    ).json()
    assert beyond["items"] == [] and beyond["total"] == body["total"]
    second = (
        await registry.client.get("/api/v1/institutions", params={"province_code": "11", "q": "大学", "page": 2})
    ).json()
    assert not {i["code"] for i in second["items"]} & {i["code"] for i in body["items"]}
    nothing = (
        await registry.client.get("/api/v1/institutions", params={"province_code": "11", "q": "机电职业技术学院广西"})
    ).json()
    assert nothing["total"] == 0 and nothing["items"] == []


async def test_search_treats_wildcards_literally(registry: RunningService) -> None:
    for q in ("%", "_", "\\"):
        response = await registry.client.get("/api/v1/institutions", params={"q": q})
        assert response.status_code == 200
        assert response.json()["total"] == 0


async def test_whole_register_is_loaded_with_types(registry: RunningService) -> None:
    with reference.MINISTRY_LIST.open(encoding="utf-8") as handle:
        expected = {r["学校标识码"]: r for r in csv.DictReader(handle) if r["省份"] == "北京市"}
    assert len(expected) == 92
    params = {"province_code": "11", "page_size": 100}
    beijing = {i["code"]: i for i in (await registry.client.get("/api/v1/institutions", params=params)).json()["items"]}
    assert set(expected) <= set(beijing)
    for code, row in expected.items():
        assert beijing[code]["name"] == row["学校名称"]
        assert beijing[code]["type"] == ("undergraduate" if row["办学层次"] == "本科" else "higher_vocational")


async def test_search_is_fast_on_the_full_register(registry: RunningService) -> None:
    """A sanity bound only; bench/registry_search.py measures it properly."""
    started = time.perf_counter()
    for _ in range(20):
        response = await registry.client.get("/api/v1/institutions", params={"q": "职业技术"})
        assert response.status_code == 200
    assert (time.perf_counter() - started) / 20 < 0.25


async def test_control_characters_are_refused_not_500(registry: RunningService, tokens) -> None:
    search = await registry.client.get("/api/v1/institutions", params={"q": "机电\x00"})
    assert search.status_code == 422 and search.json()["code"] == "validation_error"
    headers = tokens.headers("operator")
    org = await registry.client.post("/api/v1/organizations", json={"name": "坏\x00组织"}, headers=headers)
    assert org.status_code == 422
    cert = await registry.client.post(
        "/api/v1/certificates",
        json={
            "name": "证书",
            "level": "junior",
            "org_id": "00000000-0000-0000-0000-000000000001",
            "major_codes": ["51\x000201"],
        },
        headers=headers,
    )
    assert cert.status_code == 422


async def test_openapi_document_is_served(registry: RunningService) -> None:
    document = (await registry.client.get("/api/v1/openapi/registry.json")).json()
    for path in (
        "/api/v1/regions",
        "/api/v1/institutions",
        "/api/v1/institutions/{code}/profile",
        "/api/v1/pilot-institutions",
    ):
        assert path in document["paths"]
