"""Use cases of the plans service: one function, one transaction; events staged in it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.plans.domain import (
    EDITABLE_FIELDS,
    PlanState,
    PlanStatus,
    Window,
    as_shanghai,
    batch_label,
    check_publishable,
    check_published_change,
    check_window,
    chinese_number,
    reopens,
    status_of,
)
from services.plans.exceptions import DuplicateBatch, PlanNotFound, PlanRuleViolation
from services.plans.models import Plan
from services.plans.schemas import PlanCreate, PlanOut, PlanRecord
from shared.auth.principal import Principal, Role
from shared.contracts.envelope import Event
from shared.contracts.plans import PlanChanged, PlanClosed, PlanData, PlanOpened, PlanPublished
from shared.messaging.outbox import stage
from shared.pagination import Page, PageParams

PRODUCER = "plans"


@dataclass(frozen=True)
class PlanFilters:
    province_code: str | None = None
    year: int | None = None
    status: PlanStatus | None = None


# --- shaping -------------------------------------------------------------------------------------


def plan_view(plan: Plan, *, now: datetime) -> PlanOut:
    """The API's picture of a plan; `status` depends on the clock."""
    return PlanOut(
        id=plan.id,
        province_code=plan.province_code,
        year=plan.year,
        batch=plan.batch,
        batch_label=batch_label(plan.year, plan.batch),
        title=plan.title,
        opens_at=plan.opens_at,
        closes_at=plan.closes_at,
        by_major=plan.by_major,
        municipal_review=plan.municipal_review,
        state=PlanState(plan.state),
        status=status_of(plan.state, Window(plan.opens_at, plan.closes_at), now),
        version=plan.version,
        created_at=plan.created_at,
        updated_at=plan.updated_at,
        published_at=plan.published_at,
    )


def plan_data(plan: Plan) -> PlanData:
    return PlanData(
        id=str(plan.id),
        province_code=plan.province_code,
        year=plan.year,
        batch=plan.batch,
        batch_label=batch_label(plan.year, plan.batch),
        title=plan.title,
        opens_at=as_shanghai(plan.opens_at),
        closes_at=as_shanghai(plan.closes_at),
        by_major=plan.by_major,
        municipal_review=plan.municipal_review,
        state=plan.state,
    )


def _event(cls: type[Event[Any]], plan: Plan) -> Event[Any]:
    return cls(subject=str(plan.id), subject_version=plan.version, data=plan_data(plan))


# --- scope ---------------------------------------------------------------------------------------


def _readable_by(viewer: Principal) -> ColumnElement[bool]:
    """Operators see everything; a province its own plans, drafts included; municipal accounts and
    schools the published plans of their province; organisations every published plan."""
    published = Plan.state == PlanState.published
    if viewer.role is Role.operator:
        return true()
    if viewer.role is Role.org:
        return published
    if not viewer.province_code:
        return false()
    own = Plan.province_code == viewer.province_code
    if viewer.role is Role.provincial:
        return own
    return and_(own, published)


def _status_condition(status: PlanStatus, now: datetime) -> ColumnElement[bool]:
    published = Plan.state == PlanState.published
    conditions: dict[PlanStatus, ColumnElement[bool]] = {
        PlanStatus.draft: Plan.state == PlanState.draft,
        PlanStatus.upcoming: and_(published, Plan.opens_at > now),
        PlanStatus.open: and_(published, Plan.opens_at <= now, Plan.closes_at > now),
        PlanStatus.closed: and_(published, Plan.closes_at <= now),
    }
    return conditions[status]


async def _own_plan(session: AsyncSession, plan_id: uuid.UUID, province_code: str | None) -> Plan:
    """The province's plan, locked for change; another province's plan does not exist for it."""
    plan = await session.scalar(
        select(Plan).where(Plan.id == plan_id, Plan.province_code == (province_code or "")).with_for_update()
    )
    if plan is None:
        raise PlanNotFound()
    return plan


