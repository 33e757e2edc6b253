"""Delivery through the HTTP provider to a local fake gateway: retries, final failures, exactly one
SMS per event across duplicates and a second instance, secrets masked after sending and never logged."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from shared.contracts import applications as app_events
from shared.testing.bus import BusProbe, bus_probe
from shared.testing.harness import RunningService
from tests.notify import factories as f
from tests.notify.conftest import StartNotify, notify_settings, rows, sms_rows

NAME = "delivery"


@pytest.fixture(scope="module")
async def gateway() -> AsyncIterator[f.FakeGateway]:
    async with f.fake_gateway() as fake:
        yield fake


@pytest.fixture
def fresh_gateway(gateway: f.FakeGateway) -> f.FakeGateway:
    gateway.script.clear()
    gateway.default = 200
    return gateway


@pytest.fixture(scope="module")
def settings(servers: Any, run_id: str, gateway: f.FakeGateway) -> Any:
    return notify_settings(servers, run_id, NAME, sms_provider="http", sms_gateway_url=gateway.url)


@pytest.fixture(scope="module")
async def notify(settings: Any, start_notify: StartNotify) -> AsyncIterator[RunningService]:
    async with start_notify(settings) as running:
        yield running


@pytest.fixture(scope="module")
async def probe(notify: RunningService, servers: Any, run_id: str) -> AsyncIterator[BusProbe]:
    async with bus_probe(servers.amqp_url, f"t{run_id}.{NAME}", "notify.#") as collected:
        yield collected


@pytest.fixture(scope="module")
async def bus(notify: RunningService, servers: Any, run_id: str) -> AsyncIterator[f.Publisher]:
    async with f.Publisher(servers.amqp_url, f"t{run_id}.{NAME}") as publisher:
        yield publisher


async def final_row(notify: RunningService, phone: str) -> Any:
    async def done() -> Any:
        found = await sms_rows(notify, phone)
        return found[0] if found and found[0].state in ("sent", "failed") else None

    return await f.eventually(done)


async def sms_counter(notify: RunningService, outcome: str, purpose: str) -> float:
    """The value of `onex_sms_<outcome>_total{purpose=...}` on the service's /metrics."""
    text = (await notify.client.get("/metrics")).text
    prefix = f'onex_sms_{outcome}_total{{purpose="{purpose}"}} '
    return next((float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)), 0.0)


def events_for(probe: BusProbe, event_type: str, message_id: uuid.UUID) -> list[dict[str, Any]]:
    return [e for e in probe.of_type(event_type) if e["data"]["message_id"] == str(message_id)]


async def test_provider_failing_twice_then_succeeding_sends_once(
    notify: RunningService, bus: f.Publisher, probe: BusProbe, fresh_gateway: f.FakeGateway
) -> None:
    fresh_gateway.script.extend([503, "timeout"])  # a server error, then no answer within the timeout
    sent_before = await sms_counter(notify, "sent", "verification_code")
    phone = f.new_phone()
    await bus.publish(f.sms_code_requested(phone=phone, code="720415"))
    row = await final_row(notify, phone)
    assert row.state == "sent" and row.attempts == 3
    attempts = [r for r in fresh_gateway.requests if r["phone"] == phone]
    assert len(attempts) == 3 and {r["key"] for r in attempts} == {str(row.id)}
    assert fresh_gateway.phone_messages(phone) == ["【1+X证书】验证码720415，5分钟内有效，仅用于注册，请勿泄露。"]
    await probe.wait_for("notify.sms.sent")
    [sent] = events_for(probe, "notify.sms.sent", row.id)
    assert sent["data"]["attempts"] == 3 and sent["data"]["phone_masked"] == phone[:3] + "****" + phone[-4:]
    assert events_for(probe, "notify.sms.failed", row.id) == []
    assert await sms_counter(notify, "sent", "verification_code") >= sent_before + 1

    async def logged() -> list[Any]:
        return await rows(notify, "SELECT * FROM sms_delivery_log WHERE message_id = :id", id=str(row.id))

    [entry] = await f.eventually(logged)
    assert entry.outcome == "sent" and entry.attempts == 3


