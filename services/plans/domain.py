"""Pure rules and state transitions of the plans service: no I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from services.plans.exceptions import PlanRuleViolation

SHANGHAI = ZoneInfo("Asia/Shanghai")
Clock = Callable[[], datetime]

_DIGITS = "零一二三四五六七八九"


def system_clock() -> datetime:
    return datetime.now(UTC)


class PlanState(StrEnum):
    draft = "draft"
    published = "published"


class PlanStatus(StrEnum):
    draft = "draft"
    upcoming = "upcoming"  # 未开始
    open = "open"  # 申报中
    closed = "closed"  # 已结束


#: fields a draft may change; a published plan may only move `closes_at` later.
EDITABLE_FIELDS = ("year", "batch", "title", "opens_at", "closes_at", "by_major", "municipal_review")


@dataclass(frozen=True)
class Window:
    opens_at: datetime
    closes_at: datetime


def as_shanghai(value: datetime) -> datetime:
    """Naive times are meant in Asia/Shanghai (the plan's own zone); aware ones keep their instant."""
    if value.tzinfo is None:
        return value.replace(tzinfo=SHANGHAI)
    return value.astimezone(SHANGHAI)


def chinese_number(n: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 20 → 二十, 99 → 九十九 (batches are small numbers)."""
    if not 0 < n < 100:
        return str(n)
    tens, ones = divmod(n, 10)
    if tens == 0:
        return _DIGITS[ones]
    prefix = "" if tens == 1 else _DIGITS[tens]
    return prefix + "十" + (_DIGITS[ones] if ones else "")


def batch_label(year: int, batch: int) -> str:
    """The label users know from the seeds: "2026年第一次"."""
    return f"{year}年第{chinese_number(batch)}次"


def status_of(state: str, window: Window, now: datetime) -> PlanStatus:
    """Open from `opens_at` (inclusive) until `closes_at` (exclusive): the deadline itself is closed."""
    if state != PlanState.published:
        return PlanStatus.draft
    if now < window.opens_at:
        return PlanStatus.upcoming
    if now < window.closes_at:
        return PlanStatus.open
    return PlanStatus.closed


def check_window(window: Window) -> None:
    if window.closes_at <= window.opens_at:
        raise PlanRuleViolation("closes_before_opens", "closes_at")


def check_publishable(state: str, window: Window, now: datetime) -> None:
    if state != PlanState.draft:
        raise PlanRuleViolation("already_published")
    check_window(window)
    if window.closes_at <= now:
        raise PlanRuleViolation("plan_window_over", "closes_at")


def check_published_change(current: Mapping[str, object], changes: Mapping[str, object]) -> None:
    """A published plan keeps its rules: only a later `closes_at` is accepted. Unchanged values pass,
    so a client may send the whole form back."""
    for name, value in changes.items():
        if name != "closes_at" and value != current[name]:
            raise PlanRuleViolation("not_editable", name)
    new_close, old_close = changes.get("closes_at"), current["closes_at"]
    if isinstance(new_close, datetime) and isinstance(old_close, datetime) and new_close < old_close:
        raise PlanRuleViolation("closes_at_not_later", "closes_at")


def reopens(old_close: datetime, new_close: datetime, now: datetime) -> bool:
    """Moving a passed deadline into the future opens the window again: its closing must be announced anew."""
    return old_close <= now < new_close
