"""Use cases of the applications service: one function, one transaction; events staged in it."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openpyxl import Workbook
from pydantic import BaseModel
from sqlalchemy import ColumnElement, delete, func, select, true
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.applications import domain
from services.applications.domain import Decision, MajorLine, PlanWindow, Stage, Status
from services.applications.exceptions import (
    ApplicationsError,
    DuplicateApplication,
    FileTooLarge,
    Forbidden,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    NotFound,
    PlanProvinceMismatch,
    PreconditionRequired,
    ProfileIncomplete,
    TooManyFiles,
    ValidationFailed,
    VersionConflict,
)
from services.applications.models import (
    Application,
    ApplicationMajor,
    Attachment,
    CertificateCopy,
    IdempotencyKey,
    InstitutionCopy,
    MajorCopy,
    PilotGrant,
    PlanCopy,
    Review,
)
from services.applications.schemas import (
    ApplicationIn,
    ApplicationOut,
    ApplicationPage,
    ApplicationSummary,
    AttachmentOut,
    BatchItemResult,
    BatchReviewIn,
    BatchReviewOut,
    CertificateStats,
    CheckOut,
    MajorLineOut,
    PlanStatistics,
    ReviewIn,
    ReviewOut,
    StatusCounts,
)
from services.applications.storage import FileStorage
from shared.auth.principal import Principal, Role
from shared.contracts import applications as events
from shared.contracts.plans import PlanData
from shared.contracts.registry import CertificateData, InstitutionData, MajorData
from shared.http.conditional import etag_version
from shared.messaging.outbox import stage
from shared.pagination import PageParams

PRODUCER = "applications"

# --- copies ----------------------------------------------------------------------------------------


async def _upsert_copy(session: AsyncSession, model: Any, key: str, values: dict[str, Any]) -> None:
    """Insert or replace a copied row, but only with a newer `subject_version` than the stored one."""
    table = model.__table__
    statement = insert(table).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c[key]],
        set_={name: statement.excluded[name] for name in values if name != key},
        where=table.c.subject_version < statement.excluded.subject_version,
    )
    await session.execute(statement)


async def copy_plan(session: AsyncSession, *, data: PlanData, subject_version: int) -> None:
    """Apply a plan event to the plan copy (inside the caller's inbox transaction)."""
    await _upsert_copy(
        session,
        PlanCopy,
        "id",
        {
            "id": data.id,
            "province_code": data.province_code,
            "year": data.year,
            "batch": data.batch,
            "title": data.title,
            "opens_at": data.opens_at,
            "closes_at": data.closes_at,
            "by_major": data.by_major,
            "municipal_review": data.municipal_review,
            "state": data.state,
            "subject_version": subject_version,
        },
    )


async def copy_certificate(session: AsyncSession, *, data: CertificateData, subject_version: int) -> None:
    """Apply a certificate event to the certificate copy."""
    await _upsert_copy(
        session,
        CertificateCopy,
        "id",
        {
            "id": data.id,
            "name": data.name,
            "level": data.level,
            "org_id": data.org_id,
            "org_name": data.org_name,
            "major_codes": list(data.major_codes),
            "active": data.active,
            "subject_version": subject_version,
        },
    )


async def copy_institution(session: AsyncSession, *, data: InstitutionData, subject_version: int) -> None:
    """Apply an institution event to the institution copy."""
    await _upsert_copy(
        session,
        InstitutionCopy,
        "code",
        {
            "code": data.code,
            "name": data.name,
            "type": data.type,
            "province_code": data.province_code,
            "city_code": data.city_code,
            "profile_completed": data.profile_completed,
            "subject_version": subject_version,
        },
    )


async def copy_major(session: AsyncSession, *, data: MajorData, subject_version: int) -> None:
    """Apply a major event to the major copy (used for names)."""
    await _upsert_copy(
        session,
        MajorCopy,
        "code",
        {"code": data.code, "name": data.name, "level": data.level, "subject_version": subject_version},
    )


# --- scope -----------------------------------------------------------------------------------------


def scope_filter(principal: Principal) -> ColumnElement[bool]:
    """What a principal may see. Departments and organisations see only submitted applications."""
    submitted = Application.submitted_at.is_not(None)
    role = principal.role
    if role in (Role.institution, Role.institution_sub):
        return Application.institution_code == (principal.institution_code or "")
    if role is Role.provincial:
        return (Application.province_code == (principal.province_code or "")) & submitted
    if role is Role.municipal:
        reviewed_plans = select(PlanCopy.id).where(PlanCopy.municipal_review.is_(True))
        return (
            (Application.province_code == (principal.province_code or ""))
            & (Application.city_code == (principal.city_code or ""))
            & Application.plan_id.in_(reviewed_plans)
            & submitted
        )
    if role is Role.org:
        return (Application.org_id == (principal.org_id or "")) & submitted
    if role is Role.operator:
        return true()
    return Application.id.is_(None)


async def _load(
    session: AsyncSession, principal: Principal, application_id: uuid.UUID, *, lock: bool = False
) -> Application:
    query = select(Application).where(Application.id == application_id, scope_filter(principal))
    if lock:
        query = query.with_for_update()
    application = (await session.execute(query)).scalar_one_or_none()
    if application is None:
        raise NotFound()
    return application


async def _plan(session: AsyncSession, plan_id: str, *, lock: bool = False) -> PlanCopy | None:
    query = select(PlanCopy).where(PlanCopy.id == plan_id)
    if lock:
        # FOR SHARE: a plan copy update (a later closing time) waits for this transaction, and vice versa.
        query = query.with_for_update(read=True)
    return (await session.execute(query)).scalar_one_or_none()


def _window(plan: PlanCopy | None) -> PlanWindow | None:
    return PlanWindow(plan.state, plan.opens_at, plan.closes_at) if plan else None


def _plan_open(plan: PlanCopy | None, now: datetime) -> bool:
    window = _window(plan)
    return bool(window and window.is_open(now))


# --- views and events ------------------------------------------------------------------------------


def _summary(application: Application) -> ApplicationSummary:
    return ApplicationSummary.model_validate(application, from_attributes=True)


async def _view(
    session: AsyncSession,
    application: Application,
    principal: Principal,
    now: datetime,
    *,
    plan: PlanCopy | None = None,
    majors: Sequence[ApplicationMajor] | None = None,
    new: bool = False,
) -> ApplicationOut:
    """The full view. A use case that already holds the plan or the major lines passes them, and a
    new application has no files or reviews yet: each saves a query on the busiest requests."""
    plan = plan or await _plan(session, application.plan_id)
    if majors is None:
        majors = await _majors_of(session, application.id)
    attachments: Sequence[Attachment] = []
    reviews: Sequence[Review] = []
    if not new:
        attachments = (
            await session.scalars(
                select(Attachment).where(Attachment.application_id == application.id).order_by(Attachment.created_at)
            )
        ).all()
        reviews = (
            await session.scalars(select(Review).where(Review.application_id == application.id).order_by(Review.at))
        ).all()
    editable = principal.is_school and domain.is_editable(application.status) and _plan_open(plan, now)
    institution = await session.get(InstitutionCopy, application.institution_code)
    checks = domain.pre_submission_checks(
        status=application.status,
        plan_open=_plan_open(plan, now),
        profile_completed=bool(institution and institution.profile_completed),
        by_major=bool(plan and plan.by_major),
        lines=[MajorLine(m.major_code, m.students, m.teachers, m.trainees) for m in majors],
        attachments=len(attachments),
    )
    return ApplicationOut(
        **_summary(application).model_dump(),
        majors=[MajorLineOut.model_validate(m, from_attributes=True) for m in majors],
        faculty_html=application.faculty_html,
        venue_html=application.venue_html,
        attachments=[AttachmentOut.model_validate(a, from_attributes=True) for a in attachments],
        reviews=[ReviewOut.model_validate(r, from_attributes=True) for r in reviews],
        plan_closes_at=plan.closes_at if plan else None,
        editable=editable,
        checks=[CheckOut(**vars(check)) for check in checks],
    )


def _event_data(application: Application, plan: PlanCopy | None) -> dict[str, Any]:
    return {
        "id": str(application.id),
        "plan_id": application.plan_id,
        "year": application.year,
        "institution_code": application.institution_code,
        "institution_name": application.institution_name,
        "province_code": application.province_code,
        "city_code": application.city_code,
        "certificate_id": application.certificate_id,
        "certificate_name": application.certificate_name,
        "level": application.level,
        "status": application.status,
        "review_stage": application.review_stage,
        "trainees_total": application.trainees_total,
        "approved_trainees": application.approved_trainees,
        "returned_reason": application.returned_reason,
        "plan_closes_at": plan.closes_at if plan else None,
        "version": application.version,
    }


async def _stage_application_event(
    session: AsyncSession, cls: type[events.Event[Any]], application: Application, plan: PlanCopy | None
) -> None:
    event = cls(
        subject=str(application.id),
        subject_version=application.version,
        data=events.ApplicationData(**_event_data(application, plan)),
    )
    await stage(session, event, producer=PRODUCER)


# --- idempotency -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key and the fingerprint of the request it came with (method, path, body)."""

    key: str
    fingerprint: str

    @classmethod
    def of(cls, key: str | None, *, method: str, path: str, body: bytes) -> Idempotency | None:
        if not key:
            return None
        digest = hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()
        return cls(key=key[:200], fingerprint=digest)


async def _idempotent_replay(
    session: AsyncSession, principal: Principal, idempotency: Idempotency | None
) -> dict[str, Any] | None:
    """Inside the transaction: the stored first answer for this key, or None to go ahead.

    A transaction-scoped advisory lock on (account, key) makes a concurrent duplicate fail fast with
    409 instead of waiting; it is released at commit, after the answer row is visible to others.
    """
    if idempotency is None:
        return None
    lock_key = f"{principal.account_id}:{idempotency.key}"
    acquired = await session.scalar(select(func.pg_try_advisory_xact_lock(func.hashtextextended(lock_key, 0))))
    if not acquired:
        raise IdempotencyInProgress()
    stored = await session.get(IdempotencyKey, (principal.account_id, idempotency.key))
    if stored is None:
        return None
    if stored.fingerprint != idempotency.fingerprint:
        raise IdempotencyKeyReused()
    return stored.response


def _remember(
    session: AsyncSession, principal: Principal, idempotency: Idempotency | None, status: int, view: BaseModel
) -> None:
    if idempotency is not None:
        session.add(
            IdempotencyKey(
                account_id=principal.account_id,
                key=idempotency.key,
                fingerprint=idempotency.fingerprint,
                status_code=status,
                response=view.model_dump(mode="json"),
            )
        )


# --- drafts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    """A draft's checked content, ready to write."""

    lines: list[MajorLine]
    trainees_total: int
    faculty_html: str
    venue_html: str
    certificate: CertificateCopy


async def _check_content(session: AsyncSession, body: ApplicationIn, plan: PlanCopy) -> Content:
    certificate = await session.get(CertificateCopy, body.certificate_id)
    if certificate is None or not certificate.active:
        raise ValidationFailed("certificate_id", "所选证书不存在或已停用。")
    lines, total = domain.check_majors(
        by_major=plan.by_major,
        lines=[MajorLine(m.major_code, m.students, m.teachers, m.trainees) for m in body.majors],
        allowed=set(certificate.major_codes),
        trainees_total=body.trainees_total,
    )
    faculty = domain.clean_rich_text("faculty_html", body.faculty_html)
    venue = domain.clean_rich_text("venue_html", body.venue_html)
    return Content(lines, total, faculty, venue, certificate)


async def _require_content_still_allowed(session: AsyncSession, application: Application) -> Sequence[ApplicationMajor]:
    """The certificate and every major line must still be on offer; returns the lines."""
    certificate = await session.get(CertificateCopy, application.certificate_id)
    majors = await _majors_of(session, application.id)
    domain.require_still_allowed(
        certificate_active=certificate is not None and certificate.active,
        allowed=set(certificate.major_codes) if certificate else set(),
        codes=[m.major_code for m in majors],
    )
    return majors


async def _open_plan_for(session: AsyncSession, plan_id: str, institution: InstitutionCopy, now: datetime) -> PlanCopy:
    plan = await _plan(session, plan_id, lock=True)
    if plan is None or plan.state != "published":
        raise ValidationFailed("plan_id", "申报计划不存在。")
    if plan.province_code != institution.province_code:
        raise PlanProvinceMismatch()
    domain.require_open(_window(plan) or PlanWindow("", now, now), now)
    return plan


async def _institution(session: AsyncSession, principal: Principal) -> InstitutionCopy:
    institution = await session.get(InstitutionCopy, principal.institution_code or "")
    if institution is None or not institution.profile_completed:
        raise ProfileIncomplete()
    return institution


async def _majors_of(session: AsyncSession, application_id: uuid.UUID) -> Sequence[ApplicationMajor]:
    return (
        await session.scalars(
            select(ApplicationMajor)
            .where(ApplicationMajor.application_id == application_id)
            .order_by(ApplicationMajor.position)
        )
    ).all()


async def _write_majors(
    session: AsyncSession, application_id: uuid.UUID, lines: Sequence[MajorLine], *, replace: bool = True
) -> list[ApplicationMajor]:
    """Store the major lines (replacing the old ones unless the application is new), with names."""
    if replace:
        await session.execute(delete(ApplicationMajor).where(ApplicationMajor.application_id == application_id))
    names: dict[str, str] = {}
    if lines:
        codes = [line.major_code for line in lines]
        found = await session.execute(select(MajorCopy.code, MajorCopy.name).where(MajorCopy.code.in_(codes)))
        names = {code: name for code, name in found}
    rows = [
        ApplicationMajor(
            application_id=application_id,
            position=position,
            major_code=line.major_code,
            major_name=names.get(line.major_code),
            students=line.students,
            teachers=line.teachers,
            trainees=line.trainees,
        )
        for position, line in enumerate(lines)
    ]
    session.add_all(rows)
    return rows


async def _flush_unique(session: AsyncSession) -> None:
    """Flush; the partial unique index on live applications turns a race into `duplicate_application`."""
    try:
        await session.flush()
    except IntegrityError as exc:
        if "uq_applications_live" in str(exc.orig):
            raise DuplicateApplication() from exc
        raise


async def _live_duplicate(
    session: AsyncSession, institution_code: str, year: int, certificate_id: str, exclude: uuid.UUID | None
) -> bool:
    query = select(Application.id).where(
        Application.institution_code == institution_code,
        Application.year == year,
        Application.certificate_id == certificate_id,
        Application.status != Status.rejected,
    )
    if exclude is not None:
        query = query.where(Application.id != exclude)
    return (await session.scalar(query.limit(1))) is not None


async def create_application(
    session: AsyncSession,
    *,
    principal: Principal,
    body: ApplicationIn,
    now: datetime,
    idempotency: Idempotency | None = None,
) -> tuple[ApplicationOut, bool]:
    """Save a new draft for an open plan of the school's province. Returns the view and whether it
    is the replay of an earlier request with the same Idempotency-Key."""
    async with session.begin():
        replay = await _idempotent_replay(session, principal, idempotency)
        if replay is not None:
            return ApplicationOut.model_validate(replay), True
        institution = await _institution(session, principal)
        plan = await _open_plan_for(session, body.plan_id, institution, now)
        content = await _check_content(session, body, plan)
        if await _live_duplicate(session, institution.code, plan.year, content.certificate.id, None):
            raise DuplicateApplication()
        application = Application(
            id=uuid.uuid4(),
            plan_id=plan.id,
            year=plan.year,
            institution_code=institution.code,
            institution_name=institution.name,
            province_code=institution.province_code,
            city_code=institution.city_code,
            status=Status.draft,
            version=1,
            created_by=principal.account,
            created_at=now,
            updated_at=now,
        )
        _apply_content(application, content)
        session.add(application)
        await _flush_unique(session)
        majors = await _write_majors(session, application.id, content.lines, replace=False)
        await _stage_application_event(session, events.ApplicationCreated, application, plan)
        view = await _view(session, application, principal, now, plan=plan, majors=majors, new=True)
        _remember(session, principal, idempotency, 201, view)
    return view, False


def _apply_content(application: Application, content: Content) -> None:
    certificate = content.certificate
    application.certificate_id = certificate.id
    application.certificate_name = certificate.name
    application.level = certificate.level
    application.org_id = certificate.org_id
    application.org_name = certificate.org_name
    application.trainees_total = content.trainees_total
    application.faculty_html = content.faculty_html
    application.venue_html = content.venue_html


def parse_if_match(if_match: str | None) -> int:
    """The version named by an If-Match header (`"3"` or `W/"3"`); 428 without one."""
    if not if_match:
        raise PreconditionRequired()
    version = etag_version(if_match)
    if version is None:
        raise VersionConflict()
    return version


async def update_application(
    session: AsyncSession,
    *,
    principal: Principal,
    application_id: uuid.UUID,
    body: ApplicationIn,
    if_match: str | None,
    now: datetime,
) -> ApplicationOut:
    """Replace an editable application's content; the If-Match version must be the current one."""
    expected = parse_if_match(if_match)
    async with session.begin():
        application = await _load(session, principal, application_id, lock=True)
        if application.version != expected:
            raise VersionConflict()
        domain.require_editable(application.status)
        if body.plan_id != application.plan_id:
            raise ValidationFailed("plan_id", "不能更改申报计划。")
        institution = await _institution(session, principal)
        plan = await _open_plan_for(session, application.plan_id, institution, now)
        content = await _check_content(session, body, plan)
        if await _live_duplicate(
            session, application.institution_code, application.year, content.certificate.id, application.id
        ):
            raise DuplicateApplication()
        _apply_content(application, content)
        application.institution_name = institution.name
        application.city_code = institution.city_code
        application.version += 1
        application.updated_at = now
        await _flush_unique(session)
        majors = await _write_majors(session, application.id, content.lines)
        await _stage_application_event(session, events.ApplicationUpdated, application, plan)
        return await _view(session, application, principal, now, plan=plan, majors=majors)


async def delete_application(
    session: AsyncSession, *, principal: Principal, application_id: uuid.UUID, storage: FileStorage, now: datetime
) -> None:
    """Delete a draft (never a submitted, reviewed or rejected application) and its files."""
    async with session.begin():
        application = await _load(session, principal, application_id, lock=True)
        domain.require_deletable(application.status, ever_submitted=application.submitted_at is not None)
        keys = list(
            (
                await session.scalars(select(Attachment.storage_key).where(Attachment.application_id == application.id))
            ).all()
        )
        plan = await _plan(session, application.plan_id)
        application.version += 1
        application.updated_at = now
        await _stage_application_event(session, events.ApplicationDeleted, application, plan)
        await session.delete(application)
    for key in keys:
        await storage.delete(key)


async def get_application(
    session: AsyncSession, *, principal: Principal, application_id: uuid.UUID, now: datetime
) -> ApplicationOut:
    """One application in the principal's scope (404 outside it)."""
    async with session.begin():
        application = await _load(session, principal, application_id)
        return await _view(session, application, principal, now)


# --- submit ----------------------------------------------------------------------------------------


async def submit_application(
    session: AsyncSession,
    *,
    principal: Principal,
    application_id: uuid.UUID,
    now: datetime,
    idempotency: Idempotency | None = None,
) -> tuple[ApplicationOut, bool]:
    """Submit a draft or a rejected application for review, only while its plan is open (checked in
    this transaction, the plan copy held FOR SHARE). Locked until a decision sends it back."""
    async with session.begin():
        replay = await _idempotent_replay(session, principal, idempotency)
        if replay is not None:
            return ApplicationOut.model_validate(replay), True
        application = await _load(session, principal, application_id, lock=True)
        plan = await _plan(session, application.plan_id, lock=True)
        review_stage = domain.submit_stage(application.status, municipal_review=bool(plan and plan.municipal_review))
        domain.require_open(_window(plan) or PlanWindow("", now, now), now)
        await _institution(session, principal)
        majors = await _require_content_still_allowed(session, application)
        application.status = Status.pending
        application.review_stage = review_stage
        application.returned_reason = None
        application.approved_trainees = None
        application.submitted_at = now
        application.updated_at = now
        application.version += 1
        await _flush_unique(session)
        await _stage_application_event(session, events.ApplicationSubmitted, application, plan)
        view = await _view(session, application, principal, now, plan=plan, majors=majors)
        _remember(session, principal, idempotency, 200, view)
    return view, False


# --- reviews ---------------------------------------------------------------------------------------

_OUTCOME_EVENTS: dict[Status, type[events.Event[Any]]] = {
    Status.approved: events.ApplicationApproved,
    Status.rejected: events.ApplicationRejected,
    Status.draft: events.ApplicationReturned,
}


def _reviewer_stage(principal: Principal) -> Stage:
    if principal.role is Role.municipal:
        return Stage.municipal
    if principal.role is Role.provincial:
        return Stage.provincial
    raise Forbidden()


async def _decide(
    session: AsyncSession,
    *,
    principal: Principal,
    application_id: uuid.UUID,
    body: ReviewIn,
    now: datetime,
    default_approved_to_requested: bool = False,
) -> Application:
    reviewer_stage = _reviewer_stage(principal)
    application = await _load(session, principal, application_id, lock=True)
    plan = await _plan(session, application.plan_id, lock=True)
    decision = Decision(body.decision)
    approved = body.approved_trainees
    if approved is None and default_approved_to_requested and decision is Decision.approve:
        approved = application.trainees_total
    outcome = domain.decide(
        status=application.status,
        review_stage=application.review_stage,
        reviewer_stage=reviewer_stage,
        decision=decision,
        comment=body.comment,
        approved_trainees=approved,
        trainees_total=application.trainees_total,
        plan_open=_plan_open(plan, now),
    )
    review = Review(
        id=uuid.uuid4(),
        application_id=application.id,
        stage=reviewer_stage.value,
        decision=decision.value,
        comment=(body.comment or "").strip() or None,
        approved_trainees=outcome.approved_trainees,
        reviewer=principal.account,
        reviewer_id=principal.account_id,
        at=now,
    )
    session.add(review)
    application.status = outcome.status
    application.review_stage = outcome.review_stage
    application.approved_trainees = outcome.approved_trainees
    application.returned_reason = outcome.returned_reason
    application.updated_at = now
    application.version += 1
    await _stage_review_events(session, application, plan, review)
    if outcome.status is Status.approved:
        await _grant_pilot(session, application, now)
    return application


async def _stage_review_events(
    session: AsyncSession, application: Application, plan: PlanCopy | None, review: Review
) -> None:
    """`reviewed` for every decision; `approved`, `rejected` or `returned` when it ends the review."""
    data = events.ReviewData(
        **_event_data(application, plan),
        stage=review.stage,
        decision=review.decision,
        comment=review.comment,
        reviewer=review.reviewer,
    )
    subject = {"subject": str(application.id), "subject_version": application.version}
    staged: list[events.Event[Any]] = [events.ApplicationReviewed(data=data, **subject)]
    outcome_event = _OUTCOME_EVENTS.get(Status(application.status))
    if application.status != Status.pending and outcome_event is not None:
        staged.append(outcome_event(data=data, **subject))
    await stage(session, *staged, producer=PRODUCER)


async def _grant_pilot(session: AsyncSession, application: Application, now: datetime) -> None:
    """The first approval of an institution in a year makes it a pilot institution: announce it once."""
    inserted = await session.execute(
        insert(PilotGrant)
        .values(
            institution_code=application.institution_code,
            year=application.year,
            application_id=application.id,
            granted_at=now,
        )
        .on_conflict_do_nothing()
        .returning(PilotGrant.institution_code)
    )
    if inserted.first() is None:
        return
    event = events.PilotGranted(
        subject=f"{application.institution_code}:{application.year}",
        subject_version=1,
        data=events.PilotGrantedData(
            institution_code=application.institution_code,
            institution_name=application.institution_name,
            province_code=application.province_code,
            city_code=application.city_code,
            year=application.year,
            application_id=str(application.id),
        ),
    )
    await stage(session, event, producer=PRODUCER)


async def review_application(
    session: AsyncSession,
    *,
    principal: Principal,
    application_id: uuid.UUID,
    body: ReviewIn,
    now: datetime,
    idempotency: Idempotency | None = None,
) -> tuple[ApplicationOut, bool]:
    """Record one reviewer's decision (municipal first where the plan asks, then provincial).
    Returns the view and whether it replays an earlier request with the same Idempotency-Key."""
    async with session.begin():
        replay = await _idempotent_replay(session, principal, idempotency)
        if replay is not None:
            return ApplicationOut.model_validate(replay), True
        application = await _decide(session, principal=principal, application_id=application_id, body=body, now=now)
        view = await _view(session, application, principal, now)
        _remember(session, principal, idempotency, 200, view)
    return view, False


async def review_batch(
    session: AsyncSession, *, principal: Principal, body: BatchReviewIn, now: datetime
) -> BatchReviewOut:
    """One decision on many applications; each is its own transaction, so one refusal spoils no other.
    A batch approval without a number approves what each application asked for."""
    results: list[BatchItemResult] = []
    single = ReviewIn(decision=body.decision, approved_trainees=body.approved_trainees, comment=body.comment)
    for application_id in dict.fromkeys(body.application_ids):
        try:
            async with session.begin():
                application = await _decide(
                    session,
                    principal=principal,
                    application_id=application_id,
                    body=single,
                    now=now,
                    default_approved_to_requested=True,
                )
                results.append(BatchItemResult(id=application_id, ok=True, status=application.status))  # type: ignore[arg-type]
        except ApplicationsError as exc:
            results.append(BatchItemResult(id=application_id, ok=False, code=exc.code, detail=exc.detail))
    succeeded = sum(1 for r in results if r.ok)
    return BatchReviewOut(succeeded=succeeded, failed=len(results) - succeeded, results=results)


# --- lists, export, statistics ---------------------------------------------------------------------


@dataclass(frozen=True)
class ListFilters:
    plan_id: str | None = None
    year: int | None = None
    status: str | None = None
    certificate_id: str | None = None
    institution_code: str | None = None
    q: str | None = None


def _filtered(principal: Principal, filters: ListFilters) -> list[ColumnElement[bool]]:
    conditions = [scope_filter(principal)]
    if filters.plan_id:
        conditions.append(Application.plan_id == filters.plan_id)
    if filters.year is not None:
        conditions.append(Application.year == filters.year)
    if filters.certificate_id:
        conditions.append(Application.certificate_id == filters.certificate_id)
    if filters.institution_code:
        conditions.append(Application.institution_code == filters.institution_code)
    if filters.q:
        pattern = "%" + filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            Application.institution_name.ilike(pattern)
            | Application.certificate_name.ilike(pattern)
            | Application.org_name.ilike(pattern)
            | Application.institution_code.ilike(pattern)
        )
    return conditions


