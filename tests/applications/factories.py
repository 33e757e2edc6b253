"""Builders for applications tests: copies fed by publishing the owners' real contract events onto
the run's bus (then waiting until the copy shows them), tokens per role, and drafts through the API."""

from __future__ import annotations

import asyncio
import io
import random
import time
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.applications.models import CertificateCopy, InstitutionCopy, MajorCopy, PlanCopy
from shared.contracts.envelope import Event
from shared.contracts.plans import PlanData, PlanPublished
from shared.contracts.registry import (
    CertificateData,
    CertificateUpserted,
    InstitutionData,
    InstitutionUpserted,
    MajorData,
    MajorUpserted,
)
from shared.messaging.broker import Broker, Outgoing
from shared.testing.bus import BusProbe
from shared.testing.harness import RunningService
from shared.testing.tokens import TestTokens

API = "/api/v1/applications"
MAJORS = {"460104": "工业机器人技术", "510201": "计算机应用技术", "510202": "计算机网络技术", "530302": "大数据与会计"}


class Clock:
    """The service's clock: real time unless a test pins it."""

    def __init__(self) -> None:
        self.pinned: datetime | None = None

    def __call__(self) -> datetime:
        return self.pinned or datetime.now(UTC)

    def at(self, moment: datetime) -> None:
        self.pinned = moment

    def reset(self) -> None:
        self.pinned = None


def event_message(event: Event[Any]) -> Outgoing:
    return Outgoing(
        message_id=str(event.id),
        routing_key=event.routing_key,
        body=event.model_dump_json().encode(),
        correlation_id=event.correlation_id,
    )


def new_code(province: str = "45") -> str:
    return province[:2] + "".join(random.choices("0123456789", k=8))


@dataclass
class School:
    data: InstitutionData
    headers: dict[str, str]
    sub_headers: dict[str, str]

    @property
    def code(self) -> str:
        return self.data.code


