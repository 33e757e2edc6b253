"""Deadline reminder: 24 h before a plan closes, one SMS and one in-app notice per plan and
institution with an unsubmitted draft, once, with two instances running and across a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from shared.contracts import applications as app_events
from shared.contracts.plans import PlanChanged
from shared.testing.harness import RunningService
from tests.notify import factories as f
from tests.notify.conftest import StartNotify, notices, notify_settings, rows, sms_rows, workers_of

NAME = "reminder"


@pytest.fixture(scope="module")
def settings(servers: Any, run_id: str) -> Any:
    return notify_settings(servers, run_id, NAME, app_env="dev")


@pytest.fixture(scope="module")
def clock() -> f.MutableClock:
    return f.MutableClock()


@pytest.fixture(scope="module")
async def first(settings: Any, start_notify: StartNotify, clock: f.MutableClock) -> AsyncIterator[RunningService]:
    async with start_notify(settings, clock=clock) as running:
        yield running


@pytest.fixture(scope="module")
async def bus(first: RunningService, servers: Any, run_id: str) -> AsyncIterator[f.Publisher]:
    async with f.Publisher(servers.amqp_url, f"t{run_id}.{NAME}") as publisher:
        yield publisher


async def scans(*instances: RunningService, more_than: dict[int, int] | None = None, extra: int = 3) -> None:
    """Wait until every instance has run its reminder job `extra` more times."""
    start = more_than or {id(i): workers_of(i).stats.reminder_scans for i in instances}

    async def enough() -> bool:
        return all(workers_of(i).stats.reminder_scans >= start[id(i)] + extra for i in instances)

    await f.eventually(enough)


async def test_reminder_fires_once_per_plan_and_institution(
    first: RunningService,
    settings: Any,
    start_notify: StartNotify,
    bus: f.Publisher,
    clock: f.MutableClock,
    tokens: Any,
) -> None:
    plan = f.plan_data(closes_at=clock.now + timedelta(days=3), title="2026年广西第二批试点申报")
    drafting, submitted, deleted = f.School(), f.School(), f.School()
    sub = f.sub_account_created(drafting)
    await bus.publish(*(f.account_registered(s) for s in (drafting, submitted, deleted)), sub, f.plan_published(plan))
    two_drafts = [f.application_data(drafting, plan) for _ in range(2)]  # two drafts, still one reminder
    sent_app = f.application_data(submitted, plan)
    gone = f.application_data(deleted, plan)
    await bus.publish(
        # The submission arrives before the older "created": the older copy must not revive the draft.
        f.application_event(app_events.ApplicationSubmitted, sent_app, status="pending", version=2),
        *(f.application_event(app_events.ApplicationCreated, a) for a in [*two_drafts, sent_app, gone]),
        f.application_event(app_events.ApplicationDeleted, gone, version=2),
        f.application_event(app_events.ApplicationUpdated, two_drafts[0], version=2, trainees_total=80),
    )

    async def tracked() -> bool:
        found = await rows(first, "SELECT status, version FROM applications WHERE plan_id = :plan", plan=plan.id)
        versions = sorted(r.version for r in found if r.status == "draft")
        return sorted(r.status for r in found) == ["deleted", "draft", "draft", "pending"] and versions == [1, 2]

    await f.eventually(tracked)
    async with start_notify(settings, clock=clock, migrate=False, drop=False) as second:
        clock.now = plan.closes_at - timedelta(hours=24, seconds=1)  # one second too early
        await scans(first, second)
        assert await rows(first, "SELECT * FROM reminders") == []

        clock.now = plan.closes_at - timedelta(hours=23)
        await f.eventually(lambda: rows(first, "SELECT * FROM reminders"))
        await scans(first, second)  # both instances keep scanning: nothing more happens

    async with start_notify(settings, clock=clock, migrate=False, drop=False) as restarted:
        await scans(first, restarted)
        [reminder] = await rows(first, "SELECT * FROM reminders")
        assert (reminder.plan_id, reminder.institution_code) == (plan.id, drafting.code)

        async def reminded() -> list[Any]:
            found = await sms_rows(first, drafting.phone, "deadline_reminder")
            return found if found and found[0].state == "sent" else []

        [sms] = await f.eventually(reminded)
        deadline = f"{plan.closes_at.astimezone(f.SHANGHAI):%-m月%-d日%H:%M}"
        assert (
            sms.body == f"【1+X证书】2026年广西第二批试点申报将于{deadline}截止，您单位尚有未提交的申报，请及时提交。"
        )
        for other in (submitted, deleted):
            assert await sms_rows(first, other.phone, "deadline_reminder") == []
        for account_id in (drafting.account_id, sub.data.account_id):
            found = [n for n in await notices(first, tokens, account_id) if n["title"] == "申报即将截止"]
            assert len(found) == 1
        for other in (submitted, deleted):
            assert [n for n in await notices(first, tokens, other.account_id) if n["title"] == "申报即将截止"] == []


async def test_no_reminder_for_a_closed_plan(first: RunningService, bus: f.Publisher, clock: f.MutableClock) -> None:
    plan = f.plan_data(closes_at=clock.now + timedelta(hours=10))
    school = f.School()
    await bus.publish(f.account_registered(school), f.plan_published(plan), f.plan_closed(plan))
    await f.eventually(lambda: rows(first, "SELECT 1 FROM plans WHERE id = :id AND closed", id=plan.id))
    app = f.application_data(school, plan)
    await bus.publish(f.application_event(app_events.ApplicationCreated, app))

    async def ready() -> list[Any]:
        return await rows(first, "SELECT 1 FROM applications WHERE plan_id = :id", id=plan.id)

    await f.eventually(ready)
    await scans(first)
    assert await rows(first, "SELECT * FROM reminders WHERE plan_id = :id", id=plan.id) == []


async def test_a_deadline_moved_later_moves_the_reminder(
    first: RunningService, bus: f.Publisher, clock: f.MutableClock
) -> None:
    plan = f.plan_data(closes_at=clock.now + timedelta(hours=30))
    moved = plan.model_copy(update={"closes_at": plan.closes_at + timedelta(hours=30)})
    school = f.School()
    await bus.publish(
        f.account_registered(school),
        f.plan_published(plan),
        PlanChanged(subject=plan.id, subject_version=2, data=moved),
    )

    async def deadline_moved() -> bool:
        found = await rows(first, "SELECT closes_at FROM plans WHERE id = :id", id=plan.id)
        return bool(found and found[0].closes_at == moved.closes_at)

    await f.eventually(deadline_moved)
    app = f.application_data(school, plan)  # the draft still names the old deadline: the plan's copy wins
    await bus.publish(f.application_event(app_events.ApplicationCreated, app))
    await f.eventually(lambda: rows(first, "SELECT 1 FROM applications WHERE id = :id", id=app["id"]))
    clock.now = plan.closes_at - timedelta(hours=23)
    await scans(first)
    assert await rows(first, "SELECT * FROM reminders WHERE plan_id = :id", id=plan.id) == []
    clock.now = moved.closes_at - timedelta(hours=23)
    await f.eventually(lambda: rows(first, "SELECT * FROM reminders WHERE plan_id = :id", id=plan.id))
