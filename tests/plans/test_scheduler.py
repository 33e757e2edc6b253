"""The window scheduler: each opening and closing announced exactly once, with two instances running,
across restarts (a transition missed while down is announced at start), and again after a reopening."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from services.plans.scheduler import WindowScheduler
from shared.testing.bus import BusProbe, bus_probe
from shared.testing.harness import RunningService
from tests.plans.factories import T0, FakeClock, Roles, plan_body, plans_service, plans_settings

OPENED, CLOSED = "plans.plan.opened", "plans.plan.closed"
PUBLISHED, CHANGED = "plans.plan.published", "plans.plan.changed"


@pytest.fixture(scope="module")
async def probe(servers, run_id) -> AsyncIterator[BusProbe]:
    async with bus_probe(servers.amqp_url, f"t{run_id}", "plans.#") as found:
        yield found


@pytest.fixture(scope="module")
def roles(tokens) -> Roles:
    return Roles(tokens)


async def published_plan(svc: RunningService, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    created = await svc.client.post("/api/v1/plans", json=plan_body(**body), headers=headers)
    assert created.status_code == 201, created.text
    published = await svc.client.post(f"/api/v1/plans/{created.json()['id']}/publish", headers=headers)
    assert published.status_code == 200, published.text
    return published.json()


async def outbox_counts(svc: RunningService, subjects: list[str]) -> tuple[Counter[str], int]:
    """Events staged for these plans by type, and how many rows of the outbox are still unsent."""
    async with svc.runtime.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT payload->>'type' AS type FROM outbox WHERE payload->>'subject' = ANY(:subjects)"),
                {"subjects": subjects},
            )
        ).all()
        unsent = (await conn.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))).scalar_one()
    return Counter(row.type for row in rows), int(unsent)


async def settled(svc: RunningService, probe: BusProbe, subjects: list[str]) -> list[dict[str, Any]]:
    """Wait until every staged event of these plans is sent and has reached the probe; return them."""

    async def done() -> list[dict[str, Any]] | None:
        staged, unsent = await outbox_counts(svc, subjects)
        received = [e for e in probe.events if e["subject"] in subjects]
        return received if unsent == 0 and len(received) >= sum(staged.values()) else None

    for _ in range(200):
        received = await done()
        if received is not None:
            return received
        await asyncio.sleep(0.05)
    raise AssertionError("events of the plans never settled")


async def wait_event(probe: BusProbe, event_type: str, subject: str, timeout: float) -> list[dict[str, Any]]:
    def matching() -> list[dict[str, Any]]:
        return [e for e in probe.of_type(event_type) if e["subject"] == subject]

    async def arrived() -> None:
        async with probe._arrived:
            await probe._arrived.wait_for(lambda: bool(matching()))

    await asyncio.wait_for(arrived(), timeout)
    return matching()


def scheduler_of(svc: RunningService) -> WindowScheduler:
    scheduler: WindowScheduler = svc.app.state.scheduler
    return scheduler


async def test_two_instances_announce_each_transition_once(servers, run_id, tokens, roles, probe) -> None:
    clock = FakeClock()
    settings = plans_settings(servers, run_id, "plans_sched_two", scheduler_max_sleep_seconds=0.05)
    async with (
        plans_service(settings, tokens, clock) as first,
        plans_service(settings, tokens, clock, migrate=False, drop=False) as second,
    ):
        plans = []
        for i in range(12):
            opens = T0 + timedelta(minutes=1 + i)
            plans.append(
                await published_plan(
                    (first, second)[i % 2],
                    roles.p44,
                    batch=i + 1,
                    opens_at=opens.isoformat(),
                    closes_at=(opens + timedelta(minutes=10)).isoformat(),
                )
            )
        subjects = [p["id"] for p in plans]
        for _ in range(25):
            clock.advance(minutes=1)
            # Besides both background loops, tick both instances at once a few times to force the race.
            await asyncio.gather(*(scheduler_of(s).run_once() for s in (first, second, first, second)))
        received = await settled(first, probe, subjects)
        staged, _ = await outbox_counts(first, subjects)
    per_plan = Counter((e["type"], e["subject"]) for e in received)
    assert staged == Counter({PUBLISHED: 12, OPENED: 12, CLOSED: 12})
    assert all(per_plan[(kind, s)] == 1 for kind in (PUBLISHED, OPENED, CLOSED) for s in subjects), per_plan
    assert len(received) == 36
    for subject in subjects:
        versions = {e["type"]: e["subject_version"] for e in received if e["subject"] == subject}
        assert versions[PUBLISHED] < versions[OPENED] < versions[CLOSED]
    assert scheduler_of(first).announced + scheduler_of(second).announced == 24


async def test_a_transition_missed_while_down_is_announced_at_start(servers, run_id, tokens, roles, probe) -> None:
    clock = FakeClock()
    settings = plans_settings(servers, run_id, "plans_sched_restart")
    async with plans_service(settings, tokens, clock, drop=False) as svc:
        plan = await published_plan(svc, roles.p11, batch=1)
        early = await published_plan(
            svc,
            roles.p11,
            batch=2,
            opens_at=(T0 - timedelta(days=1)).isoformat(),
            closes_at=(T0 + timedelta(hours=1)).isoformat(),
        )
        subjects = [plan["id"], early["id"]]
        await wait_event(probe, OPENED, early["id"], timeout=10)
        await settled(svc, probe, subjects)
        assert [e["type"] for e in probe.events if e["subject"] == early["id"]] == [PUBLISHED, OPENED]
    # Nobody runs while both windows open and close.
    clock.set(datetime.fromisoformat(plan["closes_at"]) + timedelta(hours=1))
    async with plans_service(settings, tokens, clock, migrate=False, drop=False) as svc:
        # No request and no explicit tick: only the scheduler's start can announce these.
        await wait_event(probe, CLOSED, plan["id"], timeout=10)
        await wait_event(probe, CLOSED, early["id"], timeout=10)
        received = await settled(svc, probe, subjects)
        assert [e["type"] for e in received if e["subject"] == plan["id"]] == [PUBLISHED, OPENED, CLOSED]
        assert [e["type"] for e in received if e["subject"] == early["id"]] == [PUBLISHED, OPENED, CLOSED]
        now = await svc.client.get(f"/api/v1/plans/{plan['id']}", headers=roles.s11)
        assert now.json()["status"] == "closed"
    # A further restart announces nothing again.
    async with plans_service(settings, tokens, clock, migrate=False, drop=True) as svc:
        await scheduler_of(svc).run_once()
        staged, _ = await outbox_counts(svc, subjects)
        assert staged == Counter({PUBLISHED: 2, OPENED: 2, CLOSED: 2})
        received = await settled(svc, probe, subjects)
    assert Counter(e["type"] for e in received) == Counter({PUBLISHED: 2, OPENED: 2, CLOSED: 2})


async def test_a_reopened_plan_is_announced_closed_again(servers, run_id, tokens, roles, probe) -> None:
    clock = FakeClock()
    settings = plans_settings(servers, run_id, "plans_sched_reopen")
    async with plans_service(settings, tokens, clock) as svc:
        plan = await published_plan(svc, roles.p11, batch=1)
        closes = datetime.fromisoformat(plan["closes_at"])
        clock.set(closes + timedelta(minutes=1))
        await scheduler_of(svc).run_once()
        later = closes + timedelta(days=2)
        moved = await svc.client.patch(
            f"/api/v1/plans/{plan['id']}", json={"closes_at": later.isoformat()}, headers=roles.p11
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == "open"
        await scheduler_of(svc).run_once()
        clock.set(later + timedelta(seconds=1))
        await scheduler_of(svc).run_once()
        received = await settled(svc, probe, [plan["id"]])
    assert [e["type"] for e in received] == [PUBLISHED, OPENED, CLOSED, CHANGED, CLOSED]
    versions = [e["subject_version"] for e in received]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


async def test_publishing_an_open_plan_wakes_the_scheduler_at_once(servers, run_id, tokens, roles, probe) -> None:
    clock = FakeClock()
    # A long sleep: only the wake-up after publishing can explain a prompt announcement.
    settings = plans_settings(servers, run_id, "plans_sched_wake", scheduler_max_sleep_seconds=60)
    async with plans_service(settings, tokens, clock) as svc:
        scheduler = scheduler_of(svc)
        while scheduler.ticks == 0:  # its first tick found nothing; it now sleeps for a minute
            await asyncio.sleep(0.01)
        plan = await published_plan(svc, roles.p11, batch=1, opens_at=(T0 - timedelta(hours=1)).isoformat())
        [opened] = await wait_event(probe, OPENED, plan["id"], timeout=5)
        assert opened["data"]["state"] == "published"


async def test_the_scheduler_sleeps_until_the_next_transition(servers, run_id, tokens, roles) -> None:
    clock = FakeClock()
    settings = plans_settings(servers, run_id, "plans_sched_sleep", scheduler_max_sleep_seconds=30)
    async with plans_service(settings, tokens, clock) as svc:
        scheduler = scheduler_of(svc)
        assert await scheduler.run_once() == 30  # nothing pending: the longest sleep
        plan = await published_plan(svc, roles.p11, batch=1, opens_at=(T0 + timedelta(seconds=7)).isoformat())
        assert await scheduler.run_once() == pytest.approx(7)
        clock.set(datetime.fromisoformat(plan["opens_at"]))
        assert await scheduler.run_once() == 30  # opened; the close is ten days away