async def _counts(session: AsyncSession, conditions: list[ColumnElement[bool]]) -> StatusCounts:
    rows = await session.execute(
        select(Application.status, func.count()).where(*conditions).group_by(Application.status)
    )
    counts = {status: count for status, count in rows}
    return StatusCounts(all=sum(counts.values()), **{s: counts.get(s, 0) for s in domain.STATUSES})


async def list_applications(
    session: AsyncSession, *, principal: Principal, filters: ListFilters, page: PageParams
) -> ApplicationPage:
    """A page of the applications the principal may see, newest change first, with counts per status
    (the counts ignore the status filter, as the tabs of the list show every status)."""
    async with session.begin():
        conditions = _filtered(principal, filters)
        counts = await _counts(session, conditions)
        if filters.status:
            conditions.append(Application.status == filters.status)
        total = await session.scalar(select(func.count()).select_from(Application).where(*conditions)) or 0
        query = (
            select(Application)
            .where(*conditions)
            .order_by(Application.updated_at.desc(), Application.id)
            .offset(page.offset)
            .limit(page.limit)
        )
        rows = (await session.scalars(query)).all()
        return ApplicationPage(
            items=[_summary(r) for r in rows], total=total, page=page.page, page_size=page.page_size, counts=counts
        )


async def _plan_for_department(session: AsyncSession, principal: Principal, plan_id: str) -> PlanCopy:
    plan = await _plan(session, plan_id)
    visible = plan is not None and (
        principal.role is Role.operator
        or (principal.role is Role.provincial and plan.province_code == principal.province_code)
        or (
            principal.role is Role.municipal and plan.province_code == principal.province_code and plan.municipal_review
        )
    )
    if not visible or plan is None:
        raise NotFound("申报计划不存在或无权访问。")
    return plan


