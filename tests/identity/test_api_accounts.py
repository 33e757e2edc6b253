"""Sub-accounts of a school, accounts created by the operator, a province resetting a school's
password (its own province only), and the caller's own account."""

from __future__ import annotations

import uuid

from tests.identity.factories import Client, add_institution, new_phone, problem, unique, wait_events


async def _school_session(client: Client, svc, province_code: str = "45") -> tuple[dict, dict[str, str]]:
    institution = await add_institution(svc, province_code=province_code, city_code=f"{province_code}01")
    school = await client.register(institution)
    pair = await client.tokens(school["account"], school["password"])
    return school, client.headers(pair["access_token"])


async def _operator_headers(client: Client, svc) -> dict[str, str]:
    from services.identity.service import create_account
    from shared.auth.principal import Role

    account, password = unique("ops"), "Operator-test-42"
    async with svc.runtime.sessionmaker() as session:
        await create_account(
            session=session,
            account=account,
            password=password,
            role=Role.operator,
            phone=new_phone(),
            now=client.svc.app.state.clock(),
        )
    pair = await client.tokens(account, password)
    return client.headers(pair["access_token"])


async def test_me_describes_the_caller(client: Client, svc) -> None:
    school, headers = await _school_session(client, svc)
    me = (await client.http.get("/api/v1/accounts/me", headers=headers)).json()
    assert me["account"] == school["account"] and me["role"] == "institution" and me["primary"] is True
    assert me["institution_code"] == school["account"] and me["province_code"] == "45"
    assert me["phone_masked"] == school["phone"][:3] + "****" + school["phone"][-4:]


async def test_sub_accounts_created_listed_and_removed_by_the_primary(client: Client, svc, probe) -> None:
    school, headers = await _school_session(client, svc)
    phone = new_phone()
    created = await client.http.post(
        "/api/v1/accounts/sub-accounts", json={"name": "信息工程学院", "phone": phone}, headers=headers
    )
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["account"] == f"{school['account']}-01" and len(sub["password"]) == 10
    second = await client.http.post(
        "/api/v1/accounts/sub-accounts", json={"name": "机电学院", "phone": new_phone()}, headers=headers
    )
    assert second.json()["account"] == f"{school['account']}-02"

    listed = (await client.http.get("/api/v1/accounts/sub-accounts", headers=headers)).json()
    assert listed["total"] == 2 and [i["account"] for i in listed["items"]] == [
        f"{school['account']}-01",
        f"{school['account']}-02",
    ]
    assert "password" not in listed["items"][0]

    events = await wait_events(probe, "identity.account.created", lambda e: e["data"]["account"] == sub["account"])
    data = events[0]["data"]
    assert data["role"] == "institution_sub" and data["primary"] is False and data["phone"] == phone
    assert data["institution_code"] == school["account"] and data["institution_name"]

    # the sub-account signs in with its own role, and cannot manage accounts
    sub_pair = await client.tokens(sub["account"], sub["password"])
    sub_headers = client.headers(sub_pair["access_token"])
    forbidden = await client.http.post(
        "/api/v1/accounts/sub-accounts", json={"name": "x", "phone": new_phone()}, headers=sub_headers
    )
    assert forbidden.status_code == 403 and problem(forbidden)["code"] == "forbidden"

    removed = await client.http.delete(f"/api/v1/accounts/sub-accounts/{sub['id']}", headers=headers)
    assert removed.status_code == 204
    await wait_events(probe, "identity.account.removed", lambda e: e["data"]["account"] == sub["account"])
    assert (await client.login(sub["account"], sub["password"])).status_code == 401
    refreshed = await client.http.post("/api/v1/auth/refresh", json={"refresh_token": sub_pair["refresh_token"]})
    assert refreshed.status_code == 401


async def test_another_schools_sub_account_is_not_found(client: Client, svc) -> None:
    _, headers_a = await _school_session(client, svc)
    _, headers_b = await _school_session(client, svc)
    sub = (
        await client.http.post(
            "/api/v1/accounts/sub-accounts", json={"name": "A 学院", "phone": new_phone()}, headers=headers_a
        )
    ).json()
    foreign = await client.http.delete(f"/api/v1/accounts/sub-accounts/{sub['id']}", headers=headers_b)
    assert foreign.status_code == 404 and problem(foreign)["code"] == "not_found"
    assert (await client.http.get("/api/v1/accounts/sub-accounts", headers=headers_b)).json()["total"] == 0
    missing = await client.http.delete(f"/api/v1/accounts/sub-accounts/{uuid.uuid4()}", headers=headers_a)
    assert missing.status_code == 404


