"""Pure rules of the notify service: SMS templates and masking, the SMS state machine, the
deadline-reminder window, and the texts of in-app notifications. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

SIGNATURE = "【1+X证书】"
#: One SMS segment of Chinese text (UCS-2) holds 70 characters, signature included.
SEGMENT = 70
MASK = "******"
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
LEVEL_NAMES = {"junior": "初级", "intermediate": "中级", "senior": "高级"}
CODE_PURPOSES = {"register": "注册", "reset_password": "重置密码"}


class Purpose(StrEnum):
    """One template per purpose; part of the SMS intent's unique key."""

    verification_code = "verification_code"
    registration = "registration"
    password_reset = "password_reset"
    password_reset_by_department = "password_reset_by_department"
    approved = "approved"
    rejected = "rejected"
    returned = "returned"
    municipal_passed = "municipal_passed"
    deadline_reminder = "deadline_reminder"


TEMPLATES: dict[Purpose, str] = {
    Purpose.verification_code: "验证码{code}，{minutes}分钟内有效，仅用于{use}，请勿泄露。",
    Purpose.registration: "注册成功！账号{account}，初始密码{password}，请登录后及时修改密码。",
    Purpose.password_reset: "账号{account}的密码已重置。如非本人操作，请立即联系管理员。",
    Purpose.password_reset_by_department: "账号{account}的密码已由主管部门重置，新密码{password}，请登录后及时修改。",
    Purpose.approved: "您单位申报的{certificate}（{level}）已审核通过，批准培训{trainees}人。",
    Purpose.rejected: "您单位申报的{certificate}（{level}）未通过审核，原因：{reason}",
    Purpose.returned: "您单位申报的{certificate}（{level}）被退回修改：{reason}。请于{deadline}前重新提交。",
    Purpose.municipal_passed: "您单位申报的{certificate}（{level}）已通过市级审核，待省级审核。",
    Purpose.deadline_reminder: "{plan}将于{deadline}截止，您单位尚有未提交的申报，请及时提交。",
}
PURPOSE_NAMES: dict[Purpose, str] = {
    Purpose.verification_code: "验证码",
    Purpose.registration: "注册成功",
    Purpose.password_reset: "密码重置",
    Purpose.password_reset_by_department: "密码重置",
    Purpose.approved: "审核通过",
    Purpose.rejected: "审核不通过",
    Purpose.returned: "退回修改",
    Purpose.municipal_passed: "市级审核通过",
    Purpose.deadline_reminder: "截止提醒",
}
#: Purposes whose text carries a secret: once masked, such a message can never be sent again.
SECRET_PURPOSES = frozenset({"verification_code", "registration", "password_reset_by_department"})
#: Fields that may be shortened (with an ellipsis) so the message fits one segment.
SHRINKABLE = ("reason", "certificate", "plan")
MIN_SHRUNK = 6


@dataclass(frozen=True)
class SmsText:
    body: str
    #: The same text with every secret replaced by MASK: what is kept once the SMS has gone.
    masked: str


def render_sms(purpose: Purpose, fields: dict[str, str], secrets: frozenset[str] = frozenset()) -> SmsText:
    """Render a template with the signature, shortening free-text fields to fit one segment."""
    values = dict(fields)
    template = SIGNATURE + TEMPLATES[purpose]
    for name in SHRINKABLE:
        if name not in values:
            continue
        excess = len(template.format(**values)) - SEGMENT
        if excess <= 0:
            break
        keep = max(MIN_SHRUNK, len(values[name]) - excess - 1)
        if keep < len(values[name]):
            values[name] = values[name][:keep] + "…"
    masked = {k: (MASK if k in secrets else v) for k, v in values.items()}
    return SmsText(body=template.format(**values), masked=template.format(**masked))


def purpose_name(purpose: Purpose) -> str:
    return PURPOSE_NAMES[purpose]


def level_name(level: str) -> str:
    return LEVEL_NAMES.get(level, level)


def local_time(moment: datetime) -> str:
    """A deadline as users read it: Beijing time, e.g. `12月1日17:00`."""
    local = moment.astimezone(LOCAL_TZ)
    return f"{local.month}月{local.day}日{local:%H:%M}"


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"


class SmsState(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"


@dataclass(frozen=True)
class AfterFailure:
    state: SmsState
    retry_in: timedelta | None


def after_failure(*, attempts: int, retryable: bool, delays: list[float]) -> AfterFailure:
    """What a failed attempt leads to: another try after a back-off, or `failed` for good.

    `attempts` counts the attempts made so far (this one included); there is one attempt more
    than there are delays."""
    if retryable and attempts <= len(delays):
        return AfterFailure(SmsState.pending, timedelta(seconds=delays[attempts - 1]))
    return AfterFailure(SmsState.failed, None)


def reminder_due(*, closes_at: datetime, now: datetime, hours_before: int) -> bool:
    """The deadline reminder goes out in the last `hours_before` hours of a plan's window."""
    return closes_at - timedelta(hours=hours_before) <= now < closes_at


def digest_text(*, count: int, stage: str) -> tuple[str, str]:
    stage_name = "市级" if stage == "municipal" else "省级"
    return "新的申报待审核", f"有{count}份新提交的申报等待您{stage_name}审核，请及时处理。"


def in_app_review_result(purpose: Purpose, sms_fields: dict[str, str]) -> tuple[str, str]:
    """Title and body of the in-app notice that accompanies a review-result SMS."""
    titles = {
        Purpose.approved: "申报审核通过",
        Purpose.rejected: "申报未通过审核",
        Purpose.returned: "申报被退回修改",
        Purpose.municipal_passed: "申报已通过市级审核",
    }
    # The in-app body is not limited to one segment: render without the signature or shortening.
    return titles[purpose], TEMPLATES[purpose].format(**sms_fields)


def can_resend(*, state: str, purpose: str) -> bool:
    """An operator may resend a failed message, unless its secret is gone (it was masked)."""
    return state == SmsState.failed.value and purpose not in SECRET_PURPOSES
