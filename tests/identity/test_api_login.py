"""Login with captcha, progressive lock-out (4th, 5th and 6th try), the hourly cap per address,
refresh rotation and reuse detection, logout, password change and reset by SMS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import jwt
import pytest

from shared.testing.harness import RunningService
from tests.identity.factories import (
    Client,
    add_institution,
    identity_service,
    identity_settings,
    new_phone,
    problem,
    same_answer,
    unique,
    wait_events,
)


async def _school(client: Client, svc) -> dict:
    return await client.register(await add_institution(svc))


async def test_login_issues_a_short_lived_token_with_role_and_scope(client: Client, svc) -> None:
    school = await _school(client, svc)
    pair = await client.tokens(school["account"], school["password"])
    assert pair["token_type"] == "Bearer" and pair["expires_in"] <= 900 and pair["refresh_token"]
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert claims["iss"] == "onex-identity" and claims["aud"] == "onex"
    assert 0 < claims["exp"] - claims["iat"] <= 900
    assert claims["role"] == "institution"
    assert claims["scope"] == {"institution_code": school["account"], "province_code": "45", "city_code": "4501"}
    header = jwt.get_unverified_header(pair["access_token"])
    assert header["alg"] == "EdDSA" and header["kid"]


async def test_login_is_case_insensitive_on_the_account(client: Client, svc) -> None:
    account = unique("Mixed")
    await _operator_creates(svc, client, account=account, password="Long-enough-9")
    assert (await client.login(account.upper(), "Long-enough-9")).status_code == 200


async def _operator_creates(svc, client: Client, **body) -> dict:
    from services.identity.service import create_account
    from shared.auth.principal import Role

    async with svc.runtime.sessionmaker() as session:
        created = await create_account(
            session=session,
            account=body["account"],
            password=body["password"],
            role=Role(body.get("role", "provincial")),
            phone=body.get("phone", new_phone()),
            province_code=body.get("province_code", "45"),
            now=client.svc.app.state.clock(),
        )
    assert created is not None
    return {"id": str(created.id), **body}


async def test_wrong_captcha_is_refused_before_the_password(client: Client, svc) -> None:
    school = await _school(client, svc)
    captcha_id, _ = await client.captcha()
    response = await client.http.post(
        "/api/v1/auth/login",
        json={
            "account": school["account"],
            "password": school["password"],
            "captcha_id": captcha_id,
            "captcha_answer": "wrong",
        },
        headers=client.headers(),
    )
    assert response.status_code == 400 and problem(response)["code"] == "captcha_invalid"


async def test_lock_out_from_the_fifth_failure(client: Client, svc, clock) -> None:
    school = await _school(client, svc)
    for _ in range(4):
        wrong = await client.login(school["account"], "not-the-password")
        assert wrong.status_code == 401 and problem(wrong)["code"] == "invalid_credentials"
    fifth = await client.login(school["account"], "not-the-password")
    assert fifth.status_code == 423 and problem(fifth)["code"] == "account_locked"
    assert fifth.headers["Retry-After"] == "60" and "1 分钟" in problem(fifth)["detail"]
    sixth = await client.login(school["account"], school["password"])  # right, but locked
    assert sixth.status_code == 423
    clock.advance(seconds=59)
    assert (await client.login(school["account"], school["password"])).status_code == 423
    clock.advance(seconds=1)
    # one more failure after the lock doubles the wait
    doubled = await client.login(school["account"], "still-wrong")
    assert doubled.status_code == 423 and doubled.headers["Retry-After"] == "120"
    clock.advance(seconds=120)
    assert (await client.login(school["account"], school["password"])).status_code == 200
    # success clears the count
    assert (await client.login(school["account"], "wrong-again")).status_code == 401


async def test_unknown_accounts_lock_like_known_ones(client: Client, svc) -> None:
    school = await _school(client, svc)
    answers = {}
    for account in (school["account"], unique("ghost")):
        for _ in range(4):
            await client.login(account, "nope-nope")
        answers[account] = await client.login(account, "nope-nope")
    known, unknown = answers.values()
    assert known.status_code == unknown.status_code == 423
    assert problem(known)["detail"] == problem(unknown)["detail"]


@pytest.fixture(scope="module")
async def capped(servers, run_id, clock, probe) -> AsyncIterator[RunningService]:
    """Small caps, and a lock-out policy that never locks, so that only the hard caps act."""
    settings = identity_settings(
        servers,
        run_id,
        "id_cap",
        login_failures_per_ip_hour=10,
        login_failures_per_account_hour=3,
        login_lock_threshold=1000,
    )
    async with identity_service(settings, clock) as running:
        yield running


async def test_hard_cap_of_failures_per_address(capped, probe, clock) -> None:
    browser = Client(capped, probe)
    for n in range(10):
        response = await browser.login(unique(f"spray{n}"), "wrong-wrong")
        assert response.status_code == 401
    refused = await browser.login(unique("spray"), "wrong-wrong")
    assert refused.status_code == 429 and problem(refused)["code"] == "too_many_requests"
    assert 3500 < int(refused.headers["Retry-After"]) <= 3600
    assert (await Client(capped, probe).login(unique("other"), "wrong-wrong")).status_code == 401
    clock.advance(hours=1, seconds=1)
    assert (await browser.login(unique("later"), "wrong-wrong")).status_code == 401


async def test_hard_cap_of_failures_per_account_whatever_the_lock_policy(capped, probe, clock) -> None:
    school = await Client(capped, probe).register(await add_institution(capped))
    for _ in range(2):
        assert (await Client(capped, probe).login(school["account"], "wrong-wrong")).status_code == 401
    third = await Client(capped, probe).login(school["account"], "wrong-wrong")
    assert third.status_code == 423 and 3500 < int(third.headers["Retry-After"]) <= 3600
    assert (await Client(capped, probe).login(school["account"], school["password"])).status_code == 423
    clock.advance(hours=1)
    assert (await Client(capped, probe).login(school["account"], school["password"])).status_code == 200


async def test_refresh_rotates_and_reuse_revokes_the_family(client: Client, svc) -> None:
    school = await _school(client, svc)
    first = await client.tokens(school["account"], school["password"])
    second = (await client.http.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"]
    third = await client.http.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200
    # the first, already spent, comes back: it leaked, so the whole family dies
    reused = await client.http.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401 and problem(reused)["code"] == "unauthenticated"
    latest = await client.http.post("/api/v1/auth/refresh", json={"refresh_token": third.json()["refresh_token"]})
    assert latest.status_code == 401
    # another session of the same account is another family: untouched
    other = await client.tokens(school["account"], school["password"])
    assert (
        await client.http.post("/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
    ).status_code == 200


async def test_refresh_token_expires(client: Client, svc, clock) -> None:
    school = await _school(client, svc)
    pair = await client.tokens(school["account"], school["password"])
    clock.advance(days=14, seconds=1)
    response = await client.http.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert response.status_code == 401


async def test_logout_revokes_the_refresh_token(client: Client, svc) -> None:
    school = await _school(client, svc)
    pair = await client.tokens(school["account"], school["password"])
    out = await client.http.post(
        "/api/v1/auth/logout",
        json={"refresh_token": pair["refresh_token"]},
        headers=client.headers(pair["access_token"]),
    )
    assert out.status_code == 204
    response = await client.http.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert response.status_code == 401
    assert (await client.http.post("/api/v1/auth/logout")).status_code == 401


async def test_password_change_revokes_every_refresh_token(client: Client, svc) -> None:
    school = await _school(client, svc)
    sessions = [await client.tokens(school["account"], school["password"]) for _ in range(2)]
    headers = client.headers(sessions[0]["access_token"])
    wrong = await client.http.put(
        "/api/v1/accounts/me/password",
        json={"old_password": "not-it-at-all", "new_password": "Brand-new-pass-1"},
        headers=headers,
    )
    assert wrong.status_code == 400 and problem(wrong)["code"] == "invalid_credentials"
    common = await client.http.put(
        "/api/v1/accounts/me/password",
        json={"old_password": school["password"], "new_password": "password123"},
        headers=headers,
    )
    assert common.status_code == 422 and problem(common)["errors"][0]["field"] == "new_password"
    short = await client.http.put(
        "/api/v1/accounts/me/password",
        json={"old_password": school["password"], "new_password": "Ab3$efg"},
        headers=headers,
    )
    assert short.status_code == 422
    changed = await client.http.put(
        "/api/v1/accounts/me/password",
        json={"old_password": school["password"], "new_password": "Brand-new-pass-1"},
        headers=headers,
    )
    assert changed.status_code == 204
    for pair in sessions:
        response = await client.http.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert response.status_code == 401
    assert (await client.login(school["account"], school["password"])).status_code == 401
    assert (await client.login(school["account"], "Brand-new-pass-1")).status_code == 200


async def _reset(client: Client, phone: str, code: str, password: str, **extra):
    return await client.http.post(
        "/api/v1/auth/password-reset",
        json={"phone": phone, "sms_code": code, "new_password": password, **extra},
        headers={**client.headers(), "X-Request-ID": "enum-reset"},
    )


async def test_password_reset_by_sms_code(client: Client, svc, probe, clock) -> None:
    school = await _school(client, svc)
    pair = await client.tokens(school["account"], school["password"])
    clock.advance(seconds=60)
    code = await client.code(school["phone"], "reset_password")
    weak = await _reset(client, school["phone"], code, "12345678")
    assert weak.status_code == 422
    assert (await _reset(client, school["phone"], code, "Reset-by-phone-7")).status_code == 204
    assert (await client.login(school["account"], "Reset-by-phone-7")).status_code == 200
    refreshed = await client.http.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 401
    events = await wait_events(probe, "identity.password.reset", lambda e: e["data"]["account"] == school["account"])
    assert events[0]["data"]["phone"] == school["phone"] and events[0]["data"].get("new_password") is None


async def test_reset_answers_alike_for_known_and_unknown_phones(client: Client, svc, clock) -> None:
    school = await _school(client, svc)
    clock.advance(seconds=60)
    unknown = new_phone()
    known_code = await client.code(school["phone"], "reset_password")
    await client.ask_code(unknown, "reset_password")
    wrong_known = await _reset(client, school["phone"], f"{(int(known_code) + 1) % 1_000_000:06d}", "Whatever-99x")
    guess_unknown = await _reset(client, unknown, known_code, "Whatever-99x")
    never_asked = await _reset(client, new_phone(), known_code, "Whatever-99x")
    assert wrong_known.status_code == 400 and problem(wrong_known)["code"] == "sms_code_invalid"
    assert same_answer(wrong_known, guess_unknown) and same_answer(wrong_known, never_asked)


@pytest.mark.parametrize("path", ["/api/v1/accounts/me", "/api/v1/accounts/sub-accounts"])
async def test_account_endpoints_need_a_token(svc, path: str) -> None:
    response = await svc.client.get(path)
    assert response.status_code == 401 and problem(response)["code"] == "unauthenticated"
