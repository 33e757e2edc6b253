"""Templates, masking, the SMS state machine and the reminder window: pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notify import domain
from services.notify.domain import MASK, SEGMENT, SIGNATURE, Purpose, SmsState

TYPICAL = {
    Purpose.verification_code: {"code": "483920", "minutes": "5", "use": "重置密码"},
    Purpose.registration: {"account": "4145010867", "password": "Kx7#pQ2mZa"},
    Purpose.password_reset: {"account": "4145010867"},
    Purpose.password_reset_by_department: {"account": "4145010867", "password": "Kx7#pQ2mZa"},
    Purpose.approved: {"certificate": "Web前端开发", "level": "中级", "trainees": "120"},
    Purpose.rejected: {"certificate": "Web前端开发", "level": "中级", "reason": "师资情况描述不完整"},
    Purpose.returned: {
        "certificate": "Web前端开发",
        "level": "中级",
        "reason": "请补充场地证明",
        "deadline": "12月1日17:00",
    },
    Purpose.municipal_passed: {"certificate": "Web前端开发", "level": "中级"},
    Purpose.deadline_reminder: {"plan": "2026年广西1+X证书试点申报", "deadline": "12月1日17:00"},
}


@pytest.mark.parametrize("purpose", list(Purpose))
def test_every_purpose_has_a_signed_one_segment_template(purpose: Purpose) -> None:
    sms = domain.render_sms(purpose, TYPICAL[purpose])
    assert sms.body.startswith(SIGNATURE)
    assert len(sms.body) <= SEGMENT, (len(sms.body), sms.body)
    for value in TYPICAL[purpose].values():
        assert value in sms.body


def test_secrets_are_masked_in_the_kept_copy_only() -> None:
    sms = domain.render_sms(Purpose.verification_code, TYPICAL[Purpose.verification_code], secrets=frozenset({"code"}))
    assert "483920" in sms.body and "483920" not in sms.masked
    assert MASK in sms.masked and "5分钟内有效" in sms.masked
    registration = domain.render_sms(
        Purpose.registration, TYPICAL[Purpose.registration], secrets=frozenset({"password"})
    )
    assert "Kx7#pQ2mZa" not in registration.masked and "4145010867" in registration.masked


def test_long_free_text_is_shortened_to_one_segment() -> None:
    fields = {"certificate": "工业机器人操作与运维职业技能等级证书", "level": "高级", "reason": "原因" * 40}
    sms = domain.render_sms(Purpose.rejected, fields)
    assert len(sms.body) <= SEGMENT
    assert sms.body.endswith("…")
    assert "工业机器人操作与运维职业技能等级证书" in sms.body  # the reason is shortened first


def test_level_names_and_local_deadline() -> None:
    assert [domain.level_name(x) for x in ("junior", "intermediate", "senior")] == ["初级", "中级", "高级"]
    assert domain.local_time(datetime(2026, 11, 30, 9, 0, tzinfo=UTC)) == "11月30日17:00"


def test_phone_masking() -> None:
    assert domain.mask_phone("13800000001") == "138****0001"


def test_retryable_failures_back_off_then_fail() -> None:
    delays = [2.0, 10.0]
    first = domain.after_failure(attempts=1, retryable=True, delays=delays)
    assert first.state is SmsState.pending and first.retry_in == timedelta(seconds=2)
    second = domain.after_failure(attempts=2, retryable=True, delays=delays)
    assert second.state is SmsState.pending and second.retry_in == timedelta(seconds=10)
    assert domain.after_failure(attempts=3, retryable=True, delays=delays).state is SmsState.failed
    assert domain.after_failure(attempts=1, retryable=False, delays=delays).state is SmsState.failed


def test_reminder_window_is_the_last_24_hours() -> None:
    closes = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    due = lambda now: domain.reminder_due(closes_at=closes, now=now, hours_before=24)  # noqa: E731
    assert not due(closes - timedelta(hours=24, seconds=1))
    assert due(closes - timedelta(hours=24))
    assert due(closes - timedelta(seconds=1))
    assert not due(closes)
