"""Pydantic models of the plans API (requests and responses)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints, model_validator

from services.plans.domain import PlanState, PlanStatus, as_shanghai
from shared.contracts.plans import PlanData


def _plausible(value: datetime) -> datetime:
    # Checked before the conversion to Asia/Shanghai: year 1 or 9999 with an offset overflows there.
    if not 2000 <= value.year <= 2100:
        raise ValueError("时间须在 2000 年至 2100 年之间")
    return value


#: Accepts naive (Asia/Shanghai) or offset times; answers in Asia/Shanghai with its offset.
ShanghaiTime = Annotated[
    datetime,
    AfterValidator(_plausible),
    AfterValidator(as_shanghai),
    PlainSerializer(lambda v: as_shanghai(v).isoformat(), return_type=str, when_used="json"),
]
Year = Annotated[int, Field(ge=2019, le=2100, description="申报年度")]
Batch = Annotated[int, Field(ge=1, le=99, description="申报批次：1 表示第一次")]


def _printable(value: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("不能包含控制字符")
    return value


Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(_printable)
]


class PlanCreate(BaseModel):
    year: Year
    batch: Batch
    title: Title
    opens_at: ShanghaiTime = Field(description="开始时间；不带时区时按北京时间理解")
    closes_at: ShanghaiTime = Field(description="截止时间，须晚于开始时间")
    by_major: bool = Field(description="是否要求按专业填报")
    municipal_review: bool = Field(description="是否需要地市级教育局审批")


class PlanPatch(BaseModel):
    """A draft may change any field; a published plan only a later `closes_at`."""

    year: Year | None = None
    batch: Batch | None = None
    title: Title | None = None
    opens_at: ShanghaiTime | None = None
    closes_at: ShanghaiTime | None = None
    by_major: bool | None = None
    municipal_review: bool | None = None

    @model_validator(mode="after")
    def _no_explicit_nulls(self) -> Self:
        nulls = [name for name in self.model_fields_set if getattr(self, name) is None]
        if nulls:
            raise ValueError(f"字段不能为空：{', '.join(sorted(nulls))}")
        return self

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class PlanOut(BaseModel):
    id: uuid.UUID
    province_code: str
    year: int
    batch: int
    batch_label: str = Field(description="例如“2026年第一次”")
    title: str
    opens_at: ShanghaiTime
    closes_at: ShanghaiTime
    by_major: bool
    municipal_review: bool
    state: PlanState
    status: PlanStatus = Field(description="draft 草稿 / upcoming 未开始 / open 申报中 / closed 已结束")
    version: int
    created_at: ShanghaiTime
    updated_at: ShanghaiTime
    published_at: ShanghaiTime | None = None


class PlanRecord(PlanData):
    """One published plan for a service rebuilding its copy: the event's data plus its subject_version."""

    model_config = ConfigDict(extra="ignore")

    subject_version: int


class RebuildPage(BaseModel):
    items: list[PlanRecord]
    next: str | None = Field(description="下一页的 after 参数；没有更多时为 null")
