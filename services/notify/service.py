"""Use cases of the notify service.

Functions taking a `session` run inside the caller's transaction (a consumer's inbox transaction):
an SMS is only ever an *intent* row there, written under a unique key (source event + purpose +
phone), so a redelivered event or a second instance adds nothing. The sender functions
(`claim_due_sms`, `record_sms_outcome`) run each in their own transaction around the provider call.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, text, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import domain
from services.notify.domain import Purpose, SmsState, SmsText
from services.notify.exceptions import SmsIntentError, SmsNotFound, SmsNotResendable
from services.notify.models import (
    accounts,
    applications,
    dev_sms,
    notifications,
    plans,
    reminders,
    review_queue,
    sms_delivery_log,
    sms_messages,
)
from services.notify.schemas import DevSmsOut, NotificationOut, SmsMessageOut
from shared.contracts.applications import ApplicationData, ReviewData
from shared.contracts.identity import AccountData
from shared.contracts.notify import SmsData, SmsFailed, SmsSent
from shared.contracts.plans import PlanData
from shared.logging import get_logger
from shared.messaging.outbox import stage
from shared.pagination import PageParams

log = get_logger("notify")
PRODUCER = "notify"
SCHOOL_ROLES = ("institution", "institution_sub")


# --- copies ---------------------------------------------------------------------------------


async def upsert_account(session: AsyncSession, *, data: AccountData, subject_version: int, primary: bool) -> None:
    """Keep identity's account (phone, role, scope); an older copy never overwrites a newer one."""
    values = {
        "account_id": data.account_id,
        "account": data.account,
        "role": data.role,
        "phone": data.phone,
        "is_primary": primary,
        "institution_code": data.institution_code,
        "province_code": data.province_code,
        "city_code": data.city_code,
        "removed": False,
        "subject_version": subject_version,
    }
    statement = insert(accounts).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[accounts.c.account_id],
        set_={k: statement.excluded[k] for k in values if k != "account_id"},
        where=accounts.c.subject_version <= statement.excluded.subject_version,
    )
    await session.execute(statement)


async def remove_account(session: AsyncSession, *, data: AccountData, subject_version: int) -> None:
    """Forget a removed account as a recipient (kept as a tombstone so a late copy cannot revive it)."""
    await upsert_account(session, data=data, subject_version=subject_version, primary=False)
    await session.execute(
        update(accounts)
        .where(accounts.c.account_id == data.account_id, accounts.c.subject_version <= subject_version)
        .values(removed=True)
    )


async def upsert_plan(session: AsyncSession, *, data: PlanData, subject_version: int, closed: bool = False) -> None:
    """Keep the plan's title and closing time (for reminders); newer versions only."""
    values = {
        "id": data.id,
        "province_code": data.province_code,
        "title": data.title,
        "closes_at": data.closes_at,
        "closed": closed,
        "subject_version": subject_version,
    }
    statement = insert(plans).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[plans.c.id],
        set_={k: statement.excluded[k] for k in values if k != "id"},
        where=plans.c.subject_version <= statement.excluded.subject_version,
    )
    await session.execute(statement)


async def track_application(session: AsyncSession, *, data: ApplicationData, status: str | None = None) -> None:
    """Remember the application's latest status (drafts drive the deadline reminder)."""
    values = {
        "id": data.id,
        "plan_id": data.plan_id,
        "institution_code": data.institution_code,
        "province_code": data.province_code,
        "city_code": data.city_code,
        "status": status or data.status,
        "plan_closes_at": data.plan_closes_at,
        "version": data.version,
    }
    statement = insert(applications).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[applications.c.id],
        set_={k: statement.excluded[k] for k in values if k != "id"},
        where=applications.c.version <= statement.excluded.version,
    )
    await session.execute(statement)


# --- recipients -----------------------------------------------------------------------------


