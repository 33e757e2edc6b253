"""Each event type produces the right message for the right recipients (dev provider, dev inbox).

Events are real contract events published on the run's bus; effects are read through the API."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared.contracts import applications as app_events
from shared.testing.harness import RunningService
from tests.notify import factories as f
from tests.notify.conftest import StartNotify, notices, notify_settings, rows, sms_rows, workers_of

NAME = "events"


@pytest.fixture(scope="module")
async def notify(servers: Any, run_id: str, start_notify: StartNotify) -> AsyncIterator[RunningService]:
    async with start_notify(notify_settings(servers, run_id, NAME, app_env="dev")) as running:
        yield running


@pytest.fixture(scope="module")
async def bus(notify: RunningService, servers: Any, run_id: str) -> AsyncIterator[f.Publisher]:
    async with f.Publisher(servers.amqp_url, f"t{run_id}.{NAME}") as publisher:
        yield publisher


async def inbox(notify: RunningService, phone: str) -> list[dict[str, Any]]:
    response = await notify.client.get("/api/v1/dev/sms", params={"phone": phone})
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()
    return messages


async def sent_inbox(notify: RunningService, phone: str, count: int = 1) -> list[dict[str, Any]]:
    async def ready() -> list[dict[str, Any]]:
        messages = await inbox(notify, phone)
        return messages if len(messages) >= count and all(m["status"] == "sent" for m in messages) else []

    return await f.eventually(ready)


async def known_accounts(notify: RunningService, *account_ids: str) -> None:
    async def all_known() -> bool:
        found = await rows(
            notify, "SELECT account_id FROM accounts WHERE account_id = ANY(:ids)", ids=list(account_ids)
        )
        return len(found) == len(account_ids)

    await f.eventually(all_known)


async def test_verification_code_is_sent_then_masked(notify: RunningService, bus: f.Publisher) -> None:
    phone = f.new_phone()
    await bus.publish(f.sms_code_requested(phone=phone, code="583920", purpose="reset_password"))
    [message] = await sent_inbox(notify, phone)
    assert message["body"] == "【1+X证书】验证码583920，5分钟内有效，仅用于重置密码，请勿泄露。"
    [row] = await sms_rows(notify, phone)
    assert row.state == "sent" and row.purpose == "verification_code"
    assert "583920" not in row.body and "******" in row.body


async def test_registration_sends_account_and_password_then_masks_it(notify: RunningService, bus: f.Publisher) -> None:
    school = f.School()
    await bus.publish(f.account_registered(school, password="Zq8#mW3kPa"))
    [message] = await sent_inbox(notify, school.phone)
    assert f"账号{school.code}" in message["body"] and "初始密码Zq8#mW3kPa" in message["body"]
    [row] = await sms_rows(notify, school.phone)
    assert "Zq8#mW3kPa" not in row.body and school.code in row.body
    [account] = await rows(notify, "SELECT * FROM accounts WHERE account_id = :id", id=school.account_id)
    assert account.is_primary and account.phone == school.phone and account.institution_code == school.code


async def test_password_reset_by_code_and_by_department(notify: RunningService, bus: f.Publisher) -> None:
    school = f.School()
    await bus.publish(f.password_reset(school))
    [message] = await sent_inbox(notify, school.phone)
    assert message["body"] == f"【1+X证书】账号{school.code}的密码已重置。如非本人操作，请立即联系管理员。"
    by_department = f.password_reset(school)
    by_department.data.new_password = "Nw4#tY7uIo"
    await bus.publish(by_department)
    newest, _ = await sent_inbox(notify, school.phone, count=2)
    assert "新密码Nw4#tY7uIo" in newest["body"]
    masked = await sms_rows(notify, school.phone, "password_reset_by_department")
    assert "Nw4#tY7uIo" not in masked[0].body


async def test_review_results_go_to_the_registered_mobile_and_every_account(
    notify: RunningService, bus: f.Publisher, tokens: Any
) -> None:
    school, other = f.School(), f.School(province_code="45")
    sub = f.sub_account_created(school)
    await bus.publish(f.account_registered(school), sub, f.account_registered(other))
    await known_accounts(notify, school.account_id, sub.data.account_id, other.account_id)
    plan = f.plan_data()
    approved = f.application_data(school, plan, status="approved", version=5, approved_trainees=120)
    rejected = f.application_data(school, plan, status="rejected", version=3, certificate_name="云计算开发与运维")
    returned = f.application_data(school, plan, status="draft", version=4, level="senior")
    await bus.publish(
        f.review(app_events.ApplicationApproved, approved, stage="provincial", decision="approve"),
        f.review(app_events.ApplicationRejected, rejected, stage="provincial", decision="reject", comment="师资不足"),
        f.review(
            app_events.ApplicationReturned, returned, stage="provincial", decision="return", returned_reason="补充场地"
        ),
    )
    messages = await sent_inbox(notify, school.phone, count=1 + 3)  # registration + three results
    bodies = {m["body"] for m in messages}
    assert "【1+X证书】您单位申报的Web前端开发（中级）已审核通过，批准培训120人。" in bodies
    assert "【1+X证书】您单位申报的云计算开发与运维（中级）未通过审核，原因：师资不足" in bodies
    deadline = f"{plan.closes_at.astimezone(f.SHANGHAI):%-m月%-d日%H:%M}"
    assert f"【1+X证书】您单位申报的Web前端开发（高级）被退回修改：补充场地。请于{deadline}前重新提交。" in bodies
    assert await inbox(notify, sub.data.phone) == []  # only the registered mobile gets the SMS
    for account_id in (school.account_id, sub.data.account_id):
        titles = sorted(
            n["title"] for n in await f.eventually(functools.partial(_at_least, notify, tokens, account_id, 3))
        )
        assert titles == ["申报审核通过", "申报未通过审核", "申报被退回修改"]
    assert await notices(notify, tokens, other.account_id) == []
    assert len(await inbox(notify, other.phone)) == 1  # its registration only


async def _at_least(notify: RunningService, tokens: Any, account_id: str, count: int) -> list[dict[str, Any]]:
    items = await notices(notify, tokens, account_id)
    return items if len(items) >= count else []


async def test_municipal_pass_is_announced_and_provincial_review_has_no_extra_sms(
    notify: RunningService, bus: f.Publisher, tokens: Any
) -> None:
    school = f.School()
    await bus.publish(f.account_registered(school))
    await known_accounts(notify, school.account_id)
    plan = f.plan_data()
    app = f.application_data(school, plan, status="pending", review_stage="provincial", version=3)
    final = {**app, "status": "approved", "version": 4, "approved_trainees": 50}
    await bus.publish(
        f.review(app_events.ApplicationReviewed, app, stage="municipal", decision="approve"),
        f.review(app_events.ApplicationReviewed, final, stage="provincial", decision="approve"),
        f.review(app_events.ApplicationApproved, final, stage="provincial", decision="approve"),
    )
    messages = await sent_inbox(notify, school.phone, count=3)
    bodies = [m["body"] for m in messages]
    assert "【1+X证书】您单位申报的Web前端开发（中级）已通过市级审核，待省级审核。" in bodies
    assert "【1+X证书】您单位申报的Web前端开发（中级）已审核通过，批准培训50人。" in bodies
    await f.eventually(lambda: _at_least(notify, tokens, school.account_id, 2))
    assert len(await sms_rows(notify, school.phone)) == 3  # registration, municipal pass, approval


async def test_plan_publication_reaches_every_school_account_of_the_province_only(
    notify: RunningService, bus: f.Publisher, tokens: Any
) -> None:
    guangxi, beijing = f.School(province_code="45"), f.School(province_code="11", city_code="1101")
    sub = f.sub_account_created(guangxi)
    reviewer = f.department_created(role="provincial", province_code="45")
    await bus.publish(f.account_registered(guangxi), sub, f.account_registered(beijing), reviewer)
    await known_accounts(notify, guangxi.account_id, sub.data.account_id, beijing.account_id, reviewer.data.account_id)
    plan = f.plan_data(province_code="45", title="2027年广西第一批试点申报")
    await bus.publish(f.plan_published(plan))
    for account_id in (guangxi.account_id, sub.data.account_id):
        [notice] = await f.eventually(functools.partial(_at_least, notify, tokens, account_id, 1))
        assert notice["title"] == "新的申报计划已发布" and "2027年广西第一批试点申报" in notice["body"]
        assert notice["read_at"] is None
    assert await notices(notify, tokens, beijing.account_id) == []
    assert await notices(notify, tokens, reviewer.data.account_id) == []


async def test_removed_account_gets_no_further_notices(notify: RunningService, bus: f.Publisher, tokens: Any) -> None:
    school = f.School()
    sub = f.sub_account_created(school)
    await bus.publish(f.account_registered(school), sub)
    await known_accounts(notify, school.account_id, sub.data.account_id)
    await bus.publish(f.account_removed(sub))

    async def removed() -> bool:
        found = await rows(notify, "SELECT removed FROM accounts WHERE account_id = :id", id=sub.data.account_id)
        return bool(found and found[0].removed)

    await f.eventually(removed)
    app = f.application_data(school, f.plan_data(), status="approved", version=4, approved_trainees=30)
    await bus.publish(f.review(app_events.ApplicationApproved, app, stage="provincial", decision="approve"))
    await f.eventually(lambda: _at_least(notify, tokens, school.account_id, 1))
    assert await notices(notify, tokens, sub.data.account_id) == []


async def test_submissions_reach_the_reviewers_of_their_stage_as_one_digest(
    notify: RunningService, bus: f.Publisher, tokens: Any
) -> None:
    city = f.department_created(role="municipal", province_code="45", city_code="4501")
    other_city = f.department_created(role="municipal", province_code="45", city_code="4502")
    province = f.department_created(role="provincial", province_code="45")
    other_province = f.department_created(role="provincial", province_code="11")
    reviewers = (city, other_city, province, other_province)
    await workers_of(notify).digest()  # announce what earlier tests queued, before these reviewers exist
    await bus.publish(*reviewers)
    await known_accounts(notify, *(r.data.account_id for r in reviewers))
    plan, school = f.plan_data(), f.School()
    city_apps = [
        f.application_data(school, plan, status="pending", review_stage="municipal", version=2) for _ in range(3)
    ]
    province_app = f.application_data(f.School(), plan, status="pending", review_stage="provincial", version=2)
    await bus.publish(*(f.application_event(app_events.ApplicationSubmitted, a) for a in [*city_apps, province_app]))

    async def queued(count: int) -> bool:
        waiting = await rows(notify, "SELECT 1 FROM review_queue WHERE digested_at IS NULL")
        return len(waiting) >= count

    await f.eventually(lambda: queued(4))
    await workers_of(notify).digest()
    [city_notice] = await notices(notify, tokens, city.data.account_id)
    assert city_notice["title"] == "新的申报待审核" and "有3份" in city_notice["body"] and "市级" in city_notice["body"]
    [province_notice] = await notices(notify, tokens, province.data.account_id)
    assert "有1份" in province_notice["body"] and "省级" in province_notice["body"]
    assert await notices(notify, tokens, other_city.data.account_id) == []
    assert await notices(notify, tokens, other_province.data.account_id) == []

    # A municipal pass puts the application in the province's queue: the next digest says so.
    passed = {**city_apps[0], "review_stage": "provincial", "version": 3}
    await bus.publish(f.review(app_events.ApplicationReviewed, passed, stage="municipal", decision="approve"))
    await f.eventually(lambda: queued(1))
    await workers_of(notify).digest()
    await workers_of(notify).digest()  # nothing new: no notice
    assert len(await notices(notify, tokens, province.data.account_id)) == 2
    assert len(await notices(notify, tokens, city.data.account_id)) == 1


async def test_a_redelivered_event_sends_no_second_sms(notify: RunningService, bus: f.Publisher) -> None:
    phone = f.new_phone()
    event = f.sms_code_requested(phone=phone)
    duplicates_before = notify.runtime.consumers.stats.duplicates
    await bus.publish(event, event, event)
    await sent_inbox(notify, phone)
    await f.eventually(lambda: _true(notify.runtime.consumers.stats.duplicates >= duplicates_before + 2))
    assert len(await sms_rows(notify, phone)) == 1
    assert len(await inbox(notify, phone)) == 1


async def _true(value: bool) -> bool:
    return value


async def test_a_result_for_a_school_without_a_known_mobile_alerts_the_operators(
    notify: RunningService, bus: f.Publisher, tokens: Any
) -> None:
    operator = f.department_created(role="operator", province_code="")
    await bus.publish(operator)
    await known_accounts(notify, operator.data.account_id)
    unknown = f.School()  # its registration never reached notify
    approved = f.application_data(unknown, f.plan_data(), status="approved", version=2, approved_trainees=30)
    event = f.review(app_events.ApplicationApproved, approved, stage="provincial", decision="approve")
    await bus.publish(event, event)  # redelivered: still one alert

    async def alerts() -> list[dict[str, Any]]:
        response = await notify.client.get(
            "/api/v1/notifications", headers=tokens.headers("operator", account_id=operator.data.account_id)
        )
        return [n for n in response.json()["items"] if unknown.code in n["body"]]

    [alert] = await f.eventually(alerts)
    assert alert["title"] == "短信无法发送" and "审核通过" in alert["body"]
    assert await rows(notify, "SELECT id FROM sms_messages WHERE source_event_id = :s", s=str(event.id)) == []
