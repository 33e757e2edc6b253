"""Events published by plans: every one carries the whole plan; `subject_version` is its version."""

from __future__ import annotations

from datetime import datetime

from shared.contracts.envelope import Event, EventData


class PlanData(EventData):
    id: str
    province_code: str
    year: int
    batch: int
    title: str
    opens_at: datetime
    closes_at: datetime
    by_major: bool
    municipal_review: bool
    state: str  # draft | published
    batch_label: str | None = None  # "2026年第一次", for display


class PlanPublished(Event[PlanData]):
    TYPE = "plans.plan.published"
    VERSION = 1


class PlanChanged(Event[PlanData]):
    """A published plan's closing time moved later."""

    TYPE = "plans.plan.changed"
    VERSION = 1


class PlanOpened(Event[PlanData]):
    TYPE = "plans.plan.opened"
    VERSION = 1


class PlanClosed(Event[PlanData]):
    TYPE = "plans.plan.closed"
    VERSION = 1
