"""HTTP only: parse, call the service, shape the answer, map domain errors to problems."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, File, Header, Path, Query, Response, UploadFile

from services.registry import service
from services.registry.dependencies import (
    CertificateManager,
    DbSession,
    InstitutionAccount,
    InstitutionViewer,
    Operator,
    RegisterManager,
)
from services.registry.domain import InstitutionRow, Scope
from services.registry.exceptions import (
    CertificateExists,
    ImportConflict,
    ImportFileInvalid,
    InstitutionExists,
    InstitutionNameTaken,
    InstitutionNotFound,
    InvalidProfile,
    NotFound,
    OrganizationExists,
    PreconditionRequired,
    RegistryError,
    UnknownMajors,
    VersionConflict,
)
from services.registry.schemas import (
    CertificateCopy,
    CertificateIn,
    CertificateLevel,
    CertificateMajorsIn,
    CertificateOut,
    ImportReport,
    InstitutionCopy,
    InstitutionCreate,
    InstitutionOut,
    InstitutionSummary,
    MajorCopy,
    MajorLevel,
    MajorOut,
    OrganizationIn,
    OrganizationOut,
    PilotOut,
    ProfileIn,
    RebuildPage,
    RegionOut,
    RowErrorOut,
)
from shared.http.conditional import etag, if_match_version
from shared.http.errors import FieldError, ProblemError, problem_responses
from shared.pagination import Page, Pagination

router = APIRouter(prefix="/api/v1", tags=["registry"])
internal = APIRouter(prefix="/internal/v1", tags=["internal"])
MAX_IMPORT_BYTES = 5 * 1024 * 1024
SearchText = Annotated[str | None, Query(max_length=50, pattern=r"^[^\x00-\x1f\x7f]*$", description="搜索文字")]
InstitutionCode = Annotated[str, Path(pattern=r"^\d{10}$", description="10位院校识别码")]

_PROBLEMS: dict[type[RegistryError], tuple[int, str]] = {
    InstitutionNotFound: (404, "院校不存在。"),
    NotFound: (404, "请求的资源不存在或不在您的管辖范围内。"),
    InstitutionExists: (409, "该院校代码已存在。"),
    InstitutionNameTaken: (409, "同一省份内已有同名院校。"),
    InvalidProfile: (422, "提交的数据有误，请检查标出的字段。"),
    VersionConflict: (412, "数据已被他人修改，请刷新后重试。"),
    PreconditionRequired: (428, "请先刷新页面获取最新的数据，再提交修改（缺少 If-Match）。"),
    OrganizationExists: (409, "该培训评价组织已存在。"),
    CertificateExists: (409, "该组织已有同名同级别的证书。"),
    UnknownMajors: (422, "部分专业代码不在专业目录中。"),
    ImportFileInvalid: (422, "导入文件无法读取。"),
    ImportConflict: (409, "导入时数据被同时修改，请重新导入。"),
}


@contextlib.contextmanager
def problems() -> Iterator[None]:
    """Map domain errors to problem+json (the most specific class wins)."""
    try:
        yield
    except RegistryError as exc:
        for cls in type(exc).__mro__:
            if cls in _PROBLEMS:
                status, detail = _PROBLEMS[cls]  # type: ignore[index]
                break
        else:
            raise
        if isinstance(exc, ImportFileInvalid) and str(exc) != exc.code:
            detail = str(exc)
        errors = [FieldError(field=k, message=v) for k, v in exc.fields.items()] or None
        raise ProblemError(status, exc.code, detail, errors=errors) from exc


# ---------------------------------------------------------------- regions


@router.get("/regions", response_model=list[RegionOut], responses=problem_responses(422))
async def list_regions(
    session: DbSession,
    parent_code: Annotated[str | None, Query(pattern=r"^\d{2}(\d{2})?$", description="上级区划代码")] = None,
) -> list[RegionOut]:
    """Provinces, or the children of a province (cities; 市辖区 for a municipality) or of a city."""
    rows = await service.list_regions(session, parent_code=parent_code)
    return [RegionOut(code=r.code, name=r.name, level=r.level) for r in rows]  # type: ignore[arg-type]


# ---------------------------------------------------------------- institutions


@router.get("/institutions", response_model=Page[InstitutionSummary], responses=problem_responses(422))
async def search_institutions(
    session: DbSession,
    page: Pagination,
    province_code: Annotated[str | None, Query(pattern=r"^\d{2}$")] = None,
    q: SearchText = None,
) -> Page[InstitutionSummary]:
    """Public search for the registration page: only code, name, province and type."""
    rows, total = await service.search_institutions(
        session, province_code=province_code, q=(q or "").strip() or None, offset=page.offset, limit=page.limit
    )
    return Page.of([InstitutionSummary.model_validate(r) for r in rows], total, page)


@router.get("/institutions/{code}", response_model=InstitutionOut, responses=problem_responses(401, 403, 404, 422))
async def get_institution(
    session: DbSession, principal: InstitutionViewer, code: InstitutionCode, response: Response
) -> InstitutionOut:
    with problems():
        institution = await service.get_institution(session, principal=principal, code=code)
    response.headers["ETag"] = etag(institution.version)
    return InstitutionOut.model_validate(institution)


@router.put(
    "/institutions/{code}/profile",
    response_model=InstitutionOut,
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
async def update_profile(
    session: DbSession,
    principal: InstitutionAccount,
    code: InstitutionCode,
    body: ProfileIn,
    response: Response,
    if_match: Annotated[str | None, Header(description="GET 返回的 ETag（必填）")] = None,
) -> InstitutionOut:
    """The school's own base info (完善基础信息); `profile_completed` tells whether it may apply."""
    with problems():
        institution = await service.update_profile(
            session, principal=principal, code=code, profile=body.model_dump(), if_match=if_match_version(if_match)
        )
    response.headers["ETag"] = etag(institution.version)
    return InstitutionOut.model_validate(institution)