async def registered_mobile(session: AsyncSession, *, institution_code: str) -> str | None:
    """The mobile the institution registered with (its primary account's phone)."""
    row = await session.execute(
        select(accounts.c.phone)
        .where(
            accounts.c.institution_code == institution_code,
            accounts.c.is_primary.is_(True),
            accounts.c.removed.is_(False),
        )
        .limit(1)
    )
    return row.scalar_one_or_none()


async def _account_ids(session: AsyncSession, *conditions: Any) -> list[str]:
    rows = await session.execute(select(accounts.c.account_id).where(accounts.c.removed.is_(False), *conditions))
    return list(rows.scalars())


async def institution_accounts(session: AsyncSession, *, institution_code: str) -> list[str]:
    return await _account_ids(
        session, accounts.c.institution_code == institution_code, accounts.c.role.in_(SCHOOL_ROLES)
    )


async def province_school_accounts(session: AsyncSession, *, province_code: str) -> list[str]:
    return await _account_ids(session, accounts.c.province_code == province_code, accounts.c.role.in_(SCHOOL_ROLES))


async def reviewer_accounts(
    session: AsyncSession, *, stage_name: str, province_code: str, city_code: str | None
) -> list[str]:
    if stage_name == "municipal":
        return await _account_ids(session, accounts.c.role == "municipal", accounts.c.city_code == city_code)
    return await _account_ids(session, accounts.c.role == "provincial", accounts.c.province_code == province_code)


async def operator_accounts(session: AsyncSession) -> list[str]:
    return await _account_ids(session, accounts.c.role == "operator")


# --- intents --------------------------------------------------------------------------------


async def queue_sms(
    session: AsyncSession,
    *,
    source: str,
    purpose: Purpose,
    phone: str,
    sms: SmsText,
    correlation_id: str | None,
    now: datetime,
) -> bool:
    """Record the intent to send one SMS. False when this source already asked for it."""
    statement = (
        insert(sms_messages)
        .values(
            id=uuid.uuid4(),
            dedupe_key=f"{source}:{purpose.value}:{phone}",
            source_event_id=source,
            purpose=purpose.value,
            phone=phone,
            body=sms.body,
            body_masked=sms.masked,
            state=SmsState.pending.value,
            next_attempt_at=now,
            correlation_id=correlation_id,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[sms_messages.c.dedupe_key])
        .returning(sms_messages.c.id)
    )
    try:
        created = (await session.execute(statement)).first() is not None
    except DBAPIError as exc:
        # The driver's message repeats the statement's parameters, and the body may hold a secret:
        # what reaches the consumer's log and the parked message's header is the error class only.
        raise SmsIntentError(f"could not record the SMS intent ({type(exc.orig).__name__})") from None
    if created:
        log.info("sms_queued", purpose=purpose.value, phone=domain.mask_phone(phone))
    return created


async def notify_accounts(
    session: AsyncSession, *, account_ids: Iterable[str], source: str, kind: str, title: str, body: str, now: datetime
) -> int:
    """Add one in-app notice per account; a notice already made for this source is not repeated."""
    rows = [
        {
            "id": uuid.uuid4(),
            "account_id": account_id,
            "kind": kind,
            "title": title,
            "body": body,
            "dedupe_key": f"{source}:{kind}:{account_id}",
            "created_at": now,
        }
        for account_id in dict.fromkeys(account_ids)
    ]
    if not rows:
        return 0
    statement = insert(notifications).values(rows).on_conflict_do_nothing(index_elements=[notifications.c.dedupe_key])
    result = await session.execute(statement.returning(notifications.c.id))
    return len(result.all())


# --- event effects --------------------------------------------------------------------------


def review_fields(data: ReviewData | ApplicationData) -> dict[str, str]:
    return {"certificate": data.certificate_name, "level": domain.level_name(data.level)}