STATUS_LABELS = {"draft": "待提交", "pending": "待审核", "approved": "审核通过", "rejected": "审核不通过"}
LEVEL_LABELS = {"junior": "初级", "intermediate": "中级", "senior": "高级"}
STAGE_LABELS = {"municipal": "地市级审核", "provincial": "省级审核"}
EXPORT_COLUMNS = (
    "院校代码", "院校名称", "地市代码", "试点证书", "等级", "培训评价组织", "专业",
    "拟申报培训人数", "已批准培训人数", "申报状态", "审核环节", "退回/不通过原因", "提交时间",
)  # fmt: skip


async def export_plan(session: AsyncSession, *, principal: Principal, plan_id: str) -> tuple[str, bytes]:
    """The plan's applications in the principal's scope as an .xlsx workbook (file name, bytes)."""
    async with session.begin():
        plan = await _plan_for_department(session, principal, plan_id)
        conditions = _filtered(principal, ListFilters(plan_id=plan_id))
        rows = (
            await session.scalars(
                select(Application)
                .where(*conditions)
                .order_by(Application.institution_code, Application.certificate_name)
            )
        ).all()
        majors = await _major_names(session, [r.id for r in rows])
        last_reasons = await _last_comments(session, [r.id for r in rows])
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "申报列表"
    sheet.append(list(EXPORT_COLUMNS))
    for row in rows:
        sheet.append(
            [
                row.institution_code,
                row.institution_name,
                row.city_code or "",
                row.certificate_name,
                LEVEL_LABELS.get(row.level, row.level),
                row.org_name,
                "、".join(majors.get(row.id, [])),
                row.trainees_total,
                row.approved_trainees,
                STATUS_LABELS.get(row.status, row.status),
                STAGE_LABELS.get(row.review_stage or "", ""),
                row.returned_reason or (last_reasons.get(row.id) if row.status == Status.rejected else "") or "",
                domain.local_timestamp(row.submitted_at) if row.submitted_at else "",
            ]
        )
    _no_formulas(sheet)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return f"{plan.year}-{plan.title}-申报列表.xlsx", buffer.getvalue()


