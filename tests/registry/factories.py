"""Builders for registry tests: tokens per role, valid base info, CSV/XLSX uploads, bus publishing."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aio_pika
import httpx
from openpyxl import Workbook

from services.registry.domain import USCC_CHARSET, uscc_check_char
from shared.contracts.envelope import Event
from shared.testing.bus import BusProbe
from shared.testing.tokens import TestTokens

GX_SCHOOL = "4145010867"  # 广西机电职业技术学院, 南宁市 4501
BJ_SCHOOL = "4111010853"  # 北京工业职业技术学院, 北京 1101
GENERIC_HEADER = ("code", "name", "type", "province_code", "city_code", "district_code")


def uscc(seed: int) -> str:
    """A valid unified social credit code (GB 32100-2015 check digit) derived from `seed`."""
    body = f"12450100{seed:09d}"[:17]
    return body + uscc_check_char(body)


def corrupt_check_digit(code: str) -> str:
    wrong = next(ch for ch in USCC_CHARSET if ch != code[-1])
    return code[:-1] + wrong


def full_profile(**overrides: Any) -> dict[str, Any]:
    profile = {
        "type": "higher_vocational",
        "uscc": uscc(1),
        "website": "https://www.gxcme.edu.cn",
        "province_code": "45",
        "city_code": "4501",
        "district_code": "450103",
        "address": "南宁市青秀区东葛路",
        "contact_name": "张老师",
        "contact_phone": "13800000001",
        "contact_email": "office@gxcme.edu.cn",
    }
    profile.update(overrides)
    return profile


class Roles:
    """Authorization headers per role and scope."""

    def __init__(self, tokens: TestTokens) -> None:
        self.tokens = tokens

    def school(self, code: str = GX_SCHOOL, province: str = "45", city: str = "4501") -> dict[str, str]:
        return self.tokens.headers("institution", institution_code=code, province_code=province, city_code=city)

    def sub(self, code: str = GX_SCHOOL) -> dict[str, str]:
        return self.tokens.headers("institution_sub", institution_code=code, province_code="45", city_code="4501")

    def province(self, code: str) -> dict[str, str]:
        return self.tokens.headers("provincial", province_code=code)

    def city(self, province: str, city: str) -> dict[str, str]:
        return self.tokens.headers("municipal", province_code=province, city_code=city)

    def operator(self) -> dict[str, str]:
        return self.tokens.headers("operator")

    def org(self, org_id: str) -> dict[str, str]:
        return self.tokens.headers("org", org_id=org_id)


def csv_bytes(rows: Sequence[Sequence[str]], header: Sequence[str] = GENERIC_HEADER) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def xlsx_bytes(rows: Sequence[Sequence[Any]], header: Sequence[str] = GENERIC_HEADER) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


async def publish(amqp_url: str, namespace: str, event: Event[Any], times: int = 1) -> None:
    """Put an event on the run's exchange as another service's relay would (possibly redelivered)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(f"{namespace}.events", aio_pika.ExchangeType.TOPIC, durable=True)
        body = json.dumps(json.loads(event.model_dump_json())).encode()
        for _ in range(times):
            await exchange.publish(
                aio_pika.Message(body, message_id=str(event.id), content_type="application/json"),
                routing_key=event.routing_key,
            )


async def events_matching(
    probe: BusProbe, event_type: str, predicate: Callable[[dict[str, Any]], bool], count: int, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Wait until `count` events of the type satisfy `predicate` (the probe wakes us on every arrival)."""

    def found() -> list[dict[str, Any]]:
        return [e for e in probe.of_type(event_type) if predicate(e)]

    async def enough() -> None:
        async with probe._arrived:
            await probe._arrived.wait_for(lambda: len(found()) >= count)

    await asyncio.wait_for(enough(), timeout)
    return found()


def broken_xlsx_bytes(part: str, replacement: bytes = b"<not-xml") -> bytes:
    """A real workbook whose package member `part` (e.g. xl/workbook.xml) is replaced by broken XML."""
    source = zipfile.ZipFile(io.BytesIO(xlsx_bytes([])))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for item in source.infolist():
            target.writestr(item, replacement if item.filename == part else source.read(item.filename))
    return buffer.getvalue()


async def put_profile(
    client: httpx.AsyncClient, code: str, profile: Mapping[str, Any], headers: Mapping[str, str]
) -> httpx.Response:
    """PUT a school's profile as a client does: with the ETag of a fresh GET (when it may read it)."""
    current = await client.get(f"/api/v1/institutions/{code}", headers=dict(headers))
    etag = current.headers.get("etag")
    return await client.put(
        f"/api/v1/institutions/{code}/profile",
        json=dict(profile),
        headers={**headers, **({"If-Match": etag} if etag else {})},
    )