async def send_review_result(
    session: AsyncSession,
    *,
    source: str,
    purpose: Purpose,
    data: ApplicationData,
    fields: dict[str, str],
    correlation_id: str | None,
    now: datetime,
) -> None:
    """SMS to the institution's registered mobile and an in-app notice to each of its accounts."""
    phone = await registered_mobile(session, institution_code=data.institution_code)
    if phone:
        sms = domain.render_sms(purpose, fields)
        await queue_sms(
            session, source=source, purpose=purpose, phone=phone, sms=sms, correlation_id=correlation_id, now=now
        )
    else:
        await alert_missing_mobile(
            session, source=source, institution_code=data.institution_code, purpose=purpose, now=now
        )
    title, body = domain.in_app_review_result(purpose, fields)
    recipients = await institution_accounts(session, institution_code=data.institution_code)
    await notify_accounts(
        session, account_ids=recipients, source=source, kind=purpose.value, title=title, body=body, now=now
    )


async def plan_deadline(session: AsyncSession, *, data: ApplicationData) -> datetime | None:
    row = await session.execute(select(plans.c.closes_at).where(plans.c.id == data.plan_id))
    return row.scalar_one_or_none() or data.plan_closes_at


async def announce_plan(session: AsyncSession, *, source: str, data: PlanData, now: datetime) -> int:
    """In-app notice of a published plan to every account of the province's institutions."""
    recipients = await province_school_accounts(session, province_code=data.province_code)
    body = (
        f"{data.title}已发布，申报时间为{domain.local_time(data.opens_at)}至{domain.local_time(data.closes_at)}，"
        "请在截止前完成申报。"
    )
    return await notify_accounts(
        session, account_ids=recipients, source=source, kind="plan_published", title="新的申报计划已发布",
        body=body, now=now,
    )  # fmt: skip


async def queue_for_review(
    session: AsyncSession, *, source: str, data: ApplicationData, stage_name: str, now: datetime
) -> None:
    """Remember a submission waiting for the reviewers of a stage, for their next digest."""
    statement = insert(review_queue).values(
        event_id=source,
        application_id=data.id,
        stage=stage_name,
        province_code=data.province_code,
        city_code=data.city_code,
        queued_at=now,
    )
    await session.execute(statement.on_conflict_do_nothing(index_elements=[review_queue.c.event_id]))


async def log_delivery(session: AsyncSession, *, event_id: uuid.UUID, outcome: str, data: SmsData) -> None:
    statement = insert(sms_delivery_log).values(
        event_id=event_id,
        message_id=data.message_id,
        outcome=outcome,
        purpose=data.purpose,
        phone_masked=data.phone_masked,
        attempts=data.attempts,
        error=data.error,
    )
    await session.execute(statement.on_conflict_do_nothing(index_elements=[sms_delivery_log.c.event_id]))


async def alert_operators(session: AsyncSession, *, source: str, data: SmsData, now: datetime) -> int:
    """A failed SMS is never silent: every operator gets an in-app alert."""
    body = (
        f"发送给{data.phone_masked}的短信（{data.purpose}）在{data.attempts}次尝试后仍发送失败："
        f"{data.error or '未知错误'}。请检查短信网关。"
    )
    recipients = await operator_accounts(session)
    return await notify_accounts(
        session, account_ids=recipients, source=source, kind="sms_failed", title="短信发送失败", body=body, now=now
    )


async def alert_missing_mobile(
    session: AsyncSession, *, source: str, institution_code: str, purpose: Purpose, now: datetime
) -> int:
    """An SMS that cannot even be addressed is not dropped silently: operators are told which school
    has no registered mobile here (its account copy may lag behind identity), once per event."""
    log.warning("no_registered_mobile", institution_code=institution_code, purpose=purpose.value)
    body = f"院校{institution_code}没有登记手机号，{domain.purpose_name(purpose)}短信未能发送。请核对该校账号信息。"
    recipients = await operator_accounts(session)
    return await notify_accounts(
        session, account_ids=recipients, source=source, kind="sms_unaddressed", title="短信无法发送", body=body,
        now=now,
    )  # fmt: skip


