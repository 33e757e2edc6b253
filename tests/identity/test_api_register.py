"""Registration against the register copy (fed by registry's events), one primary account per
institution, the argon2id hash, the registered event, and answers that do not reveal a phone."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from services.identity.models import Account, Institution
from tests.identity.factories import (
    Client,
    add_institution,
    new_institution_code,
    new_phone,
    problem,
    publish_institution,
    same_answer,
    wait_events,
)


async def _copy_of(svc, code: str) -> Institution | None:
    async with svc.runtime.sessionmaker() as session:
        return await session.get(Institution, code)


async def _eventually(check, timeout: float = 15.0):
    """Wait for the consumer's effect: re-check on every tick of the loop until true or timeout."""
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.05)
    return result


async def test_register_copy_follows_registry_events_and_drops_older_versions(svc, servers, run_id) -> None:
    code = new_institution_code()
    data = {"code": code, "name": "南宁测试职业学院", "province_code": "45", "city_code": "4501"}
    await publish_institution(servers.amqp_url, f"t{run_id}", 2, **data)
    copy = await _eventually(lambda: _copy_of(svc, code))
    assert copy.name == "南宁测试职业学院" and copy.subject_version == 2
    await publish_institution(servers.amqp_url, f"t{run_id}", 1, **{**data, "name": "旧名称"})
    await publish_institution(servers.amqp_url, f"t{run_id}", 3, **{**data, "name": "南宁新名称职业学院"})

    async def renamed():
        found = await _copy_of(svc, code)
        return found if found and found.subject_version == 3 else None

    assert (await _eventually(renamed)).name == "南宁新名称职业学院"


async def test_register_creates_the_primary_account_once(client: Client, svc, probe) -> None:
    institution = await add_institution(svc)
    registered = await client.register(institution)
    assert registered["account"] == institution["code"]
    assert registered["institution_code"] == institution["code"]
    assert registered["institution_name"] == institution["name"]
    assert len(registered["password"]) == 10

    events = await wait_events(
        probe, "identity.account.registered", lambda e: e["data"]["account"] == institution["code"]
    )
    data = events[0]["data"]
    assert data["password"] == registered["password"] and data["primary"] is True
    assert data["phone"] == registered["phone"] and data["institution_name"] == institution["name"]
    assert (data["province_code"], data["city_code"], data["role"]) == ("45", "4501", "institution")

    second = await client.http.post(
        "/api/v1/auth/register",
        json={
            "province_code": "45",
            "institution_code": institution["code"],
            "phone": new_phone(),
            "sms_code": "123456",
        },
        headers=client.headers(),
    )
    assert second.status_code == 409 and problem(second)["code"] == "institution_already_registered"


async def test_password_is_stored_with_argon2id_and_its_parameters(client: Client, svc) -> None:
    registered = await client.register(await add_institution(svc))
    async with svc.runtime.sessionmaker() as session:
        account = (await session.scalars(select(Account).where(Account.account == registered["account"]))).one()
    assert account.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert registered["password"] not in account.password_hash


async def test_institution_must_be_in_the_register_and_the_chosen_province(client: Client, svc) -> None:
    institution = await add_institution(svc, province_code="45")
    phone = new_phone()
    code = await client.code(phone)
    for province, institution_code in (("11", institution["code"]), ("45", new_institution_code())):
        response = await client.http.post(
            "/api/v1/auth/register",
            json={"province_code": province, "institution_code": institution_code, "phone": phone, "sms_code": code},
            headers=client.headers(),
        )
        assert response.status_code == 404 and problem(response)["code"] == "institution_not_found"
        assert problem(response)["detail"]
    # the refusals did not spend the code
    ok = await client.http.post(
        "/api/v1/auth/register",
        json={"province_code": "45", "institution_code": institution["code"], "phone": phone, "sms_code": code},
        headers=client.headers(),
    )
    assert ok.status_code == 201


async def test_malformed_registration_is_a_validation_problem(client: Client) -> None:
    response = await client.http.post(
        "/api/v1/auth/register",
        json={"province_code": "4", "institution_code": "12", "phone": "1", "sms_code": "abc"},
        headers=client.headers(),
    )
    assert response.status_code == 422
    fields = {e["field"] for e in problem(response)["errors"]}
    assert fields == {"province_code", "institution_code", "phone", "sms_code"}


async def test_register_with_known_and_unknown_phone_answer_alike(client: Client, svc, clock) -> None:
    known = await client.register(await add_institution(svc))
    clock.advance(seconds=60)
    answers = []
    for phone in (known["phone"], new_phone()):
        institution = await add_institution(svc)
        code = await client.code(phone)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        body = {"province_code": "45", "institution_code": institution["code"], "phone": phone, "sms_code": wrong}
        headers = {**client.headers(), "X-Request-ID": "enum-register"}
        answers.append(await client.http.post("/api/v1/auth/register", json=body, headers=headers))
        ok = await client.http.post("/api/v1/auth/register", json={**body, "sms_code": code}, headers=client.headers())
        answers.append(ok)
    wrong_known, ok_known, wrong_unknown, ok_unknown = answers
    assert wrong_known.status_code == 400 and same_answer(wrong_known, wrong_unknown)
    assert ok_known.status_code == ok_unknown.status_code == 201
    assert set(ok_known.json()) == set(ok_unknown.json())


async def test_concurrent_registrations_of_one_institution_make_one_account(client: Client, svc) -> None:
    institution = await add_institution(svc)
    phones = [new_phone(), new_phone()]
    codes = [await client.code(phone) for phone in phones]
    answers = await asyncio.gather(
        *(
            client.http.post(
                "/api/v1/auth/register",
                json={"province_code": "45", "institution_code": institution["code"], "phone": p, "sms_code": c},
                headers=client.headers(),
            )
            for p, c in zip(phones, codes, strict=True)
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 409]
    async with svc.runtime.sessionmaker() as session:
        accounts = (await session.scalars(select(Account).where(Account.institution_code == institution["code"]))).all()
    assert len(accounts) == 1
