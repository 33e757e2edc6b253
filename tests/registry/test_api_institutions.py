"""Institutions: who may read which record, the school's own profile, and departments adding
institutions only in their scope. Events: one per real change, with a growing subject_version."""

from __future__ import annotations

from sqlalchemy import text

from shared.testing.bus import BusProbe
from shared.testing.harness import RunningService
from tests.registry.factories import (
    BJ_SCHOOL,
    GX_SCHOOL,
    Roles,
    corrupt_check_digit,
    events_matching,
    full_profile,
    put_profile,
    uscc,
)


async def _outbox_count(registry: RunningService, subject: str) -> int:
    async with registry.runtime.sessionmaker() as session:
        return int(
            await session.scalar(
                text(
                    "SELECT count(*) FROM outbox "
                    "WHERE payload->>'subject' = :s AND routing_key LIKE 'registry.institution.%'"
                ),
                {"s": subject},
            )
            or 0
        )


async def test_read_scope_per_role(registry: RunningService, roles: Roles) -> None:
    url = f"/api/v1/institutions/{GX_SCHOOL}"
    allowed = [
        roles.school(),
        roles.sub(),
        roles.province("45"),
        roles.city("45", "4501"),
        roles.operator(),
    ]
    for headers in allowed:
        response = await registry.client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "广西机电职业技术学院"
        assert response.headers["etag"] == f'"{response.json()["version"]}"'
    foreign = [roles.school(BJ_SCHOOL, "11", "1101"), roles.province("11"), roles.city("45", "4502")]
    for headers in foreign:
        response = await registry.client.get(url, headers=headers)
        assert response.status_code == 404
        assert response.json()["code"] == "institution_not_found"
    assert (
        await registry.client.get(url, headers=roles.org("00000000-0000-0000-0000-000000000001"))
    ).status_code == 403
    assert (await registry.client.get(url)).status_code == 401
    unknown = await registry.client.get("/api/v1/institutions/4199999999", headers=roles.operator())
    assert unknown.status_code == 404