async def test_provider_always_failing_ends_failed_with_an_event_and_an_operator_alert(
    notify: RunningService, bus: f.Publisher, probe: BusProbe, fresh_gateway: f.FakeGateway, tokens: Any
) -> None:
    operator = f.department_created(role="operator", province_code="")
    await bus.publish(operator)
    fresh_gateway.default = 503
    failed_before = await sms_counter(notify, "failed", "verification_code")
    phone = f.new_phone()
    await bus.publish(f.sms_code_requested(phone=phone, code="660311"))
    row = await final_row(notify, phone)
    assert row.state == "failed" and row.attempts == 3  # one attempt plus the two configured retries
    assert "660311" not in row.body and row.last_error == "gateway answered HTTP 503"
    assert fresh_gateway.phone_messages(phone) == []

    async def failed_event() -> list[dict[str, Any]]:
        return events_for(probe, "notify.sms.failed", row.id)

    [failed] = await f.eventually(failed_event)
    assert failed["data"]["purpose"] == "verification_code" and failed["data"]["attempts"] == 3
    assert await sms_counter(notify, "failed", "verification_code") >= failed_before + 1

    async def alert() -> list[dict[str, Any]]:
        response = await notify.client.get(
            "/api/v1/notifications", headers=tokens.headers("operator", account_id=operator.data.account_id)
        )
        return [n for n in response.json()["items"] if n["title"] == "短信发送失败" and phone[-4:] in n["body"]]

    [notice] = await f.eventually(alert)
    assert "3次尝试" in notice["body"]
    listed = await notify.client.get(
        "/api/v1/sms-messages", params={"state": "failed", "phone": phone}, headers=tokens.headers("operator")
    )
    assert listed.status_code == 200
    [item] = listed.json()["items"]
    assert (
        item["body_masked"].startswith("【1+X证书】验证码******") and item["last_error"] == "gateway answered HTTP 503"
    )
    school = await notify.client.get("/api/v1/sms-messages", headers=tokens.headers("institution"))
    assert school.status_code == 403


async def test_a_refused_message_fails_at_once(
    notify: RunningService, bus: f.Publisher, probe: BusProbe, fresh_gateway: f.FakeGateway
) -> None:
    fresh_gateway.script.append(400)
    phone = f.new_phone()
    await bus.publish(f.sms_code_requested(phone=phone))
    row = await final_row(notify, phone)
    assert row.state == "failed" and row.attempts == 1
    assert len([r for r in fresh_gateway.requests if r["phone"] == phone]) == 1
    await f.eventually(lambda: _nonempty(events_for(probe, "notify.sms.failed", row.id)))


async def _nonempty(items: list[Any]) -> list[Any]:
    return items


async def test_duplicates_and_a_second_instance_send_one_sms_per_event(
    notify: RunningService,
    settings: Any,
    start_notify: StartNotify,
    bus: f.Publisher,
    fresh_gateway: f.FakeGateway,
) -> None:
    async with start_notify(settings, drop=False, migrate=False) as second:
        schools = [f.School() for _ in range(5)]
        registered = [f.account_registered(s) for s in schools]
        await bus.publish(*registered, *registered)
        plan = f.plan_data()
        decisions = [
            f.review(
                app_events.ApplicationApproved,
                f.application_data(s, plan, status="approved", version=4, approved_trainees=40),
                stage="provincial",
                decision="approve",
            )
            for s in schools
        ]
        await bus.publish(*decisions, *decisions, *reversed(decisions))

        async def all_sent() -> bool:
            found = await rows(
                notify, "SELECT 1 FROM sms_messages WHERE phone = ANY(:phones) AND state = 'sent'",
                phones=[s.phone for s in schools],
            )  # fmt: skip
            return len(found) >= 2 * len(schools)

        await f.eventually(all_sent)
        stats = [notify.runtime.consumers.stats, second.runtime.consumers.stats]
        await f.eventually(lambda: _true(sum(s.duplicates for s in stats) >= 10))
        assert all(s.handled > 0 for s in stats), "both instances consumed"
    for school in schools:
        messages = fresh_gateway.phone_messages(school.phone)
        assert len(messages) == 2, messages  # registration and approval, once each
        assert len([r for r in fresh_gateway.requests if r["phone"] == school.phone]) == 2
        assert len(await sms_rows(notify, school.phone)) == 2


async def _true(value: bool) -> bool:
    return value