@router.post(
    "/institutions",
    status_code=201,
    response_model=InstitutionOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_institution(session: DbSession, principal: RegisterManager, body: InstitutionCreate) -> InstitutionOut:
    """A department adds an institution (e.g. a 中职 school) in its own province or city."""
    row = InstitutionRow(row=0, **body.model_dump())
    with problems():
        institution = await service.create_institution(session, principal=principal, row=row)
    return InstitutionOut.model_validate(institution)


@router.post("/institutions/import", response_model=ImportReport, responses=problem_responses(401, 403, 409, 413, 422))
async def import_institutions(
    session: DbSession,
    principal: RegisterManager,
    file: Annotated[UploadFile, File(description="CSV/XLSX: code,name,type,province_code,city_code[,district_code]")],
) -> ImportReport:
    """Bulk import: good rows are kept, bad ones reported with row numbers; a re-run changes nothing."""
    content = await file.read(MAX_IMPORT_BYTES + 1)
    if len(content) > MAX_IMPORT_BYTES:
        raise ProblemError(413, "file_too_large", "导入文件不能超过 5 MB。")
    scope = service.scope_of(principal) or Scope()
    with problems():
        result = await service.import_institution_file(session, content=content, scope=scope)
    return ImportReport(
        total=result.total,
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        failed=result.failed,
        errors=[RowErrorOut(row=e.row, field=e.field, message=e.message) for e in result.errors],
        unplaced=[RowErrorOut(row=e.row, field=e.field, message=e.message) for e in result.unplaced],
    )


# ---------------------------------------------------------------- majors


@router.get("/majors", response_model=Page[MajorOut], responses=problem_responses(422))
async def search_majors(
    session: DbSession,
    page: Pagination,
    q: SearchText = None,
    level: MajorLevel | None = None,
) -> Page[MajorOut]:
    rows, total = await service.search_majors(
        session, q=(q or "").strip() or None, level=level, offset=page.offset, limit=page.limit
    )
    return Page.of([MajorOut.model_validate(r) for r in rows], total, page)


# ---------------------------------------------------------------- organisations and certificates


@router.post(
    "/organizations", status_code=201, response_model=OrganizationOut, responses=problem_responses(401, 403, 409, 422)
)
async def create_organization(session: DbSession, _: Operator, body: OrganizationIn) -> OrganizationOut:
    with problems():
        org = await service.create_organization(session, name=body.name)
    return OrganizationOut.model_validate(org)


@router.get("/organizations", response_model=Page[OrganizationOut], responses=problem_responses(422))
async def list_organizations(session: DbSession, page: Pagination, q: SearchText = None) -> Page[OrganizationOut]:
    rows, total = await service.list_organizations(session, q=q, offset=page.offset, limit=page.limit)
    return Page.of([OrganizationOut.model_validate(r) for r in rows], total, page)


def _certificate_out(view: service.CertificateView) -> CertificateOut:
    c = view.certificate
    return CertificateOut(
        id=c.id,
        name=c.name,
        level=c.level,  # type: ignore[arg-type]
        org_id=c.org_id,
        org_name=view.org_name,
        major_codes=list(c.major_codes),
        active=c.active,
        version=c.version,
    )


@router.get("/certificates", response_model=Page[CertificateOut], responses=problem_responses(422))
async def search_certificates(
    session: DbSession,
    page: Pagination,
    q: SearchText = None,
    org_id: uuid.UUID | None = None,
    level: CertificateLevel | None = None,
) -> Page[CertificateOut]:
    views, total = await service.search_certificates(
        session, q=(q or "").strip() or None, org_id=org_id, level=level, offset=page.offset, limit=page.limit
    )
    return Page.of([_certificate_out(v) for v in views], total, page)


@router.get("/certificates/{certificate_id}", response_model=CertificateOut, responses=problem_responses(404, 422))
async def get_certificate(session: DbSession, certificate_id: uuid.UUID, response: Response) -> CertificateOut:
    with problems():
        out = _certificate_out(await service.get_certificate(session, certificate_id=certificate_id))
    response.headers["ETag"] = etag(out.version)
    return out


@router.post(
    "/certificates",
    status_code=201,
    response_model=CertificateOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_certificate(session: DbSession, principal: CertificateManager, body: CertificateIn) -> CertificateOut:
    """One certificate at one level (初级/中级/高级 are three certificates) of one organisation."""
    with problems():
        view = await service.create_certificate(
            session,
            principal=principal,
            name=body.name,
            level=body.level,
            org_id=body.org_id,
            major_codes=body.major_codes,
        )
    return _certificate_out(view)


@router.put(
    "/certificates/{certificate_id}/majors",
    response_model=CertificateOut,
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
async def set_certificate_majors(
    session: DbSession,
    principal: CertificateManager,
    certificate_id: uuid.UUID,
    body: CertificateMajorsIn,
    response: Response,
    if_match: Annotated[str | None, Header(description="GET 返回的 ETag（必填）")] = None,
) -> CertificateOut:
    """Replace the list of majors whose students may take the certificate."""
    with problems():
        view = await service.set_certificate_majors(
            session,
            principal=principal,
            certificate_id=certificate_id,
            major_codes=body.major_codes,
            if_match=if_match_version(if_match),
        )
    out = _certificate_out(view)
    response.headers["ETag"] = etag(out.version)
    return out


# ---------------------------------------------------------------- pilots


@router.get("/pilot-institutions", response_model=Page[PilotOut], responses=problem_responses(401, 403, 404, 422))
async def list_pilot_institutions(
    session: DbSession,
    principal: RegisterManager,
    page: Pagination,
    year: Annotated[int | None, Query(ge=2019, le=2100)] = None,
    province_code: Annotated[str | None, Query(pattern=r"^\d{2}$")] = None,
) -> Page[PilotOut]:
    """Pilot institutions (试点院校) of a year within the caller's province or city."""
    with problems():
        rows, total = await service.list_pilots(
            session, principal=principal, year=year, province_code=province_code, offset=page.offset, limit=page.limit
        )
    return Page.of([PilotOut.model_validate(r) for r in rows], total, page)


# ---------------------------------------------------------------- internal rebuild pages (not routed by the gateway)

Limit = Annotated[int, Query(ge=1, le=1000)]


@internal.get("/institutions", response_model=RebuildPage[InstitutionCopy])
async def institutions_page(
    session: DbSession, after: Annotated[str | None, Query(pattern=r"^\d{1,10}$")] = None, limit: Limit = 500
) -> RebuildPage[InstitutionCopy]:
    rows = await service.institutions_after(session, after=after, limit=limit)
    items = [
        InstitutionCopy(**service.institution_data(r).model_dump(), subject_version=r.version)  # type: ignore[misc]
        for r in rows
    ]
    return RebuildPage(items=items, next=rows[-1].code if len(rows) == limit else None)


@internal.get("/certificates", response_model=RebuildPage[CertificateCopy])
async def certificates_page(
    session: DbSession, after: uuid.UUID | None = None, limit: Limit = 500
) -> RebuildPage[CertificateCopy]:
    views = await service.certificates_after(session, after=after, limit=limit)
    items = [CertificateCopy(**v.data().model_dump(), subject_version=v.certificate.version) for v in views]
    return RebuildPage(items=items, next=str(views[-1].certificate.id) if len(views) == limit else None)


@internal.get("/majors", response_model=RebuildPage[MajorCopy])
async def majors_page(
    session: DbSession, after: Annotated[str | None, Query(pattern=r"^\d{1,6}K?$")] = None, limit: Limit = 500
) -> RebuildPage[MajorCopy]:
    rows = await service.majors_after(session, after=after, limit=limit)
    items = [
        MajorCopy(code=r.code, name=r.name, level=r.level, category_name=r.category_name, subject_version=r.version)
        for r in rows
    ]
    return RebuildPage(items=items, next=rows[-1].code if len(rows) == limit else None)
