"""HTTP only: parse, call the service, shape the answer, map domain errors to problems."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from services.notify import service
from services.notify.dependencies import CurrentPrincipal, DbSession, Now, Operator, Pagination, Settings
from services.notify.exceptions import SmsNotFound, SmsNotResendable
from services.notify.schemas import DevSmsOut, NotificationOut, SmsMessageOut
from shared.http.errors import FieldError, ProblemError, problem_responses
from shared.pagination import Page

router = APIRouter(prefix="/api/v1")
PHONE = r"^1[3-9]\d{9}$"


@router.get(
    "/notifications",
    response_model=Page[NotificationOut],
    summary="我的站内通知",
    responses=problem_responses(401, 422),
)
async def list_notifications(
    principal: CurrentPrincipal,
    session: DbSession,
    page: Pagination,
    unread: Annotated[bool | None, Query(description="true 仅未读，false 仅已读，不传为全部")] = None,
) -> Page[NotificationOut]:
    items, total = await service.list_notifications(session, account_id=principal.account_id, unread=unread, page=page)
    return Page.of(items, total, page)


@router.post(
    "/notifications/{notification_id}/read",
    status_code=204,
    summary="标记通知为已读",
    responses=problem_responses(401, 404, 422),
)
async def mark_read(notification_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession, now: Now) -> Response:
    found = await service.mark_read(session, account_id=principal.account_id, notification_id=notification_id, now=now)
    if not found:
        raise ProblemError(404, "not_found", "通知不存在。")
    return Response(status_code=204)


@router.get(
    "/sms-messages",
    response_model=Page[SmsMessageOut],
    summary="短信发送记录（运维）",
    responses=problem_responses(401, 403, 422),
)
async def list_sms(
    _operator: Operator,
    session: DbSession,
    page: Pagination,
    state: Annotated[Literal["pending", "sending", "sent", "failed"] | None, Query(description="发送状态")] = None,
    phone: Annotated[str | None, Query(pattern=PHONE, description="手机号")] = None,
) -> Page[SmsMessageOut]:
    items, total = await service.list_sms(session, state=state, phone=phone, page=page)
    return Page.of(items, total, page)


@router.post(
    "/sms-messages/{message_id}/resend",
    response_model=SmsMessageOut,
    status_code=202,
    summary="重发发送失败的短信（运维）",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def resend_sms(message_id: uuid.UUID, _operator: Operator, session: DbSession, now: Now) -> SmsMessageOut:
    try:
        return await service.resend_failed_sms(session, message_id=message_id, now=now)
    except SmsNotFound as exc:
        raise ProblemError(404, "not_found", "短信记录不存在。") from exc
    except SmsNotResendable as exc:
        raise ProblemError(
            409, "invalid_transition", "只能重发发送失败且不含验证码或密码的短信；验证码请让用户重新获取。"
        ) from exc


@router.get(
    "/dev/sms",
    response_model=list[DevSmsOut],
    summary="开发环境短信收件箱（仅 APP_ENV=dev）",
    responses=problem_responses(404, 422),
)
async def dev_sms(
    settings: Settings,
    session: DbSession,
    phone: Annotated[str | None, Query(description="手机号")] = None,
) -> list[DevSmsOut]:
    if not settings.is_dev:
        raise ProblemError(404, "not_found", "请求的资源不存在。")
    if phone is None or not re.fullmatch(PHONE, phone):
        field = FieldError(field="phone", message="手机号格式不正确")
        raise ProblemError(422, "validation_error", "请填写正确的手机号。", errors=[field])
    return await service.dev_inbox(session, phone=phone)
