"""HTTP only: parse, call the service, shape the answer, map domain errors to problems."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from services.plans import service
from services.plans.dependencies import CurrentPrincipal, DbSession, Now, Provincial, WakeScheduler
from services.plans.domain import PlanStatus
from services.plans.exceptions import DuplicateBatch, PlanNotFound, PlanRuleViolation
from services.plans.schemas import PlanCreate, PlanOut, PlanPatch, RebuildPage
from shared.http.conditional import etag, if_match_version
from shared.http.errors import FieldError, ProblemError, problem_responses
from shared.pagination import Page, Pagination

router = APIRouter(prefix="/api/v1/plans", tags=["plans"])
# Not routed by the gateway and kept out of the public OpenAPI document.
internal_router = APIRouter(prefix="/internal/v1/plans", tags=["internal"], include_in_schema=False)

_RULES: dict[str, tuple[int, str, str]] = {
    "closes_before_opens": (422, "validation_error", "截止时间必须晚于开始时间。"),
    "already_published": (409, "invalid_transition", "该申报计划已发布，不能重复发布。"),
    "plan_window_over": (409, "plan_window_over", "申报截止时间已过，不能发布；请先把截止时间改到将来。"),
    "not_editable": (409, "not_editable", "已发布的申报计划不能删除，也不能修改申报规则，只能延后截止时间。"),
    "closes_at_not_later": (409, "not_editable", "已发布的申报计划只能延后截止时间，不能提前。"),
    "version_conflict": (412, "version_conflict", "该申报计划已被他人修改，请刷新后重试。"),
}


_FIELD_MESSAGES = {
    "closes_before_opens": "须晚于开始时间",
    "plan_window_over": "已过截止时间",
    "not_editable": "已发布后不可修改",
    "closes_at_not_later": "只能延后",
}


@asynccontextmanager
async def _problems() -> AsyncIterator[None]:
    """Map the service's domain errors to problem+json answers."""
    try:
        yield
    except PlanNotFound as exc:
        raise ProblemError(404, "not_found", "申报计划不存在或无权查看。") from exc
    except DuplicateBatch as exc:
        raise ProblemError(
            409,
            "duplicate_batch",
            "本省该年度已有相同批次的申报计划，请更换批次。",
            errors=[FieldError(field="batch", message="批次重复")],
        ) from exc
    except PlanRuleViolation as exc:
        status_code, code, detail = _RULES.get(exc.code, (409, exc.code, "该操作不符合申报计划的规则。"))
        errors = [FieldError(field=exc.field, message=_FIELD_MESSAGES.get(exc.code, "取值无效"))] if exc.field else None
        raise ProblemError(status_code, code, detail, errors=errors) from exc


def _province_of(principal: Provincial) -> str:
    if not principal.province_code:
        raise ProblemError(403, "forbidden", "您的账号未绑定省份，无法管理申报计划。")
    return principal.province_code


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="创建申报计划（草稿）",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_plan(body: PlanCreate, principal: Provincial, session: DbSession, now: Now) -> PlanOut:
    async with _problems():
        return await service.create_plan(
            session, province_code=_province_of(principal), created_by=principal.account, data=body, now=now
        )


@router.patch(
    "/{plan_id}",
    summary="修改申报计划：草稿可改任意字段；已发布只能延后截止时间",
    responses=problem_responses(401, 403, 404, 409, 412, 422),
)
async def update_plan(
    plan_id: uuid.UUID,
    body: PlanPatch,
    principal: Provincial,
    session: DbSession,
    now: Now,
    wake: WakeScheduler,
    response: Response,
    if_match: Annotated[str | None, Header(description="GET 返回的 ETag（可选；过期则 412）")] = None,
) -> PlanOut:
    async with _problems():
        plan = await service.update_plan(
            session,
            plan_id=plan_id,
            province_code=principal.province_code,
            changes=body.changes(),
            now=now,
            if_match=if_match_version(if_match),
        )
    wake()
    response.headers["ETag"] = etag(plan.version)
    return plan


@router.post(
    "/{plan_id}/publish",
    summary="发布申报计划",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def publish_plan(
    plan_id: uuid.UUID, principal: Provincial, session: DbSession, now: Now, wake: WakeScheduler
) -> PlanOut:
    async with _problems():
        plan = await service.publish_plan(session, plan_id=plan_id, province_code=principal.province_code, now=now)
    wake()
    return plan


@router.delete(
    "/{plan_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="删除草稿",
    responses=problem_responses(401, 403, 404, 409),
)
async def delete_plan(plan_id: uuid.UUID, principal: Provincial, session: DbSession) -> Response:
    async with _problems():
        await service.delete_plan(session, plan_id=plan_id, province_code=principal.province_code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("", summary="申报计划列表", responses=problem_responses(401, 422))
async def list_plans(
    principal: CurrentPrincipal,
    session: DbSession,
    now: Now,
    page: Pagination,
    province_code: Annotated[str | None, Query(pattern=r"^\d{2}$", description="省级行政区划代码")] = None,
    year: Annotated[int | None, Query(ge=2019, le=2100)] = None,
    plan_status: Annotated[PlanStatus | None, Query(alias="status")] = None,
) -> Page[PlanOut]:
    filters = service.PlanFilters(province_code=province_code, year=year, status=plan_status)
    return await service.list_plans(session, viewer=principal, filters=filters, page=page, now=now)


@router.get("/{plan_id}", summary="申报计划详情", responses=problem_responses(401, 404, 422))
async def get_plan(
    plan_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession, now: Now, response: Response
) -> PlanOut:
    async with _problems():
        plan = await service.get_plan(session, plan_id=plan_id, viewer=principal, now=now)
    response.headers["ETag"] = etag(plan.version)
    return plan


@internal_router.get("", summary="Published plans page by page, for services rebuilding their copy")
async def rebuild_plans(
    session: DbSession,
    after: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> RebuildPage:
    items, cursor = await service.rebuild_page(session, after=after, limit=limit)
    return RebuildPage(items=items, next=cursor)
