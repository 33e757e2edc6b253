"""HTTP only: parse, call the service, shape the answer, map domain errors to problems."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Header, Query, Request, Response, UploadFile
from fastapi.routing import APIRoute

from services.applications import service
from services.applications.dependencies import (
    CurrentPrincipal,
    DbSession,
    Department,
    Now,
    PrimarySchool,
    Provincial,
    Reviewer,
    School,
    Storage,
)
from services.applications.exceptions import ApplicationsError
from services.applications.schemas import (
    NO_NUL,
    ApplicationIn,
    ApplicationOut,
    ApplicationPage,
    AttachmentOut,
    BatchReviewIn,
    BatchReviewOut,
    PlanStatistics,
    ReviewIn,
    StatusName,
)
from shared.http.conditional import etag
from shared.http.errors import FieldError, ProblemError, problem_responses
from shared.pagination import Pagination

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class DomainErrorRoute(APIRoute):
    """Every route of this router turns a domain error into its problem+json answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ApplicationsError as exc:
                raise ProblemError(
                    exc.status,
                    exc.code,
                    exc.detail,
                    errors=[FieldError(field=f, message=m) for f, m in exc.fields] or None,
                ) from exc

        return handle


router = APIRouter(prefix="/api/v1/applications", tags=["applications"], route_class=DomainErrorRoute)
AUTH = (401, 403)
IdempotencyKeyHeader = Annotated[
    str | None, Header(alias="Idempotency-Key", max_length=200, description="重复请求时返回首次结果")
]


def _with_etag(response: Response, view: ApplicationOut, replayed: bool = False) -> ApplicationOut:
    response.headers["ETag"] = etag(view.version)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return view


@router.post(
    "",
    status_code=201,
    summary="保存申报（草稿）",
    responses=problem_responses(*AUTH, 409, 422),
)
async def create_application(
    body: ApplicationIn,
    principal: School,
    session: DbSession,
    now: Now,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ApplicationOut:
    idempotency = service.Idempotency.of(
        idempotency_key, method="POST", path="/applications", body=body.model_dump_json().encode()
    )
    view, replayed = await service.create_application(
        session, principal=principal, body=body, now=now, idempotency=idempotency
    )
    response.headers["Location"] = f"/api/v1/applications/{view.id}"
    return _with_etag(response, view, replayed)


@router.get("", summary="申报列表（按权限范围）", responses=problem_responses(401, 422))
async def list_applications(
    principal: CurrentPrincipal,
    session: DbSession,
    page: Pagination,
    plan_id: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    status: StatusName | None = None,
    certificate_id: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    institution_code: Annotated[str | None, Query(max_length=10, pattern=NO_NUL)] = None,
    q: Annotated[str | None, Query(max_length=100, pattern=NO_NUL, description="院校、证书或组织名称关键字")] = None,
) -> ApplicationPage:
    filters = service.ListFilters(
        plan_id=plan_id, year=year, status=status, certificate_id=certificate_id, institution_code=institution_code, q=q
    )
    return await service.list_applications(session, principal=principal, filters=filters, page=page)


@router.get(
    "/export",
    summary="导出申报计划的申报列表（.xlsx）",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "Excel 工作簿"}, **problem_responses(*AUTH, 404, 422)},
)
async def export_applications(
    principal: Department,
    session: DbSession,
    plan_id: Annotated[str, Query(min_length=1, max_length=64, pattern=NO_NUL)],
) -> Response:
    filename, data = await service.export_plan(session, principal=principal, plan_id=plan_id)
    return Response(data, media_type=XLSX, headers=_attachment_headers(filename))


@router.get("/statistics", summary="申报计划统计", responses=problem_responses(*AUTH, 404, 422))
async def statistics(
    principal: Department,
    session: DbSession,
    plan_id: Annotated[str, Query(min_length=1, max_length=64, pattern=NO_NUL)],
) -> PlanStatistics:
    return await service.plan_statistics(session, principal=principal, plan_id=plan_id)


@router.post("/batch-reviews", summary="批量审核（省级）", responses=problem_responses(*AUTH, 422))
async def batch_review(body: BatchReviewIn, principal: Provincial, session: DbSession, now: Now) -> BatchReviewOut:
    return await service.review_batch(session, principal=principal, body=body, now=now)


@router.get("/{application_id}", summary="申报详情", responses=problem_responses(401, 404, 422))
async def get_application(
    application_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession, now: Now, response: Response
) -> ApplicationOut:
    view = await service.get_application(session, principal=principal, application_id=application_id, now=now)
    return _with_etag(response, view)


