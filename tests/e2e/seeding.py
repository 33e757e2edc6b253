"""Many school accounts at once, the way an operator's seed would make them: identity's own
`create_account` (the function behind `python -m services.identity.cli create-account`) run in-process
against the platform's identity database, so each account is announced by its event like any other.
Registering hundreds of schools through the SMS flow would only measure the SMS rate limits."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import httpx

from services.identity import service as identity
from shared.auth.principal import Role
from shared.db import make_engine, make_sessionmaker
from tests.e2e.api import Api, School, random_phone

SCHOOL_PASSWORD = "School#2026"


async def register_page(client: httpx.AsyncClient, province_code: str) -> list[dict[str, str]]:
    """Every institution of a province in the public register."""
    found: list[dict[str, str]] = []
    page = 1
    while True:
        response = await client.get(
            "/api/v1/institutions", params={"province_code": province_code, "page": page, "page_size": 100}
        )
        response.raise_for_status()
        items = response.json()["items"]
        found += items
        if len(items) < 100:
            return found
        page += 1


async def create_schools(
    api: Api,
    identity_db_url: str,
    *,
    province_code: str,
    count: int,
    exclude: set[str] = frozenset(),  # type: ignore[assignment]
    concurrency: int = 8,
    seed: int | None = None,
) -> list[School]:
    """`count` school accounts of the register in one province (account = institution code)."""
    rng = random.Random(seed)
    register = [i for i in await register_page(api.client, province_code) if i["code"] not in exclude]
    rng.shuffle(register)
    engine = make_engine(identity_db_url, pool_size=concurrency)
    sessions = make_sessionmaker(engine)
    gate = asyncio.Semaphore(concurrency)

    async def one(item: dict[str, str]) -> School | None:
        school = School(item["code"], item["name"], province_code, random_phone(rng))
        async with gate, sessions() as session:
            created = await identity.create_account(
                session=session,
                account=school.code,
                password=SCHOOL_PASSWORD,
                role=Role.institution,
                phone=school.phone,
                institution_code=school.code,
                province_code=province_code,
                now=datetime.now(UTC),
                exist_ok=True,
            )
        if created is None:  # an account of an earlier test: its phone and password are not ours
            return None
        school.account, school.password = school.code, SCHOOL_PASSWORD
        return school

    schools: list[School] = []
    try:
        while len(schools) < count:
            batch, register = register[: count - len(schools)], register[count - len(schools) :]
            if not batch:
                raise ValueError(f"not enough institutions without an account in {province_code} for {count}")
            schools += [s for s in await asyncio.gather(*(one(i) for i in batch)) if s is not None]
    finally:
        await engine.dispose()
    return schools


async def sign_in_and_complete(
    api: Api, schools: list[School], *, city_code: str, district_code: str, concurrency: int = 8
) -> None:
    """Each school logs in through the gateway (captcha included) and completes its profile."""
    gate = asyncio.Semaphore(concurrency)

    async def one(school: School) -> None:
        async with gate:
            school.token = await api.login(school.account, school.password)
            await api.complete_profile(school, city_code=city_code, district_code=district_code)

    await asyncio.gather(*(one(s) for s in schools))
