"""In-app notifications per account: pages, the unread filter, mark read, and errors as problems."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared.contracts import applications as app_events
from shared.testing.harness import RunningService
from tests.notify import factories as f
from tests.notify.conftest import StartNotify, notify_settings

NAME = "inapp"


@pytest.fixture(scope="module")
async def notify(servers: Any, run_id: str, start_notify: StartNotify) -> AsyncIterator[RunningService]:
    async with start_notify(notify_settings(servers, run_id, NAME, app_env="dev")) as running:
        yield running


@pytest.fixture(scope="module")
async def school_with_notices(notify: RunningService, servers: Any, run_id: str, tokens: Any) -> dict[str, Any]:
    """A school with 12 in-app notices (review results), published as real events."""
    school = f.School()
    async with f.Publisher(servers.amqp_url, f"t{run_id}.{NAME}") as bus:
        await bus.publish(f.account_registered(school))
        await f.eventually(lambda: _inbox(notify, school.phone))
        plan = f.plan_data()
        results = [
            f.review(
                app_events.ApplicationRejected,
                f.application_data(school, plan, status="rejected", version=3),
                stage="provincial",
                decision="reject",
                comment=f"理由{i}",
            )
            for i in range(12)
        ]
        await bus.publish(*results)
    headers = tokens.headers("institution", account_id=school.account_id, institution_code=school.code)

    async def all_there() -> bool:
        response = await notify.client.get("/api/v1/notifications", headers=headers)
        return bool(response.json()["total"] == 12)

    await f.eventually(all_there)
    return {"school": school, "headers": headers}


async def _inbox(notify: RunningService, phone: str) -> list[Any]:
    response = await notify.client.get("/api/v1/dev/sms", params={"phone": phone})
    items: list[Any] = response.json()
    return items


async def test_pages_of_ten_newest_first(notify: RunningService, school_with_notices: dict[str, Any]) -> None:
    headers = school_with_notices["headers"]
    first = (await notify.client.get("/api/v1/notifications", headers=headers)).json()
    assert (first["total"], first["page"], first["page_size"], len(first["items"])) == (12, 1, 10, 10)
    second = (await notify.client.get("/api/v1/notifications", params={"page": 2}, headers=headers)).json()
    assert len(second["items"]) == 2
    everything = first["items"] + second["items"]
    assert len({n["id"] for n in everything}) == 12
    stamps = [n["created_at"] for n in everything]
    assert stamps == sorted(stamps, reverse=True)
    assert all(set(n) == {"id", "title", "body", "created_at", "read_at"} for n in everything)


async def test_mark_read_and_unread_filter(notify: RunningService, school_with_notices: dict[str, Any]) -> None:
    headers = school_with_notices["headers"]
    items = (await notify.client.get("/api/v1/notifications", params={"page_size": 3}, headers=headers)).json()["items"]
    for notice in items[:2]:
        response = await notify.client.post(f"/api/v1/notifications/{notice['id']}/read", headers=headers)
        assert response.status_code == 204
    again = await notify.client.post(f"/api/v1/notifications/{items[0]['id']}/read", headers=headers)
    assert again.status_code == 204  # idempotent
    unread = (await notify.client.get("/api/v1/notifications", params={"unread": "true"}, headers=headers)).json()
    assert unread["total"] == 10 and items[0]["id"] not in {n["id"] for n in unread["items"]}
    read = (await notify.client.get("/api/v1/notifications", params={"unread": "false"}, headers=headers)).json()
    assert {n["id"] for n in read["items"]} == {items[0]["id"], items[1]["id"]}
    assert all(n["read_at"] for n in read["items"])


async def test_another_accounts_notice_is_not_found(
    notify: RunningService, school_with_notices: dict[str, Any], tokens: Any
) -> None:
    headers = school_with_notices["headers"]
    notice = (await notify.client.get("/api/v1/notifications", headers=headers)).json()["items"][0]
    stranger = tokens.headers("institution", account_id=str(uuid.uuid4()))
    response = await notify.client.post(f"/api/v1/notifications/{notice['id']}/read", headers=stranger)
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert (await notify.client.get("/api/v1/notifications", headers=stranger)).json()["total"] == 0
    missing = await notify.client.post(f"/api/v1/notifications/{uuid.uuid4()}/read", headers=headers)
    assert missing.status_code == 404


async def test_bad_requests_are_problems(notify: RunningService, tokens: Any) -> None:
    anonymous = await notify.client.get("/api/v1/notifications")
    assert anonymous.status_code == 401 and anonymous.headers["content-type"] == "application/problem+json"
    headers = tokens.headers("institution")
    bad_id = await notify.client.post("/api/v1/notifications/not-a-uuid/read", headers=headers)
    assert bad_id.status_code == 422 and bad_id.json()["code"] == "validation_error"
    bad_page = await notify.client.get("/api/v1/notifications", params={"page_size": 500}, headers=headers)
    assert bad_page.status_code == 422
    bad_phone = await notify.client.get("/api/v1/dev/sms", params={"phone": "12345"})
    assert bad_phone.status_code == 422 and bad_phone.json()["errors"][0]["field"] == "phone"


async def test_openapi_documents_every_route_with_its_problems(notify: RunningService) -> None:
    response = await notify.client.get("/api/v1/openapi/notify.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {
        "/api/v1/notifications",
        "/api/v1/notifications/{notification_id}/read",
        "/api/v1/sms-messages",
        "/api/v1/sms-messages/{message_id}/resend",
        "/api/v1/dev/sms",
    } <= set(paths)
    read = paths["/api/v1/notifications/{notification_id}/read"]["post"]["responses"]
    assert {"204", "401", "404", "422"} <= set(read)
    assert "application/problem+json" in read["404"]["content"]