# --- periodic jobs (each call one transaction, safe to run on several instances) ------------


async def send_review_digests(session: AsyncSession, *, now: datetime) -> int:
    """Announce the submissions queued since the last digest: one notice per reviewer and stage.

    Rows are claimed with SKIP LOCKED, so two instances never announce the same submission."""
    rows = (
        await session.execute(
            select(review_queue)
            .where(review_queue.c.digested_at.is_(None))
            .order_by(review_queue.c.queued_at)
            .limit(5000)
            .with_for_update(skip_locked=True)
        )
    ).all()
    groups: dict[tuple[str, str, str | None], int] = {}
    for row in rows:
        city = row.city_code if row.stage == "municipal" else None
        key = (row.stage, row.province_code, city)
        groups[key] = groups.get(key, 0) + 1
    sent = 0
    for (stage_name, province_code, city_code), count in groups.items():
        recipients = await reviewer_accounts(
            session, stage_name=stage_name, province_code=province_code, city_code=city_code
        )
        title, body = domain.digest_text(count=count, stage=stage_name)
        sent += await notify_accounts(
            session, account_ids=recipients, source=f"digest:{uuid.uuid4()}", kind="review_digest", title=title,
            body=body, now=now,
        )  # fmt: skip
    if rows:
        await session.execute(
            update(review_queue)
            .where(review_queue.c.event_id.in_([row.event_id for row in rows]))
            .values(digested_at=now)
        )
    return sent


@dataclass(frozen=True)
class DueReminder:
    plan_id: str
    institution_code: str
    title: str
    closes_at: datetime


async def due_reminders(session: AsyncSession, *, now: datetime, hours_before: int) -> list[DueReminder]:
    closes_at = func.coalesce(plans.c.closes_at, applications.c.plan_closes_at)
    query = (
        select(
            applications.c.plan_id,
            applications.c.institution_code,
            func.coalesce(plans.c.title, "申报计划").label("title"),
            closes_at.label("closes_at"),
        )
        .distinct()
        .select_from(applications.outerjoin(plans, plans.c.id == applications.c.plan_id))
        .outerjoin(
            reminders,
            and_(
                reminders.c.plan_id == applications.c.plan_id,
                reminders.c.institution_code == applications.c.institution_code,
            ),
        )
        .where(
            applications.c.status == "draft",
            func.coalesce(plans.c.closed, False).is_(False),
            closes_at > now,
            closes_at <= now + timedelta(hours=hours_before),
            reminders.c.plan_id.is_(None),
        )
    )
    rows = (await session.execute(query)).all()
    return [DueReminder(r.plan_id, r.institution_code, r.title, r.closes_at) for r in rows]


async def send_deadline_reminders(session: AsyncSession, *, now: datetime, hours_before: int) -> int:
    """One SMS and one in-app reminder per plan and institution with a draft, in the last hours.

    The reminders row is inserted first: its primary key lets exactly one instance, once, win."""
    sent = 0
    for due in await due_reminders(session, now=now, hours_before=hours_before):
        if not domain.reminder_due(closes_at=due.closes_at, now=now, hours_before=hours_before):
            continue
        claimed = await session.execute(
            insert(reminders)
            .values(plan_id=due.plan_id, institution_code=due.institution_code, sent_at=now)
            .on_conflict_do_nothing()
            .returning(reminders.c.plan_id)
        )
        if claimed.first() is None:
            continue
        source = f"reminder:{due.plan_id}:{due.institution_code}"
        fields = {"plan": due.title, "deadline": domain.local_time(due.closes_at)}
        phone = await registered_mobile(session, institution_code=due.institution_code)
        if phone:
            sms = domain.render_sms(Purpose.deadline_reminder, fields)
            await queue_sms(
                session, source=source, purpose=Purpose.deadline_reminder, phone=phone, sms=sms,
                correlation_id=None, now=now,
            )  # fmt: skip
        else:
            await alert_missing_mobile(
                session, source=source, institution_code=due.institution_code, purpose=Purpose.deadline_reminder,
                now=now,
            )  # fmt: skip
        recipients = await institution_accounts(session, institution_code=due.institution_code)
        body = domain.TEMPLATES[Purpose.deadline_reminder].format(**fields)
        await notify_accounts(
            session, account_ids=recipients, source=source, kind="deadline_reminder", title="申报即将截止",
            body=body, now=now,
        )  # fmt: skip
        sent += 1
    return sent


