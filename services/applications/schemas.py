"""Pydantic models of the applications API (requests and responses)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.pagination import Page

StatusName = Literal["draft", "pending", "approved", "rejected"]
# PostgreSQL text cannot hold NUL: refuse it at the edge (422) instead of failing in the database.
NO_NUL = r"^[^\x00]*$"
DecisionName = Literal["approve", "reject", "return"]


class MajorLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    major_code: str = Field(min_length=1, max_length=20, pattern=NO_NUL, description="专业代码")
    students: int | None = Field(default=None, ge=1, le=1_000_000, description="在校生人数")
    teachers: int | None = Field(default=None, ge=1, le=1_000_000, description="专任教师人数")
    trainees: int | None = Field(default=None, ge=1, le=1_000_000, description="拟培训人数")


class ApplicationIn(BaseModel):
    """A draft's content. `trainees_total` is ignored on by-major plans (the server sums the majors)."""

    model_config = ConfigDict(extra="forbid")

    plan_id: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    certificate_id: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    majors: list[MajorLineIn] = Field(default_factory=list, max_length=50)
    trainees_total: int | None = Field(default=None, ge=1, le=1_000_000)
    faculty_html: str = Field(max_length=50_000, pattern=NO_NUL, description="师资情况（富文本）")
    venue_html: str = Field(max_length=50_000, pattern=NO_NUL, description="场地情况（富文本）")


class MajorLineOut(BaseModel):
    major_code: str
    major_name: str | None
    students: int | None
    teachers: int | None
    trainees: int | None


class AttachmentOut(BaseModel):
    id: uuid.UUID
    filename: str
    content_type: str
    size: int
    created_at: datetime


class ReviewOut(BaseModel):
    stage: str
    decision: str
    comment: str | None
    approved_trainees: int | None
    reviewer: str
    at: datetime


class CheckOut(BaseModel):
    item: str = Field(description="status | plan_open | profile | trainees | majors | evidence")
    ok: bool
    blocking: bool = Field(description="未通过时不能提交")
    message: str


class ApplicationSummary(BaseModel):
    id: uuid.UUID
    plan_id: str
    year: int
    institution_code: str
    institution_name: str
    province_code: str
    city_code: str | None
    certificate_id: str
    certificate_name: str
    level: str
    org_id: str
    org_name: str
    trainees_total: int
    approved_trainees: int | None
    status: StatusName
    review_stage: str | None
    returned_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None


class ApplicationOut(ApplicationSummary):
    majors: list[MajorLineOut]
    faculty_html: str
    venue_html: str
    attachments: list[AttachmentOut]
    reviews: list[ReviewOut]
    plan_closes_at: datetime | None = None
    editable: bool = Field(description="学校现在能否修改（草稿、退回或审核不通过，且计划仍在申报中）")
    checks: list[CheckOut] = Field(default_factory=list, description="提交前检查清单")


class StatusCounts(BaseModel):
    all: int = 0
    draft: int = 0
    pending: int = 0
    approved: int = 0
    rejected: int = 0


class ApplicationPage(Page[ApplicationSummary]):
    counts: StatusCounts


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: DecisionName
    approved_trainees: int | None = Field(default=None, ge=1, le=1_000_000, description="已批准培训人数")
    comment: str | None = Field(default=None, max_length=1_000, pattern=NO_NUL, description="意见；不通过或退回时必填")


class BatchReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    application_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)
    decision: DecisionName
    approved_trainees: int | None = Field(
        default=None, ge=1, le=1_000_000, description="批量通过时的已批准人数；不填则按各自申报人数批准"
    )
    comment: str | None = Field(default=None, max_length=1_000, pattern=NO_NUL)


class BatchItemResult(BaseModel):
    id: uuid.UUID
    ok: bool
    status: StatusName | None = None
    code: str | None = None
    detail: str | None = None


class BatchReviewOut(BaseModel):
    succeeded: int
    failed: int
    results: list[BatchItemResult]


class CertificateStats(BaseModel):
    certificate_id: str
    certificate_name: str
    level: str
    applications: int
    counts: StatusCounts
    trainees_requested: int
    trainees_approved: int


class PlanStatistics(BaseModel):
    plan_id: str
    counts: StatusCounts
    trainees_requested: int
    trainees_approved: int
    certificates: list[CertificateStats]
