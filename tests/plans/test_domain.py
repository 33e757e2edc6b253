"""Pure rules of plans: the window's edges, labels, time zone, publish and edit rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.plans.domain import (
    PlanStatus,
    Window,
    as_shanghai,
    batch_label,
    check_publishable,
    check_published_change,
    chinese_number,
    reopens,
    status_of,
)
from services.plans.exceptions import PlanRuleViolation

OPENS = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
CLOSES = datetime(2026, 3, 12, 1, 0, tzinfo=UTC)
WINDOW = Window(OPENS, CLOSES)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (OPENS - SECOND, PlanStatus.upcoming),
        (OPENS, PlanStatus.open),
        (OPENS + SECOND, PlanStatus.open),
        (CLOSES - SECOND, PlanStatus.open),
        (CLOSES, PlanStatus.closed),
        (CLOSES + SECOND, PlanStatus.closed),
    ],
)
def test_status_at_the_window_edges(now: datetime, expected: PlanStatus) -> None:
    assert status_of("published", WINDOW, now) is expected


def test_a_draft_is_draft_whatever_the_time() -> None:
    for now in (OPENS - SECOND, OPENS + SECOND, CLOSES + SECOND):
        assert status_of("draft", WINDOW, now) is PlanStatus.draft


@pytest.mark.parametrize(
    ("n", "text"),
    [(1, "一"), (2, "二"), (9, "九"), (10, "十"), (11, "十一"), (20, "二十"), (21, "二十一"), (99, "九十九")],
)
def test_chinese_numbers(n: int, text: str) -> None:
    assert chinese_number(n) == text


def test_batch_label_reads_like_the_seeds() -> None:
    assert batch_label(2020, 1) == "2020年第一次"
    assert batch_label(2026, 2) == "2026年第二次"


def test_naive_times_are_shanghai_and_aware_times_keep_their_instant() -> None:
    naive = as_shanghai(datetime(2026, 3, 2, 9, 0))
    assert naive.utcoffset() == timedelta(hours=8)
    assert naive == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    aware = as_shanghai(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    assert aware.isoformat() == "2026-03-02T09:00:00+08:00"


def test_publish_refused_once_the_window_is_over() -> None:
    check_publishable("draft", WINDOW, CLOSES - SECOND)
    with pytest.raises(PlanRuleViolation) as over:
        check_publishable("draft", WINDOW, CLOSES)
    assert over.value.code == "plan_window_over"
    with pytest.raises(PlanRuleViolation) as twice:
        check_publishable("published", WINDOW, OPENS)
    assert twice.value.code == "already_published"
    with pytest.raises(PlanRuleViolation) as inverted:
        check_publishable("draft", Window(CLOSES, OPENS), OPENS - SECOND * 100)
    assert inverted.value.code == "closes_before_opens"


CURRENT = {
    "year": 2026,
    "batch": 1,
    "title": "t",
    "opens_at": OPENS,
    "closes_at": CLOSES,
    "by_major": True,
    "municipal_review": False,
}


def test_published_plan_accepts_only_a_later_close() -> None:
    check_published_change(CURRENT, {"closes_at": CLOSES + SECOND})
    check_published_change(CURRENT, {**CURRENT, "closes_at": CLOSES + SECOND})  # the whole form sent back
    with pytest.raises(PlanRuleViolation) as earlier:
        check_published_change(CURRENT, {"closes_at": CLOSES - SECOND})
    assert (earlier.value.code, earlier.value.field) == ("closes_at_not_later", "closes_at")
    for field, value in [("by_major", False), ("municipal_review", True), ("opens_at", OPENS - SECOND), ("batch", 2)]:
        with pytest.raises(PlanRuleViolation) as rule:
            check_published_change(CURRENT, {field: value})
        assert (rule.value.code, rule.value.field) == ("not_editable", field)


def test_a_passed_deadline_moved_into_the_future_reopens() -> None:
    assert reopens(CLOSES, CLOSES + timedelta(days=1), CLOSES + SECOND)
    assert not reopens(CLOSES, CLOSES + timedelta(days=1), CLOSES - SECOND)
    assert not reopens(CLOSES, CLOSES + timedelta(days=1), CLOSES + timedelta(days=2))