async def test_secrets_are_masked_after_sending_and_never_logged(
    notify: RunningService, bus: f.Publisher, probe: BusProbe, fresh_gateway: f.FakeGateway
) -> None:
    fresh_gateway.script.append(503)  # a retry too: its log lines must not carry the secret either
    school = f.School()
    code, password = "904617", "Hs5#vB8nQe"
    with capture_logs() as logs:
        await bus.publish(
            f.sms_code_requested(phone=school.phone, code=code), f.account_registered(school, password=password)
        )

        async def both_sent() -> list[Any]:
            found = await sms_rows(notify, school.phone)
            return found if len(found) == 2 and all(r.state == "sent" for r in found) else []

        sent = await f.eventually(both_sent)
        await f.eventually(lambda: _true(len([e for e in probe.of_type("notify.sms.sent")]) >= 2))
    assert any(code in m for m in fresh_gateway.phone_messages(school.phone))  # the phone got it
    assert any(password in m for m in fresh_gateway.phone_messages(school.phone))
    for row in sent:
        assert code not in row.body and password not in row.body and "******" in row.body
    everything_stored = await rows(notify, "SELECT * FROM sms_messages")
    assert not [r for r in everything_stored if code in str(tuple(r)) or password in str(tuple(r))]
    assert logs, "the flow logged something"
    for entry in logs:
        assert code not in repr(entry) and password not in repr(entry), entry
    for event in probe.events:
        assert code not in repr(event) and password not in repr(event)


async def test_dev_inbox_is_not_served_outside_dev(notify: RunningService) -> None:
    response = await notify.client.get("/api/v1/dev/sms", params={"phone": "13800000001"})
    assert response.status_code == 404 and response.json()["code"] == "not_found"


async def test_an_intent_that_cannot_be_stored_is_parked_without_its_secret_in_any_log(
    notify: RunningService, bus: f.Publisher
) -> None:
    parked_before = notify.runtime.consumers.stats.parked
    with capture_logs() as logs:
        await bus.publish(f.sms_code_requested(phone="1" * 30, code="271828"))  # too long for the phone column
        await f.eventually(lambda: _true(notify.runtime.consumers.stats.parked > parked_before))
    [parked] = [e for e in logs if e.get("event") == "event_parked"]
    assert "could not record the SMS intent" in parked["error"]
    for entry in logs:
        assert "271828" not in repr(entry), entry


async def test_operator_resends_a_failed_result_but_never_a_masked_code(
    notify: RunningService, bus: f.Publisher, fresh_gateway: f.FakeGateway, tokens: Any
) -> None:
    school = f.School()
    await bus.publish(f.account_registered(school))
    await final_row(notify, school.phone)
    fresh_gateway.default = 503
    approved = f.application_data(school, f.plan_data(), status="approved", version=4, approved_trainees=80)
    await bus.publish(f.review(app_events.ApplicationApproved, approved, stage="provincial", decision="approve"))

    async def failed(phone: str, purpose: str) -> Any:
        found = await sms_rows(notify, phone, purpose)
        return found[0] if found and found[0].state == "failed" else None

    result = await f.eventually(lambda: failed(school.phone, "approved"))
    code_phone = f.new_phone()
    await bus.publish(f.sms_code_requested(phone=code_phone))
    code = await f.eventually(lambda: failed(code_phone, "verification_code"))
    fresh_gateway.default = 200

    operator = tokens.headers("operator")
    response = await notify.client.post(f"/api/v1/sms-messages/{result.id}/resend", headers=operator)
    assert response.status_code == 202 and response.json()["state"] == "pending"

    async def sent() -> Any:
        found = await sms_rows(notify, school.phone, "approved")
        return found[0] if found[0].state == "sent" else None

    await f.eventually(sent)
    assert fresh_gateway.phone_messages(school.phone)[-1].endswith("已审核通过，批准培训80人。")
    again = await notify.client.post(f"/api/v1/sms-messages/{result.id}/resend", headers=operator)
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    masked = await notify.client.post(f"/api/v1/sms-messages/{code.id}/resend", headers=operator)
    assert masked.status_code == 409 and "验证码" in masked.json()["detail"]
    unknown = await notify.client.post(f"/api/v1/sms-messages/{uuid.uuid4()}/resend", headers=operator)
    assert unknown.status_code == 404
    school_token = tokens.headers("institution", account_id=school.account_id)
    assert (
        await notify.client.post(f"/api/v1/sms-messages/{result.id}/resend", headers=school_token)
    ).status_code == 403