# --- the sender -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedSms:
    id: uuid.UUID
    phone: str
    body: str
    purpose: str
    source_event_id: str
    attempts: int
    correlation_id: str | None


_CLAIM = text(
    "UPDATE sms_messages SET state = 'sending', attempts = attempts + 1, lease_until = :lease_until, "
    "updated_at = :now WHERE id IN ("
    "  SELECT id FROM sms_messages"
    "  WHERE (state = 'pending' AND next_attempt_at <= :now) OR (state = 'sending' AND lease_until < :now)"
    "  ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED"
    ") RETURNING id, phone, body, purpose, source_event_id, attempts, correlation_id"
)


async def claim_due_sms(session: AsyncSession, *, now: datetime, lease: timedelta, limit: int) -> list[ClaimedSms]:
    """Take due messages for this instance: pending ones whose time has come, and `sending` ones whose
    sender died (lease expired). Commit before calling the provider, so the claim survives a crash."""
    rows = (await session.execute(_CLAIM, {"now": now, "lease_until": now + lease, "limit": limit})).all()
    return [ClaimedSms(r.id, r.phone, r.body, r.purpose, r.source_event_id, r.attempts, r.correlation_id) for r in rows]


async def record_sms_outcome(
    session: AsyncSession,
    *,
    message: ClaimedSms,
    error: str | None,
    retryable: bool,
    retry_delays: list[float],
    now: datetime,
) -> SmsState | None:
    """Record one attempt: sent (mask the body), another try later, or failed for good (mask,
    and a `notify.sms.failed` event). None if another instance re-claimed the message meanwhile."""
    if error is None:
        state, retry_in = SmsState.sent, None
    else:
        outcome = domain.after_failure(attempts=message.attempts, retryable=retryable, delays=retry_delays)
        state, retry_in = outcome.state, outcome.retry_in
    values: dict[str, Any] = {"state": state.value, "updated_at": now, "last_error": error, "lease_until": None}
    if state is SmsState.pending and retry_in is not None:
        values["next_attempt_at"] = now + retry_in
    if state in (SmsState.sent, SmsState.failed):
        values["body"] = sms_messages.c.body_masked
    if state is SmsState.sent:
        values["sent_at"] = now
    result = await session.execute(
        update(sms_messages)
        .where(
            sms_messages.c.id == message.id,
            sms_messages.c.state == SmsState.sending.value,
            sms_messages.c.attempts == message.attempts,
        )
        .values(**values)
        .returning(sms_messages.c.id)
    )
    if result.first() is None:
        return None
    if state in (SmsState.sent, SmsState.failed):
        await stage(session, _delivery_event(message, state, error), producer=PRODUCER)
    return state


def _delivery_event(message: ClaimedSms, state: SmsState, error: str | None) -> SmsSent | SmsFailed:
    data = SmsData(
        message_id=str(message.id),
        purpose=message.purpose,
        phone_masked=domain.mask_phone(message.phone),
        source_event_id=message.source_event_id,
        attempts=message.attempts,
        error=error,
    )
    cls = SmsSent if state is SmsState.sent else SmsFailed
    return cls(subject=str(message.id), correlation_id=message.correlation_id, data=data)


# --- queries for the API --------------------------------------------------------------------


