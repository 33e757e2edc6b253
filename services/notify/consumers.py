"""Event handlers of the notify service and their subscriptions.

Each handler runs inside the consumer's inbox transaction: the copies it updates, the SMS intents
and the in-app notices it records commit together with the inbox row, or not at all. No handler
sends anything itself; the sender delivers committed intents."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import domain, service
from services.notify.domain import Purpose
from shared.contracts import applications as app_events
from shared.contracts import identity, notify, plans
from shared.messaging.consumer import Subscription

Clock = Callable[[], datetime]


def subscriptions(clock: Clock) -> list[Subscription]:
    return [_identity(clock), _plans(clock), _applications(clock), _deliveries(clock)]


def _identity(clock: Clock) -> Subscription:
    sub = Subscription("identity")

    @sub.on(identity.SmsCodeRequested)
    async def code_requested(session: AsyncSession, event: identity.SmsCodeRequested) -> None:
        data = event.data
        fields = {
            "code": data.code,
            "minutes": str(max(1, data.ttl_seconds // 60)),
            "use": domain.CODE_PURPOSES.get(data.purpose, "身份验证"),
        }
        sms = domain.render_sms(Purpose.verification_code, fields, secrets=frozenset({"code"}))
        await service.queue_sms(
            session, source=str(event.id), purpose=Purpose.verification_code, phone=data.phone, sms=sms,
            correlation_id=event.correlation_id, now=clock(),
        )  # fmt: skip

    @sub.on(identity.AccountRegistered)
    async def registered(session: AsyncSession, event: identity.AccountRegistered) -> None:
        data = event.data
        await service.upsert_account(session, data=data, subject_version=event.subject_version, primary=True)
        fields = {"account": data.account, "password": data.password}
        sms = domain.render_sms(Purpose.registration, fields, secrets=frozenset({"password"}))
        await service.queue_sms(
            session, source=str(event.id), purpose=Purpose.registration, phone=data.phone, sms=sms,
            correlation_id=event.correlation_id, now=clock(),
        )  # fmt: skip

    @sub.on(identity.AccountCreated)
    async def created(session: AsyncSession, event: identity.AccountCreated) -> None:
        await service.upsert_account(
            session, data=event.data, subject_version=event.subject_version, primary=event.data.primary
        )

    @sub.on(identity.AccountRemoved)
    async def removed(session: AsyncSession, event: identity.AccountRemoved) -> None:
        await service.remove_account(session, data=event.data, subject_version=event.subject_version)

    @sub.on(identity.PasswordReset)
    async def password_reset(session: AsyncSession, event: identity.PasswordReset) -> None:
        data = event.data
        if data.new_password:  # a department reset the school's password: the SMS carries it
            purpose = Purpose.password_reset_by_department
            fields = {"account": data.account, "password": data.new_password}
        else:
            purpose, fields = Purpose.password_reset, {"account": data.account}
        sms = domain.render_sms(purpose, fields, secrets=frozenset({"password"}))
        await service.queue_sms(
            session, source=str(event.id), purpose=purpose, phone=data.phone, sms=sms,
            correlation_id=event.correlation_id, now=clock(),
        )  # fmt: skip

    return sub


def _plans(clock: Clock) -> Subscription:
    sub = Subscription("plans")

    @sub.on(plans.PlanPublished)
    async def published(session: AsyncSession, event: plans.PlanPublished) -> None:
        await service.upsert_plan(session, data=event.data, subject_version=event.subject_version)
        await service.announce_plan(session, source=str(event.id), data=event.data, now=clock())

    @sub.on(plans.PlanChanged)
    async def changed(session: AsyncSession, event: plans.PlanChanged) -> None:
        await service.upsert_plan(session, data=event.data, subject_version=event.subject_version)

    @sub.on(plans.PlanClosed)
    async def closed(session: AsyncSession, event: plans.PlanClosed) -> None:
        await service.upsert_plan(session, data=event.data, subject_version=event.subject_version, closed=True)

    return sub


def _applications(clock: Clock) -> Subscription:
    sub = Subscription("applications")

    @sub.on(app_events.ApplicationCreated, app_events.ApplicationUpdated)
    async def drafted(session: AsyncSession, event: Any) -> None:
        await service.track_application(session, data=event.data)

    @sub.on(app_events.ApplicationDeleted)
    async def deleted(session: AsyncSession, event: app_events.ApplicationDeleted) -> None:
        await service.track_application(session, data=event.data, status="deleted")

    @sub.on(app_events.ApplicationSubmitted)
    async def submitted(session: AsyncSession, event: app_events.ApplicationSubmitted) -> None:
        data = event.data
        await service.track_application(session, data=data)
        await service.queue_for_review(
            session, source=str(event.id), data=data, stage_name=data.review_stage or "provincial", now=clock()
        )

    @sub.on(app_events.ApplicationReviewed)
    async def reviewed(session: AsyncSession, event: app_events.ApplicationReviewed) -> None:
        data = event.data
        await service.track_application(session, data=data)
        if data.stage != "municipal" or data.decision != "approve":
            return  # provincial decisions and rejections have their own events
        await service.send_review_result(
            session, source=str(event.id), purpose=Purpose.municipal_passed, data=data,
            fields=service.review_fields(data), correlation_id=event.correlation_id, now=clock(),
        )  # fmt: skip
        await service.queue_for_review(session, source=str(event.id), data=data, stage_name="provincial", now=clock())

    @sub.on(app_events.ApplicationApproved)
    async def approved(session: AsyncSession, event: app_events.ApplicationApproved) -> None:
        data = event.data
        await service.track_application(session, data=data)
        fields = {**service.review_fields(data), "trainees": str(data.approved_trainees or data.trainees_total or 0)}
        await service.send_review_result(
            session, source=str(event.id), purpose=Purpose.approved, data=data, fields=fields,
            correlation_id=event.correlation_id, now=clock(),
        )  # fmt: skip

    @sub.on(app_events.ApplicationRejected)
    async def rejected(session: AsyncSession, event: app_events.ApplicationRejected) -> None:
        data = event.data
        await service.track_application(session, data=data)
        fields = {**service.review_fields(data), "reason": data.comment or "未说明"}
        await service.send_review_result(
            session, source=str(event.id), purpose=Purpose.rejected, data=data, fields=fields,
            correlation_id=event.correlation_id, now=clock(),
        )  # fmt: skip

    @sub.on(app_events.ApplicationReturned)
    async def returned(session: AsyncSession, event: app_events.ApplicationReturned) -> None:
        data = event.data
        await service.track_application(session, data=data)
        deadline = await service.plan_deadline(session, data=data)
        fields = {
            **service.review_fields(data),
            "reason": data.returned_reason or data.comment or "请按要求修改",
            "deadline": domain.local_time(deadline) if deadline else "计划截止",
        }
        await service.send_review_result(
            session, source=str(event.id), purpose=Purpose.returned, data=data, fields=fields,
            correlation_id=event.correlation_id, now=clock(),
        )  # fmt: skip

    return sub


def _deliveries(clock: Clock) -> Subscription:
    """Notify's own delivery outcomes: a log of every SMS, and operators alerted on failure."""
    sub = Subscription("deliveries")

    @sub.on(notify.SmsSent)
    async def sent(session: AsyncSession, event: notify.SmsSent) -> None:
        await service.log_delivery(session, event_id=event.id, outcome="sent", data=event.data)

    @sub.on(notify.SmsFailed)
    async def failed(session: AsyncSession, event: notify.SmsFailed) -> None:
        await service.log_delivery(session, event_id=event.id, outcome="failed", data=event.data)
        await service.alert_operators(session, source=str(event.id), data=event.data, now=clock())

    return sub