def _no_formulas(sheet: Any) -> None:
    """Text from users (names, reasons) that starts with `=` stays text: no formula runs in Excel."""
    for row in sheet.iter_rows():
        for cell in row:
            if cell.data_type == "f":
                cell.data_type = "s"


async def _major_names(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    found: dict[uuid.UUID, list[str]] = {}
    if not ids:
        return found
    rows = await session.execute(
        select(ApplicationMajor.application_id, ApplicationMajor.major_code, ApplicationMajor.major_name)
        .where(ApplicationMajor.application_id.in_(ids))
        .order_by(ApplicationMajor.application_id, ApplicationMajor.position)
    )
    for application_id, code, name in rows:
        found.setdefault(application_id, []).append(name or code)
    return found


async def _last_comments(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Review.application_id, Review.comment).where(Review.application_id.in_(ids)).order_by(Review.at)
    )
    return {application_id: comment for application_id, comment in rows if comment}


async def plan_statistics(session: AsyncSession, *, principal: Principal, plan_id: str) -> PlanStatistics:
    """Counts per status and trainees requested/approved per certificate, within the principal's scope."""
    async with session.begin():
        await _plan_for_department(session, principal, plan_id)
        conditions = _filtered(principal, ListFilters(plan_id=plan_id))
        rows = (
            await session.execute(
                select(
                    Application.certificate_id,
                    Application.certificate_name,
                    Application.level,
                    Application.status,
                    func.count(),
                    func.coalesce(func.sum(Application.trainees_total), 0),
                    func.coalesce(func.sum(Application.approved_trainees), 0),
                )
                .where(*conditions)
                .group_by(
                    Application.certificate_id, Application.certificate_name, Application.level, Application.status
                )
            )
        ).all()
    per_certificate: dict[str, CertificateStats] = {}
    totals = StatusCounts()
    for certificate_id, name, level, status, count, requested, approved in rows:
        stats = per_certificate.setdefault(
            certificate_id,
            CertificateStats(
                certificate_id=certificate_id,
                certificate_name=name,
                level=level,
                applications=0,
                counts=StatusCounts(),
                trainees_requested=0,
                trainees_approved=0,
            ),
        )
        for target in (stats.counts, totals):
            setattr(target, status, getattr(target, status) + count)
            target.all += count
        stats.applications += count
        stats.trainees_requested += int(requested or 0)
        stats.trainees_approved += int(approved or 0)
    certificates = sorted(per_certificate.values(), key=lambda s: (s.certificate_name, s.level))
    return PlanStatistics(
        plan_id=plan_id,
        counts=totals,
        trainees_requested=sum(s.trainees_requested for s in certificates),
        trainees_approved=sum(s.trainees_approved for s in certificates),
        certificates=certificates,
    )