class World:
    def __init__(
        self,
        *,
        service: RunningService,
        broker: Broker,
        tokens: TestTokens,
        clock: Clock,
        amqp_url: str,
        namespace: str,
    ) -> None:
        self.service = service
        self.client: httpx.AsyncClient = service.client
        self.broker = broker
        self.tokens = tokens
        self.clock = clock
        self.amqp_url = amqp_url
        self.namespace = namespace

    # --- the bus ------------------------------------------------------------------------------------

    async def publish(self, *events: Event[Any]) -> None:
        for event in events:
            await self.broker.publish(event_message(event))

    async def wait_copy(self, model: Any, key: Any, version: int, timeout: float = 10.0) -> Any:
        """Wait until the copy row `key` has at least `subject_version` `version`."""
        deadline = time.monotonic() + timeout
        while True:
            async with self.service.runtime.sessionmaker() as session:
                row = await session.get(model, key, populate_existing=True)
                if row is not None and row.subject_version >= version:
                    return row
            if time.monotonic() > deadline:
                raise AssertionError(f"copy {model.__tablename__}:{key} never reached version {version}")
            await asyncio.sleep(0.02)

    # --- copies -------------------------------------------------------------------------------------

    async def plan(
        self,
        *,
        province: str = "45",
        by_major: bool = True,
        municipal_review: bool = True,
        opens_at: datetime | None = None,
        closes_at: datetime | None = None,
        year: int = 2026,
        state: str = "published",
        version: int = 1,
        plan_id: str | None = None,
        event: type[Event[Any]] = PlanPublished,
    ) -> PlanData:
        now = datetime.now(UTC)
        data = PlanData(
            id=plan_id or str(uuid.uuid4()),
            province_code=province,
            year=year,
            batch=1,
            title=f"{year}年第一批证书试点申报",
            opens_at=opens_at or now - timedelta(days=1),
            closes_at=closes_at or now + timedelta(days=30),
            by_major=by_major,
            municipal_review=municipal_review,
            state=state,
        )
        await self.publish(event(subject=data.id, subject_version=version, data=data))
        await self.wait_copy(PlanCopy, data.id, version)
        return data

    async def certificate(
        self,
        *,
        majors: tuple[str, ...] = ("460104", "510201", "510202"),
        org_id: str | None = None,
        level: str = "junior",
        name: str = "工业机器人操作与运维",
        version: int = 1,
        certificate_id: str | None = None,
        active: bool = True,
    ) -> CertificateData:
        data = CertificateData(
            id=certificate_id or str(uuid.uuid4()),
            name=name,
            level=level,  # type: ignore[arg-type]
            org_id=org_id or str(uuid.uuid4()),
            org_name="示例培训评价组织",
            major_codes=list(majors),
            active=active,
        )
        await self.publish(CertificateUpserted(subject=data.id, subject_version=version, data=data))
        await self.wait_copy(CertificateCopy, data.id, version)
        return data

    async def institution(
        self,
        *,
        province: str = "45",
        city: str | None = "4501",
        profile_completed: bool = True,
        code: str | None = None,
        name: str | None = None,
        version: int = 1,
    ) -> InstitutionData:
        code = code or new_code(province)
        data = InstitutionData(
            code=code,
            name=name or f"测试职业技术学院{code[-4:]}",
            type="higher_vocational",
            province_code=province,
            city_code=city,
            profile_completed=profile_completed,
        )
        await self.publish(InstitutionUpserted(subject=code, subject_version=version, data=data))
        await self.wait_copy(InstitutionCopy, code, version)
        return data

    async def schools(self, count: int, **kwargs: Any) -> list[School]:
        """Many schools at once: publish every event first, then wait for the copies."""
        codes = [new_code(kwargs.get("province", "45")) for _ in range(count)]
        tasks = [self._publish_institution(code=code, **kwargs) for code in codes]
        datas = [await task for task in tasks]
        for data in datas:
            await self.wait_copy(InstitutionCopy, data.code, 1)
        return [self._school(data) for data in datas]

    async def _publish_institution(
        self, *, code: str, province: str = "45", city: str | None = "4501"
    ) -> InstitutionData:
        data = InstitutionData(
            code=code,
            name=f"测试职业技术学院{code[-4:]}",
            type="higher_vocational",
            province_code=province,
            city_code=city,
            profile_completed=True,
        )
        await self.publish(InstitutionUpserted(subject=code, subject_version=1, data=data))
        return data

    def _school(self, data: InstitutionData) -> School:
        return School(
            data=data,
            headers=self.headers("institution", institution_code=data.code, province_code=data.province_code),
            sub_headers=self.headers("institution_sub", institution_code=data.code, province_code=data.province_code),
        )

    async def majors(self) -> None:
        for code, name in MAJORS.items():
            data = MajorData(code=code, name=name, level="高职专科")
            await self.publish(MajorUpserted(subject=code, subject_version=1, data=data))
        for code in MAJORS:
            await self.wait_copy(MajorCopy, code, 1)

    async def school(self, **kwargs: Any) -> School:
        return self._school(await self.institution(**kwargs))

    # --- tokens -------------------------------------------------------------------------------------

    def headers(self, role: str, **scope: Any) -> dict[str, str]:
        return self.tokens.headers(role, **scope)

    def provincial(self, province: str = "45") -> dict[str, str]:
        return self.headers("provincial", province_code=province)

    def municipal(self, province: str = "45", city: str = "4501") -> dict[str, str]:
        return self.headers("municipal", province_code=province, city_code=city)

    def org(self, org_id: str) -> dict[str, str]:
        return self.headers("org", org_id=org_id)

    def operator(self) -> dict[str, str]:
        return self.headers("operator")

    # --- drafts through the API ---------------------------------------------------------------------

    @staticmethod
    def body(plan: PlanData, certificate: CertificateData, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "plan_id": plan.id,
            "certificate_id": certificate.id,
            "majors": [
                {"major_code": certificate.major_codes[0], "students": 120, "teachers": 8, "trainees": 60},
            ]
            if plan.by_major
            else [],
            "trainees_total": None if plan.by_major else 80,
            "faculty_html": "<p>专任教师 <strong>8</strong> 人，其中双师型 5 人。</p>",
            "venue_html": "<p>实训室 3 间，工位 60 个。</p>",
        }
        body.update(overrides)
        return body

    async def draft(
        self, school: School, plan: PlanData, certificate: CertificateData, **overrides: Any
    ) -> dict[str, Any]:
        response = await self.client.post(API, json=self.body(plan, certificate, **overrides), headers=school.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def submitted(self, school: School, plan: PlanData, certificate: CertificateData) -> dict[str, Any]:
        draft = await self.draft(school, plan, certificate)
        response = await self.client.post(f"{API}/{draft['id']}/submit", headers=school.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def review(self, application_id: str, headers: dict[str, str], **body: Any) -> httpx.Response:
        return await self.client.post(f"{API}/{application_id}/reviews", json=body, headers=headers)

    async def approved(self, school: School, plan: PlanData, certificate: CertificateData) -> dict[str, Any]:
        application = await self.submitted(school, plan, certificate)
        province, city = school.data.province_code, school.data.city_code or ""
        if application["review_stage"] == "municipal":
            passed = await self.review(application["id"], self.municipal(province, city), decision="approve")
            assert passed.status_code == 200, passed.text
        done = await self.review(application["id"], self.provincial(province), decision="approve", approved_trainees=10)
        assert done.status_code == 200, done.text
        return dict(done.json())


# --- evidence file builders ----------------------------------------------------------------------

DOCX_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="{main}"/>'
    "</Types>"
)
DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
DOCM_MAIN = "application/vnd.ms-word.document.macroEnabled.main+xml"


def docx_bytes(*, main: str = DOCX_MAIN, with_vba: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", DOCX_CONTENT_TYPES.format(main=main))
        archive.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="word/document.xml"/></Relationships>',
        )
        archive.writestr(
            "word/document.xml",
            '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            "<w:body><w:p><w:r><w:t>师资情况</w:t></w:r></w:p></w:body></w:document>",
        )
        if with_vba:
            archive.writestr("word/vbaProject.bin", b"\xd0\xcf\x11\xe0 fake vba")
    return buffer.getvalue()


def docm_bytes() -> bytes:
    return docx_bytes(main=DOCM_MAIN, with_vba=True)


def plain_zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "not a word document")
    return buffer.getvalue()


def pdf_bytes(size: int = 0) -> bytes:
    head = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n"
    tail = b"\n%%EOF\n"
    padding = max(0, size - len(head) - len(tail))
    return head + b"0" * padding + tail


def doc_bytes(*, macros: bool = False) -> bytes:
    """A compound file whose directory names a WordDocument stream (and a Macros storage if asked)."""
    header = bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 504
    directory = "Root Entry".encode("utf-16-le") + b"\x00" * 54 + "WordDocument".encode("utf-16-le") + b"\x00" * 40
    if macros:
        directory += "Macros".encode("utf-16-le") + b"\x00" * 52
    return header + directory + b"\x00" * 1024


def executable_bytes() -> bytes:
    return b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200 + b"PE\x00\x00"


async def wait_events(
    probe: BusProbe, event_type: str, subject: str, count: int = 1, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Events of one type about one subject (other tests' events share the run's bus), once `count` came."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in probe.of_type(event_type) if e["subject"] == subject]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{event_type} for {subject}: {len(found)} of {count} arrived")
        await asyncio.sleep(0.02)
