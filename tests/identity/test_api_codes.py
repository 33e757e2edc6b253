"""Captchas and SMS codes through the real app: single use, expiry at the boundaries (injected
clock), tries, resend interval, hourly/daily/address caps, and concurrent wrong codes."""

from __future__ import annotations

import asyncio
import base64

from sqlalchemy import select

from services.identity.models import SmsCode
from tests.identity.factories import Client, add_institution, new_phone, problem, same_answer


async def _register(client: Client, institution: dict, phone: str, code: str):
    return await client.http.post(
        "/api/v1/auth/register",
        json={
            "province_code": institution["province_code"],
            "institution_code": institution["code"],
            "phone": phone,
            "sms_code": code,
        },
        headers=client.headers(),
    )


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_captcha_is_a_png_and_its_answer_is_case_insensitive(client: Client) -> None:
    response = await client.http.get("/api/v1/auth/captcha")
    assert response.status_code == 200
    body = response.json()
    assert body["image"].startswith("data:image/png;base64,")
    assert base64.b64decode(body["image"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    answer = (await client.http.get(f"/api/v1/dev/captcha/{body['captcha_id']}")).json()["answer"]
    sent = await client.http.post(
        "/api/v1/auth/sms-codes",
        json={
            "phone": new_phone(),
            "purpose": "register",
            "captcha_id": body["captcha_id"],
            "captcha_answer": answer.upper(),
        },
        headers=client.headers(),
    )
    assert sent.status_code == 202, sent.text
    assert sent.json() == {"resend_after": 60}


async def test_captcha_is_single_use_even_when_wrong(client: Client) -> None:
    captcha_id, answer = await client.captcha()
    body = {"phone": new_phone(), "purpose": "register", "captcha_id": captcha_id, "captcha_answer": "zzzz"}
    wrong = await client.http.post("/api/v1/auth/sms-codes", json=body, headers=client.headers())
    assert wrong.status_code == 400 and problem(wrong)["code"] == "captcha_invalid"
    again = await client.http.post(
        "/api/v1/auth/sms-codes", json={**body, "captcha_answer": answer}, headers=client.headers()
    )
    assert again.status_code == 400 and problem(again)["code"] == "captcha_invalid"


async def test_captcha_expires_after_two_minutes(client: Client, clock) -> None:
    for elapsed, status in ((119, 202), (121, 400)):
        captcha_id, answer = await client.captcha()
        clock.advance(seconds=elapsed)
        body = {"phone": new_phone(), "purpose": "register", "captcha_id": captcha_id, "captcha_answer": answer}
        response = await client.http.post("/api/v1/auth/sms-codes", json=body, headers=client.headers())
        assert response.status_code == status, response.text
        clock.reset()


async def test_sms_code_needs_a_captcha(client: Client) -> None:
    response = await client.http.post(
        "/api/v1/auth/sms-codes", json={"phone": new_phone(), "purpose": "register"}, headers=client.headers()
    )
    assert response.status_code == 422
    assert {e["field"] for e in problem(response)["errors"]} == {"captcha_id", "captcha_answer"}


async def test_bad_phone_is_a_validation_problem(client: Client) -> None:
    captcha_id, answer = await client.captcha()
    body = {"phone": "12345", "purpose": "register", "captcha_id": captcha_id, "captcha_answer": answer}
    response = await client.http.post("/api/v1/auth/sms-codes", json=body, headers=client.headers())
    assert response.status_code == 422 and problem(response)["errors"][0]["field"] == "phone"


async def test_code_valid_at_299_seconds(client: Client, svc, clock) -> None:
    institution, phone = await add_institution(svc), new_phone()
    code = await client.code(phone)
    clock.advance(seconds=299)
    assert (await _register(client, institution, phone, code)).status_code == 201


async def test_code_expired_at_301_seconds(client: Client, svc, clock) -> None:
    institution, phone = await add_institution(svc), new_phone()
    code = await client.code(phone)
    clock.advance(seconds=301)
    response = await _register(client, institution, phone, code)
    assert response.status_code == 400 and problem(response)["code"] == "sms_code_invalid"


async def test_five_wrong_tries_spend_the_code_even_if_the_sixth_is_right(client: Client, svc) -> None:
    institution, phone = await add_institution(svc), new_phone()
    code = await client.code(phone)
    for _ in range(5):
        wrong = await _register(client, institution, phone, _wrong(code))
        assert wrong.status_code == 400 and problem(wrong)["code"] == "sms_code_invalid"
    sixth = await _register(client, institution, phone, code)
    assert sixth.status_code == 400 and problem(sixth)["code"] == "sms_code_invalid"


async def test_the_fifth_try_may_be_right(client: Client, svc) -> None:
    institution, phone = await add_institution(svc), new_phone()
    code = await client.code(phone)
    for _ in range(4):
        assert (await _register(client, institution, phone, _wrong(code))).status_code == 400
    assert (await _register(client, institution, phone, code)).status_code == 201


async def test_a_code_is_single_use(client: Client, svc) -> None:
    phone = new_phone()
    code = await client.code(phone)
    first, second = await add_institution(svc), await add_institution(svc)
    assert (await _register(client, first, phone, code)).status_code == 201
    again = await _register(client, second, phone, code)
    assert again.status_code == 400 and problem(again)["code"] == "sms_code_invalid"


async def test_a_new_code_cancels_the_older_one(client: Client, svc, clock) -> None:
    institution, phone = await add_institution(svc), new_phone()
    old = await client.code(phone)
    clock.advance(seconds=60)
    new = await client.code(phone)
    if old != new:
        stale = await _register(client, institution, phone, old)
        assert stale.status_code == 400 and problem(stale)["code"] == "sms_code_invalid"
    assert (await _register(client, institution, phone, new)).status_code == 201


async def test_resend_interval_59_then_60_seconds(client: Client, clock) -> None:
    phone = new_phone()
    assert (await client.ask_code(phone)).status_code == 202
    clock.advance(seconds=59)
    early = await client.ask_code(phone)
    assert early.status_code == 429
    assert problem(early)["code"] == "sms_too_frequent"
    assert early.headers["Retry-After"] == "1"
    clock.advance(seconds=1)
    assert (await client.ask_code(phone)).status_code == 202


async def test_five_per_hour_then_ten_per_day(client: Client, clock) -> None:
    phone = new_phone()
    for _ in range(5):
        assert (await client.ask_code(phone)).status_code == 202
        clock.advance(seconds=61)
    sixth = await client.ask_code(phone)
    assert sixth.status_code == 429 and int(sixth.headers["Retry-After"]) > 60
    clock.advance(hours=1)
    for _ in range(5):
        assert (await client.ask_code(phone)).status_code == 202
        clock.advance(seconds=61)
    clock.advance(hours=1)
    eleventh = await client.ask_code(phone)
    assert eleventh.status_code == 429 and problem(eleventh)["code"] == "sms_too_frequent"
    wait = int(eleventh.headers["Retry-After"])
    assert 20 * 3600 < wait < 24 * 3600
    clock.advance(seconds=wait)
    assert (await client.ask_code(phone)).status_code == 202


async def test_twenty_per_client_address_an_hour(svc, probe) -> None:
    browser = Client(svc, probe)
    for _ in range(20):
        assert (await browser.ask_code(new_phone())).status_code == 202
    refused = await browser.ask_code(new_phone())
    assert refused.status_code == 429 and problem(refused)["code"] == "sms_too_frequent"
    assert (await Client(svc, probe).ask_code(new_phone())).status_code == 202


async def test_twenty_concurrent_wrong_codes_never_check_more_than_five(client: Client, svc) -> None:
    institution, phone = await add_institution(svc), new_phone()
    code = await client.code(phone)
    answers = await asyncio.gather(*(_register(client, institution, phone, _wrong(code)) for _ in range(20)))
    assert {a.status_code for a in answers} == {400}
    async with svc.runtime.sessionmaker() as session:
        row = (await session.scalars(select(SmsCode).where(SmsCode.phone == phone))).one()
    assert row.attempts == 5 and row.spent_at is not None
    right = await _register(client, institution, phone, code)
    assert right.status_code == 400 and problem(right)["code"] == "sms_code_invalid"


async def test_code_requests_for_known_and_unknown_phones_answer_alike(client: Client, svc, probe, clock) -> None:
    known = await client.register(await add_institution(svc))
    clock.advance(seconds=60)
    unknown = new_phone()
    same_id = {**client.headers(), "X-Request-ID": "enum-1"}
    answers = []
    for phone in (known["phone"], unknown):
        captcha_id, answer = await client.captcha()
        body = {"phone": phone, "purpose": "reset_password", "captcha_id": captcha_id, "captcha_answer": answer}
        answers.append(await client.http.post("/api/v1/auth/sms-codes", json=body, headers=same_id))
    assert answers[0].status_code == 202
    assert same_answer(*answers)
    # the reset code is sent only to the phone an account holds
    sent = [e["data"]["phone"] for e in probe.of_type("identity.sms_code.requested")]
    assert known["phone"] in sent and unknown not in sent


async def test_dev_answer_endpoint_is_absent_outside_dev(servers, run_id, clock) -> None:
    from tests.identity.factories import identity_service, identity_settings

    settings = identity_settings(servers, run_id, "id_notdev", app_env="test")
    async with identity_service(settings, clock) as running:
        challenge = (await running.client.get("/api/v1/auth/captcha")).json()
        response = await running.client.get(f"/api/v1/dev/captcha/{challenge['captcha_id']}")
        assert response.status_code == 404 and problem(response)["code"] == "not_found"
        async with running.runtime.sessionmaker() as session:
            from services.identity.models import Captcha

            stored = (await session.scalars(select(Captcha))).all()
        assert stored and all(c.dev_answer is None for c in stored)
        assert all(len(c.answer_digest) == 64 for c in stored)


async def test_malformed_captcha_id_is_a_wrong_captcha_not_an_error(client: Client) -> None:
    body = {"phone": new_phone(), "purpose": "register", "captcha_id": "not-a-uuid", "captcha_answer": "abcd"}
    response = await client.http.post("/api/v1/auth/sms-codes", json=body, headers=client.headers())
    assert response.status_code == 400 and problem(response)["code"] == "captcha_invalid"
    unknown_purpose = await client.http.post(
        "/api/v1/auth/sms-codes", json={**body, "purpose": "login"}, headers=client.headers()
    )
    assert unknown_purpose.status_code == 422 and problem(unknown_purpose)["errors"][0]["field"] == "purpose"