# --- evidence files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    filename: str | None
    data: bytes


async def add_attachment(
    session: AsyncSession,
    *,
    principal: Principal,
    application_id: uuid.UUID,
    upload: Upload,
    storage: FileStorage,
    now: datetime,
    max_bytes: int = domain.MAX_FILE_BYTES,
    max_files: int = domain.MAX_FILES_PER_APPLICATION,
    idempotency: Idempotency | None = None,
) -> tuple[AttachmentOut, bool]:
    """Attach an evidence file (PDF, DOC or DOCX recognised by its bytes) to an editable application.
    The bytes go to the storage under a generated key first; a failed transaction removes them again.
    A retried upload with the same Idempotency-Key answers the first one (and whether it is a replay)
    instead of storing the file twice."""
    if len(upload.data) > max_bytes:
        raise FileTooLarge()
    kind = domain.sniff_file(upload.data)
    key: str | None = None
    try:
        async with session.begin():
            replay = await _idempotent_replay(session, principal, idempotency)
            if replay is not None:
                return AttachmentOut.model_validate(replay), True
            application = await _load(session, principal, application_id, lock=True)
            domain.require_editable(application.status)
            domain.require_open(_window(await _plan(session, application.plan_id)) or PlanWindow("", now, now), now)
            count = await session.scalar(
                select(func.count()).select_from(Attachment).where(Attachment.application_id == application.id)
            )
            if (count or 0) >= max_files:
                raise TooManyFiles()
            key = await storage.put(upload.data)
            attachment = Attachment(
                id=uuid.uuid4(),
                application_id=application.id,
                filename=domain.safe_filename(upload.filename, kind),
                storage_key=key,
                kind=kind.value,
                content_type=domain.CONTENT_TYPES[kind],
                size=len(upload.data),
                sha256=hashlib.sha256(upload.data).hexdigest(),
                uploaded_by=principal.account,
                created_at=now,
            )
            session.add(attachment)
            await session.flush()
            out = AttachmentOut.model_validate(attachment, from_attributes=True)
            _remember(session, principal, idempotency, 201, out)
            return out, False
    except BaseException:
        if key is not None:
            await storage.delete(key)
        raise