async def test_operator_creates_department_and_organisation_accounts(client: Client, svc, probe) -> None:
    operator = await _operator_headers(client, svc)
    account = unique("gx")
    body = {"account": account, "password": "Province-pass-45", "role": "provincial", "phone": new_phone()}
    created = await client.http.post("/api/v1/accounts", json={**body, "province_code": "45"}, headers=operator)
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "provincial" and created.json()["account"] == account
    event = await wait_events(probe, "identity.account.created", lambda e: e["data"]["account"] == account)
    assert event[0]["data"]["province_code"] == "45"

    pair = await client.tokens(account, "Province-pass-45")
    me = (await client.http.get("/api/v1/accounts/me", headers=client.headers(pair["access_token"]))).json()
    assert (me["role"], me["province_code"]) == ("provincial", "45")

    duplicate = await client.http.post(
        "/api/v1/accounts", json={**body, "province_code": "45", "account": account.upper()}, headers=operator
    )
    assert duplicate.status_code == 409 and problem(duplicate)["code"] == "account_exists"
    no_city = await client.http.post(
        "/api/v1/accounts",
        json={**body, "account": unique("city"), "role": "municipal", "province_code": "45"},
        headers=operator,
    )
    assert no_city.status_code == 422 and problem(no_city)["errors"][0]["field"] == "city_code"
    weak = await client.http.post(
        "/api/v1/accounts",
        json={**body, "account": unique("weak"), "password": "qwertyuiop", "province_code": "45"},
        headers=operator,
    )
    assert weak.status_code == 422 and problem(weak)["errors"][0]["field"] == "password"
    org = await client.http.post(
        "/api/v1/accounts",
        json={**body, "account": unique("org"), "role": "org", "org_id": str(uuid.uuid4())},
        headers=operator,
    )
    assert org.status_code == 201
    by_province = await client.http.post(
        "/api/v1/accounts",
        json={**body, "account": unique("x"), "province_code": "45"},
        headers=client.headers(pair["access_token"]),
    )
    assert by_province.status_code == 403


async def test_province_resets_the_password_of_a_school_of_its_province(client: Client, svc, probe) -> None:
    operator = await _operator_headers(client, svc)
    province = {"password": "Province-pass-45", "role": "provincial", "phone": new_phone(), "province_code": "45"}
    gx, bj = unique("gx"), unique("bj")
    await client.http.post("/api/v1/accounts", json={**province, "account": gx}, headers=operator)
    await client.http.post(
        "/api/v1/accounts", json={**province, "account": bj, "province_code": "11"}, headers=operator
    )
    gx_headers = client.headers((await client.tokens(gx, "Province-pass-45"))["access_token"])
    bj_headers = client.headers((await client.tokens(bj, "Province-pass-45"))["access_token"])
    school, school_headers = await _school_session(client, svc, "45")
    school_pair = await client.tokens(school["account"], school["password"])

    foreign = await client.http.post(f"/api/v1/accounts/{school['account']}/password-reset", headers=bj_headers)
    assert foreign.status_code == 404
    not_a_school = await client.http.post(f"/api/v1/accounts/{bj}/password-reset", headers=gx_headers)
    assert not_a_school.status_code == 404
    by_school = await client.http.post(f"/api/v1/accounts/{school['account']}/password-reset", headers=school_headers)
    assert by_school.status_code == 403

    reset = await client.http.post(f"/api/v1/accounts/{school['account']}/password-reset", headers=gx_headers)
    assert reset.status_code == 200, reset.text
    new_password = reset.json()["password"]
    assert new_password != school["password"]
    assert (await client.login(school["account"], new_password)).status_code == 200
    refreshed = await client.http.post("/api/v1/auth/refresh", json={"refresh_token": school_pair["refresh_token"]})
    assert refreshed.status_code == 401
    events = await wait_events(probe, "identity.password.reset", lambda e: e["data"]["account"] == school["account"])
    assert events[-1]["data"]["new_password"] == new_password and events[-1]["data"]["phone"] == school["phone"]

    by_operator = await client.http.post(f"/api/v1/accounts/{school['account']}/password-reset", headers=operator)
    assert by_operator.status_code == 200


async def test_account_list_for_operator_and_province(client: Client, svc) -> None:
    operator = await _operator_headers(client, svc)
    gx = unique("gxlist")
    body = {"account": gx, "password": "Province-pass-45", "role": "provincial", "phone": new_phone()}
    await client.http.post("/api/v1/accounts", json={**body, "province_code": "45"}, headers=operator)
    school_45, _ = await _school_session(client, svc, "45")
    school_11, _ = await _school_session(client, svc, "11")

    everything = await client.http.get(
        "/api/v1/accounts", params={"role": "institution", "page_size": 100}, headers=operator
    )
    assert everything.status_code == 200
    listed = {i["account"] for i in everything.json()["items"]}
    assert {school_45["account"], school_11["account"]} <= listed
    assert all(i["role"] == "institution" for i in everything.json()["items"])

    gx_headers = client.headers((await client.tokens(gx, "Province-pass-45"))["access_token"])
    mine = await client.http.get("/api/v1/accounts", params={"q": school_45["account"]}, headers=gx_headers)
    assert [i["account"] for i in mine.json()["items"]] == [school_45["account"]]
    assert mine.json()["items"][0]["phone_masked"].count("*") == 4
    foreign = await client.http.get("/api/v1/accounts", params={"q": school_11["account"]}, headers=gx_headers)
    assert foreign.json()["total"] == 0
    _, school_headers = await _school_session(client, svc)
    assert (await client.http.get("/api/v1/accounts", headers=school_headers)).status_code == 403