async def list_notifications(
    session: AsyncSession, *, account_id: str, unread: bool | None, page: PageParams
) -> tuple[list[NotificationOut], int]:
    """An account's notices, newest first; `unread=True` only unread, `False` only read ones."""
    conditions = [notifications.c.account_id == account_id]
    if unread is True:
        conditions.append(notifications.c.read_at.is_(None))
    elif unread is False:
        conditions.append(notifications.c.read_at.is_not(None))
    total = (await session.execute(select(func.count()).select_from(notifications).where(*conditions))).scalar_one()
    rows = await session.execute(
        select(notifications)
        .where(*conditions)
        .order_by(notifications.c.created_at.desc(), notifications.c.id)
        .offset(page.offset)
        .limit(page.limit)
    )
    return [NotificationOut.model_validate(r, from_attributes=True) for r in rows], int(total)


async def mark_read(session: AsyncSession, *, account_id: str, notification_id: uuid.UUID, now: datetime) -> bool:
    """Mark an account's own notice read (idempotent). False if the account has no such notice."""
    async with session.begin():
        found = await session.execute(
            update(notifications)
            .where(notifications.c.id == notification_id, notifications.c.account_id == account_id)
            .values(read_at=func.coalesce(notifications.c.read_at, now))
            .returning(notifications.c.id)
        )
        return found.first() is not None


async def dev_inbox(session: AsyncSession, *, phone: str) -> list[DevSmsOut]:
    """What the dev provider delivered to a phone, newest first, with the message's state."""
    rows = await session.execute(
        select(dev_sms.c.phone, dev_sms.c.body, sms_messages.c.state.label("status"), dev_sms.c.created_at)
        .select_from(dev_sms.outerjoin(sms_messages, sms_messages.c.id == dev_sms.c.message_id))
        .where(dev_sms.c.phone == phone)
        .order_by(dev_sms.c.created_at.desc())
        .limit(50)
    )
    return [DevSmsOut.model_validate(r, from_attributes=True) for r in rows]


async def list_sms(
    session: AsyncSession, *, state: str | None, phone: str | None, page: PageParams
) -> tuple[list[SmsMessageOut], int]:
    """Operators' view of SMS messages and their delivery state (bodies masked until sent, and
    for messages still pending the masked form is shown as well)."""
    conditions = []
    if state:
        conditions.append(sms_messages.c.state == state)
    if phone:
        conditions.append(sms_messages.c.phone == phone)
    where = and_(*conditions) if conditions else true()
    total = (await session.execute(select(func.count()).select_from(sms_messages).where(where))).scalar_one()
    rows = await session.execute(
        select(sms_messages)
        .where(where)
        .order_by(sms_messages.c.created_at.desc())
        .offset(page.offset)
        .limit(page.limit)
    )
    return [SmsMessageOut.from_row(r) for r in rows], int(total)


async def resend_failed_sms(session: AsyncSession, *, message_id: uuid.UUID, now: datetime) -> SmsMessageOut:
    """Put a failed message back in the sender's queue with a fresh series of attempts. It keeps
    its id, so a gateway that did take an earlier attempt (a timeout) still delivers it once."""
    async with session.begin():
        row = (
            await session.execute(select(sms_messages).where(sms_messages.c.id == message_id).with_for_update())
        ).first()
        if row is None:
            raise SmsNotFound(str(message_id))
        if not domain.can_resend(state=row.state, purpose=row.purpose):
            raise SmsNotResendable(row.state)
        updated = (
            await session.execute(
                update(sms_messages)
                .where(sms_messages.c.id == message_id)
                .values(state=SmsState.pending.value, attempts=0, next_attempt_at=now, updated_at=now)
                .returning(*sms_messages.c)
            )
        ).one()
    log.info("sms_resend_requested", message_id=str(message_id), purpose=row.purpose)
    return SmsMessageOut.from_row(updated)