async def read_attachment(
    session: AsyncSession,
    *,
    principal: Principal,
    application_id: uuid.UUID,
    attachment_id: uuid.UUID,
    storage: FileStorage,
) -> tuple[Attachment, bytes]:
    """An evidence file of an application in the principal's scope, with its bytes."""
    async with session.begin():
        await _load(session, principal, application_id)
        attachment = await session.get(Attachment, attachment_id)
        if attachment is None or attachment.application_id != application_id:
            raise NotFound("文件不存在。")
    try:
        return attachment, await storage.get(attachment.storage_key)
    except FileNotFoundError as exc:
        raise NotFound("文件不存在。") from exc


async def delete_attachment(
    session: AsyncSession,
    *,
    principal: Principal,
    application_id: uuid.UUID,
    attachment_id: uuid.UUID,
    storage: FileStorage,
    now: datetime,
) -> None:
    """Remove an evidence file from an editable application (the row first, then the bytes)."""
    async with session.begin():
        application = await _load(session, principal, application_id, lock=True)
        attachment = await session.get(Attachment, attachment_id)
        if attachment is None or attachment.application_id != application_id:
            raise NotFound("文件不存在。")
        domain.require_editable(application.status)
        domain.require_open(_window(await _plan(session, application.plan_id)) or PlanWindow("", now, now), now)
        key = attachment.storage_key
        await session.delete(attachment)
    await storage.delete(key)