@router.put(
    "/{application_id}",
    summary="修改申报（需 If-Match）",
    responses=problem_responses(*AUTH, 404, 409, 412, 422, 428),
)
async def update_application(
    application_id: uuid.UUID,
    body: ApplicationIn,
    principal: School,
    session: DbSession,
    now: Now,
    response: Response,
    if_match: Annotated[str | None, Header(alias="If-Match", max_length=100)] = None,
) -> ApplicationOut:
    view = await service.update_application(
        session, principal=principal, application_id=application_id, body=body, if_match=if_match, now=now
    )
    return _with_etag(response, view)


@router.delete(
    "/{application_id}",
    status_code=204,
    summary="删除草稿（学校主账号）",
    response_class=Response,
    responses=problem_responses(*AUTH, 404, 409, 422),
)
async def delete_application(
    application_id: uuid.UUID, principal: PrimarySchool, session: DbSession, storage: Storage, now: Now
) -> Response:
    await service.delete_application(
        session, principal=principal, application_id=application_id, storage=storage, now=now
    )
    return Response(status_code=204)


@router.post(
    "/{application_id}/submit",
    summary="提交审核（学校主账号）",
    responses=problem_responses(*AUTH, 404, 409, 422),
)
async def submit_application(
    application_id: uuid.UUID,
    principal: PrimarySchool,
    session: DbSession,
    now: Now,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ApplicationOut:
    idempotency = service.Idempotency.of(
        idempotency_key, method="POST", path=f"/applications/{application_id}/submit", body=b""
    )
    view, replayed = await service.submit_application(
        session, principal=principal, application_id=application_id, now=now, idempotency=idempotency
    )
    return _with_etag(response, view, replayed)


@router.post(
    "/{application_id}/reviews",
    summary="审核（地市级、省级）",
    responses=problem_responses(*AUTH, 404, 409, 422),
)
async def review_application(
    application_id: uuid.UUID,
    body: ReviewIn,
    principal: Reviewer,
    session: DbSession,
    now: Now,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ApplicationOut:
    idempotency = service.Idempotency.of(
        idempotency_key,
        method="POST",
        path=f"/applications/{application_id}/reviews",
        body=body.model_dump_json().encode(),
    )
    view, replayed = await service.review_application(
        session, principal=principal, application_id=application_id, body=body, now=now, idempotency=idempotency
    )
    return _with_etag(response, view, replayed)


@router.post(
    "/{application_id}/attachments",
    status_code=201,
    summary="上传佐证材料（PDF、DOC、DOCX）",
    responses=problem_responses(*AUTH, 404, 409, 413, 415, 422),
)
async def upload_attachment(
    application_id: uuid.UUID,
    principal: School,
    session: DbSession,
    storage: Storage,
    now: Now,
    request: Request,
    response: Response,
    file: Annotated[UploadFile, File(description="PDF、DOC 或 DOCX，不超过 20 MB")],
    idempotency_key: IdempotencyKeyHeader = None,
) -> AttachmentOut:
    settings = request.app.state.settings
    data = await file.read(settings.max_file_bytes + 1)
    idempotency = service.Idempotency.of(
        idempotency_key,
        method="POST",
        path=f"/applications/{application_id}/attachments",
        body=(file.filename or "").encode() + b"\n" + data,
    )
    attachment, replayed = await service.add_attachment(
        session,
        principal=principal,
        application_id=application_id,
        upload=service.Upload(filename=file.filename, data=data),
        storage=storage,
        now=now,
        max_bytes=settings.max_file_bytes,
        max_files=settings.max_files_per_application,
        idempotency=idempotency,
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return attachment


@router.get(
    "/{application_id}/attachments/{attachment_id}",
    summary="下载佐证材料",
    response_class=Response,
    responses={200: {"description": "文件内容（以附件形式下载）"}, **problem_responses(401, 404, 422)},
)
async def download_attachment(
    application_id: uuid.UUID,
    attachment_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: DbSession,
    storage: Storage,
) -> Response:
    attachment, data = await service.read_attachment(
        session, principal=principal, application_id=application_id, attachment_id=attachment_id, storage=storage
    )
    return Response(data, media_type=attachment.content_type, headers=_attachment_headers(attachment.filename))


@router.delete(
    "/{application_id}/attachments/{attachment_id}",
    status_code=204,
    summary="删除佐证材料",
    response_class=Response,
    responses=problem_responses(*AUTH, 404, 409, 422),
)
async def delete_attachment(
    application_id: uuid.UUID,
    attachment_id: uuid.UUID,
    principal: School,
    session: DbSession,
    storage: Storage,
    now: Now,
) -> Response:
    await service.delete_attachment(
        session,
        principal=principal,
        application_id=application_id,
        attachment_id=attachment_id,
        storage=storage,
        now=now,
    )
    return Response(status_code=204)


def _attachment_headers(filename: str) -> dict[str, str]:
    """Download as a file, never rendered inline; the Chinese name via RFC 5987 `filename*`."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename)
    return {
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
