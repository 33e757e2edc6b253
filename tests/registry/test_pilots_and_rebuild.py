"""The pilot consumer is idempotent; departments list pilots in their scope; internal rebuild pages."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from services.registry import cli
from shared.contracts.applications import PilotGranted, PilotGrantedData
from shared.testing.harness import RunningService
from tests.registry.factories import GX_SCHOOL, Roles, publish


async def _pilot_rows(registry: RunningService, code: str) -> int:
    async with registry.runtime.sessionmaker() as session:
        return int(
            await session.scalar(text("SELECT count(*) FROM pilots WHERE institution_code = :c"), {"c": code}) or 0
        )


async def _until_handled(registry: RunningService, count: int) -> None:
    stats = registry.runtime.consumers.stats
    async with asyncio.timeout(20):
        while stats.handled + stats.duplicates < count:
            await asyncio.sleep(0.05)


def _granted(year: int, application: str) -> PilotGranted:
    data = PilotGrantedData(
        institution_code=GX_SCHOOL,
        institution_name="广西机电职业技术学院",
        province_code="45",
        city_code="4501",
        year=year,
        application_id=application,
    )
    return PilotGranted(subject=GX_SCHOOL, subject_version=1, data=data, producer="applications")


async def test_pilot_consumer_is_idempotent(
    servers, registry: RunningService, registry_namespace, roles: Roles
) -> None:
    stats = registry.runtime.consumers.stats
    start = stats.handled + stats.duplicates
    first = _granted(2026, str(uuid.uuid4()))
    await publish(servers.amqp_url, registry_namespace, first, times=3)  # redelivered copies of one event
    await publish(servers.amqp_url, registry_namespace, _granted(2026, str(uuid.uuid4())))  # a second grant, same year
    await publish(servers.amqp_url, registry_namespace, _granted(2025, str(uuid.uuid4())))
    await _until_handled(registry, start + 5)
    assert stats.duplicates >= 2
    assert await _pilot_rows(registry, GX_SCHOOL) == 2  # (2026) and (2025), once each

    listed = (
        await registry.client.get("/api/v1/pilot-institutions", params={"year": 2026}, headers=roles.province("45"))
    ).json()
    assert [(p["institution_code"], p["year"]) for p in listed["items"]] == [(GX_SCHOOL, 2026)]
    assert listed["items"][0]["application_id"] == str(first.data.application_id)
    city = (await registry.client.get("/api/v1/pilot-institutions", headers=roles.city("45", "4501"))).json()
    assert city["total"] == 2
    other_city = (await registry.client.get("/api/v1/pilot-institutions", headers=roles.city("45", "4502"))).json()
    assert other_city["total"] == 0
    other_province = (await registry.client.get("/api/v1/pilot-institutions", headers=roles.province("11"))).json()
    assert other_province["total"] == 0
    peek = await registry.client.get(
        "/api/v1/pilot-institutions", params={"province_code": "45"}, headers=roles.province("11")
    )
    assert peek.status_code == 404
    everyone = (
        await registry.client.get(
            "/api/v1/pilot-institutions", params={"province_code": "45"}, headers=roles.operator()
        )
    ).json()
    assert everyone["total"] == 2
    assert (await registry.client.get("/api/v1/pilot-institutions", headers=roles.school())).status_code == 403


async def test_rebuild_pages_cover_the_register(registry: RunningService) -> None:
    seen: list[dict] = []
    after = None
    while True:
        params = {"limit": 1000, **({"after": after} if after else {})}
        page = (await registry.client.get("/internal/v1/institutions", params=params)).json()
        seen.extend(page["items"])
        after = page["next"]
        if after is None:
            break
    codes = [i["code"] for i in seen]
    assert len(codes) >= 2919 and codes == sorted(set(codes))
    school = next(i for i in seen if i["code"] == GX_SCHOOL)
    assert school["province_code"] == "45" and school["city_code"] == "4501" and school["subject_version"] >= 1

    certificates = (await registry.client.get("/internal/v1/certificates", params={"limit": 5})).json()
    assert len(certificates["items"]) == 5 and certificates["next"] == certificates["items"][-1]["id"]
    rest = (
        await registry.client.get("/internal/v1/certificates", params={"after": certificates["next"], "limit": 1000})
    ).json()
    assert rest["next"] is None and rest["items"][0]["id"] > certificates["next"]
    assert {"major_codes", "org_name", "subject_version"} <= set(rest["items"][0])
    majors = (await registry.client.get("/internal/v1/majors", params={"after": "510200", "limit": 2})).json()
    assert [m["code"] for m in majors["items"]] == ["510201", "510202"]


async def test_seed_again_changes_nothing_and_emits_nothing(registry: RunningService) -> None:
    async def staged() -> int:
        async with registry.runtime.sessionmaker() as session:
            return int(await session.scalar(text("SELECT count(*) FROM outbox")) or 0)

    before = await staged()
    await cli._seed(registry.runtime.sessionmaker)
    assert await staged() == before