# --- rebuilding copies from their owners -----------------------------------------------------------

COPIERS: dict[str, tuple[type[Any], Any]] = {
    "institutions": (InstitutionData, copy_institution),
    "certificates": (CertificateData, copy_certificate),
    "majors": (MajorData, copy_major),
    "plans": (PlanData, copy_plan),
}


async def apply_copy_page(session: AsyncSession, *, kind: str, items: list[dict[str, Any]]) -> int:
    """Apply one page of an owner's internal listing (event data fields plus `subject_version`) to a
    copy, in one transaction; rows older than the stored copy are skipped as with events."""
    data_cls, copier = COPIERS[kind]
    async with session.begin():
        for item in items:
            fields = {k: v for k, v in item.items() if k != "subject_version"}
            await copier(
                session, data=data_cls.model_validate(fields), subject_version=int(item["subject_version"] or 0)
            )
    return len(items)


async def empty_copies(session: AsyncSession) -> list[str]:
    """Which copies hold no row at all (a fresh database that missed the owners' events)."""
    async with session.begin():
        empty = []
        for kind, model in (
            ("institutions", InstitutionCopy),
            ("majors", MajorCopy),
            ("certificates", CertificateCopy),
            ("plans", PlanCopy),
        ):
            if await session.scalar(select(func.count()).select_from(select(model).limit(1).subquery())) == 0:
                empty.append(kind)
        return empty
