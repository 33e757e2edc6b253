"""The plans API through the real app, real PostgreSQL and RabbitMQ, with an injected clock."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.testing.bus import BusProbe, bus_probe
from shared.testing.harness import RunningService
from tests.plans.factories import T0, FakeClock, Roles, plan_body, plans_service, plans_settings

SECOND = timedelta(seconds=1)
_batches = itertools.count(1)


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
async def svc(servers, run_id, tokens, clock) -> AsyncIterator[RunningService]:
    async with plans_service(plans_settings(servers, run_id, "plans_api"), tokens, clock) as running:
        yield running


@pytest.fixture(scope="module")
async def probe(servers, run_id) -> AsyncIterator[BusProbe]:
    async with bus_probe(servers.amqp_url, f"t{run_id}", "plans.#") as found:
        yield found


@pytest.fixture(scope="module")
def roles(tokens) -> Roles:
    return Roles(tokens)


@pytest.fixture(autouse=True)
def reset_clock(clock: FakeClock) -> None:
    clock.set(T0)


async def create(svc: RunningService, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body = plan_body(batch=next(_batches), **overrides)
    response = await svc.client.post("/api/v1/plans", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def publish(svc: RunningService, headers: dict[str, str], plan: dict[str, Any]) -> dict[str, Any]:
    response = await svc.client.post(f"/api/v1/plans/{plan['id']}/publish", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def of_subject(probe: BusProbe, event_type: str, subject: str) -> list[dict[str, Any]]:
    return [e for e in probe.of_type(event_type) if e["subject"] == subject]


async def wait_subject(probe: BusProbe, event_type: str, subject: str, count: int = 1) -> list[dict[str, Any]]:
    import asyncio

    async def enough() -> None:
        async with probe._arrived:
            await probe._arrived.wait_for(lambda: len(of_subject(probe, event_type, subject)) >= count)

    await asyncio.wait_for(enough(), 10)
    return of_subject(probe, event_type, subject)


# --- creating ---------------------------------------------------------------------------------------


async def test_create_gives_a_draft_with_its_label_and_shanghai_times(svc, roles) -> None:
    batch = next(_batches)
    body = plan_body(batch=batch, opens_at="2026-03-02T09:00:00", closes_at="2026-03-12T17:30:00+08:00")
    response = await svc.client.post("/api/v1/plans", json=body, headers=roles.p11)
    assert response.status_code == 201, response.text
    plan = response.json()
    assert plan["province_code"] == "11"
    assert (plan["state"], plan["status"], plan["version"]) == ("draft", "draft", 1)
    assert plan["batch"] == batch
    assert plan["batch_label"].startswith("2026年第") and plan["batch_label"].endswith("次")
    assert plan["opens_at"] == "2026-03-02T09:00:00+08:00"  # a naive time is meant in Asia/Shanghai
    assert plan["closes_at"] == "2026-03-12T17:30:00+08:00"
    assert (plan["by_major"], plan["municipal_review"]) == (True, True)


async def test_first_batch_is_labelled_like_the_seeds(svc, roles) -> None:
    response = await svc.client.post("/api/v1/plans", json=plan_body(year=2020, batch=1), headers=roles.p44)
    assert response.status_code == 201
    assert response.json()["batch_label"] == "2020年第一次"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"closes_at": (T0 + timedelta(days=1)).isoformat()}, "closes_at"),  # equal to opens_at
        ({"closes_at": T0.isoformat()}, "closes_at"),  # before opens_at
        ({"year": 1990}, "year"),
        ({"batch": 0}, "batch"),
        ({"title": "   "}, "title"),
        ({"opens_at": "next monday"}, "opens_at"),
        ({"by_major": None}, "by_major"),
        ({"opens_at": "0001-01-01T00:00:00"}, "opens_at"),
        ({"closes_at": "9999-12-31T23:59:59+08:00"}, "closes_at"),
        ({"opens_at": "0001-01-01T00:00:00+08:00"}, "opens_at"),  # overflows when moved to UTC+8
        ({"opens_at": "0001-01-01T00:00:00+14:00"}, "opens_at"),
        ({"closes_at": "9999-12-31T23:59:59-12:00"}, "closes_at"),
        ({"title": "长" * 201}, "title"),
        ({"title": "bad\u0000title"}, "title"),
        ({"year": 10**30}, "year"),
        ({"opens_at": 10**20}, "opens_at"),
    ],
)
async def test_bad_input_is_a_validation_problem(svc, roles, overrides, field) -> None:
    response = await svc.client.post("/api/v1/plans", json=plan_body(**{"batch": 50, **overrides}), headers=roles.p11)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert field in {e["field"] for e in problem["errors"]}
    assert problem["detail"]


async def test_batch_is_unique_per_province_and_year(svc, roles) -> None:
    first = await create(svc, roles.p11, year=2027)
    again = await svc.client.post("/api/v1/plans", json=plan_body(year=2027, batch=first["batch"]), headers=roles.p11)
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate_batch"
    other_year = await svc.client.post(
        "/api/v1/plans", json=plan_body(year=2028, batch=first["batch"]), headers=roles.p11
    )
    assert other_year.status_code == 201
    other_province = await svc.client.post(
        "/api/v1/plans", json=plan_body(year=2027, batch=first["batch"]), headers=roles.p44
    )
    assert other_province.status_code == 201


async def test_only_a_provincial_account_writes(svc, roles) -> None:
    draft = await create(svc, roles.p11)
    url = f"/api/v1/plans/{draft['id']}"
    assert (await svc.client.post("/api/v1/plans", json=plan_body())).status_code == 401
    assert (await svc.client.patch(url, json={"title": "x"})).status_code == 401
    for headers in (roles.s11, roles.sub11, roles.m11, roles.org, roles.operator):
        writes = [
            await svc.client.post("/api/v1/plans", json=plan_body(batch=60), headers=headers),
            await svc.client.patch(url, json={"title": "x"}, headers=headers),
            await svc.client.post(f"{url}/publish", headers=headers),
            await svc.client.delete(url, headers=headers),
        ]
        for response in writes:
            assert response.status_code == 403, response.request.url
            assert response.json()["code"] == "forbidden"
    unchanged = await svc.client.get(url, headers=roles.p11)
    assert unchanged.json() == draft


# --- publishing ---------------------------------------------------------------------------------------


async def test_publish_announces_the_whole_plan(svc, roles, probe) -> None:
    draft = await create(svc, roles.p11, by_major=False, municipal_review=False)
    plan = await publish(svc, roles.p11, draft)
    assert (plan["state"], plan["status"]) == ("published", "upcoming")
    assert plan["version"] == draft["version"] + 1
    [event] = await wait_subject(probe, "plans.plan.published", plan["id"])
    assert event["subject_version"] == plan["version"]
    assert event["producer"] == "plans"
    data = event["data"]
    assert data["id"] == plan["id"] and data["province_code"] == "11" and data["state"] == "published"
    assert (data["by_major"], data["municipal_review"]) == (False, False)
    assert data["batch_label"] == plan["batch_label"]
    assert datetime.fromisoformat(data["closes_at"]) == datetime.fromisoformat(plan["closes_at"])


async def test_publishing_twice_is_refused(svc, roles) -> None:
    plan = await publish(svc, roles.p11, await create(svc, roles.p11))
    again = await svc.client.post(f"/api/v1/plans/{plan['id']}/publish", headers=roles.p11)
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"


async def test_publishing_a_plan_whose_window_is_over_is_refused(svc, roles, clock) -> None:
    draft = await create(svc, roles.p11)
    closes = datetime.fromisoformat(draft["closes_at"])
    clock.set(closes + SECOND)
    late = await svc.client.post(f"/api/v1/plans/{draft['id']}/publish", headers=roles.p11)
    assert late.status_code == 409
    assert late.json()["code"] == "plan_window_over"
    assert late.json()["detail"]
    clock.set(closes)  # the deadline itself is already over
    assert (await svc.client.post(f"/api/v1/plans/{draft['id']}/publish", headers=roles.p11)).status_code == 409
    clock.set(closes - SECOND)
    in_time = await publish(svc, roles.p11, draft)
    assert in_time["status"] == "open"


async def test_a_plan_already_open_may_still_be_published(svc, roles, clock) -> None:
    draft = await create(svc, roles.p11)
    clock.set(datetime.fromisoformat(draft["opens_at"]) + timedelta(hours=1))
    assert (await publish(svc, roles.p11, draft))["status"] == "open"


# --- the window -----------------------------------------------------------------------------------------


async def test_status_one_second_around_each_edge(svc, roles, clock) -> None:
    plan = await publish(svc, roles.p11, await create(svc, roles.p11))
    opens, closes = datetime.fromisoformat(plan["opens_at"]), datetime.fromisoformat(plan["closes_at"])
    expected = [
        (opens - SECOND, "upcoming"),
        (opens, "open"),
        (opens + SECOND, "open"),
        (closes - SECOND, "open"),
        (closes, "closed"),
        (closes + SECOND, "closed"),
    ]
    for when, status in expected:
        clock.set(when)
        got = await svc.client.get(f"/api/v1/plans/{plan['id']}", headers=roles.s11)
        assert got.json()["status"] == status, when
        listed = await svc.client.get("/api/v1/plans", params={"status": status, "page_size": 100}, headers=roles.s11)
        assert plan["id"] in {p["id"] for p in listed.json()["items"]}, when
        others = {"upcoming", "open", "closed"} - {status}
        for other in others:
            listed = await svc.client.get(
                "/api/v1/plans", params={"status": other, "page_size": 100}, headers=roles.s11
            )
            assert plan["id"] not in {p["id"] for p in listed.json()["items"]}, (when, other)


# --- editing ------------------------------------------------------------------------------------------


async def test_a_draft_changes_freely_and_silently(svc, roles, probe) -> None:
    draft = await create(svc, roles.p11)
    changes = {
        "title": "改过的标题",
        "by_major": False,
        "municipal_review": False,
        "opens_at": "2026-04-01T08:00:00",
        "closes_at": "2026-04-30T18:00:00",
        "year": 2029,
    }
    response = await svc.client.patch(f"/api/v1/plans/{draft['id']}", json=changes, headers=roles.p11)
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["title"] == "改过的标题" and plan["year"] == 2029 and plan["batch_label"].startswith("2029年")
    assert plan["opens_at"] == "2026-04-01T08:00:00+08:00"
    assert plan["version"] == 2
    bad = await svc.client.patch(
        f"/api/v1/plans/{draft['id']}", json={"closes_at": "2026-03-01T00:00:00"}, headers=roles.p11
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "closes_at"
    null = await svc.client.patch(f"/api/v1/plans/{draft['id']}", json={"title": None}, headers=roles.p11)
    assert null.status_code == 422
    assert of_subject(probe, "plans.plan.changed", draft["id"]) == []


async def test_a_draft_cannot_take_a_batch_already_used(svc, roles) -> None:
    taken = await create(svc, roles.p11, year=2032)
    draft = await create(svc, roles.p11, year=2032)
    response = await svc.client.patch(f"/api/v1/plans/{draft['id']}", json={"batch": taken["batch"]}, headers=roles.p11)
    assert response.status_code == 409 and response.json()["code"] == "duplicate_batch"
    assert (await svc.client.get(f"/api/v1/plans/{draft['id']}", headers=roles.p11)).json()["batch"] == draft["batch"]


async def test_openapi_documents_the_public_routes_only(svc) -> None:
    document = (await svc.client.get("/api/v1/openapi/plans.json")).json()
    plan_paths = {p for p in document["paths"] if "plans" in p}
    assert plan_paths == {"/api/v1/plans", "/api/v1/plans/{plan_id}", "/api/v1/plans/{plan_id}/publish"}
    patch = document["paths"]["/api/v1/plans/{plan_id}"]["patch"]["responses"]
    assert {"401", "403", "404", "409", "422"} <= set(patch)
    assert "Problem" in document["components"]["schemas"]


async def test_a_draft_can_be_deleted(svc, roles) -> None:
    draft = await create(svc, roles.p11)
    assert (await svc.client.delete(f"/api/v1/plans/{draft['id']}", headers=roles.p11)).status_code == 204
    assert (await svc.client.get(f"/api/v1/plans/{draft['id']}", headers=roles.p11)).status_code == 404
    # its batch is free again
    again = await svc.client.post("/api/v1/plans", json=plan_body(batch=draft["batch"]), headers=roles.p11)
    assert again.status_code == 201


async def test_a_published_plan_keeps_its_rules(svc, roles) -> None:
    plan = await publish(svc, roles.p11, await create(svc, roles.p11))
    refused = [
        {"title": "新标题"},
        {"by_major": False},
        {"municipal_review": False},
        {"opens_at": "2026-03-01T00:00:00+08:00"},
        {"batch": 98},
        {"closes_at": (datetime.fromisoformat(plan["closes_at"]) - SECOND).isoformat()},
    ]
    for change in refused:
        response = await svc.client.patch(f"/api/v1/plans/{plan['id']}", json=change, headers=roles.p11)
        assert response.status_code == 409, change
        assert response.json()["code"] == "not_editable"
        assert response.json()["errors"][0]["field"] == next(iter(change))
    deleted = await svc.client.delete(f"/api/v1/plans/{plan['id']}", headers=roles.p11)
    assert deleted.status_code == 409 and deleted.json()["code"] == "not_editable"
    unchanged = await svc.client.get(f"/api/v1/plans/{plan['id']}", headers=roles.p11)
    assert unchanged.json() == plan


async def test_a_later_close_is_accepted_and_announced(svc, roles, probe) -> None:
    plan = await publish(svc, roles.p11, await create(svc, roles.p11))
    later = (datetime.fromisoformat(plan["closes_at"]) + timedelta(days=3)).isoformat()
    form = {k: plan[k] for k in ("year", "batch", "title", "opens_at", "by_major", "municipal_review")}
    response = await svc.client.patch(
        f"/api/v1/plans/{plan['id']}", json={**form, "closes_at": later}, headers=roles.p11
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert datetime.fromisoformat(changed["closes_at"]) == datetime.fromisoformat(later)
    assert changed["version"] == plan["version"] + 1
    [event] = await wait_subject(probe, "plans.plan.changed", plan["id"])
    assert event["subject_version"] == changed["version"]
    assert datetime.fromisoformat(event["data"]["closes_at"]) == datetime.fromisoformat(later)


# --- scope ---------------------------------------------------------------------------------------------


async def test_scope_matrix(svc, roles) -> None:
    d11 = await create(svc, roles.p11)
    p11 = await publish(svc, roles.p11, await create(svc, roles.p11))
    d44 = await create(svc, roles.p44)
    p44 = await publish(svc, roles.p44, await create(svc, roles.p44))
    plans = {"d11": d11, "p11": p11, "d44": d44, "p44": p44}
    visible = {
        "p11": {"d11", "p11"},
        "p44": {"d44", "p44"},
        "m11": {"p11"},
        "m44": {"p44"},
        "s11": {"p11"},
        "sub11": {"p11"},
        "s44": {"p44"},
        "org": {"p11", "p44"},
        "operator": {"d11", "p11", "d44", "p44"},
    }
    for who, sees in visible.items():
        headers = getattr(roles, who)
        for name, plan in plans.items():
            response = await svc.client.get(f"/api/v1/plans/{plan['id']}", headers=headers)
            assert response.status_code == (200 if name in sees else 404), (who, name)
        listed = await svc.client.get("/api/v1/plans", params={"page_size": 100}, headers=headers)
        ids = {p["id"] for p in listed.json()["items"]}
        assert {name for name, plan in plans.items() if plan["id"] in ids} == sees, who
    assert (await svc.client.get(f"/api/v1/plans/{p11['id']}")).status_code == 401


async def test_a_province_cannot_touch_another_provinces_plans(svc, roles) -> None:
    d44 = await create(svc, roles.p44)
    p44 = await publish(svc, roles.p44, await create(svc, roles.p44))
    for plan in (d44, p44):
        url = f"/api/v1/plans/{plan['id']}"
        patched = await svc.client.patch(url, json={"title": "篡改"}, headers=roles.p11)
        assert patched.status_code == 404 and patched.json()["code"] == "not_found"
        assert (await svc.client.post(f"{url}/publish", headers=roles.p11)).status_code == 404
        assert (await svc.client.delete(url, headers=roles.p11)).status_code == 404
    still = await svc.client.get(f"/api/v1/plans/{d44['id']}", headers=roles.p44)
    assert still.json()["title"] == d44["title"] and still.json()["state"] == "draft"


async def test_schools_filtering_another_province_see_nothing(svc, roles) -> None:
    await publish(svc, roles.p44, await create(svc, roles.p44))
    response = await svc.client.get("/api/v1/plans", params={"province_code": "44"}, headers=roles.s11)
    assert response.status_code == 200
    assert response.json()["total"] == 0 and response.json()["items"] == []


async def test_list_filters_and_pages(svc, roles) -> None:
    for _ in range(3):
        await create(svc, roles.p44, year=2031)
    first = await svc.client.get("/api/v1/plans", params={"year": 2031, "page_size": 2, "page": 1}, headers=roles.p44)
    second = await svc.client.get("/api/v1/plans", params={"year": 2031, "page_size": 2, "page": 2}, headers=roles.p44)
    assert first.json()["total"] == 3 and len(first.json()["items"]) == 2 and len(second.json()["items"]) == 1
    assert {p["year"] for p in first.json()["items"] + second.json()["items"]} == {2031}
    drafts = await svc.client.get("/api/v1/plans", params={"year": 2031, "status": "draft"}, headers=roles.p44)
    assert drafts.json()["total"] == 3
    bad = await svc.client.get("/api/v1/plans", params={"status": "maybe"}, headers=roles.p44)
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    bad_province = await svc.client.get("/api/v1/plans", params={"province_code": "beijing"}, headers=roles.p44)
    assert bad_province.status_code == 422


async def test_unknown_or_malformed_ids_are_problems(svc, roles) -> None:
    missing = await svc.client.get("/api/v1/plans/8d3f2c1e-0000-4000-8000-000000000000", headers=roles.operator)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    malformed = await svc.client.get("/api/v1/plans/not-a-uuid", headers=roles.operator)
    assert malformed.status_code == 422 and malformed.json()["code"] == "validation_error"


# --- rebuilding a copy ----------------------------------------------------------------------------------


async def test_internal_rebuild_pages_through_published_plans(svc, roles) -> None:
    draft = await create(svc, roles.p11)
    published = [await publish(svc, roles.p44, await create(svc, roles.p44)) for _ in range(3)]
    seen: dict[str, dict[str, Any]] = {}
    after: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if after:
            params["after"] = after
        response = await svc.client.get("/internal/v1/plans", params=params)
        assert response.status_code == 200
        body = response.json()
        pages += 1
        assert len(body["items"]) <= 2
        seen.update({item["id"]: item for item in body["items"]})
        if body["next"] is None:
            break
        after = body["next"]
    assert pages >= 2
    assert draft["id"] not in seen
    assert all(item["state"] == "published" for item in seen.values())
    for plan in published:
        current = (await svc.client.get(f"/api/v1/plans/{plan['id']}", headers=roles.operator)).json()
        item = seen[plan["id"]]
        assert item["subject_version"] == current["version"]
        assert (item["province_code"], item["year"], item["batch"]) == ("44", current["year"], current["batch"])


async def test_two_editors_of_one_draft_cannot_overwrite_each_other(svc, roles) -> None:
    draft = await create(svc, roles.p11)
    url = f"/api/v1/plans/{draft['id']}"
    etag = (await svc.client.get(url, headers=roles.p11)).headers["etag"]
    assert etag == f'"{draft["version"]}"'
    first = await svc.client.patch(url, json={"title": "甲的标题"}, headers={**roles.p11, "If-Match": etag})
    assert first.status_code == 200 and first.headers["etag"] == f'"{draft["version"] + 1}"'
    second = await svc.client.patch(url, json={"title": "乙的标题"}, headers={**roles.p11, "If-Match": etag})
    assert second.status_code == 412 and second.json()["code"] == "version_conflict"
    assert (await svc.client.get(url, headers=roles.p11)).json()["title"] == "甲的标题"