async def test_profile_complete_emits_one_event_per_change(
    registry: RunningService, roles: Roles, probe: BusProbe
) -> None:
    code = "4111010853"  # 北京工业职业技术学院 (municipality: 市辖区 → district)
    headers = roles.school(code, "11", "1101")
    before = (await registry.client.get(f"/api/v1/institutions/{code}", headers=headers)).json()
    assert before["profile_completed"] is False
    profile = full_profile(province_code="11", city_code="1101", district_code="110106", contact_phone="13800000002")
    response = await put_profile(registry.client, code, profile, headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["profile_completed"] is True
    assert body["version"] == before["version"] + 1
    assert body["uscc"] == profile["uscc"] and body["district_code"] == "110106"

    again = await put_profile(registry.client, code, profile, headers)
    assert again.json()["version"] == body["version"]  # nothing changed: no new version

    incomplete = await put_profile(registry.client, code, {**profile, "address": None}, headers)
    assert incomplete.json()["profile_completed"] is False
    assert incomplete.json()["version"] == body["version"] + 1

    mine = await events_matching(
        probe,
        "registry.institution.upserted",
        lambda e: e["subject"] == code and e["subject_version"] > before["version"],
        count=2,
    )
    assert [e["subject_version"] for e in mine] == [body["version"], body["version"] + 1]
    assert [e["data"]["profile_completed"] for e in mine] == [True, False]
    assert mine[0]["producer"] == "registry"
    assert await _outbox_count(registry, code) - 1 == 2  # the seed's event plus two changes


async def test_profile_rejects_malformed_fields_and_keeps_the_old_values(
    registry: RunningService, roles: Roles
) -> None:
    headers = roles.school()
    before = (await registry.client.get(f"/api/v1/institutions/{GX_SCHOOL}", headers=headers)).json()
    bad = full_profile(uscc=corrupt_check_digit(uscc(7)), contact_phone="12345", contact_email="x@", website="gxcme")
    response = await put_profile(registry.client, GX_SCHOOL, bad, headers)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    fields = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert set(fields) == {"uscc", "contact_phone", "contact_email", "website"}
    assert "校验位" in fields["uscc"]
    wrong_place = await put_profile(registry.client, GX_SCHOOL, full_profile(district_code="110101"), headers)
    assert wrong_place.status_code == 422
    assert {e["field"] for e in wrong_place.json()["errors"]} == {"district_code"}
    other_province = await put_profile(
        registry.client, GX_SCHOOL, full_profile(province_code="44", city_code="4401"), headers
    )
    assert other_province.status_code == 422
    after = (await registry.client.get(f"/api/v1/institutions/{GX_SCHOOL}", headers=headers)).json()
    assert after == before


async def test_profile_only_by_the_school_itself(registry: RunningService, roles: Roles) -> None:
    url = f"/api/v1/institutions/{GX_SCHOOL}/profile"
    other_school = await registry.client.put(url, json=full_profile(), headers=roles.school(BJ_SCHOOL, "11", "1101"))
    assert other_school.status_code == 404
    for headers in (roles.sub(), roles.province("45"), roles.operator()):
        assert (await registry.client.put(url, json=full_profile(), headers=headers)).status_code == 403


async def test_stale_if_match_is_refused(registry: RunningService, roles: Roles) -> None:
    headers = roles.school()
    current = await registry.client.get(f"/api/v1/institutions/{GX_SCHOOL}", headers=headers)
    etag = current.headers["etag"]
    url = f"/api/v1/institutions/{GX_SCHOOL}/profile"
    first = await registry.client.put(url, json=full_profile(address="地址一"), headers={**headers, "If-Match": etag})
    assert first.status_code == 200
    stale = await registry.client.put(url, json=full_profile(address="地址二"), headers={**headers, "If-Match": etag})
    assert stale.status_code == 412 and stale.json()["code"] == "version_conflict"
    fresh = await registry.client.put(
        url, json=full_profile(address="地址二"), headers={**headers, "If-Match": first.headers["etag"]}
    )
    assert fresh.status_code == 200 and fresh.json()["address"] == "地址二"


def _new(code: str, name: str, province: str, city: str | None, **extra: str) -> dict[str, str | None]:
    return {
        "code": code,
        "name": name,
        "type": "secondary_vocational",
        "province_code": province,
        "city_code": city,
        **extra,
    }


async def test_a_profile_change_without_if_match_is_refused_and_changes_nothing(
    registry: RunningService, roles: Roles
) -> None:
    headers = roles.school()
    before = (await registry.client.get(f"/api/v1/institutions/{GX_SCHOOL}", headers=headers)).json()
    blind = await registry.client.put(
        f"/api/v1/institutions/{GX_SCHOOL}/profile", json=full_profile(address="未经核对的地址"), headers=headers
    )
    assert blind.status_code == 428 and blind.json()["code"] == "precondition_required", blind.text
    assert "If-Match" in blind.json()["detail"]
    assert (await registry.client.get(f"/api/v1/institutions/{GX_SCHOOL}", headers=headers)).json() == before


async def test_departments_add_only_in_their_scope(registry: RunningService, roles: Roles, probe: BusProbe) -> None:
    post = registry.client.post
    created = await post(
        "/api/v1/institutions",
        json=_new("4111990001", "北京市测试中等职业学校", "11", "1101"),
        headers=roles.province("11"),
    )
    assert created.status_code == 201, created.text
    assert created.json()["type"] == "secondary_vocational" and created.json()["version"] == 1

    foreign = await post(
        "/api/v1/institutions",
        json=_new("4144990001", "广州市测试中职学校", "44", "4401"),
        headers=roles.province("11"),
    )
    assert foreign.status_code == 404
    city = await post(
        "/api/v1/institutions",
        json=_new("4145990001", "南宁市测试中职学校", "45", "4501"),
        headers=roles.city("45", "4501"),
    )
    assert city.status_code == 201
    other_city = await post(
        "/api/v1/institutions",
        json=_new("4145990002", "柳州市测试中职学校", "45", "4502"),
        headers=roles.city("45", "4501"),
    )
    assert other_city.status_code == 404
    province_level = await post(
        "/api/v1/institutions",
        json=_new("4145990003", "无地市的中职学校", "45", None),
        headers=roles.city("45", "4501"),
    )
    assert province_level.status_code == 404
    anywhere = await post(
        "/api/v1/institutions",
        json=_new("4144990002", "广州市运维添加中职学校", "44", "4401"),
        headers=roles.operator(),
    )
    assert anywhere.status_code == 201
    for headers in (roles.school(), roles.org("00000000-0000-0000-0000-000000000001")):
        assert (
            await post("/api/v1/institutions", json=_new("4145990004", "某校", "45", "4501"), headers=headers)
        ).status_code == 403
    assert (await post("/api/v1/institutions", json=_new("4145990005", "某校", "45", "4501"))).status_code == 401

    wanted = {"4111990001", "4145990001", "4144990002"}
    await events_matching(probe, "registry.institution.upserted", lambda e: e["subject"] in wanted, count=3)
    subjects = {e["subject"] for e in probe.of_type("registry.institution.upserted")}
    assert not {"4144990001", "4145990002", "4145990003"} & subjects


async def test_create_conflicts_and_bad_regions(registry: RunningService, roles: Roles) -> None:
    post = registry.client.post
    headers = roles.province("45")
    duplicate_code = await post(
        "/api/v1/institutions", json=_new(GX_SCHOOL, "另一个名字", "45", "4501"), headers=headers
    )
    assert duplicate_code.status_code == 409 and duplicate_code.json()["code"] == "institution_exists"
    duplicate_name = await post(
        "/api/v1/institutions", json=_new("4145990010", "广西机电职业技术学院", "45", "4501"), headers=headers
    )
    assert duplicate_name.status_code == 409 and duplicate_name.json()["code"] == "institution_name_taken"
    same_name_elsewhere = await post(
        "/api/v1/institutions", json=_new("4111990010", "广西机电职业技术学院", "11", "1101"), headers=roles.operator()
    )
    assert same_name_elsewhere.status_code == 201  # names are unique within a province only
    bad_city = await post(
        "/api/v1/institutions", json=_new("4145990011", "城市不对的学校", "45", "4401"), headers=headers
    )
    assert bad_city.status_code == 422 and bad_city.json()["errors"][0]["field"] == "city_code"
    bad_code = await post("/api/v1/institutions", json=_new("41459", "代码太短的学校", "45", "4501"), headers=headers)
    assert bad_code.status_code == 422 and bad_code.json()["errors"][0]["field"] == "code"


async def test_partial_save_keeps_register_fields_and_is_incomplete(registry: RunningService, roles: Roles) -> None:
    code = "4145011350"  # 广西体育高等专科学校, 南宁市
    headers = roles.school(code, "45", "4501")
    before = (await registry.client.get(f"/api/v1/institutions/{code}", headers=headers)).json()
    saved = await put_profile(registry.client, code, {"contact_name": "李老师"}, headers)
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["contact_name"] == "李老师" and body["profile_completed"] is False
    assert (body["type"], body["city_code"]) == (before["type"], before["city_code"])
