"""Scaling out: two instances each of applications and notify behind the gateway. Requests reach both
applications instances, both notify instances consume events, and every approval gives exactly one SMS."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from deploy.platform import Platform
from tests.e2e.api import Api, plain_body, wait_for
from tests.e2e.metrics import scrape, total
from tests.e2e.seeding import create_schools, sign_in_and_complete

SCHOOLS, CERTIFICATES = 4, 5


async def http_requests(client: httpx.AsyncClient, platform: Platform, service: str) -> dict[str, float]:
    """API requests (not probes) each instance of a service has answered so far."""
    counts = {}
    for instance in platform.instances():
        if instance.service == service:
            samples = await scrape(client, instance.url)
            counts[instance.name] = total(samples, "onex_http_requests_total", route="/api/v1/*")
    return counts


async def handled_events(client: httpx.AsyncClient, platform: Platform, service: str) -> dict[str, float]:
    counts = {}
    for instance in platform.instances():
        if instance.service == service:
            samples = await scrape(client, instance.url)
            counts[instance.name] = total(samples, "onex_consumer_events_total", outcome="handled")
    return counts


async def test_two_instances_share_requests_and_events_and_each_approval_sends_one_sms(
    api: Api, platform: Platform | None
) -> None:
    if platform is None:
        pytest.skip("needs the test's own platform (instance metrics)")
    assert platform.scale["applications"] == 2 and platform.scale["notify"] == 2
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as direct:
        requests_before = await http_requests(direct, platform, "applications")
        events_before = await handled_events(direct, platform, "notify")

        schools = await create_schools(
            api, platform.database_url("identity"), province_code="11", count=SCHOOLS, exclude={"4111010853"}
        )
        await sign_in_and_complete(api, schools, city_code="1101", district_code="110102")
        province = await api.login("bj_province")
        certificates = (await api.certificates())[:CERTIFICATES]

        async def apply_all(school_index: int) -> list[tuple[str, str]]:
            school = schools[school_index]
            plan = await api.open_plan(school.token)
            done = []
            for certificate in certificates:
                draft = await api.save_draft(school.token, plain_body(plan, certificate, trainees=30))
                await api.submit(school.token, draft["id"])
                done.append((school.phone, draft["id"]))
            return done

        applied = [pair for batch in await asyncio.gather(*map(apply_all, range(SCHOOLS))) for pair in batch]
        for _phone, application_id in applied:
            await wait_for(lambda a=application_id: api.listed(province, a, status="pending"), what="pending")
            await api.review(province, application_id, "approve", approved_trainees=25)

        per_phone = Counter(phone for phone, _ in applied)
        for phone, expected in per_phone.items():
            bodies = await api.wait_sms(phone, "审核通过", count=expected)
            assert len(bodies) == expected, bodies
            assert len(set(bodies)) == expected, f"a certificate's approval SMS came twice: {bodies}"

        requests_after = await http_requests(direct, platform, "applications")
        served = {name: requests_after[name] - requests_before.get(name, 0) for name in requests_after}
        assert len(served) == 2 and all(n >= 10 for n in served.values()), f"requests per instance: {served}"

        events_after = await handled_events(direct, platform, "notify")
        consumed = {name: events_after[name] - events_before.get(name, 0) for name in events_after}
        assert len(consumed) == 2 and all(n > 0 for n in consumed.values()), f"events per notify instance: {consumed}"

        # Settled: still exactly one approval SMS per application, nothing arrived late twice.
        for phone, expected in per_phone.items():
            assert len(await api.wait_sms(phone, "审核通过", count=expected)) == expected