async def _flush_unique(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        raise DuplicateBatch() from exc


# --- use cases -----------------------------------------------------------------------------------


async def create_plan(
    session: AsyncSession, *, province_code: str, created_by: str, data: PlanCreate, now: datetime
) -> PlanOut:
    """Create a draft plan of the caller's province. Batch numbers are unique per province and year."""
    check_window(Window(data.opens_at, data.closes_at))
    async with session.begin():
        plan = Plan(
            id=uuid.uuid4(),
            province_code=province_code,
            created_by=created_by,
            state=PlanState.draft,
            version=1,
            created_at=now,
            updated_at=now,
            **data.model_dump(),
        )
        session.add(plan)
        await _flush_unique(session)
        return plan_view(plan, now=now)


async def update_plan(
    session: AsyncSession,
    *,
    plan_id: uuid.UUID,
    province_code: str | None,
    changes: Mapping[str, Any],
    now: datetime,
    if_match: int | None = None,
) -> PlanOut:
    """Change a draft freely; on a published plan accept only a later closing time (announced as
    plans.plan.changed). A deadline moved from the past into the future will be announced closed again.
    With `if_match`, a plan changed by someone else since that version is refused."""
    async with session.begin():
        plan = await _own_plan(session, plan_id, province_code)
        if if_match is not None and if_match != plan.version:
            raise PlanRuleViolation("version_conflict")
        current = {name: getattr(plan, name) for name in EDITABLE_FIELDS}
        wanted = {name: value for name, value in changes.items() if value != current[name]}
        if plan.state == PlanState.published:
            check_published_change(current, wanted)
        check_window(Window(wanted.get("opens_at", plan.opens_at), wanted.get("closes_at", plan.closes_at)))
        if not wanted:
            return plan_view(plan, now=now)
        if plan.state == PlanState.published and reopens(plan.closes_at, wanted["closes_at"], now):
            plan.closed_announced_at = None
        for name, value in wanted.items():
            setattr(plan, name, value)
        plan.version += 1
        plan.updated_at = now
        await _flush_unique(session)
        if plan.state == PlanState.published:
            await stage(session, _event(PlanChanged, plan), producer=PRODUCER)
        return plan_view(plan, now=now)


async def publish_plan(
    session: AsyncSession, *, plan_id: uuid.UUID, province_code: str | None, now: datetime
) -> PlanOut:
    """Publish a draft whose window is not over yet; its opening and closing are then the scheduler's."""
    async with session.begin():
        plan = await _own_plan(session, plan_id, province_code)
        check_publishable(plan.state, Window(plan.opens_at, plan.closes_at), now)
        plan.state = PlanState.published
        plan.published_at = now
        plan.updated_at = now
        plan.version += 1
        await session.flush()
        await stage(session, _event(PlanPublished, plan), producer=PRODUCER)
        return plan_view(plan, now=now)


async def delete_plan(session: AsyncSession, *, plan_id: uuid.UUID, province_code: str | None) -> None:
    """Delete a draft; a published plan stays (schools may already have applied)."""
    async with session.begin():
        plan = await _own_plan(session, plan_id, province_code)
        if plan.state != PlanState.draft:
            raise PlanRuleViolation("not_editable")
        await session.delete(plan)


async def get_plan(session: AsyncSession, *, plan_id: uuid.UUID, viewer: Principal, now: datetime) -> PlanOut:
    """One plan the viewer may read; any other answers not found."""
    async with session.begin():
        plan = await session.scalar(select(Plan).where(Plan.id == plan_id, _readable_by(viewer)))
        if plan is None:
            raise PlanNotFound()
        return plan_view(plan, now=now)


async def list_plans(
    session: AsyncSession, *, viewer: Principal, filters: PlanFilters, page: PageParams, now: datetime
) -> Page[PlanOut]:
    """The plans the viewer may read, newest year first, filtered by province, year and status."""
    conditions = [_readable_by(viewer)]
    if filters.province_code:
        conditions.append(Plan.province_code == filters.province_code)
    if filters.year:
        conditions.append(Plan.year == filters.year)
    if filters.status:
        conditions.append(_status_condition(filters.status, now))
    async with session.begin():
        total = await session.scalar(select(func.count()).select_from(Plan).where(*conditions)) or 0
        rows = await session.scalars(
            select(Plan)
            .where(*conditions)
            .order_by(Plan.year.desc(), Plan.province_code, Plan.batch.desc(), Plan.id)
            .offset(page.offset)
            .limit(page.limit)
        )
        return Page[PlanOut].of([plan_view(p, now=now) for p in rows], total, page)


async def rebuild_page(
    session: AsyncSession, *, after: uuid.UUID | None, limit: int
) -> tuple[list[PlanRecord], str | None]:
    """Published plans in id order after a cursor, for a service rebuilding its copy."""
    query = select(Plan).where(Plan.state == PlanState.published).order_by(Plan.id).limit(limit)
    if after is not None:
        query = query.where(Plan.id > after)
    async with session.begin():
        plans = list(await session.scalars(query))
    items = [PlanRecord(**plan_data(p).model_dump(), subject_version=p.version) for p in plans]
    cursor = str(plans[-1].id) if len(plans) == limit else None
    return items, cursor


# --- the scheduler's use cases ---------------------------------------------------------------------


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(
        Plan.state == PlanState.published,
        or_(
            and_(Plan.opened_announced_at.is_(None), Plan.opens_at <= now),
            and_(Plan.closed_announced_at.is_(None), Plan.closes_at <= now),
        ),
    )


async def announce_due(session: AsyncSession, *, now: datetime, limit: int = 100) -> int:
    """Announce every window that opened or closed by `now` and was not announced yet. Rows are claimed
    with SKIP LOCKED and marked in the transaction that stages the event: each transition is announced
    once, whatever the number of instances, and one missed while no instance ran is announced now."""
    announced = 0
    async with session.begin():
        plans = await session.scalars(
            select(Plan)
            .where(_due(now))
            .order_by(Plan.opens_at, Plan.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        for plan in plans:
            if plan.opened_announced_at is None and plan.opens_at <= now:
                plan.opened_announced_at = now
                plan.version += 1
                await stage(session, _event(PlanOpened, plan), producer=PRODUCER)
                announced += 1
            if plan.closed_announced_at is None and plan.closes_at <= now:
                plan.closed_announced_at = now
                plan.version += 1
                await stage(session, _event(PlanClosed, plan), producer=PRODUCER)
                announced += 1
    return announced


async def next_transition_at(session: AsyncSession) -> datetime | None:
    """The earliest opening or closing not announced yet (None when nothing is pending)."""
    pending_open = select(func.min(Plan.opens_at)).where(
        Plan.state == PlanState.published, Plan.opened_announced_at.is_(None)
    )
    pending_close = select(func.min(Plan.closes_at)).where(
        Plan.state == PlanState.published, Plan.closed_announced_at.is_(None)
    )
    async with session.begin():
        times = [await session.scalar(pending_open), await session.scalar(pending_close)]
    found = [t for t in times if t is not None]
    return min(found) if found else None


# --- demo data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoPlan:
    province_code: str
    province_short: str
    by_major: bool
    municipal_review: bool


DEMO_PLANS = (
    DemoPlan("45", "广西", by_major=True, municipal_review=True),
    DemoPlan("11", "北京", by_major=False, municipal_review=False),
)


async def seed_demo_plans(session: AsyncSession, *, now: datetime) -> list[tuple[PlanOut, bool]]:
    """Make sure each demo province has a published plan of this year open now, with the demo's
    rules: keep one that is, else publish the next batch (open from today for 30 days). A platform
    brought up again after its demo plan closed gets a new batch, so a newcomer can always apply.
    Returns each demo plan and whether it was created now."""
    today = as_shanghai(now).replace(hour=0, minute=0, second=0, microsecond=0)
    results = []
    async with session.begin():
        for demo in DEMO_PLANS:
            plans = (
                await session.scalars(
                    select(Plan).where(Plan.province_code == demo.province_code, Plan.year == today.year)
                )
            ).all()
            usable = [
                p
                for p in plans
                if status_of(p.state, Window(p.opens_at, p.closes_at), now) is PlanStatus.open
                and (p.by_major, p.municipal_review) == (demo.by_major, demo.municipal_review)
            ]
            if usable:
                results.append((plan_view(usable[0], now=now), False))
                continue
            batch = max((p.batch for p in plans), default=0) + 1
            plan = Plan(
                id=uuid.uuid4(),
                province_code=demo.province_code,
                year=today.year,
                batch=batch,
                title=f"{today.year}年{demo.province_short}1+X证书试点申报（第{chinese_number(batch)}次）",
                opens_at=today,
                closes_at=today + timedelta(days=30, hours=23, minutes=59, seconds=59),
                by_major=demo.by_major,
                municipal_review=demo.municipal_review,
                state=PlanState.published,
                version=2,  # created, then published
                created_by="seed-demo",
                created_at=now,
                updated_at=now,
                published_at=now,
            )
            session.add(plan)
            await session.flush()
            await stage(session, _event(PlanPublished, plan), producer=PRODUCER)
            results.append((plan_view(plan, now=now), True))
    return results
